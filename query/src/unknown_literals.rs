//! PostgreSQL types a quoted literal compared with a typed expression as
//! that expression's type (`indisprimary = 't'`, what psqlODBC sends);
//! DataFusion refuses to compare a boolean with a string. This analyzer
//! rule, run before DataFusion's type coercion, reads such a literal as
//! PostgreSQL's boolean input reads it.

use crate::expr_rules::Names;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion::optimizer::AnalyzerRule;

#[derive(Debug, Default)]
pub(crate) struct UnknownLiterals;

/// PostgreSQL's boolean input (`boolin`): t, true, yes, on, 1 and their
/// opposites, any case, unique prefixes of the words.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    let t = text.trim().to_lowercase();
    if t.is_empty() {
        return None;
    }
    let prefix_of = |word: &str| word.starts_with(&t);
    match t.as_str() {
        "1" => Some(true),
        "0" => Some(false),
        "o" => None,
        _ if prefix_of("true") || prefix_of("yes") || (t.len() >= 2 && prefix_of("on")) => {
            Some(true)
        }
        _ if prefix_of("false") || prefix_of("no") || (t.len() >= 2 && prefix_of("off")) => {
            Some(false)
        }
        _ => None,
    }
}

fn is_comparison(op: &Operator) -> bool {
    matches!(
        op,
        Operator::Eq
            | Operator::NotEq
            | Operator::IsDistinctFrom
            | Operator::IsNotDistinctFrom
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
    )
}

/// The literal as a boolean, if `e` is a string literal and `other` a
/// boolean expression.
fn as_bool(e: &Expr, other: &Expr, schema: &DFSchema) -> Option<Expr> {
    let Expr::Literal(ScalarValue::Utf8(Some(s)), _) = e else {
        return None;
    };
    if other.get_type(schema).ok()? != DataType::Boolean {
        return None;
    }
    parse_bool(s).map(|b| Expr::Literal(ScalarValue::Boolean(Some(b)), None))
}

impl AnalyzerRule for UnknownLiterals {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> DfResult<LogicalPlan> {
        crate::expr_rules::rewrite_expressions(plan, Names::Unchanged, |e, schema| match e {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) if is_comparison(&op) => {
                if let Some(b) = as_bool(&left, &right, schema) {
                    return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr {
                        left: Box::new(b),
                        op,
                        right,
                    })));
                }
                if let Some(b) = as_bool(&right, &left, schema) {
                    return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr {
                        left,
                        op,
                        right: Box::new(b),
                    })));
                }
                Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr {
                    left,
                    op,
                    right,
                })))
            }
            other => Ok(Transformed::no(other)),
        })
    }

    fn name(&self) -> &str {
        "amber_unknown_literals"
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn booleans_read_as_postgresql_reads_them() {
        for (text, want) in [
            ("t", Some(true)),
            ("TRUE", Some(true)),
            (" yes ", Some(true)),
            ("on", Some(true)),
            ("1", Some(true)),
            ("f", Some(false)),
            ("n", Some(false)),
            ("off", Some(false)),
            ("o", None),
            ("maybe", None),
            ("", None),
        ] {
            assert_eq!(super::parse_bool(text), want, "{text:?}");
        }
    }
}
