//! The planning context: one DataFusion `SessionState` per engine, shared by
//! every session and statement ([`PlanningBase`]: configuration, built-in
//! and PostgreSQL functions, analyzer, optimizer and physical planner),
//! and a statement's view of the catalog on top of it
//! ([`StatementContext`]: the classes and functions of the modules the
//! statement uses, read through its transaction).
//!
//! Why shared: a `SessionContext` built per statement registered
//! DataFusion's ~300 built-in functions and cloned their maps twice; that
//! was a quarter of the CPU of a small query (perf, 1.3 ms per query).
//! Here a statement builds only what it names: one table per class it
//! reads, one UDF per module function of the modules it uses.

use crate::error::SqlError;
use crate::exact::ExactNumeric;
use crate::subplan::Interrupt;
use crate::table::ClassTable;
use amber_catalog::ModuleDef;
use amber_runtime::TxnHandle;
use chrono::{DateTime, Utc};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableFunctionArgs;
use datafusion::common::alias::AliasGenerator;
use datafusion::common::{DFSchema, ScalarValue, TableReference};
use datafusion::config::ConfigOptions;
use datafusion::datasource::cte_worktable::CteWorkTable;
use datafusion::datasource::{provider_as_source, TableProvider, ViewTable};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::registry::FunctionRegistry;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::planner::{ContextProvider, ExprPlanner, RelationPlanner};
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::{
    AggregateUDF, Expr, HigherOrderUDF, LogicalPlan, ScalarUDF, TableSource, WindowUDF,
};
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::optimizer::OptimizerConfig;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionConfig;
use datafusion::sql::planner::{ParserOptions, SqlToRel};
use datafusion::sql::sqlparser::ast::Statement;
use std::collections::HashMap;
use std::sync::Arc;

/// The catalog every name resolves in (DataFusion's default catalog), and
/// the schema of unqualified names that are not a module's.
const CATALOG: &str = "amber";
const DEFAULT_SCHEMA: &str = "public";

/// What every statement plans and runs with; built once per engine (it
/// holds nothing of the catalog, so a deploy does not rebuild it).
pub struct PlanningBase {
    state: SessionState,
    /// Execution needs no per-statement settings: tables and functions
    /// carry their transaction themselves.
    task: Arc<TaskContext>,
}

impl std::fmt::Debug for PlanningBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlanningBase")
    }
}

impl Default for PlanningBase {
    fn default() -> Self {
        PlanningBase::new()
    }
}

/// DataFusion's physical optimizer rules, with the build side of a hash
/// join chosen again right after its `join_selection` (`join_order.rs`),
/// then checked integer arithmetic (`checked_arithmetic.rs`), then the
/// class scans' cursors opened (`open_scans.rs`).
fn physical_rules(
) -> Vec<Arc<dyn datafusion::physical_optimizer::PhysicalOptimizerRule + Send + Sync>> {
    let mut rules = datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules;
    let at = rules
        .iter()
        .position(|r| r.name() == "join_selection")
        .map_or(0, |i| i + 1);
    rules.insert(at, Arc::new(crate::join_order::JoinOrder));
    rules.push(Arc::new(crate::checked_arithmetic::CheckedArithmetic));
    rules.push(Arc::new(crate::open_scans::OpenScans));
    rules
}

impl PlanningBase {
    pub fn new() -> PlanningBase {
        let mut config = SessionConfig::new()
            .with_information_schema(false)
            .with_default_catalog_and_schema(CATALOG, DEFAULT_SCHEMA)
            .with_target_partitions(1);
        // PostgreSQL reads 1.50 as numeric, not double precision.
        config.options_mut().sql_parser.parse_float_as_decimal = true;
        // A rule that cannot rewrite a plan (decorrelating a subquery that
        // holds another, say) leaves it as it was: every rule preserves
        // meaning, and what no rule removes runs as a SubPlan.
        config.options_mut().optimizer.skip_failed_rules = true;
        // A hash join sends its build side's keys to the probe side's
        // class scan as a list up to this many (`index/join.rs`).
        config
            .options_mut()
            .optimizer
            .hash_join_inlist_pushdown_max_distinct_values = crate::index::join::JOIN_LIST_MAX;
        // PostgreSQL's typing of quoted literals comes before DataFusion's
        // coercion (`unknown_literals.rs`).
        let mut analyzer_rules = datafusion::optimizer::Analyzer::new().rules;
        analyzer_rules.insert(0, Arc::new(crate::unknown_literals::UnknownLiterals));
        analyzer_rules.insert(1, Arc::new(crate::any_arrays::AnyArrays));
        analyzer_rules.insert(2, Arc::new(crate::sort_subqueries::SortSubqueries));
        analyzer_rules.insert(3, Arc::new(crate::float4_promotion::Float4Promotion));
        analyzer_rules.insert(4, Arc::new(crate::integer_literals::IntegerLiterals));
        analyzer_rules.insert(5, Arc::new(crate::array_text_casts::ArrayTextCasts));
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .with_analyzer_rules(analyzer_rules)
            .with_physical_optimizer_rules(physical_rules())
            .build();
        for udf in pg_functions()
            .into_iter()
            .chain(crate::json_functions::functions())
            .chain(crate::array_functions::functions())
            .chain(crate::text_functions::functions())
        {
            // Replacing a built-in of the same name is the point.
            let _ = state.register_udf(Arc::new(udf));
        }
        let _ = state.register_udaf(Arc::new(AggregateUDF::new_from_impl(
            crate::scalar_subquery::ScalarAggregate::new(),
        )));
        let task = state.task_ctx();
        PlanningBase { state, task }
    }

    fn parser_options(&self) -> ParserOptions {
        let o = &self.state.config_options().sql_parser;
        ParserOptions {
            parse_float_as_decimal: o.parse_float_as_decimal,
            enable_ident_normalization: o.enable_ident_normalization,
            enable_options_value_normalization: o.enable_options_value_normalization,
            support_varchar_with_length: o.support_varchar_with_length,
            map_string_types_to_utf8view: o.map_string_types_to_utf8view,
            collect_spans: o.collect_spans,
            default_null_ordering: o.default_null_ordering.as_str().into(),
        }
    }

    /// `plan` analyzed: its output types as the statement will send them
    /// (the analyzer rules retype literals and operands), for Describe.
    pub fn analyze(&self, plan: &LogicalPlan) -> DfResult<LogicalPlan> {
        self.state.analyzer().execute_and_check(
            plan.clone(),
            self.state.config_options(),
            |_, _| {},
        )
    }

    /// Analyzes and optimizes `plan`; `now()` folds to the time of this
    /// call.
    pub fn optimize(&self, plan: &LogicalPlan) -> DfResult<LogicalPlan> {
        let analyzed = self.state.analyzer().execute_and_check(
            plan.clone(),
            self.state.config_options(),
            |_, _| {},
        )?;
        let config = StatementOptimizerConfig {
            base: &self.state,
            start: Utc::now(),
            aliases: Arc::new(AliasGenerator::new()),
        };
        self.state
            .optimizer()
            .optimize(analyzed, &config, |_, _| {})
    }

    /// Analyzes, optimizes and physically plans `plan`.
    pub async fn physical_plan(
        self: &Arc<Self>,
        plan: &LogicalPlan,
        interrupt: &Interrupt,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if matches!(plan, LogicalPlan::Explain(_)) {
            // EXPLAIN records every rule's output: DataFusion's own path,
            // on a copy of the state (rare enough that the copy is cheap).
            let mut state = self.state.clone();
            let options = state.config_options().clone();
            state.execution_props_mut().mark_start_execution(options);
            return state.create_physical_plan(plan).await;
        }
        let lateral = crate::subplan::rewrite_lateral(plan, self, interrupt)?;
        let optimized = self.optimize(lateral.as_ref().unwrap_or(plan))?;
        let optimized = crate::subplan::rewrite(&optimized, self, interrupt)?.unwrap_or(optimized);
        self.state
            .query_planner()
            .create_physical_plan(&optimized, &self.state)
            .await
    }

    /// Runs `plan` to completion; the schema is the plan's (so its column
    /// names are the ones SQL gave them).
    pub async fn collect(
        self: &Arc<Self>,
        plan: &LogicalPlan,
        interrupt: &Interrupt,
    ) -> DfResult<(SchemaRef, Vec<RecordBatch>)> {
        let physical = self.physical_plan(plan, interrupt).await?;
        self.run(plan, physical).await
    }

    /// Runs an already optimized `plan` (a cached one, bound).
    pub async fn collect_optimized(
        self: &Arc<Self>,
        plan: &LogicalPlan,
        interrupt: &Interrupt,
    ) -> DfResult<(SchemaRef, Vec<RecordBatch>)> {
        // After binding: a SubPlan runs its subquery in this execution's
        // transaction.
        let rewritten = crate::subplan::rewrite(plan, self, interrupt)?;
        let plan = rewritten.as_ref().unwrap_or(plan);
        let physical = self
            .state
            .query_planner()
            .create_physical_plan(plan, &self.state)
            .await?;
        self.run(plan, physical).await
    }

    async fn run(
        &self,
        plan: &LogicalPlan,
        physical: Arc<dyn ExecutionPlan>,
    ) -> DfResult<(SchemaRef, Vec<RecordBatch>)> {
        // Names as SQL gave them (the logical plan's); types as computed
        // (the physical plan's: type coercion can change an expression's
        // type after the unanalyzed plan was built, `CASE ... THEN 53 ELSE
        // NULL::real END` is real).
        let logical = plan.schema().as_arrow();
        let computed = physical.schema();
        let schema: SchemaRef = if logical.fields().len() == computed.fields().len() {
            let fields: Vec<Field> = logical
                .fields()
                .iter()
                .zip(computed.fields())
                .map(|(l, c)| {
                    if l.data_type() == c.data_type() {
                        l.as_ref().clone()
                    } else {
                        l.as_ref()
                            .clone()
                            .with_data_type(c.data_type().clone())
                            .with_nullable(c.is_nullable())
                    }
                })
                .collect();
            Arc::new(Schema::new_with_metadata(
                fields,
                logical.metadata().clone(),
            ))
        } else {
            Arc::new(logical.clone())
        };
        let batches = datafusion::physical_plan::collect(physical, self.task.clone()).await?;
        Ok((schema, batches))
    }
}

/// The optimizer's view of one statement: the shared rules and options,
/// the statement's start time (what `now()` folds to) and its own aliases.
struct StatementOptimizerConfig<'a> {
    base: &'a SessionState,
    start: DateTime<Utc>,
    aliases: Arc<AliasGenerator>,
}

impl OptimizerConfig for StatementOptimizerConfig<'_> {
    fn query_execution_start_time(&self) -> Option<DateTime<Utc>> {
        Some(self.start)
    }

    fn alias_generator(&self) -> &Arc<AliasGenerator> {
        &self.aliases
    }

    fn options(&self) -> Arc<ConfigOptions> {
        self.base.config_options().clone()
    }

    fn function_registry(&self) -> Option<&dyn FunctionRegistry> {
        Some(self.base)
    }
}

/// One statement's catalog: the classes of its modules as tables read
/// through its transaction, their functions as UDFs calling Python in it,
/// and the temporary tables the statement's rewriting added.
pub(crate) struct StatementContext {
    base: Arc<PlanningBase>,
    modules: Vec<Arc<ModuleDef>>,
    txn: TxnHandle,
    exact: ExactNumeric,
    zone: String,
    /// Module functions by their SQL name (`module.function`).
    functions: HashMap<String, Arc<ScalarUDF>>,
    /// Tables standing for values computed before planning (the rows of a
    /// set-returning call, RETURNING's rows), by unqualified name.
    temps: HashMap<String, Arc<dyn TableProvider>>,
    /// The statement's deadline and cancel flag, for its SubPlans.
    interrupt: Interrupt,
    /// Where unqualified names are looked up, in order.
    search_path: Vec<String>,
    /// Views being planned, innermost last: a view naming itself through
    /// others is refused, and nesting is bounded.
    views_planning: std::sync::Mutex<Vec<String>>,
    /// The class (by id) whose hidden object id this statement reads as
    /// its first column: the rows an UPDATE or DELETE of a table created
    /// by SQL must find again.
    expose_hidden: Option<u64>,
    /// The session's settings (for pg_settings).
    settings: Arc<HashMap<String, String>>,
    activity: Arc<crate::activity::Activity>,
    /// The catalog as pg_catalog shows it, made when the statement first
    /// reads a catalog relation or calls a catalog function.
    snapshot: std::sync::OnceLock<Arc<crate::pg_catalog::Snapshot>>,
}

impl StatementContext {
    /// `functions`: the statement's module functions by SQL name (none
    /// where they may not be called: SQL run from inside a Python call).
    pub(crate) fn new(
        base: Arc<PlanningBase>,
        modules: Vec<Arc<ModuleDef>>,
        txn: TxnHandle,
        exact: &ExactNumeric,
        zone: String,
        functions: HashMap<String, Arc<ScalarUDF>>,
    ) -> StatementContext {
        StatementContext {
            base,
            modules,
            txn,
            exact: exact.clone(),
            zone,
            functions,
            temps: HashMap::new(),
            views_planning: std::sync::Mutex::new(Vec::new()),
            interrupt: Interrupt::default(),
            search_path: vec![DEFAULT_SCHEMA.to_string()],
            expose_hidden: None,
            snapshot: std::sync::OnceLock::new(),
            settings: Arc::default(),
            activity: Arc::default(),
        }
    }

    /// The session's settings, as pg_settings shows them.
    pub(crate) fn set_settings(&mut self, settings: Arc<HashMap<String, String>>) {
        self.settings = settings;
    }

    /// The engine's sessions, as pg_stat_activity shows them.
    pub(crate) fn set_activity(&mut self, activity: Arc<crate::activity::Activity>) {
        self.activity = activity;
    }

    /// The statement's catalog as pg_catalog shows it.
    pub(crate) fn snapshot(&self) -> Arc<crate::pg_catalog::Snapshot> {
        self.snapshot
            .get_or_init(|| {
                Arc::new(crate::pg_catalog::Snapshot {
                    modules: self.modules.clone(),
                    search_path: self.search_path.clone(),
                    settings: self.settings.clone(),
                    activity: self.activity.clone(),
                    cache: Default::default(),
                })
            })
            .clone()
    }

    /// What interrupts the statement (statement_timeout, cancel).
    pub(crate) fn set_interrupt(&mut self, interrupt: Interrupt) {
        self.interrupt = interrupt;
    }

    pub(crate) fn interrupt(&self) -> &Interrupt {
        &self.interrupt
    }

    pub(crate) fn set_search_path(&mut self, path: Vec<String>) {
        self.search_path = path;
    }

    /// An unqualified name: a temporary table of the statement, else the
    /// first schema of search_path that has it.
    fn bare_table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if let Some(t) = self.temps.get(name) {
            return Ok(Some(t.clone()));
        }
        // pg_catalog comes before search_path unless named in it.
        if crate::pg_catalog::is_pg_catalog_relation(name) {
            return self.table("pg_catalog", name);
        }
        for schema in &self.search_path {
            if let Some(t) = self.table(schema, name)? {
                return Ok(Some(t));
            }
        }
        Ok(None)
    }

    /// The table of class `class_id` gets its hidden object id as first
    /// column ([`table::HIDDEN_ID_COLUMN`]).
    pub(crate) fn expose_hidden_id(&mut self, class_id: u64) {
        self.expose_hidden = Some(class_id);
    }

    /// Adds a table the statement's rewritten text names (unqualified).
    pub(crate) fn register_temp(&mut self, name: &str, table: Arc<dyn TableProvider>) {
        self.temps.insert(name.to_string(), table);
    }

    /// PostgreSQL syntax DataFusion lacks, rewritten into what it has.
    fn rewrite(&self, stmt: &mut Statement) -> Result<(), SqlError> {
        if crate::pg_catalog::rewrite::needed(stmt) {
            crate::pg_catalog::rewrite::rewrite(stmt, &|| self.snapshot())?;
        }
        if crate::scalar_subquery::has_scalar_subquery(stmt) {
            crate::scalar_subquery::rewrite(stmt);
        }
        Ok(())
    }

    /// SQL to a logical plan, names resolved in this statement's catalog.
    pub(crate) fn plan(&self, stmt: Statement) -> Result<LogicalPlan, SqlError> {
        self.plan_typed(stmt, &[])
    }

    /// Plans `stmt` with the types of its bound parameters: each `$n` has
    /// one type wherever it appears, as in PostgreSQL (untyped, DataFusion
    /// types each occurrence from its own context, so `'e' || $1` and
    /// `$1 + 1` disagree and the value fits only one of them).
    pub(crate) fn plan_with_params(
        &self,
        stmt: Statement,
        params: &[ScalarValue],
    ) -> Result<LogicalPlan, SqlError> {
        // A numeric keeps its context's type: its value's own precision
        // and scale are not the column's (`exact.rs` compares numerics
        // as DECIMAL(38,10)), and the value is cast to what is inferred.
        let types: Vec<Option<DataType>> = params
            .iter()
            .map(|p| {
                Some(p.data_type()).filter(|t| {
                    !matches!(
                        t,
                        DataType::Null | DataType::Decimal128(..) | DataType::Decimal256(..)
                    )
                })
            })
            .collect();
        self.plan_typed(stmt, &types)
    }

    fn plan_typed(
        &self,
        mut stmt: Statement,
        types: &[Option<DataType>],
    ) -> Result<LogicalPlan, SqlError> {
        self.rewrite(&mut stmt)?;
        let planner = SqlToRel::new_with_options(self, self.base.parser_options());
        if types.iter().all(Option::is_none) {
            return Ok(planner.sql_statement_to_plan(stmt)?);
        }
        let fields = types
            .iter()
            .map(|t| {
                t.as_ref()
                    .map(|t| Arc::new(Field::new("", t.clone(), true)))
            })
            .collect();
        let mut context =
            datafusion::sql::planner::PlannerContext::new().with_prepare_param_data_types(fields);
        Ok(planner.sql_statement_to_plan_with_context(stmt, &mut context)?)
    }

    /// Plans and runs `stmt` with `params` bound.
    pub(crate) async fn run(
        &self,
        stmt: Statement,
        params: &[ScalarValue],
    ) -> Result<(SchemaRef, Vec<RecordBatch>), SqlError> {
        let plan = self.plan_with_params(stmt, params)?;
        let plan = if params.is_empty() {
            plan
        } else {
            plan.with_param_values(params.to_vec())?
        };
        Ok(self.base.collect(&plan, &self.interrupt).await?)
    }

    pub(crate) fn base(&self) -> &Arc<PlanningBase> {
        &self.base
    }

    /// The class table `name` names, read through this statement's
    /// transaction (binding a cached plan).
    pub(crate) fn class_table(&self, name: &TableReference) -> DfResult<Arc<dyn TableProvider>> {
        let (schema, table) = match name {
            TableReference::Partial { schema, table } => (schema.as_ref(), table.as_ref()),
            TableReference::Full { schema, table, .. } => (schema.as_ref(), table.as_ref()),
            TableReference::Bare { table } => {
                return self
                    .bare_table(table)?
                    .ok_or_else(|| DataFusionError::Plan(format!("table '{name}' not found")))
            }
        };
        self.table(schema, table)?
            .ok_or_else(|| DataFusionError::Plan(format!("table '{name}' not found")))
    }

    fn module(&self, name: &str) -> Option<&Arc<ModuleDef>> {
        self.modules.iter().find(|m| m.name == name)
    }

    fn table(&self, schema: &str, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if schema == DEFAULT_SCHEMA {
            if let Some(t) = self.temps.get(name) {
                return Ok(Some(t.clone()));
            }
        }
        if schema == "amber" && name == "modules" {
            return crate::amber_schema::modules(&self.modules).map(Some);
        }
        if schema == "amber" && name == "module_history" {
            return crate::amber_schema::history(&self.txn).map(Some);
        }
        if crate::pg_catalog::is_catalog_schema(schema) {
            let view_types = match crate::pg_catalog::lists_columns(schema, name) {
                true => self.view_types(),
                false => crate::pg_catalog::ViewTypes::new(),
            };
            return crate::pg_catalog::table(&self.snapshot(), schema, name, &view_types);
        }
        let Some(module) = self.module(schema) else {
            return Ok(None);
        };
        if let Some(view) = module.shape.views.iter().find(|v| v.name == name) {
            return self.view_table(view).map(Some);
        }
        // `ONLY t` (`parse.rs` names it so): t's objects, not its
        // subclasses'.
        let (name, only) = match name.strip_prefix(crate::table::ONLY_PREFIX) {
            Some(rest) => (rest, true),
            None => (name, false),
        };
        let Some(class) = module.shape.classes.iter().find(|c| c.table == name) else {
            return Ok(None);
        };
        // A view's query reads its tables for itself (its filters compare
        // numerics): the statement's exact reading of output-only numeric
        // columns does not reach into it.
        let in_view = self
            .views_planning
            .lock()
            .map(|v| !v.is_empty())
            .unwrap_or(true);
        let exact = match in_view {
            true => ExactNumeric::none(),
            false => self.exact.clone(),
        };
        Ok(Some(Arc::new(ClassTable::new(
            module.clone(),
            class.clone(),
            self.txn.clone(),
            &exact,
            &self.zone,
            self.expose_hidden == Some(class.id),
            only,
        ))))
    }
}

/// Most views nested in one another a statement may plan.
const VIEW_DEPTH_MAX: usize = 32;

impl StatementContext {
    /// A view as DataFusion's view table: its query planned in this
    /// statement's catalog (so read in its transaction), its columns
    /// named as CREATE VIEW fixed them.
    fn view_table(&self, view: &amber_catalog::ViewDef) -> DfResult<Arc<dyn TableProvider>> {
        {
            let mut planning = self
                .views_planning
                .lock()
                .map_err(|e| DataFusionError::Internal(e.to_string()))?;
            if planning.contains(&view.name) || planning.len() >= VIEW_DEPTH_MAX {
                return Err(SqlError::new(
                    "42P17",
                    format!(
                        "infinite recursion detected in rules for relation \"{}\"",
                        view.name
                    ),
                )
                .into());
            }
            planning.push(view.name.clone());
        }
        let planned = self.plan_view(view);
        if let Ok(mut planning) = self.views_planning.lock() {
            planning.pop();
        }
        Ok(Arc::new(ViewTable::new(planned?, Some(view.sql.clone()))))
    }

    /// Every view's column types (wire oids), as its query plans now; a
    /// view that no longer plans has none (its columns list as text).
    fn view_types(&self) -> crate::pg_catalog::ViewTypes {
        let mut out = crate::pg_catalog::ViewTypes::new();
        for m in &self.modules {
            for v in &m.shape.views {
                if let Ok(t) = self.view_table(v) {
                    let types = t
                        .schema()
                        .fields()
                        .iter()
                        .map(|f| crate::value::types::oid_of_field(f))
                        .collect();
                    out.insert((m.name.clone(), v.name.clone()), types);
                }
            }
        }
        out
    }

    fn plan_view(&self, view: &amber_catalog::ViewDef) -> DfResult<LogicalPlan> {
        let stmts = datafusion::sql::sqlparser::parser::Parser::parse_sql(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            &view.sql,
        )
        .map_err(|e| DataFusionError::Internal(format!("view {}: {e}", view.name)))?;
        let Some(Statement::Query(mut query)) = stmts.into_iter().next() else {
            return Err(DataFusionError::Internal(format!(
                "view {} is not a query",
                view.name
            )));
        };
        crate::names::output_names(&mut query);
        let mut stmt = Statement::Query(query);
        self.rewrite(&mut stmt)?;
        let planner = SqlToRel::new_with_options(self, self.base.parser_options());
        let plan = planner.sql_statement_to_plan(stmt)?;
        let fields = plan.schema().columns();
        if fields.len() != view.columns.len() {
            return Err(SqlError::new(
                "0A000",
                format!(
                    "view {} no longer has the columns it was created with",
                    view.name
                ),
            )
            .into());
        }
        // A view's columns are its own (oid and attnum), as PostgreSQL
        // describes them, not those of the tables it reads.
        let exprs: Vec<Expr> = fields
            .into_iter()
            .zip(&view.columns)
            .enumerate()
            .map(|(i, (c, name))| match view.oid {
                0 => Expr::Column(c).alias(name),
                oid => Expr::Column(c).alias_with_metadata(
                    name,
                    Some(
                        crate::column_source::metadata(
                            oid,
                            i16::try_from(i + 1).unwrap_or(i16::MAX),
                        )
                        .into(),
                    ),
                ),
            })
            .collect();
        datafusion::logical_expr::LogicalPlanBuilder::from(plan)
            .project(exprs)?
            .build()
    }
}

impl ContextProvider for StatementContext {
    fn get_table_source(&self, name: TableReference) -> DfResult<Arc<dyn TableSource>> {
        let (catalog, schema, table) = match &name {
            TableReference::Bare { table } => (CATALOG, DEFAULT_SCHEMA, table.as_ref()),
            TableReference::Partial { schema, table } => (CATALOG, schema.as_ref(), table.as_ref()),
            TableReference::Full {
                catalog,
                schema,
                table,
            } => (catalog.as_ref(), schema.as_ref(), table.as_ref()),
        };
        let found = match &name {
            TableReference::Bare { table } => self.bare_table(table)?,
            _ if catalog == CATALOG => self.table(schema, table)?,
            _ => None,
        };
        found.map(provider_as_source).ok_or_else(|| {
            let shown = match &name {
                TableReference::Bare { table } => table.to_string(),
                _ => format!("{schema}.{table}"),
            };
            // PostgreSQL's message, which `error.rs` maps to 42P01.
            DataFusionError::Plan(format!("relation \"{shown}\" does not exist"))
        })
    }

    fn get_table_function_source(
        &self,
        name: &str,
        args: Vec<Expr>,
    ) -> DfResult<Arc<dyn TableSource>> {
        let state = &self.base.state;
        let function =
            state.table_functions().get(name).cloned().ok_or_else(|| {
                DataFusionError::Plan(format!("table function '{name}' not found"))
            })?;
        // As DataFusion's own context: constant arguments are folded.
        let simplifier = ExprSimplifier::new(
            SimplifyContext::builder()
                .with_config_options(state.config_options().clone())
                .with_query_execution_start_time(Some(Utc::now()))
                .build(),
        );
        let schema = DFSchema::empty();
        let args = args
            .into_iter()
            .map(|a| {
                simplifier
                    .coerce(a, &schema)
                    .and_then(|e| simplifier.simplify(e))
            })
            .collect::<DfResult<Vec<_>>>()?;
        let provider =
            function.create_table_provider_with_args(TableFunctionArgs::new(&args, state))?;
        Ok(provider_as_source(provider))
    }

    fn create_cte_work_table(
        &self,
        name: &str,
        schema: SchemaRef,
    ) -> DfResult<Arc<dyn TableSource>> {
        Ok(provider_as_source(Arc::new(CteWorkTable::new(
            name, schema,
        ))))
    }

    fn get_expr_planners(&self) -> &[Arc<dyn ExprPlanner>] {
        self.base.state.expr_planners()
    }

    fn get_relation_planners(&self) -> &[Arc<dyn RelationPlanner>] {
        self.base.state.relation_planners()
    }

    fn get_function_meta(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        if let Some(f) = self
            .functions
            .get(name)
            .or_else(|| self.base.state.scalar_functions().get(name))
        {
            return Some(f.clone());
        }
        crate::pg_catalog::functions::function(name, self.snapshot())
    }

    fn get_higher_order_meta(&self, name: &str) -> Option<Arc<HigherOrderUDF>> {
        self.base.state.higher_order_functions().get(name).cloned()
    }

    fn get_aggregate_meta(&self, name: &str) -> Option<Arc<AggregateUDF>> {
        self.base.state.aggregate_functions().get(name).cloned()
    }

    fn get_window_meta(&self, name: &str) -> Option<Arc<WindowUDF>> {
        self.base.state.window_functions().get(name).cloned()
    }

    fn get_variable_type(&self, _variable_names: &[String]) -> Option<DataType> {
        None
    }

    fn options(&self) -> &ConfigOptions {
        self.base.state.config_options()
    }

    fn udf_names(&self) -> Vec<String> {
        let base = self.base.state.scalar_functions().keys();
        self.functions.keys().chain(base).cloned().collect()
    }

    fn higher_order_function_names(&self) -> Vec<String> {
        self.base
            .state
            .higher_order_functions()
            .keys()
            .cloned()
            .collect()
    }

    fn udaf_names(&self) -> Vec<String> {
        self.base
            .state
            .aggregate_functions()
            .keys()
            .cloned()
            .collect()
    }

    fn udwf_names(&self) -> Vec<String> {
        self.base.state.window_functions().keys().cloned().collect()
    }
}

/// PostgreSQL functions that clients call on connect.
fn pg_functions() -> Vec<ScalarUDF> {
    use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
    let constant = |name: &str, value: String| {
        create_udf(
            name,
            vec![],
            DataType::Utf8,
            Volatility::Stable,
            Arc::new(move |_args: &[ColumnarValue]| {
                Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
                    value.clone(),
                ))))
            }),
        )
    };
    vec![
        constant(
            "version",
            format!(
                "PostgreSQL 15.0 (Amber {}) on x86_64-pc-linux-gnu, compiled by rustc, 64-bit",
                env!("CARGO_PKG_VERSION")
            ),
        ),
        constant("current_database", "amber".into()),
        constant("current_user", "amber".into()),
        constant("session_user", "amber".into()),
        // SQL's keywords for the two (Grafana's search_path lookup says `user`).
        constant("user", "amber".into()),
        constant("current_role", "amber".into()),
        constant("current_catalog", "amber".into()),
        create_udf(
            crate::pg_catalog::rewrite::LIKE_ESCAPE,
            vec![DataType::Utf8, DataType::Utf8],
            DataType::Utf8,
            Volatility::Immutable,
            Arc::new(|args: &[ColumnarValue]| {
                use datafusion::arrow::array::{Array, AsArray, StringBuilder};
                let arrays = ColumnarValue::values_to_arrays(args)?;
                let (Some(patterns), Some(escapes)) = (arrays.first(), arrays.get(1)) else {
                    return Err(DataFusionError::Internal(
                        "like escape: two arguments".into(),
                    ));
                };
                let (patterns, escapes) = (patterns.as_string::<i32>(), escapes.as_string::<i32>());
                let mut out = StringBuilder::with_capacity(patterns.len(), 0);
                for i in 0..patterns.len() {
                    if patterns.is_null(i) || escapes.is_null(i) {
                        out.append_null();
                    } else {
                        out.append_value(crate::pg_catalog::rewrite::like_pattern(
                            patterns.value(i),
                            escapes.value(i),
                        ));
                    }
                }
                let array: datafusion::arrow::array::ArrayRef = Arc::new(out.finish());
                Ok(
                    match args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
                        true => ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?),
                        false => ColumnarValue::Array(array),
                    },
                )
            }),
        ),
    ]
}
