//! The planning context: a DataFusion `SessionContext` whose tables and
//! functions see the statement's transaction and modules, and the
//! planned path of a query (set-returning calls in FROM evaluated first,
//! numeric columns read exactly).

use crate::call::{coerce_args, positional_args};
use crate::constant::constant_values;
use crate::error::SqlError;
use crate::exact::ExactNumeric;
use crate::names;
use crate::names::rename_columns;
use crate::session::{split_qualified, Session};
use crate::table::{self, ClassTable, PythonUdf, UdfEnv};
use amber_catalog::{ModuleDef, Returns, SqlType};
use amber_runtime::TxnHandle;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{self, ObjectName, Query, SetExpr, Statement, TableFactor};
use serde_json::Value as Json;
use std::collections::HashSet;
use std::sync::Arc;

impl Session {
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
                let spec = self.call_spec(module, &callable);
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
    pub(crate) fn numeric_columns_in(&self, query: &Query) -> (HashSet<String>, HashSet<String>) {
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
    pub(crate) async fn rewrite_set_returning(
        &mut self,
        query: &mut Query,
        ctx: &SessionContext,
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
        Ok(())
    }
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

/// PostgreSQL functions that clients call on connect.
pub(crate) fn register_pg_functions(ctx: &SessionContext) {
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
