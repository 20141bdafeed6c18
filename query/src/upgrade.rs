//! Live upgrade of a class that has objects (`CREATE OR REPLACE MODULE`):
//! every object converted to the new version's attributes in the deploy's
//! own transaction, so the upgrade is atomic. A call that began on the
//! old version finishes on it (it reads its snapshot, and a writer under
//! the old version fails at commit with 40001: it read the generation key
//! the deploy wrote); a call after the commit sees only converted
//! objects; nothing ever sees a half-converted class.
//!
//! What converts, attribute by attribute (matched by name):
//! - an attribute added with a default: the default stored in each object;
//!   added `| None` without one: NULL (nothing to write);
//! - an attribute dropped: its field removed from each object (so a later
//!   attribute can never read its data);
//! - a type change: each value converted as an assignment cast would
//!   (`int` to `float`, `str`, `Decimal`; anything to `str`...).
//!
//! What refuses the deploy (the old version stays), naming the class, the
//! attribute and the first object that fails: an added attribute that is
//! neither nullable nor defaulted (23502), a value that does not convert
//! (42804), a None left in an attribute that became non-nullable (23502).
//!
//! Cost: one read and one write per object, a batch of reads at a time;
//! the whole conversion is one transaction (its writes are held until
//! commit, about the objects' stored size plus a small overhead each).

use crate::class_objects;
use crate::error::SqlError;
use amber_catalog::{row, ClassDef, ColumnDef};
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

/// Converts every object of `old` (which has objects) into `new` (the same
/// class, same id); returns how many objects were rewritten.
pub(crate) fn migrate_class(
    txn: &mut Txn,
    module: &str,
    old: &ClassDef,
    new: &ClassDef,
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
    let dropped = old
        .columns
        .iter()
        .any(|o| !new.columns.iter().any(|c| c.id == o.id));
    if steps.is_empty() && !dropped {
        return Ok(0);
    }
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
                        .with_hint("Convert it in `def __migrate__(self, old)` (not yet supported), or keep the type.")
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
        let stored = row::encode(new, &obj)
            .map_err(|e| SqlError::new("22P02", format!("object {oid}: {e}")))?;
        txn.put(key, &stored)?;
        rewritten += 1;
        Ok(())
    })?;
    Ok(rewritten)
}
