//! Conversions between the catalog's JSON value encoding, Arrow arrays and
//! DataFusion scalars.

use crate::error::SqlError;
use amber_catalog::SqlType;
use chrono::{DateTime, NaiveDate, Utc};
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
/// arbitrary. 38 digits with 10 after the point covers money and most
/// measurements.
pub const NUMERIC_PRECISION: u8 = 38;
pub const NUMERIC_SCALE: i8 = 10;
/// Field metadata key naming the PostgreSQL type when Arrow's is ambiguous.
pub const PG_TYPE_KEY: &str = "pg_type";

const EPOCH_DAYS_FROM_CE: i32 = 719_163;

pub fn arrow_type(t: &SqlType) -> DataType {
    match t {
        SqlType::Int8 | SqlType::Ref(_) => DataType::Int64,
        SqlType::Float8 => DataType::Float64,
        SqlType::Text | SqlType::Jsonb => DataType::Utf8,
        SqlType::Bool => DataType::Boolean,
        SqlType::Bytea => DataType::Binary,
        SqlType::Numeric => DataType::Decimal128(NUMERIC_PRECISION, NUMERIC_SCALE),
        SqlType::Date => DataType::Date32,
        SqlType::Timestamptz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        SqlType::Array(inner) => {
            DataType::List(Arc::new(Field::new("item", arrow_type(inner), true)))
        }
    }
}

pub fn field(name: &str, t: &SqlType, nullable: bool) -> Field {
    let f = Field::new(name, arrow_type(t), nullable);
    if matches!(t, SqlType::Jsonb) {
        f.with_metadata(HashMap::from([(
            PG_TYPE_KEY.to_string(),
            "jsonb".to_string(),
        )]))
    } else {
        f
    }
}

fn bad(what: &str, v: &Json) -> SqlError {
    SqlError::new("XX000", format!("corrupt stored {what} value: {v}"))
}

/// Builds one Arrow column from JSON values of type `t`.
pub fn json_column(t: &SqlType, values: &[&Json]) -> Result<ArrayRef, SqlError> {
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
        SqlType::Numeric => {
            let mut b = Decimal128Builder::with_capacity(values.len())
                .with_precision_and_scale(NUMERIC_PRECISION, NUMERIC_SCALE)
                .map_err(|e| SqlError::internal(e.to_string()))?;
            for v in values {
                match v {
                    Json::Null => b.append_null(),
                    Json::String(s) => {
                        b.append_value(parse_decimal(s).ok_or_else(|| bad("numeric", v))?)
                    }
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
        SqlType::Timestamptz => {
            let mut b =
                TimestampMicrosecondBuilder::with_capacity(values.len()).with_timezone("UTC");
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
        columns.push(json_column(t, &col)?);
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

fn parse_float_special(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "infinity" | "inf" => Some(f64::INFINITY),
        "-infinity" | "-inf" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

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
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Parses a decimal string into a Decimal128 with [`NUMERIC_SCALE`].
pub fn parse_decimal(s: &str) -> Option<i128> {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part.chars().all(|c| c.is_ascii_digit())
        || !frac_part.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let scale = NUMERIC_SCALE as usize;
    let mut frac: String = frac_part.chars().take(scale).collect();
    while frac.len() < scale {
        frac.push('0');
    }
    let combined = format!(
        "{}{}",
        if int_part.is_empty() { "0" } else { int_part },
        frac
    );
    let v: i128 = combined.parse().ok()?;
    Some(if neg { -v } else { v })
}

/// Formats a Decimal128 value of `scale` as PostgreSQL prints numeric,
/// without the padding zeros Arrow's fixed scale adds.
pub fn format_decimal(v: i128, scale: i8) -> String {
    if scale <= 0 {
        return (v * 10i128.pow((-scale) as u32)).to_string();
    }
    let neg = v < 0;
    let abs = v.unsigned_abs().to_string();
    let scale = scale as usize;
    let padded = if abs.len() <= scale {
        format!("{}{}", "0".repeat(scale - abs.len() + 1), abs)
    } else {
        abs
    };
    let (i, f) = padded.split_at(padded.len() - scale);
    let f = f.trim_end_matches('0');
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    out.push_str(i);
    if !f.is_empty() {
        out.push('.');
        out.push_str(f);
    }
    out
}

pub fn parse_date_days(s: &str) -> Option<i32> {
    let d = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()?;
    Some(chrono::Datelike::num_days_from_ce(&d) - EPOCH_DAYS_FROM_CE)
}

pub fn format_date_days(days: i32) -> String {
    NaiveDate::from_num_days_from_ce_opt(days + EPOCH_DAYS_FROM_CE)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| days.to_string())
}

pub fn parse_timestamp_micros(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc).timestamp_micros());
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.with_timezone(&Utc).timestamp_micros());
        }
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc().timestamp_micros());
        }
        if fmt == "%Y-%m-%d" {
            if let Ok(d) = NaiveDate::parse_from_str(s, fmt) {
                return d
                    .and_hms_opt(0, 0, 0)
                    .map(|t| t.and_utc().timestamp_micros());
            }
        }
    }
    None
}

pub fn format_timestamp_micros(us: i64, with_tz: bool) -> String {
    match DateTime::<Utc>::from_timestamp_micros(us) {
        Some(t) => {
            let base = if t.timestamp_subsec_micros() == 0 {
                t.format("%Y-%m-%d %H:%M:%S").to_string()
            } else {
                t.format("%Y-%m-%d %H:%M:%S%.6f")
                    .to_string()
                    .trim_end_matches('0')
                    .to_string()
            };
            if with_tz {
                format!("{base}+00")
            } else {
                base
            }
        }
        None => us.to_string(),
    }
}

fn ts_iso(us: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false))
        .unwrap_or_default()
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
        SqlType::Numeric => ScalarValue::Decimal128(
            v.as_str().and_then(parse_decimal),
            NUMERIC_PRECISION,
            NUMERIC_SCALE,
        ),
        SqlType::Date => ScalarValue::Date32(v.as_str().and_then(parse_date_days)),
        SqlType::Timestamptz => ScalarValue::TimestampMicrosecond(
            v.as_str().and_then(parse_timestamp_micros),
            Some("UTC".into()),
        ),
        SqlType::Array(inner) => {
            if null {
                ScalarValue::try_from(&arrow_type(t))
                    .map_err(|e| SqlError::internal(e.to_string()))?
            } else {
                let items = v.as_array().ok_or_else(|| bad("array", v))?;
                let scalars: Vec<ScalarValue> = items
                    .iter()
                    .map(|x| json_to_scalar(inner, x))
                    .collect::<Result<_, _>>()?;
                let arr = ScalarValue::new_list_nullable(&scalars, &arrow_type(inner));
                ScalarValue::List(arr)
            }
        }
    })
}

/// A DataFusion scalar as the JSON encoding of `t`, coercing where SQL
/// would (an integer literal into a float column, text into a date...).
pub fn scalar_to_json(t: &SqlType, v: &ScalarValue) -> Result<Json, SqlError> {
    if v.is_null() {
        return Ok(Json::Null);
    }
    let target = arrow_type(t);
    let cast = if matches!(t, SqlType::Jsonb) || v.data_type() == target {
        v.clone()
    } else {
        v.cast_to(&target).map_err(|_| {
            SqlError::new(
                "22P02",
                format!(
                    "invalid input syntax for type {}: \"{}\"",
                    t.pg_name(),
                    scalar_text(v)
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
        (SqlType::Text, ScalarValue::Utf8(Some(s))) => Json::from(s.clone()),
        (SqlType::Jsonb, other) => match other {
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)) => serde_json::from_str(s).map_err(|e| {
                SqlError::new("22P02", format!("invalid input syntax for type json: {e}"))
            })?,
            other => scalar_to_plain_json(other),
        },
        (SqlType::Bool, ScalarValue::Boolean(Some(b))) => Json::from(*b),
        (SqlType::Bytea, ScalarValue::Binary(Some(b))) => Json::from(hex_encode(b)),
        (SqlType::Numeric, ScalarValue::Decimal128(Some(x), _, s)) => {
            Json::from(format_decimal(*x, *s))
        }
        (SqlType::Date, ScalarValue::Date32(Some(d))) => Json::from(format_date_days(*d)),
        (SqlType::Timestamptz, ScalarValue::TimestampMicrosecond(Some(us), _)) => {
            Json::from(ts_iso(*us))
        }
        (SqlType::Array(inner), ScalarValue::List(list)) => {
            let values = list.value(0);
            let mut out = Vec::with_capacity(values.len());
            for i in 0..values.len() {
                let s = ScalarValue::try_from_array(&values, i)
                    .map_err(|e| SqlError::internal(e.to_string()))?;
                out.push(scalar_to_json(inner, &s)?);
            }
            Json::Array(out)
        }
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
    fn decimal_round_trip() {
        assert_eq!(
            format_decimal(parse_decimal("100.50").unwrap(), NUMERIC_SCALE),
            "100.5"
        );
        assert_eq!(
            format_decimal(parse_decimal("-0.25").unwrap(), NUMERIC_SCALE),
            "-0.25"
        );
        assert_eq!(
            format_decimal(parse_decimal("7").unwrap(), NUMERIC_SCALE),
            "7"
        );
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date_days("1970-01-02"), Some(1));
        assert_eq!(format_date_days(1), "1970-01-02");
    }
}
