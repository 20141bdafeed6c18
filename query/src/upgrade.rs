//! Live upgrade of a class that has objects (`CREATE OR REPLACE MODULE`),
//! atomic with the deploy's transaction. A call that began on the old
//! version finishes on it (it reads its snapshot, and a writer under the
//! old version fails at commit with 40001: it read the generation key the
//! deploy wrote); a call after the commit sees only converted objects;
//! nothing ever sees a half-converted class.
//!
//! What converts, attribute by attribute (matched by name):
//! - an attribute added with a default: lazily. Nothing is written; the
//!   class begins a new layout and the column records its default
//!   (`ColumnDef::filled`), which an object of an older layout reads where
//!   it lacks the field (`row::decode`, `columnar.rs`); an object written
//!   since holds its own value. Added `| None` without one: NULL (nothing
//!   to write);
//! - an attribute dropped: lazily. Its field is skipped when read (its
//!   column id is never given again: `ClassDef::column_id_max`) and goes
//!   when the object is next written;
//! - a type change: every object rewritten, each value converted as an
//!   assignment cast would (`int` to `float`, `str`, `Decimal`; anything
//!   to `str`...);
//! - an attribute made non-nullable: every object read, none written.
//!
//! What refuses the deploy (the old version stays), naming the class, the
//! attribute and the first object that fails: an added attribute that is
//! neither nullable nor defaulted (23502), a value that does not convert
//! (42804), a None left in an attribute that became non-nullable (23502).
//!
//! Cost: nothing per object for added and dropped attributes; one read
//! and one write per object for a type change, in the deploy's one
//! transaction (its writes are held until commit, about the objects'
//! stored size plus a small overhead each).

use crate::class_objects;
use crate::error::SqlError;
use amber_catalog::{row, ClassDef, ColumnDef, Filled};
use amber_storage::Txn;
use serde_json::Value as Json;

/// What happens to one attribute of the new version.
enum Step<'a> {
    /// Converted from the old type.
    Convert(&'a ColumnDef),
    /// Added with this stored default.
    Fill(Json),
    /// Kept, now non-nullable: every object must hold a value.
    Require,
}

/// Converts the objects of `old` (which has objects) into `new` (the same
/// class, same id): lazily where reading can (an added attribute's
/// default is recorded in `new` and a new layout begun; a dropped
/// attribute's field is skipped when read), by rewriting every object
/// where a value changes type. Returns how many objects were rewritten.
pub(crate) fn migrate_class(
    txn: &mut Txn,
    module: &str,
    old: &ClassDef,
    new: &mut ClassDef,
) -> Result<u64, SqlError> {
    debug_assert_eq!(old.id, new.id);
    let mut steps: Vec<(&ColumnDef, Step<'_>)> = Vec::new();
    for col in &new.columns {
        match old.columns.iter().find(|o| o.id == col.id) {
            Some(o) if o.ty != col.ty => steps.push((col, Step::Convert(o))),
            Some(o) if o.nullable && !col.nullable => steps.push((col, Step::Require)),
            Some(_) => {}
            None if col.has_default && !col.default.is_null() => {
                let what = format!("{}.{} default", new.name, col.name);
                let stored = crate::canonical::canonical_value(&col.ty, &col.default, &what)?;
                steps.push((col, Step::Fill(stored)))
            }
            None if col.nullable => {}
            None => {
                return Err(SqlError::new(
                    "23502",
                    format!(
                        "cannot add attribute {}.{}.{}: class {} has objects, and the attribute has no default and is not nullable; the old version stays",
                        module, new.name, col.name, new.name
                    ),
                )
                .with_hint("Give it a default, or annotate it `T | None`."));
            }
        }
    }
    // Added defaults are read lazily: objects of the layout before read
    // them, objects written from now on hold their own values.
    let fills: Vec<(u32, Json)> = steps
        .iter()
        .filter_map(|(col, step)| match step {
            Step::Fill(v) => Some((col.id, v.clone())),
            _ => None,
        })
        .collect();
    let new_layout = old.layout.max(new.layout) + u32::from(!fills.is_empty());
    let rewrite = steps.iter().any(|(_, s)| matches!(s, Step::Convert(_)));
    let check = steps.iter().any(|(_, s)| matches!(s, Step::Require));
    let steps: Vec<(ColumnDef, Step<'_>)> =
        steps.into_iter().map(|(c, s)| (c.clone(), s)).collect();
    new.layout = new_layout;
    for (id, value) in fills {
        if let Some(c) = new.columns.iter_mut().find(|c| c.id == id) {
            c.filled = Some(Filled {
                layout: new_layout,
                value,
            });
        }
    }
    if !rewrite && !check {
        return Ok(0);
    }
    let new: &ClassDef = new;
    let mut rewritten = 0u64;
    class_objects::for_each(txn, old, |txn, key, oid, mut obj| {
        obj.retain(|k, _| new.columns.iter().any(|c| &c.name == k));
        for (col, step) in &steps {
            let current = obj.get(&col.name).filter(|v| !v.is_null()).cloned();
            match (step, current) {
                (Step::Convert(from), Some(v)) => {
                    let converted = crate::canonical::convert_value(&col.ty, &v).map_err(|e| {
                        SqlError::new(
                            "42804",
                            format!(
                                "attribute {}.{}.{} changes type from {} to {} and object {oid}'s value {v} cannot be converted; the old version stays",
                                module,
                                new.name,
                                col.name,
                                from.ty.pg_name(),
                                col.ty.pg_name()
                            ),
                        )
                        .with_detail(Some(e.message))
                        .with_hint("Convert it in `def __migrate__(self, old)`, or keep the type.")
                    })?;
                    obj.insert(col.name.clone(), converted);
                }
                (Step::Fill(default), None) => {
                    obj.insert(col.name.clone(), default.clone());
                }
                (Step::Require | Step::Convert(_), None) if !col.nullable => {
                    return Err(SqlError::new(
                        "23502",
                        format!(
                            "attribute {}.{}.{} may not be None in the new version, but object {oid} holds None; the old version stays",
                            module, new.name, col.name
                        ),
                    ));
                }
                _ => {}
            }
        }
        // Checked only (a column became non-nullable): nothing to write.
        if !rewrite {
            return Ok(());
        }
        let stored = row::encode(new, &obj)
            .map_err(|e| SqlError::new("22P02", format!("object {oid}: {e}")))?;
        txn.put(key, &stored)?;
        rewritten += 1;
        Ok(())
    })?;
    Ok(rewritten)
}

/// A class whose objects its own `__migrate__` converts, once the new
/// version is stored in the deploy's transaction.
pub(crate) struct Pending {
    /// The class as the version replaced declared it.
    pub old: ClassDef,
    /// Its Python name in the new version.
    pub class: String,
}

/// Objects sent to one `__migrate__` call (each travels as JSON both ways).
const MIGRATE_BATCH_MAX: usize = 512;

/// Converts the objects of each pending class through its `__migrate__`
/// (a worker call per batch, in the deploy's transaction), stores their
/// new states as any Python write is stored, then builds the class's
/// indexes. The first object whose `__migrate__` raises, or whose result
/// cannot be stored, refuses the deploy naming it.
pub(crate) fn run_python(
    engine: &std::sync::Arc<crate::session::Engine>,
    handle: &amber_runtime::TxnHandle,
    module: &std::sync::Arc<amber_catalog::ModuleDef>,
    pending: &[Pending],
    when: (
        Option<std::time::Instant>,
        std::sync::Arc<std::sync::atomic::AtomicBool>,
    ),
) -> Result<(), SqlError> {
    use amber_catalog::{class_prefix, class_range_end, object_key, object_of_key};
    for p in pending {
        let new = module
            .class(&p.class)
            .ok_or_else(|| SqlError::internal(format!("class {} vanished", p.class)))?;
        let old_types: Vec<(String, String)> = p
            .old
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.ty.describe()))
            .collect();
        let failed = |oid: u64, error: &str| {
            SqlError::new(
                "P0001",
                format!(
                    "__migrate__ of class {}.{} failed on object {oid}: {error}; the old version stays",
                    module.name, new.name
                ),
            )
        };
        let end = class_range_end(new.id);
        let mut start = class_prefix(new.id);
        loop {
            let rows = crate::dml::lock(handle)?.scan_range(&start, &end, MIGRATE_BATCH_MAX)?;
            let done = rows.len() < MIGRATE_BATCH_MAX;
            if let Some((last, _)) = rows.last() {
                start = last.clone();
                start.push(0);
            }
            let mut batch = Vec::with_capacity(rows.len());
            for (key, bytes) in &rows {
                let Some((_, oid)) = object_of_key(key) else {
                    continue;
                };
                let state = row::decode(&p.old, bytes)
                    .map_err(|e| SqlError::new("XX001", format!("corrupt object {oid}: {e}")))?;
                batch.push((oid, Json::Object(state)));
            }
            if !batch.is_empty() {
                let spec = amber_runtime::CallSpec {
                    module: module.clone(),
                    class: Some(new.name.clone()),
                    function: "__migrate__".into(),
                    deadline: when.0,
                    cancel: Some(when.1.clone()),
                };
                // The worker reads through this transaction: no lock is
                // held while it runs.
                let result = tokio::task::block_in_place(|| {
                    engine
                        .runtime
                        .migrate_blocking(spec, old_types.clone(), batch, handle.clone())
                })?;
                let converted = match result {
                    Json::Array(items) => items,
                    Json::Object(f) => {
                        let oid = f.get("failed").and_then(Json::as_u64).unwrap_or(0);
                        let error = f.get("error").and_then(Json::as_str).unwrap_or("");
                        return Err(failed(oid, error));
                    }
                    _ => return Err(SqlError::internal("__migrate__ returned no states")),
                };
                let mut txn = crate::dml::lock(handle)?;
                for item in converted {
                    let (Some(oid), Some(state)) = (
                        item.get(0).and_then(Json::as_u64),
                        item.get(1).and_then(Json::as_str),
                    ) else {
                        return Err(SqlError::internal("__migrate__ returned a bad state"));
                    };
                    let stored = crate::canonical::canonical_object(new, state)
                        .map_err(|e| failed(oid, &e.message))?;
                    txn.put(&object_key(new.id, oid), &stored)?;
                }
            }
            if done {
                break;
            }
        }
        // Its indexes have fresh ids (`index/deploy.rs` deferred them):
        // built over the converted objects, nothing to drop first.
        let mut txn = crate::dml::lock(handle)?;
        for index in &new.indexes {
            crate::index::build(&mut txn, new, index)
                .map_err(|e| crate::index::deploy::refused(e, &new.name))?;
        }
    }
    Ok(())
}
