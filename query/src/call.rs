//! Calls of module functions outside a planned query: `CALL m.f(...)`
//! (arguments evaluated, coerced to the signature, one call in the
//! statement's transaction) and `SELECT m.f(<constants>)`, which takes the
//! same path without planning (a DataFusion context and plan for a one-row,
//! one-call query cost the server a quarter of a no-op call: `perf`, bench
//! P2').

use crate::constant::{bare_select, constant_values};
use crate::convert;
use crate::error::SqlError;
use crate::names;
use crate::session::{split_qualified, Output, Session};
use crate::table;
use crate::value;
use amber_catalog::{Callable, ModuleDef, Returns, SqlType};
use amber_runtime::CallSpec;
use amber_runtime::TxnHandle;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast::{self, Statement};
use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Query, SelectItem,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use serde_json::Value as Json;
use std::sync::Arc;

impl Session {
    /// The result of `SELECT m.f(args) [AS name]` when every argument is a
    /// constant or parameter and `f` returns a scalar other than numeric
    /// (whose exact text the planned path keeps); `None` for anything else,
    /// which is planned. Described by the planned path: the column's name
    /// and type here are the ones Describe gives.
    pub(crate) async fn select_call(
        &mut self,
        query: &Query,
        params: &[ScalarValue],
        txn: &TxnHandle,
    ) -> Result<Option<Output>, SqlError> {
        let Some(select) = bare_select(query) else {
            return Ok(None);
        };
        let [item] = select.projection.as_slice() else {
            return Ok(None);
        };
        let (SelectItem::UnnamedExpr(Expr::Function(f))
        | SelectItem::ExprWithAlias {
            expr: Expr::Function(f),
            ..
        }) = item
        else {
            return Ok(None);
        };
        if f.over.is_some() || f.filter.is_some() || !f.within_group.is_empty() {
            return Ok(None);
        }
        let args: Vec<Expr> = match &f.args {
            FunctionArguments::None => Vec::new(),
            FunctionArguments::List(list)
                if list.duplicate_treatment.is_none() && list.clauses.is_empty() =>
            {
                let mut out = Vec::with_capacity(list.args.len());
                for a in &list.args {
                    match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => out.push(e.clone()),
                        _ => return Ok(None),
                    }
                }
                out
            }
            _ => return Ok(None),
        };
        let Some((module_name, fname)) = split_qualified(&f.name) else {
            return Ok(None);
        };
        let Some(module) = self.module(&module_name) else {
            return Ok(None);
        };
        let Some(callable) = module.sql_function(&fname) else {
            return Ok(None);
        };
        let Returns::Scalar(ty) = &callable.function.returns else {
            return Ok(None);
        };
        if matches!(ty, SqlType::Numeric) || callable.sql_params().len() != args.len() {
            return Ok(None);
        }
        if constant_values(&args, params, &self.value_settings())?.is_none() {
            return Ok(None);
        }
        let ty = ty.clone();
        let value = self.call_statement(f, params, txn).await?;
        let name = names::select_item_names(query)
            .and_then(|n| n.into_iter().next().flatten())
            .unwrap_or_else(|| fname.clone());
        let schema = convert::schema_of(vec![convert::field(&name, &ty, true)]);
        let batch = table::batch(schema.clone(), &[ty], &[vec![value]])?;
        Ok(Some(Output::Rows {
            schema,
            batches: vec![batch],
            tag: "SELECT 1".into(),
        }))
    }
}

impl Session {
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
            FunctionArguments::List(list) => positional_args(&list.args)?,
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
        let spec = self.call_spec(&module, &callable);
        Ok(self.engine.runtime.call(spec, args, txn.clone()).await?)
    }

    /// The one-column row a `CALL` of a value-returning procedure gives (the
    /// column named after the procedure); `None` for a void procedure.
    pub(crate) fn call_result_schema(
        &self,
        function: &ast::Function,
    ) -> Option<(SchemaRef, SqlType)> {
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

/// The expressions of a call's arguments, all positional (named arguments
/// are not supported yet).
pub(crate) fn positional_args(args: &[FunctionArg]) -> Result<Vec<Expr>, SqlError> {
    args.iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e.clone()),
            _ => Err(SqlError::unsupported(
                "named arguments are not supported yet",
            )),
        })
        .collect()
}

impl Session {
    /// What the runtime needs to call `callable` of `module` for the
    /// running statement (its deadline and cancel flag).
    pub(crate) fn call_spec(&self, module: &Arc<ModuleDef>, callable: &Callable<'_>) -> CallSpec {
        CallSpec {
            module: module.clone(),
            class: callable.class.map(|c| c.name.clone()),
            function: callable.function.name.clone(),
            deadline: self.statement_deadline,
            cancel: Some(self.cancel.clone()),
        }
    }
}
