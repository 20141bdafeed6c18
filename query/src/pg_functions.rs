//! PostgreSQL functions that read the session, built per statement over a
//! snapshot of what they read (a statement sees its session as it was when
//! it started): `current_setting(name [, missing_ok])`, `current_schema()`.

use crate::settings::{shown, unrecognized};
use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use std::collections::HashMap;
use std::sync::Arc;

/// The session's functions of one statement, by the names SQL calls them.
/// `current_schema`: the first schema of search_path that exists (NULL if
/// none does), as `current_schema()` answers.
pub(crate) fn session_functions(
    settings: &HashMap<String, String>,
    block_read_only: Option<bool>,
    current_schema: Option<String>,
) -> Vec<(String, Arc<ScalarUDF>)> {
    let schema = Arc::new(datafusion::logical_expr::create_udf(
        "current_schema",
        vec![],
        DataType::Utf8,
        // Stable: never folded into a cached plan.
        Volatility::Stable,
        Arc::new(move |_args: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(
                current_schema.clone(),
            )))
        }),
    ));
    let current = Arc::new(ScalarUDF::new_from_impl(CurrentSetting {
        settings: settings.clone(),
        block_read_only,
        signature: Signature::one_of(
            vec![
                TypeSignature::Exact(vec![DataType::Utf8]),
                TypeSignature::Exact(vec![DataType::Utf8, DataType::Boolean]),
            ],
            // Stable: never folded into a cached plan.
            Volatility::Stable,
        ),
    }));
    vec![
        ("current_setting".into(), current.clone()),
        ("pg_catalog.current_setting".into(), current),
        ("current_schema".into(), schema.clone()),
        ("pg_catalog.current_schema".into(), schema),
    ]
}

#[derive(Debug)]
struct CurrentSetting {
    settings: HashMap<String, String>,
    block_read_only: Option<bool>,
    signature: Signature,
}

impl PartialEq for CurrentSetting {
    fn eq(&self, other: &Self) -> bool {
        self.settings == other.settings && self.block_read_only == other.block_read_only
    }
}
impl Eq for CurrentSetting {}
impl std::hash::Hash for CurrentSetting {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Equal snapshots hash alike; the name is enough for that.
        "current_setting".hash(state)
    }
}

impl ScalarUDFImpl for CurrentSetting {
    fn name(&self) -> &str {
        "current_setting"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let names = args.args[0].to_array(rows)?;
        let names = names
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| DataFusionError::Internal("current_setting: text expected".into()))?;
        let missing_ok: Option<ArrayRef> = match args.args.get(1) {
            Some(a) => Some(a.to_array(rows)?),
            None => None,
        };
        let missing_ok = missing_ok
            .as_ref()
            .and_then(|a| a.as_any().downcast_ref::<BooleanArray>());
        let mut out = Vec::with_capacity(rows);
        for i in 0..rows {
            if names.is_null(i) {
                out.push(None);
                continue;
            }
            let name = names.value(i);
            match shown(&self.settings, self.block_read_only, name) {
                Some(v) => out.push(Some(v)),
                None if missing_ok.is_some_and(|m| !m.is_null(i) && m.value(i)) => out.push(None),
                None => return Err(DataFusionError::External(Box::new(unrecognized(name)))),
            }
        }
        let array = StringArray::from(out);
        Ok(
            if rows == 1
                && args
                    .args
                    .iter()
                    .all(|a| matches!(a, ColumnarValue::Scalar(_)))
            {
                ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?)
            } else {
                ColumnarValue::Array(Arc::new(array))
            },
        )
    }
}
