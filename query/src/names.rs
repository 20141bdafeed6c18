//! PostgreSQL's output column names (`?column?`, `count`, `sum`, ...).

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::sql::sqlparser::ast::{
    self, Expr, FunctionArguments, Ident, Query, SelectItem, SetExpr,
};
use std::collections::HashSet;
use std::sync::Arc;

/// The names PostgreSQL gives `query`'s columns ([`select_item_names`]),
/// and `query` readied for DataFusion: a select item whose name repeats an
/// earlier item's gets a name of its own (`__amber_col_<position>`), since
/// DataFusion refuses two output columns of one name and PostgreSQL does
/// not (`SELECT (SELECT a ...), (SELECT a ...)` gives two columns `a`).
/// The returned names are applied to the result by [`rename_columns`].
pub fn output_names(query: &mut Query) -> Option<Vec<Option<String>>> {
    let names = select_item_names(query);
    unique_select_items(query);
    names
}

fn unique_select_items(query: &mut Query) {
    unique_in(query.body.as_mut(), 0);
}

/// Most set operations nested in one another this looks into.
const SET_DEPTH_MAX: usize = 64;

/// `unnest((SELECT array_agg(a) ...))` twice in one select list (pgcli's
/// foreign key query): DataFusion names both unnests after the subquery's
/// column and then computes only one. Each such subquery's one column
/// gets a name of its own; the unnest keeps its own name.
fn unique_unnested_subqueries(select: &mut datafusion::sql::sqlparser::ast::Select) {
    use datafusion::sql::sqlparser::ast::{FunctionArg, FunctionArgExpr};
    let mut n = 0usize;
    for item in &mut select.projection {
        let (SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }) = item else {
            continue;
        };
        let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(e, |e: &mut Expr| {
            let Expr::Function(f) = e else {
                return std::ops::ControlFlow::<()>::Continue(());
            };
            let is_unnest = f
                .name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .is_some_and(|i| i.value.eq_ignore_ascii_case("unnest"));
            let FunctionArguments::List(list) = &mut f.args else {
                return std::ops::ControlFlow::Continue(());
            };
            if !is_unnest {
                return std::ops::ControlFlow::Continue(());
            }
            for arg in &mut list.args {
                let FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Subquery(q))) = arg else {
                    continue;
                };
                if let SetExpr::Select(inner) = q.body.as_mut() {
                    if let [one @ SelectItem::UnnamedExpr(_)] = inner.projection.as_mut_slice() {
                        let SelectItem::UnnamedExpr(x) = one.clone() else {
                            continue;
                        };
                        *one = SelectItem::ExprWithAlias {
                            expr: x,
                            alias: Ident::new(format!("__amber_unnested_{n}")),
                        };
                        n += 1;
                    }
                }
            }
            std::ops::ControlFlow::Continue(())
        });
    }
}

fn unique_in(body: &mut SetExpr, depth: usize) {
    if let SetExpr::Select(select) = body {
        unique_unnested_subqueries(select);
    }
    let select = match body {
        SetExpr::Select(select) => select,
        // Each branch of a UNION has its own names (the first's are the
        // result's), and each must be unique for DataFusion.
        SetExpr::SetOperation { left, right, .. } if depth < SET_DEPTH_MAX => {
            unique_in(left, depth + 1);
            unique_in(right, depth + 1);
            return;
        }
        SetExpr::Query(q) if depth < SET_DEPTH_MAX => {
            unique_in(q.body.as_mut(), depth + 1);
            return;
        }
        _ => return,
    };
    // `SELECT c.oid, c.*` (DBeaver, for every catalog it lists): the
    // wildcard's names are known only once planned, so beside one
    // wildcard every other item gets a name of its own
    // ([`rename_columns`] gives each its name back).
    let wildcards = select
        .projection
        .iter()
        .filter(|item| {
            matches!(
                item,
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
            )
        })
        .count();
    if wildcards == 1 && select.projection.len() > 1 {
        for (i, item) in select.projection.iter_mut().enumerate() {
            let expr = match &*item {
                SelectItem::UnnamedExpr(e) => e.clone(),
                SelectItem::ExprWithAlias { expr, .. } => expr.clone(),
                _ => continue,
            };
            *item = SelectItem::ExprWithAlias {
                expr,
                alias: Ident::new(format!("__amber_col_{i}")),
            };
        }
        return;
    }
    let mut seen: HashSet<String> = HashSet::new();
    for (i, item) in select.projection.iter_mut().enumerate() {
        let expr = match &*item {
            // The expression's text stands for DataFusion's name of it;
            // the PostgreSQL name catches `name, t.name` too.
            SelectItem::UnnamedExpr(e) => {
                // DataFusion drops a unary plus (`+ a` is `a` to it) and
                // names a cast after what it casts.
                let by_text = !seen.insert(datafusion_key(e));
                let by_name = !seen.insert(format!("\0{}", expr_name(e)));
                if !(by_text || by_name) {
                    continue;
                }
                e.clone()
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                if seen.insert(format!("\0{}", ident_name(alias))) {
                    continue;
                }
                expr.clone()
            }
            _ => continue,
        };
        *item = SelectItem::ExprWithAlias {
            expr,
            alias: Ident::new(format!("__amber_col_{i}")),
        };
    }
}

/// The text standing for DataFusion's name of `e`: without unary plus
/// and casts (`'{1}'::oid[]` and `'{1}'::int4[]` are one name to it).
fn datafusion_key(e: &Expr) -> String {
    let mut e = without_unary_plus(e).clone();
    let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(&mut e, |e: &mut Expr| {
        while let Expr::Cast { expr, .. } = e {
            *e = std::mem::replace(
                expr.as_mut(),
                Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
            );
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    e.to_string()
}

fn without_unary_plus(e: &Expr) -> &Expr {
    let mut e = e;
    // Bounded: each step goes one node deeper into a finite tree.
    while let Expr::UnaryOp {
        op: datafusion::sql::sqlparser::ast::UnaryOperator::Plus,
        expr,
    } = e
    {
        e = expr;
    }
    e
}

/// One name per select item; `None` for a wildcard (its columns keep the
/// names the table gives them).
pub fn select_item_names(query: &Query) -> Option<Vec<Option<String>>> {
    // A UNION's columns are named by its first SELECT (bounded: each step
    // goes one set operation deeper into a finite tree).
    let mut body = query.body.as_ref();
    loop {
        match body {
            SetExpr::SetOperation { left, .. } => body = left.as_ref(),
            SetExpr::Query(q) => body = q.body.as_ref(),
            _ => break,
        }
    }
    let SetExpr::Select(select) = body else {
        return None;
    };
    Some(
        select
            .projection
            .iter()
            .map(|item| match item {
                SelectItem::UnnamedExpr(e) => Some(expr_name(e)),
                SelectItem::ExprWithAlias { alias, .. } => Some(ident_name(alias)),
                _ => None,
            })
            .collect(),
    )
}

/// An identifier's name: unquoted ones fold to lower case, as PostgreSQL
/// folds them (`AS TABLE_SCHEM` names the column table_schem).
fn ident_name(i: &Ident) -> String {
    match i.quote_style {
        None => i.value.to_lowercase(),
        Some(_) => i.value.clone(),
    }
}

pub fn expr_name(e: &Expr) -> String {
    match e {
        Expr::Identifier(i) => ident_name(i),
        Expr::CompoundIdentifier(parts) => parts.last().map(ident_name).unwrap_or_default(),
        Expr::Function(f) => {
            let name = f
                .name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(|i| i.value.to_lowercase())
                .unwrap_or_else(|| "?column?".into());
            let _ = &f.args;
            if matches!(f.args, FunctionArguments::None) && name.is_empty() {
                return "?column?".into();
            }
            name
        }
        // A cast of a constant is named after its type (the outermost
        // one: `'x'::regclass::text` is text), of anything else after
        // what it casts (PostgreSQL's FigureColname).
        Expr::Cast {
            expr, data_type, ..
        } => match is_constant(expr) {
            true => pg_type_column_name(&data_type.to_string()),
            false => expr_name(expr),
        },
        Expr::Nested(inner) => expr_name(inner),
        Expr::Case { .. } => "case".into(),
        Expr::Exists { .. } => "exists".into(),
        // A scalar subquery is named after its one output column.
        Expr::Subquery(q) => match select_item_names(q).as_deref() {
            Some([Some(name)]) => name.clone(),
            _ => "?column?".into(),
        },
        Expr::Array(_) => "array".into(),
        // Functions with SQL syntax of their own are named after the
        // function PostgreSQL calls.
        Expr::Substring { shorthand, .. } => match shorthand {
            true => "substr".into(),
            false => "substring".into(),
        },
        Expr::Trim { trim_where, .. } => match trim_where {
            Some(ast::TrimWhereField::Leading) => "ltrim".into(),
            Some(ast::TrimWhereField::Trailing) => "rtrim".into(),
            _ => "btrim".into(),
        },
        Expr::Position { .. } => "position".into(),
        Expr::Extract { .. } => "extract".into(),
        Expr::Ceil { .. } => "ceil".into(),
        Expr::Floor { .. } => "floor".into(),
        Expr::Overlay { .. } => "overlay".into(),
        _ => "?column?".into(),
    }
}

/// A constant, or a constant cast (however often): a weak name.
fn is_constant(e: &Expr) -> bool {
    match e {
        Expr::Value(_) => true,
        Expr::Cast { expr, .. } | Expr::Nested(expr) => is_constant(expr),
        _ => false,
    }
}

fn pg_type_column_name(t: &str) -> String {
    // An array cast is named after its element type (`'{}'::text[]`: text).
    let t = t.trim_end_matches("[]");
    match t.to_lowercase().as_str() {
        "int" | "integer" | "int4" => "int4".into(),
        "bigint" | "int8" => "int8".into(),
        "smallint" | "int2" => "int2".into(),
        "text" => "text".into(),
        "boolean" | "bool" => "bool".into(),
        "float8" | "double precision" => "float8".into(),
        "real" | "float4" => "float4".into(),
        "date" => "date".into(),
        other => other.split('(').next().unwrap_or(other).trim().to_string(),
    }
}

pub(crate) fn rename_columns(schema: &SchemaRef, names: Option<&[Option<String>]>) -> SchemaRef {
    let Some(names) = names else {
        return schema.clone();
    };
    let wildcards = names.iter().filter(|n| n.is_none()).count();
    let fixed = names.len() - wildcards;
    if wildcards > 1
        || (wildcards == 0 && names.len() != schema.fields().len())
        || fixed > schema.fields().len()
    {
        return schema.clone();
    }
    let expanded = schema.fields().len() - fixed;
    let mut out = Vec::with_capacity(schema.fields().len());
    let mut i = 0;
    for n in names {
        match n {
            Some(name) => {
                out.push(schema.field(i).as_ref().clone().with_name(name.clone()));
                i += 1;
            }
            None => {
                for _ in 0..expanded {
                    out.push(schema.field(i).as_ref().clone());
                    i += 1;
                }
            }
        }
    }
    Arc::new(Schema::new_with_metadata(out, schema.metadata().clone()))
}
