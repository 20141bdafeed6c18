//! Unique-index entries an Amber before the order-preserving layout
//! wrote (`x` + index id + canonical JSON of the key -> object id):
//! replaced at open, once, by entries of the current layout for every
//! index of every module.

use crate::error::SqlError;
use amber_catalog::{Catalog, LEGACY_UNIQUE_TAG};
use amber_storage::Store;

pub(crate) fn rebuild(store: &Store) -> Result<(), SqlError> {
    let start = [LEGACY_UNIQUE_TAG];
    let end = [LEGACY_UNIQUE_TAG + 1];
    let mut txn = store.begin()?;
    if txn.scan_range(&start, &end, 1)?.is_empty() {
        txn.rollback();
        return Ok(());
    }
    let modules = Catalog::load(&txn)?.resolve_all(&txn)?;
    let mut rebuilt = 0usize;
    for module in modules.iter() {
        for class in &module.shape.classes {
            // A store with `x` entries was written before the `i` layout
            // existed: no index has entries of this layout yet.
            for index in &class.indexes {
                super::build(&mut txn, class, index)?;
                rebuilt += 1;
            }
        }
    }
    crate::class_objects::delete_range(&mut txn, &start, &end)?;
    txn.commit()?;
    tracing::info!(
        indexes = rebuilt,
        "rebuilt unique indexes in the ordered key layout"
    );
    Ok(())
}
