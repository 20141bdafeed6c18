//! Foreign keys of tables made by SQL (`REFERENCES t (c)`, `FOREIGN KEY
//! (a) REFERENCES t (c)`), kept as PostgreSQL keeps them with NO ACTION:
//! a referencing row's non-null value must be a key of the referenced
//! column (found through that column's unique index, one key read), and
//! a DELETE or an UPDATE of the referenced key fails (23503) while a row
//! still references it. Checks run in the writer's transaction, so a
//! concurrent insert of a reference and delete of its key conflict at
//! commit (40001) rather than leave a dangling reference.
//!
//! Cost: the referencing side reads one key per reference. The referenced
//! side scans each referencing table for the removed key (no index on
//! the referencing column yet): a DELETE of n referenced rows reads the
//! referencing tables n times. Tables referenced by no foreign key pay
//! nothing beyond a look over the catalog.

use crate::dml::Object;
use crate::error::SqlError;
use amber_catalog::{class_prefix, class_range_end, row, ClassDef, ForeignKeyDef, ModuleDef};
use amber_storage::Txn;
use serde_json::Value as Json;
use std::sync::Arc;

/// Objects read per scan batch of a referencing table.
const SCAN_BATCH_MAX: usize = 4096;

/// A value as an error's DETAIL shows it.
fn shown(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The referenced class and its unique index on the referenced column.
fn target<'a>(
    modules: &'a [Arc<ModuleDef>],
    fk: &ForeignKeyDef,
) -> Option<(&'a ClassDef, &'a amber_catalog::IndexDef)> {
    let module = modules.iter().find(|m| m.name == fk.schema)?;
    let class = module.table(&fk.table)?;
    let index = class
        .indexes
        .iter()
        .find(|i| i.unique && i.columns.len() == 1 && i.columns[0] == fk.column)?;
    Some((class, index))
}

/// 23503 unless each reference of `obj` (a row of `class` in `schema`,
/// already written with its unique keys, so a row may reference itself)
/// names an existing key.
pub(crate) fn check_references(
    txn: &Txn,
    modules: &[Arc<ModuleDef>],
    schema: &str,
    class: &ClassDef,
    obj: &Object,
) -> Result<(), SqlError> {
    for col in &class.columns {
        let Some(fk) = &col.references else { continue };
        let v = match obj.get(&col.name) {
            None | Some(Json::Null) => continue,
            Some(v) => v,
        };
        // A key dropped with its schema (DROP SCHEMA ... CASCADE, DROP
        // MODULE) takes the constraint with it, as in PostgreSQL.
        let Some((target_class, index)) = target(modules, fk) else {
            continue;
        };
        let mut probe = Object::new();
        probe.insert(fk.column.clone(), v.clone());
        if crate::unique::holder(txn, target_class, index, &probe)?.is_none() {
            return Err(SqlError::new(
                "23503",
                format!(
                    "insert or update on table \"{}\" violates foreign key constraint \"{}\"",
                    class.table, fk.name
                ),
            )
            .with_detail(Some(format!(
                "Key ({})=({}) is not present in table \"{}\".",
                col.name,
                shown(v),
                fk.table
            )))
            .with_table(schema, &class.table)
            .with_constraint(&fk.name));
        }
    }
    Ok(())
}

/// Whether any table references `class` of `schema` (so deletes and key
/// updates must be checked).
pub(crate) fn is_referenced(modules: &[Arc<ModuleDef>], schema: &str, class: &ClassDef) -> bool {
    modules.iter().any(|m| {
        m.shape.classes.iter().any(|c| {
            c.columns.iter().any(|col| {
                col.references
                    .as_ref()
                    .is_some_and(|fk| fk.schema == schema && fk.table == class.table)
            })
        })
    })
}

/// 23503 if `old` (a row of `class` in `schema` being deleted, or updated
/// to `new`) has a referenced key that goes away while a row of another
/// or the same table still references it.
pub(crate) fn check_referenced(
    txn: &Txn,
    modules: &[Arc<ModuleDef>],
    schema: &str,
    class: &ClassDef,
    old: &Object,
    new: Option<&Object>,
) -> Result<(), SqlError> {
    for m in modules {
        for referencing in &m.shape.classes {
            for col in &referencing.columns {
                let Some(fk) = &col.references else { continue };
                if fk.schema != schema || fk.table != class.table {
                    continue;
                }
                let Some(key_col) = class.columns.iter().find(|c| c.name == fk.column) else {
                    continue;
                };
                let v = match old.get(&fk.column) {
                    None | Some(Json::Null) => continue,
                    Some(v) => crate::unique::canonical(&key_col.ty, v),
                };
                let kept = new
                    .and_then(|n| n.get(&fk.column))
                    .is_some_and(|n| crate::unique::canonical(&key_col.ty, n) == v);
                if kept {
                    continue;
                }
                if references_value(txn, referencing, &col.name, &col.ty, &v)? {
                    return Err(SqlError::new(
                        "23503",
                        format!(
                            "update or delete on table \"{}\" violates foreign key constraint \"{}\" on table \"{}\"",
                            class.table, fk.name, referencing.table
                        ),
                    )
                    .with_detail(Some(format!(
                        "Key ({})=({}) is still referenced from table \"{}\".",
                        fk.column,
                        shown(&v),
                        referencing.table
                    )))
                    .with_table(&m.name, &referencing.table)
                    .with_constraint(&fk.name));
                }
            }
        }
    }
    Ok(())
}

/// Whether some object of `class` has `column` equal to `v` (canonical).
fn references_value(
    txn: &Txn,
    class: &ClassDef,
    column: &str,
    ty: &amber_catalog::SqlType,
    v: &Json,
) -> Result<bool, SqlError> {
    let end = class_range_end(class.id);
    let mut start = class_prefix(class.id);
    // Bounded by the class's objects: each batch starts after the last.
    loop {
        let batch = txn.scan_range(&start, &end, SCAN_BATCH_MAX)?;
        let done = batch.len() < SCAN_BATCH_MAX;
        for (key, bytes) in &batch {
            let Some((_, oid)) = amber_catalog::object_of_key(key) else {
                continue;
            };
            let obj = row::decode(class, bytes)
                .map_err(|e| SqlError::new("XX001", format!("corrupt object {oid}: {e}")))?;
            if obj
                .get(column)
                .is_some_and(|x| !x.is_null() && crate::unique::canonical(ty, x) == *v)
            {
                return Ok(true);
            }
        }
        match batch.last() {
            Some((last, _)) if !done => {
                start = last.clone();
                start.push(0);
            }
            _ => return Ok(false),
        }
    }
}
