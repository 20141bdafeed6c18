//! Values as PostgreSQL writes and reads them: the one place that turns
//! wire bytes (text or binary) into values and values into wire bytes.
//!
//! A text-format bind parameter is the value itself, never an SQL
//! literal: nothing is un-escaped. (pgwire 0.42's `FromSqlText for
//! String`, which `Portal::parameter` uses, replaces `''` by `'` as if it
//! were a literal — upstream's newest version still does — so Amber
//! decodes parameters from their raw bytes here and never through it.)
//!
//! Invariant: for every type, `decode(encode(v)) == v` in both formats,
//! and the text form is PostgreSQL 15's for the same value and settings.

pub mod array;
pub mod datetime;
pub mod float;
pub mod json;
pub mod numeric;
pub mod text;
pub mod types;

use crate::convert::{NUMERIC_PRECISION, NUMERIC_SCALE};
use crate::error::SqlError;
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Date64Type, Decimal128Type, Decimal256Type, Float16Type, Float32Type,
    Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use datafusion::common::ScalarValue;
pub use datetime::Zone;
use numeric::Numeric;
use std::sync::Arc;

/// The session settings that change how values are read and written.
#[derive(Clone, Debug)]
pub struct Settings {
    /// TimeZone: timestamptz output, and input without an offset.
    pub zone: Zone,
    /// extra_float_digits: > 0 shortest round-trip (the default, 1).
    pub extra_float_digits: i32,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            zone: Zone::UTC,
            extra_float_digits: 1,
        }
    }
}

/// 2000-01-01, PostgreSQL's epoch for binary dates and timestamps, in
/// days and microseconds from 1970-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;
const PG_EPOCH_US: i64 = 946_684_800_000_000;

fn binary_format() -> SqlError {
    SqlError::new("22P03", "incorrect binary data format")
}

fn date_time_error(e: datetime::DateTimeError, type_name: &str, text: &str) -> SqlError {
    use datetime::DateTimeError::*;
    match e {
        Syntax => SqlError::new(
            "22007",
            format!("invalid input syntax for type {type_name}: \"{text}\""),
        ),
        FieldRange => SqlError::new(
            "22008",
            format!("date/time field value out of range: \"{text}\""),
        ),
        Range => SqlError::new(
            "22008",
            format!(
                "{} out of range: \"{text}\"",
                if type_name == "date" {
                    "date"
                } else {
                    "timestamp"
                }
            ),
        ),
        UnknownZone(z) => SqlError::new("22023", format!("time zone \"{z}\" not recognized")),
    }
}

/// A numeric as a scalar: Decimal128 at its own scale when it fits (so
/// `100.50` keeps its scale), else its exact text.
pub fn numeric_scalar(n: &Numeric) -> ScalarValue {
    let scale = n.scale();
    if let Ok(s) = i8::try_from(scale) {
        if scale <= NUMERIC_PRECISION as usize {
            if let Some(v) = n.to_i128(NUMERIC_PRECISION, s) {
                return ScalarValue::Decimal128(Some(v), NUMERIC_PRECISION, s);
            }
        }
    }
    ScalarValue::Utf8(Some(n.to_string()))
}

/// The numeric a Decimal128 computed value stands for. Amber computes
/// unconstrained numerics at [`NUMERIC_SCALE`]; trailing zeros of such
/// values (and of products and quotients of them) are not significant and
/// are dropped; a smaller scale is the value's own (a literal's, a
/// parameter's, a sum of them) and is kept, as PostgreSQL keeps it.
pub fn decimal_numeric(v: i128, scale: i8) -> Numeric {
    let n = Numeric::from_i128(v, scale);
    if scale >= NUMERIC_SCALE {
        n.trimmed()
    } else {
        n
    }
}

/// A value given as text for a value of type `oid` (a text-format
/// parameter, a string literal cast to a type, an array element).
pub fn from_text(oid: u32, text: &str, settings: &Settings) -> Result<ScalarValue, SqlError> {
    Ok(match oid {
        types::INT2 => ScalarValue::Int16(Some(text::parse_int(text, 16)? as i16)),
        types::INT4 => ScalarValue::Int32(Some(text::parse_int(text, 32)? as i32)),
        types::INT8 => ScalarValue::Int64(Some(text::parse_int(text, 64)?)),
        types::OID => {
            let v = text::parse_int(text, 64)?;
            if !(0..=u32::MAX as i64).contains(&v) {
                return Err(SqlError::new(
                    "22003",
                    format!("value \"{text}\" is out of range for type oid"),
                ));
            }
            ScalarValue::Int64(Some(v))
        }
        types::FLOAT8 | types::FLOAT4 => {
            let name = if oid == types::FLOAT8 {
                "double precision"
            } else {
                "real"
            };
            let fail = |range: bool| {
                if range {
                    SqlError::new(
                        "22003",
                        format!("\"{text}\" is out of range for type {name}"),
                    )
                } else {
                    text::invalid_syntax(name, text)
                }
            };
            if oid == types::FLOAT8 {
                ScalarValue::Float64(Some(float::parse_f64(text).map_err(fail)?))
            } else {
                ScalarValue::Float32(Some(float::parse_f32(text).map_err(fail)?))
            }
        }
        types::BOOL => ScalarValue::Boolean(Some(text::parse_bool(text)?)),
        types::BYTEA => ScalarValue::Binary(Some(text::parse_bytea(text)?)),
        types::NUMERIC => match Numeric::parse(text) {
            Ok(n) => numeric_scalar(&n),
            Err(numeric::NumericError::Syntax) => {
                return Err(text::invalid_syntax("numeric", text))
            }
            Err(numeric::NumericError::Overflow) => {
                return Err(SqlError::new("22003", "value overflows numeric format"))
            }
        },
        types::DATE => ScalarValue::Date32(Some(
            datetime::parse_date(text).map_err(|e| date_time_error(e, "date", text))?,
        )),
        types::TIMESTAMPTZ => ScalarValue::TimestampMicrosecond(
            Some(
                datetime::parse_timestamp(text, Some(&settings.zone))
                    .map_err(|e| date_time_error(e, "timestamp with time zone", text))?,
            ),
            Some("UTC".into()),
        ),
        types::TIMESTAMP => ScalarValue::TimestampMicrosecond(
            Some(
                datetime::parse_timestamp(text, None)
                    .map_err(|e| date_time_error(e, "timestamp without time zone", text))?,
            ),
            None,
        ),
        types::JSON | types::JSONB => {
            json::parse(text, oid == types::JSONB).map_err(json_error)?;
            ScalarValue::Utf8(Some(text.to_string()))
        }
        other => match types::element_of(other) {
            Some(element) => {
                let items = array::parse(text)?;
                let mut scalars = Vec::with_capacity(items.len());
                for item in &items {
                    scalars.push(match item {
                        Some(t) => from_text(element, t, settings)?,
                        None => null_of(element),
                    });
                }
                list_scalar(element, scalars)?
            }
            None => ScalarValue::Utf8(Some(text.to_string())),
        },
    })
}

pub fn json_error(e: json::JsonError) -> SqlError {
    match e {
        json::JsonError::Syntax(m) => {
            SqlError::new("22P02", "invalid input syntax for type json").with_detail(Some(m))
        }
        json::JsonError::NulEscape => SqlError::new("22P05", "unsupported Unicode escape sequence")
            .with_detail(Some("\\u0000 cannot be converted to text.".into())),
        json::JsonError::TooDeep => SqlError::new(
            "54001",
            format!("json nested more than {} levels deep", json::DEPTH_MAX),
        ),
    }
}

fn null_of(oid: u32) -> ScalarValue {
    types::arrow_of(oid)
        .and_then(|t| ScalarValue::try_from(&t).ok())
        .unwrap_or(ScalarValue::Utf8(None))
}

/// A list scalar of elements of type `element`; elements whose scalar
/// type differs from the element type (a numeric's own scale) are cast.
fn list_scalar(element: u32, scalars: Vec<ScalarValue>) -> Result<ScalarValue, SqlError> {
    let mut t = types::arrow_of(element).unwrap_or(DataType::Utf8);
    if element == types::NUMERIC {
        // One scale for the whole list: the largest element's, so no
        // element loses a digit (`{1.50,2.5}` is kept as 1.50, 2.50).
        let scale = scalars
            .iter()
            .filter_map(|s| match s {
                ScalarValue::Decimal128(Some(_), _, s) => Some(*s),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        t = DataType::Decimal128(NUMERIC_PRECISION, scale);
    }
    let scalars = scalars
        .into_iter()
        .map(|s| {
            if s.data_type() == t {
                Ok(s)
            } else {
                s.cast_to(&t)
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SqlError::new("22P02", e.to_string()))?;
    Ok(ScalarValue::List(ScalarValue::new_list_nullable(
        &scalars, &t,
    )))
}

/// A bind parameter of type `oid` from its wire bytes.
pub fn decode_param(
    oid: u32,
    binary: bool,
    bytes: &[u8],
    settings: &Settings,
) -> Result<ScalarValue, SqlError> {
    if binary {
        from_binary(oid, bytes, settings)
    } else {
        from_text(oid, text::utf8(bytes)?, settings)
    }
}

fn fixed<const N: usize>(b: &[u8]) -> Result<[u8; N], SqlError> {
    b.try_into().map_err(|_| binary_format())
}

/// A value of type `oid` in PostgreSQL's binary format (`*_recv`).
pub fn from_binary(oid: u32, b: &[u8], settings: &Settings) -> Result<ScalarValue, SqlError> {
    Ok(match oid {
        types::INT2 => ScalarValue::Int16(Some(i16::from_be_bytes(fixed(b)?))),
        types::INT4 => ScalarValue::Int32(Some(i32::from_be_bytes(fixed(b)?))),
        types::INT8 => ScalarValue::Int64(Some(i64::from_be_bytes(fixed(b)?))),
        types::OID => ScalarValue::Int64(Some(u32::from_be_bytes(fixed(b)?) as i64)),
        types::FLOAT4 => ScalarValue::Float32(Some(f32::from_be_bytes(fixed(b)?))),
        types::FLOAT8 => ScalarValue::Float64(Some(f64::from_be_bytes(fixed(b)?))),
        types::BOOL => match b {
            [0] => ScalarValue::Boolean(Some(false)),
            [1] => ScalarValue::Boolean(Some(true)),
            _ => return Err(binary_format()),
        },
        types::BYTEA => ScalarValue::Binary(Some(b.to_vec())),
        types::NUMERIC => numeric_scalar(&Numeric::from_binary(b).ok_or_else(binary_format)?),
        types::DATE => {
            let d = i32::from_be_bytes(fixed(b)?);
            ScalarValue::Date32(Some(match d {
                i32::MIN | i32::MAX => d,
                _ => d.checked_add(PG_EPOCH_DAYS).ok_or_else(binary_format)?,
            }))
        }
        types::TIMESTAMP | types::TIMESTAMPTZ => {
            let t = i64::from_be_bytes(fixed(b)?);
            let us = match t {
                i64::MIN | i64::MAX => t,
                _ => t.checked_add(PG_EPOCH_US).ok_or_else(binary_format)?,
            };
            let tz = (oid == types::TIMESTAMPTZ).then(|| Arc::from("UTC"));
            ScalarValue::TimestampMicrosecond(Some(us), tz)
        }
        types::JSONB => match b.split_first() {
            Some((1, rest)) => from_text(oid, text::utf8(rest)?, settings)?,
            _ => return Err(SqlError::new("22P03", "unsupported jsonb version number")),
        },
        types::UUID => {
            let u: [u8; 16] = fixed(b)?;
            let h = text::format_bytea(&u);
            let h = &h[2..];
            ScalarValue::Utf8(Some(format!(
                "{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            )))
        }
        types::TEXT
        | types::VARCHAR
        | types::BPCHAR
        | types::NAME
        | types::CHAR
        | types::UNKNOWN
        | types::JSON => from_text(oid, text::utf8(b)?, settings)?,
        other => match types::element_of(other) {
            Some(element) => binary_array(element, b, settings)?,
            None => {
                return Err(SqlError::unsupported(format!(
                    "binary format of parameters of type oid {other} is not supported"
                )))
            }
        },
    })
}

/// `array_recv` of a one-dimensional array.
fn binary_array(element: u32, b: &[u8], settings: &Settings) -> Result<ScalarValue, SqlError> {
    struct Cursor<'a> {
        b: &'a [u8],
        at: usize,
    }
    impl<'a> Cursor<'a> {
        fn take(&mut self, n: usize) -> Result<&'a [u8], SqlError> {
            let end = self.at.checked_add(n).ok_or_else(binary_format)?;
            let s = self.b.get(self.at..end).ok_or_else(binary_format)?;
            self.at = end;
            Ok(s)
        }
        fn word(&mut self) -> Result<i32, SqlError> {
            Ok(i32::from_be_bytes(fixed(self.take(4)?)?))
        }
    }
    let mut c = Cursor { b, at: 0 };
    let ndim = c.word()?;
    let _has_nulls = c.word()?;
    let elem_oid = c.word()? as u32;
    if elem_oid != element {
        return Err(SqlError::new(
            "42804",
            format!("wrong element type: {elem_oid} where {element} is expected"),
        ));
    }
    let len = match ndim {
        0 => 0,
        1 => {
            let n = c.word()?;
            let _lower_bound = c.word()?;
            usize::try_from(n).map_err(|_| binary_format())?
        }
        _ => {
            return Err(SqlError::unsupported(
                "multidimensional arrays are not supported",
            ))
        }
    };
    // Each element takes at least its 4-byte length: a length beyond what
    // the message holds is refused before anything is allocated.
    if len > array::ELEMENTS_MAX || len > b.len() / 4 {
        return Err(binary_format());
    }
    let mut scalars = Vec::with_capacity(len);
    for _ in 0..len {
        let n = c.word()?;
        if n == -1 {
            scalars.push(null_of(element));
            continue;
        }
        let n = usize::try_from(n).map_err(|_| binary_format())?;
        scalars.push(from_binary(element, c.take(n)?, settings)?);
    }
    if c.at != b.len() {
        return Err(binary_format());
    }
    list_scalar(element, scalars)
}

/// Writes cell `row` of `array`, described to the client as `oid`, in
/// text or binary format into `out`; false (and nothing written) for NULL.
pub fn encode_cell(
    array: &ArrayRef,
    row: usize,
    oid: u32,
    binary: bool,
    settings: &Settings,
    out: &mut Vec<u8>,
) -> Result<bool, SqlError> {
    if array.is_null(row) {
        return Ok(false);
    }
    macro_rules! int {
        ($t:ty) => {{
            let v = array.as_primitive::<$t>().value(row) as i128;
            write_int(v, oid, binary, out)?
        }};
    }
    // A regproc (the catalog's pg_type.typinput and the like) prints as
    // the function's name, `-` for none.
    if oid == types::REGPROC && !binary {
        if let DataType::UInt32 = array.data_type() {
            let v = array.as_primitive::<UInt32Type>().value(row);
            let name = match v {
                0 => "-".to_string(),
                v => crate::pg_catalog::builtin::proc_name(v)
                    .map_or_else(|| v.to_string(), str::to_string),
            };
            out.extend_from_slice(name.as_bytes());
            return Ok(true);
        }
    }
    match array.data_type() {
        DataType::Int8 => int!(Int8Type),
        DataType::Int16 => int!(Int16Type),
        DataType::Int32 => int!(Int32Type),
        DataType::Int64 => int!(Int64Type),
        DataType::UInt8 => int!(UInt8Type),
        DataType::UInt16 => int!(UInt16Type),
        DataType::UInt32 => int!(UInt32Type),
        DataType::UInt64 => int!(UInt64Type),
        DataType::Float64 => {
            let v = array.as_primitive::<Float64Type>().value(row);
            if binary {
                out.extend_from_slice(&v.to_be_bytes());
            } else {
                out.extend_from_slice(float::format_f64(v, settings.extra_float_digits).as_bytes());
            }
        }
        DataType::Float32 | DataType::Float16 => {
            let v = match array.data_type() {
                DataType::Float32 => array.as_primitive::<Float32Type>().value(row),
                _ => array.as_primitive::<Float16Type>().value(row).to_f32(),
            };
            if binary {
                out.extend_from_slice(&v.to_be_bytes());
            } else {
                out.extend_from_slice(float::format_f32(v, settings.extra_float_digits).as_bytes());
            }
        }
        DataType::Boolean => {
            let v = array.as_boolean().value(row);
            if binary {
                out.push(v as u8);
            } else {
                out.push(if v { b't' } else { b'f' });
            }
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let s = match array.data_type() {
                DataType::Utf8 => array.as_string::<i32>().value(row),
                DataType::LargeUtf8 => array.as_string::<i64>().value(row),
                _ => array.as_string_view().value(row),
            };
            write_text_as(s, oid, binary, out)?;
        }
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            let b = match array.data_type() {
                DataType::Binary => array.as_binary::<i32>().value(row),
                DataType::LargeBinary => array.as_binary::<i64>().value(row),
                _ => array.as_binary_view().value(row),
            };
            if binary {
                out.extend_from_slice(b);
            } else {
                out.extend_from_slice(text::format_bytea(b).as_bytes());
            }
        }
        DataType::Decimal128(_, scale) => {
            let v = array.as_primitive::<Decimal128Type>().value(row);
            write_numeric(&decimal_numeric(v, *scale), binary, out);
        }
        DataType::Decimal256(_, scale) => {
            let v = array.as_primitive::<Decimal256Type>().value(row);
            let n = Numeric::parse(&v.to_string())
                .map_err(|_| SqlError::internal("decimal256 text"))?;
            let n = match (n, *scale) {
                (Numeric::Finite { neg, int, .. }, s) if s > 0 => {
                    let digits = format!("{}{int}", "0".repeat(s as usize + 1));
                    let (i, f) = digits.split_at(digits.len() - s as usize);
                    Numeric::parse(&format!("{}{i}.{f}", if neg { "-" } else { "" }))
                        .map_err(|_| SqlError::internal("decimal256 text"))?
                }
                (n, _) => n,
            };
            let n = if *scale >= NUMERIC_SCALE {
                n.trimmed()
            } else {
                n
            };
            write_numeric(&n, binary, out);
        }
        DataType::Date32 | DataType::Date64 => {
            let days = match array.data_type() {
                DataType::Date32 => array.as_primitive::<Date32Type>().value(row),
                _ => {
                    (array
                        .as_primitive::<Date64Type>()
                        .value(row)
                        .div_euclid(86_400_000)) as i32
                }
            };
            if binary {
                let d = match days {
                    i32::MIN | i32::MAX => days,
                    _ => days - PG_EPOCH_DAYS,
                };
                out.extend_from_slice(&d.to_be_bytes());
            } else {
                out.extend_from_slice(datetime::format_date(days).as_bytes());
            }
        }
        DataType::Timestamp(unit, tz) => {
            let us = timestamp_micros(array, row, unit);
            if binary {
                let t = match us {
                    i64::MIN | i64::MAX => us,
                    _ => us - PG_EPOCH_US,
                };
                out.extend_from_slice(&t.to_be_bytes());
            } else {
                let zone = tz.as_ref().map(|_| &settings.zone);
                out.extend_from_slice(datetime::format_timestamp(us, zone).as_bytes());
            }
        }
        DataType::List(_) | DataType::LargeList(_) => {
            let values = match array.data_type() {
                DataType::List(_) => array.as_list::<i32>().value(row),
                _ => array.as_list::<i64>().value(row),
            };
            let element = types::element_of(oid).unwrap_or(types::TEXT);
            if !binary && (oid == types::INT2VECTOR || oid == types::OIDVECTOR) {
                // int2vectorout / oidvectorout: space-separated, no braces.
                for i in 0..values.len() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    encode_cell(&values, i, element, false, settings, out)?;
                }
            } else {
                write_array(&values, element, binary, settings, out)?;
            }
        }
        DataType::Null => return Ok(false),
        _ => {
            let v = ScalarValue::try_from_array(array, row)
                .map_err(|e| SqlError::internal(e.to_string()))?;
            out.extend_from_slice(v.to_string().as_bytes());
        }
    }
    Ok(true)
}

fn timestamp_micros(array: &ArrayRef, row: usize, unit: &TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => array
            .as_primitive::<TimestampSecondType>()
            .value(row)
            .saturating_mul(1_000_000),
        TimeUnit::Millisecond => array
            .as_primitive::<TimestampMillisecondType>()
            .value(row)
            .saturating_mul(1_000),
        TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(row),
        TimeUnit::Nanosecond => array
            .as_primitive::<TimestampNanosecondType>()
            .value(row)
            .div_euclid(1_000),
    }
}

fn write_int(v: i128, oid: u32, binary: bool, out: &mut Vec<u8>) -> Result<(), SqlError> {
    if !binary {
        // Every SQL integer fits an i64, whose formatting is cheaper than
        // an i128's (which was 3 % of COPY TO's CPU, `perf`).
        let mut buf = itoa::Buffer::new();
        let text = match i64::try_from(v) {
            Ok(v) => buf.format(v),
            Err(_) => buf.format(v),
        };
        out.extend_from_slice(text.as_bytes());
        return Ok(());
    }
    let range = || SqlError::new("22003", format!("value {v} is out of range for its type"));
    match oid {
        types::INT2 => out.extend_from_slice(&i16::try_from(v).map_err(|_| range())?.to_be_bytes()),
        types::INT4 => out.extend_from_slice(&i32::try_from(v).map_err(|_| range())?.to_be_bytes()),
        types::OID | types::REGPROC => {
            out.extend_from_slice(&u32::try_from(v).map_err(|_| range())?.to_be_bytes())
        }
        _ => out.extend_from_slice(&i64::try_from(v).map_err(|_| range())?.to_be_bytes()),
    }
    Ok(())
}

fn write_numeric(n: &Numeric, binary: bool, out: &mut Vec<u8>) {
    if binary {
        out.extend_from_slice(&n.to_binary());
    } else {
        out.extend_from_slice(n.to_string().as_bytes());
    }
}

/// Text held in Arrow as Utf8 and described as `oid`: jsonb printed as
/// `jsonb_out`, an exact numeric, or plain text.
fn write_text_as(s: &str, oid: u32, binary: bool, out: &mut Vec<u8>) -> Result<(), SqlError> {
    match oid {
        types::JSONB => {
            let text = match serde_json::from_str::<serde_json::Value>(s) {
                Ok(v) => json::jsonb_text(&v),
                Err(_) => s.to_string(),
            };
            if binary {
                out.push(1);
            }
            out.extend_from_slice(text.as_bytes());
        }
        types::NUMERIC => match Numeric::parse(s) {
            Ok(n) => write_numeric(&n, binary, out),
            Err(_) => {
                return Err(SqlError::internal(format!(
                    "stored numeric value {s:?} is not a number"
                )))
            }
        },
        _ => out.extend_from_slice(s.as_bytes()),
    }
    Ok(())
}

/// `array_out` / `array_send` of a one-dimensional array.
fn write_array(
    values: &ArrayRef,
    element: u32,
    binary: bool,
    settings: &Settings,
    out: &mut Vec<u8>,
) -> Result<(), SqlError> {
    let n = values.len();
    if binary {
        let has_nulls = values.null_count() > 0;
        out.extend_from_slice(&(if n == 0 { 0i32 } else { 1 }).to_be_bytes());
        out.extend_from_slice(&(has_nulls as i32).to_be_bytes());
        out.extend_from_slice(&element.to_be_bytes());
        if n > 0 {
            out.extend_from_slice(&(n as i32).to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
        }
        for i in 0..n {
            let len_at = out.len();
            out.extend_from_slice(&(-1i32).to_be_bytes());
            if encode_cell(values, i, element, true, settings, out)? {
                let len = (out.len() - len_at - 4) as i32;
                out[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
            }
        }
        return Ok(());
    }
    let mut items: Vec<Option<String>> = Vec::with_capacity(n);
    for i in 0..n {
        let mut buf = Vec::new();
        if encode_cell(values, i, element, false, settings, &mut buf)? {
            items.push(Some(
                String::from_utf8(buf).map_err(|e| SqlError::internal(e.to_string()))?,
            ));
        } else {
            items.push(None);
        }
    }
    out.extend_from_slice(array::format(&items).as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::new_empty_array;

    fn round_trip(oid: u32, text: &str) -> (String, String) {
        let s = Settings::default();
        let v = from_text(oid, text, &s).unwrap();
        let array = v.to_array().unwrap();
        let mut t = Vec::new();
        assert!(encode_cell(&array, 0, oid, false, &s, &mut t).unwrap());
        let mut b = Vec::new();
        assert!(encode_cell(&array, 0, oid, true, &s, &mut b).unwrap());
        let back = from_binary(oid, &b, &s).unwrap();
        let mut t2 = Vec::new();
        encode_cell(&back.to_array().unwrap(), 0, oid, false, &s, &mut t2).unwrap();
        (
            String::from_utf8(t).unwrap(),
            String::from_utf8(t2).unwrap(),
        )
    }

    #[test]
    fn values_round_trip_through_text_and_binary() {
        for (oid, input, pg) in [
            (types::TEXT, "it''s", "it''s"),
            (types::INT8, "-9223372036854775808", "-9223372036854775808"),
            (types::INT2, "32767", "32767"),
            (types::FLOAT8, "-0", "-0"),
            (types::FLOAT8, "1e300", "1e+300"),
            (types::NUMERIC, "100.50", "100.50"),
            (types::NUMERIC, "-0.000123", "-0.000123"),
            (types::BOOL, "yes", "t"),
            (types::BYTEA, "\\x00ff10", "\\x00ff10"),
            (types::DATE, "0044-03-15 BC", "0044-03-15 BC"),
            (
                types::TIMESTAMPTZ,
                "2020-01-01 00:00:00.123456+00",
                "2020-01-01 00:00:00.123456+00",
            ),
            (
                types::TIMESTAMP,
                "2020-01-01 10:11:12",
                "2020-01-01 10:11:12",
            ),
            (
                1009,
                r#"{a,"b c",NULL,"\"q\""}"#,
                r#"{a,"b c",NULL,"\"q\""}"#,
            ),
            (1016, "{1,NULL,-3}", "{1,NULL,-3}"),
            (1231, "{1.50,NULL,2.5}", "{1.50,NULL,2.50}"),
        ] {
            let (text, via_binary) = round_trip(oid, input);
            assert_eq!(text, pg, "{input}");
            assert_eq!(via_binary, pg, "{input} through binary");
        }
    }

    #[test]
    fn bad_parameters_get_postgres_errors() {
        let s = Settings::default();
        assert_eq!(
            decode_param(types::TEXT, false, b"a\0b", &s)
                .unwrap_err()
                .code,
            "22021"
        );
        assert_eq!(
            decode_param(types::TEXT, true, b"\xff", &s)
                .unwrap_err()
                .code,
            "22021"
        );
        assert_eq!(
            decode_param(types::INT4, true, &[0, 0, 1], &s)
                .unwrap_err()
                .code,
            "22P03"
        );
        assert_eq!(
            decode_param(types::INT4, false, b"x", &s).unwrap_err().code,
            "22P02"
        );
        assert_eq!(
            decode_param(types::JSONB, false, br#""\u0000""#, &s)
                .unwrap_err()
                .code,
            "22P05"
        );
        assert_eq!(
            decode_param(types::DATE, false, b"2024-02-30", &s)
                .unwrap_err()
                .code,
            "22008"
        );
        assert!(new_empty_array(&DataType::Int64).is_empty());
    }
}
