//! Subqueries DataFusion leaves in an optimized plan because it cannot
//! turn them into joins (a correlated scalar subquery whose correlation
//! is not an equality, `x IN (SELECT ...)` or `EXISTS (...)` in a select
//! list): its physical planner refuses them. They run as PostgreSQL runs
//! them, as a SubPlan: for each outer row, the subquery with the row's
//! values in place of its outer references, planned and run to the end.
//!
//! Cost: one plan and run of the subquery per distinct set of outer
//! values (results are remembered per statement, [`MEMO_MAX`] of them),
//! so an uncorrelated `IN (SELECT ...)` runs once.

use crate::context::PlanningBase;
use crate::error::SqlError;
use datafusion::arrow::array::{Array, ArrayRef, BooleanBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, ScalarValue};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::expr::{Exists, InSubquery};
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Subquery, Volatility,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What stops a statement's SubPlans between rows: its deadline
/// (statement_timeout) and its cancel flag. A SubPlan runs inside the
/// statement's stream without yielding, so it checks them itself.
#[derive(Debug, Clone, Default)]
pub(crate) struct Interrupt {
    pub deadline: Option<std::time::Instant>,
    pub cancel: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl Interrupt {
    fn check(&self) -> Result<(), SqlError> {
        if self
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(std::sync::atomic::Ordering::SeqCst))
        {
            return Err(SqlError::new(
                "57014",
                "canceling statement due to user request",
            ));
        }
        if self
            .deadline
            .is_some_and(|d| std::time::Instant::now() >= d)
        {
            return Err(SqlError::new(
                "57014",
                "canceling statement due to statement timeout",
            ));
        }
        Ok(())
    }
}

/// Most remembered subquery results per SubPlan; past it the memo starts
/// over (a correlated subquery over many distinct rows).
const MEMO_MAX: usize = 4096;

/// `plan` (already optimized) with every subquery left in it replaced by
/// a SubPlan function over its outer references; `None` if it has none.
pub(crate) fn rewrite(
    plan: &LogicalPlan,
    base: &Arc<PlanningBase>,
    interrupt: &Interrupt,
) -> DfResult<Option<LogicalPlan>> {
    rewrite_where(plan, base, interrupt, |_| true)
}

/// Whether `subquery` reads its outer row below an UNNEST (a table
/// function with arguments from the outer row, `pg_catalog/rewrite.rs`):
/// DataFusion's decorrelation cannot pull such a reference up (and left it
/// in the plan, "Physical plan does not support OuterReferenceColumn"), so
/// such a subquery is a SubPlan from the start.
fn is_lateral(subquery: &Subquery) -> bool {
    let mut found = false;
    let _ = subquery.subquery.apply(|node| {
        if let LogicalPlan::Unnest(u) = node {
            u.input.apply(|n| {
                n.apply_expressions(|e| {
                    e.apply(|e| {
                        if matches!(e, Expr::OuterReferenceColumn(..)) {
                            found = true;
                            return Ok(TreeNodeRecursion::Stop);
                        }
                        Ok(TreeNodeRecursion::Continue)
                    })
                })
            })?;
        }
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}

/// `plan` (before optimization) with its lateral subqueries
/// ([`is_lateral`]) replaced by SubPlans; `None` if it has none.
pub(crate) fn rewrite_lateral(
    plan: &LogicalPlan,
    base: &Arc<PlanningBase>,
    interrupt: &Interrupt,
) -> DfResult<Option<LogicalPlan>> {
    if !has_lateral(plan) {
        return Ok(None);
    }
    rewrite_where(plan, base, interrupt, is_lateral)
}

/// Whether `plan` has a lateral subquery (a cached plan cannot hold one).
pub(crate) fn has_lateral(plan: &LogicalPlan) -> bool {
    let mut found = false;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|e| {
                let sq = match e {
                    Expr::ScalarSubquery(sq) => Some(sq),
                    Expr::InSubquery(InSubquery { subquery, .. }) => Some(subquery),
                    Expr::Exists(Exists { subquery, .. }) => Some(subquery),
                    _ => None,
                };
                if sq.is_some_and(is_lateral) {
                    found = true;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    });
    found
}

fn rewrite_where(
    plan: &LogicalPlan,
    base: &Arc<PlanningBase>,
    interrupt: &Interrupt,
    only: fn(&Subquery) -> bool,
) -> DfResult<Option<LogicalPlan>> {
    if !has_subquery_exprs(plan)? {
        return Ok(None);
    }
    plan.clone()
        .transform_up(|node| {
            // A node's schema names its expressions: a SubPlan keeps the
            // name of the subquery it replaces.
            let names = datafusion::logical_expr::expr_rewriter::NamePreserver::new(&node);
            node.map_expressions(|e| {
                let saved = names.save(&e);
                e.transform_up(|e| match e {
                    Expr::ScalarSubquery(sq) if only(&sq) => {
                        subplan(base, interrupt, Kind::Scalar, sq, None)
                    }
                    Expr::InSubquery(InSubquery {
                        expr,
                        subquery,
                        negated,
                    }) if only(&subquery) => {
                        subplan(base, interrupt, Kind::In { negated }, subquery, Some(*expr))
                    }
                    Expr::Exists(Exists { subquery, negated }) if only(&subquery) => {
                        subplan(base, interrupt, Kind::Exists { negated }, subquery, None)
                    }
                    other => Ok(Transformed::no(other)),
                })
                .map(|t| t.update_data(|e| saved.restore(e)))
            })
        })
        .map(|t| Some(t.data))
}

/// Whether any expression of `plan` still holds a subquery.
fn has_subquery_exprs(plan: &LogicalPlan) -> DfResult<bool> {
    let mut found = false;
    plan.apply(|node| {
        node.apply_expressions(|e| {
            e.apply(|e| {
                if matches!(
                    e,
                    Expr::ScalarSubquery(_) | Expr::InSubquery(_) | Expr::Exists(_)
                ) {
                    found = true;
                    return Ok(datafusion::common::tree_node::TreeNodeRecursion::Stop);
                }
                Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
            })
        })
    })?;
    Ok(found)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Scalar,
    In { negated: bool },
    Exists { negated: bool },
}

fn subplan(
    base: &Arc<PlanningBase>,
    interrupt: &Interrupt,
    kind: Kind,
    sq: Subquery,
    probe: Option<Expr>,
) -> DfResult<Transformed<Expr>> {
    let mut outer: Vec<Column> = Vec::new();
    let mut args: Vec<Expr> = probe.into_iter().collect();
    for e in &sq.outer_ref_columns {
        if let Expr::OuterReferenceColumn(_, c) = e {
            if !outer.contains(c) {
                outer.push(c.clone());
                args.push(Expr::Column(c.clone()));
            }
        }
    }
    let returns = match kind {
        Kind::Scalar => sq
            .subquery
            .schema()
            .fields()
            .first()
            .map(|f| f.data_type().clone())
            .unwrap_or(DataType::Null),
        Kind::In { .. } | Kind::Exists { .. } => DataType::Boolean,
    };
    let udf = SubPlan {
        name: format!("subplan_{}", Arc::as_ptr(&sq.subquery) as usize),
        signature: Signature::variadic_any(Volatility::Volatile),
        kind,
        plan: sq.subquery.clone(),
        outer,
        returns,
        base: base.clone(),
        interrupt: interrupt.clone(),
        memo: Mutex::new(HashMap::new()),
    };
    let call = if args.is_empty() {
        // A function needs an argument to know the batch's row count.
        vec![Expr::Literal(ScalarValue::Boolean(Some(true)), None)]
    } else {
        args
    };
    Ok(Transformed::yes(Expr::ScalarFunction(
        datafusion::logical_expr::expr::ScalarFunction::new_udf(
            Arc::new(ScalarUDF::new_from_impl(udf)),
            call,
        ),
    )))
}

/// What one run of the subquery gave: its first column's values.
type Rows = Arc<Vec<ScalarValue>>;

struct SubPlan {
    name: String,
    signature: Signature,
    kind: Kind,
    /// The subquery, its outer references in place.
    plan: Arc<LogicalPlan>,
    /// The outer columns it references, in argument order (after the
    /// probe of an IN).
    outer: Vec<Column>,
    returns: DataType,
    base: Arc<PlanningBase>,
    interrupt: Interrupt,
    memo: Mutex<HashMap<Vec<ScalarValue>, Rows>>,
}

impl std::fmt::Debug for SubPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SubPlan({:?})", self.kind)
    }
}

impl PartialEq for SubPlan {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for SubPlan {}
impl std::hash::Hash for SubPlan {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl SubPlan {
    /// The subquery's rows for one set of outer values (remembered).
    fn rows(&self, outer: &[ScalarValue]) -> DfResult<Rows> {
        if let Some(r) = self.memo.lock().ok().and_then(|m| m.get(outer).cloned()) {
            return Ok(r);
        }
        self.interrupt.check()?;
        let plan = self.bound(outer)?;
        let base = self.base.clone();
        let interrupt = self.interrupt.clone();
        let limit = match self.kind {
            // Two rows are enough to know a scalar subquery is wrong.
            Kind::Scalar => Some(2),
            Kind::Exists { .. } => Some(1),
            Kind::In { .. } => None,
        };
        // The statement's stream is polled on a tokio worker; the subquery
        // runs to its end before this row's value exists.
        let batches = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async move {
                let plan = match limit {
                    Some(n) => datafusion::logical_expr::LogicalPlanBuilder::from(plan)
                        .limit(0, Some(n))?
                        .build()?,
                    None => plan,
                };
                base.collect(&plan, &interrupt).await
            })
        })?
        .1;
        let mut values = Vec::new();
        for b in &batches {
            if b.num_columns() == 0 {
                values.extend((0..b.num_rows()).map(|_| ScalarValue::Null));
                continue;
            }
            let col = b.column(0);
            for i in 0..b.num_rows() {
                values.push(ScalarValue::try_from_array(col, i)?);
            }
        }
        let rows = Arc::new(values);
        if let Ok(mut m) = self.memo.lock() {
            if m.len() >= MEMO_MAX {
                m.clear();
            }
            m.insert(outer.to_vec(), rows.clone());
        }
        Ok(rows)
    }

    /// The subquery with `outer`'s values for its outer references.
    fn bound(&self, outer: &[ScalarValue]) -> DfResult<LogicalPlan> {
        let values: HashMap<&Column, &ScalarValue> = self.outer.iter().zip(outer).collect();
        let plan = self.plan.as_ref().clone();
        plan.transform_up_with_subqueries(|node| {
            node.map_expressions(|e| {
                e.transform_up(|e| match e {
                    Expr::OuterReferenceColumn(field, c) => match values.get(&c) {
                        Some(v) => {
                            let v = v.cast_to(field.data_type()).unwrap_or((*v).clone());
                            Ok(Transformed::yes(Expr::Literal(v, None)))
                        }
                        // A reference to a query further out: left to the
                        // SubPlan that query's rewrite makes.
                        None => Ok(Transformed::no(Expr::OuterReferenceColumn(field, c))),
                    },
                    other => Ok(Transformed::no(other)),
                })
            })
        })
        .map(|t| t.data)
    }

    fn value(&self, probe: Option<&ScalarValue>, rows: &[ScalarValue]) -> DfResult<ScalarValue> {
        Ok(match self.kind {
            Kind::Scalar => match rows {
                [] => ScalarValue::try_from(&self.returns)?,
                [v] => v.clone(),
                _ => {
                    return Err(SqlError::new(
                        "21000",
                        "more than one row returned by a subquery used as an expression",
                    )
                    .into())
                }
            },
            Kind::Exists { negated } => ScalarValue::Boolean(Some(rows.is_empty() == negated)),
            Kind::In { negated } => {
                // SQL's three-valued IN: true on a match; else NULL if the
                // probe or any value is NULL (and there are values); else false.
                let found = match probe {
                    _ if rows.is_empty() => Some(false),
                    Some(p) if p.is_null() => None,
                    Some(p) => {
                        if rows.iter().any(|v| !v.is_null() && v == p) {
                            Some(true)
                        } else if rows.iter().any(ScalarValue::is_null) {
                            None
                        } else {
                            Some(false)
                        }
                    }
                    None => None,
                };
                ScalarValue::Boolean(found.map(|f| f != negated))
            }
        })
    }
}

impl ScalarUDFImpl for SubPlan {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(self.returns.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let n = args.number_rows;
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| a.to_array(n))
            .collect::<DfResult<_>>()?;
        let probe_col = matches!(self.kind, Kind::In { .. });
        let first_outer = usize::from(probe_col);
        let mut out = Vec::with_capacity(n);
        let mut outer = Vec::with_capacity(self.outer.len());
        for row in 0..n {
            outer.clear();
            for a in arrays.iter().skip(first_outer).take(self.outer.len()) {
                outer.push(ScalarValue::try_from_array(a, row)?);
            }
            let probe = match probe_col {
                true => Some(ScalarValue::try_from_array(&arrays[0], row)?),
                false => None,
            };
            let rows = self.rows(&outer)?;
            out.push(self.value(probe.as_ref(), &rows)?);
        }
        if out.is_empty() {
            return Ok(ColumnarValue::Array(
                datafusion::arrow::array::new_empty_array(&self.returns),
            ));
        }
        if self.returns == DataType::Boolean {
            let mut b = BooleanBuilder::with_capacity(n);
            for v in &out {
                match v {
                    ScalarValue::Boolean(x) => b.append_option(*x),
                    _ => b.append_null(),
                }
            }
            return Ok(ColumnarValue::Array(Arc::new(b.finish())));
        }
        let array = ScalarValue::iter_to_array(out)?;
        debug_assert_eq!(array.len(), n);
        Ok(ColumnarValue::Array(array))
    }
}
