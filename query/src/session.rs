//! Sessions: transaction state (idle, open, failed, the implicit one of a
//! multi-statement query), statement dispatch, autocommit, and module DDL's
//! place in a block. Settings are in `settings.rs`, planning in `plan.rs`,
//! Describe in `describe.rs`, CALL in `call.rs`, `amber.sql()` in
//! `nested.rs`, COPY in `copy.rs`.

use crate::constant;
use crate::ddl::{self, ModuleDdl};
use crate::error::SqlError;
use crate::exact::ExactNumeric;
use crate::parse::parse_statements;
use crate::table;
use crate::value;
use amber_catalog::{Catalog, ModuleDef, ModuleSet};
use amber_runtime::{Runtime, TxnHandle, WorkerConfig};
use amber_storage::{Store, Txn};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast::{self, ObjectName, Statement};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Shared by all sessions.
pub struct Engine {
    pub store: Store,
    pub catalog: Catalog,
    pub runtime: Arc<Runtime>,
    /// Autocommit module deploys run one at a time (so two of them never
    /// fail each other with 40001); deploys inside a transaction block
    /// take no lock and serialize through their reads like any writer.
    pub(crate) ddl_lock: tokio::sync::Mutex<()>,
    /// DataFusion's configuration, functions and rules, built once and
    /// shared by every statement (`context.rs`).
    pub(crate) planning: Arc<crate::context::PlanningBase>,
    /// The connected sessions, as pg_stat_activity lists them.
    pub(crate) activity: Arc<crate::activity::Activity>,
}

impl Engine {
    pub fn open(store: Store, workers: WorkerConfig) -> Result<Arc<Engine>, SqlError> {
        crate::index::legacy::rebuild(&store)?;
        let txn = store.begin()?;
        let catalog = Catalog::load(&txn)?;
        txn.rollback();
        let runtime = Arc::new(Runtime::new(store.clone(), workers));
        let engine = Arc::new(Engine {
            store,
            catalog,
            runtime,
            ddl_lock: tokio::sync::Mutex::new(()),
            planning: Arc::new(crate::context::PlanningBase::new()),
            activity: Arc::default(),
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
    /// A statement failed in the block: every statement is refused
    /// (25P02) until ROLLBACK, or ROLLBACK TO a savepoint, which goes on
    /// in the transaction kept here.
    Failed(TxnHandle),
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
    /// The query's generic plan, once executed (`plan_cache.rs`).
    pub plans: Arc<crate::plan_cache::PlanCache>,
}

#[derive(Debug, Clone)]
pub enum PreparedKind {
    Empty,
    Module(ModuleDdl),
    Sql(Box<Statement>),
}

pub struct Session {
    pub(crate) engine: Arc<Engine>,
    /// `pg_backend_pid()`: the id the client knows this session by.
    pub(crate) backend_pid: i32,
    pub(crate) state: TxnState,
    pub(crate) settings: HashMap<String, String>,
    pub(crate) srf_counter: u64,
    /// False for SQL run by `amber.sql()` from inside a Python call: a nested
    /// Python call would need a second worker and could deadlock the pool.
    pub(crate) allow_python: bool,
    /// When the running statement's statement_timeout expires.
    pub(crate) statement_deadline: Option<std::time::Instant>,
    /// The open transaction is the implicit one of a multi-statement simple
    /// query (PostgreSQL runs those statements as one transaction).
    pub(crate) implicit: bool,
    /// Set by a cancel request for this session's running statement.
    pub(crate) cancel: Arc<std::sync::atomic::AtomicBool>,
    /// Settings changed by SET that PostgreSQL reports to the client
    /// (ParameterStatus), by their reported names; at most one entry per
    /// name, so bounded by the number of reported settings.
    pub(crate) reported: Vec<(String, String)>,
    /// What `set_config()` calls of the running statement set, applied
    /// when it succeeds (`pg_functions.rs`).
    pub(crate) set_by_functions: crate::pg_functions::PendingSettings,
    /// How values are read and written, kept in step with `settings` by
    /// `set_setting` (so no statement parses TimeZone again).
    pub(crate) values: value::Settings,
    /// The modules the running statement uses, as its transaction sees
    /// them (set when the statement starts, by `use_modules`).
    pub(crate) modules: ModuleSet,
    /// Modules deployed or dropped by the open transaction block: shown to
    /// the shared catalog cache when the block commits.
    pub(crate) deployed: Vec<crate::ddl::Deployed>,
    /// The COPY FROM STDIN waiting for its data, if any.
    pub(crate) copy_in: Option<Box<crate::copy::CopyIn>>,
    /// Statements run in the open block (SET TRANSACTION READ WRITE must
    /// come before any).
    pub(crate) block_statements: usize,
    /// The plan cache of the prepared statement being executed, if any.
    pub(crate) plan_cache: Option<Arc<crate::plan_cache::PlanCache>>,
    /// The class whose hidden object id the statement being planned reads
    /// (the query an UPDATE or DELETE finds its rows with).
    pub(crate) expose_hidden: Option<u64>,
    /// The open block's savepoints, innermost last (`savepoint.rs`).
    pub(crate) savepoints: Vec<crate::savepoint::Named>,
    /// Compiled CHECK constraints by (module generation, class id): a
    /// generation names one version of a class's shape exactly.
    pub(crate) checks: std::sync::Mutex<crate::checks::Cache>,
}

/// A closed connection leaves pg_stat_activity.
impl Drop for Session {
    fn drop(&mut self) {
        if self.backend_pid != 0 {
            self.engine.activity.disconnect(self.backend_pid);
        }
    }
}

impl Session {
    pub fn new(engine: Arc<Engine>) -> Session {
        Session {
            backend_pid: 0,
            engine,
            state: TxnState::Idle,
            settings: HashMap::new(),
            srf_counter: 0,
            allow_python: true,
            statement_deadline: None,
            implicit: false,
            cancel: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            reported: Vec::new(),
            set_by_functions: Default::default(),
            values: value::Settings::default(),
            modules: ModuleSet::default(),
            deployed: Vec::new(),
            copy_in: None,
            block_statements: 0,
            plan_cache: None,
            expose_hidden: None,
            savepoints: Vec::new(),
            checks: Default::default(),
        }
    }

    /// A statement failed inside the open block: the block is failed
    /// (25P02 until ROLLBACK or ROLLBACK TO a savepoint).
    pub(crate) fn fail_block(&mut self) {
        self.state = match std::mem::replace(&mut self.state, TxnState::Idle) {
            TxnState::Open(h) | TxnState::Failed(h) => TxnState::Failed(h),
            TxnState::Idle => TxnState::Idle,
        };
    }

    /// The flag a cancel request sets to interrupt the running statement.
    pub fn cancel_flag(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.cancel.clone()
    }

    /// The process id the connection told its client (BackendKeyData),
    /// which `pg_backend_pid()` answers, and its client's address: the
    /// session is now listed in pg_stat_activity.
    pub fn connected(&mut self, pid: i32, client: Option<std::net::SocketAddr>) {
        self.backend_pid = pid;
        let name = self
            .settings
            .get("application_name")
            .cloned()
            .unwrap_or_default();
        self.engine.activity.connect(pid, &name, client);
    }

    /// pg_stat_activity: a statement (`query`, its text) starts.
    fn activity_started(&self, query: &str) {
        let in_block = !matches!(self.state, TxnState::Idle);
        self.engine
            .activity
            .started(self.backend_pid, query, in_block);
    }

    /// pg_stat_activity: the statement ended.
    fn activity_finished(&self) {
        let state = match self.state {
            TxnState::Idle => "idle",
            TxnState::Open(_) => "idle in transaction",
            TxnState::Failed(_) => "idle in transaction (aborted)",
        };
        let name = self
            .settings
            .get("application_name")
            .map_or("", String::as_str);
        self.engine.activity.finished(self.backend_pid, state, name);
    }

    /// A storage transaction for a block or a statement: read-only when
    /// `read_only` says so, else as default_transaction_read_only says.
    pub(crate) fn begin_txn(
        &self,
        read_only: Option<bool>,
    ) -> Result<amber_storage::Txn, SqlError> {
        let mut txn = self.engine.store.begin()?;
        let read_only = read_only.unwrap_or_else(|| {
            self.settings
                .get("default_transaction_read_only")
                .is_some_and(|v| v == "on")
        });
        txn.set_read_only(read_only);
        Ok(txn)
    }

    /// The answer to COMMIT/ROLLBACK; with AND CHAIN a new block begins
    /// at once with the same access mode (and the client sees a block
    /// still open).
    fn end_block(
        &mut self,
        tag: &str,
        chain: bool,
        read_only: Option<bool>,
    ) -> Result<Output, SqlError> {
        self.savepoints.clear();
        if !chain {
            return Ok(Output::TxnEnd(tag.into()));
        }
        let txn = self.begin_txn(read_only)?;
        self.state = TxnState::Open(Arc::new(Mutex::new(txn)));
        self.deployed.clear();
        self.block_statements = 0;
        Ok(Output::TxnStart(tag.into()))
    }

    /// Extended protocol: an Execute outside any block runs in PostgreSQL's
    /// implicit transaction, which the next Sync ends ([`Session::sync`]):
    /// statements pipelined before one Sync commit or fail together (a
    /// JDBC batch, a psycopg pipeline). COPY FROM, whose data follows,
    /// runs alone as before.
    pub fn begin_implicit(&mut self, kind: &PreparedKind) -> Result<(), SqlError> {
        let copy_from = matches!(kind, PreparedKind::Sql(s) if matches!(**s, Statement::Copy { to: false, .. }));
        if !matches!(self.state, TxnState::Idle)
            || copy_from
            || matches!(kind, PreparedKind::Empty)
            || self.copy_in.is_some()
        {
            return Ok(());
        }
        let txn = self.begin_txn(None)?;
        self.state = TxnState::Open(Arc::new(Mutex::new(txn)));
        self.implicit = true;
        self.deployed.clear();
        self.savepoints.clear();
        self.block_statements = 0;
        Ok(())
    }

    /// Sync ends the implicit transaction: committed, or rolled back after
    /// a statement in it failed. A commit that fails (40001) is the
    /// error Sync reports, before ReadyForQuery, as PostgreSQL's.
    pub async fn sync(&mut self) -> Result<(), SqlError> {
        if !std::mem::replace(&mut self.implicit, false) {
            return Ok(());
        }
        match std::mem::replace(&mut self.state, TxnState::Idle) {
            TxnState::Open(handle) => {
                let committed = commit(handle).await;
                if committed.is_err() {
                    self.deployed.clear();
                }
                committed?;
                self.block_committed();
                Ok(())
            }
            TxnState::Failed(_) => {
                self.deployed.clear();
                Ok(())
            }
            TxnState::Idle => Ok(()),
        }
    }

    pub fn in_transaction(&self) -> bool {
        !matches!(self.state, TxnState::Idle)
    }

    pub fn is_failed(&self) -> bool {
        matches!(self.state, TxnState::Failed(_))
    }

    /// Runs a simple-protocol query string: statements in order, stopping
    /// at the first error (which is the last element).
    pub async fn execute_simple(&mut self, sql: &str) -> Vec<Result<Output, SqlError>> {
        self.activity_started(sql);
        let out = self.execute_simple_text(sql).await;
        self.activity_finished();
        out
    }

    async fn execute_simple_text(&mut self, sql: &str) -> Vec<Result<Output, SqlError>> {
        let stmts = match parse_statements(sql) {
            Ok(s) => s,
            Err(e) => {
                if let TxnState::Open(_) = self.state {
                    self.fail_block();
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
            match self.begin_txn(None) {
                Ok(txn) => {
                    self.state = TxnState::Open(Arc::new(Mutex::new(txn)));
                    self.implicit = true;
                    self.deployed.clear();
                }
                Err(e) => return vec![Err(e)],
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
                self.fail_block();
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
        let declared = match &kind {
            PreparedKind::Sql(stmt) => crate::describe::declared_param_oids(stmt),
            _ => HashMap::new(),
        };
        let param_oids = param_types
            .iter()
            .enumerate()
            .map(|(i, t)| {
                if jsonb.contains(&i) {
                    return value::types::JSONB;
                }
                // A type the parameter was cast to, if it is computed as
                // this one (`$1::oid[]`).
                match declared.get(&i) {
                    Some(o) if value::types::arrow_of(*o).as_ref() == Some(t) => *o,
                    _ => value::types::oid_of(t),
                }
            })
            .collect();
        Ok(Prepared {
            sql: sql.to_string(),
            kind,
            param_types,
            param_oids,
            columns,
            plans: Arc::default(),
        })
    }

    pub async fn execute_prepared(
        &mut self,
        prepared: &Prepared,
        params: &[ScalarValue],
    ) -> Result<Output, SqlError> {
        self.plan_cache = Some(prepared.plans.clone());
        self.activity_started(&prepared.sql);
        let out = self.execute_kind(&prepared.kind, params).await;
        self.activity_finished();
        self.plan_cache = None;
        out
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
            PreparedKind::Sql(stmt) => {
                let out = self.execute_statement(stmt, params).await;
                let set = crate::pg_functions::take_pending(&self.set_by_functions);
                if out.is_ok() {
                    for (name, value) in set {
                        self.set_setting(name, value);
                    }
                }
                out
            }
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
                    self.fail_block();
                }
                return Err(e);
            }
        };
        if let TxnState::Open(handle) = &self.state {
            let handle = handle.clone();
            let when = (self.statement_deadline, self.cancel.clone());
            return match ddl::execute_module_ddl(&engine, ddl, shape, &handle, when) {
                Ok((out, deployed)) => {
                    self.deployed.push(deployed);
                    Ok(out)
                }
                Err(e) => {
                    self.fail_block();
                    Err(e)
                }
            };
        }
        let _guard = engine.ddl_lock.lock().await;
        let handle: TxnHandle = Arc::new(Mutex::new(self.begin_txn(None)?));
        let when = (self.statement_deadline, self.cancel.clone());
        let (out, deployed) = ddl::execute_module_ddl(&engine, ddl, shape, &handle, when)?;
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
            Statement::StartTransaction { modes, .. } => {
                // BEGIN inside a multi-statement query makes its implicit
                // transaction an ordinary block, with BEGIN's modes.
                let was_implicit = std::mem::replace(&mut self.implicit, false);
                if let (true, TxnState::Open(h), Some(read_only)) =
                    (was_implicit, &self.state, access_mode(modes))
                {
                    crate::dml::lock(h)?.set_read_only(read_only);
                    self.block_statements = 0;
                }
                match self.state {
                    TxnState::Idle => {
                        let txn = self.begin_txn(access_mode(modes))?;
                        self.state = TxnState::Open(Arc::new(Mutex::new(txn)));
                        self.deployed.clear();
                        self.savepoints.clear();
                        self.block_statements = 0;
                    }
                    // PostgreSQL warns and stays in the block.
                    TxnState::Open(_) | TxnState::Failed(_) => {}
                }
                return Ok(Output::TxnStart("BEGIN".into()));
            }
            Statement::Commit { chain, .. } => {
                self.implicit = false;
                let read_only = self.open_block_read_only()?;
                let state = std::mem::replace(&mut self.state, TxnState::Idle);
                let tag = match state {
                    TxnState::Idle if *chain => return Err(chain_outside_block("COMMIT")),
                    TxnState::Idle => "COMMIT",
                    TxnState::Failed(_) => "ROLLBACK",
                    TxnState::Open(handle) => {
                        commit(handle).await?;
                        self.block_committed();
                        "COMMIT"
                    }
                };
                return self.end_block(tag, *chain, read_only);
            }
            Statement::Savepoint { .. }
            | Statement::ReleaseSavepoint { .. }
            | Statement::Rollback {
                savepoint: Some(_),
                chain: false,
            } => {
                let r = match stmt {
                    Statement::Savepoint { name } => self.savepoint(name),
                    Statement::ReleaseSavepoint { name } => self.release_savepoint(name),
                    Statement::Rollback {
                        savepoint: Some(name),
                        ..
                    } => self.rollback_to_savepoint(name),
                    _ => Err(SqlError::internal("not a savepoint command")),
                };
                // As any failed statement, a failed one fails the block.
                if r.is_err() {
                    self.fail_block();
                }
                return r;
            }
            Statement::Rollback {
                savepoint: None,
                chain,
            } => {
                self.implicit = false;
                let read_only = self.open_block_read_only()?;
                let state = std::mem::replace(&mut self.state, TxnState::Idle);
                if *chain && matches!(state, TxnState::Idle) {
                    return Err(chain_outside_block("ROLLBACK"));
                }
                return self.end_block("ROLLBACK", *chain, read_only);
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
        let is_ddl = crate::table_ddl::is_table_ddl(stmt);
        let engine = self.engine.clone();
        // Alone, DDL takes the DDL lock as CREATE MODULE does; in a block
        // it is part of the block.
        let _ddl_guard = match (&self.state, is_ddl) {
            (TxnState::Open(_), _) | (_, false) => None,
            (_, true) => Some(engine.ddl_lock.lock().await),
        };
        let (handle, autocommit) = match &self.state {
            TxnState::Open(h) => (h.clone(), false),
            _ => (Arc::new(Mutex::new(self.begin_txn(None)?)), true),
        };
        self.block_statements += 1;
        read_only_check(stmt, &handle)?;
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
                    let committed = commit(handle).await;
                    if committed.is_err() {
                        self.deployed.clear();
                    }
                    committed?;
                    self.block_committed();
                }
                Ok(out)
            }
            Err(e) => {
                if autocommit {
                    self.deployed.clear();
                } else {
                    self.fail_block();
                }
                Err(e)
            }
        }
    }

    pub(crate) async fn execute_in_txn(
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
            stmt if crate::table_ddl::is_table_ddl(stmt) => {
                let settings = self.value_settings();
                let view = match stmt {
                    Statement::CreateView(cv) => Some(self.view_shape(&cv.query, txn)?),
                    _ => None,
                };
                let (out, deployed) = {
                    let mut guard = crate::dml::lock(txn)?;
                    let path = self.search_path();
                    crate::table_ddl::execute(
                        &self.engine,
                        &mut guard,
                        stmt,
                        &settings,
                        view,
                        &path,
                    )?
                };
                self.deployed.extend(deployed);
                Ok(out)
            }
            Statement::Explain { .. } => {
                let ctx = self.statement_context(txn, &ExactNumeric::none());
                let (schema, batches) = ctx.run(stmt.clone(), params).await?;
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
        let path = self.search_path();
        self.modules = crate::modules::resolve(&self.engine.catalog, &guard, stmt, &path)?;
        Ok(())
    }

    /// Plans a CREATE VIEW's query in the statement's catalog (so a view
    /// of what does not exist is refused now) for its output names and
    /// what it reads.
    fn view_shape(
        &self,
        query: &ast::Query,
        txn: &TxnHandle,
    ) -> Result<crate::table_ddl::ViewShape, SqlError> {
        let stmt = Statement::Query(Box::new(query.clone()));
        let path = self.search_path();
        let references: Vec<String> = crate::modules::referenced(&stmt, &path)
            .into_iter()
            .collect();
        let mut tables = Vec::new();
        let _ = ast::visit_relations(query, |name: &ast::ObjectName| {
            let parts = name_parts(name);
            let entry = match parts.as_slice() {
                [t] => Some((self.schema_of_bare(t), t.clone())),
                [s, t] | [_, s, t] => Some((s.clone(), t.clone())),
                _ => None,
            };
            if let Some(e) = entry {
                if !tables.contains(&e) {
                    tables.push(e);
                }
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        let mut planned = query.clone();
        let names = crate::names::output_names(&mut planned);
        let ctx = self.statement_context(txn, &crate::exact::ExactNumeric::none());
        let plan = ctx.plan(Statement::Query(Box::new(planned)))?;
        let columns = plan
            .schema()
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                names
                    .as_ref()
                    .and_then(|n| n.get(i).cloned().flatten())
                    .unwrap_or_else(|| f.name().clone())
            })
            .collect();
        Ok(crate::table_ddl::ViewShape {
            columns,
            references,
            tables,
        })
    }

    /// The schemas unqualified names are looked up in, in order.
    pub(crate) fn search_path(&self) -> Vec<String> {
        let value = crate::settings::shown(&self.settings, None, "search_path").unwrap_or_default();
        crate::settings::search_path_schemas(&value, SESSION_USER)
    }

    /// A module the running statement uses, as its transaction sees it.
    pub(crate) fn module(&self, name: &str) -> Option<Arc<ModuleDef>> {
        self.modules.get(name)
    }
}

fn chain_outside_block(command: &str) -> SqlError {
    SqlError::new(
        "25P01",
        format!("{command} AND CHAIN can only be used in transaction blocks"),
    )
}

/// READ ONLY / READ WRITE among a BEGIN's or SET TRANSACTION's modes.
pub(crate) fn access_mode(modes: &[ast::TransactionMode]) -> Option<bool> {
    modes.iter().rev().find_map(|m| match m {
        ast::TransactionMode::AccessMode(ast::TransactionAccessMode::ReadOnly) => Some(true),
        ast::TransactionMode::AccessMode(ast::TransactionAccessMode::ReadWrite) => Some(false),
        _ => None,
    })
}

/// A statement that writes, refused in a read-only transaction with
/// PostgreSQL's error (writes from Python are refused by the storage
/// transaction itself, with the same SQLSTATE).
fn read_only_check(stmt: &Statement, txn: &TxnHandle) -> Result<(), SqlError> {
    let command = match stmt {
        Statement::Insert(_) => "INSERT",
        Statement::Update(_) => "UPDATE",
        Statement::Delete(_) => "DELETE",
        Statement::Copy { to: false, .. } => "COPY FROM",
        Statement::CreateTable(_) => "CREATE TABLE",
        Statement::AlterTable(_) => "ALTER TABLE",
        Statement::CreateIndex(_) => "CREATE INDEX",
        Statement::CreateSchema { .. } => "CREATE SCHEMA",
        Statement::CreateView(_) => "CREATE VIEW",
        Statement::Truncate(_) => "TRUNCATE TABLE",
        Statement::Drop { object_type, .. } if crate::table_ddl::is_table_ddl(stmt) => {
            match object_type {
                ast::ObjectType::Table => "DROP TABLE",
                ast::ObjectType::Index => "DROP INDEX",
                ast::ObjectType::View => "DROP VIEW",
                _ => "DROP SCHEMA",
            }
        }
        _ => return Ok(()),
    };
    if crate::dml::lock(txn)?.is_read_only() {
        return Err(SqlError::new(
            "25006",
            format!("cannot execute {command} in a read-only transaction"),
        ));
    }
    Ok(())
}

pub(crate) fn aborted() -> SqlError {
    SqlError::new(
        "25P02",
        "current transaction is aborted, commands ignored until end of transaction block",
    )
}

/// How many times (a millisecond apart) a commit waits for a finishing
/// read to let go of its transaction.
const COMMIT_WAITS_MAX: u32 = 1000;

/// Commits a transaction handle; the fsync runs off the async threads.
pub(crate) async fn commit(handle: TxnHandle) -> Result<(), SqlError> {
    // A scan task DataFusion abandoned (a LIMIT met elsewhere) may still be
    // finishing one read, holding the transaction for that long: wait for
    // it, a bounded time.
    let mut handle = handle;
    let mut waits_left = COMMIT_WAITS_MAX;
    let txn: Txn = loop {
        match Arc::try_unwrap(handle) {
            Ok(txn) => break txn,
            Err(_) if waits_left == 0 => {
                return Err(SqlError::internal("transaction still in use at commit"))
            }
            Err(shared) => {
                handle = shared;
                waits_left -= 1;
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        }
    }
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

pub(crate) fn first_words(s: &str) -> String {
    s.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

/// The one user every session is (until roles exist).
pub(crate) const SESSION_USER: &str = "amber";

pub(crate) fn split_qualified(name: &ObjectName) -> Option<(String, String)> {
    match name_parts(name).as_slice() {
        [schema, name] => Some((schema.clone(), name.clone())),
        _ => None,
    }
}

/// An identifier as PostgreSQL reads it: unquoted, folded to lower case;
/// quoted, as written.
pub(crate) fn ident_value(ident: &ast::Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

/// The parts of a (possibly qualified) name, each as [`ident_value`].
pub(crate) fn name_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| p.as_ident().map(ident_value).unwrap_or_default())
        .collect()
}

/// Most parameters a statement may have: what a Bind message can carry
/// (its count is an int16). A `$n` beyond it is refused before anything
/// is sized by it, so one Parse cannot make the server allocate for
/// billions of parameters.
pub const PARAMS_MAX: usize = u16::MAX as usize;
