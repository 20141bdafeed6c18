//! Index entries (`amber_catalog::index_key`): one per object and index,
//! secondary and unique alike, kept by every write of an object (SQL
//! INSERT, UPDATE, DELETE, COPY FROM, and Python's writes through
//! `CallServices`), in the writer's transaction.
//!
//! A unique index is checked by reading the range of entries of the new
//! key (the key without its object id): another object there is 23505.
//! That range joins the read set, so two transactions inserting the same
//! key conflict at commit (40001) and a committed history never holds a
//! duplicate, while inserts of other keys do not conflict with it. A key
//! with a NULL part is never a duplicate (NULLs are not equal, as in
//! PostgreSQL), but it has its entry, so `IS NULL` can be looked up.

use crate::convert::{hex_decode, parse_date_days, parse_timestamp_micros};
use crate::dml::Object;
use crate::error::SqlError;
use amber_catalog::index_key::{self, KeyPart};
use amber_catalog::{object_key, row, ClassDef, IndexDef, SqlType};
use amber_storage::Txn;
use serde_json::Value as Json;

/// The encoded key of value `v` (canonical JSON) of type `ty`, appended.
pub(crate) fn push_value(out: &mut Vec<u8>, ty: &SqlType, v: &Json) -> Result<(), SqlError> {
    let bad = || {
        SqlError::new(
            "XX001",
            format!("stored value {v} is not a {}", ty.pg_name()),
        )
    };
    let text;
    let bytes;
    let part = match (ty, v) {
        (_, Json::Null) => KeyPart::Null,
        (SqlType::Int8 | SqlType::Int4 | SqlType::Int2 | SqlType::Ref(_), _) => {
            KeyPart::Int(v.as_i64().ok_or_else(bad)?)
        }
        (SqlType::Float8 | SqlType::Float4, Json::Number(n)) => {
            KeyPart::Float(n.as_f64().ok_or_else(bad)?)
        }
        (SqlType::Float8 | SqlType::Float4, Json::String(s)) => KeyPart::Float(match s.as_str() {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            _ => return Err(bad()),
        }),
        (SqlType::Bool, Json::Bool(b)) => KeyPart::Bool(*b),
        (SqlType::Text, Json::String(s)) => KeyPart::Text(s),
        (SqlType::Numeric, Json::String(s)) => KeyPart::Numeric(s),
        (SqlType::Bytea, Json::String(s)) => {
            bytes = hex_decode(s).ok_or_else(bad)?;
            KeyPart::Bytes(&bytes)
        }
        (SqlType::Date, Json::String(s)) => {
            KeyPart::Int(i64::from(parse_date_days(s).ok_or_else(bad)?))
        }
        (SqlType::Timestamptz | SqlType::Timestamp, Json::String(s)) => {
            KeyPart::Int(parse_timestamp_micros(s).ok_or_else(bad)?)
        }
        (SqlType::Jsonb | SqlType::Array(_), _) => {
            text = v.to_string();
            KeyPart::Text(&text)
        }
        _ => return Err(bad()),
    };
    index_key::push_part(out, &part).map_err(|e| SqlError::new("XX001", e.to_string()))
}

/// The encoded parts of `obj`'s key in `index`, and whether one is NULL.
fn parts_of(class: &ClassDef, index: &IndexDef, obj: &Object) -> Result<(Vec<u8>, bool), SqlError> {
    let mut out = Vec::with_capacity(16 * index.columns.len());
    let mut null = false;
    for name in &index.columns {
        let col = class
            .columns
            .iter()
            .find(|c| &c.name == name)
            .ok_or_else(|| SqlError::internal(format!("index column {name} missing")))?;
        let v = obj.get(name).unwrap_or(&Json::Null);
        null |= v.is_null();
        push_value(&mut out, &col.ty, v)?;
    }
    Ok((out, null))
}

/// The entries whose key starts with `parts`, at most `rows_max` of them:
/// their object ids, in key order. The whole range joins the read set.
pub(crate) fn lookup(
    txn: &Txn,
    index: &IndexDef,
    parts: &[u8],
    rows_max: usize,
) -> Result<Vec<u64>, SqlError> {
    let mut start = index_key::index_prefix(index.id);
    start.extend_from_slice(parts);
    let end = index_key::prefix_end(&start).unwrap_or_else(|| index_key::index_end(index.id));
    let rows = txn.scan_range(&start, &end, rows_max)?;
    Ok(rows
        .iter()
        .filter_map(|(k, _)| index_key::entry_oid(k))
        .collect())
}

/// [`lookup`] by values Python encoded (a JSON array, one per leading
/// key column): each is checked and made canonical as a stored value of
/// its column is.
pub(crate) fn lookup_json(
    txn: &Txn,
    class: &ClassDef,
    index: &IndexDef,
    values_json: &str,
    rows_max: usize,
) -> Result<Vec<u64>, SqlError> {
    let values: Vec<Json> = serde_json::from_str(values_json)
        .map_err(|e| SqlError::new("22P02", format!("index lookup values: {e}")))?;
    if values.len() > index.columns.len() {
        return Err(SqlError::new(
            "42804",
            format!("index {} has {} columns", index.name, index.columns.len()),
        ));
    }
    let mut parts = Vec::new();
    for (name, v) in index.columns.iter().zip(&values) {
        let col = class
            .columns
            .iter()
            .find(|c| &c.name == name)
            .ok_or_else(|| SqlError::internal(format!("index column {name} missing")))?;
        let what = format!("{}.{}", class.name, col.name);
        let v = crate::canonical::canonical_value(&col.ty, v, &what)?;
        push_value(&mut parts, &col.ty, &v)?;
    }
    lookup(txn, index, &parts, rows_max)
}

/// An index key's values as PostgreSQL's details show them.
fn key_values(index: &IndexDef, obj: &Object) -> String {
    index
        .columns
        .iter()
        .map(|c| match obj.get(c) {
            Some(Json::String(s)) => s.clone(),
            Some(Json::Null) | None => "null".into(),
            // A float as PostgreSQL prints it (`1`, not `1.0`).
            Some(Json::Number(n)) if !n.is_i64() && !n.is_u64() => n
                .as_f64()
                .map(|f| crate::value::float::format_f64(f, 1))
                .unwrap_or_else(|| n.to_string()),
            Some(v) => v.to_string(),
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

/// Another object holding key `parts` of unique `index` than `oid`.
fn other_holder(txn: &Txn, index: &IndexDef, parts: &[u8], oid: u64) -> Result<bool, SqlError> {
    Ok(lookup(txn, index, parts, 2)?.iter().any(|o| *o != oid))
}

/// Keeps every index of `class` for object `oid` changing from `old`
/// (`None`: new) to `new`: 23505 if another object has a unique key.
pub(crate) fn write(
    txn: &mut Txn,
    schema: &str,
    class: &ClassDef,
    oid: u64,
    old: Option<&Object>,
    new: &Object,
) -> Result<(), SqlError> {
    for index in &class.indexes {
        let old_parts = match old {
            Some(o) => Some(parts_of(class, index, o)?.0),
            None => None,
        };
        let (new_parts, null) = parts_of(class, index, new)?;
        if old_parts.as_ref() == Some(&new_parts) {
            continue;
        }
        if let Some(p) = old_parts {
            txn.delete(&index_key::entry_key(index.id, &p, oid))?;
        }
        if index.unique && !null && other_holder(txn, index, &new_parts, oid)? {
            return Err(violation(schema, class, index, new));
        }
        txn.put(&index_key::entry_key(index.id, &new_parts, oid), &[])?;
    }
    Ok(())
}

/// The object holding `obj`'s key in unique `index` (`obj` need hold only
/// the key's columns), if any: a foreign key's check (`foreign_keys.rs`).
pub(crate) fn holder(
    txn: &Txn,
    class: &ClassDef,
    index: &IndexDef,
    obj: &Object,
) -> Result<Option<u64>, SqlError> {
    let (parts, null) = parts_of(class, index, obj)?;
    if null {
        return Ok(None);
    }
    Ok(lookup(txn, index, &parts, 1)?.first().copied())
}

/// Removes object `oid`'s entries (it is deleted).
pub(crate) fn remove(
    txn: &mut Txn,
    class: &ClassDef,
    oid: u64,
    obj: &Object,
) -> Result<(), SqlError> {
    for index in &class.indexes {
        let (parts, _) = parts_of(class, index, obj)?;
        txn.delete(&index_key::entry_key(index.id, &parts, oid))?;
    }
    Ok(())
}

/// Fills a new index from the class's objects (23505 if two already
/// share a key of a unique one).
pub(crate) fn build(txn: &mut Txn, class: &ClassDef, index: &IndexDef) -> Result<(), SqlError> {
    crate::class_objects::for_each(txn, class, |txn, _, oid, obj| {
        let (parts, null) = parts_of(class, index, &obj)?;
        if index.unique && !null && other_holder(txn, index, &parts, oid)? {
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
        txn.put(&index_key::entry_key(index.id, &parts, oid), &[])?;
        Ok(())
    })
}

fn decode(class: &ClassDef, oid: u64, bytes: &[u8]) -> Result<Object, SqlError> {
    row::decode(class, bytes)
        .map_err(|e| SqlError::new("XX001", format!("corrupt object {oid}: {e}")))
}

/// Stores object `oid` of `class` as `stored` (its row, already checked),
/// keeping the class's indexes: Python's writes, which come as rows.
/// A class without indexes costs one put; one with indexes reads the
/// object's previous row to move its entries.
pub(crate) fn put_stored(
    txn: &mut Txn,
    schema: &str,
    class: &ClassDef,
    oid: u64,
    stored: &[u8],
) -> Result<(), SqlError> {
    let key = object_key(class.id, oid);
    if !class.indexes.is_empty() {
        let new = decode(class, oid, stored)?;
        let old = match txn.get(&key)? {
            Some(bytes) => Some(decode(class, oid, &bytes)?),
            None => None,
        };
        write(txn, schema, class, oid, old.as_ref(), &new)?;
    }
    txn.put(&key, stored)?;
    Ok(())
}

/// Deletes object `oid` of `class` and its index entries.
pub(crate) fn delete_stored(txn: &mut Txn, class: &ClassDef, oid: u64) -> Result<(), SqlError> {
    let key = object_key(class.id, oid);
    if !class.indexes.is_empty() {
        if let Some(bytes) = txn.get(&key)? {
            let old = decode(class, oid, &bytes)?;
            remove(txn, class, oid, &old)?;
        }
    }
    txn.delete(&key)?;
    Ok(())
}

/// Deletes every entry of index `index_id` (the index is dropped).
pub(crate) fn drop_entries(txn: &mut Txn, index_id: u64) -> Result<(), SqlError> {
    crate::class_objects::delete_range(
        txn,
        &index_key::index_prefix(index_id),
        &index_key::index_end(index_id),
    )
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
