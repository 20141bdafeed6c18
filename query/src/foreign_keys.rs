//! Foreign keys of tables made by SQL (`REFERENCES t (c)`, `FOREIGN KEY
//! (a) REFERENCES t (c)`), kept as PostgreSQL keeps them: a referencing
//! row's non-null value must be a key of the referenced column (found
//! through that column's unique index, one key read); deleting a
//! referenced row fails (23503, NO ACTION and RESTRICT), deletes the rows
//! referencing it (ON DELETE CASCADE) or sets their column to NULL (ON
//! DELETE SET NULL); an UPDATE of a referenced key fails while a row
//! still references it. Checks run in the writer's transaction, so a
//! concurrent insert of a reference and delete of its key conflict at
//! commit (40001) rather than leave a dangling reference.
//!
//! Cost: the referencing side reads one key per reference. The referenced
//! side finds the rows referencing a removed key through an index on the
//! referencing column when there is one (`CREATE INDEX`; a module's
//! references always have one): one range read. Without one it scans the
//! referencing table: a DELETE of n referenced rows reads it n times.
//! Tables referenced by no foreign key pay nothing beyond a look over the
//! catalog.

use crate::dml::Object;
use crate::error::SqlError;
use amber_catalog::{object_key, ClassDef, ForeignKeyDef, ModuleDef, OnDelete};
use amber_storage::Txn;
use serde_json::Value as Json;
use std::sync::Arc;

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
        if crate::index::holder(txn, target_class, index, &probe)?.is_none() {
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

/// Most levels a cascading delete follows (each a table whose rows
/// reference the last level's): past it the statement fails (54001)
/// rather than recurse without bound.
const CASCADE_DEPTH_MAX: usize = 64;

/// What removing `old`'s referenced keys does (a row of `class` in
/// `schema`, already deleted, or updated to `new`): for a delete, each
/// key's foreign keys refuse it (NO ACTION, RESTRICT: 23503), delete the
/// referencing rows (CASCADE, which cascades further) or set their
/// column to NULL (SET NULL); an update of a referenced key is refused
/// while referenced (ON UPDATE NO ACTION).
pub(crate) fn check_referenced(
    txn: &mut Txn,
    modules: &[Arc<ModuleDef>],
    schema: &str,
    class: &ClassDef,
    old: &Object,
    new: Option<&Object>,
) -> Result<(), SqlError> {
    referenced_change(txn, modules, schema, class, old, new, 0)
}

fn referenced_change(
    txn: &mut Txn,
    modules: &[Arc<ModuleDef>],
    schema: &str,
    class: &ClassDef,
    old: &Object,
    new: Option<&Object>,
    depth: usize,
) -> Result<(), SqlError> {
    if depth > CASCADE_DEPTH_MAX {
        return Err(SqlError::new(
            "54001",
            format!("foreign key cascade deeper than {CASCADE_DEPTH_MAX} tables"),
        ));
    }
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
                    Some(v) => crate::index::canonical(&key_col.ty, v),
                };
                let kept = new
                    .and_then(|n| n.get(&fk.column))
                    .is_some_and(|n| crate::index::canonical(&key_col.ty, n) == v);
                if kept {
                    continue;
                }
                let rows = referencing_rows(txn, referencing, &col.name, &col.ty, &v)?;
                if rows.is_empty() {
                    continue;
                }
                match (new, fk.on_delete) {
                    (Some(_), _) | (None, OnDelete::NoAction) => {
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
                    (None, OnDelete::Cascade) => {
                        for (oid, row) in rows {
                            crate::index::remove(txn, referencing, oid, &row)?;
                            txn.delete(&object_key(referencing.id, oid))?;
                            referenced_change(
                                txn,
                                modules,
                                &m.name,
                                referencing,
                                &row,
                                None,
                                depth + 1,
                            )?;
                        }
                    }
                    (None, OnDelete::SetNull) => {
                        if !col.nullable {
                            return Err(SqlError::new(
                                "23502",
                                format!(
                                    "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                                    col.name, referencing.table
                                ),
                            )
                            .with_table(&m.name, &referencing.table)
                            .with_column(&col.name));
                        }
                        for (oid, row) in rows {
                            let mut nulled = row.clone();
                            nulled.insert(col.name.clone(), Json::Null);
                            crate::index::write(
                                txn,
                                &m.name,
                                referencing,
                                oid,
                                Some(&row),
                                &nulled,
                            )?;
                            crate::dml::put_object(referencing, oid, &nulled, txn)?;
                            referenced_change(
                                txn,
                                modules,
                                &m.name,
                                referencing,
                                &row,
                                Some(&nulled),
                                depth + 1,
                            )?;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// The objects of `class` whose `column` equals `v` (canonical), with
/// their ids.
/// Most rows one referenced key's lookup returns (the store's own scan
/// limit: a referenced key is bounded by the referencing table's size).
const REFERENCING_ROWS_MAX: usize = 10_000_000;

fn referencing_rows(
    txn: &mut Txn,
    class: &ClassDef,
    column: &str,
    ty: &amber_catalog::SqlType,
    v: &Json,
) -> Result<Vec<(u64, Object)>, SqlError> {
    let mut found = Vec::new();
    let matches = |obj: &Object| {
        obj.get(column)
            .is_some_and(|x| !x.is_null() && crate::index::canonical(ty, x) == *v)
    };
    // Through an index on the referencing column when there is one (a
    // module's references always have one): a lookup, not a scan.
    if let Some(index) = class
        .indexes
        .iter()
        .find(|i| i.columns.first().map(String::as_str) == Some(column))
    {
        let mut parts = Vec::new();
        crate::index::entries::push_value(&mut parts, ty, v)?;
        for oid in crate::index::entries::lookup(txn, index, &parts, REFERENCING_ROWS_MAX)? {
            let Some(bytes) = txn.get(&object_key(class.id, oid))? else {
                continue;
            };
            let obj = amber_catalog::row::decode(class, &bytes)
                .map_err(|e| SqlError::new("XX001", format!("corrupt object {oid}: {e}")))?;
            if matches(&obj) {
                found.push((oid, obj));
            }
        }
        return Ok(found);
    }
    crate::class_objects::for_each(txn, class, |_, _, oid, obj| {
        if matches(&obj) {
            found.push((oid, obj));
        }
        Ok(())
    })?;
    Ok(found)
}
