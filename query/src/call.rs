//! `SELECT m.f(<constants>)`: one call of a module function, without
//! planning. A DataFusion context and plan for a one-row, one-call query
//! cost the server a quarter of a no-op call (`perf`, bench P2'); the call
//! itself takes the same path as `CALL`.

use crate::constant::{bare_select, constant_values};
use crate::convert;
use crate::error::SqlError;
use crate::names;
use crate::session::{split_qualified, Output, Session};
use crate::table;
use amber_catalog::{Returns, SqlType};
use amber_runtime::TxnHandle;
use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Query, SelectItem,
};

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
