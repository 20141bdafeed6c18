//! What Python calls need from the SQL layer (`CallServices`): `amber.sql()`
//! run inside the calling transaction, and the canonical stored form of the
//! values a procedure writes.

use crate::convert;
use crate::error::SqlError;
use crate::parse::parse_statements;
use crate::session::{Engine, Output, PreparedKind, Session};
use crate::value::{self, types::PG_TYPE_KEY};
use amber_catalog::SqlType;
use amber_catalog::{ClassDef, GlobalDef};
use amber_runtime::{CallServices, RuntimeError, TxnHandle};
use amber_storage::Txn;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast::Statement;
use serde_json::Value as Json;
use std::sync::{Arc, Weak};

pub(crate) struct NestedSql {
    pub engine: Weak<Engine>,
    pub handle: tokio::runtime::Handle,
}

/// A parameter from Python: `[type, value]` in the column encoding of
/// that type (`_sql_param` in prelude.py).
fn param(v: &Json) -> Result<ScalarValue, SqlError> {
    let (t, value) = match v.as_array().map(Vec::as_slice) {
        Some([Json::String(t), value]) => (t.as_str(), value),
        _ => {
            return Err(SqlError::new(
                "22P02",
                format!("malformed amber.sql() parameter {v}"),
            ))
        }
    };
    if t == "null" {
        return Ok(ScalarValue::Null);
    }
    let t = SqlType::parse(t)
        .ok_or_else(|| SqlError::new("22P02", format!("unknown amber.sql() parameter type {t}")))?;
    convert::json_to_scalar(&t, value)
}

/// The column type a result column is returned to Python as.
fn result_type(field: &Field) -> SqlType {
    match field.metadata().get(PG_TYPE_KEY).map(String::as_str) {
        Some("jsonb") | Some("json") => return SqlType::Jsonb,
        Some("numeric") => return SqlType::Numeric,
        _ => {}
    }
    match field.data_type() {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => SqlType::Int8,
        DataType::Float16 | DataType::Float32 | DataType::Float64 => SqlType::Float8,
        DataType::Boolean => SqlType::Bool,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => SqlType::Bytea,
        DataType::Decimal128(..) | DataType::Decimal256(..) => SqlType::Numeric,
        DataType::Date32 | DataType::Date64 => SqlType::Date,
        DataType::Timestamp(_, None) => SqlType::Timestamp,
        DataType::Timestamp(..) => SqlType::Timestamptz,
        DataType::List(f) | DataType::LargeList(f) => match result_type(f) {
            SqlType::Array(_) | SqlType::Jsonb => SqlType::Jsonb,
            inner => SqlType::Array(Box::new(inner)),
        },
        _ => SqlType::Text,
    }
}

/// Rows for Python: `{"types": [...], "rows": [[...]]}`, each value in
/// its column type's encoding, which `_dec` turns into Python values.
fn rows_for_python(out: Output, settings: &value::Settings) -> Result<Json, SqlError> {
    let Output::Rows {
        schema, batches, ..
    } = out
    else {
        return Ok(serde_json::json!({"types": [], "rows": []}));
    };
    let types: Vec<SqlType> = schema.fields().iter().map(|f| result_type(f)).collect();
    let mut rows = Vec::new();
    for b in &batches {
        for r in 0..b.num_rows() {
            let mut row = Vec::with_capacity(b.num_columns());
            for (c, t) in types.iter().enumerate() {
                let v = convert::cell(b.column(c), r)?;
                let v = match (t, &v) {
                    // Any other type is returned as its text.
                    (SqlType::Text, v) if !matches!(v, ScalarValue::Utf8(_)) => {
                        if v.is_null() {
                            ScalarValue::Utf8(None)
                        } else {
                            ScalarValue::Utf8(Some(convert::scalar_text(v)))
                        }
                    }
                    _ => v,
                };
                row.push(convert::scalar_to_json(t, &v, settings)?);
            }
            rows.push(Json::Array(row));
        }
    }
    let types: Vec<Json> = types.iter().map(|t| Json::from(t.describe())).collect();
    Ok(serde_json::json!({"types": types, "rows": rows}))
}

impl CallServices for NestedSql {
    fn put_object(
        &self,
        txn: &mut Txn,
        module: &str,
        class: &ClassDef,
        oid: u64,
        json: &str,
    ) -> Result<(), RuntimeError> {
        let stored = crate::canonical::canonical_object(class, json).map_err(call_error)?;
        crate::index::put_stored(txn, module, class, oid, &stored).map_err(call_error)
    }

    fn index_lookup(
        &self,
        txn: &Txn,
        class: &ClassDef,
        index: &amber_catalog::IndexDef,
        values_json: &str,
        rows_max: usize,
    ) -> Result<Vec<u64>, RuntimeError> {
        crate::index::lookup_json(txn, class, index, values_json, rows_max).map_err(call_error)
    }

    fn delete_object(&self, txn: &mut Txn, class: &ClassDef, oid: u64) -> Result<(), RuntimeError> {
        crate::index::delete_stored(txn, class, oid).map_err(call_error)
    }

    fn global(&self, global: &GlobalDef, json: &str) -> Result<Vec<u8>, (String, String)> {
        crate::canonical::canonical_global(global, json).map_err(|e| (e.code, e.message))
    }

    fn sql(
        &self,
        sql: &str,
        params_json: &str,
        txn: &TxnHandle,
        deadline: Option<std::time::Instant>,
        cancel: Option<&Arc<std::sync::atomic::AtomicBool>>,
    ) -> Result<String, (String, String)> {
        let engine = self
            .engine
            .upgrade()
            .ok_or_else(|| ("57P01".to_string(), "server is shutting down".to_string()))?;
        let fail = |e: SqlError| (e.code, e.message);
        let params: Vec<ScalarValue> = serde_json::from_str::<Vec<Json>>(params_json)
            .map_err(|e| ("22P02".to_string(), e.to_string()))?
            .iter()
            .map(param)
            .collect::<Result<_, _>>()
            .map_err(fail)?;
        // This runs on a Python worker thread, never on a tokio thread.
        let out = self
            .handle
            .block_on(Session::execute_nested(
                engine,
                sql,
                &params,
                txn,
                deadline,
                cancel.cloned(),
            ))
            .map_err(fail)?;
        // Values reach Python in UTC and at full float precision; the
        // calling session's settings only shape text for clients.
        let rows = rows_for_python(out, &value::Settings::default()).map_err(fail)?;
        Ok(rows.to_string())
    }
}

pub(crate) fn install(engine: &Arc<Engine>) {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        engine.runtime.set_services(Arc::new(NestedSql {
            engine: Arc::downgrade(engine),
            handle,
        }));
    }
}

/// How often a nested statement (`amber.sql()`) looks at its call's cancel
/// flag.
const NESTED_CANCEL_POLL_MS: u64 = 25;

impl Session {
    /// Runs one statement of `amber.sql()` in the calling transaction.
    pub(crate) async fn execute_nested(
        engine: Arc<Engine>,
        sql: &str,
        params: &[ScalarValue],
        txn: &TxnHandle,
        deadline: Option<std::time::Instant>,
        cancel: Option<Arc<std::sync::atomic::AtomicBool>>,
    ) -> Result<Output, SqlError> {
        let mut session = Session::new(engine);
        session.allow_python = false;
        // The calling statement's limits: its deadline, and its cancel
        // flag (the Python call is not watched while its SQL runs).
        session.statement_deadline = deadline;
        if let Some(c) = &cancel {
            session.cancel = c.clone();
        }
        let limits = async {
            let cancelled = async {
                loop {
                    if cancel
                        .as_ref()
                        .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed))
                    {
                        return "user request";
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(NESTED_CANCEL_POLL_MS))
                        .await;
                }
            };
            let late = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
                "statement timeout"
            };
            tokio::select! {
                r = cancelled => r,
                r = late => r,
            }
        };
        tokio::select! {
            r = Session::run_nested(&mut session, sql, params, txn) => r,
            reason = limits => Err(SqlError::new(
                "57014",
                format!("canceling statement due to {reason}"),
            )),
        }
    }

    pub(crate) async fn run_nested(
        session: &mut Session,
        sql: &str,
        params: &[ScalarValue],
        txn: &TxnHandle,
    ) -> Result<Output, SqlError> {
        let mut stmts = parse_statements(sql)?;
        if stmts.len() != 1 {
            return Err(SqlError::syntax("amber.sql() runs exactly one statement"));
        }
        match stmts.pop() {
            Some(PreparedKind::Sql(stmt)) => match stmt.as_ref() {
                Statement::StartTransaction { .. }
                | Statement::Commit { .. }
                | Statement::Rollback { .. } => Err(SqlError::new(
                    "2D000",
                    "amber.sql() cannot control the transaction of the call",
                )),
                other => session.execute_in_txn(other, params, txn).await,
            },
            _ => Err(SqlError::unsupported("module DDL inside amber.sql()")),
        }
    }

    pub(crate) fn python_allowed(&self) -> Result<(), SqlError> {
        if self.allow_python {
            Ok(())
        } else {
            Err(SqlError::unsupported(
                "calling module functions from amber.sql() is not supported yet",
            ))
        }
    }
}

/// A refused write as the call's error (detail kept: a unique violation's
/// `Key (email)=(...) already exists.`).
fn call_error(e: SqlError) -> RuntimeError {
    RuntimeError::Python {
        sqlstate: e.code,
        message: e.message,
        detail: e.detail,
    }
}
