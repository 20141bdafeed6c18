//! SET expressions of a single-object UPDATE evaluated on the object
//! itself (`SET balance = balance + $2 WHERE id = $1`), without planning.
//!
//! A counter or balance update is the most common write there is; planning
//! it through DataFusion cost more than everything else it does. This
//! evaluator knows integer and float arithmetic over the object's own
//! columns, constants and parameters, with PostgreSQL's semantics (bigint
//! overflow is 22003, NULL propagates); anything else answers `None` and
//! the statement takes the planned path, so it never has to be complete.

use crate::constant::constant_value;
use crate::convert;
use crate::error::SqlError;
use crate::value::Settings;
use amber_catalog::{ClassDef, SqlType};
use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, UnaryOperator};
use serde_json::{Map, Value as Json};

/// How deep an expression may nest before the planned path takes it
/// (bounds the recursion).
const DEPTH_MAX: usize = 32;

/// The value of `expr` for the object `obj` of `class`, if this evaluator
/// can compute it: `Int64` or `Float64`.
pub fn eval(
    expr: &Expr,
    class: &ClassDef,
    obj: &Map<String, Json>,
    params: &[ScalarValue],
    settings: &Settings,
) -> Result<Option<ScalarValue>, SqlError> {
    eval_at(expr, class, obj, params, settings, 0)
}

fn eval_at(
    expr: &Expr,
    class: &ClassDef,
    obj: &Map<String, Json>,
    params: &[ScalarValue],
    settings: &Settings,
    depth: usize,
) -> Result<Option<ScalarValue>, SqlError> {
    if depth > DEPTH_MAX {
        return Ok(None);
    }
    let sub = |e: &Expr| eval_at(e, class, obj, params, settings, depth + 1);
    let value = match expr {
        Expr::Identifier(ident) => {
            // Unquoted names fold to lower case, as in PostgreSQL.
            let name = match ident.quote_style {
                Some(_) => ident.value.clone(),
                None => ident.value.to_lowercase(),
            };
            let Some(col) = class.columns.iter().find(|c| c.name == name) else {
                return Ok(None);
            };
            if !matches!(col.ty, SqlType::Int8 | SqlType::Float8) {
                return Ok(None);
            }
            convert::json_to_scalar(&col.ty, obj.get(&name).unwrap_or(&Json::Null))?
        }
        Expr::Nested(inner) => return sub(inner),
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr: inner,
        } => match sub(inner)? {
            Some(ScalarValue::Int64(v)) => ScalarValue::Int64(match v {
                None => None,
                Some(i) => Some(i.checked_neg().ok_or_else(out_of_range)?),
            }),
            Some(ScalarValue::Float64(v)) => ScalarValue::Float64(v.map(|f| -f)),
            _ => return Ok(None),
        },
        Expr::BinaryOp { left, op, right } => {
            let (Some(l), Some(r)) = (sub(left)?, sub(right)?) else {
                return Ok(None);
            };
            return arithmetic(op, &l, &r);
        }
        Expr::Value(_) | Expr::Cast { .. } => match constant_value(expr, params, settings)? {
            Some(v) => v,
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    Ok(normalize(value))
}

/// Integers of every width as bigint, floats as double; other types are
/// left to the planned path.
fn normalize(v: ScalarValue) -> Option<ScalarValue> {
    Some(match v {
        ScalarValue::Int8(i) => ScalarValue::Int64(i.map(i64::from)),
        ScalarValue::Int16(i) => ScalarValue::Int64(i.map(i64::from)),
        ScalarValue::Int32(i) => ScalarValue::Int64(i.map(i64::from)),
        ScalarValue::Float32(f) => ScalarValue::Float64(f.map(f64::from)),
        v @ (ScalarValue::Int64(_) | ScalarValue::Float64(_)) => v,
        _ => return None,
    })
}

fn arithmetic(
    op: &BinaryOperator,
    l: &ScalarValue,
    r: &ScalarValue,
) -> Result<Option<ScalarValue>, SqlError> {
    use ScalarValue::{Float64, Int64};
    Ok(Some(match (l, r) {
        (Int64(a), Int64(b)) => Int64(match (a, b) {
            (Some(a), Some(b)) => Some(
                match op {
                    BinaryOperator::Plus => a.checked_add(*b),
                    BinaryOperator::Minus => a.checked_sub(*b),
                    BinaryOperator::Multiply => a.checked_mul(*b),
                    _ => return Ok(None),
                }
                .ok_or_else(out_of_range)?,
            ),
            _ if is_arithmetic(op) => None,
            _ => return Ok(None),
        }),
        (Int64(_) | Float64(_), Int64(_) | Float64(_)) => {
            let (a, b) = (as_f64(l), as_f64(r));
            Float64(match (a, b) {
                (Some(a), Some(b)) => Some(match op {
                    BinaryOperator::Plus => a + b,
                    BinaryOperator::Minus => a - b,
                    BinaryOperator::Multiply => a * b,
                    _ => return Ok(None),
                }),
                _ if is_arithmetic(op) => None,
                _ => return Ok(None),
            })
        }
        _ => return Ok(None),
    }))
}

fn is_arithmetic(op: &BinaryOperator) -> bool {
    matches!(
        op,
        BinaryOperator::Plus | BinaryOperator::Minus | BinaryOperator::Multiply
    )
}

fn as_f64(v: &ScalarValue) -> Option<f64> {
    match v {
        ScalarValue::Int64(i) => i.map(|i| i as f64),
        ScalarValue::Float64(f) => *f,
        _ => None,
    }
}

fn out_of_range() -> SqlError {
    SqlError::new("22003", "bigint out of range")
}

/// Whether `v` can be stored in a column of type `t` exactly as the planned
/// path would store it (no rounding of a float into an integer column).
pub fn fits(t: &SqlType, v: &ScalarValue) -> bool {
    matches!(
        (t, v),
        (SqlType::Int8, ScalarValue::Int64(_))
            | (
                SqlType::Float8,
                ScalarValue::Int64(_) | ScalarValue::Float64(_)
            )
    )
}
