//! The one stored form of an object: what Python writes (JSON) is checked
//! and rewritten here into the form SQL writes (each value in its column
//! type's canonical form, then the binary row of `amber_catalog::row`), so
//! a table stays readable from SQL
//! whatever a procedure stores, and an unchanged object always encodes to
//! the same bytes.

use crate::convert::{
    format_date_days, hex_decode, hex_encode, parse_date_days, parse_timestamp_micros, ts_iso,
};
use crate::error::SqlError;
use crate::value::{self, numeric::Numeric};
use amber_catalog::{ClassDef, GlobalDef, SqlType};
use serde_json::{Map, Value as Json};

fn invalid(t: &SqlType, v: &Json, what: &str) -> SqlError {
    let text = v.to_string();
    let shown: String = text.chars().take(64).collect();
    SqlError::new(
        "22P02",
        format!(
            "invalid input syntax for type {}: {shown} ({what})",
            t.pg_name()
        ),
    )
}

/// The canonical JSON of one non-null value of type `t`.
pub fn canonical_value(t: &SqlType, v: &Json, what: &str) -> Result<Json, SqlError> {
    if v.is_null() {
        return Ok(Json::Null);
    }
    Ok(match t {
        SqlType::Int8 | SqlType::Int4 | SqlType::Int2 | SqlType::Ref(_) => {
            let (lo, hi) = t.integer_range().unwrap_or((i64::MIN, i64::MAX));
            match v.as_i64() {
                Some(x) if (lo..=hi).contains(&x) => Json::from(x),
                _ if v.is_number() => {
                    return Err(SqlError::new(
                        "22003",
                        format!("{what}: value {v} is out of range for type {}", t.pg_name()),
                    ))
                }
                _ => return Err(invalid(t, v, what)),
            }
        }
        SqlType::Float4 => match canonical_value(&SqlType::Float8, v, what)? {
            Json::Number(n) => {
                let narrow = n.as_f64().map(|x| x as f32).filter(|x| x.is_finite());
                match narrow {
                    Some(x) => Json::from(f64::from(x)),
                    None => {
                        return Err(SqlError::new(
                            "22003",
                            format!("{what}: value {v} is out of range for type real"),
                        ))
                    }
                }
            }
            special => special,
        },
        SqlType::Float8 => match v {
            Json::String(s) if matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity") => v.clone(),
            Json::Number(_) => match v.as_f64() {
                Some(f) if f.is_finite() => Json::from(f),
                _ => return Err(invalid(t, v, what)),
            },
            _ => return Err(invalid(t, v, what)),
        },
        SqlType::Text => match v.as_str() {
            Some(s) => Json::from(value::text::utf8(s.as_bytes())?),
            None => return Err(invalid(t, v, what)),
        },
        SqlType::Bool => match v {
            Json::Bool(_) => v.clone(),
            _ => return Err(invalid(t, v, what)),
        },
        SqlType::Bytea => match v.as_str().and_then(hex_decode) {
            Some(b) => Json::from(hex_encode(&b)),
            None => return Err(invalid(t, v, what)),
        },
        SqlType::Numeric => match v.as_str().map(Numeric::parse) {
            Some(Ok(n)) => Json::from(n.to_string()),
            _ => return Err(invalid(t, v, what)),
        },
        SqlType::Date => match v.as_str().and_then(parse_date_days) {
            Some(d) => Json::from(format_date_days(d)),
            None => return Err(invalid(t, v, what)),
        },
        SqlType::Timestamptz | SqlType::Timestamp => {
            match v.as_str().and_then(parse_timestamp_micros) {
                Some(us) => Json::from(ts_iso(us)),
                None => return Err(invalid(t, v, what)),
            }
        }
        SqlType::Jsonb => v.clone(),
        SqlType::Array(inner) => match v.as_array() {
            Some(items) => Json::Array(
                items
                    .iter()
                    .map(|x| canonical_value(inner, x, what))
                    .collect::<Result<_, _>>()?,
            ),
            None => return Err(invalid(t, v, what)),
        },
    })
}

fn parse(json: &str) -> Result<Json, SqlError> {
    value::json::parse(json, true).map_err(value::json_error)
}

/// The stored bytes of an object of `class` written as `json`.
pub fn canonical_object(class: &ClassDef, json: &str) -> Result<Vec<u8>, SqlError> {
    let Json::Object(mut given) = parse(json)? else {
        return Err(SqlError::new(
            "22P02",
            format!(
                "an object of {} must be stored as a JSON object",
                class.name
            ),
        ));
    };
    let mut out = Map::new();
    for c in &class.columns {
        let v = given.remove(&c.name).unwrap_or(Json::Null);
        if v.is_null() && !c.nullable {
            return Err(SqlError::new(
                "23502",
                format!(
                    "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                    c.name, class.table
                ),
            ));
        }
        let what = format!("{}.{}", class.name, c.name);
        out.insert(
            c.name.clone(),
            crate::declared::apply(c, canonical_value(&c.ty, &v, &what)?)?,
        );
    }
    if let Some(extra) = given.keys().next() {
        return Err(SqlError::new(
            "42703",
            format!(
                "column \"{extra}\" of relation \"{}\" does not exist",
                class.table
            ),
        ));
    }
    Ok(amber_catalog::row::encode(class, &out)?)
}

/// The stored bytes of a module variable written as `json`.
pub fn canonical_global(global: &GlobalDef, json: &str) -> Result<Vec<u8>, SqlError> {
    let v = parse(json)?;
    if v.is_null() && !global.nullable {
        return Err(SqlError::new(
            "23502",
            format!("module variable {} may not be None", global.name),
        ));
    }
    let v = canonical_value(&global.ty, &v, &global.name)?;
    serde_json::to_vec(&v).map_err(|e| SqlError::internal(e.to_string()))
}

/// A stored value converted to type `t` (a module variable whose type
/// changed): what PostgreSQL's assignment casts would do for the scalar
/// types (numbers and booleans to text, numbers between numeric types),
/// or the canonical value if it already fits.
pub fn convert_value(t: &SqlType, v: &Json) -> Result<Json, SqlError> {
    if let Ok(same) = canonical_value(t, v, "value") {
        return Ok(same);
    }
    let converted = match (t, v) {
        (SqlType::Text, Json::Number(_) | Json::Bool(_)) => Json::from(v.to_string()),
        (SqlType::Numeric, Json::Number(n)) => Json::from(n.to_string()),
        // float to integer rounds half to even, as PostgreSQL's rint.
        (SqlType::Int8 | SqlType::Int4 | SqlType::Int2, Json::Number(n)) => {
            match n.as_f64().map(f64::round_ties_even) {
                // i64's range as doubles: [-2^63, 2^63).
                Some(f) if (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) => {
                    Json::from(f as i64)
                }
                _ => {
                    return Err(SqlError::new(
                        "22003",
                        format!("value {v} is out of range for type {}", t.pg_name()),
                    ))
                }
            }
        }
        (SqlType::Float8, Json::String(s)) => match Numeric::parse(s) {
            Ok(_) => s
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Json::from)
                .ok_or_else(|| invalid(t, v, "value"))?,
            Err(_) => return Err(invalid(t, v, "value")),
        },
        _ => return Err(invalid(t, v, "value")),
    };
    canonical_value(t, &converted, "value")
}
