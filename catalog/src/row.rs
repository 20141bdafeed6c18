//! The stored form of an object: a compact binary row keyed by column id.
//!
//! ```text
//! format 1:  0x01  field*
//! field:     varint(column id << 3 | wire)  value
//! wire 0:    varint            bigint and references (zigzag), boolean (0/1)
//! wire 1:    8 bytes LE        double precision (IEEE 754 bits: NaN and the infinities too)
//! wire 2:    varint(len) bytes text (UTF-8); numeric, date, timestamptz and
//!                              bytea as their canonical text; jsonb and arrays
//!                              as their canonical JSON text
//! ```
//!
//! A NULL is an absent field. Fields are written in the class's column
//! order, so an unchanged object always encodes to the same bytes. The wire
//! type makes every field skippable without knowing its column, so a row
//! written before a column was dropped still decodes (the field is
//! skipped), and one written before a column was added decodes with that
//! column NULL. Column ids, not names, key the fields: an object costs a
//! few bytes per value, and a rename keeps its data.
//!
//! Format 2 (`0x02 varint(layout) field*`) is format 1 after the class
//! layout the object was written in. A class gets a layout above 0 when a
//! deploy adds an attribute with a default while it has objects: those
//! objects are not rewritten; one of an older layout that lacks the
//! field reads the default ([`filled_after`]), one written since reads
//! what it holds (an absent field is NULL again). Writes use the class's
//! layout, so an object is converted when it is next written.
//!
//! Objects written before format 1 are JSON objects keyed by column name
//! (their first byte is `{`); they are read as they are ([`decode`] reads
//! both) and rewritten in format 1 when next written.
//!
//! Why not JSON: a scan parsed every object's JSON with every column name
//! in it (half of a GROUP BY's CPU over 1M objects), and the names were
//! most of each object's bytes.

use crate::{ClassDef, ColumnDef, SqlType};
use serde_json::{Map, Value as Json};

/// The first byte of an object in format 1.
pub const FORMAT_V1: u8 = 1;

/// The first byte of an object in format 2: format 1's fields after the
/// class layout the object was written in (`0x02 varint(layout) field*`),
/// written once a class has a layout above 0 (an attribute added with a
/// default while it had objects: [`crate::ColumnDef::filled`]).
pub const FORMAT_V2: u8 = 2;

const WIRE_VARINT: u64 = 0;
const WIRE_FIXED64: u64 = 1;
const WIRE_BYTES: u64 = 2;

/// Largest column id. Ids are given out per class, one above the largest
/// the class has used (`ClassDef::assign_column_ids`), so this many column
/// additions over a class's life; readers index a table by id.
pub const COLUMN_ID_MAX: u32 = 65_535;

#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error("corrupt object: {0}")]
    Corrupt(String),
    /// A value not in its column type's canonical form (a bug of the
    /// caller: values are checked before they are encoded).
    #[error("value of column {column} is not a canonical {ty}: {value}")]
    NotCanonical {
        column: String,
        ty: String,
        value: String,
    },
}

fn corrupt(what: &str) -> RowError {
    RowError::Corrupt(what.to_string())
}

/// One field's value as stored, before its column type interprets it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
}

// The accessors, the field iterator and varints are `#[inline]`: a scan
// calls them once per value, from another crate (no LTO).
impl<'a> Field<'a> {
    /// A bigint or reference value.
    #[inline]
    pub fn as_i64(self) -> Option<i64> {
        match self {
            Field::Varint(v) => Some(unzigzag(v)),
            _ => None,
        }
    }

    #[inline]
    pub fn as_f64(self) -> Option<f64> {
        match self {
            Field::Fixed64(bits) => Some(f64::from_bits(bits)),
            _ => None,
        }
    }

    #[inline]
    pub fn as_bool(self) -> Option<bool> {
        match self {
            Field::Varint(0) => Some(false),
            Field::Varint(1) => Some(true),
            _ => None,
        }
    }

    #[inline]
    pub fn as_bytes(self) -> Option<&'a [u8]> {
        match self {
            Field::Bytes(b) => Some(b),
            _ => None,
        }
    }

    #[inline]
    pub fn as_str(self) -> Option<&'a str> {
        std::str::from_utf8(self.as_bytes()?).ok()
    }
}

/// True when `bytes` is an object written before format 1 (JSON).
pub fn is_json(bytes: &[u8]) -> bool {
    bytes.first() == Some(&b'{')
}

/// The fields of a format-1 or format-2 object, in stored order.
pub struct Fields<'a> {
    rest: &'a [u8],
    layout: u32,
}

impl<'a> Fields<'a> {
    #[inline]
    pub fn new(bytes: &'a [u8]) -> Result<Fields<'a>, RowError> {
        match bytes.split_first() {
            Some((&FORMAT_V1, rest)) => Ok(Fields { rest, layout: 0 }),
            Some((&FORMAT_V2, rest)) => {
                let mut rest = rest;
                let layout = u32::try_from(read_varint(&mut rest)?)
                    .map_err(|_| corrupt("layout out of range"))?;
                Ok(Fields { rest, layout })
            }
            Some((v, _)) => Err(RowError::Corrupt(format!("unknown row format {v}"))),
            None => Err(corrupt("empty row")),
        }
    }

    /// The class layout the object was written in (0 for format 1).
    #[inline]
    pub fn layout(&self) -> u32 {
        self.layout
    }

    #[inline]
    fn field(&mut self) -> Result<(u32, Field<'a>), RowError> {
        let tag = read_varint(&mut self.rest)?;
        let id = u32::try_from(tag >> 3)
            .ok()
            .filter(|id| *id <= COLUMN_ID_MAX)
            .ok_or_else(|| corrupt("column id out of range"))?;
        let field = match tag & 7 {
            WIRE_VARINT => Field::Varint(read_varint(&mut self.rest)?),
            WIRE_FIXED64 => {
                let (head, tail) = self
                    .rest
                    .split_first_chunk::<8>()
                    .ok_or_else(|| corrupt("truncated fixed64"))?;
                self.rest = tail;
                Field::Fixed64(u64::from_le_bytes(*head))
            }
            WIRE_BYTES => {
                let len = usize::try_from(read_varint(&mut self.rest)?)
                    .map_err(|_| corrupt("length out of range"))?;
                if len > self.rest.len() {
                    return Err(corrupt("truncated value"));
                }
                let (value, tail) = self.rest.split_at(len);
                self.rest = tail;
                Field::Bytes(value)
            }
            w => return Err(RowError::Corrupt(format!("unknown wire type {w}"))),
        };
        Ok((id, field))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Field<'a>), RowError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let item = self.field();
        if item.is_err() {
            // Nothing after a corrupt field can be trusted.
            self.rest = &[];
        }
        Some(item)
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
fn read_varint(input: &mut &[u8]) -> Result<u64, RowError> {
    // One byte (tags, small numbers) is the common case.
    if let Some((&b, rest)) = input.split_first() {
        if b < 0x80 {
            *input = rest;
            return Ok(u64::from(b));
        }
    }
    read_varint_long(input)
}

fn read_varint_long(input: &mut &[u8]) -> Result<u64, RowError> {
    let mut v: u64 = 0;
    // At most 10 bytes encode 64 bits.
    for (i, &b) in input.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            *input = &input[i + 1..];
            return Ok(v);
        }
    }
    Err(corrupt("bad varint"))
}

fn not_canonical(column: &str, ty: &SqlType, v: &Json) -> RowError {
    let text = v.to_string();
    RowError::NotCanonical {
        column: column.to_string(),
        ty: ty.pg_name(),
        value: text.chars().take(64).collect(),
    }
}

/// Encodes one non-null canonical value of type `ty` as the field `id`.
fn encode_field(
    out: &mut Vec<u8>,
    id: u32,
    column: &str,
    ty: &SqlType,
    v: &Json,
) -> Result<(), RowError> {
    let tag = |wire: u64| (u64::from(id) << 3) | wire;
    match ty {
        SqlType::Int8 | SqlType::Int4 | SqlType::Int2 | SqlType::Ref(_) => {
            let i = v.as_i64().ok_or_else(|| not_canonical(column, ty, v))?;
            write_varint(out, tag(WIRE_VARINT));
            write_varint(out, zigzag(i));
        }
        SqlType::Bool => {
            let b = v.as_bool().ok_or_else(|| not_canonical(column, ty, v))?;
            write_varint(out, tag(WIRE_VARINT));
            out.push(u8::from(b));
        }
        SqlType::Float8 | SqlType::Float4 => {
            let f = match v {
                Json::String(s) => match s.as_str() {
                    "NaN" => f64::NAN,
                    "Infinity" => f64::INFINITY,
                    "-Infinity" => f64::NEG_INFINITY,
                    _ => return Err(not_canonical(column, ty, v)),
                },
                _ => v
                    .as_f64()
                    .filter(|f| f.is_finite())
                    .ok_or_else(|| not_canonical(column, ty, v))?,
            };
            write_varint(out, tag(WIRE_FIXED64));
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        SqlType::Text
        | SqlType::Numeric
        | SqlType::Date
        | SqlType::Timestamptz
        | SqlType::Timestamp
        | SqlType::Bytea => {
            let s = v.as_str().ok_or_else(|| not_canonical(column, ty, v))?;
            write_bytes(out, tag(WIRE_BYTES), s.as_bytes());
        }
        SqlType::Jsonb | SqlType::Array(_) => {
            let text = serde_json::to_vec(v).map_err(|_| not_canonical(column, ty, v))?;
            write_bytes(out, tag(WIRE_BYTES), &text);
        }
    }
    Ok(())
}

fn write_bytes(out: &mut Vec<u8>, tag: u64, b: &[u8]) {
    write_varint(out, tag);
    write_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// The stored bytes of an object of `class` whose attributes are `obj`
/// (canonical values keyed by column name; a missing or null attribute is
/// NULL). An attribute that is not a column of the class is an error.
pub fn encode(class: &ClassDef, obj: &Map<String, Json>) -> Result<Vec<u8>, RowError> {
    let mut out = Vec::with_capacity(1 + obj.len() * 6);
    if class.layout == 0 {
        out.push(FORMAT_V1);
    } else {
        out.push(FORMAT_V2);
        write_varint(&mut out, u64::from(class.layout));
    }
    let mut used = 0usize;
    for c in &class.columns {
        let Some(v) = obj.get(&c.name) else { continue };
        used += 1;
        if v.is_null() {
            continue;
        }
        if c.id == 0 || c.id > COLUMN_ID_MAX {
            return Err(RowError::Corrupt(format!(
                "column {} of class {} has no valid id ({})",
                c.name, class.name, c.id
            )));
        }
        encode_field(&mut out, c.id, &c.name, &c.ty, v)?;
    }
    if used != obj.len() {
        let extra = obj
            .keys()
            .find(|k| !class.columns.iter().any(|c| &c.name == *k))
            .cloned()
            .unwrap_or_default();
        return Err(RowError::Corrupt(format!(
            "attribute {extra} is not a column of class {}",
            class.name
        )));
    }
    Ok(out)
}

/// The canonical JSON value of one stored field of type `ty`.
pub fn field_json(ty: &SqlType, f: Field<'_>) -> Result<Json, RowError> {
    let bad = || RowError::Corrupt(format!("a {} field of the wrong kind", ty.pg_name()));
    Ok(match ty {
        SqlType::Int8 | SqlType::Int4 | SqlType::Int2 | SqlType::Ref(_) => {
            Json::from(f.as_i64().ok_or_else(bad)?)
        }
        SqlType::Bool => Json::from(f.as_bool().ok_or_else(bad)?),
        SqlType::Float8 | SqlType::Float4 => {
            let x = f.as_f64().ok_or_else(bad)?;
            if x.is_nan() {
                Json::from("NaN")
            } else if x == f64::INFINITY {
                Json::from("Infinity")
            } else if x == f64::NEG_INFINITY {
                Json::from("-Infinity")
            } else {
                Json::from(x)
            }
        }
        SqlType::Text
        | SqlType::Numeric
        | SqlType::Date
        | SqlType::Timestamptz
        | SqlType::Timestamp
        | SqlType::Bytea => Json::from(f.as_str().ok_or_else(bad)?),
        SqlType::Jsonb | SqlType::Array(_) => {
            serde_json::from_slice(f.as_bytes().ok_or_else(bad)?).map_err(|_| bad())?
        }
    })
}

/// The attributes of a stored object of `class` (either format), keyed
/// by column name; NULLs are absent from format 1 and may be present as
/// `null` in JSON. Fields of columns the class no longer has are skipped.
pub fn decode(class: &ClassDef, bytes: &[u8]) -> Result<Map<String, Json>, RowError> {
    let retyped = class.columns.iter().any(|c| !c.converted.is_empty());
    let (mut out, layout) = if is_json(bytes) {
        let mut out = match serde_json::from_slice(bytes) {
            Ok(Json::Object(m)) => m,
            Ok(_) => return Err(corrupt("not a JSON object")),
            Err(e) => return Err(RowError::Corrupt(e.to_string())),
        };
        // Written before any lazy type change: in the oldest type.
        for c in class.columns.iter().filter(|c| !c.converted.is_empty()) {
            if let Some(v) = out.get(&c.name).filter(|v| !v.is_null()).cloned() {
                let oldest = c.converted.len() - 1;
                let value = converted_value(c, |id, _| {
                    Ok((id == c.converted[oldest].id).then(|| v.clone()))
                })?;
                out.insert(c.name.clone(), value.unwrap_or(Json::Null));
            }
        }
        (out, 0)
    } else {
        let mut out = Map::new();
        let fields = Fields::new(bytes)?;
        let layout = fields.layout();
        // Fields of earlier ids, kept for lazily retyped columns.
        let mut earlier: Vec<(u32, Field<'_>)> = Vec::new();
        for field in fields {
            let (id, f) = field?;
            if let Some(c) = class.columns.iter().find(|c| c.id == id) {
                out.insert(c.name.clone(), field_json(&c.ty, f)?);
            } else if retyped {
                earlier.push((id, f));
            }
        }
        if !earlier.is_empty() {
            for c in class.columns.iter().filter(|c| !c.converted.is_empty()) {
                if out.contains_key(&c.name) {
                    continue;
                }
                let value = converted_value(c, |id, ty| {
                    earlier
                        .iter()
                        .find(|(i, _)| *i == id)
                        .map(|(_, f)| field_json(ty, *f))
                        .transpose()
                })?;
                if let Some(v) = value {
                    out.insert(c.name.clone(), v);
                }
            }
        }
        (out, layout)
    };
    for c in filled_after(class, layout) {
        if let Some(fill) = &c.filled {
            out.entry(c.name.clone())
                .or_insert_with(|| fill.value.clone());
        }
    }
    Ok(out)
}

/// Whether every value of type `from` converts to `to` without error,
/// as an assignment cast does: a type change a deploy makes without
/// rewriting objects ([`crate::ColumnDef::converted`]).
pub fn converts_lazily(from: &SqlType, to: &SqlType) -> bool {
    use SqlType::*;
    matches!(
        (from, to),
        (Int8 | Int4 | Int2, Int8 | Float8)
            | (
                Int8 | Int4
                    | Int2
                    | Float8
                    | Float4
                    | Bool
                    | Numeric
                    | Date
                    | Timestamptz
                    | Timestamp,
                Text
            )
    )
}

/// `v` (canonical for a type `converts_lazily` converts to `to`) as a
/// canonical value of `to`: what an assignment cast gives (query's
/// `canonical::convert_value`, which a test holds this to).
pub fn convert_lazily(to: &SqlType, v: &Json) -> Json {
    match (to, v) {
        (SqlType::Text, Json::Number(_) | Json::Bool(_)) => Json::from(v.to_string()),
        (SqlType::Float8, Json::Number(n)) => n.as_f64().map_or(Json::Null, Json::from),
        _ => v.clone(),
    }
}

/// The value of a lazily retyped column `c` for an object that lacks its
/// field: the newest earlier field it holds (`earlier` finds a stored
/// field's value by id and type), converted type by type.
pub fn converted_value(
    c: &ColumnDef,
    mut earlier: impl FnMut(u32, &SqlType) -> Result<Option<Json>, RowError>,
) -> Result<Option<Json>, RowError> {
    for (k, was) in c.converted.iter().enumerate() {
        let Some(mut v) = earlier(was.id, &was.ty)? else {
            continue;
        };
        for later in c.converted[..k].iter().rev() {
            v = convert_lazily(&later.ty, &v);
        }
        return Ok(Some(convert_lazily(&c.ty, &v)));
    }
    Ok(None)
}

/// The columns an object written in `layout` reads its default in when
/// it lacks their field: those added (with a default, while the class
/// had objects) at a later layout.
pub fn filled_after(class: &ClassDef, layout: u32) -> impl Iterator<Item = &ColumnDef> {
    class
        .columns
        .iter()
        .filter(move |c| c.filled.as_ref().is_some_and(|f| f.layout > layout))
}

/// `v` (canonical for `c`'s type) encoded as a one-field object, so
/// readers that take fields ([`Fields`]) read it as a stored value.
pub fn value_field(c: &ColumnDef, v: &Json) -> Result<Vec<u8>, RowError> {
    let mut out = vec![FORMAT_V1];
    if !v.is_null() {
        encode_field(&mut out, c.id, &c.name, &c.ty, v)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class() -> ClassDef {
        let col = |id: u32, name: &str, ty: SqlType| ColumnDef::new(id, name, ty);
        ClassDef::new(
            7,
            "Thing",
            "thing",
            vec![
                col(1, "n", SqlType::Int8),
                col(2, "f", SqlType::Float8),
                col(3, "s", SqlType::Text),
                col(4, "b", SqlType::Bool),
                col(5, "price", SqlType::Numeric),
                col(6, "doc", SqlType::Jsonb),
                col(7, "tags", SqlType::Array(Box::new(SqlType::Text))),
                col(300, "far", SqlType::Int8),
            ],
        )
    }

    fn obj(v: Json) -> Map<String, Json> {
        match v {
            Json::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn round_trips_every_kind_of_value() {
        let c = class();
        for o in [
            serde_json::json!({"n": -3, "f": 1.5, "s": "a\"é", "b": true, "price": "100.50",
                "doc": {"x": [1, 2.50, null]}, "tags": ["a", null], "far": i64::MIN}),
            serde_json::json!({"n": i64::MAX, "f": "NaN", "b": false}),
            serde_json::json!({"f": "-Infinity", "s": ""}),
            serde_json::json!({}),
        ] {
            let m = obj(o);
            let bytes = encode(&c, &m).unwrap();
            assert_eq!(bytes[0], FORMAT_V1);
            let back = decode(&c, &bytes).unwrap();
            assert_eq!(Json::Object(back), Json::Object(m.clone()));
            // Deterministic: the same object, the same bytes.
            assert_eq!(encode(&c, &decode(&c, &bytes).unwrap()).unwrap(), bytes);
        }
    }

    #[test]
    fn nulls_are_absent_and_small_values_are_small() {
        let c = class();
        let bytes = encode(&c, &obj(serde_json::json!({"n": 5, "s": null, "b": true}))).unwrap();
        // version, (tag, 5), (tag, 1)
        assert_eq!(bytes, vec![FORMAT_V1, 1 << 3, 10, 4 << 3, 1]);
        assert_eq!(
            Json::Object(decode(&c, &bytes).unwrap()),
            serde_json::json!({"n": 5, "b": true})
        );
    }

    #[test]
    fn json_objects_still_decode_and_unknown_columns_are_skipped() {
        let c = class();
        let legacy = br#"{"n":1,"s":"x","gone":2}"#;
        assert_eq!(
            Json::Object(decode(&c, legacy).unwrap()),
            serde_json::json!({"n": 1, "s": "x", "gone": 2})
        );
        // A field of a column the class no longer has (id 9) is skipped.
        let mut bytes = vec![FORMAT_V1];
        write_bytes(&mut bytes, (9 << 3) | WIRE_BYTES, b"old");
        write_varint(&mut bytes, 1 << 3);
        write_varint(&mut bytes, zigzag(-2));
        assert_eq!(
            Json::Object(decode(&c, &bytes).unwrap()),
            serde_json::json!({"n": -2})
        );
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let c = class();
        for bad in [
            &[][..],
            &[9][..],
            &[FORMAT_V1, 1 << 3][..],
            &[FORMAT_V1, 1 << 3, 0x80][..],
            &[FORMAT_V1, (3 << 3) | 2, 5, b'a'][..],
            &[FORMAT_V1, (2 << 3) | 1, 0, 0][..],
            &[FORMAT_V1, (1 << 3) | 5][..],
            &[
                FORMAT_V1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ][..],
            // a text column stored as a varint
            &[FORMAT_V1, 3 << 3, 1][..],
        ] {
            assert!(decode(&c, bad).is_err(), "{bad:?}");
        }
        assert!(encode(&c, &obj(serde_json::json!({"n": "x"}))).is_err());
        assert!(encode(&c, &obj(serde_json::json!({"nope": 1}))).is_err());
        assert!(encode(&c, &obj(serde_json::json!({"f": "1.5"}))).is_err());
        let mut no_ids = c.clone();
        no_ids.columns[0].id = 0;
        assert!(encode(&no_ids, &obj(serde_json::json!({"n": 1}))).is_err());
    }

    #[test]
    fn varints_and_zigzag_round_trip() {
        for v in [0i64, 1, -1, 63, -64, 64, 1 << 40, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            write_varint(&mut out, zigzag(v));
            let mut slice = &out[..];
            assert_eq!(unzigzag(read_varint(&mut slice).unwrap()), v);
            assert!(slice.is_empty());
        }
    }
}
