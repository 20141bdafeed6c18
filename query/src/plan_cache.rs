//! Plans cached per prepared statement: a query executed again skips SQL
//! planning, analysis and optimization and only binds, physically plans
//! and runs (PostgreSQL's generic plan).
//!
//! The cached plan is optimized with its parameters as placeholders and
//! holds no transaction: its class tables are detached (schema only) and
//! each execution binds them to its own transaction, then substitutes the
//! parameter values. A plan is reused only for the same module generations,
//! TimeZone and Python permission it was planned with. Not cached (planned
//! every time, as before): queries calling Python (a UDF carries its
//! call's transaction and deadline), stable functions (`now()` folds to
//! the statement's time at optimization), set-returning calls in FROM (run
//! at planning), and tables other than classes (`amber.modules` is data).

use crate::context::StatementContext;
use crate::error::SqlError;
use crate::exact::ExactNumeric;
use crate::names;
use crate::plan::from_factors;
use crate::session::Session;
use crate::table::{ClassTable, PythonUdf};
use amber_runtime::TxnHandle;
use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::Session as DfSession;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::ScalarValue;
use datafusion::datasource::cte_worktable::CteWorkTable;
use datafusion::datasource::{provider_as_source, source_as_provider, TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::sql::sqlparser::ast::{Query, Statement, TableFactor};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One prepared statement's cached plan (shared by its portals).
#[derive(Debug, Default)]
pub struct PlanCache {
    slot: Mutex<Slot>,
}

#[derive(Debug, Default)]
enum Slot {
    #[default]
    Empty,
    /// The statement cannot have a generic plan (see the module doc).
    Never,
    Plan(Arc<CachedPlan>),
}

#[derive(Debug)]
struct CachedPlan {
    key: PlanKey,
    exact: ExactNumeric,
    names: Option<Vec<Option<String>>>,
    /// Optimized, with placeholders and detached class tables.
    plan: LogicalPlan,
    param_types: HashMap<String, Option<DataType>>,
}

/// What a plan depends on besides the statement's text.
#[derive(Debug, PartialEq)]
struct PlanKey {
    /// Name and generation of every module the statement uses.
    modules: Vec<(String, u64)>,
    zone: String,
    allow_python: bool,
    /// Unqualified names resolve through it.
    search_path: Vec<String>,
}

impl Session {
    fn plan_key(&self) -> PlanKey {
        PlanKey {
            modules: self
                .modules
                .iter()
                .map(|m| (m.name.clone(), m.generation))
                .collect(),
            zone: self.value_settings().zone.arrow_name().to_string(),
            allow_python: self.allow_python,
            search_path: self.search_path(),
        }
    }

    /// Runs `query` through `cache`'s plan (planning it first if there is
    /// none for this key); `None` when the query cannot use a cached plan.
    pub(crate) async fn run_cached(
        &mut self,
        cache: &PlanCache,
        query: &Query,
        params: &[ScalarValue],
        txn: &TxnHandle,
    ) -> Result<Option<(SchemaRef, Vec<RecordBatch>, Option<Vec<Option<String>>>)>, SqlError> {
        let key = self.plan_key();
        let cached = {
            let slot = cache
                .slot
                .lock()
                .map_err(|_| SqlError::internal("plan cache poisoned"))?;
            match &*slot {
                Slot::Never => return Ok(None),
                Slot::Plan(p) if p.key == key => Some(p.clone()),
                _ => None,
            }
        };
        let cached = match cached {
            Some(p) => p,
            None => {
                let planned = self.generic_plan(query, params, txn, key);
                let mut slot = cache
                    .slot
                    .lock()
                    .map_err(|_| SqlError::internal("plan cache poisoned"))?;
                match planned {
                    Some(p) => {
                        let p = Arc::new(p);
                        *slot = Slot::Plan(p.clone());
                        p
                    }
                    None => {
                        *slot = Slot::Never;
                        return Ok(None);
                    }
                }
            }
        };
        let ctx = self.statement_context(txn, &cached.exact);
        let Some(plan) = bind(&cached.plan, &ctx)? else {
            // A table changed shape under an unchanged key: never expected;
            // plan afresh rather than run a stale plan.
            return Ok(None);
        };
        let Some(params) = typed_params(params, &cached.param_types) else {
            return Ok(None);
        };
        let plan = if params.is_empty() {
            plan
        } else {
            plan.with_param_values(params)?
        };
        let (schema, batches) = ctx.base().collect_optimized(&plan, ctx.interrupt()).await?;
        Ok(Some((schema, batches, cached.names.clone())))
    }

    /// The generic plan of `query`, or None when it has none (or cannot be
    /// planned now: the ordinary path then reports why).
    fn generic_plan(
        &self,
        query: &Query,
        params: &[ScalarValue],
        txn: &TxnHandle,
        key: PlanKey,
    ) -> Option<CachedPlan> {
        let (mut query, exact) = self.exact_query(query);
        if from_factors(&mut query)
            .iter()
            .any(|f| matches!(f, TableFactor::Table { args: Some(_), .. }))
        {
            return None;
        }
        let ctx = self.statement_context(txn, &exact);
        let names = names::output_names(&mut query);
        let plan = ctx
            .plan_with_params(Statement::Query(Box::new(query)), params)
            .ok()?;
        if !calls_only_immutable(&plan) || crate::subplan::has_lateral(&plan) {
            return None;
        }
        let mut param_types = plan.get_parameter_types().ok()?;
        let optimized = ctx.base().optimize(&plan).ok()?;
        // The analyzer types some placeholders the planner left untyped
        // (`x = ANY($1)`, `any_arrays.rs`): values are cast to those.
        for (name, t) in optimized.get_parameter_types().ok()? {
            if t.is_some() {
                param_types.insert(name, t);
            }
        }
        let plan = detach(optimized)?;
        Some(CachedPlan {
            key,
            exact,
            names,
            plan,
            param_types,
        })
    }
}

/// True when no expression of `plan` calls Python or a stable function.
fn calls_only_immutable(plan: &LogicalPlan) -> bool {
    let mut ok = true;
    let _ = plan.apply_with_subqueries(|p| {
        p.apply_expressions(|e| {
            e.apply(|e| {
                if let Expr::ScalarFunction(f) = e {
                    let python = f.func.inner().is::<PythonUdf>();
                    if python || f.func.signature().volatility == Volatility::Stable {
                        ok = false;
                        return Ok(TreeNodeRecursion::Stop);
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        Ok(if ok {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    ok
}

/// `plan` with its class tables replaced by their schemas; None when it
/// reads a table that is not a class (or a recursive query's work table).
fn detach(plan: LogicalPlan) -> Option<LogicalPlan> {
    let mut ok = true;
    let plan = plan
        .transform_up_with_subqueries(|p| {
            let LogicalPlan::TableScan(mut scan) = p else {
                return Ok(Transformed::no(p));
            };
            let provider = source_as_provider(&scan.source)?;
            if provider.is::<ClassTable>() {
                scan.source = provider_as_source(Arc::new(Detached {
                    schema: provider.schema(),
                }));
                return Ok(Transformed::yes(LogicalPlan::TableScan(scan)));
            }
            if !provider.is::<CteWorkTable>() {
                ok = false;
            }
            Ok(Transformed::no(LogicalPlan::TableScan(scan)))
        })
        .ok()?
        .data;
    ok.then_some(plan)
}

/// The cached `plan` with its class tables read through `ctx`'s
/// transaction; None if a table's schema is no longer the planned one.
fn bind(plan: &LogicalPlan, ctx: &StatementContext) -> Result<Option<LogicalPlan>, SqlError> {
    let mut same = true;
    let plan = plan
        .clone()
        .transform_up_with_subqueries(|p| {
            let LogicalPlan::TableScan(mut scan) = p else {
                return Ok(Transformed::no(p));
            };
            let detached = source_as_provider(&scan.source)?;
            if !detached.is::<Detached>() {
                return Ok(Transformed::no(LogicalPlan::TableScan(scan)));
            }
            let table = ctx.class_table(&scan.table_name)?;
            if table.schema() != detached.schema() {
                same = false;
            }
            scan.source = provider_as_source(table);
            Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
        })?
        .data;
    Ok(same.then_some(plan))
}

/// Parameter values as the types the plan gave their placeholders (the
/// analyzer has run: nothing would coerce them after substitution); None
/// when one does not convert (the ordinary path then decides).
fn typed_params(
    params: &[ScalarValue],
    types: &HashMap<String, Option<DataType>>,
) -> Option<Vec<ScalarValue>> {
    params
        .iter()
        .enumerate()
        .map(|(i, v)| match types.get(&format!("${}", i + 1)) {
            Some(Some(t)) if &v.data_type() != t => v.cast_to(t).ok(),
            _ => Some(v.clone()),
        })
        .collect()
}

/// A class table in a cached plan: its schema, bound to a transaction by
/// [`bind`] before each execution.
#[derive(Debug)]
struct Detached {
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for Detached {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn DfSession,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Err(DataFusionError::Internal(
            "a cached plan ran without being bound to a transaction".into(),
        ))
    }
}
