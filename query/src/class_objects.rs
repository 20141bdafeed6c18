//! Every stored object of one class, read a batch at a time in a
//! transaction: what must see a whole table shares it (building a unique
//! index, checking or rewriting rows for ALTER TABLE, finding the rows
//! that reference a deleted key).

use crate::dml::Object;
use crate::error::SqlError;
use amber_catalog::{class_prefix, class_range_end, object_of_key, row, ClassDef};
use amber_storage::Txn;

/// Objects read per storage scan (the class's size bounds the total).
const BATCH_MAX: usize = 4096;

/// Calls `f` with each object stored under `class`'s id, decoded as
/// `class`: its key, its id and its attributes. `f` may write through
/// `txn` (a write elsewhere, or over the key given, never moves a key the
/// scan has still to reach). Bounded by the class's objects: each batch
/// starts just after the last key of the one before.
pub(crate) fn for_each(
    txn: &mut Txn,
    class: &ClassDef,
    mut f: impl FnMut(&mut Txn, &[u8], u64, Object) -> Result<(), SqlError>,
) -> Result<(), SqlError> {
    let end = class_range_end(class.id);
    let mut start = class_prefix(class.id);
    loop {
        let batch = txn.scan_range(&start, &end, BATCH_MAX)?;
        let done = batch.len() < BATCH_MAX;
        for (key, bytes) in &batch {
            let Some((_, oid)) = object_of_key(key) else {
                continue;
            };
            let obj = row::decode(class, bytes)
                .map_err(|e| SqlError::new("XX001", format!("corrupt object {oid}: {e}")))?;
            f(txn, key, oid, obj)?;
        }
        match batch.last() {
            Some((last, _)) if !done => {
                start = last.clone();
                start.push(0);
            }
            _ => return Ok(()),
        }
    }
}

/// Deletes every key in `[start, end)`, a batch at a time (the number of
/// keys is the table's size: bounded by what the store holds).
pub(crate) fn delete_range(txn: &mut Txn, start: &[u8], end: &[u8]) -> Result<(), SqlError> {
    loop {
        let batch = txn.scan_range(start, end, BATCH_MAX)?;
        let done = batch.len() < BATCH_MAX;
        for (key, _) in batch {
            txn.delete(&key)?;
        }
        if done {
            return Ok(());
        }
    }
}
