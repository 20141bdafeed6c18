//! Stored objects decoded straight into Arrow columns for class scans.
//!
//! Only the columns the plan asks for are built. An object in the binary
//! row format (`amber_catalog::row`) goes field by field into its column
//! builders: a field's column id indexes a table of projected columns, and
//! bigint, double, text and boolean values are appended without any
//! intermediate value. Objects written before that format (JSON keyed by
//! column name) are read with a streaming JSON visitor into the same
//! builders. Other types go through their canonical JSON value and
//! `convert::json_column`.

use crate::convert;
use crate::error::SqlError;
use amber_catalog::row::{self, Field, Fields};
use amber_catalog::{ClassDef, ColumnDef, ModuleDef, SqlType};
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// Where one column's values go.
enum Sink {
    Int(Int64Builder),
    Float(Float64Builder),
    Text(StringBuilder),
    Bool(BooleanBuilder),
    /// Any other type: its JSON values, converted at the end.
    Json(Vec<Json>),
}

impl Sink {
    fn for_column(t: &SqlType, dt: &DataType, rows: usize) -> Sink {
        match (t, dt) {
            // Narrow types are built wide and cast once at the end.
            (SqlType::Int8 | SqlType::Ref(_), DataType::Int64)
            | (SqlType::Int4, DataType::Int32)
            | (SqlType::Int2, DataType::Int16) => Sink::Int(Int64Builder::with_capacity(rows)),
            (SqlType::Float8, DataType::Float64) | (SqlType::Float4, DataType::Float32) => {
                Sink::Float(Float64Builder::with_capacity(rows))
            }
            (SqlType::Text, DataType::Utf8) => {
                Sink::Text(StringBuilder::with_capacity(rows, rows * 8))
            }
            (SqlType::Bool, DataType::Boolean) => Sink::Bool(BooleanBuilder::with_capacity(rows)),
            _ => Sink::Json(Vec::with_capacity(rows)),
        }
    }

    fn push_null(&mut self) {
        match self {
            Sink::Int(b) => b.append_null(),
            Sink::Float(b) => b.append_null(),
            Sink::Text(b) => b.append_null(),
            Sink::Bool(b) => b.append_null(),
            Sink::Json(v) => v.push(Json::Null),
        }
    }

    /// Appends one binary-format field of type `t`.
    fn push_field(&mut self, t: &SqlType, f: Field<'_>) -> Result<(), row::RowError> {
        let bad = || row::RowError::Corrupt(format!("a {} field of the wrong kind", t.pg_name()));
        match self {
            Sink::Int(b) => b.append_value(f.as_i64().ok_or_else(bad)?),
            Sink::Float(b) => b.append_value(f.as_f64().ok_or_else(bad)?),
            Sink::Text(b) => b.append_value(f.as_str().ok_or_else(bad)?),
            Sink::Bool(b) => b.append_value(f.as_bool().ok_or_else(bad)?),
            Sink::Json(v) => v.push(row::field_json(t, f)?),
        }
        Ok(())
    }
}

/// A wide built column (Int64, Float64) in its column's Arrow type
/// (Int32, Int16, Float32): every stored value fits, writes check ranges.
fn narrow(wide: ArrayRef, dt: &DataType) -> Result<ArrayRef, SqlError> {
    if wide.data_type() == dt {
        return Ok(wide);
    }
    datafusion::arrow::compute::cast(&wide, dt)
        .map_err(|e| SqlError::new("XX000", format!("corrupt stored value: {e}")))
}

/// One projected attribute column.
struct Column {
    ty: SqlType,
    dt: DataType,
    sink: Sink,
    /// Rows given a value so far (the rest are NULL): a row that leaves
    /// it behind the decoder's count gets a NULL appended.
    filled: usize,
}

impl Column {
    /// Gives row `row` the value of `field`, a one-field object
    /// (`row::value_field`): a default or a converted value the object
    /// does not hold in its own bytes. An empty object leaves it NULL.
    fn push_one_field(&mut self, field: &[u8], row: usize) -> Result<(), row::RowError> {
        for stored in Fields::new(field)? {
            let (_, f) = stored?;
            self.sink.push_field(&self.ty, f)?;
            self.filled = row + 1;
        }
        Ok(())
    }
}

/// Attribute name -> index of its projected column. Few columns (the common
/// projection) are found by comparing names, which is faster than hashing
/// them; many by a hash map.
enum Slots<'n> {
    Few(Vec<(&'n str, usize)>),
    Many(HashMap<&'n str, usize>),
}

/// Projections up to this many columns use [`Slots::Few`].
const FEW_SLOTS_MAX: usize = 12;

impl Slots<'_> {
    fn get(&self, key: &str) -> Option<usize> {
        match self {
            Slots::Few(v) => v.iter().find(|(n, _)| *n == key).map(|(_, i)| *i),
            Slots::Many(m) => m.get(key).copied(),
        }
    }
}

/// For the objects of one stored class (the scanned class or a
/// subclass): column id -> index of its projected column.
struct IdSlots {
    class_id: u64,
    slots: Vec<Option<usize>>,
    /// Projected columns an older object reads a default in
    /// (`row::filled_after`): the column's index, the layout it was added
    /// at, and its default as a one-field object.
    fills: Vec<(usize, u32, Vec<u8>)>,
    /// Projected columns retyped lazily (`ColumnDef::converted`): the
    /// column's index and its definition (its earlier ids and types).
    retyped: Vec<(usize, ColumnDef)>,
}

/// Decodes stored objects, one at a time, into the columns of a class
/// table's schema (`id` unless hidden, then the class's columns) projected to
/// `projection`.
pub struct Decoder<'c> {
    module: &'c ModuleDef,
    class: &'c ClassDef,
    projected: SchemaRef,
    ids: Option<Int64Builder>,
    columns: Vec<Column>,
    slots: Slots<'c>,
    /// One entry per stored class met so far (few: a class and its
    /// subclasses).
    id_slots: Vec<IdSlots>,
    /// Output position -> `None` for `id`, else the index into `columns`.
    order: Vec<Option<usize>>,
    seen: Vec<bool>,
    rows: usize,
}

/// An object as read from storage: its stored class id, its id, its bytes.
pub type Stored = (u64, u64, Vec<u8>);

/// The batch of `objects` (of `class` or a subclass its table holds) in
/// the columns of the class table's `schema` projected to `projection`.
pub fn decode_batch(
    module: &ModuleDef,
    class: &ClassDef,
    schema: &SchemaRef,
    projection: Option<&[usize]>,
    objects: &[Stored],
) -> Result<(SchemaRef, RecordBatch), SqlError> {
    let mut decoder = Decoder::new(module, class, schema, projection, objects.len())?;
    for (cid, oid, bytes) in objects {
        decoder.push(*cid, *oid, bytes)?;
    }
    decoder.finish()
}

impl<'c> Decoder<'c> {
    pub fn new(
        module: &'c ModuleDef,
        class: &'c ClassDef,
        schema: &SchemaRef,
        projection: Option<&[usize]>,
        capacity: usize,
    ) -> Result<Decoder<'c>, SqlError> {
        let all: Vec<usize> = (0..schema.fields().len()).collect();
        let projection = projection.unwrap_or(&all);
        let projected = Arc::new(
            schema
                .project(projection)
                .map_err(|e| SqlError::internal(e.to_string()))?,
        );
        let mut ids = None;
        let mut columns: Vec<Column> = Vec::new();
        let mut names: Vec<(&'c str, usize)> = Vec::new();
        let mut order = Vec::with_capacity(projection.len());
        let id_first = crate::table::id_first(class, schema);
        for &field in projection {
            if id_first && field == 0 {
                ids = Some(Int64Builder::with_capacity(capacity));
                order.push(None);
                continue;
            }
            let col = class
                .columns
                .get(field - usize::from(id_first))
                .ok_or_else(|| SqlError::internal("projection beyond the class's columns"))?;
            let dt = schema.field(field).data_type().clone();
            names.push((col.name.as_str(), columns.len()));
            order.push(Some(columns.len()));
            columns.push(Column {
                sink: Sink::for_column(&col.ty, &dt, capacity),
                ty: col.ty.clone(),
                dt,
                filled: 0,
            });
        }
        let slots = if names.len() <= FEW_SLOTS_MAX {
            Slots::Few(names)
        } else {
            Slots::Many(names.into_iter().collect())
        };
        Ok(Decoder {
            module,
            class,
            projected,
            ids,
            seen: vec![false; columns.len()],
            columns,
            slots,
            id_slots: Vec::new(),
            order,
            rows: 0,
        })
    }

    /// The index into `id_slots` of stored class `class_id`, built the
    /// first time it is met (its columns matched to ours by name).
    fn id_slots_of(&mut self, class_id: u64) -> Result<usize, SqlError> {
        if let Some(i) = self.id_slots.iter().position(|s| s.class_id == class_id) {
            return Ok(i);
        }
        let stored = if class_id == self.class.id {
            self.class
        } else {
            self.module
                .class_by_id(class_id)
                .ok_or_else(|| SqlError::internal(format!("object of unknown class {class_id}")))?
        };
        let top = stored.columns.iter().map(|c| c.id).max().unwrap_or(0);
        if top > row::COLUMN_ID_MAX {
            return Err(SqlError::new(
                "XX001",
                format!("class {} has column id {top}", stored.name),
            ));
        }
        let mut slots = vec![None; top as usize + 1];
        let mut fills = Vec::new();
        let mut retyped = Vec::new();
        for c in &stored.columns {
            let slot = self.slots.get(&c.name);
            slots[c.id as usize] = slot;
            if let (Some(i), false) = (slot, c.converted.is_empty()) {
                retyped.push((i, c.clone()));
            }
            if let (Some(i), Some(fill)) = (slot, &c.filled) {
                let field = row::value_field(c, &fill.value)
                    .map_err(|e| SqlError::internal(e.to_string()))?;
                fills.push((i, fill.layout, field));
            }
        }
        self.id_slots.push(IdSlots {
            class_id,
            slots,
            fills,
            retyped,
        });
        Ok(self.id_slots.len() - 1)
    }

    /// Appends one object of stored class `class_id` (the scanned class or
    /// a subclass).
    pub fn push(&mut self, class_id: u64, oid: u64, bytes: &[u8]) -> Result<(), SqlError> {
        if row::is_json(bytes) && !self.columns.is_empty() {
            let at = self.id_slots_of(class_id)?;
            if !self.id_slots[at].retyped.is_empty() {
                // Its values are of types since changed: converted as
                // `row::decode` converts them, then read as a stored row.
                let stored = match class_id == self.class.id {
                    true => self.class,
                    false => self.module.class_by_id(class_id).ok_or_else(|| {
                        SqlError::internal(format!("object of unknown class {class_id}"))
                    })?,
                };
                let corrupt =
                    |e: row::RowError| SqlError::new("XX001", format!("corrupt object {oid}: {e}"));
                let mut obj = row::decode(stored, bytes).map_err(corrupt)?;
                obj.retain(|k, _| stored.columns.iter().any(|c| &c.name == k));
                let rewritten = row::encode(stored, &obj).map_err(corrupt)?;
                return self.push(class_id, oid, &rewritten);
            }
        }
        if let Some(b) = self.ids.as_mut() {
            let id =
                i64::try_from(oid).map_err(|_| SqlError::internal("object id out of range"))?;
            b.append_value(id);
        }
        let row = self.rows;
        self.rows += 1;
        if self.columns.is_empty() {
            return Ok(());
        }
        let corrupt =
            |e: &dyn fmt::Display| SqlError::new("XX001", format!("corrupt object {oid}: {e}"));
        let at = match self.id_slots.first() {
            Some(s) if s.class_id == class_id => 0,
            _ => self.id_slots_of(class_id)?,
        };
        if row::is_json(bytes) {
            return self.push_json(oid, bytes, at);
        }
        let slots = &self.id_slots[at].slots;
        let retyped = !self.id_slots[at].retyped.is_empty();
        let fields = Fields::new(bytes).map_err(|e| corrupt(&e))?;
        let layout = fields.layout();
        // Fields of earlier ids of lazily retyped columns (older objects).
        let mut earlier: Vec<(u32, row::Field<'_>)> = Vec::new();
        for field in fields {
            let (id, f) = field.map_err(|e| corrupt(&e))?;
            let Some(&Some(i)) = slots.get(id as usize) else {
                if retyped {
                    earlier.push((id, f));
                }
                continue;
            };
            let c = &mut self.columns[i];
            if c.filled != row {
                return Err(corrupt(&format_args!("column id {id} twice")));
            }
            c.sink.push_field(&c.ty, f).map_err(|e| corrupt(&e))?;
            c.filled = row + 1;
        }
        if !earlier.is_empty() {
            self.push_converted(at, &earlier, row)
                .map_err(|e| corrupt(&e))?;
        }
        self.push_fills(at, layout, row).map_err(|e| corrupt(&e))?;
        for c in &mut self.columns {
            if c.filled == row {
                c.sink.push_null();
                c.filled = row + 1;
            }
        }
        Ok(())
    }

    /// The values of lazily retyped columns whose field an older object
    /// holds under an earlier id (row `row` not filled yet), converted.
    fn push_converted(
        &mut self,
        at: usize,
        earlier: &[(u32, row::Field<'_>)],
        row: usize,
    ) -> Result<(), row::RowError> {
        let Decoder {
            id_slots, columns, ..
        } = self;
        for (i, def) in &id_slots[at].retyped {
            let c = &mut columns[*i];
            if c.filled != row {
                continue;
            }
            let value = row::converted_value(def, |id, ty| {
                earlier
                    .iter()
                    .find(|(e, _)| *e == id)
                    .map(|(_, f)| row::field_json(ty, *f))
                    .transpose()
            })?;
            let Some(value) = value else { continue };
            c.push_one_field(&row::value_field(def, &value)?, row)?;
        }
        Ok(())
    }

    /// The defaults an object of `layout` reads in columns added after it
    /// whose field it lacks (row `row` not filled yet).
    fn push_fills(&mut self, at: usize, layout: u32, row: usize) -> Result<(), row::RowError> {
        let Decoder {
            id_slots, columns, ..
        } = self;
        for (i, added, field) in &id_slots[at].fills {
            let c = &mut columns[*i];
            if *added <= layout || c.filled != row {
                continue;
            }
            c.push_one_field(field, row)?;
        }
        Ok(())
    }

    /// Appends the attributes of an object stored as JSON (before format 1).
    fn push_json(&mut self, oid: u64, bytes: &[u8], at: usize) -> Result<(), SqlError> {
        self.seen.iter_mut().for_each(|s| *s = false);
        let mut de = serde_json::Deserializer::from_slice(bytes);
        ObjectSeed {
            slots: &self.slots,
            columns: &mut self.columns,
            seen: &mut self.seen,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| SqlError::new("XX001", format!("corrupt object {oid}: {e}")))?;
        // A JSON object is of the first layout; `filled` marks the columns
        // it held, so its missing ones read their filled defaults.
        let row = self.rows - 1;
        for (c, s) in self.columns.iter_mut().zip(&self.seen) {
            c.filled = if *s { self.rows } else { row };
        }
        self.push_fills(at, 0, row)
            .map_err(|e| SqlError::new("XX001", format!("corrupt object {oid}: {e}")))?;
        for c in &mut self.columns {
            if c.filled == row {
                c.sink.push_null();
            }
            c.filled = self.rows;
        }
        Ok(())
    }

    /// The projected schema and the batch of every object pushed.
    pub fn finish(mut self) -> Result<(SchemaRef, RecordBatch), SqlError> {
        let mut built: Vec<Option<ArrayRef>> = Vec::with_capacity(self.columns.len());
        for c in self.columns {
            built.push(Some(match c.sink {
                Sink::Int(mut b) => narrow(Arc::new(b.finish()), &c.dt)?,
                Sink::Float(mut b) => narrow(Arc::new(b.finish()), &c.dt)?,
                Sink::Text(mut b) => Arc::new(b.finish()),
                Sink::Bool(mut b) => Arc::new(b.finish()),
                Sink::Json(values) => {
                    let refs: Vec<&Json> = values.iter().collect();
                    convert::json_column(&c.ty, &c.dt, &refs)?
                }
            }));
        }
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.order.len());
        for o in self.order {
            arrays.push(match o {
                None => match self.ids.as_mut() {
                    Some(b) => Arc::new(b.finish()),
                    None => return Err(SqlError::internal("id column missing")),
                },
                Some(i) => built
                    .get_mut(i)
                    .and_then(Option::take)
                    .ok_or_else(|| SqlError::internal("column built twice"))?,
            });
        }
        let batch = RecordBatch::try_new_with_options(
            self.projected.clone(),
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(self.rows)),
        )
        .map_err(|e| SqlError::internal(e.to_string()))?;
        Ok((self.projected, batch))
    }
}

/// One stored object: a JSON map whose wanted keys go to their sinks.
struct ObjectSeed<'a, 'n> {
    slots: &'a Slots<'n>,
    columns: &'a mut [Column],
    seen: &'a mut [bool],
}

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a stored object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Bounded by the object's size: each entry is read once.
        while let Some(slot) = map.next_key_seed(KeySeed { slots: self.slots })? {
            match slot {
                Some(i) if !self.seen[i] => {
                    self.seen[i] = true;
                    map.next_value_seed(ValueSeed {
                        sink: &mut self.columns[i].sink,
                    })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A key: the index of its column if the scan wants it.
struct KeySeed<'a, 'n> {
    slots: &'a Slots<'n>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_, '_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_, '_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an attribute name")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.slots.get(key))
    }
}

/// One wanted value, appended to its column.
struct ValueSeed<'a> {
    sink: &'a mut Sink,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        match self.sink {
            Sink::Int(b) => b.append_option(Option::<i64>::deserialize(d)?),
            Sink::Float(b) => {
                let v = Json::deserialize(d)?;
                let f = match &v {
                    Json::Null => None,
                    Json::String(s) => convert::parse_float_special(s),
                    _ => v.as_f64(),
                };
                if f.is_none() && !v.is_null() {
                    return Err(serde::de::Error::custom(format!(
                        "{v} is not a double precision"
                    )));
                }
                b.append_option(f);
            }
            Sink::Bool(b) => b.append_option(Option::<bool>::deserialize(d)?),
            Sink::Text(b) => d.deserialize_option(TextVisitor { builder: b })?,
            Sink::Json(v) => v.push(Json::deserialize(d)?),
        }
        Ok(())
    }
}

/// A text value or null, appended without an owned copy when the stored
/// string has no escapes.
struct TextVisitor<'a> {
    builder: &'a mut StringBuilder,
}

impl<'de> Visitor<'de> for TextVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or null")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.builder.append_null();
        Ok(())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.builder.append_null();
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<(), E> {
        self.builder.append_value(s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact::ExactNumeric;
    use datafusion::arrow::array::{Array, BooleanArray, Int64Array, StringArray};

    /// The batch of `objects` (`(object id, stored bytes)` pairs of
    /// `class`), as [`Decoder`] builds it.
    fn objects_to_batch(
        class: &ClassDef,
        schema: &SchemaRef,
        projection: Option<&[usize]>,
        objects: &[(u64, Vec<u8>)],
    ) -> Result<(SchemaRef, RecordBatch), SqlError> {
        let module = ModuleDef {
            name: "m".into(),
            version: 1,
            generation: 1,
            source: String::new(),
            sql_defined: false,
            deployed_at: String::new(),
            oid: 0,
            shape: amber_catalog::ModuleShape {
                classes: vec![class.clone()],
                functions: vec![],
                globals: vec![],
                views: vec![],
                comment: None,
            },
        };
        let mut d = Decoder::new(&module, class, schema, projection, objects.len())?;
        for (oid, bytes) in objects {
            d.push(class.id, *oid, bytes)?;
        }
        d.finish()
    }

    fn class() -> ClassDef {
        let mut c: ClassDef = serde_json::from_value(serde_json::json!({
            "id": 5, "name": "T", "table": "t", "parent": null, "methods": [],
            "columns": [
                {"name": "n", "type": "int", "nullable": true, "has_default": false},
                {"name": "s", "type": "str", "nullable": true, "has_default": false},
                {"name": "b", "type": "bool", "nullable": true, "has_default": false},
                {"name": "f", "type": "float", "nullable": true, "has_default": false},
            ]
        }))
        .unwrap();
        c.assign_column_ids(None);
        c
    }

    /// Objects as an older Amber stored them: JSON keyed by name, NULLs
    /// absent or `null`, an attribute the class no longer has.
    fn json_objects() -> Vec<(u64, Vec<u8>)> {
        vec![
            (7, br#"{"b":true,"f":1.5,"n":-3,"s":"a\"\u00e9"}"#.to_vec()),
            (9, br#"{"n":null,"s":null}"#.to_vec()),
            (
                11,
                br#"{"extra":[1,{"x":2}],"n":12345678901234,"f":"NaN","s":"plain"}"#.to_vec(),
            ),
        ]
    }

    /// The same objects in the binary row format.
    fn as_rows(class: &ClassDef, objects: &[(u64, Vec<u8>)]) -> Vec<(u64, Vec<u8>)> {
        objects
            .iter()
            .map(|(oid, json)| {
                let mut m: serde_json::Map<String, Json> = serde_json::from_slice(json).unwrap();
                m.retain(|k, _| class.columns.iter().any(|c| &c.name == k));
                (*oid, row::encode(class, &m).unwrap())
            })
            .collect()
    }

    #[test]
    fn binary_rows_decode_as_json_objects_do() {
        let class = class();
        let schema = crate::table::class_schema(&class, &ExactNumeric::none());
        let objects = json_objects();
        let rows = as_rows(&class, &objects);
        assert!(rows.iter().all(|(_, b)| b[0] == row::FORMAT_V1));
        for projection in [None, Some(&[4, 2, 0][..]), Some(&[3][..]), Some(&[][..])] {
            let (_, from_json) = objects_to_batch(&class, &schema, projection, &objects).unwrap();
            let (_, from_rows) = objects_to_batch(&class, &schema, projection, &rows).unwrap();
            assert_eq!(from_json, from_rows);
            assert_eq!(from_rows.num_rows(), 3);
        }
        // A corrupt row is an error (XX001), not a wrong answer.
        let mut bad = rows.clone();
        bad[1].1.push(0x80);
        let e = objects_to_batch(&class, &schema, None, &bad).unwrap_err();
        assert_eq!(e.code, "XX001");
        let kind = vec![(1, vec![row::FORMAT_V1, 2 << 3, 1])]; // s (id 2) as a varint (wire 0)
        assert!(objects_to_batch(&class, &schema, None, &kind).is_err());
    }

    /// A column added with a default while objects existed: objects of an
    /// older layout (JSON, format 1, format 2 of the layout before) read
    /// the default where they lack the field; one written in the current
    /// layout reads its own NULL. `row::decode` (Python's reads) agrees.
    #[test]
    fn older_objects_read_a_filled_default() {
        let mut class = class();
        let mut added = amber_catalog::ColumnDef::new(9, "k", amber_catalog::SqlType::Int8);
        added.nullable = true;
        added.filled = Some(amber_catalog::Filled {
            layout: 2,
            value: Json::from(42),
        });
        class.columns.push(added);
        let schema = crate::table::class_schema(&class, &ExactNumeric::none());
        let mut older = class.clone();
        older.layout = 1;
        let mut current = class.clone();
        current.layout = 2;
        let n = |v: i64| serde_json::json!({ "n": v });
        let obj = |v: Json| match v {
            Json::Object(m) => m,
            _ => unreachable!(),
        };
        let objects = vec![
            (1, br#"{"n":1}"#.to_vec()),
            (2, row::encode(&class, &obj(n(2))).unwrap()),
            (3, row::encode(&older, &obj(n(3))).unwrap()),
            (4, row::encode(&current, &obj(n(4))).unwrap()),
            (
                5,
                row::encode(&current, &obj(serde_json::json!({"n": 5, "k": 7}))).unwrap(),
            ),
            (6, br#"{"n":6,"k":8}"#.to_vec()),
        ];
        assert_eq!(objects[3].1[0], row::FORMAT_V2);
        let (_, batch) = objects_to_batch(&class, &schema, Some(&[5, 1]), &objects).unwrap();
        let k = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        let got: Vec<Option<i64>> = k.iter().collect();
        assert_eq!(got, [Some(42), Some(42), Some(42), None, Some(7), Some(8)]);
        let decoded: Vec<Json> = objects
            .iter()
            .map(|(_, b)| {
                row::decode(&class, b)
                    .unwrap()
                    .get("k")
                    .cloned()
                    .unwrap_or(Json::Null)
            })
            .collect();
        assert_eq!(
            decoded,
            [42, 42, 42, -1, 7, 8].map(|v| if v < 0 { Json::Null } else { Json::from(v) })
        );
    }

    #[test]
    fn decodes_projected_columns_like_the_json_path() {
        let class = class();
        let schema = crate::table::class_schema(&class, &ExactNumeric::none());
        let objects = json_objects();
        let (s, batch) = objects_to_batch(&class, &schema, Some(&[2, 0, 1, 4]), &objects).unwrap();
        assert_eq!(s.fields().len(), 4);
        let text = batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(text.value(0), "a\"é");
        assert!(text.is_null(1));
        assert_eq!(text.value(2), "plain");
        let ids = batch
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(ids.values(), &[7, 9, 11]);
        let n = batch
            .column(2)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(
            (n.value(0), n.is_null(1), n.value(2)),
            (-3, true, 12345678901234)
        );
        let f = batch
            .column(3)
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Float64Array>()
            .unwrap();
        assert_eq!(f.value(0), 1.5);
        assert!(f.is_null(1) && f.value(2).is_nan());
        // Nothing projected (count(*)): rows without columns.
        let (_, empty) = objects_to_batch(&class, &schema, Some(&[]), &objects).unwrap();
        assert_eq!(empty.num_rows(), 3);
        let (_, b) = objects_to_batch(&class, &schema, Some(&[3]), &objects).unwrap();
        let b = b.column(0).as_any().downcast_ref::<BooleanArray>().unwrap();
        assert!(b.value(0) && b.is_null(1));
        // A value of the wrong shape is an error, not a wrong answer.
        let bad = vec![(1, br#"{"n":"x"}"#.to_vec())];
        assert!(objects_to_batch(&class, &schema, None, &bad).is_err());
    }
}
