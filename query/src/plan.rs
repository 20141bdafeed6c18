//! A statement's planning context (`context.rs`) with its module functions,
//! and the planned path of a query (set-returning calls in FROM evaluated
//! first, numeric columns read exactly).

use crate::call::{coerce_args, positional_args};
use crate::constant::constant_values;
use crate::context::StatementContext;
use crate::error::SqlError;
use crate::exact::ExactNumeric;
use crate::names;
use crate::names::rename_columns;
use crate::session::{split_qualified, Session};
use crate::table::{self, PythonUdf, UdfEnv};
use amber_catalog::{ModuleDef, Returns, SqlType};
use amber_runtime::TxnHandle;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::ScalarUDF;
use datafusion::sql::sqlparser::ast::{self, ObjectName, Query, SetExpr, Statement, TableFactor};
use serde_json::Value as Json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

impl Session {
    /// The statement's view of the shared planning context: its modules'
    /// classes and functions, read and called through `txn`.
    pub(crate) fn statement_context(
        &self,
        txn: &TxnHandle,
        exact: &ExactNumeric,
    ) -> StatementContext {
        let modules: Vec<Arc<ModuleDef>> = self.modules.iter().cloned().collect();
        let settings = self.value_settings();
        let zone = settings.zone.arrow_name().to_string();
        let mut functions = HashMap::new();
        if self.allow_python {
            let env = UdfEnv {
                runtime: self.engine.runtime.clone(),
                txn: txn.clone(),
                settings,
            };
            for module in &modules {
                for (sql_name, callable) in module.sql_functions() {
                    let returns = match &callable.function.returns {
                        Returns::Scalar(t) => Some(t.clone()),
                        Returns::Void => None,
                        // Set-returning functions are called in FROM
                        // (rewritten before planning); in a select list
                        // they give jsonb.
                        Returns::SetOf(_) => Some(SqlType::Jsonb),
                    };
                    let name = format!("{}.{}", module.name, sql_name);
                    let udf = PythonUdf::new(
                        name.clone(),
                        self.call_spec(module, &callable),
                        callable.sql_params(),
                        returns,
                        env.clone(),
                        exact.keeps_function(&name),
                    );
                    functions.insert(name, Arc::new(ScalarUDF::new_from_impl(udf)));
                }
            }
        }
        let schemas: Vec<String> = self
            .search_path()
            .into_iter()
            .filter(|s| {
                s == crate::modules::PUBLIC_SCHEMA || s == "pg_catalog" || self.module(s).is_some()
            })
            .collect();
        // One copy of the session's settings per statement, shared by
        // current_setting() and pg_settings.
        let settings = Arc::new(self.settings.clone());
        functions.extend(crate::pg_functions::session_functions(
            self.backend_pid,
            &settings,
            self.open_block_read_only().ok().flatten(),
            schemas,
            &self.set_by_functions,
        ));
        let mut ctx = StatementContext::new(
            self.engine.planning.clone(),
            modules,
            txn.clone(),
            exact,
            zone,
            functions,
        );
        if let Some(class_id) = self.expose_hidden {
            ctx.expose_hidden_id(class_id);
        }
        ctx.set_search_path(self.search_path());
        ctx.set_settings(settings);
        ctx.set_activity(self.engine.activity.clone());
        ctx.set_interrupt(crate::subplan::Interrupt {
            deadline: self.statement_deadline,
            cancel: Some(self.cancel.clone()),
        });
        ctx
    }

    /// Plans and runs a query; columns are named as PostgreSQL names them.
    pub(crate) async fn run_query(
        &mut self,
        query: &Query,
        params: &[ScalarValue],
        txn: &TxnHandle,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), SqlError> {
        if let Some(cache) = self.plan_cache.clone() {
            if let Some((schema, batches, names)) =
                self.run_cached(&cache, query, params, txn).await?
            {
                return with_names(schema, batches, names.as_deref());
            }
        }
        let (mut query, exact) = self.exact_query(query);
        let mut ctx = self.statement_context(txn, &exact);
        self.rewrite_set_returning(&mut query, &mut ctx, params, txn, &exact)
            .await?;
        let names = names::output_names(&mut query);
        let (schema, batches) = ctx.run(Statement::Query(Box::new(query)), params).await?;
        with_names(schema, batches, names.as_deref())
    }

    /// A copy of `query` with its numeric columns read exactly where they
    /// are only output (`exact.rs`), and what that decided.
    pub(crate) fn exact_query(&self, query: &Query) -> (Query, ExactNumeric) {
        let mut query = query.clone();
        let (numeric, other) = self.numeric_columns_in(&query);
        let exact = ExactNumeric::prepare(&mut query, &numeric, &other);
        (query, exact)
    }

    /// Names of the numeric columns of the classes `query` reads, and of
    /// their other columns (a name in both is not rewritten by `exact.rs`).
    pub(crate) fn numeric_columns_in(&self, query: &Query) -> (HashSet<String>, HashSet<String>) {
        let mut numeric = HashSet::new();
        let mut other = HashSet::new();
        let _ = ast::visit_relations(query, |name: &ObjectName| {
            if let Ok((_m, class)) = self.resolve_table(name) {
                for c in &class.columns {
                    // A numeric(p,s) computes at its own scale, exactly:
                    // it needs no exact-text reading.
                    if matches!(c.ty, SqlType::Numeric)
                        && crate::convert::column_arrow_type(c) == crate::convert::arrow_type(&c.ty)
                    {
                        numeric.insert(c.name.to_lowercase());
                    } else {
                        other.insert(c.name.to_lowercase());
                    }
                }
                if !class.hidden_id {
                    other.insert("id".to_string());
                }
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        (numeric, other)
    }

    /// Replaces `FROM schema.func(args)` of a set-returning module function
    /// by a table holding the rows the call returned.
    pub(crate) async fn rewrite_set_returning(
        &mut self,
        query: &mut Query,
        ctx: &mut StatementContext,
        params: &[ScalarValue],
        txn: &TxnHandle,
        exact: &ExactNumeric,
    ) -> Result<(), SqlError> {
        for factor in from_factors(query) {
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
            // PostgreSQL's own table functions (`pg_catalog.generate_series`)
            // are DataFusion's (`pg_catalog/rewrite.rs`).
            if crate::pg_catalog::is_catalog_schema(&module_name) {
                continue;
            }
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
            let exprs = positional_args(&args.args)?;
            self.python_allowed()?;
            let values = constant_values(&exprs, params, &self.value_settings())?.ok_or_else(|| {
                    SqlError::unsupported("arguments of a set-returning function in FROM must be constants or parameters")
                })?;
            let call_args = coerce_args(&callable.sql_params(), &values, &self.value_settings())?;
            let spec = self.call_spec(&module, &callable);
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
            let schema = table::class_schema_in(&class, exact, &zone, false);
            let batch = table::batch(schema.clone(), &table::class_types(&class), &rows)?;
            self.srf_counter += 1;
            let tmp = format!("__amber_srf_{}", self.srf_counter);
            ctx.register_temp(
                &tmp,
                Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
            );
            *factor = temp_table_factor(&tmp, alias.clone(), &fname);
        }
        Ok(())
    }
}

/// The result with its columns named as PostgreSQL names them.
fn with_names(
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    names: Option<&[Option<String>]>,
) -> Result<(SchemaRef, Vec<RecordBatch>), SqlError> {
    let schema = rename_columns(&schema, names);
    let batches = batches
        .into_iter()
        .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SqlError::internal(e.to_string()))?;
    Ok((schema, batches))
}

/// `FROM <tmp> AS <alias or function name>`: where a set-returning call
/// stood, the table holding its rows.
pub(crate) fn temp_table_factor(
    tmp: &str,
    alias: Option<ast::TableAlias>,
    function: &str,
) -> TableFactor {
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

/// The FROM items of a SELECT, its joins' included (where a set-returning
/// call can stand); none for anything else.
pub(crate) fn from_factors(query: &mut Query) -> Vec<&mut TableFactor> {
    let SetExpr::Select(select) = query.body.as_mut() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for twj in select.from.iter_mut() {
        out.push(&mut twj.relation);
        for j in twj.joins.iter_mut() {
            out.push(&mut j.relation);
        }
    }
    out
}
