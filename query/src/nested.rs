//! `amber.sql()`: SQL run from Python, inside the calling transaction.

use crate::convert;
use crate::session::{Engine, Output, Session};
use amber_runtime::{SqlCallback, TxnHandle};
use datafusion::common::ScalarValue;
use serde_json::Value as Json;
use std::sync::{Arc, Weak};

pub(crate) struct NestedSql {
    pub engine: Weak<Engine>,
    pub handle: tokio::runtime::Handle,
}

fn param(v: &Json) -> ScalarValue {
    match v {
        Json::Null => ScalarValue::Null,
        Json::Bool(b) => ScalarValue::Boolean(Some(*b)),
        Json::Number(n) => match n.as_i64() {
            Some(i) => ScalarValue::Int64(Some(i)),
            None => ScalarValue::Float64(n.as_f64()),
        },
        Json::String(s) => ScalarValue::Utf8(Some(s.clone())),
        other => ScalarValue::Utf8(Some(other.to_string())),
    }
}

impl SqlCallback for NestedSql {
    fn run(
        &self,
        sql: &str,
        params_json: &str,
        txn: &TxnHandle,
    ) -> Result<String, (String, String)> {
        let engine = self
            .engine
            .upgrade()
            .ok_or_else(|| ("57P01".to_string(), "server is shutting down".to_string()))?;
        let params: Vec<ScalarValue> = serde_json::from_str::<Vec<Json>>(params_json)
            .map_err(|e| ("22P02".to_string(), e.to_string()))?
            .iter()
            .map(param)
            .collect();
        // This runs on a Python worker thread, never on a tokio thread.
        let out = self
            .handle
            .block_on(Session::execute_nested(engine, sql, &params, txn))
            .map_err(|e| (e.code, e.message))?;
        let mut rows = Vec::new();
        if let Output::Rows { batches, .. } = out {
            for b in &batches {
                for r in 0..b.num_rows() {
                    let mut row = Vec::with_capacity(b.num_columns());
                    for c in 0..b.num_columns() {
                        let v = convert::cell(b.column(c), r).map_err(|e| (e.code, e.message))?;
                        row.push(convert::scalar_to_plain_json(&v));
                    }
                    rows.push(Json::Array(row));
                }
            }
        }
        Ok(Json::Array(rows).to_string())
    }
}

pub(crate) fn install(engine: &Arc<Engine>) {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        engine.runtime.set_sql_callback(Arc::new(NestedSql {
            engine: Arc::downgrade(engine),
            handle,
        }));
    }
}
