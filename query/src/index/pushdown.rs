//! Filters a class scan answers through an index: `col = v`, `col IN
//! (...)`, `col IS NULL`, and `<`, `<=`, `>`, `>=` on a column whose key
//! encoding follows PostgreSQL's order, over a leading run of an index's
//! columns (equalities on the first ones, then a list or a range on the
//! next). The scan reads those key ranges, then the objects found by
//! point reads; only the ranges and those objects join the read set, so
//! a lookup conflicts with a concurrent write of a matching key and with
//! nothing else. DataFusion still applies every filter to the rows
//! returned (the push-down is Inexact), so an index never decides a
//! row's fate alone.

use crate::error::SqlError;
use amber_catalog::index_key::{self, KeyPart, NULL, PRESENT};
use amber_catalog::{ClassDef, ColumnDef, Declared, IndexDef, SqlType};
use amber_storage::Txn;
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};
use datafusion::scalar::ScalarValue;

/// Most values of an `IN` list read one range each.
pub(crate) const IN_VALUES_MAX: usize = 1024;

/// A literal of a filter, or a parameter of a generic plan (bound to a
/// literal before the scan is planned physically).
enum Lit<'a> {
    Value(&'a ScalarValue),
    /// A boolean column alone (`WHERE b`, `WHERE NOT b`: what DataFusion
    /// makes of `b = true`).
    Bool(bool),
    Param,
}

enum Cond<'a> {
    Eq(&'a ColumnDef, Lit<'a>),
    IsNull(&'a ColumnDef),
    In(&'a ColumnDef, Vec<Lit<'a>>),
    /// `col > v` (inclusive: `>=`).
    Lower(&'a ColumnDef, Lit<'a>, bool),
    /// `col < v` (inclusive: `<=`).
    Upper(&'a ColumnDef, Lit<'a>, bool),
}

impl Cond<'_> {
    fn column(&self) -> &ColumnDef {
        match self {
            Cond::Eq(c, _)
            | Cond::IsNull(c)
            | Cond::In(c, _)
            | Cond::Lower(c, _, _)
            | Cond::Upper(c, _, _) => c,
        }
    }
}

/// Key ranges of one index that hold every row the filters may accept.
pub(crate) struct Access {
    pub index: IndexDef,
    /// `[start, end)` byte ranges of entry keys.
    pub ranges: Vec<(Vec<u8>, Vec<u8>)>,
    /// The filters used, as EXPLAIN shows them.
    pub shown: Vec<String>,
}

fn literal(e: &Expr) -> Option<Lit<'_>> {
    match e {
        Expr::Literal(v, _) if !v.is_null() => Some(Lit::Value(v)),
        Expr::Placeholder(_) => Some(Lit::Param),
        Expr::Cast(c) if matches!(*c.expr, Expr::Placeholder(_)) => Some(Lit::Param),
        _ => None,
    }
}

/// A column an index may hold, read directly or widened without loss
/// (`CAST(int4_col AS BIGINT)`): its key encoding answers the comparison.
fn column_of<'a>(e: &Expr, class: &'a ClassDef) -> Option<&'a ColumnDef> {
    let (name, widened_to) = match e {
        Expr::Column(c) => (&c.name, None),
        Expr::Cast(c) => match &*c.expr {
            Expr::Column(col) => (&col.name, Some(c.field.data_type())),
            _ => return None,
        },
        _ => return None,
    };
    let col = class.columns.iter().find(|c| &c.name == name)?;
    let lossless = matches!(
        (widened_to, &col.ty),
        (None, _)
            | (
                Some(DataType::Int64),
                SqlType::Int8 | SqlType::Int4 | SqlType::Int2 | SqlType::Ref(_),
            )
            | (Some(DataType::Float64), SqlType::Float8 | SqlType::Float4)
    );
    (lossless && indexable(col)).then_some(col)
}

/// Columns whose stored value is what comparisons compare: not numeric
/// (compared as decimals of another scale, `exact.rs`), not `char(n)`
/// (compared without trailing blanks), not jsonb or arrays.
pub(crate) fn indexable(col: &ColumnDef) -> bool {
    !matches!(
        col.ty,
        SqlType::Numeric | SqlType::Jsonb | SqlType::Array(_)
    ) && !matches!(col.declared, Some(Declared::Char { .. }))
}

/// `c = v1 OR c = v2 OR ...` (what DataFusion makes of a short `IN`
/// list): the column and the values, at most [`IN_VALUES_MAX`].
fn disjunction<'a>(filter: &'a Expr, class: &'a ClassDef) -> Option<Cond<'a>> {
    let mut col: Option<&ColumnDef> = None;
    let mut values = Vec::new();
    // Iterative over the OR tree: each step takes one node off the stack.
    let mut stack = vec![filter];
    while let Some(e) = stack.pop() {
        if values.len() + stack.len() > IN_VALUES_MAX {
            return None;
        }
        match e {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Or,
                right,
            }) => {
                stack.push(right);
                stack.push(left);
            }
            _ => match cond(e, class)? {
                Cond::Eq(c, v) if col.is_none_or(|k| k.name == c.name) => {
                    col = Some(c);
                    values.push(v);
                }
                _ => return None,
            },
        }
    }
    Some(Cond::In(col?, values))
}

fn cond<'a>(filter: &'a Expr, class: &'a ClassDef) -> Option<Cond<'a>> {
    match filter {
        Expr::BinaryExpr(BinaryExpr {
            op: Operator::Or, ..
        }) => disjunction(filter, class),
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (col, op, lit) =
                if let (Some(c), Some(l)) = (column_of(left, class), literal(right)) {
                    (c, *op, l)
                } else if let (Some(c), Some(l)) = (column_of(right, class), literal(left)) {
                    (c, op.swap()?, l)
                } else {
                    return None;
                };
            Some(match op {
                Operator::Eq => Cond::Eq(col, lit),
                Operator::Lt => Cond::Upper(col, lit, false),
                Operator::LtEq => Cond::Upper(col, lit, true),
                Operator::Gt => Cond::Lower(col, lit, false),
                Operator::GtEq => Cond::Lower(col, lit, true),
                _ => return None,
            })
        }
        Expr::InList(list) if !list.negated && list.list.len() <= IN_VALUES_MAX => {
            let col = column_of(&list.expr, class)?;
            let values = list.list.iter().map(literal).collect::<Option<Vec<_>>>()?;
            Some(Cond::In(col, values))
        }
        Expr::IsNull(e) => Some(Cond::IsNull(column_of(e, class)?)),
        Expr::Column(_) => {
            let col = column_of(filter, class)?;
            matches!(col.ty, SqlType::Bool).then_some(Cond::Eq(col, Lit::Bool(true)))
        }
        Expr::Not(e) if matches!(**e, Expr::Column(_)) => {
            let col = column_of(e, class)?;
            matches!(col.ty, SqlType::Bool).then_some(Cond::Eq(col, Lit::Bool(false)))
        }
        _ => None,
    }
}

/// Whether `filter` may be answered through one of `class`'s indexes
/// (a parameter counts as the literal it will be).
pub(crate) fn supports(class: &ClassDef, filter: &Expr) -> bool {
    cond(filter, class).is_some_and(|c| {
        let name = &c.column().name;
        class.indexes.iter().any(|i| i.columns.contains(name))
    })
}

/// The encoded key part of literal `v` for column `col`, if `v` is a
/// value of the column's type.
fn part(col: &ColumnDef, v: &Lit<'_>) -> Option<Vec<u8>> {
    let v = match v {
        Lit::Value(v) => *v,
        Lit::Bool(b) if matches!(col.ty, SqlType::Bool) => {
            let mut out = Vec::new();
            index_key::push_part(&mut out, &KeyPart::Bool(*b)).ok()?;
            return Some(out);
        }
        Lit::Bool(_) | Lit::Param => return None,
    };
    let int = |x: i64| Some(KeyPart::Int(x));
    let p = match (&col.ty, v) {
        (SqlType::Int8 | SqlType::Int4 | SqlType::Int2 | SqlType::Ref(_), v) => match v {
            ScalarValue::Int64(Some(x)) => int(*x),
            ScalarValue::Int32(Some(x)) => int(i64::from(*x)),
            ScalarValue::Int16(Some(x)) => int(i64::from(*x)),
            ScalarValue::Int8(Some(x)) => int(i64::from(*x)),
            ScalarValue::UInt32(Some(x)) => int(i64::from(*x)),
            ScalarValue::UInt64(Some(x)) => int(i64::try_from(*x).ok()?),
            _ => None,
        },
        (SqlType::Float8 | SqlType::Float4, ScalarValue::Float64(Some(f))) => {
            Some(KeyPart::Float(*f))
        }
        (SqlType::Float8 | SqlType::Float4, ScalarValue::Float32(Some(f))) => {
            Some(KeyPart::Float(f64::from(*f)))
        }
        (
            SqlType::Text,
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)),
        ) => Some(KeyPart::Text(s)),
        (SqlType::Bool, ScalarValue::Boolean(Some(b))) => Some(KeyPart::Bool(*b)),
        (SqlType::Date, ScalarValue::Date32(Some(d))) => int(i64::from(*d)),
        (
            SqlType::Timestamptz | SqlType::Timestamp,
            ScalarValue::TimestampMicrosecond(Some(us), _),
        ) => int(*us),
        (
            SqlType::Bytea,
            ScalarValue::Binary(Some(b))
            | ScalarValue::LargeBinary(Some(b))
            | ScalarValue::BinaryView(Some(b)),
        ) => Some(KeyPart::Bytes(b)),
        _ => None,
    }?;
    let mut out = Vec::new();
    index_key::push_part(&mut out, &p).ok()?;
    Some(out)
}

fn with(prefix: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(tail);
    k
}

/// The range of every entry whose key starts with `prefix`.
fn prefix_range(index_id: u64, prefix: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    let end = index_key::prefix_end(&prefix).unwrap_or_else(|| index_key::index_end(index_id));
    (prefix, end)
}

/// One index's ranges for the filters, and how much of its key they fix
/// (a score: equalities count 2, a list or range after them 1).
fn plan(index: &IndexDef, conds: &[(Cond<'_>, &Expr)]) -> Option<(usize, Access)> {
    let mut prefix = index_key::index_prefix(index.id);
    let mut shown = Vec::new();
    let mut fixed = 0;
    for name in &index.columns {
        let found = conds.iter().find_map(|(c, e)| match c {
            Cond::Eq(col, v) if &col.name == name => part(col, v).map(|p| (p, *e)),
            Cond::IsNull(col) if &col.name == name => Some((vec![NULL], *e)),
            _ => None,
        });
        let Some((p, e)) = found else { break };
        prefix.extend_from_slice(&p);
        shown.push(e.to_string());
        fixed += 1;
    }
    let mut score = 2 * fixed;
    let mut ranges = Vec::new();
    if let Some(next) = index.columns.get(fixed) {
        // A list on the next column: one range per value.
        let list = conds.iter().find_map(|(c, e)| match c {
            Cond::In(col, values) if &col.name == next => values
                .iter()
                .map(|v| part(col, v))
                .collect::<Option<Vec<_>>>()
                .map(|parts| (parts, *e)),
            _ => None,
        });
        if let Some((parts, e)) = list {
            let mut parts = parts;
            parts.sort();
            parts.dedup();
            ranges = parts
                .iter()
                .map(|p| prefix_range(index.id, with(&prefix, p)))
                .collect();
            shown.push(e.to_string());
            score += 1;
        } else {
            // Bounds on the next column, between its first and last value
            // (NULLs sort after every value and match no comparison).
            let mut lo = with(&prefix, &[PRESENT]);
            let mut hi = with(&prefix, &[NULL]);
            let mut bounded = false;
            for (c, e) in conds {
                match c {
                    Cond::Lower(col, v, inclusive) if &col.name == next => {
                        let Some(p) = part(col, v) else { continue };
                        let at = with(&prefix, &p);
                        let start = if *inclusive {
                            at
                        } else {
                            index_key::prefix_end(&at).unwrap_or_else(|| hi.clone())
                        };
                        lo = lo.max(start);
                    }
                    Cond::Upper(col, v, inclusive) if &col.name == next => {
                        let Some(p) = part(col, v) else { continue };
                        let at = with(&prefix, &p);
                        let end = if *inclusive {
                            index_key::prefix_end(&at).unwrap_or_else(|| hi.clone())
                        } else {
                            at
                        };
                        hi = hi.min(end);
                    }
                    _ => continue,
                }
                bounded = true;
                shown.push(e.to_string());
            }
            if bounded {
                score += 1;
                if lo < hi {
                    ranges.push((lo, hi));
                }
            }
        }
    }
    if score == 0 {
        return None;
    }
    if score == 2 * fixed {
        ranges.push(prefix_range(index.id, prefix));
    }
    Some((
        score,
        Access {
            index: index.clone(),
            ranges,
            shown,
        },
    ))
}

/// The index access that fixes most of a key for `filters`, if any.
pub(crate) fn choose(class: &ClassDef, filters: &[Expr]) -> Option<Access> {
    let conds: Vec<(Cond<'_>, &Expr)> = filters
        .iter()
        .filter_map(|f| cond(f, class).map(|c| (c, f)))
        .collect();
    if conds.is_empty() {
        return None;
    }
    class
        .indexes
        .iter()
        .filter_map(|i| plan(i, &conds))
        // Ties go to a unique index: at most one row per key.
        .max_by_key(|(score, a)| (*score, a.index.unique))
        .map(|(_, a)| a)
}

/// The object ids in `access`'s ranges, in id order; `None` when there are
/// more than `rows_max` (a scan of the class is then cheaper than that
/// many point reads).
pub(crate) fn read(
    txn: &Txn,
    access: &Access,
    rows_max: usize,
) -> Result<Option<Vec<u64>>, SqlError> {
    let mut oids = Vec::new();
    for (start, end) in &access.ranges {
        let left = rows_max + 1 - oids.len().min(rows_max + 1);
        for (k, _) in txn.scan_range(start, end, left)? {
            oids.extend(index_key::entry_oid(&k));
        }
        if oids.len() > rows_max {
            return Ok(None);
        }
    }
    oids.sort_unstable();
    oids.dedup();
    Ok(Some(oids))
}
