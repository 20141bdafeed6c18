//! Scalar subqueries as PostgreSQL runs them: `(SELECT d.adbin FROM
//! pg_attrdef d WHERE d.adrelid = a.attrelid)` is NULL for no row, the
//! value for one, and an error (21000) for more. DataFusion refuses a
//! correlated scalar subquery that is not aggregated ("must be aggregated
//! to return at most one row"); catalog queries (psql's `\d`) are full of
//! them. So the subquery's single output is wrapped in
//! [`SCALAR`] (`__amber_scalar(x)`), an aggregate with exactly
//! those semantics, which DataFusion then decorrelates (a left join on
//! the correlation keys) or runs as a SubPlan (`subplan.rs`).

use crate::error::SqlError;
use datafusion::arrow::array::{Array, ArrayRef, Int64Array};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};
use datafusion::sql::sqlparser::ast::{
    self, Expr, FunctionArguments, Ident, ObjectName, Query, SelectItem, SetExpr, Statement,
};
use std::ops::ControlFlow;
use std::sync::Arc;

/// The aggregate's name.
pub(crate) const SCALAR: &str = "__amber_scalar";

/// Aggregates a subquery's select item may already use (then it is one
/// row already, or grouped: left as written).
const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "every",
    "json_agg",
    "jsonb_agg",
    "json_object_agg",
    "jsonb_object_agg",
    "stddev",
    "variance",
    "bit_and",
    "bit_or",
    SCALAR,
];

fn has_aggregate(e: &Expr) -> bool {
    let mut found = false;
    let _ = ast::visit_expressions(e, |e: &Expr| {
        if let Expr::Function(f) = e {
            let name = f.name.to_string().to_lowercase();
            let name = name.rsplit('.').next().unwrap_or(&name);
            if AGGREGATES.contains(&name) || f.over.is_some() {
                found = true;
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    found
}

/// Wraps the select item of `q` if it is one plain row-producing
/// expression over rows (no aggregate, grouping, DISTINCT or LIMIT).
fn wrap(q: &mut Query) {
    if q.limit_clause.is_some() || q.fetch.is_some() || q.order_by.is_some() {
        return;
    }
    let SetExpr::Select(select) = q.body.as_mut() else {
        return;
    };
    let grouped = !matches!(&select.group_by, ast::GroupByExpr::Expressions(e, _) if e.is_empty());
    if grouped || select.having.is_some() || select.distinct.is_some() || select.from.is_empty() {
        return;
    }
    if select.projection.len() != 1 {
        return;
    }
    let (expr, alias) = match &mut select.projection[0] {
        SelectItem::UnnamedExpr(e) => (e, None),
        SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.clone())),
        _ => return,
    };
    if has_aggregate(expr) {
        return;
    }
    let inner = std::mem::replace(expr, Expr::value(ast::Value::Null));
    let call = Expr::Function(ast::Function {
        name: ObjectName::from(vec![Ident::new(SCALAR)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(ast::FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(inner))],
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    });
    select.projection[0] = SelectItem::ExprWithAlias {
        expr: call,
        alias: alias.unwrap_or_else(|| Ident::new("__amber_scalar_value")),
    };
}

/// Rewrites every scalar subquery of `stmt` ([`wrap`]).
pub(crate) fn rewrite(stmt: &mut Statement) {
    let _ = ast::visit_expressions_mut(stmt, |e: &mut Expr| {
        if let Expr::Subquery(q) = e {
            wrap(q);
        }
        ControlFlow::<()>::Continue(())
    });
}

/// Whether `stmt` has a scalar subquery (most statements do not).
pub(crate) fn has_scalar_subquery(stmt: &Statement) -> bool {
    ast::visit_expressions(stmt, |e: &Expr| {
        if matches!(e, Expr::Subquery(_)) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .is_break()
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct ScalarAggregate {
    signature: Signature,
}

impl ScalarAggregate {
    pub(crate) fn new() -> ScalarAggregate {
        ScalarAggregate {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

fn too_many() -> DataFusionError {
    SqlError::new(
        "21000",
        "more than one row returned by a subquery used as an expression",
    )
    .into()
}

impl AggregateUDFImpl for ScalarAggregate {
    fn name(&self) -> &str {
        SCALAR
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        arg_types
            .first()
            .cloned()
            .ok_or_else(|| DataFusionError::Plan(format!("{SCALAR} takes one argument")))
    }

    fn return_field(&self, arg_fields: &[FieldRef]) -> DfResult<FieldRef> {
        // The value keeps its field's metadata (a numeric's, a name's).
        let f = arg_fields
            .first()
            .ok_or_else(|| DataFusionError::Plan(format!("{SCALAR} takes one argument")))?;
        Ok(Arc::new(
            f.as_ref().clone().with_name(SCALAR).with_nullable(true),
        ))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new("value", args.return_type().clone(), true)),
            Arc::new(Field::new("rows", DataType::Int64, false)),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(Box::new(ScalarAccumulator {
            value: ScalarValue::try_from(args.return_field.data_type())?,
            rows: 0,
        }))
    }
}

#[derive(Debug)]
struct ScalarAccumulator {
    value: ScalarValue,
    rows: i64,
}

impl Accumulator for ScalarAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let Some(v) = values.first() else {
            return Ok(());
        };
        for row in 0..v.len() {
            if self.rows >= 1 {
                return Err(too_many());
            }
            self.value = ScalarValue::try_from_array(v, row)?;
            self.rows += 1;
        }
        Ok(())
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        Ok(self.value.clone())
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.value.size()
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        Ok(vec![
            self.value.clone(),
            ScalarValue::Int64(Some(self.rows)),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let (Some(values), Some(rows)) = (states.first(), states.get(1)) else {
            return Ok(());
        };
        let rows = rows
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| DataFusionError::Internal(format!("{SCALAR} state")))?;
        for i in 0..rows.len() {
            let n = rows.value(i);
            if n == 0 {
                continue;
            }
            if self.rows + n > 1 {
                return Err(too_many());
            }
            self.value = ScalarValue::try_from_array(values, i)?;
            self.rows += n;
        }
        Ok(())
    }
}
