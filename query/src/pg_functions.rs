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
/// Settings `set_config()` calls of a statement set, in call order.
pub(crate) type PendingSettings = Arc<std::sync::Mutex<Vec<(String, String)>>>;

pub(crate) fn take_pending(pending: &PendingSettings) -> Vec<(String, String)> {
    pending
        .lock()
        .map(|mut p| std::mem::take(&mut *p))
        .unwrap_or_default()
}

/// Most `set_config()` calls one statement may make (each is a setting to
/// apply when it ends).
const SET_CONFIG_CALLS_MAX: usize = 1024;

pub(crate) fn session_functions(
    backend_pid: i32,
    settings: &Arc<HashMap<String, String>>,
    block_read_only: Option<bool>,
    schemas: Vec<String>,
    pending: &PendingSettings,
) -> Vec<(String, Arc<ScalarUDF>)> {
    let current_schema = schemas.first().cloned();
    // current_schemas(include_implicit): pg_catalog first unless the path
    // names it.
    let implicit: Vec<String> = match schemas.iter().any(|s| s == "pg_catalog") {
        true => schemas.clone(),
        false => std::iter::once("pg_catalog".to_string())
            .chain(schemas.iter().cloned())
            .collect(),
    };
    let name_list = |items: &[String]| {
        let field = Arc::new(
            datafusion::arrow::datatypes::Field::new("item", DataType::Utf8, true).with_metadata(
                HashMap::from([(
                    crate::value::types::PG_TYPE_KEY.to_string(),
                    "name".to_string(),
                )]),
            ),
        );
        let values: ArrayRef = Arc::new(StringArray::from(items.to_vec()));
        ScalarValue::List(Arc::new(datafusion::arrow::array::ListArray::new(
            field,
            datafusion::arrow::buffer::OffsetBuffer::from_lengths([items.len()]),
            values,
            None,
        )))
    };
    let (explicit, implicit) = (name_list(&schemas), name_list(&implicit));
    let list_type = explicit.data_type();
    let schemas_fn = Arc::new(datafusion::logical_expr::create_udf(
        "current_schemas",
        vec![DataType::Boolean],
        list_type,
        // Stable: never folded into a cached plan.
        Volatility::Stable,
        Arc::new(move |args: &[ColumnarValue]| {
            let with_implicit = matches!(
                args.first(),
                Some(ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))))
            );
            Ok(ColumnarValue::Scalar(match with_implicit {
                true => implicit.clone(),
                false => explicit.clone(),
            }))
        }),
    ));
    let pid = Arc::new(datafusion::logical_expr::create_udf(
        "pg_backend_pid",
        vec![],
        DataType::Int32,
        // Stable: never folded into a plan another session could reuse.
        Volatility::Stable,
        Arc::new(move |_args: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(ScalarValue::Int32(Some(backend_pid))))
        }),
    ));
    // Amber has no standbys: never in recovery.
    let recovery = Arc::new(datafusion::logical_expr::create_udf(
        "pg_is_in_recovery",
        vec![],
        DataType::Boolean,
        Volatility::Stable,
        Arc::new(|_args: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(false))))
        }),
    ));
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
    let set_config = Arc::new(ScalarUDF::new_from_impl(SetConfig {
        pending: pending.clone(),
        signature: Signature::exact(
            vec![DataType::Utf8, DataType::Utf8, DataType::Boolean],
            // Volatile: it changes the session; never folded or cached.
            Volatility::Volatile,
        ),
    }));
    vec![
        ("set_config".into(), set_config.clone()),
        ("pg_catalog.set_config".into(), set_config),
        ("current_setting".into(), current.clone()),
        ("pg_catalog.current_setting".into(), current),
        ("current_schema".into(), schema.clone()),
        ("pg_catalog.current_schema".into(), schema),
        ("current_schemas".into(), schemas_fn.clone()),
        ("pg_catalog.current_schemas".into(), schemas_fn),
        ("pg_backend_pid".into(), pid.clone()),
        ("pg_catalog.pg_backend_pid".into(), pid),
        ("pg_is_in_recovery".into(), recovery.clone()),
        ("pg_catalog.pg_is_in_recovery".into(), recovery),
    ]
}

#[derive(Debug)]
struct CurrentSetting {
    settings: Arc<HashMap<String, String>>,
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

/// `set_config(name, value, is_local)`: checked as SET checks it, applied
/// to the session when the statement succeeds; returns the value kept.
/// `is_local` (until the end of the transaction) is applied as SET: Amber
/// has no SET LOCAL yet.
#[derive(Debug)]
struct SetConfig {
    pending: PendingSettings,
    signature: Signature,
}

impl PartialEq for SetConfig {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.pending, &other.pending)
    }
}
impl Eq for SetConfig {}
impl std::hash::Hash for SetConfig {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "set_config".hash(state);
    }
}

impl ScalarUDFImpl for SetConfig {
    fn name(&self) -> &str {
        "set_config"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let n = args.number_rows;
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| a.to_array(n))
            .collect::<DfResult<_>>()?;
        let (Some(names), Some(values)) = (arrays.first(), arrays.get(1)) else {
            return Err(DataFusionError::Internal(
                "set_config: three arguments".into(),
            ));
        };
        let text = |a: &ArrayRef, i: usize| -> DfResult<Option<String>> {
            let v = ScalarValue::try_from_array(a, i)?;
            Ok(match v {
                ScalarValue::Utf8(s) => s,
                other if other.is_null() => None,
                other => Some(other.to_string()),
            })
        };
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let Some(name) = text(names, i)? else {
                return Err(
                    crate::error::SqlError::new("22004", "SET requires parameter name").into(),
                );
            };
            let name = name.to_lowercase();
            let value = text(values, i)?.unwrap_or_default();
            let value = crate::session::Session::checked_setting(&name, &value)?;
            let mut pending = self
                .pending
                .lock()
                .map_err(|_| DataFusionError::Internal("set_config poisoned".into()))?;
            if pending.len() >= SET_CONFIG_CALLS_MAX {
                return Err(crate::error::SqlError::new(
                    "54000",
                    format!("more than {SET_CONFIG_CALLS_MAX} set_config calls in one statement"),
                )
                .into());
            }
            pending.push((name.clone(), value.clone()));
            out.push(Some(shown_value(&name, &value)));
        }
        Ok(ColumnarValue::Array(Arc::new(StringArray::from(out))))
    }
}

/// What SHOW would print for `value` of `name` (set_config returns it).
fn shown_value(name: &str, value: &str) -> String {
    let mut one = HashMap::new();
    one.insert(name.to_string(), value.to_string());
    shown(&one, None, name).unwrap_or_else(|| value.to_string())
}
