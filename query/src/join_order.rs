//! Which side of a hash join is built: the one estimated smaller, by
//! PostgreSQL's default selectivities, so that a filtered class is built
//! and the other side is read by its keys (`index/join.rs`).
//!
//! DataFusion's `JoinSelection` compares its statistics, but a filter on
//! a column without statistics keeps every row in its estimate
//! (`balance = 77` over 20,000 accounts is 20,000), so the unfiltered
//! side was built and the filtered one scanned. This rule, run right
//! after it (and before the join's keys are pushed down), estimates each
//! side: a class scan by the span of its ids (`ClassScanExec`), objects
//! already read by their count, a filter by PostgreSQL's defaults
//! (`=` 0.5%, a range a third, a range bounded on both sides 0.5%), and
//! swaps the join when its build side is the larger and its probe side
//! gives chosen rows (a filter, or objects already read): a bare scan of a
//! whole class would hand the other side every key.

use crate::index::exec::ClassScanExec;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, InListExpr};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};
use datafusion::physical_plan::ExecutionPlan;
use std::sync::Arc;

/// PostgreSQL's `DEFAULT_EQ_SEL`: one value of a column.
const EQ_SELECTIVITY: f64 = 0.005;
/// PostgreSQL's `DEFAULT_INEQ_SEL`: a range.
const RANGE_SELECTIVITY: f64 = 1.0 / 3.0;
/// PostgreSQL's `DEFAULT_RANGE_INEQ_SEL`: a range bounded on both sides
/// (`x BETWEEN a AND b`, `x > a AND x < b`).
const BOUNDED_RANGE_SELECTIVITY: f64 = 0.005;
/// Most plan nodes an estimate walks through (a limit on the recursion).
const DEPTH_MAX: usize = 64;

#[derive(Debug, Default)]
pub(crate) struct JoinOrder;

/// The share of rows `predicate` keeps.
fn selectivity(predicate: &Arc<dyn PhysicalExpr>, depth: usize) -> f64 {
    if depth > DEPTH_MAX {
        return RANGE_SELECTIVITY;
    }
    if let Some(list) = predicate.downcast_ref::<InListExpr>() {
        let kept = EQ_SELECTIVITY * list.list().len() as f64;
        return if list.negated() { 1.0 - kept } else { kept }.clamp(0.0, 1.0);
    }
    let Some(b) = predicate.downcast_ref::<BinaryExpr>() else {
        return RANGE_SELECTIVITY;
    };
    match b.op() {
        Operator::And if bounds_one_column(b.left(), b.right()) => BOUNDED_RANGE_SELECTIVITY,
        Operator::And => selectivity(b.left(), depth + 1) * selectivity(b.right(), depth + 1),
        Operator::Or => {
            (selectivity(b.left(), depth + 1) + selectivity(b.right(), depth + 1)).min(1.0)
        }
        Operator::Eq | Operator::IsNotDistinctFrom => EQ_SELECTIVITY,
        Operator::NotEq | Operator::IsDistinctFrom => 1.0 - EQ_SELECTIVITY,
        _ => RANGE_SELECTIVITY,
    }
}

/// The column `e` bounds from below (`true`) or above (`false`), when it
/// is `column < | <= | > | >= <anything>`.
fn bound_of(e: &Arc<dyn PhysicalExpr>) -> Option<(usize, bool)> {
    let b = e.downcast_ref::<BinaryExpr>()?;
    let column = b.left().downcast_ref::<Column>()?.index();
    match b.op() {
        Operator::Gt | Operator::GtEq => Some((column, true)),
        Operator::Lt | Operator::LtEq => Some((column, false)),
        _ => None,
    }
}

/// Whether `l AND r` bounds one column on both sides.
fn bounds_one_column(l: &Arc<dyn PhysicalExpr>, r: &Arc<dyn PhysicalExpr>) -> bool {
    matches!((bound_of(l), bound_of(r)), (Some((a, x)), Some((b, y))) if a == b && x != y)
}

/// The class scan `plan` reads through filters and row-preserving nodes,
/// and whether a filter is among them; `None`: it reads no one class (a
/// join, a union, a catalog table).
fn class_scan_under(plan: &Arc<dyn ExecutionPlan>) -> Option<(&ClassScanExec, bool)> {
    let mut node = plan;
    let mut filtered = false;
    for _ in 0..DEPTH_MAX {
        if let Some(scan) = node.downcast_ref::<ClassScanExec>() {
            return Some((scan, filtered));
        }
        filtered |= node.downcast_ref::<FilterExec>().is_some();
        match node.children().as_slice() {
            [child] if node.downcast_ref::<HashJoinExec>().is_none() => node = child,
            _ => return None,
        }
    }
    None
}

/// Whether `plan` gives chosen rows of a class: a filter over it, or
/// objects already read by id or index. A bare scan of a whole class is
/// not: as a build side its keys are (about) every key, which reads the
/// other side by key no better than by a scan, and DataFusion's own order
/// stays.
fn selective(plan: &Arc<dyn ExecutionPlan>) -> bool {
    class_scan_under(plan)
        .is_some_and(|(scan, filtered)| filtered || scan.rows_estimate().is_none())
}

/// About how many rows `plan` gives, when it reads a class or rows
/// already read, through filters and row-preserving nodes.
fn estimate(plan: &Arc<dyn ExecutionPlan>, depth: usize) -> Option<f64> {
    if depth > DEPTH_MAX {
        return None;
    }
    if let Some(scan) = plan.downcast_ref::<ClassScanExec>() {
        if let Some(rows) = scan.rows_estimate() {
            return Some(rows as f64);
        }
    }
    if let Some(filter) = plan.downcast_ref::<FilterExec>() {
        return Some(estimate(filter.input(), depth + 1)? * selectivity(filter.predicate(), 0));
    }
    match plan.children().as_slice() {
        [] => {
            // Rows already read (an id or index lookup): their count.
            let stats = StatisticsContext::new()
                .compute(plan.as_ref(), &StatisticsArgs::new())
                .ok()?;
            stats.num_rows.get_value().map(|n| *n as f64)
        }
        [child] if plan.downcast_ref::<HashJoinExec>().is_none() => {
            // Projections, sorts, coalescing: as many rows as their input.
            use datafusion::physical_plan::execution_plan::CardinalityEffect;
            match plan.cardinality_effect() {
                CardinalityEffect::Equal => estimate(child, depth + 1),
                _ => None,
            }
        }
        _ => None,
    }
}

impl PhysicalOptimizerRule for JoinOrder {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            if *join.partition_mode() != PartitionMode::CollectLeft
                || !join.join_type().supports_swap()
                || join.null_aware
            {
                return Ok(Transformed::no(node));
            }
            // Only a side of chosen rows of a class becomes the build
            // side (which also leaves joins of other relations as they are).
            if !selective(join.right()) {
                return Ok(Transformed::no(node));
            }
            let (Some(build), Some(probe)) = (estimate(join.left(), 0), estimate(join.right(), 0))
            else {
                return Ok(Transformed::no(node));
            };
            if build <= probe {
                return Ok(Transformed::no(node));
            }
            // With a projection of its own the swapped join keeps its
            // output columns' order, so no projection node is added above
            // it (DataFusion's filter push-down through a projection node
            // resolves columns by name, and a join's output often has two
            // of one name: `a.id`, `c.id`).
            let projected = match join.projection {
                Some(_) => None,
                None => {
                    let all: Vec<usize> = (0..join.schema().fields().len()).collect();
                    Some(join.with_projection(Some(all))?)
                }
            };
            let join = projected.as_ref().unwrap_or(join);
            match join.swap_inputs(PartitionMode::CollectLeft) {
                Ok(swapped) => Ok(Transformed::yes(swapped)),
                // A join that cannot swap stays as planned.
                Err(_) => Ok(Transformed::no(node)),
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "amber_join_order"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
