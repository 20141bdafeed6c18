//! Conversions between the catalog's JSON value encoding, Arrow arrays and
//! DataFusion scalars.

use crate::error::SqlError;
use crate::value::datetime::{self, Zone};
use crate::value::numeric::Numeric;
use crate::value::{self, types, Settings};
use amber_catalog::SqlType;
use datafusion::arrow::array::{
    Array, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Float64Builder, Int64Builder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::Arc;

/// Decimal columns are fixed precision in Arrow; PostgreSQL's numeric is
/// arbitrary. Computations run at 38 digits with 10 after the point
/// (money and most measurements); stored values keep every digit and their
/// own scale (see `exact.rs` for when SQL reads them as exact text).
pub const NUMERIC_PRECISION: u8 = 38;
pub const NUMERIC_SCALE: i8 = 10;
pub use crate::value::types::PG_TYPE_KEY;

pub fn arrow_type(t: &SqlType) -> DataType {
    match t {
        SqlType::Int8 | SqlType::Ref(_) => DataType::Int64,
        SqlType::Int4 => DataType::Int32,
        SqlType::Int2 => DataType::Int16,
        SqlType::Float8 => DataType::Float64,
        SqlType::Float4 => DataType::Float32,
        SqlType::Text | SqlType::Jsonb => DataType::Utf8,
        SqlType::Bool => DataType::Boolean,
        SqlType::Bytea => DataType::Binary,
        SqlType::Numeric => DataType::Decimal128(NUMERIC_PRECISION, NUMERIC_SCALE),
        SqlType::Date => DataType::Date32,
        SqlType::Timestamptz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        SqlType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        SqlType::Array(inner) => {
            DataType::List(Arc::new(Field::new("item", arrow_type(inner), true)))
        }
    }
}

pub fn field(name: &str, t: &SqlType, nullable: bool) -> Field {
    let f = Field::new(name, arrow_type(t), nullable);
    if matches!(t, SqlType::Jsonb) {
        with_pg_type(f, "jsonb")
    } else {
        f
    }
}

/// As [`field`], but a numeric column holds the exact stored text (Utf8,
/// described as numeric), so it prints exactly as stored (`100.50`).
pub fn exact_field(name: &str, t: &SqlType, nullable: bool) -> Field {
    if matches!(t, SqlType::Numeric) {
        with_pg_type(Field::new(name, DataType::Utf8, nullable), "numeric")
    } else {
        field(name, t, nullable)
    }
}

/// The Arrow type a column computes as: its type's, but a `numeric(p,s)`
/// with p <= 38 is Decimal128(p, s) (DataFusion then types its sums and
/// products with PostgreSQL's scales).
pub fn column_arrow_type(col: &amber_catalog::ColumnDef) -> DataType {
    match (&col.ty, &col.declared) {
        (SqlType::Numeric, Some(amber_catalog::Declared::Numeric { precision, scale })) => {
            match (u8::try_from(*precision), i8::try_from(*scale)) {
                (Ok(p), Ok(s)) if p <= NUMERIC_PRECISION => DataType::Decimal128(p, s),
                _ => arrow_type(&col.ty),
            }
        }
        _ => arrow_type(&col.ty),
    }
}

/// The wire type of a column: its type's, but `varchar(n)` and `char(n)`
/// columns are `varchar` and `bpchar` (computed as Utf8 like text).
pub fn declared_field(f: Field, declared: Option<&amber_catalog::Declared>) -> Field {
    let Some(d) = declared else {
        return f;
    };
    let f = match d {
        amber_catalog::Declared::Varchar { .. } => with_pg_type(f, "varchar"),
        amber_catalog::Declared::Char { .. } => with_pg_type(f, "bpchar"),
        amber_catalog::Declared::Numeric { .. } => f,
    };
    let mut m = f.metadata().clone();
    m.insert(types::PG_TYPMOD_KEY.to_string(), d.typmod().to_string());
    f.with_metadata(m)
}

/// The type oid and typmod of column `col` (pg_attribute's atttypid and
/// atttypmod).
pub fn column_type(col: &amber_catalog::ColumnDef) -> (u32, i32) {
    use amber_catalog::Declared;
    match &col.declared {
        None => (type_oid(&col.ty), -1),
        Some(d) => (
            match d {
                Declared::Varchar { .. } => types::VARCHAR,
                Declared::Char { .. } => types::BPCHAR,
                Declared::Numeric { .. } => types::NUMERIC,
            },
            d.typmod(),
        ),
    }
}

fn with_pg_type(f: Field, pg: &str) -> Field {
    f.with_metadata(HashMap::from([(PG_TYPE_KEY.to_string(), pg.to_string())]))
}

/// The wire type oid of values of `t`: the type table's for its Arrow
/// type, but jsonb (which Arrow computes as Utf8) is jsonb.
pub fn type_oid(t: &SqlType) -> u32 {
    match t {
        SqlType::Jsonb => types::JSONB,
        SqlType::Array(inner) => {
            types::array_of(type_oid(inner)).unwrap_or(types::oid_of(&arrow_type(t)))
        }
        _ => types::oid_of(&arrow_type(t)),
    }
}

fn bad(what: &str, v: &Json) -> SqlError {
    SqlError::new("XX000", format!("corrupt stored {what} value: {v}"))
}

/// Builds one Arrow column of type `dt` from JSON values of type `t`
/// (`dt` is `arrow_type(t)`, or Utf8 for a numeric read as exact text).
pub fn json_column(t: &SqlType, dt: &DataType, values: &[&Json]) -> Result<ArrayRef, SqlError> {
    Ok(match t {
        SqlType::Int8 | SqlType::Ref(_) => {
            let mut b = Int64Builder::with_capacity(values.len());
            for v in values {
                match v {
                    Json::Null => b.append_null(),
                    v => b.append_value(v.as_i64().ok_or_else(|| bad("bigint", v))?),
                }
            }
            Arc::new(b.finish())
        }
        SqlType::Int4 | SqlType::Int2 | SqlType::Float4 => {
            // Computed in their own width: the wide column, cast (every
            // stored value fits: writes are range-checked).
            let wide = if matches!(t, SqlType::Float4) {
                SqlType::Float8
            } else {
                SqlType::Int8
            };
            let column = json_column(&wide, &arrow_type(&wide), values)?;
            datafusion::arrow::compute::cast(&column, &arrow_type(t))
                .map_err(|e| bad(&t.pg_name(), &Json::from(e.to_string())))?
        }
        SqlType::Float8 => {
            let mut b = Float64Builder::with_capacity(values.len());
            for v in values {
                match v {
                    Json::Null => b.append_null(),
                    Json::String(s) => {
                        b.append_value(parse_float_special(s).ok_or_else(|| bad("float", v))?)
                    }
                    v => b.append_value(v.as_f64().ok_or_else(|| bad("float", v))?),
                }
            }
            Arc::new(b.finish())
        }
        SqlType::Text => {
            let mut b = StringBuilder::new();
            for v in values {
                match v {
                    Json::Null => b.append_null(),
                    Json::String(s) => b.append_value(s),
                    v => return Err(bad("text", v)),
                }
            }
            Arc::new(b.finish())
        }
        SqlType::Jsonb => {
            let mut b = StringBuilder::new();
            for v in values {
                match v {
                    Json::Null => b.append_null(),
                    v => b.append_value(v.to_string()),
                }
            }
            Arc::new(b.finish())
        }
        SqlType::Bool => {
            let mut b = BooleanBuilder::with_capacity(values.len());
            for v in values {
                match v {
                    Json::Null => b.append_null(),
                    v => b.append_value(v.as_bool().ok_or_else(|| bad("boolean", v))?),
                }
            }
            Arc::new(b.finish())
        }
        SqlType::Bytea => {
            let mut b = BinaryBuilder::new();
            for v in values {
                match v {
                    Json::Null => b.append_null(),
                    Json::String(s) => {
                        b.append_value(hex_decode(s).ok_or_else(|| bad("bytea", v))?)
                    }
                    v => return Err(bad("bytea", v)),
                }
            }
            Arc::new(b.finish())
        }
        SqlType::Numeric if *dt == DataType::Utf8 => {
            let mut b = StringBuilder::new();
            for v in values {
                match v {
                    Json::Null => b.append_null(),
                    Json::String(s) => {
                        let n = Numeric::parse(s).map_err(|_| bad("numeric", v))?;
                        b.append_value(n.to_string())
                    }
                    v => return Err(bad("numeric", v)),
                }
            }
            Arc::new(b.finish())
        }
        SqlType::Numeric => {
            // A numeric(p,s) column computes at its own scale (`dt`), so
            // its sums print as PostgreSQL prints them.
            let (precision, scale) = match dt {
                DataType::Decimal128(p, s) => (*p, *s),
                _ => (NUMERIC_PRECISION, NUMERIC_SCALE),
            };
            let mut b = Decimal128Builder::with_capacity(values.len())
                .with_precision_and_scale(precision, scale)
                .map_err(|e| SqlError::internal(e.to_string()))?;
            for v in values {
                match v {
                    Json::Null => b.append_null(),
                    Json::String(s) => b.append_value(
                        Numeric::parse(s)
                            .ok()
                            .and_then(|n| n.to_i128(precision, scale))
                            .ok_or_else(|| numeric_too_big(s))?,
                    ),
                    v => return Err(bad("numeric", v)),
                }
            }
            Arc::new(b.finish())
        }
        SqlType::Date => {
            let mut b = Date32Builder::with_capacity(values.len());
            for v in values {
                match v {
                    Json::Null => b.append_null(),
                    Json::String(s) => {
                        b.append_value(parse_date_days(s).ok_or_else(|| bad("date", v))?)
                    }
                    v => return Err(bad("date", v)),
                }
            }
            Arc::new(b.finish())
        }
        SqlType::Timestamptz | SqlType::Timestamp => {
            let zone: Option<Arc<str>> = match (t, dt) {
                (SqlType::Timestamp, _) => None,
                (_, DataType::Timestamp(_, Some(z))) => Some(z.clone()),
                _ => Some("UTC".into()),
            };
            let mut b =
                TimestampMicrosecondBuilder::with_capacity(values.len()).with_timezone_opt(zone);
            for v in values {
                match v {
                    Json::Null => b.append_null(),
                    Json::String(s) => b.append_value(
                        parse_timestamp_micros(s).ok_or_else(|| bad("timestamptz", v))?,
                    ),
                    v => return Err(bad("timestamptz", v)),
                }
            }
            Arc::new(b.finish())
        }
        SqlType::Array(inner) => {
            // Build child values through the scalar path: arrays are small.
            let mut scalars = Vec::with_capacity(values.len());
            for v in values {
                scalars.push(json_to_scalar(t, v)?);
            }
            let _ = inner;
            if scalars.is_empty() {
                let b = ListBuilder::new(StringBuilder::new());
                let mut b = b;
                let arr = b.finish();
                return datafusion::arrow::compute::cast(&arr, &arrow_type(t))
                    .map_err(|e| SqlError::internal(e.to_string()));
            }
            ScalarValue::iter_to_array(scalars).map_err(|e| SqlError::internal(e.to_string()))?
        }
    })
}

/// Builds a record batch from rows of JSON values (one per field).
pub fn rows_to_batch(
    schema: SchemaRef,
    types: &[SqlType],
    rows: &[Vec<Json>],
) -> Result<RecordBatch, SqlError> {
    debug_assert_eq!(schema.fields().len(), types.len());
    let mut columns = Vec::with_capacity(types.len());
    for (i, t) in types.iter().enumerate() {
        let col: Vec<&Json> = rows
            .iter()
            .map(|r| r.get(i).unwrap_or(&Json::Null))
            .collect();
        columns.push(json_column(t, schema.field(i).data_type(), &col)?);
    }
    if columns.is_empty() {
        return RecordBatch::try_new_with_options(
            schema,
            columns,
            &datafusion::arrow::record_batch::RecordBatchOptions::new()
                .with_row_count(Some(rows.len())),
        )
        .map_err(|e| SqlError::internal(e.to_string()));
    }
    RecordBatch::try_new(schema, columns).map_err(|e| SqlError::internal(e.to_string()))
}

pub fn schema_of(fields: Vec<Field>) -> SchemaRef {
    Arc::new(Schema::new(fields))
}

fn numeric_too_big(s: &str) -> SqlError {
    SqlError::new(
        "22003",
        format!(
            "numeric value {s} does not fit SQL computation ({NUMERIC_PRECISION} digits, {NUMERIC_SCALE} after the point); select the column itself to read it exactly"
        ),
    )
}

pub(crate) fn parse_float_special(s: &str) -> Option<f64> {
    value::float::parse_f64(s).ok()
}

/// Stored bytea: hex digits without `\x`.
pub fn hex_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.strip_prefix("\\x").unwrap_or(s);
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

pub fn hex_encode(b: &[u8]) -> String {
    let h = value::text::format_bytea(b);
    h[2..].to_string()
}

/// Stored dates: ISO `YYYY-MM-DD` (what Python's `date.fromisoformat`
/// reads) for years 1 to 9999, PostgreSQL's text (`0044-03-15 BC`,
/// `infinity`) beyond.
pub fn parse_date_days(s: &str) -> Option<i32> {
    datetime::parse_date(s).ok()
}

pub fn format_date_days(days: i32) -> String {
    datetime::format_date(days)
}

/// Stored timestamps: RFC 3339 in UTC (what Python's
/// `datetime.fromisoformat` reads) for years 1 to 9999, PostgreSQL's text
/// in UTC beyond.
pub fn parse_timestamp_micros(s: &str) -> Option<i64> {
    datetime::parse_timestamp(s, Some(&Zone::UTC)).ok()
}

pub fn ts_iso(us: i64) -> String {
    const YEAR_1_US: i64 = -62_135_596_800_000_000;
    const YEAR_10000_US: i64 = 253_402_300_800_000_000;
    match datetime::naive_datetime(us) {
        Some(t) if (YEAR_1_US..YEAR_10000_US).contains(&us) => t
            .and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false),
        _ => datetime::format_timestamp(us, Some(&Zone::UTC)),
    }
}

/// A JSON value (catalog encoding of `t`) as a DataFusion scalar.
pub fn json_to_scalar(t: &SqlType, v: &Json) -> Result<ScalarValue, SqlError> {
    let null = matches!(v, Json::Null);
    Ok(match t {
        SqlType::Int8 | SqlType::Ref(_) => ScalarValue::Int64(if null {
            None
        } else {
            Some(v.as_i64().ok_or_else(|| bad("bigint", v))?)
        }),
        SqlType::Int4 | SqlType::Int2 | SqlType::Float4 => {
            let wide = if matches!(t, SqlType::Float4) {
                SqlType::Float8
            } else {
                SqlType::Int8
            };
            json_to_scalar(&wide, v)?
                .cast_to(&arrow_type(t))
                .map_err(|_| bad(&t.pg_name(), v))?
        }
        SqlType::Float8 => ScalarValue::Float64(if null {
            None
        } else {
            Some(match v {
                Json::String(s) => parse_float_special(s).ok_or_else(|| bad("float", v))?,
                _ => v.as_f64().ok_or_else(|| bad("float", v))?,
            })
        }),
        SqlType::Text => ScalarValue::Utf8(v.as_str().map(str::to_string)),
        SqlType::Jsonb => ScalarValue::Utf8(if null { None } else { Some(v.to_string()) }),
        SqlType::Bool => ScalarValue::Boolean(v.as_bool()),
        SqlType::Bytea => ScalarValue::Binary(v.as_str().and_then(hex_decode)),
        SqlType::Numeric => match v.as_str() {
            None => ScalarValue::Decimal128(None, NUMERIC_PRECISION, NUMERIC_SCALE),
            Some(s) => value::numeric_scalar(&Numeric::parse(s).map_err(|_| bad("numeric", v))?),
        },
        SqlType::Date => ScalarValue::Date32(v.as_str().and_then(parse_date_days)),
        SqlType::Timestamptz => ScalarValue::TimestampMicrosecond(
            v.as_str().and_then(parse_timestamp_micros),
            Some("UTC".into()),
        ),
        SqlType::Timestamp => {
            ScalarValue::TimestampMicrosecond(v.as_str().and_then(parse_timestamp_micros), None)
        }
        SqlType::Array(inner) => {
            if null {
                ScalarValue::try_from(&arrow_type(t))
                    .map_err(|e| SqlError::internal(e.to_string()))?
            } else {
                let items = v.as_array().ok_or_else(|| bad("array", v))?;
                let item_type = arrow_type(inner);
                let scalars: Vec<ScalarValue> = items
                    .iter()
                    .map(|x| {
                        let v = json_to_scalar(inner, x)?;
                        if v.data_type() == item_type {
                            Ok(v)
                        } else {
                            v.cast_to(&item_type)
                                .map_err(|e| SqlError::internal(e.to_string()))
                        }
                    })
                    .collect::<Result<_, _>>()?;
                let arr = ScalarValue::new_list_nullable(&scalars, &item_type);
                ScalarValue::List(arr)
            }
        }
    })
}

/// A DataFusion scalar as column `col` stores it: [`scalar_to_json`] of
/// its type, then what it declares (a length, a precision).
pub fn column_json(
    col: &amber_catalog::ColumnDef,
    v: &ScalarValue,
    settings: &Settings,
) -> Result<Json, SqlError> {
    crate::declared::apply(col, scalar_to_json(&col.ty, v, settings)?)
}

/// A DataFusion scalar as the JSON encoding of `t`, coercing where SQL
/// would: text through the type's PostgreSQL input function (a literal
/// `'2024-01-01 10:00'` is read in the session's TimeZone, `'yes'` is a
/// boolean), numbers between numeric types exactly.
pub fn scalar_to_json(t: &SqlType, v: &ScalarValue, settings: &Settings) -> Result<Json, SqlError> {
    if v.is_null() {
        return Ok(Json::Null);
    }
    // Text into a non-text type: PostgreSQL's input function of the type.
    if let Some(text) = utf8_of(v) {
        return match t {
            SqlType::Text => Ok(Json::from(value::text::utf8(text.as_bytes())?)),
            SqlType::Jsonb => value::json::parse(text, true).map_err(value::json_error),
            SqlType::Numeric => match Numeric::parse(text) {
                Ok(n) => Ok(Json::from(n.to_string())),
                Err(_) => Err(value::text::invalid_syntax("numeric", text)),
            },
            _ => {
                let typed = value::from_text(type_oid(t), text, settings)?;
                if utf8_of(&typed).is_some() {
                    return Err(value::text::invalid_syntax(&t.pg_name(), text));
                }
                scalar_to_json(t, &typed, settings)
            }
        };
    }
    match (t, v) {
        (SqlType::Numeric, ScalarValue::Decimal128(Some(x), _, s)) => {
            return Ok(Json::from(value::decimal_numeric(*x, *s).to_string()))
        }
        (SqlType::Numeric, ScalarValue::Float64(Some(f))) => {
            // float8 to numeric keeps DBL_DIG significant digits, as
            // PostgreSQL's float8_numeric.
            let text = value::float::format_f64(*f, 0);
            return Ok(Json::from(
                Numeric::parse(&text).map(|n| n.to_string()).unwrap_or(text),
            ));
        }
        (SqlType::Jsonb, other) => return Ok(scalar_to_plain_json(other)),
        // timestamptz into timestamp: the wall-clock time in the
        // session's TimeZone, as PostgreSQL converts it.
        (SqlType::Timestamp, v) if matches!(v.data_type(), DataType::Timestamp(_, Some(_))) => {
            let utc = v
                .cast_to(&DataType::Timestamp(
                    TimeUnit::Microsecond,
                    Some("UTC".into()),
                ))
                .map_err(|e| SqlError::internal(e.to_string()))?;
            if let ScalarValue::TimestampMicrosecond(Some(us), _) = utc {
                let offset_us = i64::from(settings.zone.offset_at_utc(us)) * 1_000_000;
                return Ok(Json::from(ts_iso(us.saturating_add(offset_us))));
            }
        }
        // Element by element, so each keeps its own numeric scale.
        (SqlType::Array(inner), ScalarValue::List(list)) => {
            let values = list.value(0);
            let mut out = Vec::with_capacity(values.len());
            for i in 0..values.len() {
                let s = ScalarValue::try_from_array(&values, i)
                    .map_err(|e| SqlError::internal(e.to_string()))?;
                out.push(scalar_to_json(inner, &s, settings)?);
            }
            return Ok(Json::Array(out));
        }
        _ => {}
    }
    // Narrow types are checked in the wide one, with PostgreSQL's errors.
    match t {
        SqlType::Int4 | SqlType::Int2 => {
            let wide = scalar_to_json(&SqlType::Int8, v, settings)?;
            let (lo, hi) = t.integer_range().unwrap_or((i64::MIN, i64::MAX));
            return match wide.as_i64() {
                Some(x) if (lo..=hi).contains(&x) => Ok(wide),
                _ => Err(SqlError::new(
                    "22003",
                    format!("{} out of range", t.pg_name()),
                )),
            };
        }
        SqlType::Float4 => {
            let wide = scalar_to_json(&SqlType::Float8, v, settings)?;
            let Some(x) = wide.as_f64() else {
                return Ok(wide); // NaN, Infinity, -Infinity
            };
            let narrow = x as f32;
            if narrow.is_infinite() {
                return Err(SqlError::new("22003", "value out of range: overflow"));
            }
            if narrow == 0.0 && x != 0.0 {
                return Err(SqlError::new("22003", "value out of range: underflow"));
            }
            return Ok(Json::from(f64::from(narrow)));
        }
        _ => {}
    }
    let target = arrow_type(t);
    let cast = if v.data_type() == target {
        v.clone()
    } else {
        v.cast_to(&target).map_err(|_| {
            SqlError::new(
                "42804",
                format!(
                    "value {} of type {} cannot be stored as {}",
                    scalar_text(v),
                    v.data_type(),
                    t.pg_name()
                ),
            )
        })?
    };
    Ok(match (t, &cast) {
        (SqlType::Int8 | SqlType::Ref(_), ScalarValue::Int64(Some(x))) => Json::from(*x),
        (SqlType::Float8, ScalarValue::Float64(Some(x))) => {
            if x.is_finite() {
                Json::from(*x)
            } else if x.is_nan() {
                Json::from("NaN")
            } else if *x > 0.0 {
                Json::from("Infinity")
            } else {
                Json::from("-Infinity")
            }
        }
        (SqlType::Bool, ScalarValue::Boolean(Some(b))) => Json::from(*b),
        (SqlType::Text, ScalarValue::Utf8(Some(s))) => Json::from(s.clone()),
        (SqlType::Bytea, ScalarValue::Binary(Some(b))) => Json::from(hex_encode(b)),
        (SqlType::Numeric, ScalarValue::Decimal128(Some(x), _, s)) => {
            Json::from(value::decimal_numeric(*x, *s).to_string())
        }
        (SqlType::Date, ScalarValue::Date32(Some(d))) => Json::from(format_date_days(*d)),
        (
            SqlType::Timestamptz | SqlType::Timestamp,
            ScalarValue::TimestampMicrosecond(Some(us), _),
        ) => Json::from(ts_iso(*us)),
        (_, other) => {
            return Err(SqlError::new(
                "42804",
                format!(
                    "value {} cannot be stored as {}",
                    scalar_text(other),
                    t.pg_name()
                ),
            ))
        }
    })
}

fn utf8_of(v: &ScalarValue) -> Option<&str> {
    match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Some(s),
        _ => None,
    }
}

/// Best-effort JSON of a scalar of any type (for jsonb parameters).
pub fn scalar_to_plain_json(v: &ScalarValue) -> Json {
    match v {
        ScalarValue::Null => Json::Null,
        ScalarValue::Boolean(Some(b)) => Json::from(*b),
        ScalarValue::Int8(Some(x)) => Json::from(*x),
        ScalarValue::Int16(Some(x)) => Json::from(*x),
        ScalarValue::Int32(Some(x)) => Json::from(*x),
        ScalarValue::Int64(Some(x)) => Json::from(*x),
        ScalarValue::UInt64(Some(x)) => Json::from(*x),
        ScalarValue::Float64(Some(x)) => Json::from(*x),
        ScalarValue::Float32(Some(x)) => Json::from(*x),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => Json::from(s.clone()),
        v if v.is_null() => Json::Null,
        // A list is a JSON array (a Python list in amber.sql() rows).
        ScalarValue::List(list) => {
            let values = list.value(0);
            Json::Array(
                (0..values.len())
                    .map(|i| cell(&values, i).map_or(Json::Null, |v| scalar_to_plain_json(&v)))
                    .collect(),
            )
        }
        other => Json::from(scalar_text(other)),
    }
}

pub fn scalar_text(v: &ScalarValue) -> String {
    match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => s.clone(),
        other => other.to_string(),
    }
}

/// Cell `row` of an Arrow array as a scalar.
pub fn cell(array: &ArrayRef, row: usize) -> Result<ScalarValue, SqlError> {
    ScalarValue::try_from_array(array, row).map_err(|e| SqlError::internal(e.to_string()))
}

pub fn is_null_cell(array: &dyn Array, row: usize) -> bool {
    array.is_null(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_date_days("1970-01-02"), Some(1));
        assert_eq!(format_date_days(1), "1970-01-02");
    }
}
