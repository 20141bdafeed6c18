//! PostgreSQL's JSON constructors that catalog queries use:
//! `json_build_object(k1, v1, ...)` (SQLAlchemy's column reflection) and
//! `json_build_array(v1, ...)`, their values typed `json` on the wire.

use crate::value::types::PG_TYPE_KEY;
use datafusion::arrow::array::{ArrayRef, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonBuild {
    name: &'static str,
    object: bool,
    signature: Signature,
}

pub(crate) fn functions() -> Vec<ScalarUDF> {
    [("json_build_object", true), ("json_build_array", false)]
        .into_iter()
        .map(|(name, object)| {
            ScalarUDF::new_from_impl(JsonBuild {
                name,
                object,
                signature: Signature::variadic_any(Volatility::Immutable),
            })
        })
        .collect()
}

/// A value as PostgreSQL's to_json renders it.
fn to_json(v: &ScalarValue) -> Json {
    if v.is_null() {
        return Json::Null;
    }
    match v {
        ScalarValue::Boolean(Some(b)) => Json::Bool(*b),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Json::String(s.clone()),
        ScalarValue::Float64(Some(f)) => {
            serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number)
        }
        ScalarValue::Float32(Some(f)) => {
            serde_json::Number::from_f64(f64::from(*f)).map_or(Json::Null, Json::Number)
        }
        other => match other.cast_to(&DataType::Int64) {
            Ok(ScalarValue::Int64(Some(i))) if other.data_type().is_integer() => Json::from(i),
            _ => Json::String(other.to_string()),
        },
    }
}

impl ScalarUDFImpl for JsonBuild {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> DfResult<FieldRef> {
        Ok(Arc::new(
            Field::new(self.name, DataType::Utf8, true).with_metadata(HashMap::from([(
                PG_TYPE_KEY.to_string(),
                "json".to_string(),
            )])),
        ))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        if self.object && !args.args.len().is_multiple_of(2) {
            return Err(crate::error::SqlError::new(
                "22023",
                "argument list must have even number of elements",
            )
            .into());
        }
        let rows = args.number_rows;
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<DfResult<_>>()?;
        let mut out = StringBuilder::new();
        for row in 0..rows {
            let values = arrays
                .iter()
                .map(|a| ScalarValue::try_from_array(a, row))
                .collect::<DfResult<Vec<_>>>()?;
            let json = if self.object {
                let mut map = serde_json::Map::new();
                for pair in values.chunks(2) {
                    let key = match &pair[0] {
                        k if k.is_null() => {
                            return Err(crate::error::SqlError::new(
                                "22004",
                                "null value not allowed for object key",
                            )
                            .into())
                        }
                        ScalarValue::Utf8(Some(s)) => s.clone(),
                        k => k.to_string(),
                    };
                    map.insert(key, to_json(&pair[1]));
                }
                Json::Object(map)
            } else {
                Json::Array(values.iter().map(to_json).collect())
            };
            out.append_value(json.to_string());
        }
        let array: ArrayRef = Arc::new(out.finish());
        if array.len() != rows {
            return Err(DataFusionError::Internal(format!(
                "{}: row count",
                self.name
            )));
        }
        Ok(ColumnarValue::Array(array))
    }
}
