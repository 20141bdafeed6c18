//! Integer literals as PostgreSQL types them. PostgreSQL reads `1` as
//! `integer` (int4) when it fits and `bigint` otherwise, so `SELECT 1` is
//! int4 to a driver (node-postgres parses it as a number, not a string)
//! and `int_col + 1` stays `integer`; DataFusion reads every integer
//! literal as Int64. This analyzer rule, ahead of DataFusion's coercion,
//! makes a literal that fits int4 Int32 where its type decides a result
//! PostgreSQL would type int4: a select item that is the literal, and an
//! operand of arithmetic whose other operand is int4 or int2 (or another
//! such literal). Arithmetic of two integer literals is folded here with
//! PostgreSQL's overflow check (`2147483647 + 1` is 22003 `integer out of
//! range`), since DataFusion's constant folding wraps.
//! Literals elsewhere (function arguments, comparisons, LIMIT) keep Int64:
//! their type decides nothing PostgreSQL shows.

use crate::error::SqlError;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::expr::Alias;
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion::optimizer::utils::NamePreserver;
use datafusion::optimizer::AnalyzerRule;

#[derive(Debug, Default)]
pub(crate) struct IntegerLiterals;

fn is_arithmetic(op: &Operator) -> bool {
    matches!(
        op,
        Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide | Operator::Modulo
    )
}

/// The value of an Int64 literal that fits int4.
fn int4_literal(e: &Expr) -> Option<i32> {
    match e {
        Expr::Literal(ScalarValue::Int64(Some(v)), _) => i32::try_from(*v).ok(),
        _ => None,
    }
}

fn int32(v: i32) -> Expr {
    Expr::Literal(ScalarValue::Int32(Some(v)), None)
}

/// An integer literal's value and its type's rank (2, 4, 8 bytes).
fn integer_literal(e: &Expr) -> Option<(i64, u8)> {
    match e {
        Expr::Literal(ScalarValue::Int16(Some(v)), _) => Some((i64::from(*v), 2)),
        Expr::Literal(ScalarValue::Int32(Some(v)), _) => Some((i64::from(*v), 4)),
        Expr::Literal(ScalarValue::Int64(Some(v)), _) => Some((*v, 8)),
        _ => None,
    }
}

/// `l op r` of two integer literals, computed as PostgreSQL computes it
/// (in the wider type, an overflow an error); `None` to leave it (a
/// division by zero fails when it runs, with its own error).
fn fold(l: &Expr, op: &Operator, r: &Expr) -> Result<Option<Expr>, SqlError> {
    let (Some((a, la)), Some((b, lb))) = (integer_literal(l), integer_literal(r)) else {
        return Ok(None);
    };
    let width = la.max(lb);
    let value = match op {
        Operator::Plus => a.checked_add(b),
        Operator::Minus => a.checked_sub(b),
        Operator::Multiply => a.checked_mul(b),
        Operator::Divide | Operator::Modulo if b == 0 => return Ok(None),
        Operator::Divide => a.checked_div(b),
        Operator::Modulo => a.checked_rem(b).or(Some(0)),
        _ => return Ok(None),
    };
    let out_of_range = |name: &str| SqlError::new("22003", format!("{name} out of range"));
    Ok(Some(match width {
        2 => Expr::Literal(
            ScalarValue::Int16(Some(
                value
                    .and_then(|v| i16::try_from(v).ok())
                    .ok_or_else(|| out_of_range("smallint"))?,
            )),
            None,
        ),
        4 => int32(
            value
                .and_then(|v| i32::try_from(v).ok())
                .ok_or_else(|| out_of_range("integer"))?,
        ),
        _ => Expr::Literal(
            ScalarValue::Int64(Some(value.ok_or_else(|| out_of_range("bigint"))?)),
            None,
        ),
    }))
}

/// Whether `t` makes an int4-sized literal beside it int4.
fn narrow_integer(t: &DataType) -> bool {
    matches!(t, DataType::Int32 | DataType::Int16)
}

/// `e` with its literals typed (when `narrow`) and literal arithmetic
/// folded.
fn rewrite(e: Expr, schema: &DFSchema, narrow: bool) -> DfResult<Transformed<Expr>> {
    e.transform_up(|e| match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if is_arithmetic(&op) => {
            let narrow = |side: &Expr, other: &Expr| {
                int4_literal(side).filter(|_| {
                    narrow
                        && (int4_literal(other).is_some()
                            || other.get_type(schema).is_ok_and(|t| narrow_integer(&t)))
                })
            };
            let (mut l, mut r, mut changed) = (*left, *right, false);
            if let Some(v) = narrow(&l, &r) {
                let other_literal = int4_literal(&r);
                l = int32(v);
                changed = true;
                if let Some(w) = other_literal {
                    r = int32(w);
                }
            } else if let Some(v) = narrow(&r, &l) {
                r = int32(v);
                changed = true;
            }
            if let Some(folded) = fold(&l, &op, &r)? {
                return Ok(Transformed::yes(folded));
            }
            let e = Expr::BinaryExpr(BinaryExpr::new(Box::new(l), op, Box::new(r)));
            Ok(if changed {
                Transformed::yes(e)
            } else {
                Transformed::no(e)
            })
        }
        // `pg_typeof(1)` shows the literal's type.
        Expr::ScalarFunction(mut f) if narrow && f.name() == "pg_typeof" => {
            match f.args.first().and_then(int4_literal) {
                Some(v) => {
                    f.args[0] = int32(v);
                    Ok(Transformed::yes(Expr::ScalarFunction(f)))
                }
                None => Ok(Transformed::no(Expr::ScalarFunction(f))),
            }
        }
        other => Ok(Transformed::no(other)),
    })
}

/// A select item that is an int4-sized literal (aliased or not) as int4.
fn select_item(e: Expr) -> Transformed<Expr> {
    match e {
        Expr::Alias(Alias {
            expr,
            relation,
            name,
            metadata,
        }) => match int4_literal(&expr) {
            Some(v) => Transformed::yes(Expr::Alias(Alias {
                expr: Box::new(int32(v)),
                relation,
                name,
                metadata,
            })),
            None => Transformed::no(Expr::Alias(Alias {
                expr,
                relation,
                name,
                metadata,
            })),
        },
        e => match int4_literal(&e) {
            Some(v) => Transformed::yes(int32(v)),
            None => Transformed::no(e),
        },
    }
}

impl AnalyzerRule for IntegerLiterals {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> DfResult<LogicalPlan> {
        // A recursive query's work table has the types DataFusion's SQL
        // planner gave its first term: a literal typed anew there would
        // no longer match them. Such plans are only folded.
        let mut narrow = true;
        plan.apply_with_subqueries(|p| {
            Ok(match p {
                LogicalPlan::RecursiveQuery(_) => {
                    narrow = false;
                    TreeNodeRecursion::Stop
                }
                _ => TreeNodeRecursion::Continue,
            })
        })?;
        plan.transform_up_with_subqueries(|node| {
            if !matches!(
                node,
                LogicalPlan::Projection(_)
                    | LogicalPlan::Filter(_)
                    | LogicalPlan::Aggregate(_)
                    | LogicalPlan::Sort(_)
            ) {
                return Ok(Transformed::no(node));
            }
            let mut schema = DFSchema::empty();
            for input in node.inputs() {
                schema.merge(input.schema());
            }
            let projection = matches!(node, LogicalPlan::Projection(_));
            let names = NamePreserver::new(&node);
            let t = node.map_expressions(|e| {
                let name = names.save(&e);
                let t = rewrite(e, &schema, narrow)?;
                let t = if projection && narrow {
                    let inner = select_item(t.data);
                    Transformed::new_transformed(inner.data, t.transformed || inner.transformed)
                } else {
                    t
                };
                Ok(t.update_data(|e| name.restore(e)))
            })?;
            if t.transformed {
                t.map_data(|p| p.recompute_schema())
            } else {
                Ok(t)
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "amber_integer_literals"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(v: ScalarValue) -> Expr {
        Expr::Literal(v, None)
    }

    #[test]
    fn literal_arithmetic_folds_with_postgresqls_overflow_check() {
        let i4 = |v: i32| lit(ScalarValue::Int32(Some(v)));
        let i8 = |v: i64| lit(ScalarValue::Int64(Some(v)));
        assert_eq!(
            fold(&i4(2), &Operator::Multiply, &i4(3)).unwrap(),
            Some(i4(6))
        );
        let e = fold(&i4(i32::MAX), &Operator::Plus, &i4(1)).unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("22003", "integer out of range")
        );
        assert_eq!(
            fold(&i4(i32::MAX), &Operator::Plus, &i8(1)).unwrap(),
            Some(i8(i64::from(i32::MAX) + 1))
        );
        assert_eq!(
            fold(&i8(i64::MAX), &Operator::Plus, &i8(1))
                .unwrap_err()
                .message,
            "bigint out of range"
        );
        assert_eq!(
            fold(&i4(7), &Operator::Divide, &i4(-2)).unwrap(),
            Some(i4(-3))
        );
        assert_eq!(
            fold(&i4(7), &Operator::Modulo, &i4(-2)).unwrap(),
            Some(i4(1))
        );
        assert_eq!(fold(&i4(1), &Operator::Divide, &i4(0)).unwrap(), None);
        assert_eq!(
            fold(&i4(i32::MIN), &Operator::Divide, &i4(-1))
                .unwrap_err()
                .message,
            "integer out of range"
        );
    }
}
