//! Sessions: transaction state, statement dispatch, query execution.

use crate::constant::{self, constant_values};
use crate::convert;
use crate::ddl::{self, ModuleDdl};
use crate::error::SqlError;
use crate::exact::ExactNumeric;
use crate::names;
use crate::parse::parse_statements;
use crate::table::{self, ClassTable, PythonUdf, UdfEnv};
use crate::value;
use amber_catalog::{Catalog, ModuleDef, ModuleSet, Returns, SqlType};
use amber_runtime::{CallSpec, Runtime, TxnHandle, WorkerConfig};
use amber_storage::{Store, Txn};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    self, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, ObjectName, Query, SetExpr,
    Statement, TableFactor, Value,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use serde_json::Value as Json;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// How often a nested statement (`amber.sql()`) looks at its call's cancel
/// flag.
const NESTED_CANCEL_POLL_MS: u64 = 25;

/// Shared by all sessions.
pub struct Engine {
    pub store: Store,
    pub catalog: Catalog,
    pub runtime: Arc<Runtime>,
    /// Autocommit module deploys run one at a time (so two of them never
    /// fail each other with 40001); deploys inside a transaction block
    /// take no lock and serialize through their reads like any writer.
    pub(crate) ddl_lock: tokio::sync::Mutex<()>,
}

impl Engine {
    pub fn open(store: Store, workers: WorkerConfig) -> Result<Arc<Engine>, SqlError> {
        let txn = store.begin()?;
        let catalog = Catalog::load(&txn)?;
        txn.rollback();
        let runtime = Arc::new(Runtime::new(store.clone(), workers));
        let engine = Arc::new(Engine {
            store,
            catalog,
            runtime,
            ddl_lock: tokio::sync::Mutex::new(()),
        });
        crate::nested::install(&engine);
        Ok(engine)
    }
}

/// What one statement produced.
#[derive(Debug)]
pub enum Output {
    Rows {
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        /// `SELECT n`, `INSERT 0 n` (with RETURNING), ...
        tag: String,
    },
    Command(String),
    /// BEGIN: the session is now in a transaction block.
    TxnStart(String),
    /// COMMIT / ROLLBACK: the block ended.
    TxnEnd(String),
    /// COPY FROM STDIN: the client is to send the data (CopyInResponse),
    /// to `Session::copy_data` and `copy_done`.
    CopyIn {
        columns: usize,
        binary: bool,
    },
    /// COPY TO STDOUT: the data, one message per row.
    CopyOut(crate::copy::CopyOutRows),
}

pub(crate) enum TxnState {
    Idle,
    Open(TxnHandle),
    Failed,
}

/// A statement parsed once, executed many times (extended protocol).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub sql: String,
    pub kind: PreparedKind,
    pub param_types: Vec<DataType>,
    /// Wire type oid of each parameter (jsonb where the parameter feeds a
    /// jsonb column, argument or cast; otherwise its Arrow type's).
    pub param_oids: Vec<u32>,
    /// Columns of the result; `None` for a statement without rows.
    pub columns: Option<SchemaRef>,
}

#[derive(Debug, Clone)]
pub enum PreparedKind {
    Empty,
    Module(ModuleDdl),
    Sql(Box<Statement>),
}

pub struct Session {
    pub(crate) engine: Arc<Engine>,
    pub(crate) state: TxnState,
    settings: HashMap<String, String>,
    srf_counter: u64,
    /// False for SQL run by `amber.sql()` from inside a Python call: a nested
    /// Python call would need a second worker and could deadlock the pool.
    allow_python: bool,
    /// When the running statement's statement_timeout expires.
    statement_deadline: Option<std::time::Instant>,
    /// The open transaction is the implicit one of a multi-statement simple
    /// query (PostgreSQL runs those statements as one transaction).
    implicit: bool,
    /// Set by a cancel request for this session's running statement.
    cancel: Arc<std::sync::atomic::AtomicBool>,
    /// Settings changed by SET that PostgreSQL reports to the client
    /// (ParameterStatus), by their reported names; at most one entry per
    /// name, so bounded by the number of reported settings.
    reported: Vec<(String, String)>,
    /// How values are read and written, kept in step with `settings` by
    /// `set_setting` (so no statement parses TimeZone again).
    values: value::Settings,
    /// The modules the running statement uses, as its transaction sees
    /// them (set when the statement starts, by `use_modules`).
    modules: ModuleSet,
    /// Modules deployed or dropped by the open transaction block: shown to
    /// the shared catalog cache when the block commits.
    deployed: Vec<crate::ddl::Deployed>,
    /// The COPY FROM STDIN waiting for its data, if any.
    pub(crate) copy_in: Option<Box<crate::copy::CopyIn>>,
}

/// Settings PostgreSQL reports with ParameterStatus when they change
/// (GUC_REPORT): (lower-case name, reported name).
const REPORTED_SETTINGS: &[(&str, &str)] = &[
    ("timezone", "TimeZone"),
    ("datestyle", "DateStyle"),
    ("intervalstyle", "IntervalStyle"),
    ("application_name", "application_name"),
];

impl Session {
    pub fn new(engine: Arc<Engine>) -> Session {
        Session {
            engine,
            state: TxnState::Idle,
            settings: HashMap::new(),
            srf_counter: 0,
            allow_python: true,
            statement_deadline: None,
            implicit: false,
            cancel: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            reported: Vec::new(),
            values: value::Settings::default(),
            modules: ModuleSet::default(),
            deployed: Vec::new(),
            copy_in: None,
        }
    }

    /// Settings changed since the last call that the client must be told
    /// of (ParameterStatus), as (name, value).
    pub fn take_reported(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.reported)
    }

    fn set_setting(&mut self, name: String, value: String) {
        if let Some((_, reported)) = REPORTED_SETTINGS.iter().find(|(n, _)| *n == name) {
            self.reported.retain(|(n, _)| n != reported);
            self.reported.push((reported.to_string(), value.clone()));
        }
        match name.as_str() {
            "timezone" => {
                self.values.zone = value::Zone::parse(&value).unwrap_or(value::Zone::UTC);
            }
            "extra_float_digits" => {
                self.values.extra_float_digits = value.trim().parse().unwrap_or(1);
            }
            _ => {}
        }
        self.settings.insert(name, value);
    }

    /// statement_timeout in milliseconds (0: none). The value was checked
    /// when it was SET, so an unreadable one never means "no limit".
    fn statement_timeout_ms(&self) -> u64 {
        self.settings
            .get("statement_timeout")
            .and_then(|v| duration_ms(v))
            .unwrap_or(0)
    }

    /// How this session reads and writes values (TimeZone,
    /// extra_float_digits), as its settings say (validated when SET).
    pub fn value_settings(&self) -> value::Settings {
        self.values.clone()
    }

    /// Checks a SET of a setting whose value Amber interprets, with
    /// PostgreSQL's error for a bad value (22023), and returns the value
    /// to keep.
    fn checked_setting(name: &str, value: &str) -> Result<String, SqlError> {
        let bad = || {
            SqlError::new(
                "22023",
                format!("invalid value for parameter \"{name}\": \"{value}\""),
            )
        };
        match name {
            "timezone" => {
                if value.eq_ignore_ascii_case("local") || value.eq_ignore_ascii_case("default") {
                    return Ok("UTC".into());
                }
                value::Zone::parse(value).ok_or_else(bad)?;
                Ok(value.to_string())
            }
            "statement_timeout" => {
                let ms = duration_ms(value).ok_or_else(bad)?;
                if ms > i32::MAX as u64 {
                    return Err(SqlError::new(
                        "22023",
                        format!("{ms} ms is outside the valid range for parameter \"statement_timeout\" (0 .. {})", i32::MAX),
                    ));
                }
                Ok(ms.to_string())
            }
            "extra_float_digits" => {
                let d: i32 = value.trim().parse().map_err(|_| bad())?;
                if !(-15..=3).contains(&d) {
                    return Err(SqlError::new(
                        "22023",
                        format!("{d} is outside the valid range for parameter \"extra_float_digits\" (-15 .. 3)"),
                    ));
                }
                Ok(d.to_string())
            }
            _ => Ok(value.to_string()),
        }
    }

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

    async fn run_nested(
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

    fn python_allowed(&self) -> Result<(), SqlError> {
        if self.allow_python {
            Ok(())
        } else {
            Err(SqlError::unsupported(
                "calling module functions from amber.sql() is not supported yet",
            ))
        }
    }

    /// The flag a cancel request sets to interrupt the running statement.
    pub fn cancel_flag(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.cancel.clone()
    }

    pub fn in_transaction(&self) -> bool {
        !matches!(self.state, TxnState::Idle)
    }

    pub fn is_failed(&self) -> bool {
        matches!(self.state, TxnState::Failed)
    }

    /// Runs a simple-protocol query string: statements in order, stopping
    /// at the first error (which is the last element).
    pub async fn execute_simple(&mut self, sql: &str) -> Vec<Result<Output, SqlError>> {
        let stmts = match parse_statements(sql) {
            Ok(s) => s,
            Err(e) => {
                if let TxnState::Open(_) = self.state {
                    self.state = TxnState::Failed;
                }
                return vec![Err(e)];
            }
        };
        if stmts.len() > 1
            && stmts.iter().any(|k| {
                matches!(k, PreparedKind::Sql(s) if matches!(**s, Statement::Copy { to: false, .. }))
            })
        {
            // Its data would arrive after the statements that follow it
            // had run.
            self.abandon_copy();
            return vec![Err(SqlError::unsupported(
                "COPY FROM STDIN in a query string with other statements: send it alone",
            ))];
        }
        let mut out = Vec::with_capacity(stmts.len());
        if stmts.len() > 1 && matches!(self.state, TxnState::Idle) {
            match self.engine.store.begin() {
                Ok(txn) => {
                    self.state = TxnState::Open(Arc::new(Mutex::new(txn)));
                    self.implicit = true;
                    self.deployed.clear();
                }
                Err(e) => return vec![Err(e.into())],
            }
        }
        for kind in stmts {
            let r = self.execute_kind(&kind, &[]).await;
            let failed = r.is_err();
            out.push(r);
            if failed {
                if self.implicit {
                    self.state = TxnState::Idle;
                    self.implicit = false;
                }
                break;
            }
        }
        if self.implicit {
            self.implicit = false;
            if let TxnState::Open(handle) = std::mem::replace(&mut self.state, TxnState::Idle) {
                match commit(handle).await {
                    Ok(()) => self.block_committed(),
                    Err(e) => out.push(Err(e)),
                }
            }
        }
        out
    }

    /// Parses one statement for the extended protocol and describes it.
    pub async fn prepare(
        &mut self,
        sql: &str,
        client_types: &[Option<DataType>],
    ) -> Result<Prepared, SqlError> {
        let result = self.prepare_inner(sql, client_types).await;
        if result.is_err() {
            if let TxnState::Open(_) = self.state {
                // As in PostgreSQL, a statement that fails to parse or plan
                // aborts the transaction block.
                self.state = TxnState::Failed;
            }
        }
        result
    }

    async fn prepare_inner(
        &mut self,
        sql: &str,
        client_types: &[Option<DataType>],
    ) -> Result<Prepared, SqlError> {
        let mut stmts = parse_statements(sql)?;
        if stmts.len() > 1 {
            return Err(SqlError::syntax(
                "cannot insert multiple commands into a prepared statement",
            ));
        }
        let kind = stmts.pop().unwrap_or(PreparedKind::Empty);
        let (param_types, jsonb, columns) = match &kind {
            PreparedKind::Sql(stmt) => self.describe(stmt, client_types).await?,
            _ => (Vec::new(), HashSet::new(), None),
        };
        let param_oids = param_types
            .iter()
            .enumerate()
            .map(|(i, t)| {
                if jsonb.contains(&i) {
                    value::types::JSONB
                } else {
                    value::types::oid_of(t)
                }
            })
            .collect();
        Ok(Prepared {
            sql: sql.to_string(),
            kind,
            param_types,
            param_oids,
            columns,
        })
    }

    pub async fn execute_prepared(
        &mut self,
        prepared: &Prepared,
        params: &[ScalarValue],
    ) -> Result<Output, SqlError> {
        self.execute_kind(&prepared.kind, params).await
    }

    async fn execute_kind(
        &mut self,
        kind: &PreparedKind,
        params: &[ScalarValue],
    ) -> Result<Output, SqlError> {
        self.abandon_copy();
        match kind {
            PreparedKind::Empty => Ok(Output::Command(String::new())),
            PreparedKind::Module(ddl) => {
                if self.is_failed() {
                    return Err(aborted());
                }
                self.start_statement();
                self.module_ddl(ddl).await
            }
            PreparedKind::Sql(stmt) => self.execute_statement(stmt, params).await,
        }
    }

    /// Module DDL: inside a transaction block it is part of the block
    /// (visible to the block's later statements, published to other
    /// sessions when the block commits, gone if it rolls back); alone it
    /// commits at once.
    async fn module_ddl(&mut self, ddl: &ModuleDdl) -> Result<Output, SqlError> {
        let engine = self.engine.clone();
        // The module's own code runs first, holding no lock and no
        // transaction.
        let shape = match ddl::prepare_module_ddl(
            &engine,
            ddl,
            self.statement_deadline,
            &self.cancel,
        )
        .await
        {
            Ok(shape) => shape,
            Err(e) => {
                if let TxnState::Open(_) = self.state {
                    self.state = TxnState::Failed;
                }
                return Err(e);
            }
        };
        if let TxnState::Open(handle) = &self.state {
            let handle = handle.clone();
            return match ddl::execute_module_ddl(&engine, ddl, shape, &handle) {
                Ok((out, deployed)) => {
                    self.deployed.push(deployed);
                    Ok(out)
                }
                Err(e) => {
                    self.state = TxnState::Failed;
                    Err(e)
                }
            };
        }
        let _guard = engine.ddl_lock.lock().await;
        let handle: TxnHandle = Arc::new(Mutex::new(engine.store.begin()?));
        let (out, deployed) = ddl::execute_module_ddl(&engine, ddl, shape, &handle)?;
        commit(handle).await?;
        deployed.publish(&engine.catalog);
        Ok(out)
    }

    /// The open block committed: other sessions' cache learns its deploys.
    fn block_committed(&mut self) {
        for d in self.deployed.drain(..) {
            d.publish(&self.engine.catalog);
        }
    }

    /// A statement starts: its deadline from statement_timeout, and a
    /// clean cancel flag (a cancel request only concerns the statement
    /// running when it came).
    fn start_statement(&mut self) {
        self.cancel
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let timeout_ms = self.statement_timeout_ms();
        self.statement_deadline = (timeout_ms > 0)
            .then(|| std::time::Instant::now() + std::time::Duration::from_millis(timeout_ms));
    }

    async fn execute_statement(
        &mut self,
        stmt: &Statement,
        params: &[ScalarValue],
    ) -> Result<Output, SqlError> {
        match stmt {
            Statement::StartTransaction { .. } => {
                // BEGIN inside a multi-statement query makes its implicit
                // transaction an ordinary block.
                self.implicit = false;
                match self.state {
                    TxnState::Idle => {
                        let txn = self.engine.store.begin()?;
                        self.state = TxnState::Open(Arc::new(Mutex::new(txn)));
                        self.deployed.clear();
                    }
                    // PostgreSQL warns and stays in the block.
                    TxnState::Open(_) | TxnState::Failed => {}
                }
                return Ok(Output::TxnStart("BEGIN".into()));
            }
            Statement::Commit { .. } => {
                self.implicit = false;
                let state = std::mem::replace(&mut self.state, TxnState::Idle);
                return match state {
                    TxnState::Idle => Ok(Output::TxnEnd("COMMIT".into())),
                    TxnState::Failed => Ok(Output::TxnEnd("ROLLBACK".into())),
                    TxnState::Open(handle) => {
                        commit(handle).await?;
                        self.block_committed();
                        Ok(Output::TxnEnd("COMMIT".into()))
                    }
                };
            }
            Statement::Rollback {
                savepoint: None, ..
            } => {
                self.state = TxnState::Idle;
                return Ok(Output::TxnEnd("ROLLBACK".into()));
            }
            _ => {}
        }
        if self.is_failed() {
            return Err(aborted());
        }
        if let Some(out) = self.session_command(stmt)? {
            return Ok(out);
        }
        self.start_statement();
        if let Statement::Copy { to: false, .. } = stmt {
            // Its data arrives in the messages that follow.
            return self.copy_from(stmt);
        }
        let (handle, autocommit) = match &self.state {
            TxnState::Open(h) => (h.clone(), false),
            _ => (Arc::new(Mutex::new(self.engine.store.begin()?)), true),
        };
        let result = match self.statement_deadline {
            None => self.execute_in_txn(stmt, params, &handle).await,
            Some(deadline) => {
                // Python calls are interrupted by the runtime's watchdog at
                // the deadline; this bounds everything else. The grace lets
                // the Python error (with its SQLSTATE) arrive first.
                let grace = std::time::Duration::from_millis(500);
                match tokio::time::timeout_at(
                    (deadline + grace).into(),
                    self.execute_in_txn(stmt, params, &handle),
                )
                .await
                {
                    Ok(r) => r,
                    Err(_) => Err(SqlError::new(
                        "57014",
                        "canceling statement due to statement timeout",
                    )),
                }
            }
        };
        match result {
            Ok(out) => {
                if autocommit {
                    commit(handle).await?;
                }
                Ok(out)
            }
            Err(e) => {
                if !autocommit {
                    self.state = TxnState::Failed;
                }
                Err(e)
            }
        }
    }

    /// SET/SHOW and friends that need no transaction.
    fn session_command(&mut self, stmt: &Statement) -> Result<Option<Output>, SqlError> {
        Ok(match stmt {
            Statement::Set(set) => {
                if let ast::Set::SingleAssignment {
                    variable, values, ..
                } = set
                {
                    let name = variable.to_string().to_lowercase();
                    let value = values
                        .iter()
                        .map(|v| match v {
                            Expr::Value(v) => match &v.value {
                                Value::SingleQuotedString(s) => s.clone(),
                                other => other.to_string(),
                            },
                            other => other.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    let name = if name == "time zone" {
                        "timezone".to_string()
                    } else {
                        name
                    };
                    let value = Session::checked_setting(&name, &value)?;
                    self.set_setting(name, value);
                }
                if let ast::Set::SetTimeZone { value, .. } = set {
                    let text = match value {
                        Expr::Value(v) => match &v.value {
                            Value::SingleQuotedString(s) => s.clone(),
                            other => other.to_string(),
                        },
                        other => other.to_string(),
                    };
                    let text = Session::checked_setting("timezone", &text)?;
                    self.set_setting("timezone".into(), text);
                }
                Some(Output::Command("SET".into()))
            }
            Statement::Reset(r) => {
                let names: Vec<String> = match &r.reset {
                    ast::Reset::ALL => self.settings.keys().cloned().collect(),
                    ast::Reset::ConfigurationParameter(n) => vec![n.to_string().to_lowercase()],
                };
                for name in names {
                    if self.settings.remove(&name).is_some() {
                        if let Some(default) = self.setting(&name) {
                            self.set_setting(name.clone(), default);
                            self.settings.remove(&name);
                        }
                    }
                }
                Some(Output::Command("RESET".into()))
            }
            Statement::ShowVariable { variable } => {
                let name = variable
                    .iter()
                    .map(|i| i.value.to_lowercase())
                    .collect::<Vec<_>>()
                    .join(".");
                let value = self.setting(&name).ok_or_else(|| {
                    SqlError::new(
                        "42704",
                        format!("unrecognized configuration parameter \"{name}\""),
                    )
                })?;
                let schema = Arc::new(Schema::new(vec![Field::new(&name, DataType::Utf8, true)]));
                let batch =
                    table::batch(schema.clone(), &[SqlType::Text], &[vec![Json::from(value)]])?;
                Some(Output::Rows {
                    schema,
                    batches: vec![batch],
                    tag: "SHOW".into(),
                })
            }
            _ => None,
        })
    }

    pub fn setting(&self, name: &str) -> Option<String> {
        if let Some(v) = self.settings.get(name) {
            return Some(v.clone());
        }
        Some(
            match name {
                "server_version" => "15.0",
                "server_encoding" | "client_encoding" => "UTF8",
                "datestyle" => "ISO, MDY",
                "timezone" => "UTC",
                "transaction_isolation" | "default_transaction_isolation" => "serializable",
                "standard_conforming_strings" => "on",
                "integer_datetimes" => "on",
                "search_path" => "\"$user\", public",
                "statement_timeout" => "0",
                "extra_float_digits" => "1",
                _ => return None,
            }
            .to_string(),
        )
    }

    async fn execute_in_txn(
        &mut self,
        stmt: &Statement,
        params: &[ScalarValue],
        txn: &TxnHandle,
    ) -> Result<Output, SqlError> {
        self.use_modules(stmt, txn)?;
        match stmt {
            Statement::Query(q) => {
                if let Some(out) = constant::constant_select(q, params, &self.value_settings())? {
                    return Ok(out);
                }
                if let Some(out) = self.point_read(q, params, txn)? {
                    return Ok(out);
                }
                if let Some(out) = self.select_call(q, params, txn).await? {
                    return Ok(out);
                }
                let (schema, batches) = self.run_query(q, params, txn).await?;
                let n: usize = batches.iter().map(|b| b.num_rows()).sum();
                Ok(Output::Rows {
                    schema,
                    batches,
                    tag: format!("SELECT {n}"),
                })
            }
            Statement::Insert(insert) => self.insert(insert, params, txn).await,
            Statement::Copy { to: true, .. } => self.copy_to(stmt, params, txn).await,
            Statement::Update(update) => self.update(update, params, txn).await,
            Statement::Delete(delete) => self.delete(delete, params, txn).await,
            Statement::Call(function) => {
                let value = self.call_statement(function, params, txn).await?;
                // Like a PostgreSQL procedure with an OUT parameter, a
                // procedure that returns a value gives one row.
                match self.call_result_schema(function) {
                    Some((schema, ty)) => {
                        let batch = table::batch(schema.clone(), &[ty], &[vec![value]])?;
                        Ok(Output::Rows {
                            schema,
                            batches: vec![batch],
                            tag: "CALL".into(),
                        })
                    }
                    None => Ok(Output::Command("CALL".into())),
                }
            }
            Statement::Explain { .. } => {
                let ctx = self.make_context(txn, &ExactNumeric::none())?;
                let plan = ctx
                    .state()
                    .statement_to_plan(DfStatement::Statement(Box::new(stmt.clone())))
                    .await?;
                let df = ctx.execute_logical_plan(plan).await?;
                let schema = Arc::new(df.schema().as_arrow().clone());
                let batches = df.collect().await?;
                Ok(Output::Rows {
                    schema,
                    batches,
                    tag: "EXPLAIN".into(),
                })
            }
            other => Err(SqlError::unsupported(format!(
                "statement not supported yet: {}",
                first_words(&other.to_string())
            ))),
        }
    }

    /// Resolves the modules `stmt` uses through `txn`: the versions the
    /// statement's snapshot sees, for the whole statement.
    pub(crate) fn use_modules(
        &mut self,
        stmt: &Statement,
        txn: &TxnHandle,
    ) -> Result<(), SqlError> {
        let guard = crate::dml::lock(txn)?;
        self.modules = crate::modules::resolve(&self.engine.catalog, &guard, stmt)?;
        Ok(())
    }

    /// A module the running statement uses, as its transaction sees it.
    pub(crate) fn module(&self, name: &str) -> Option<Arc<ModuleDef>> {
        self.modules.get(name)
    }

    /// A DataFusion context whose tables and functions see `txn`.
    pub(crate) fn make_context(
        &self,
        txn: &TxnHandle,
        exact: &ExactNumeric,
    ) -> Result<SessionContext, SqlError> {
        let mut config = SessionConfig::new()
            .with_information_schema(false)
            .with_default_catalog_and_schema("amber", "public")
            .with_target_partitions(1);
        // PostgreSQL reads 1.50 as numeric, not double precision.
        config.options_mut().sql_parser.parse_float_as_decimal = true;
        let ctx = SessionContext::new_with_config(config);
        let catalog = ctx
            .catalog("amber")
            .ok_or_else(|| SqlError::internal("default catalog missing"))?;
        let modules: Vec<Arc<ModuleDef>> = self.modules.iter().cloned().collect();
        let zone = self.value_settings().zone.arrow_name();
        let env = UdfEnv {
            runtime: self.engine.runtime.clone(),
            txn: txn.clone(),
            settings: self.value_settings(),
        };
        for module in &modules {
            let schema = Arc::new(MemorySchemaProvider::new());
            let register_functions = self.allow_python;
            for class in &module.shape.classes {
                let t = ClassTable::new(module.clone(), class.clone(), txn.clone(), exact, &zone);
                datafusion::catalog::SchemaProvider::register_table(
                    schema.as_ref(),
                    class.table.clone(),
                    Arc::new(t),
                )?;
            }
            catalog.register_schema(&module.name, schema)?;
            for (sql_name, callable) in module
                .sql_functions()
                .into_iter()
                .filter(|_| register_functions)
            {
                let returns = match &callable.function.returns {
                    Returns::Scalar(t) => Some(t.clone()),
                    Returns::Void => None,
                    // Set-returning functions are called in FROM (rewritten
                    // before planning); in a select list they give jsonb.
                    Returns::SetOf(_) => Some(SqlType::Jsonb),
                };
                let spec = CallSpec {
                    module: module.clone(),
                    class: callable.class.map(|c| c.name.clone()),
                    function: callable.function.name.clone(),
                    deadline: self.statement_deadline,
                    cancel: Some(self.cancel.clone()),
                };
                let name = format!("{}.{}", module.name, sql_name);
                let exact_result = exact.keeps_function(&name);
                let udf = PythonUdf::new(
                    name,
                    spec,
                    callable.sql_params(),
                    returns,
                    env.clone(),
                    exact_result,
                );
                ctx.register_udf(ScalarUDF::new_from_impl(udf));
            }
        }
        // amber.modules: the deployed modules.
        let amber_schema = Arc::new(MemorySchemaProvider::new());
        let fields = vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("version", DataType::Int64, false),
            Field::new("source", DataType::Utf8, false),
            Field::new("deployed_at", DataType::Utf8, false),
        ];
        let schema = Arc::new(Schema::new(fields));
        let rows: Vec<Vec<Json>> = modules
            .iter()
            .map(|m| {
                vec![
                    Json::from(m.name.clone()),
                    Json::from(m.version),
                    Json::from(m.source.clone()),
                    Json::from(m.deployed_at.clone()),
                ]
            })
            .collect();
        let batch = table::batch(
            schema.clone(),
            &[SqlType::Text, SqlType::Int8, SqlType::Text, SqlType::Text],
            &rows,
        )?;
        let mem = MemTable::try_new(schema, vec![vec![batch]])?;
        datafusion::catalog::SchemaProvider::register_table(
            amber_schema.as_ref(),
            "modules".into(),
            Arc::new(mem),
        )?;
        catalog.register_schema("amber", amber_schema)?;
        register_pg_functions(&ctx);
        Ok(ctx)
    }

    /// Plans and runs a query; columns are named as PostgreSQL names them.
    pub(crate) async fn run_query(
        &mut self,
        query: &Query,
        params: &[ScalarValue],
        txn: &TxnHandle,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), SqlError> {
        let mut query = query.clone();
        let (numeric, other) = self.numeric_columns_in(&query);
        let exact = ExactNumeric::prepare(&mut query, &numeric, &other);
        let ctx = self.make_context(txn, &exact)?;
        self.rewrite_set_returning(&mut query, &ctx, params, txn, &exact)
            .await?;
        let names = names::select_item_names(&query);
        let stmt = Statement::Query(Box::new(query));
        let plan = ctx
            .state()
            .statement_to_plan(DfStatement::Statement(Box::new(stmt)))
            .await?;
        let plan = if params.is_empty() {
            plan
        } else {
            plan.with_param_values(params.to_vec())?
        };
        let df = ctx.execute_logical_plan(plan).await?;
        let schema = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await?;
        let schema = rename_columns(&schema, names.as_deref());
        let batches = batches
            .into_iter()
            .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SqlError::internal(e.to_string()))?;
        Ok((schema, batches))
    }

    /// Names of the numeric columns of the classes `query` reads, and of
    /// their other columns (a name in both is not rewritten by `exact.rs`).
    fn numeric_columns_in(&self, query: &Query) -> (HashSet<String>, HashSet<String>) {
        let mut numeric = HashSet::new();
        let mut other = HashSet::new();
        let _ = ast::visit_relations(query, |name: &ObjectName| {
            if let Ok((_m, class)) = self.resolve_table(name) {
                for c in &class.columns {
                    if matches!(c.ty, SqlType::Numeric) {
                        numeric.insert(c.name.to_lowercase());
                    } else {
                        other.insert(c.name.to_lowercase());
                    }
                }
                other.insert("id".to_string());
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        (numeric, other)
    }

    /// Replaces `FROM schema.func(args)` of a set-returning module function
    /// by a table holding the rows the call returned.
    async fn rewrite_set_returning(
        &mut self,
        query: &mut Query,
        ctx: &SessionContext,
        params: &[ScalarValue],
        txn: &TxnHandle,
        exact: &ExactNumeric,
    ) -> Result<(), SqlError> {
        let SetExpr::Select(select) = query.body.as_mut() else {
            return Ok(());
        };
        for twj in select.from.iter_mut() {
            let mut factors: Vec<&mut TableFactor> = vec![&mut twj.relation];
            for j in twj.joins.iter_mut() {
                factors.push(&mut j.relation);
            }
            for factor in factors {
                let TableFactor::Table {
                    name,
                    args: Some(args),
                    alias,
                    ..
                } = factor
                else {
                    continue;
                };
                let Some((module_name, fname)) = split_qualified(name) else {
                    continue;
                };
                let Some(module) = self.module(&module_name) else {
                    return Err(SqlError::new(
                        "42883",
                        format!("function {module_name}.{fname} does not exist"),
                    ));
                };
                let Some(callable) = module.sql_function(&fname) else {
                    return Err(SqlError::new(
                        "42883",
                        format!("function {module_name}.{fname} does not exist"),
                    ));
                };
                let Returns::SetOf(class_name) = &callable.function.returns else {
                    return Err(SqlError::unsupported(format!(
                        "{module_name}.{fname} does not return a set"
                    )));
                };
                let class = module
                    .class(class_name)
                    .ok_or_else(|| SqlError::internal("set-returning class missing"))?
                    .clone();
                let exprs: Vec<Expr> = args
                    .args
                    .iter()
                    .map(|a| match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e.clone()),
                        _ => Err(SqlError::unsupported(
                            "named arguments are not supported yet",
                        )),
                    })
                    .collect::<Result<_, _>>()?;
                self.python_allowed()?;
                let values = constant_values(&exprs, params, &self.value_settings())?.ok_or_else(|| {
                    SqlError::unsupported("arguments of a set-returning function in FROM must be constants or parameters")
                })?;
                let call_args =
                    coerce_args(&callable.sql_params(), &values, &self.value_settings())?;
                let spec = CallSpec {
                    module: module.clone(),
                    class: callable.class.map(|c| c.name.clone()),
                    function: callable.function.name.clone(),
                    deadline: self.statement_deadline,
                    cancel: Some(self.cancel.clone()),
                };
                let result = self
                    .engine
                    .runtime
                    .call(spec, call_args, txn.clone())
                    .await?;
                let rows: Vec<Vec<Json>> = match result {
                    Json::Array(rows) => rows
                        .into_iter()
                        .map(|r| match r {
                            Json::Array(cells) => cells,
                            other => vec![other],
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                let zone = self.value_settings().zone.arrow_name();
                let schema = table::class_schema_in(&class, exact, &zone);
                let batch = table::batch(schema.clone(), &table::class_types(&class), &rows)?;
                self.srf_counter += 1;
                let tmp = format!("__amber_srf_{}", self.srf_counter);
                ctx.register_table(
                    tmp.as_str(),
                    Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
                )?;
                *factor = temp_table_factor(&tmp, alias.clone(), &fname);
            }
        }
        Ok(())
    }

    pub(crate) async fn call_statement(
        &mut self,
        function: &ast::Function,
        params: &[ScalarValue],
        txn: &TxnHandle,
    ) -> Result<Json, SqlError> {
        let (module_name, fname) = split_qualified(&function.name).ok_or_else(|| {
            SqlError::new(
                "42883",
                format!("procedure {} does not exist", function.name),
            )
        })?;
        let module = self.module(&module_name).ok_or_else(|| {
            SqlError::new(
                "42883",
                format!("procedure {module_name}.{fname} does not exist"),
            )
        })?;
        let callable = module.sql_function(&fname).ok_or_else(|| {
            SqlError::new(
                "42883",
                format!("procedure {module_name}.{fname} does not exist"),
            )
        })?;
        let exprs: Vec<Expr> = match &function.args {
            FunctionArguments::List(list) => list
                .args
                .iter()
                .map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e.clone()),
                    _ => Err(SqlError::unsupported(
                        "named arguments are not supported yet",
                    )),
                })
                .collect::<Result<_, _>>()?,
            FunctionArguments::None => vec![],
            FunctionArguments::Subquery(_) => {
                return Err(SqlError::unsupported("subquery arguments"))
            }
        };
        self.python_allowed()?;
        let types = callable.sql_params();
        if exprs.len() != types.len() {
            return Err(SqlError::new(
                "42883",
                format!(
                    "procedure {module_name}.{fname} takes {} arguments, {} given",
                    types.len(),
                    exprs.len()
                ),
            ));
        }
        let values = match constant_values(&exprs, params, &self.value_settings())? {
            Some(v) => v,
            None => self.evaluate_exprs(&exprs, params, txn).await?,
        };
        let args = coerce_args(&types, &values, &self.value_settings())?;
        let spec = CallSpec {
            module: module.clone(),
            class: callable.class.map(|c| c.name.clone()),
            function: callable.function.name.clone(),
            deadline: self.statement_deadline,
            cancel: Some(self.cancel.clone()),
        };
        Ok(self.engine.runtime.call(spec, args, txn.clone()).await?)
    }

    /// The one-column row a `CALL` of a value-returning procedure gives (the
    /// column named after the procedure); `None` for a void procedure.
    fn call_result_schema(&self, function: &ast::Function) -> Option<(SchemaRef, SqlType)> {
        let (m, f) = split_qualified(&function.name)?;
        let module = self.module(&m)?;
        let callable = module.sql_function(&f)?;
        match &callable.function.returns {
            Returns::Scalar(t) => {
                let schema = convert::schema_of(vec![convert::field(&f, t, true)]);
                Some((schema, t.clone()))
            }
            _ => None,
        }
    }

    /// Evaluates expressions without a FROM clause through DataFusion.
    pub(crate) async fn evaluate_exprs(
        &mut self,
        exprs: &[Expr],
        params: &[ScalarValue],
        txn: &TxnHandle,
    ) -> Result<Vec<ScalarValue>, SqlError> {
        let items: Vec<String> = exprs.iter().map(|e| e.to_string()).collect();
        let sql = format!("SELECT {}", items.join(", "));
        let stmts = Parser::parse_sql(&PostgreSqlDialect {}, &sql)
            .map_err(|e| SqlError::syntax(e.to_string()))?;
        let Some(Statement::Query(q)) = stmts.into_iter().next() else {
            return Err(SqlError::internal("expression evaluation failed"));
        };
        let (_schema, batches) = self.run_query(&q, params, txn).await?;
        let batch = batches
            .into_iter()
            .find(|b| b.num_rows() > 0)
            .ok_or_else(|| SqlError::internal("expression produced no row"))?;
        (0..batch.num_columns())
            .map(|i| convert::cell(batch.column(i), 0))
            .collect()
    }

    /// Parameter and result types of a statement, for Describe.
    async fn describe(
        &mut self,
        stmt: &Statement,
        client_types: &[Option<DataType>],
    ) -> Result<(Vec<DataType>, HashSet<usize>, Option<SchemaRef>), SqlError> {
        let n_params = count_placeholders(stmt)?;
        // Parameters that are jsonb (Arrow computes them as Utf8).
        let mut jsonb: HashSet<usize> = HashSet::new();
        let mut types: Vec<Option<DataType>> = (0..n_params)
            .map(|i| client_types.get(i).cloned().flatten())
            .collect();
        // As in PostgreSQL, `$n::type` gives the parameter that type.
        let _ = ast::visit_expressions(stmt, |e: &Expr| {
            if let Expr::Cast {
                expr, data_type, ..
            } = e
            {
                if let (Expr::Value(_), Some(idx), Some(t)) = (
                    expr.as_ref(),
                    placeholder_index(expr),
                    cast_arrow_type(data_type),
                ) {
                    if idx < types.len() && types[idx].is_none() {
                        types[idx] = Some(t);
                        if constant::cast_oid(data_type) == Some(value::types::JSONB) {
                            jsonb.insert(idx);
                        }
                    }
                }
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        // `SELECT <constants>`: described by evaluating it with typed NULLs
        // (no DataFusion: its types are the casts' own, jsonb included).
        if let Statement::Query(q) = stmt {
            let nulls: Vec<ScalarValue> = types
                .iter()
                .map(|t| {
                    t.as_ref()
                        .and_then(|t| ScalarValue::try_from(t).ok())
                        .unwrap_or(ScalarValue::Utf8(None))
                })
                .collect();
            if let Ok(Some(Output::Rows { schema, .. })) =
                constant::constant_select(q, &nulls, &self.value_settings())
            {
                let types = types
                    .into_iter()
                    .map(|t| t.unwrap_or(DataType::Utf8))
                    .collect();
                return Ok((types, jsonb, Some(schema)));
            }
        }
        // Inside a block, the block's view of the catalog (its own deploys
        // included); otherwise the latest committed one.
        let (txn, own): (TxnHandle, bool) = match &self.state {
            TxnState::Open(h) => (h.clone(), false),
            _ => (Arc::new(Mutex::new(self.engine.store.begin()?)), true),
        };
        self.use_modules(stmt, &txn)?;
        let mut columns = None;
        match stmt {
            Statement::Query(q) => {
                let ctx = self.make_context(&txn, &ExactNumeric::of_statement(stmt))?;
                let mut query = (**q).clone();
                // A set-returning call needs its argument values; describe
                // its shape from the catalog instead of calling it.
                let has_srf = self.describe_srfs(&mut query, &ctx)?;
                let names = names::select_item_names(&query);
                let plan = ctx
                    .state()
                    .statement_to_plan(DfStatement::Statement(Box::new(Statement::Query(
                        Box::new(query),
                    ))))
                    .await?;
                let _ = has_srf;
                // DataFusion does not infer placeholders in UDF arguments:
                // take them from the module function's signature.
                let _ = ast::visit_expressions(stmt, |e: &Expr| {
                    if let Expr::Function(f) = e {
                        if let (Some((m, fname)), FunctionArguments::List(list)) =
                            (split_qualified(&f.name), &f.args)
                        {
                            if let Some(module) = self.module(&m) {
                                if let Some(c) = module.sql_function(&fname) {
                                    let ptypes = c.sql_params();
                                    for (i, a) in list.args.iter().enumerate() {
                                        if let FunctionArg::Unnamed(FunctionArgExpr::Expr(arg)) = a
                                        {
                                            if let (Some(idx), Some(t)) =
                                                (placeholder_index(arg), ptypes.get(i))
                                            {
                                                if idx < types.len() && types[idx].is_none() {
                                                    types[idx] = Some(convert::arrow_type(t));
                                                    if matches!(t, SqlType::Jsonb) {
                                                        jsonb.insert(idx);
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    std::ops::ControlFlow::<()>::Continue(())
                });
                let inferred = plan.get_parameter_types()?;
                for (name, t) in inferred {
                    if let Some(idx) = name
                        .trim_start_matches('$')
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| i.checked_sub(1))
                    {
                        if idx < types.len() && types[idx].is_none() {
                            types[idx] = t;
                        }
                    }
                }
                let schema = Arc::new(plan.schema().as_arrow().clone());
                columns = Some(rename_columns(&schema, names.as_deref()));
            }
            Statement::Call(function) => {
                columns = self.call_result_schema(function).map(|(s, _)| s);
                if let Some((m, f)) = split_qualified(&function.name) {
                    if let Some(module) = self.module(&m) {
                        if let Some(c) = module.sql_function(&f) {
                            let ptypes = c.sql_params();
                            if let FunctionArguments::List(list) = &function.args {
                                for (i, a) in list.args.iter().enumerate() {
                                    if let FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) = a {
                                        if let Some(idx) = placeholder_index(e) {
                                            if idx < types.len() && types[idx].is_none() {
                                                types[idx] = ptypes.get(i).map(convert::arrow_type);
                                                if matches!(ptypes.get(i), Some(SqlType::Jsonb)) {
                                                    jsonb.insert(idx);
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => {
                let (ptypes, dml_jsonb, cols) = self.describe_dml(stmt, &txn).await?;
                for (i, t) in ptypes.into_iter().enumerate() {
                    if i < types.len() && types[i].is_none() {
                        types[i] = t;
                        if dml_jsonb.contains(&i) {
                            jsonb.insert(i);
                        }
                    }
                }
                columns = cols;
            }
            _ => {}
        }
        if own {
            if let Ok(m) = Arc::try_unwrap(txn) {
                if let Ok(t) = m.into_inner() {
                    t.rollback();
                }
            }
        }
        Ok((
            types
                .into_iter()
                .map(|t| t.unwrap_or(DataType::Utf8))
                .collect(),
            jsonb,
            columns,
        ))
    }

    fn describe_srfs(&mut self, query: &mut Query, ctx: &SessionContext) -> Result<bool, SqlError> {
        let SetExpr::Select(select) = query.body.as_mut() else {
            return Ok(false);
        };
        let mut any = false;
        for twj in select.from.iter_mut() {
            let mut factors: Vec<&mut TableFactor> = vec![&mut twj.relation];
            for j in twj.joins.iter_mut() {
                factors.push(&mut j.relation);
            }
            for factor in factors {
                let TableFactor::Table {
                    name,
                    args: Some(_),
                    alias,
                    ..
                } = factor
                else {
                    continue;
                };
                let Some((m, f)) = split_qualified(name) else {
                    continue;
                };
                let Some(module) = self.module(&m) else {
                    continue;
                };
                let Some(callable) = module.sql_function(&f) else {
                    continue;
                };
                let Returns::SetOf(class_name) = &callable.function.returns else {
                    continue;
                };
                let Some(class) = module.class(class_name) else {
                    continue;
                };
                let schema = table::class_schema(class, &ExactNumeric::none());
                self.srf_counter += 1;
                let tmp = format!("__amber_srf_{}", self.srf_counter);
                ctx.register_table(
                    tmp.as_str(),
                    Arc::new(MemTable::try_new(schema, vec![vec![]])?),
                )?;
                *factor = temp_table_factor(&tmp, alias.clone(), &f);
                any = true;
            }
        }
        Ok(any)
    }
}

/// `FROM <tmp> AS <alias or function name>`: where a set-returning call
/// stood, the table holding its rows.
fn temp_table_factor(tmp: &str, alias: Option<ast::TableAlias>, function: &str) -> TableFactor {
    let alias = alias.unwrap_or_else(|| ast::TableAlias {
        at: None,
        explicit: true,
        name: ast::Ident::new(function),
        columns: vec![],
    });
    TableFactor::Table {
        name: ObjectName::from(vec![ast::Ident::new(tmp)]),
        alias: Some(alias),
        args: None,
        with_hints: vec![],
        version: None,
        with_ordinality: false,
        partitions: vec![],
        json_path: None,
        sample: None,
        index_hints: vec![],
    }
}

pub(crate) fn aborted() -> SqlError {
    SqlError::new(
        "25P02",
        "current transaction is aborted, commands ignored until end of transaction block",
    )
}

/// Commits a transaction handle; the fsync runs off the async threads.
pub(crate) async fn commit(handle: TxnHandle) -> Result<(), SqlError> {
    let txn: Txn = Arc::try_unwrap(handle)
        .map_err(|_| SqlError::internal("transaction still in use at commit"))?
        .into_inner()
        .map_err(|_| SqlError::internal("transaction lock poisoned"))?;
    // A read-only transaction whose view is durable commits here; anything
    // that may wait for an fsync goes to a blocking thread.
    let mut txn = txn;
    if let Some(done) = txn.commit_if_immediate() {
        return Ok(done?);
    }
    tokio::task::spawn_blocking(move || txn.commit())
        .await
        .map_err(|e| SqlError::internal(e.to_string()))??;
    Ok(())
}

fn first_words(s: &str) -> String {
    s.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

pub(crate) fn split_qualified(name: &ObjectName) -> Option<(String, String)> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| p.as_ident().map(|i| i.value.clone()).unwrap_or_default())
        .collect();
    match parts.as_slice() {
        [schema, name] => Some((schema.clone(), name.clone())),
        _ => None,
    }
}

fn rename_columns(schema: &SchemaRef, names: Option<&[Option<String>]>) -> SchemaRef {
    let Some(names) = names else {
        return schema.clone();
    };
    let wildcards = names.iter().filter(|n| n.is_none()).count();
    let fixed = names.len() - wildcards;
    if wildcards > 1
        || (wildcards == 0 && names.len() != schema.fields().len())
        || fixed > schema.fields().len()
    {
        return schema.clone();
    }
    let expanded = schema.fields().len() - fixed;
    let mut out = Vec::with_capacity(schema.fields().len());
    let mut i = 0;
    for n in names {
        match n {
            Some(name) => {
                out.push(schema.field(i).as_ref().clone().with_name(name.clone()));
                i += 1;
            }
            None => {
                for _ in 0..expanded {
                    out.push(schema.field(i).as_ref().clone());
                    i += 1;
                }
            }
        }
    }
    Arc::new(Schema::new_with_metadata(out, schema.metadata().clone()))
}

/// The Arrow type of a cast target, for the common PostgreSQL types.
/// The Arrow type of a cast target: the one type table's.
fn cast_arrow_type(t: &ast::DataType) -> Option<DataType> {
    constant::cast_oid(t).and_then(value::types::arrow_of)
}

fn placeholder_index(e: &Expr) -> Option<usize> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Placeholder(p) => p
                .trim_start_matches('$')
                .parse::<usize>()
                .ok()?
                .checked_sub(1),
            _ => None,
        },
        Expr::Cast { expr, .. } => placeholder_index(expr),
        _ => None,
    }
}

/// A duration setting in milliseconds, in PostgreSQL's units (a bare
/// number is milliseconds; us, ms, s, min, h, d); `None` if unreadable.
fn duration_ms(v: &str) -> Option<u64> {
    let v = v.trim().trim_matches('\'').trim().to_lowercase();
    let digits_end = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let n: u64 = v[..digits_end].parse().ok()?;
    Some(match v[digits_end..].trim() {
        "" | "ms" => n,
        "us" => n / 1000,
        "s" => n.checked_mul(1000)?,
        "min" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        "d" => n.checked_mul(86_400_000)?,
        _ => return None,
    })
}

/// Most parameters a statement may have: what a Bind message can carry
/// (its count is an int16). A `$n` beyond it is refused before anything
/// is sized by it, so one Parse cannot make the server allocate for
/// billions of parameters.
pub const PARAMS_MAX: usize = u16::MAX as usize;

fn count_placeholders(stmt: &Statement) -> Result<usize, SqlError> {
    let mut max = 0usize;
    let _ = ast::visit_expressions(stmt, |e: &Expr| {
        if let Some(i) = placeholder_index(e) {
            max = max.max(i.saturating_add(1));
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    if max > PARAMS_MAX {
        return Err(SqlError::new(
            "42P02",
            format!(
                "there is no parameter ${max}: a statement has at most {PARAMS_MAX} parameters"
            ),
        ));
    }
    Ok(max)
}

/// Converts call arguments to the catalog encoding of the parameter types.
pub(crate) fn coerce_args(
    types: &[SqlType],
    values: &[ScalarValue],
    settings: &value::Settings,
) -> Result<Vec<Json>, SqlError> {
    if types.len() != values.len() {
        return Err(SqlError::new(
            "42883",
            format!(
                "function takes {} arguments, {} given",
                types.len(),
                values.len()
            ),
        ));
    }
    types
        .iter()
        .zip(values)
        .map(|(t, v)| convert::scalar_to_json(t, v, settings))
        .collect()
}

/// PostgreSQL functions that clients call on connect.
fn register_pg_functions(ctx: &SessionContext) {
    use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
    let constant = |name: &str, value: String| {
        let v = value.clone();
        create_udf(
            name,
            vec![],
            DataType::Utf8,
            Volatility::Stable,
            Arc::new(move |_args: &[ColumnarValue]| {
                Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(v.clone()))))
            }),
        )
    };
    ctx.register_udf(constant(
        "version",
        format!(
            "PostgreSQL 15.0 (Amber {}) on x86_64-pc-linux-gnu, compiled by rustc, 64-bit",
            env!("CARGO_PKG_VERSION")
        ),
    ));
    ctx.register_udf(constant("current_database", "amber".into()));
    ctx.register_udf(constant("current_schema", "public".into()));
    ctx.register_udf(constant("current_user", "amber".into()));
    ctx.register_udf(constant("session_user", "amber".into()));
}
