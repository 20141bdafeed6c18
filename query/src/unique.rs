//! Unique indexes (PRIMARY KEY, UNIQUE, CREATE UNIQUE INDEX) of tables
//! made by SQL: one entry per object whose key columns are all non-null,
//! `x` + index id + the canonical encoding of the key values -> object id.
//!
//! Every SQL write of such a table keeps them (INSERT, UPDATE, DELETE,
//! COPY FROM); Python cannot write those objects (a call is served only
//! its own module's classes). An entry is read and written in the
//! writer's transaction, so two transactions inserting the same key
//! conflict at commit (40001) and a committed history never holds a
//! duplicate.

use crate::dml::Object;
use crate::error::SqlError;
use amber_catalog::{unique_key, ClassDef, IndexDef, SqlType};
use amber_storage::Txn;
use serde_json::Value as Json;

/// The encoded key of `obj` in `index`; `None` when a key column is NULL
/// (NULLs are never equal, so such an object has no entry).
fn key_of(class: &ClassDef, index: &IndexDef, obj: &Object) -> Result<Option<Vec<u8>>, SqlError> {
    let mut values = Vec::with_capacity(index.columns.len());
    for name in &index.columns {
        let col = class
            .columns
            .iter()
            .find(|c| &c.name == name)
            .ok_or_else(|| SqlError::internal(format!("index column {name} missing")))?;
        match obj.get(name) {
            None | Some(Json::Null) => return Ok(None),
            Some(v) => values.push(canonical(&col.ty, v)),
        }
    }
    serde_json::to_vec(&values)
        .map(Some)
        .map_err(|e| SqlError::internal(e.to_string()))
}

/// One value as equality sees it: numerics without trailing zeros
/// (`1.50` = `1.5`), `-0` as `0`.
pub(crate) fn canonical(ty: &SqlType, v: &Json) -> Json {
    match (ty, v) {
        (SqlType::Numeric, Json::String(s)) if s.contains('.') && !s.contains(['e', 'E']) => {
            let t = s.trim_end_matches('0').trim_end_matches('.');
            Json::from(if t == "-0" { "0" } else { t })
        }
        (SqlType::Float8, Json::Number(n)) if n.as_f64() == Some(0.0) => Json::from(0.0),
        _ => v.clone(),
    }
}

/// An index key's values as PostgreSQL's details show them.
fn key_values(index: &IndexDef, obj: &Object) -> String {
    index
        .columns
        .iter()
        .map(|c| match obj.get(c) {
            Some(Json::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => "null".into(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn violation(schema: &str, class: &ClassDef, index: &IndexDef, obj: &Object) -> SqlError {
    SqlError::new(
        "23505",
        format!(
            "duplicate key value violates unique constraint \"{}\"",
            index.name
        ),
    )
    .with_detail(Some(format!(
        "Key ({})=({}) already exists.",
        index.columns.join(", "),
        key_values(index, obj)
    )))
    .with_table(schema, &class.table)
    .with_constraint(&index.name)
}

/// Keeps the unique indexes of `class` for object `oid` changing from
/// `old` (`None`: new) to `new`: 23505 if another object has the key.
pub(crate) fn write(
    txn: &mut Txn,
    schema: &str,
    class: &ClassDef,
    oid: u64,
    old: Option<&Object>,
    new: &Object,
) -> Result<(), SqlError> {
    for index in class.indexes.iter().filter(|i| i.unique) {
        let old_key = match old {
            Some(o) => key_of(class, index, o)?,
            None => None,
        };
        let new_key = key_of(class, index, new)?;
        if old_key == new_key {
            continue;
        }
        if let Some(k) = old_key {
            txn.delete(&unique_key(index.id, &k))?;
        }
        if let Some(k) = new_key {
            let key = unique_key(index.id, &k);
            if let Some(holder) = txn.get(&key)? {
                if holder.as_slice() != oid.to_be_bytes() {
                    return Err(violation(schema, class, index, new));
                }
            }
            txn.put(&key, &oid.to_be_bytes())?;
        }
    }
    Ok(())
}

/// The object holding `obj`'s key in `index` (`obj` need hold only the
/// key's columns), if any: a foreign key's check (`foreign_keys.rs`).
pub(crate) fn holder(
    txn: &Txn,
    class: &ClassDef,
    index: &IndexDef,
    obj: &Object,
) -> Result<Option<Vec<u8>>, SqlError> {
    match key_of(class, index, obj)? {
        Some(k) => Ok(txn.get(&unique_key(index.id, &k))?),
        None => Ok(None),
    }
}

/// Removes object `oid`'s entries (it is deleted).
pub(crate) fn remove(
    txn: &mut Txn,
    class: &ClassDef,
    oid: u64,
    obj: &Object,
) -> Result<(), SqlError> {
    for index in class.indexes.iter().filter(|i| i.unique) {
        if let Some(k) = key_of(class, index, obj)? {
            let key = unique_key(index.id, &k);
            if txn.get(&key)?.as_deref() == Some(&oid.to_be_bytes()[..]) {
                txn.delete(&key)?;
            }
        }
    }
    Ok(())
}

/// Fills a new unique index from the class's objects (23505 if two
/// already share a key).
pub(crate) fn build(txn: &mut Txn, class: &ClassDef, index: &IndexDef) -> Result<(), SqlError> {
    crate::class_objects::for_each(txn, class, |txn, _, oid, obj| {
        let Some(k) = key_of(class, index, &obj)? else {
            return Ok(());
        };
        let ukey = unique_key(index.id, &k);
        if txn.get(&ukey)?.is_some() {
            return Err(SqlError::new(
                "23505",
                format!("could not create unique index \"{}\"", index.name),
            )
            .with_detail(Some(format!(
                "Key ({})=({}) is duplicated.",
                index.columns.join(", "),
                key_values(index, &obj)
            ))));
        }
        txn.put(&ukey, &oid.to_be_bytes())?;
        Ok(())
    })
}
