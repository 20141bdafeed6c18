//! Describe (extended protocol): the types of a statement's parameters
//! and result columns, without running it.

use crate::constant::{self};
use crate::context::StatementContext;
use crate::convert;
use crate::error::SqlError;
use crate::exact::ExactNumeric;
use crate::names;
use crate::names::rename_columns;
use crate::plan::{from_factors, temp_table_factor};
use crate::session::PARAMS_MAX;
use crate::session::{split_qualified, Output, Session, TxnState};
use crate::table::{self};
use crate::value;
use amber_catalog::{Returns, SqlType};
use amber_runtime::TxnHandle;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::sql::sqlparser::ast::{
    self, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Query, Statement, TableFactor,
    Value,
};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

impl Session {
    /// Parameter and result types of a statement, for Describe.
    pub(crate) async fn describe(
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
        for (idx, oid) in declared_param_oids(stmt) {
            if idx < types.len() && types[idx].is_none() {
                if let Some(t) = value::types::arrow_of(oid) {
                    types[idx] = Some(t);
                    if oid == value::types::JSONB {
                        jsonb.insert(idx);
                    }
                }
            }
        }
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
                let mut ctx = self.statement_context(&txn, &ExactNumeric::of_statement(stmt));
                let mut query = (**q).clone();
                // A set-returning call needs its argument values; describe
                // its shape from the catalog instead of calling it.
                self.describe_srfs(&mut query, &mut ctx)?;
                let names = names::output_names(&mut query);
                let plan = ctx.plan(Statement::Query(Box::new(query)))?;
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
                let any_arrays = crate::any_arrays::placeholder_types(&plan)
                    .into_iter()
                    .map(|(n, t)| (n, Some(t)));
                for (name, t) in inferred.into_iter().chain(any_arrays) {
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
                // The types the analyzer gives (an int4 literal, a real
                // promoted), as Execute will send them; the rest of each
                // field (its column source) as planned, since the
                // analyzer's coercion of a UNION merges its branches'.
                let planned = plan.schema().as_arrow().clone();
                let analyzed = ctx.base().analyze(&plan).ok();
                let fields: Vec<_> = planned
                    .fields()
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        let t = analyzed
                            .as_ref()
                            .and_then(|a| a.schema().fields().get(i).map(|g| g.data_type()));
                        match t {
                            Some(t) => f.as_ref().clone().with_data_type(t.clone()),
                            None => f.as_ref().clone(),
                        }
                    })
                    .collect();
                let schema = Arc::new(datafusion::arrow::datatypes::Schema::new_with_metadata(
                    fields,
                    planned.metadata().clone(),
                ));
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

    pub(crate) fn describe_srfs(
        &mut self,
        query: &mut Query,
        ctx: &mut StatementContext,
    ) -> Result<bool, SqlError> {
        let mut any = false;
        for factor in from_factors(query) {
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
            ctx.register_temp(&tmp, Arc::new(MemTable::try_new(schema, vec![vec![]])?));
            *factor = temp_table_factor(&tmp, alias.clone(), &f);
            any = true;
        }
        Ok(any)
    }
}

/// The type `$n::type` declares for parameter n (0-based), by oid: what
/// Describe reports for it (`$1::oid[]` is oid[], though computed as
/// bigint[]).
pub(crate) fn declared_param_oids(stmt: &Statement) -> std::collections::HashMap<usize, u32> {
    let mut out = std::collections::HashMap::new();
    let _ = ast::visit_expressions(stmt, |e: &Expr| {
        if let Expr::Cast {
            expr, data_type, ..
        } = e
        {
            if let (Expr::Value(_), Some(idx), Some(oid)) = (
                expr.as_ref(),
                placeholder_index(expr),
                constant::cast_oid(data_type),
            ) {
                out.entry(idx).or_insert(oid);
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    out
}

pub(crate) fn placeholder_index(e: &Expr) -> Option<usize> {
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

pub(crate) fn count_placeholders(stmt: &Statement) -> Result<usize, SqlError> {
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
