//! PostgreSQL syntax that catalog queries use and DataFusion lacks,
//! rewritten before planning into what it has:
//!
//! - `'bank.account'::regclass` (a literal) -> the relation's oid (42P01
//!   if there is none, as PostgreSQL); `c.oid::regclass` -> the name
//!   PostgreSQL prints (`__amber_regclass(c.oid)`); likewise `regtype`,
//!   `regproc`, `regprocedure`, `regnamespace`;
//! - `::oid` -> bigint, `::name`, `::"char"` and the information_schema
//!   domains -> text; `pg_catalog.int4` and friends -> their SQL types;
//! - `OPERATOR(pg_catalog.~)` -> `~`; `COLLATE "C"` -> nothing (Amber
//!   compares text as collation "C" always);
//! - `pg_catalog.f(...)` -> `f(...)` (functions live in one namespace).

use super::builtin;
use super::model::Snapshot;
use crate::error::SqlError;
use datafusion::sql::sqlparser::ast::{
    self, BinaryOperator, DataType, Expr, Ident, ObjectName, ObjectNamePart, Statement, Value,
    ValueWithSpan,
};
use std::ops::ControlFlow;
use std::sync::Arc;

/// The functions that print reg* values (registered in `functions.rs`).
pub(crate) const REGCLASS_OUT: &str = "__amber_regclass";
pub(crate) const REGCLASS_IN: &str = "__amber_regclass_in";
pub(crate) const REGTYPE_OUT: &str = "__amber_regtype";
pub(crate) const REGPROC_OUT: &str = "__amber_regproc";
pub(crate) const REGNAMESPACE_OUT: &str = "__amber_regnamespace";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Reg {
    Class,
    Type,
    Proc,
    Namespace,
}

/// What a cast target becomes.
enum Target {
    Reg(Reg),
    Sql(DataType),
}

fn last_name(name: &ObjectName) -> Option<String> {
    match name.0.last()? {
        ObjectNamePart::Identifier(i) => Some(i.value.to_lowercase()),
        _ => None,
    }
}

fn target(dt: &DataType) -> Option<Target> {
    let name = match dt {
        DataType::Regclass => return Some(Target::Reg(Reg::Class)),
        DataType::Custom(name, _) => last_name(name)?,
        DataType::Array(ast::ArrayElemTypeDef::SquareBracket(inner, size)) => {
            return match target(inner)? {
                Target::Sql(t) => Some(Target::Sql(DataType::Array(
                    ast::ArrayElemTypeDef::SquareBracket(Box::new(t), *size),
                ))),
                // An array of reg* is an array of oids.
                Target::Reg(_) => Some(Target::Sql(DataType::Array(
                    ast::ArrayElemTypeDef::SquareBracket(Box::new(DataType::BigInt(None)), *size),
                ))),
            };
        }
        _ => return None,
    };
    Some(match name.as_str() {
        "regclass" => Target::Reg(Reg::Class),
        "regtype" => Target::Reg(Reg::Type),
        "regproc" | "regprocedure" => Target::Reg(Reg::Proc),
        "regnamespace" => Target::Reg(Reg::Namespace),
        "oid" | "xid" | "cid" | "regrole" => Target::Sql(DataType::BigInt(None)),
        "name" | "char" | "sql_identifier" | "character_data" | "yes_or_no" | "bpchar"
        | "pg_node_tree" => Target::Sql(DataType::Text),
        "cardinal_number" | "int4" => Target::Sql(DataType::Int(None)),
        "int2" => Target::Sql(DataType::SmallInt(None)),
        "int8" => Target::Sql(DataType::BigInt(None)),
        "float8" => Target::Sql(DataType::DoublePrecision),
        "float4" => Target::Sql(DataType::Real),
        "bool" => Target::Sql(DataType::Boolean),
        "text" | "varchar" => Target::Sql(DataType::Text),
        _ => return None,
    })
}

/// `'{1,2}'::int2[]`: an array's text cast to an array type, which
/// DataFusion cannot cast from a string, becomes `ARRAY['1', '2']::int2[]`
/// (elements parsed as PostgreSQL's array input parses them).
fn array_text_cast(e: &Expr) -> Option<Expr> {
    let Expr::Cast {
        kind,
        expr,
        data_type: data_type @ DataType::Array(_),
        format,
        array,
    } = e
    else {
        return None;
    };
    let text = string_literal(expr)?;
    let elements = crate::value::array::parse(&text).ok()?;
    let data_type = match target(data_type) {
        Some(Target::Sql(t)) => t,
        Some(Target::Reg(_)) => return None,
        None => data_type.clone(),
    };
    let elem = elements
        .into_iter()
        .map(|v| match v {
            Some(v) => Expr::value(Value::SingleQuotedString(v)),
            None => Expr::value(Value::Null),
        })
        .collect();
    Some(Expr::Cast {
        kind: kind.clone(),
        expr: Box::new(Expr::Array(ast::Array { elem, named: true })),
        data_type,
        format: format.clone(),
        array: *array,
    })
}

fn string_literal(e: &Expr) -> Option<String> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Some(s.clone()),
            Value::Number(n, _) => Some(n.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// `schema.name` as `::regclass` reads it (unquoted parts lowercased).
fn parse_name(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = text.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut cur)),
            c if quoted => cur.push(c),
            c => cur.extend(c.to_lowercase()),
        }
    }
    parts.push(cur);
    parts
}

/// The oid `'name'::regclass` gives (42P01 if there is none).
pub(crate) fn regclass_oid(snapshot: &Snapshot, text: &str) -> Result<u32, SqlError> {
    literal_oid(snapshot, Reg::Class, text)
}

fn literal_oid(snapshot: &Snapshot, reg: Reg, text: &str) -> Result<u32, SqlError> {
    if let Ok(oid) = text.trim().parse::<u32>() {
        return Ok(oid);
    }
    let parts = parse_name(text);
    let found = match reg {
        Reg::Class => match parts.as_slice() {
            [name] => super::system_relation_oid("pg_catalog", name)
                .or_else(|| snapshot.relation_oid(None, name)),
            [schema, name] if schema == "pg_catalog" || schema == "information_schema" => {
                super::system_relation_oid(schema, name)
            }
            [schema, name] => snapshot.relation_oid(Some(schema), name),
            _ => None,
        },
        Reg::Type => {
            let name = parts.last().cloned().unwrap_or_default();
            builtin::type_oid(&name).or_else(|| builtin::type_oid(&sql_type_name(text)))
        }
        Reg::Proc => {
            let name = parts.last().cloned().unwrap_or_default();
            snapshot
                .functions()
                .into_iter()
                .find(|f| f.name == name)
                .map(|f| f.oid)
                .or_else(|| builtin::proc_oid(&name))
        }
        Reg::Namespace => snapshot
            .schemas()
            .into_iter()
            .find(|(_, n, _)| Some(n) == parts.last())
            .map(|(o, _, _)| o),
    };
    found.ok_or_else(|| match reg {
        Reg::Class => SqlError::new("42P01", format!("relation \"{text}\" does not exist")),
        Reg::Type => SqlError::new("42704", format!("type \"{text}\" does not exist")),
        Reg::Proc => SqlError::new("42883", format!("function \"{text}\" does not exist")),
        Reg::Namespace => SqlError::new("3F000", format!("schema \"{text}\" does not exist")),
    })
}

/// A type's SQL name as its typname (`integer` -> `int4`).
fn sql_type_name(text: &str) -> String {
    match text.trim().to_lowercase().as_str() {
        "integer" | "int" => "int4".into(),
        "bigint" => "int8".into(),
        "smallint" => "int2".into(),
        "double precision" => "float8".into(),
        "real" => "float4".into(),
        "boolean" => "bool".into(),
        "character varying" => "varchar".into(),
        "character" => "bpchar".into(),
        "timestamp with time zone" => "timestamptz".into(),
        "timestamp without time zone" | "timestamp" => "timestamp".into(),
        other => other.to_string(),
    }
}

fn call(name: &str, arg: Expr) -> Expr {
    Expr::Function(ast::Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: ast::FunctionArguments::None,
        args: ast::FunctionArguments::List(ast::FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(arg))],
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

fn operator(parts: &[String]) -> Option<BinaryOperator> {
    Some(match parts.last()?.as_str() {
        "~" => BinaryOperator::PGRegexMatch,
        "~*" => BinaryOperator::PGRegexIMatch,
        "!~" => BinaryOperator::PGRegexNotMatch,
        "!~*" => BinaryOperator::PGRegexNotIMatch,
        "~~" => BinaryOperator::PGLikeMatch,
        "!~~" => BinaryOperator::PGNotLikeMatch,
        "=" => BinaryOperator::Eq,
        "<>" | "!=" => BinaryOperator::NotEq,
        "<" => BinaryOperator::Lt,
        "<=" => BinaryOperator::LtEq,
        ">" => BinaryOperator::Gt,
        ">=" => BinaryOperator::GtEq,
        "||" => BinaryOperator::StringConcat,
        "+" => BinaryOperator::Plus,
        "-" => BinaryOperator::Minus,
        _ => return None,
    })
}

/// Whether `stmt` uses syntax this file rewrites (most statements do not:
/// they skip the rewrite and the snapshot).
/// The functions [`rewrite`] replaces wherever they are called (its
/// `Expr::Function` arm); [`needed`] looks for exactly these (a unit test
/// checks each is rewritten).
const REWRITTEN_FUNCTIONS: &[&str] = &[
    "array_upper",
    "array_lower",
    "generate_subscripts",
    "_pg_expandarray",
    "pg_partition_ancestors",
];

pub(crate) fn needed(stmt: &Statement) -> bool {
    let mut lateral = LateralFunctions {
        found: false,
        rewrite: false,
    };
    let _ = ast::Visit::visit(stmt, &mut lateral);
    if lateral.found {
        return true;
    }
    if ast::visit_relations(stmt, |name: &ObjectName| {
        if is_qualified_table_function(name) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .is_break()
    {
        return true;
    }
    let mut found = false;
    let _ = ast::visit_expressions(stmt, |e: &Expr| {
        found = match e {
            e if array_text_cast(e).is_some() => true,
            Expr::Cast { data_type, .. } => target(data_type).is_some(),
            Expr::BinaryOp {
                op: BinaryOperator::PGCustomBinaryOperator(_),
                ..
            } => true,
            Expr::Collate { .. } => true,
            e if is_tableoid(e) => true,
            Expr::CompoundFieldAccess { root, access_chain } => {
                record_field(root, access_chain).is_some()
                    || vector_subscript(root, access_chain).is_some()
            }
            Expr::Like { escape_char, .. } | Expr::ILike { escape_char, .. } => {
                other_escape(escape_char.as_ref()).is_some()
            }
            Expr::BinaryOp { left, right, .. } => {
                array_literal(left).is_some() || array_literal(right).is_some()
            }
            Expr::Function(f) => {
                (f.name.0.len() > 1 && is_pg_catalog(&f.name))
                    || array_subquery(f).is_some()
                    || last_name(&f.name).is_some_and(|n| REWRITTEN_FUNCTIONS.contains(&n.as_str()))
            }
            _ => false,
        };
        if found {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    found
}

/// Whether `e` is a cast to a reg* type (which reads the catalog).
pub(crate) fn needed_expr(e: &Expr) -> bool {
    matches!(e, Expr::Cast { data_type, .. } if matches!(target(data_type), Some(Target::Reg(_))))
}

/// `'{0}'` compared with an array column (`polroles = '{0}'`): an array
/// literal PostgreSQL types from the column, here `ARRAY[0]`.
fn array_literal(e: &Expr) -> Option<Expr> {
    let text = match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => s,
            _ => return None,
        },
        _ => return None,
    };
    let inner = text.strip_prefix('{')?.strip_suffix('}')?;
    if inner.is_empty() || inner.contains(['"', '{', '\\']) {
        return None;
    }
    let elem = inner
        .split(',')
        .map(|x| {
            let x = x.trim();
            match x.parse::<i64>() {
                Ok(_) => Expr::value(Value::Number(x.to_string(), false)),
                Err(_) => Expr::value(Value::SingleQuotedString(x.to_string())),
            }
        })
        .collect();
    Some(Expr::Array(ast::Array { elem, named: true }))
}

/// `(record).field` (a parenthesized expression's field, as PostgreSQL
/// reads a composite): as `(record)['field']`, DataFusion's field access.
fn record_field(root: &Expr, chain: &[ast::AccessExpr]) -> Option<Vec<ast::AccessExpr>> {
    if !matches!(root, Expr::Nested(_)) {
        return None;
    }
    let mut out = Vec::with_capacity(chain.len());
    let mut changed = false;
    for access in chain {
        match access {
            ast::AccessExpr::Dot(Expr::Identifier(i)) => {
                changed = true;
                out.push(ast::AccessExpr::Subscript(ast::Subscript::Index {
                    index: Expr::value(Value::SingleQuotedString(i.value.to_lowercase())),
                }));
            }
            other => out.push(other.clone()),
        }
    }
    changed.then_some(out)
}

/// The catalog's int2vector and oidvector columns, whose subscripts start
/// at 0 in PostgreSQL (`i.indkey[0]` is the first key column).
const VECTOR_COLUMNS: &[&str] = &[
    "indkey",
    "indclass",
    "indcollation",
    "indoption",
    "proargtypes",
];

/// `i.indkey[n]`: as `i.indkey[n + 1]` (Amber's arrays start at 1).
/// sqlparser gives `i.indkey[0]` as `i` with the accesses `.indkey`,
/// `[0]`, and `indkey[0]` as `indkey` with `[0]`.
fn vector_subscript(root: &Expr, chain: &[ast::AccessExpr]) -> Option<Vec<ast::AccessExpr>> {
    let (column, index) = match (root, chain) {
        (Expr::Identifier(c), [ast::AccessExpr::Subscript(ast::Subscript::Index { index })]) => {
            (&c.value, index)
        }
        (
            Expr::Identifier(_),
            [ast::AccessExpr::Dot(Expr::Identifier(c)), ast::AccessExpr::Subscript(ast::Subscript::Index { index })],
        ) => (&c.value, index),
        (
            Expr::CompoundIdentifier(parts),
            [ast::AccessExpr::Subscript(ast::Subscript::Index { index })],
        ) => (&parts.last()?.value, index),
        _ => return None,
    };
    if !VECTOR_COLUMNS.contains(&column.to_lowercase().as_str()) {
        return None;
    }
    let shifted = Expr::Nested(Box::new(Expr::BinaryOp {
        left: Box::new(index.clone()),
        op: BinaryOperator::Plus,
        right: Box::new(Expr::value(Value::Number("1".into(), false))),
    }));
    let mut out = chain.to_vec();
    if let Some(ast::AccessExpr::Subscript(ast::Subscript::Index { index })) = out.last_mut() {
        *index = shifted;
    }
    Some(out)
}

/// The function turning a LIKE pattern with another escape character into
/// one with backslash (DataFusion's only).
pub(crate) const LIKE_ESCAPE: &str = "__amber_like_escape";

/// `LIKE p ESCAPE 'c'` with c not a backslash: c (empty: no escape).
fn other_escape(escape: Option<&ast::ValueWithSpan>) -> Option<String> {
    match &escape?.value {
        Value::SingleQuotedString(c) if c != "\\" => Some(c.clone()),
        _ => None,
    }
}

/// `pattern` with escape character `escape` (at most one character;
/// empty: none) rewritten for backslash: `pg/_` with `/` is `pg\_`.
pub(crate) fn like_pattern(pattern: &str, escape: &str) -> String {
    let escape = escape.chars().next();
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut chars = pattern.chars();
    // Bounded: each step consumes at least one character.
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            match chars.next() {
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push(c),
            }
        } else if c == '\\' {
            // An ordinary character under another escape.
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    out
}

/// `ARRAY(SELECT ...)`'s query.
fn array_subquery(f: &ast::Function) -> Option<&ast::Query> {
    match (&f.args, last_name(&f.name).as_deref()) {
        (ast::FunctionArguments::Subquery(q), Some("array")) => Some(q),
        _ => None,
    }
}

/// `ARRAY(q)` as DataFusion runs it: `(SELECT coalesce(array_agg(x),
/// make_array()) FROM (q') AS __amber_array)`, where q' is q with its one
/// column named x; the array is in q's order when q orders by that column.
fn array_of(mut q: ast::Query) -> Expr {
    const X: &str = "__amber_array_value";
    let by_first = q.order_by.as_ref().is_some_and(|o| match &o.kind {
        ast::OrderByKind::Expressions(exprs) => {
            exprs.len() == 1
                && matches!(&exprs[0].expr, Expr::Value(v) if matches!(&v.value, Value::Number(n, _) if n == "1"))
        }
        _ => false,
    });
    if let ast::SetExpr::Select(select) = q.body.as_mut() {
        if let Some(item) = select.projection.first_mut() {
            let expr = match item {
                ast::SelectItem::UnnamedExpr(e) => Some(e.clone()),
                ast::SelectItem::ExprWithAlias { expr, .. } => Some(expr.clone()),
                _ => None,
            };
            if let Some(expr) = expr {
                *item = ast::SelectItem::ExprWithAlias {
                    expr,
                    alias: Ident::new(X),
                };
            }
        }
    }
    let order = if by_first {
        format!(" ORDER BY {X}")
    } else {
        String::new()
    };
    let sql = format!(
        "(SELECT coalesce(array_agg({X}{order}), make_array()) FROM ({q}) AS __amber_array)"
    );
    match datafusion::sql::sqlparser::parser::Parser::new(
        &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
    )
    .try_with_sql(&sql)
    .and_then(|mut p| p.parse_expr())
    {
        Ok(e) => e,
        Err(_) => Expr::value(Value::Null),
    }
}

fn is_pg_catalog(name: &ObjectName) -> bool {
    matches!(name.0.first(), Some(ObjectNamePart::Identifier(i)) if i.value.eq_ignore_ascii_case("pg_catalog"))
}

/// `pg_catalog.generate_series` in FROM: a table function (DataFusion
/// knows them unqualified).
fn is_qualified_table_function(name: &ObjectName) -> bool {
    name.0.len() == 2
        && is_pg_catalog(name)
        && last_name(name).is_some_and(|n| !super::is_pg_catalog_relation(&n))
}

/// Table functions whose arguments come from the row of an outer query
/// (`FROM generate_series(0, array_upper(pr.prattrs, 1)) s` in a
/// subquery, as psql sends): DataFusion's table functions take only
/// constants, so such a call becomes `(SELECT unnest(generate_series(a,
/// b)) AS s) AS s`, whose outer references the subquery's SubPlan
/// (`subplan.rs`) fills in per outer row. `generate_subscripts(a, 1)` is
/// `generate_series(1, array_length(a, 1))`.
struct LateralFunctions {
    found: bool,
    rewrite: bool,
}

/// `FROM pg_partition_ancestors(r)`: one row, `relid` = r (a relation
/// without partitions is its own only ancestor).
fn partition_ancestors(
    args: &ast::TableFunctionArgs,
    alias: Option<&ast::TableAlias>,
    with_ordinality: bool,
) -> Option<ast::TableFactor> {
    let [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(a))] = args.args.as_slice() else {
        return None;
    };
    // WITH ORDINALITY adds the row's position (bigint), here 1.
    let ordinality = if with_ordinality {
        ", CAST(1 AS BIGINT) AS ordinality"
    } else {
        ""
    };
    let query = datafusion::sql::sqlparser::parser::Parser::new(
        &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
    )
    .try_with_sql(&format!("SELECT CAST({a} AS BIGINT) AS relid{ordinality}"))
    .and_then(|mut p| p.parse_query())
    .ok()?;
    Some(ast::TableFactor::Derived {
        lateral: false,
        subquery: query,
        alias: Some(alias.cloned().unwrap_or(ast::TableAlias {
            explicit: true,
            name: Ident::new("pg_partition_ancestors"),
            columns: Vec::new(),
            at: None,
        })),
        sample: None,
    })
}

fn parse_expr(sql: &str) -> Option<Expr> {
    datafusion::sql::sqlparser::parser::Parser::new(
        &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
    )
    .try_with_sql(sql)
    .and_then(|mut p| p.parse_expr())
    .ok()
}

/// Functions returning one value that tools call in FROM
/// (`string_to_array(current_setting('search_path'), ',') s`, Grafana):
/// PostgreSQL reads such a call as a one-row table whose one column has
/// the alias's name, `(SELECT f(...) AS s) AS s` here.
const SCALARS_IN_FROM: &[&str] = &[
    "string_to_array",
    "regexp_split_to_array",
    "current_schemas",
    "parse_ident",
    "array_append",
    "array_remove",
    "array_cat",
];

fn is_constant(e: &Expr) -> bool {
    match e {
        Expr::Value(_) => true,
        Expr::UnaryOp { expr, .. } | Expr::Nested(expr) => is_constant(expr),
        Expr::Cast { expr, .. } => is_constant(expr),
        _ => false,
    }
}

/// The derived table standing for a lateral call of `factor`, if it is one.
fn lateral_call(factor: &ast::TableFactor) -> Option<ast::TableFactor> {
    let ast::TableFactor::Table {
        name,
        alias,
        args: Some(args),
        with_ordinality,
        ..
    } = factor
    else {
        return None;
    };
    let function = last_name(name)?;
    if function == "pg_partition_ancestors" {
        return partition_ancestors(args, alias.as_ref(), *with_ordinality);
    }
    if *with_ordinality {
        return None;
    }
    let scalar = SCALARS_IN_FROM.contains(&function.as_str());
    if !scalar
        && !matches!(
            function.as_str(),
            "generate_series" | "generate_subscripts" | "unnest"
        )
    {
        return None;
    }
    let exprs: Vec<&Expr> = args
        .args
        .iter()
        .filter_map(|a| match a {
            ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Some(e),
            _ => None,
        })
        .collect();
    // `unnest(a) x` names its column x as PostgreSQL does only this way.
    if exprs.len() != args.args.len()
        || (!scalar && function != "unnest" && exprs.iter().all(|e| is_constant(e)))
    {
        return None;
    }
    let series = match (function.as_str(), exprs.as_slice()) {
        _ if scalar => {
            let args: Vec<String> = exprs.iter().map(|e| e.to_string()).collect();
            format!("{function}({})", args.join(", "))
        }
        ("unnest", [a]) => a.to_string(),
        ("generate_series", [a, b]) => format!("generate_series({a}, {b})"),
        ("generate_series", [a, b, step]) => format!("generate_series({a}, {b}, {step})"),
        ("generate_subscripts", [a, dim]) => {
            format!("generate_series(1, array_length({a}, {dim}))")
        }
        _ => return None,
    };
    let (table, column) = match alias {
        Some(a) => (
            a.name.clone(),
            a.columns
                .first()
                .map(|c| c.name.clone())
                .unwrap_or_else(|| a.name.clone()),
        ),
        None => (Ident::new(function.clone()), Ident::new(function)),
    };
    let sql = match scalar {
        true => format!("SELECT {series} AS {column}"),
        false => format!("SELECT unnest({series}) AS {column}"),
    };
    let query = datafusion::sql::sqlparser::parser::Parser::new(
        &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
    )
    .try_with_sql(&sql)
    .and_then(|mut p| p.parse_query())
    .ok()?;
    Some(ast::TableFactor::Derived {
        lateral: false,
        subquery: query,
        alias: Some(ast::TableAlias {
            explicit: true,
            name: table,
            columns: Vec::new(),
            at: None,
        }),
        sample: None,
    })
}

/// `FROM unnest(a)` of one array: PostgreSQL names the table and its
/// column `unnest`, `FROM unnest(a) x` names both `x`; DataFusion names
/// the column after the call. The alias that makes it name them so.
fn unnest_alias(factor: &ast::TableFactor) -> Option<ast::TableAlias> {
    let ast::TableFactor::UNNEST {
        alias,
        array_exprs,
        with_offset: false,
        with_ordinality: false,
        ..
    } = factor
    else {
        return None;
    };
    if array_exprs.len() != 1 {
        return None;
    }
    match alias {
        Some(a) if !a.columns.is_empty() => None,
        Some(a) => Some(ast::TableAlias {
            columns: vec![ast::TableAliasColumnDef {
                name: a.name.clone(),
                data_type: None,
            }],
            ..a.clone()
        }),
        None => Some(ast::TableAlias {
            explicit: true,
            name: Ident::new("unnest"),
            columns: vec![ast::TableAliasColumnDef {
                name: Ident::new("unnest"),
                data_type: None,
            }],
            at: None,
        }),
    }
}

impl ast::Visitor for LateralFunctions {
    type Break = ();
    fn pre_visit_query(&mut self, q: &ast::Query) -> ControlFlow<()> {
        if has_series_items(q) {
            self.found = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &ast::TableFactor) -> ControlFlow<()> {
        if lateral_call(factor).is_some() || unnest_alias(factor).is_some() {
            self.found = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

fn is_series_item(item: &ast::SelectItem) -> bool {
    let expr = match item {
        ast::SelectItem::UnnamedExpr(e) => e,
        ast::SelectItem::ExprWithAlias { expr, .. } => expr,
        _ => return false,
    };
    matches!(expr, Expr::Function(f) if last_name(&f.name).as_deref() == Some("generate_series"))
}

fn has_series_items(q: &ast::Query) -> bool {
    matches!(q.body.as_ref(), ast::SetExpr::Select(s) if s.projection.iter().any(is_series_item))
}

/// `generate_series(a, b)` as a select item: a set-returning function in
/// PostgreSQL (rows), a list in DataFusion: unnested.
fn series_items(q: &mut ast::Query) -> bool {
    let ast::SetExpr::Select(select) = q.body.as_mut() else {
        return false;
    };
    let mut changed = false;
    for item in select.projection.iter_mut() {
        let expr = match item {
            ast::SelectItem::UnnamedExpr(e) => e,
            ast::SelectItem::ExprWithAlias { expr, .. } => expr,
            _ => continue,
        };
        if let Expr::Function(f) = expr {
            if last_name(&f.name).as_deref() == Some("generate_series") {
                let inner = std::mem::replace(expr, Expr::value(Value::Null));
                *expr = call("unnest", inner);
                changed = true;
            }
        }
    }
    changed
}

impl ast::VisitorMut for LateralFunctions {
    type Break = ();
    fn pre_visit_query(&mut self, q: &mut ast::Query) -> ControlFlow<()> {
        if self.rewrite && series_items(q) {
            self.found = true;
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut ast::TableFactor) -> ControlFlow<()> {
        if self.rewrite {
            if let Some(derived) = lateral_call(factor) {
                *factor = derived;
                self.found = true;
            } else if let Some(named) = unnest_alias(factor) {
                if let ast::TableFactor::UNNEST { alias, .. } = factor {
                    *alias = Some(named);
                    self.found = true;
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// `alias.tableoid` (psql's `\dd` and `\dL` join pg_description on it):
/// the system column holding the oid of the relation a row is in. For a
/// relation of the query's FROM it is that relation's oid, a constant.
struct TableOids<'a> {
    snapshot: &'a dyn Fn() -> Arc<Snapshot>,
}

/// Whether `e` reads a `tableoid` column.
fn is_tableoid(e: &Expr) -> bool {
    match e {
        Expr::CompoundIdentifier(parts) => parts
            .last()
            .is_some_and(|p| p.quote_style.is_none() && p.value.eq_ignore_ascii_case("tableoid")),
        Expr::Identifier(i) => i.quote_style.is_none() && i.value.eq_ignore_ascii_case("tableoid"),
        _ => false,
    }
}

impl TableOids<'_> {
    /// The oid of relation `name` (a catalog relation or Amber's).
    fn oid_of(&self, name: &ObjectName) -> Option<u32> {
        let parts: Vec<String> = name
            .0
            .iter()
            .filter_map(|p| p.as_ident().map(|i| i.value.to_lowercase()))
            .collect();
        match parts.as_slice() {
            [schema, table] if super::is_catalog_schema(schema) => {
                super::system_relation_oid(schema, table)
            }
            [schema, table] => (self.snapshot)().relation_oid(Some(schema), table),
            [table] => super::system_relation_oid("pg_catalog", table)
                .or_else(|| (self.snapshot)().relation_oid(None, table)),
            _ => None,
        }
    }
}

impl ast::VisitorMut for TableOids<'_> {
    type Break = ();
    fn pre_visit_query(&mut self, q: &mut ast::Query) -> ControlFlow<()> {
        self.in_set_expr(q.body.as_mut(), 0);
        ControlFlow::Continue(())
    }
}

impl TableOids<'_> {
    /// Each SELECT of a (possibly UNIONed) query body.
    fn in_set_expr(&self, body: &mut ast::SetExpr, depth: usize) {
        const SET_DEPTH_MAX: usize = 64;
        match body {
            ast::SetExpr::Select(select) => self.in_select(select),
            ast::SetExpr::SetOperation { left, right, .. } if depth < SET_DEPTH_MAX => {
                self.in_set_expr(left, depth + 1);
                self.in_set_expr(right, depth + 1);
            }
            _ => {}
        }
    }

    fn in_select(&self, select: &mut ast::Select) {
        // Each relation of FROM by the name the query gives it.
        let mut named: Vec<(String, u32)> = Vec::new();
        let mut factors: Vec<&ast::TableFactor> = Vec::new();
        for t in &select.from {
            factors.push(&t.relation);
            factors.extend(t.joins.iter().map(|j| &j.relation));
        }
        for f in factors {
            if let ast::TableFactor::Table {
                name,
                alias,
                args: None,
                ..
            } = f
            {
                if let Some(oid) = self.oid_of(name) {
                    let called = match alias {
                        Some(a) => a.name.value.to_lowercase(),
                        None => name
                            .0
                            .last()
                            .and_then(|p| p.as_ident())
                            .map(|i| i.value.to_lowercase())
                            .unwrap_or_default(),
                    };
                    named.push((called, oid));
                }
            }
        }
        if named.is_empty() {
            return;
        }
        let one = (named.len() == 1).then(|| named[0].1);
        let _ = ast::visit_expressions_mut(select, |e: &mut Expr| {
            if !is_tableoid(e) {
                return ControlFlow::<()>::Continue(());
            }
            let oid = match &*e {
                Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
                    let alias = parts[0].value.to_lowercase();
                    named.iter().find(|(n, _)| *n == alias).map(|(_, o)| *o)
                }
                Expr::Identifier(_) => one,
                _ => None,
            };
            if let Some(oid) = oid {
                *e = Expr::value(Value::Number(oid.to_string(), false));
            }
            ControlFlow::<()>::Continue(())
        });
    }
}

/// `SELECT 'pg_class'::regclass` (or `::regclass::text`): a reg* literal
/// shown as a select item prints as PostgreSQL prints it, its name; in a
/// comparison it stays the oid it names.
struct RegOutputs;

/// The reg* type of `'name'::reg*`, or of `'name'::reg*::text`.
fn reg_literal(e: &Expr) -> Option<(Reg, &Expr)> {
    let Expr::Cast {
        expr, data_type, ..
    } = e
    else {
        return None;
    };
    match target(data_type) {
        Some(Target::Reg(reg)) if string_literal(expr).is_some() => Some((reg, e)),
        Some(Target::Sql(DataType::Text)) | None
            if matches!(data_type, DataType::Text | DataType::Varchar(_)) =>
        {
            match expr.as_ref() {
                inner @ Expr::Cast {
                    expr: lit,
                    data_type: dt,
                    ..
                } => match target(dt) {
                    Some(Target::Reg(reg)) if string_literal(lit).is_some() => Some((reg, inner)),
                    _ => None,
                },
                _ => None,
            }
        }
        _ => None,
    }
}

impl ast::VisitorMut for RegOutputs {
    type Break = ();
    fn pre_visit_query(&mut self, q: &mut ast::Query) -> ControlFlow<()> {
        if let ast::SetExpr::Select(select) = q.body.as_mut() {
            for item in &mut select.projection {
                let (ast::SelectItem::UnnamedExpr(e)
                | ast::SelectItem::ExprWithAlias { expr: e, .. }) = item
                else {
                    continue;
                };
                let Some((reg, inner)) = reg_literal(e) else {
                    continue;
                };
                let inner = inner.clone();
                let out = match reg {
                    Reg::Class => REGCLASS_OUT,
                    Reg::Type => REGTYPE_OUT,
                    Reg::Proc => REGPROC_OUT,
                    Reg::Namespace => REGNAMESPACE_OUT,
                };
                *e = call(out, inner);
            }
        }
        ControlFlow::Continue(())
    }
}

/// Rewrites `stmt` in place; `snapshot` is asked for only when a reg*
/// literal needs resolving.
pub(crate) fn rewrite(
    stmt: &mut Statement,
    snapshot: &dyn Fn() -> Arc<Snapshot>,
) -> Result<(), SqlError> {
    let _ = ast::visit_relations_mut(stmt, |name: &mut ObjectName| {
        if is_qualified_table_function(name) {
            name.0.remove(0);
        }
        ControlFlow::<()>::Continue(())
    });
    let _ = ast::VisitMut::visit(
        stmt,
        &mut LateralFunctions {
            found: false,
            rewrite: true,
        },
    );
    let _ = ast::VisitMut::visit(stmt, &mut RegOutputs);
    let _ = ast::VisitMut::visit(stmt, &mut TableOids { snapshot });
    let mut failed: Option<SqlError> = None;
    let _ = ast::visit_expressions_mut(stmt, |e: &mut Expr| {
        if let Some(array) = array_text_cast(e) {
            *e = array;
            return ControlFlow::Continue(());
        }
        match e {
            Expr::Cast {
                expr, data_type, ..
            } => match target(data_type) {
                Some(Target::Sql(dt)) => *data_type = dt,
                Some(Target::Reg(reg)) => match string_literal(expr) {
                    Some(text) => match literal_oid(&snapshot(), reg, &text) {
                        Ok(oid) => *e = Expr::value(Value::Number(oid.to_string(), false)),
                        Err(err) => {
                            failed = Some(err);
                            return ControlFlow::Break(());
                        }
                    },
                    // A parameter is a name (or an oid) to look up.
                    None if matches!(
                        expr.as_ref(),
                        Expr::Value(ValueWithSpan {
                            value: Value::Placeholder(_),
                            ..
                        })
                    ) && reg == Reg::Class =>
                    {
                        let inner = std::mem::replace(expr.as_mut(), Expr::value(Value::Null));
                        *e = call(REGCLASS_IN, inner);
                    }
                    None => {
                        let name = match reg {
                            Reg::Class => REGCLASS_OUT,
                            Reg::Type => REGTYPE_OUT,
                            Reg::Proc => REGPROC_OUT,
                            Reg::Namespace => REGNAMESPACE_OUT,
                        };
                        let inner = std::mem::replace(expr.as_mut(), Expr::value(Value::Null));
                        *e = call(name, inner);
                    }
                },
                None => {}
            },
            Expr::BinaryOp { op, left, right } => {
                if let BinaryOperator::PGCustomBinaryOperator(parts) = op {
                    if let Some(o) = operator(parts) {
                        *op = o;
                    }
                }
                if matches!(op, BinaryOperator::Eq | BinaryOperator::NotEq) {
                    for side in [left, right] {
                        if let Some(a) = array_literal(side) {
                            **side = a;
                        }
                    }
                }
            }
            Expr::Collate { expr, .. } => {
                let inner = std::mem::replace(expr.as_mut(), Expr::value(Value::Null));
                *e = inner;
            }
            Expr::CompoundFieldAccess { root, access_chain } => {
                if let Some(chain) = record_field(root, access_chain) {
                    *access_chain = chain;
                }
                if let Some(chain) = vector_subscript(root, access_chain) {
                    *access_chain = chain;
                }
            }
            Expr::Like {
                pattern,
                escape_char,
                ..
            }
            | Expr::ILike {
                pattern,
                escape_char,
                ..
            } => {
                if let Some(escape) = other_escape(escape_char.as_ref()) {
                    let p = std::mem::replace(pattern.as_mut(), Expr::value(Value::Null));
                    let mut f = call(LIKE_ESCAPE, p);
                    if let Expr::Function(ast::Function {
                        args: ast::FunctionArguments::List(list),
                        ..
                    }) = &mut f
                    {
                        list.args
                            .push(ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(
                                Expr::value(Value::SingleQuotedString(escape)),
                            )));
                    }
                    **pattern = f;
                    *escape_char = None;
                }
            }
            Expr::Function(f) => {
                if f.name.0.len() == 2 && is_pg_catalog(&f.name) {
                    f.name.0.remove(0);
                }
                match last_name(&f.name).as_deref() {
                    // Each element with its position, as rows of (x, n).
                    Some("_pg_expandarray") => {
                        f.name =
                            ObjectName::from(vec![Ident::new(crate::array_functions::EXPANDARRAY)]);
                        let inner = std::mem::replace(e, Expr::value(Value::Null));
                        *e = call("unnest", inner);
                        return ControlFlow::Continue(());
                    }
                    // A relation's partition ancestors: itself (Amber has
                    // no partitions), as psql's `\d` asks for them.
                    Some("pg_partition_ancestors") => {
                        if let ast::FunctionArguments::List(list) = &f.args {
                            if let [a] = list.args.as_slice() {
                                if let Some(x) = parse_expr(&format!("CAST({a} AS BIGINT)")) {
                                    *e = x;
                                    return ControlFlow::Continue(());
                                }
                            }
                        }
                    }
                    // In a select list: the subscripts as rows, zipped
                    // with the other set-returning calls (unnest).
                    Some("generate_subscripts") => {
                        if let ast::FunctionArguments::List(list) = &f.args {
                            if let [a, d] = list.args.as_slice() {
                                let sql =
                                    format!("unnest(generate_series(1, array_length({a}, {d})))");
                                if let Ok(x) = datafusion::sql::sqlparser::parser::Parser::new(
                                    &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
                                )
                                .try_with_sql(&sql)
                                .and_then(|mut p| p.parse_expr())
                                {
                                    *e = x;
                                    return ControlFlow::Continue(());
                                }
                            }
                        }
                    }
                    // Amber's arrays are one-based: the upper bound is the
                    // length (NULL for an empty array, as PostgreSQL's).
                    Some("array_upper") => {
                        f.name = ObjectName::from(vec![Ident::new("array_length")]);
                    }
                    Some("array_lower") => {
                        let length = Expr::Function(ast::Function {
                            name: ObjectName::from(vec![Ident::new("array_length")]),
                            ..f.clone()
                        });
                        *e = Expr::Case {
                            case_token: ast::helpers::attached_token::AttachedToken::empty(),
                            end_token: ast::helpers::attached_token::AttachedToken::empty(),
                            operand: None,
                            conditions: vec![ast::CaseWhen {
                                condition: Expr::IsNotNull(Box::new(length)),
                                result: Expr::value(Value::Number("1".into(), false)),
                            }],
                            else_result: None,
                        };
                        return ControlFlow::Continue(());
                    }
                    _ => {}
                }
                if let Some(q) = array_subquery(f) {
                    *e = array_of(q.clone());
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `needed` and `rewrite` agree: each function `needed` looks for is
    /// one `rewrite` replaces.
    #[test]
    fn every_function_needed_is_rewritten() {
        let snapshot = || {
            Arc::new(Snapshot {
                modules: Vec::new(),
                search_path: Vec::new(),
                settings: Arc::default(),
                activity: Arc::default(),
                cache: Default::default(),
            })
        };
        for name in REWRITTEN_FUNCTIONS {
            let sql = match *name {
                "pg_partition_ancestors" | "_pg_expandarray" => format!("SELECT {name}(x) FROM t"),
                _ => format!("SELECT {name}(x, 1) FROM t"),
            };
            let mut stmt = datafusion::sql::sqlparser::parser::Parser::parse_sql(
                &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
                &sql,
            )
            .unwrap()
            .remove(0);
            assert!(needed(&stmt), "{name}: needed");
            let before = stmt.to_string();
            rewrite(&mut stmt, &snapshot).unwrap();
            assert_ne!(stmt.to_string(), before, "{name}: rewritten");
        }
    }

    #[test]
    fn like_patterns_with_other_escapes_become_backslash_patterns() {
        assert_eq!(like_pattern("pg/_%", "/"), "pg\\_%");
        assert_eq!(super::like_pattern("a\\b//", "/"), "a\\\\b\\/");
        assert_eq!(super::like_pattern("a\\b", ""), "a\\\\b");
        assert_eq!(super::like_pattern("x/", "/"), "x/");
    }
}
