//! PostgreSQL has no operator of `real` and an integer or numeric: it
//! resolves `weight * 2` to double precision's (`float48mul`), so the
//! result is `0.20000000298023224`, not real's `0.2`. DataFusion computes
//! Float32 with an integer as Float32. This analyzer rule, run before
//! DataFusion's coercion, casts the real side of such an arithmetic or
//! comparison to double precision, as PostgreSQL's resolution does.

use crate::expr_rules::Names;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::config::ConfigOptions;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{cast, BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion::optimizer::AnalyzerRule;

#[derive(Debug, Default)]
pub(crate) struct Float4Promotion;

fn is_arithmetic_or_comparison(op: &Operator) -> bool {
    matches!(
        op,
        Operator::Plus
            | Operator::Minus
            | Operator::Multiply
            | Operator::Divide
            | Operator::Modulo
            | Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
            | Operator::IsDistinctFrom
            | Operator::IsNotDistinctFrom
    )
}

/// Whether `t` is a number type other than real that PostgreSQL would
/// make a real operand into double precision against.
fn promotes_real(t: &DataType) -> bool {
    t.is_integer() || matches!(t, DataType::Float64 | DataType::Decimal128(..))
}

impl AnalyzerRule for Float4Promotion {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> DfResult<LogicalPlan> {
        // The cast changes an expression's name and type: names are kept.
        crate::expr_rules::rewrite_expressions(plan, Names::Preserve, |e, schema| match e {
            Expr::BinaryExpr(BinaryExpr { left, op, right })
                if is_arithmetic_or_comparison(&op) =>
            {
                let (lt, rt) = (left.get_type(schema), right.get_type(schema));
                let (Ok(lt), Ok(rt)) = (lt, rt) else {
                    return Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr {
                        left,
                        op,
                        right,
                    })));
                };
                let widen = |e: Box<Expr>, t: &DataType, other: &DataType| {
                    if *t == DataType::Float32 && promotes_real(other) {
                        (Box::new(cast(*e, DataType::Float64)), true)
                    } else {
                        (e, false)
                    }
                };
                let (left, l) = widen(left, &lt, &rt);
                let (right, r) = widen(right, &rt, &lt);
                let e = Expr::BinaryExpr(BinaryExpr { left, op, right });
                Ok(if l || r {
                    Transformed::yes(e)
                } else {
                    Transformed::no(e)
                })
            }
            other => Ok(Transformed::no(other)),
        })
    }

    fn name(&self) -> &str {
        "amber_float4_promotion"
    }
}
