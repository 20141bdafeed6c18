//! Constant folding: literals, parameters and casts of them evaluated
//! without planning, with PostgreSQL's semantics (a string cast to a type
//! goes through that type's input function: `'yes'::bool`,
//! `'2024-01-01 10:00'::timestamptz` in the session's TimeZone,
//! `'100.50'::numeric` keeping its scale). Statements whose values are all
//! constant (`SELECT $1::numeric`, `INSERT ... VALUES (...)`, `UPDATE ...
//! SET c = $1 WHERE id = $2`) skip DataFusion.

use crate::error::SqlError;
use crate::names;
use crate::session::Output;
use crate::value::{self, numeric::Numeric, types, Settings};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast::{self, Expr, GroupByExpr, Query, SelectItem, SetExpr, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Values of literal, parameter and cast expressions without planning:
/// `Ok(None)` when some expression needs the general path; an error is a
/// real one (a bad literal for its cast type).
pub(crate) fn constant_values(
    exprs: &[Expr],
    params: &[ScalarValue],
    settings: &Settings,
) -> Result<Option<Vec<ScalarValue>>, SqlError> {
    let mut out = Vec::with_capacity(exprs.len());
    for e in exprs {
        match constant_value(e, params, settings)? {
            Some(v) => out.push(v),
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}

pub(crate) fn constant_value(
    e: &Expr,
    params: &[ScalarValue],
    settings: &Settings,
) -> Result<Option<ScalarValue>, SqlError> {
    Ok(Some(match e {
        Expr::Value(v) => match &v.value {
            // An integer literal is bigint; any other number (with a
            // point or an exponent) is numeric, with its own scale.
            Value::Number(n, _) => {
                if let Ok(i) = n.parse::<i64>() {
                    ScalarValue::Int64(Some(i))
                } else {
                    match Numeric::parse(n) {
                        Ok(d) => value::numeric_scalar(&d),
                        Err(_) => return Err(value::text::invalid_syntax("numeric", n)),
                    }
                }
            }
            Value::SingleQuotedString(s)
            | Value::EscapedStringLiteral(s)
            | Value::DollarQuotedString(ast::DollarQuotedString { value: s, .. }) => {
                ScalarValue::Utf8(Some(value::text::utf8(s.as_bytes())?.to_string()))
            }
            Value::Boolean(b) => ScalarValue::Boolean(Some(*b)),
            Value::Null => ScalarValue::Null,
            Value::Placeholder(p) => {
                let idx = p
                    .trim_start_matches('$')
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| i.checked_sub(1))
                    .ok_or_else(|| SqlError::syntax(format!("bad parameter {p}")))?;
                params
                    .get(idx)
                    .cloned()
                    .ok_or_else(|| SqlError::new("08P01", format!("no value for parameter {p}")))?
            }
            _ => return Ok(None),
        },
        Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => match constant_value(expr, params, settings)? {
            Some(ScalarValue::Int64(Some(i))) => ScalarValue::Int64(Some(
                i.checked_neg()
                    .ok_or_else(|| SqlError::new("22003", "bigint out of range"))?,
            )),
            Some(ScalarValue::Float64(Some(f))) => ScalarValue::Float64(Some(-f)),
            Some(ScalarValue::Decimal128(Some(d), p, s)) => ScalarValue::Decimal128(Some(-d), p, s),
            _ => return Ok(None),
        },
        Expr::Nested(inner) => return constant_value(inner, params, settings),
        Expr::Cast {
            kind: ast::CastKind::Cast | ast::CastKind::DoubleColon,
            expr,
            data_type,
            format: None,
            ..
        } => {
            let Some(oid) = cast_oid(data_type) else {
                return Ok(None);
            };
            let Some(v) = constant_value(expr, params, settings)? else {
                return Ok(None);
            };
            match cast(v, oid, settings)? {
                Some(v) => v,
                None => return Ok(None),
            }
        }
        _ => return Ok(None),
    }))
}

/// The type oid of a cast target Amber folds (`None`: DataFusion's cast).
pub(crate) fn cast_oid(t: &ast::DataType) -> Option<u32> {
    use ast::DataType as T;
    Some(match t {
        T::BigInt(None) | T::Int8(None) => types::INT8,
        T::Int(None) | T::Integer(None) | T::Int4(None) => types::INT4,
        T::SmallInt(None) | T::Int2(None) => types::INT2,
        T::Double(_) | T::DoublePrecision | T::Float8 => types::FLOAT8,
        T::Real | T::Float4 => types::FLOAT4,
        T::Boolean | T::Bool => types::BOOL,
        T::Text | T::Varchar(None) | T::CharacterVarying(None) | T::String(None) => types::TEXT,
        T::Bytea => types::BYTEA,
        T::Date => types::DATE,
        T::Numeric(ast::ExactNumberInfo::None) | T::Decimal(ast::ExactNumberInfo::None) => {
            types::NUMERIC
        }
        T::Timestamp(None, ast::TimezoneInfo::WithTimeZone | ast::TimezoneInfo::Tz) => {
            types::TIMESTAMPTZ
        }
        T::Timestamp(None, ast::TimezoneInfo::None | ast::TimezoneInfo::WithoutTimeZone) => {
            types::TIMESTAMP
        }
        T::JSON => types::JSON,
        T::JSONB => types::JSONB,
        T::Array(ast::ArrayElemTypeDef::SquareBracket(inner, None))
        | T::Array(ast::ArrayElemTypeDef::AngleBracket(inner)) => {
            types::array_of(cast_oid(inner)?)?
        }
        // `$1::oid[]` (asyncpg's type introspection): a parameter of
        // PostgreSQL's oid type.
        T::Custom(name, modifiers) if modifiers.is_empty() => {
            match name
                .to_string()
                .to_lowercase()
                .trim_start_matches("pg_catalog.")
            {
                "oid" => types::OID,
                "name" => types::NAME,
                _ => return None,
            }
        }
        _ => return None,
    })
}

/// `v::oid` with PostgreSQL's rules where Amber knows them; `None` to
/// leave the cast to DataFusion.
fn cast(v: ScalarValue, oid: u32, settings: &Settings) -> Result<Option<ScalarValue>, SqlError> {
    if v.is_null() {
        return Ok(types::arrow_of(oid).and_then(|t| ScalarValue::try_from(&t).ok()));
    }
    // A string: the type's input function.
    if let ScalarValue::Utf8(Some(s)) = &v {
        return value::from_text(oid, s, settings).map(Some);
    }
    Ok(Some(match (oid, &v) {
        (types::NUMERIC, ScalarValue::Decimal128(..)) => v,
        (types::NUMERIC, ScalarValue::Int64(Some(i))) => {
            ScalarValue::Decimal128(Some(*i as i128), crate::convert::NUMERIC_PRECISION, 0)
        }
        (types::TEXT, ScalarValue::Decimal128(Some(x), _, s)) => {
            ScalarValue::Utf8(Some(value::decimal_numeric(*x, *s).to_string()))
        }
        (types::TEXT, ScalarValue::Float64(Some(f))) => ScalarValue::Utf8(Some(
            value::float::format_f64(*f, settings.extra_float_digits),
        )),
        _ => {
            let Some(t) = types::arrow_of(oid) else {
                return Ok(None);
            };
            if v.data_type() == t {
                v
            } else if oid == types::NUMERIC || matches!(v, ScalarValue::List(_)) {
                return Ok(None);
            } else {
                v.cast_to(&t).map_err(|_| {
                    SqlError::new(
                        "22P02",
                        format!("cannot cast {} to type oid {oid}", v.data_type()),
                    )
                })?
            }
        }
    }))
}

/// The SELECT of a query without WITH, ORDER BY, LIMIT or FETCH (the
/// shape the direct paths answer).
pub(crate) fn plain_select(query: &Query) -> Option<&ast::Select> {
    if query.with.is_some()
        || query.order_by.is_some()
        || query.limit_clause.is_some()
        || query.fetch.is_some()
    {
        return None;
    }
    match query.body.as_ref() {
        SetExpr::Select(select) => Some(select),
        _ => None,
    }
}

/// A `SELECT` of expressions only: no FROM, WHERE, GROUP BY, HAVING or
/// DISTINCT (and none of `plain_select`'s clauses).
pub(crate) fn bare_select(query: &Query) -> Option<&ast::Select> {
    let select = plain_select(query)?;
    let bare = select.from.is_empty()
        && select.selection.is_none()
        && select.having.is_none()
        && select.distinct.is_none()
        && matches!(&select.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty());
    bare.then_some(select)
}

/// Whether `e` is an integer literal, possibly negated or in parentheses.
fn integer_literal(e: &Expr) -> bool {
    match e {
        Expr::Value(v) => matches!(&v.value, Value::Number(n, _) if n.parse::<i64>().is_ok()),
        Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        }
        | Expr::Nested(expr) => integer_literal(expr),
        _ => false,
    }
}

/// `SELECT <constants>` (no FROM, no clauses): one row computed here.
/// Numerics keep their exact text and jsonb its own type.
pub(crate) fn constant_select(
    query: &Query,
    params: &[ScalarValue],
    settings: &Settings,
) -> Result<Option<Output>, SqlError> {
    let Some(select) = bare_select(query) else {
        return Ok(None);
    };
    let mut fields = Vec::with_capacity(select.projection.len());
    let mut columns = Vec::with_capacity(select.projection.len());
    let names = names::select_item_names(query).unwrap_or_default();
    for (i, item) in select.projection.iter().enumerate() {
        let expr = match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
            _ => return Ok(None),
        };
        let Some(v) = constant_value(expr, params, settings)? else {
            return Ok(None);
        };
        let pg = match expr {
            Expr::Cast { data_type, .. } => cast_oid(data_type),
            _ => None,
        };
        // An integer literal that fits is `integer`, as PostgreSQL types
        // it (`integer_literals.rs` does the same for planned queries).
        let v = match (&v, integer_literal(expr)) {
            (ScalarValue::Int64(Some(i)), true) => match i32::try_from(*i) {
                Ok(n) => ScalarValue::Int32(Some(n)),
                Err(_) => v,
            },
            _ => v,
        };
        let name = names
            .get(i)
            .cloned()
            .flatten()
            .unwrap_or_else(|| "?column?".to_string());
        let (v, meta) = match (&v, pg) {
            (ScalarValue::Decimal128(Some(x), _, s), _) => (
                ScalarValue::Utf8(Some(value::decimal_numeric(*x, *s).to_string())),
                Some("numeric"),
            ),
            (ScalarValue::Utf8(_), Some(types::NUMERIC)) => (v.clone(), Some("numeric")),
            (ScalarValue::Utf8(_), Some(types::JSONB)) => (v.clone(), Some("jsonb")),
            (ScalarValue::Utf8(_), Some(types::JSON)) => (v.clone(), Some("json")),
            _ => (v.clone(), None),
        };
        let dt = if v.data_type() == DataType::Null {
            DataType::Utf8
        } else {
            v.data_type()
        };
        let v = if v.data_type() == DataType::Null {
            ScalarValue::Utf8(None)
        } else {
            v
        };
        let mut field = Field::new(name, dt, true);
        if let Some(m) = meta {
            field = field.with_metadata(HashMap::from([(
                types::PG_TYPE_KEY.to_string(),
                m.to_string(),
            )]));
        }
        fields.push(field);
        columns.push(
            v.to_array()
                .map_err(|e| SqlError::internal(e.to_string()))?,
        );
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| SqlError::internal(e.to_string()))?;
    Ok(Some(Output::Rows {
        schema,
        batches: vec![batch],
        tag: "SELECT 1".into(),
    }))
}
