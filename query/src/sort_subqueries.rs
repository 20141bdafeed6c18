//! A subquery in ORDER BY (`ORDER BY CASE WHEN s IN (SELECT ...) THEN 0
//! ELSE 1 END`, Grafana's table list): DataFusion decorrelates subqueries
//! in projections and filters only, and refuses a plan whose sort holds
//! one ("Invalid (non-executable) plan after Analyzer"). This analyzer
//! rule, run first, computes such a sort key in a projection below the
//! sort and projects it away above it:
//!
//! `Sort(k(sub))` over `I` becomes
//! `Projection(I's columns) <- Sort(__amber_sort_n) <- Projection(I's
//! columns, k(sub) AS __amber_sort_n) <- I`.

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{col, Expr, LogicalPlan, LogicalPlanBuilder, SortExpr};
use datafusion::optimizer::AnalyzerRule;

#[derive(Debug, Default)]
pub(crate) struct SortSubqueries;

fn has_subquery(e: &Expr) -> bool {
    e.exists(|e| {
        Ok(matches!(
            e,
            Expr::InSubquery(_) | Expr::ScalarSubquery(_) | Expr::Exists(_)
        ))
    })
    .unwrap_or(false)
}

fn rewrite(plan: LogicalPlan) -> DfResult<Transformed<LogicalPlan>> {
    let LogicalPlan::Sort(sort) = &plan else {
        return Ok(Transformed::no(plan));
    };
    if !sort.expr.iter().any(|s| has_subquery(&s.expr)) {
        return Ok(Transformed::no(plan));
    }
    let input = sort.input.as_ref().clone();
    let columns: Vec<Expr> = input
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    let mut below = columns.clone();
    let mut keys = Vec::with_capacity(sort.expr.len());
    for (n, s) in sort.expr.iter().enumerate() {
        if has_subquery(&s.expr) {
            let name = format!("__amber_sort_{n}");
            below.push(s.expr.clone().alias(&name));
            keys.push(SortExpr::new(col(name), s.asc, s.nulls_first));
        } else {
            keys.push(s.clone());
        }
    }
    let rewritten = LogicalPlanBuilder::from(input)
        .project(below)?
        .sort_with_limit(keys, sort.fetch)?
        .project(columns)?
        .build()?;
    debug_assert_eq!(
        rewritten.schema().fields().len(),
        plan.schema().fields().len()
    );
    Ok(Transformed::yes(rewritten))
}

impl AnalyzerRule for SortSubqueries {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> DfResult<LogicalPlan> {
        plan.transform_up_with_subqueries(rewrite).map(|t| t.data)
    }

    fn name(&self) -> &str {
        "amber_sort_subqueries"
    }
}
