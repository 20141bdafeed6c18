//! Integer `+`, `-` and `*` that overflow are errors, as in PostgreSQL
//! (`integer out of range`, 22003), never wrapped values: DataFusion's
//! physical planner builds its arithmetic wrapping, and a wrapped value
//! would be returned, compared or stored as if it were right. This
//! physical optimizer rule, run after DataFusion's, makes every such
//! operation of a projection, filter, grouping key or aggregate argument
//! checked, and names the type in the error as PostgreSQL does.

use crate::error::SqlError;
use datafusion::arrow::datatypes::{DataType, FieldRef, Schema};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::expressions::BinaryExpr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, PhysicalGroupBy};
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use datafusion::physical_plan::ExecutionPlan;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

#[derive(Debug, Default)]
pub(crate) struct CheckedArithmetic;

/// A checked integer operation: its overflow is PostgreSQL's error.
#[derive(Debug, Eq)]
struct Checked {
    inner: Arc<dyn PhysicalExpr>,
}

impl PartialEq for Checked {
    fn eq(&self, other: &Self) -> bool {
        self.inner.eq(&other.inner)
    }
}

impl Hash for Checked {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.inner.hash(state);
    }
}

impl fmt::Display for Checked {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.fmt(f)
    }
}

fn is_overflow(e: &DataFusionError) -> bool {
    match e {
        DataFusionError::ArrowError(ae, _) => {
            matches!(ae.as_ref(), ArrowError::ArithmeticOverflow(_))
        }
        DataFusionError::Context(_, inner) => is_overflow(inner),
        _ => false,
    }
}

/// PostgreSQL's name of an integer type in its range errors.
fn type_name(t: &DataType) -> &'static str {
    match t {
        DataType::Int16 | DataType::Int8 => "smallint",
        DataType::Int32 => "integer",
        _ => "bigint",
    }
}

impl PhysicalExpr for Checked {
    fn data_type(&self, input_schema: &Schema) -> DfResult<DataType> {
        self.inner.data_type(input_schema)
    }

    fn nullable(&self, input_schema: &Schema) -> DfResult<bool> {
        self.inner.nullable(input_schema)
    }

    fn return_field(&self, input_schema: &Schema) -> DfResult<FieldRef> {
        self.inner.return_field(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> DfResult<ColumnarValue> {
        self.inner.evaluate(batch).map_err(|e| {
            if !is_overflow(&e) {
                return e;
            }
            let t = self
                .inner
                .data_type(&batch.schema())
                .unwrap_or(DataType::Int64);
            SqlError::new("22003", format!("{} out of range", type_name(&t))).into()
        })
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        self.inner.children()
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> DfResult<Arc<dyn PhysicalExpr>> {
        Ok(Arc::new(Checked {
            inner: Arc::clone(&self.inner).with_new_children(children)?,
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt_sql(f)
    }
}

/// `e` with each integer `+`, `-`, `*` checked.
fn check(
    e: &Arc<dyn PhysicalExpr>,
    schema: &Schema,
) -> DfResult<Transformed<Arc<dyn PhysicalExpr>>> {
    Arc::clone(e).transform_up(|node| {
        let Some(b) = node.downcast_ref::<BinaryExpr>() else {
            return Ok(Transformed::no(node));
        };
        if !matches!(
            b.op(),
            Operator::Plus | Operator::Minus | Operator::Multiply
        ) || !node.data_type(schema).is_ok_and(|t| t.is_integer())
        {
            return Ok(Transformed::no(node));
        }
        let checked = BinaryExpr::new(Arc::clone(b.left()), *b.op(), Arc::clone(b.right()))
            .with_fail_on_overflow(true);
        Ok(Transformed::yes(Arc::new(Checked {
            inner: Arc::new(checked),
        }) as Arc<dyn PhysicalExpr>))
    })
}

/// `a` with its grouping keys and aggregate arguments checked; `None`
/// when none changes.
fn aggregate(a: &AggregateExec) -> DfResult<Option<AggregateExec>> {
    let schema = a.input_schema();
    let mut changed = false;
    let mut keys = Vec::with_capacity(a.group_expr().expr().len());
    for (e, name) in a.group_expr().expr() {
        let t = check(e, &schema)?;
        changed |= t.transformed;
        keys.push((t.data, name.clone()));
    }
    let mut aggregates = Vec::with_capacity(a.aggr_expr().len());
    for f in a.aggr_expr() {
        let mut args = Vec::with_capacity(f.expressions().len());
        let mut args_changed = false;
        for e in f.expressions() {
            let t = check(&e, &schema)?;
            args_changed |= t.transformed;
            args.push(t.data);
        }
        let order_by = f.order_bys().iter().map(|s| Arc::clone(&s.expr)).collect();
        match args_changed
            .then(|| f.with_new_expressions(args, order_by))
            .flatten()
        {
            Some(rebuilt) => {
                changed = true;
                aggregates.push(Arc::new(rebuilt));
            }
            None => aggregates.push(Arc::clone(f)),
        }
    }
    if !changed {
        return Ok(None);
    }
    let group_by = PhysicalGroupBy::new(
        keys,
        a.group_expr().null_expr().to_vec(),
        a.group_expr().groups().to_vec(),
        a.group_expr().has_grouping_set(),
    );
    let rebuilt = AggregateExec::try_new(
        *a.mode(),
        group_by,
        aggregates,
        a.filter_expr().to_vec(),
        Arc::clone(a.input()),
        schema,
    )?
    .with_limit_options(a.limit_options());
    Ok(Some(rebuilt))
}

impl PhysicalOptimizerRule for CheckedArithmetic {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if let Some(p) = node.downcast_ref::<ProjectionExec>() {
                let schema = p.input().schema();
                let mut changed = false;
                let mut exprs = Vec::with_capacity(p.expr().len());
                for pe in p.expr() {
                    let t = check(&pe.expr, &schema)?;
                    changed |= t.transformed;
                    exprs.push(ProjectionExpr {
                        expr: t.data,
                        alias: pe.alias.clone(),
                    });
                }
                if !changed {
                    return Ok(Transformed::no(node));
                }
                // The field metadata (wire types, column sources) stays.
                let rebuilt = ProjectionExec::try_new_with_schema_metadata(
                    exprs,
                    Arc::clone(p.input()),
                    &p.schema(),
                )?;
                return Ok(Transformed::yes(Arc::new(rebuilt) as Arc<dyn ExecutionPlan>));
            }
            if let Some(a) = node.downcast_ref::<AggregateExec>() {
                return aggregate(a).map(|t| match t {
                    Some(rebuilt) => Transformed::yes(Arc::new(rebuilt) as Arc<dyn ExecutionPlan>),
                    None => Transformed::no(node.clone()),
                });
            }
            if let Some(f) = node.downcast_ref::<FilterExec>() {
                let t = check(f.predicate(), &f.input().schema())?;
                if !t.transformed {
                    return Ok(Transformed::no(node));
                }
                let rebuilt = FilterExecBuilder::from(f).with_predicate(t.data).build()?;
                return Ok(Transformed::yes(Arc::new(rebuilt) as Arc<dyn ExecutionPlan>));
            }
            Ok(Transformed::no(node))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "amber_checked_arithmetic"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
