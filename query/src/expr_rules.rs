//! What Amber's expression-rewriting analyzer rules share: every
//! expression of every plan node (subqueries included) rewritten bottom
//! up with the node's input schema in hand.

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::DFSchema;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::optimizer::utils::NamePreserver;

/// How a rule's rewrite relates to the plan's output names and types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Names {
    /// The rewrite keeps each expression's name and type.
    Unchanged,
    /// It may change them: each rewritten expression is aliased to its
    /// old name and the node's schema recomputed.
    Preserve,
}

/// `plan` with `rewrite` applied to each expression node of each plan
/// node that has inputs.
pub(crate) fn rewrite_expressions(
    plan: LogicalPlan,
    names: Names,
    rewrite: impl Fn(Expr, &DFSchema) -> DfResult<Transformed<Expr>>,
) -> DfResult<LogicalPlan> {
    plan.transform_up_with_subqueries(|node| {
        let inputs = node.inputs();
        if inputs.is_empty() {
            return Ok(Transformed::no(node));
        }
        let mut schema = DFSchema::empty();
        for input in inputs {
            schema.merge(input.schema());
        }
        let preserver = NamePreserver::new(&node);
        let t = node.map_expressions(|e| {
            let name = preserver.save(&e);
            let t = e.transform_up(|e| rewrite(e, &schema))?;
            Ok(match names {
                Names::Preserve => t.update_data(|e| name.restore(e)),
                Names::Unchanged => t,
            })
        })?;
        match (names, t.transformed) {
            (Names::Preserve, true) => t.map_data(|p| p.recompute_schema()),
            _ => Ok(t),
        }
    })
    .map(|t| t.data)
}
