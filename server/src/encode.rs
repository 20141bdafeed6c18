//! Arrow results to PostgreSQL wire values, and wire parameters to scalars.

use amber_query::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array, Decimal128Array,
    Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, Int8Array, ListArray,
    TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
    TimestampSecondArray, UInt32Array, UInt64Array,
};
use amber_query::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use amber_query::arrow::record_batch::RecordBatch;
use amber_query::convert::PG_TYPE_KEY;
use amber_query::ScalarValue;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use pgwire::api::portal::Format;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo};
use pgwire::api::Type;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use std::sync::Arc;

pub fn pg_type(field: &Field) -> Type {
    if field.metadata().get(PG_TYPE_KEY).map(String::as_str) == Some("jsonb") {
        return Type::JSONB;
    }
    data_type_to_pg(field.data_type())
}

pub fn data_type_to_pg(dt: &DataType) -> Type {
    match dt {
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => Type::INT8,
        DataType::Int32 | DataType::UInt16 => Type::INT4,
        DataType::Int16 | DataType::Int8 | DataType::UInt8 => Type::INT2,
        DataType::Float64 => Type::FLOAT8,
        DataType::Float32 | DataType::Float16 => Type::FLOAT4,
        DataType::Boolean => Type::BOOL,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Type::BYTEA,
        DataType::Decimal128(..) | DataType::Decimal256(..) => Type::NUMERIC,
        DataType::Date32 | DataType::Date64 => Type::DATE,
        DataType::Timestamp(_, Some(_)) => Type::TIMESTAMPTZ,
        DataType::Timestamp(_, None) => Type::TIMESTAMP,
        DataType::List(f) | DataType::LargeList(f) => match data_type_to_pg(f.data_type()) {
            Type::INT8 => Type::INT8_ARRAY,
            Type::INT4 => Type::INT4_ARRAY,
            Type::INT2 => Type::INT2_ARRAY,
            Type::FLOAT8 => Type::FLOAT8_ARRAY,
            Type::FLOAT4 => Type::FLOAT4_ARRAY,
            Type::BOOL => Type::BOOL_ARRAY,
            Type::NUMERIC => Type::NUMERIC_ARRAY,
            Type::DATE => Type::DATE_ARRAY,
            Type::TIMESTAMPTZ => Type::TIMESTAMPTZ_ARRAY,
            Type::BYTEA => Type::BYTEA_ARRAY,
            _ => Type::TEXT_ARRAY,
        },
        _ => Type::TEXT,
    }
}

pub fn pg_to_data_type(t: &Type) -> Option<DataType> {
    Some(match *t {
        Type::INT8 => DataType::Int64,
        Type::INT4 => DataType::Int32,
        Type::INT2 => DataType::Int16,
        Type::FLOAT8 => DataType::Float64,
        Type::FLOAT4 => DataType::Float32,
        Type::BOOL => DataType::Boolean,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::JSON | Type::JSONB => {
            DataType::Utf8
        }
        Type::BYTEA => DataType::Binary,
        Type::NUMERIC => DataType::Decimal128(38, 10),
        Type::DATE => DataType::Date32,
        Type::TIMESTAMPTZ => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        Type::TIMESTAMP => DataType::Timestamp(TimeUnit::Microsecond, None),
        _ => return None,
    })
}

pub fn field_infos(schema: &Schema, format: &Format) -> Vec<FieldInfo> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            FieldInfo::new(
                f.name().clone(),
                None,
                None,
                pg_type(f),
                format.format_for(i),
            )
        })
        .collect()
}

fn decimal(v: i128, scale: i8) -> rust_decimal::Decimal {
    let (mut v, mut scale) = (v, scale.max(0) as u32);
    // rust_decimal holds at most 28 fractional digits.
    while scale > 28 {
        v /= 10;
        scale -= 1;
    }
    rust_decimal::Decimal::try_from_i128_with_scale(v, scale)
        .map(|d| d.normalize())
        .unwrap_or_default()
}

fn ts_micros(array: &ArrayRef, row: usize) -> Option<i64> {
    if array.is_null(row) {
        return None;
    }
    let DataType::Timestamp(unit, _) = array.data_type() else {
        return None;
    };
    Some(match unit {
        TimeUnit::Second => {
            array
                .as_any()
                .downcast_ref::<TimestampSecondArray>()?
                .value(row)
                * 1_000_000
        }
        TimeUnit::Millisecond => {
            array
                .as_any()
                .downcast_ref::<TimestampMillisecondArray>()?
                .value(row)
                * 1000
        }
        TimeUnit::Microsecond => array
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()?
            .value(row),
        TimeUnit::Nanosecond => {
            array
                .as_any()
                .downcast_ref::<TimestampNanosecondArray>()?
                .value(row)
                / 1000
        }
    })
}

macro_rules! prim {
    ($enc:expr, $array:expr, $row:expr, $ty:ty) => {{
        let a = $array
            .as_any()
            .downcast_ref::<$ty>()
            .ok_or_else(|| PgWireError::ApiError("array type mismatch".into()))?;
        $enc.encode_field(&(!a.is_null($row)).then(|| a.value($row)))
    }};
}

fn encode_cell(
    enc: &mut DataRowEncoder,
    array: &ArrayRef,
    row: usize,
    pg: &Type,
) -> PgWireResult<()> {
    match array.data_type() {
        DataType::Int64 => prim!(enc, array, row, Int64Array),
        DataType::Int32 => prim!(enc, array, row, Int32Array),
        DataType::Int16 => prim!(enc, array, row, Int16Array),
        DataType::Int8 => {
            let a = array
                .as_any()
                .downcast_ref::<Int8Array>()
                .ok_or_else(|| PgWireError::ApiError("type".into()))?;
            enc.encode_field(&(!a.is_null(row)).then(|| a.value(row) as i16))
        }
        DataType::UInt32 => {
            let a = array
                .as_any()
                .downcast_ref::<UInt32Array>()
                .ok_or_else(|| PgWireError::ApiError("type".into()))?;
            enc.encode_field(&(!a.is_null(row)).then(|| a.value(row) as i64))
        }
        DataType::UInt64 => {
            let a = array
                .as_any()
                .downcast_ref::<UInt64Array>()
                .ok_or_else(|| PgWireError::ApiError("type".into()))?;
            enc.encode_field(&(!a.is_null(row)).then(|| a.value(row) as i64))
        }
        DataType::Float64 => prim!(enc, array, row, Float64Array),
        DataType::Float32 => prim!(enc, array, row, Float32Array),
        DataType::Boolean => prim!(enc, array, row, BooleanArray),
        DataType::Binary => {
            let a = array
                .as_any()
                .downcast_ref::<BinaryArray>()
                .ok_or_else(|| PgWireError::ApiError("type".into()))?;
            enc.encode_field(&(!a.is_null(row)).then(|| a.value(row).to_vec()))
        }
        DataType::Decimal128(_, scale) => {
            let a = array
                .as_any()
                .downcast_ref::<Decimal128Array>()
                .ok_or_else(|| PgWireError::ApiError("type".into()))?;
            enc.encode_field(&(!a.is_null(row)).then(|| decimal(a.value(row), *scale)))
        }
        DataType::Date32 => {
            let a = array
                .as_any()
                .downcast_ref::<Date32Array>()
                .ok_or_else(|| PgWireError::ApiError("type".into()))?;
            let v = (!a.is_null(row))
                .then(|| a.value(row))
                .and_then(|d| NaiveDate::from_num_days_from_ce_opt(d + 719_163));
            enc.encode_field(&v)
        }
        DataType::Timestamp(_, tz) => {
            let us = ts_micros(array, row);
            if tz.is_some() {
                enc.encode_field(&us.and_then(DateTime::<Utc>::from_timestamp_micros))
            } else {
                enc.encode_field(
                    &us.and_then(DateTime::<Utc>::from_timestamp_micros)
                        .map(|t| t.naive_utc()),
                )
            }
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let s: Option<String> = if array.is_null(row) {
                None
            } else {
                Some(match array.data_type() {
                    DataType::Utf8 => array.as_string::<i32>().value(row).to_string(),
                    DataType::LargeUtf8 => array.as_string::<i64>().value(row).to_string(),
                    _ => array.as_string_view().value(row).to_string(),
                })
            };
            if *pg == Type::JSONB {
                let v = s.map(|s| {
                    serde_json::from_str::<serde_json::Value>(&s)
                        .unwrap_or(serde_json::Value::String(s))
                });
                enc.encode_field(&v)
            } else {
                enc.encode_field(&s)
            }
        }
        DataType::List(_) => {
            let a = array
                .as_any()
                .downcast_ref::<ListArray>()
                .ok_or_else(|| PgWireError::ApiError("type".into()))?;
            if a.is_null(row) {
                return enc.encode_field(&None::<Vec<Option<String>>>);
            }
            let values = a.value(row);
            encode_list(enc, &values, pg)
        }
        DataType::Null => enc.encode_field(&None::<String>),
        _ => {
            let s = if array.is_null(row) {
                None
            } else {
                ScalarValue::try_from_array(array, row)
                    .ok()
                    .map(|v| v.to_string())
            };
            enc.encode_field(&s)
        }
    }
}

fn encode_list(enc: &mut DataRowEncoder, values: &ArrayRef, pg: &Type) -> PgWireResult<()> {
    let n = values.len();
    match *pg {
        Type::INT8_ARRAY => {
            let a = values
                .as_any()
                .downcast_ref::<Int64Array>()
                .ok_or_else(|| PgWireError::ApiError("type".into()))?;
            enc.encode_field(
                &(0..n)
                    .map(|i| (!a.is_null(i)).then(|| a.value(i)))
                    .collect::<Vec<_>>(),
            )
        }
        Type::FLOAT8_ARRAY => {
            let a = values
                .as_any()
                .downcast_ref::<Float64Array>()
                .ok_or_else(|| PgWireError::ApiError("type".into()))?;
            enc.encode_field(
                &(0..n)
                    .map(|i| (!a.is_null(i)).then(|| a.value(i)))
                    .collect::<Vec<_>>(),
            )
        }
        Type::BOOL_ARRAY => {
            let a = values
                .as_any()
                .downcast_ref::<BooleanArray>()
                .ok_or_else(|| PgWireError::ApiError("type".into()))?;
            enc.encode_field(
                &(0..n)
                    .map(|i| (!a.is_null(i)).then(|| a.value(i)))
                    .collect::<Vec<_>>(),
            )
        }
        Type::TEXT_ARRAY if matches!(values.data_type(), DataType::Utf8) => {
            let a = values.as_string::<i32>();
            enc.encode_field(
                &(0..n)
                    .map(|i| (!a.is_null(i)).then(|| a.value(i).to_string()))
                    .collect::<Vec<_>>(),
            )
        }
        _ => {
            let strings: Vec<Option<String>> = (0..n)
                .map(|i| {
                    (!values.is_null(i))
                        .then(|| {
                            ScalarValue::try_from_array(values, i)
                                .ok()
                                .map(|v| v.to_string())
                        })
                        .flatten()
                })
                .collect();
            enc.encode_field_with_type_and_format(
                &strings,
                &Type::TEXT_ARRAY,
                FieldFormat::Text,
                &Default::default(),
            )
        }
    }
}

pub fn encode_batches(
    batches: &[RecordBatch],
    fields: &Arc<Vec<FieldInfo>>,
) -> PgWireResult<Vec<DataRow>> {
    let types: Vec<Type> = fields.iter().map(|f| f.datatype().clone()).collect();
    let mut rows = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            let mut enc = DataRowEncoder::new(fields.clone());
            for (c, t) in types.iter().enumerate() {
                encode_cell(&mut enc, batch.column(c), row, t)?;
            }
            rows.push(enc.take_row());
        }
    }
    Ok(rows)
}

/// Reads bind parameter `idx` of wire type `t` as a scalar.
pub fn decode_param(
    portal: &pgwire::api::portal::Portal<amber_query::Prepared>,
    idx: usize,
    t: &Type,
) -> PgWireResult<ScalarValue> {
    Ok(match *t {
        Type::INT8 => ScalarValue::Int64(portal.parameter::<i64>(idx, t)?),
        Type::INT4 => ScalarValue::Int32(portal.parameter::<i32>(idx, t)?),
        Type::INT2 => ScalarValue::Int16(portal.parameter::<i16>(idx, t)?),
        Type::FLOAT8 => ScalarValue::Float64(portal.parameter::<f64>(idx, t)?),
        Type::FLOAT4 => ScalarValue::Float32(portal.parameter::<f32>(idx, t)?),
        Type::BOOL => ScalarValue::Boolean(portal.parameter::<bool>(idx, t)?),
        Type::BYTEA => ScalarValue::Binary(portal.parameter::<Vec<u8>>(idx, t)?),
        Type::NUMERIC => {
            let d = portal.parameter::<rust_decimal::Decimal>(idx, t)?;
            ScalarValue::Decimal128(
                d.and_then(|d| amber_query::convert::parse_decimal(&d.to_string())),
                38,
                10,
            )
        }
        Type::DATE => ScalarValue::Date32(
            portal
                .parameter::<NaiveDate>(idx, t)?
                .map(|d| chrono::Datelike::num_days_from_ce(&d) - 719_163),
        ),
        Type::TIMESTAMPTZ => ScalarValue::TimestampMicrosecond(
            portal
                .parameter::<DateTime<chrono::FixedOffset>>(idx, t)?
                .map(|d| d.timestamp_micros()),
            Some("UTC".into()),
        ),
        Type::TIMESTAMP => ScalarValue::TimestampMicrosecond(
            portal
                .parameter::<NaiveDateTime>(idx, t)?
                .map(|d| d.and_utc().timestamp_micros()),
            None,
        ),
        Type::JSON | Type::JSONB => ScalarValue::Utf8(
            portal
                .parameter::<serde_json::Value>(idx, t)?
                .map(|v| v.to_string()),
        ),
        _ => ScalarValue::Utf8(portal.parameter::<String>(idx, &Type::TEXT)?),
    })
}
