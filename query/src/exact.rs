//! Which numeric columns a statement may read as their exact stored text.
//!
//! DataFusion computes numerics as Decimal128 with one scale per column,
//! while a PostgreSQL numeric keeps its own scale per value (`100.50`).
//! A stored numeric column is read as its exact text, so it prints as
//! stored; every other use of it (filters, ordering, arithmetic, joins,
//! aggregates) is rewritten to `CAST(col AS DECIMAL(38, 10))`, so it
//! computes as a number ([`ExactNumeric::prepare`]). Where that rewrite
//! cannot be sure of a name (an alias, a non-numeric column of the same
//! name in scope, GROUP BY, DISTINCT, set operations, positional ORDER
//! BY), the column is read as Decimal128 throughout: its value is exact,
//! though trailing zeros may not be.

use datafusion::sql::sqlparser::ast::{
    self, CastKind, DataType, ExactNumberInfo, Expr, GroupByExpr, OrderByKind, Query, SelectItem,
    SetExpr, Statement, Value, Visit, VisitMut, Visitor, VisitorMut,
};
use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

#[derive(Debug, Clone, Default)]
pub struct ExactNumeric {
    enabled: bool,
    /// Lower-cased names used other than as a bare select item.
    used: HashSet<String>,
    /// Lower-cased function names called only as bare select items.
    bare_functions: HashSet<String>,
    /// Columns used through an alias of a select item (never rewritten).
    via_alias: HashSet<String>,
}

impl ExactNumeric {
    /// Every numeric column as Decimal128 (planning without a statement).
    pub fn none() -> ExactNumeric {
        ExactNumeric::default()
    }

    /// Every numeric column as exact text: rows computed outside
    /// DataFusion and sent as they are.
    pub fn all() -> ExactNumeric {
        ExactNumeric {
            enabled: true,
            used: HashSet::new(),
            bare_functions: HashSet::new(),
            via_alias: HashSet::new(),
        }
    }

    pub fn of_statement(stmt: &Statement) -> ExactNumeric {
        let mut v = Walk::default();
        let _ = stmt.visit(&mut v);
        if v.disabled {
            return ExactNumeric::none();
        }
        ExactNumeric::from_walk(&v)
    }

    /// Plans `query` so that numeric columns print exactly where output:
    /// every other reference to a column named in `numeric` (numeric in
    /// every class in scope) and not in `other` (a non-numeric column of
    /// the same name in scope) is rewritten into a cast to Decimal128.
    pub fn prepare(
        query: &mut Query,
        numeric: &HashSet<String>,
        other: &HashSet<String>,
    ) -> ExactNumeric {
        let mut v = Walk::default();
        let _ = Visit::visit(&*query, &mut v);
        if v.disabled {
            return ExactNumeric::none();
        }
        let mut exact = ExactNumeric::from_walk(&v);
        let aliases: HashSet<&String> = v.all_aliases.iter().collect();
        let castable: HashSet<String> = exact
            .used
            .iter()
            .filter(|n| {
                numeric.contains(*n)
                    && !other.contains(*n)
                    && !aliases.contains(n)
                    && !v.grouped.contains(*n)
                    && !exact.via_alias.contains(*n)
            })
            .cloned()
            .collect();
        if castable.is_empty() {
            return exact;
        }
        let _ = ast::visit_expressions_mut(query, |e: &mut Expr| {
            if column_name(e).is_some_and(|n| castable.contains(&n)) {
                *e = decimal_cast(e.clone());
            } else if let Expr::Cast {
                expr, data_type, ..
            } = e
            {
                // `price::text` is the stored text itself, as PostgreSQL
                // prints it, not the Decimal128's padded digits.
                if is_text(data_type) {
                    if let Some(column) = undo_decimal_cast(expr, &castable) {
                        **expr = column;
                    }
                }
            }
            ControlFlow::<()>::Continue(())
        });
        // Bare select items print the stored text: undo their cast.
        let mut restore = Restore {
            castable: &castable,
        };
        let _ = query.visit(&mut restore);
        exact.used.retain(|n| !castable.contains(n));
        exact
    }

    fn from_walk(v: &Walk) -> ExactNumeric {
        let mut used = HashSet::new();
        for (name, n) in &v.total {
            if *n > v.bare.get(name).copied().unwrap_or(0) {
                used.insert(name.clone());
            }
        }
        let mut via_alias = HashSet::new();
        for (alias, column) in &v.aliases {
            if v.total.get(alias).copied().unwrap_or(0) > v.bare.get(alias).copied().unwrap_or(0) {
                used.insert(column.clone());
                via_alias.insert(column.clone());
            }
        }
        let bare_functions = v
            .function_calls
            .iter()
            .filter(|(name, n)| v.bare_function_calls.get(*name) == Some(*n))
            .map(|(name, _)| name.clone())
            .collect();
        ExactNumeric {
            enabled: true,
            used,
            bare_functions,
            via_alias,
        }
    }

    /// Whether the numeric result of function `name` (`schema.function`)
    /// is exact text: it is only called as a bare select item.
    pub fn keeps_function(&self, name: &str) -> bool {
        self.enabled && self.bare_functions.contains(&name.to_lowercase())
    }

    /// Whether `column` is read as exact text.
    pub fn keeps(&self, column: &str) -> bool {
        self.enabled && !self.used.contains(&column.to_lowercase())
    }
}

#[derive(Default)]
struct Walk {
    disabled: bool,
    total: HashMap<String, usize>,
    bare: HashMap<String, usize>,
    aliases: Vec<(String, String)>,
    function_calls: HashMap<String, usize>,
    bare_function_calls: HashMap<String, usize>,
    /// Every select-item alias.
    all_aliases: Vec<String>,
    /// Names used in GROUP BY expressions.
    grouped: HashSet<String>,
}

/// `CAST(e AS DECIMAL(38, 10))`: how a numeric column read as exact text
/// computes.
fn decimal_cast(e: Expr) -> Expr {
    Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(e),
        data_type: DataType::Decimal(ExactNumberInfo::PrecisionAndScale(
            crate::convert::NUMERIC_PRECISION as u64,
            crate::convert::NUMERIC_SCALE as i64,
        )),
        array: false,
        format: None,
    }
}

/// The column inside a [`decimal_cast`] of a castable column.
fn undo_decimal_cast(e: &Expr, castable: &HashSet<String>) -> Option<Expr> {
    match e {
        Expr::Cast {
            kind: CastKind::Cast,
            expr: inner,
            data_type: DataType::Decimal(ExactNumberInfo::PrecisionAndScale(..)),
            format: None,
            ..
        } if column_name(inner).is_some_and(|n| castable.contains(&n)) => Some((**inner).clone()),
        _ => None,
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Text
            | DataType::Varchar(None)
            | DataType::CharacterVarying(None)
            | DataType::String(None)
    )
}

/// Undoes [`decimal_cast`] of bare select items.
struct Restore<'a> {
    castable: &'a HashSet<String>,
}

impl VisitorMut for Restore<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let SetExpr::Select(select) = query.body.as_mut() {
            for item in select.projection.iter_mut() {
                let expr = match item {
                    SelectItem::UnnamedExpr(e) => e,
                    SelectItem::ExprWithAlias { expr, .. } => expr,
                    _ => continue,
                };
                if let Some(column) = undo_decimal_cast(expr, self.castable) {
                    *expr = column;
                }
            }
        }
        ControlFlow::Continue(())
    }
}

fn column_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(i) => Some(i.value.to_lowercase()),
        Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.to_lowercase()),
        _ => None,
    }
}

fn is_position(e: &Expr) -> bool {
    matches!(e, Expr::Value(v) if matches!(v.value, Value::Number(..)))
}

impl Visitor for Walk {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(order_by) = &query.order_by {
            if let OrderByKind::Expressions(items) = &order_by.kind {
                if items.iter().any(|o| is_position(&o.expr)) {
                    self.disabled = true;
                }
            } else {
                self.disabled = true;
            }
        }
        match query.body.as_ref() {
            SetExpr::Select(select) => {
                if select.distinct.is_some() {
                    self.disabled = true;
                }
                match &select.group_by {
                    GroupByExpr::Expressions(exprs, _) => {
                        if exprs.iter().any(is_position) {
                            self.disabled = true;
                        }
                        for e in exprs {
                            let _ = ast::visit_expressions(e, |x: &Expr| {
                                if let Some(n) = column_name(x) {
                                    self.grouped.insert(n);
                                }
                                ControlFlow::<()>::Continue(())
                            });
                        }
                    }
                    GroupByExpr::All(_) => self.disabled = true,
                }
                for item in &select.projection {
                    let (expr, alias) = match item {
                        SelectItem::UnnamedExpr(e) => (e, None),
                        SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias)),
                        _ => continue,
                    };
                    if let Expr::Function(f) = expr {
                        *self
                            .bare_function_calls
                            .entry(f.name.to_string().to_lowercase())
                            .or_default() += 1;
                    }
                    if let Some(a) = alias {
                        self.all_aliases.push(a.value.to_lowercase());
                    }
                    if let Some(name) = column_name(expr) {
                        *self.bare.entry(name.clone()).or_default() += 1;
                        if let Some(a) = alias {
                            self.aliases.push((a.value.to_lowercase(), name));
                        }
                    }
                }
            }
            SetExpr::SetOperation { .. } => self.disabled = true,
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = expr {
            *self
                .function_calls
                .entry(f.name.to_string().to_lowercase())
                .or_default() += 1;
        }
        if let Some(name) = column_name(expr) {
            *self.total.entry(name).or_default() += 1;
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn exact(sql: &str) -> ExactNumeric {
        let stmt = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        ExactNumeric::of_statement(&stmt)
    }

    fn prepared(sql: &str) -> (String, ExactNumeric) {
        let stmt = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        let Statement::Query(mut q) = stmt else {
            panic!("query")
        };
        let numeric = HashSet::from(["price".to_string()]);
        let other = HashSet::from(["name".to_string()]);
        let e = ExactNumeric::prepare(&mut q, &numeric, &other);
        (q.to_string(), e)
    }

    #[test]
    fn other_uses_of_exact_columns_compute_as_decimals() {
        let (sql, e) = prepared("SELECT name, price FROM t WHERE price > 1 ORDER BY price DESC");
        assert!(e.keeps("price"));
        assert_eq!(
            sql,
            "SELECT name, price FROM t WHERE CAST(price AS DECIMAL(38,10)) > 1 ORDER BY CAST(price AS DECIMAL(38,10)) DESC"
        );
        let (sql, _) = prepared("SELECT price::text FROM t WHERE price > 0");
        assert_eq!(
            sql,
            "SELECT price::TEXT FROM t WHERE CAST(price AS DECIMAL(38,10)) > 0"
        );
        let (sql, e) = prepared("SELECT sum(price) FROM t");
        assert!(e.keeps("price"));
        assert_eq!(sql, "SELECT sum(CAST(price AS DECIMAL(38,10))) FROM t");
        // GROUP BY and aliases keep the Decimal128 column.
        let (sql, e) = prepared("SELECT price, count(*) FROM t GROUP BY price");
        assert!(!e.keeps("price"));
        assert_eq!(sql, "SELECT price, count(*) FROM t GROUP BY price");
        let (_, e) = prepared("SELECT price AS p FROM t ORDER BY p");
        assert!(!e.keeps("price"));
    }

    #[test]
    fn only_output_columns_are_exact() {
        assert!(exact("SELECT price FROM t").keeps("price"));
        assert!(exact("SELECT * FROM t WHERE id > 3").keeps("price"));
        assert!(exact("SELECT t.price AS p FROM t").keeps("price"));
        assert!(!exact("SELECT price FROM t WHERE price > 1").keeps("price"));
        assert!(!exact("SELECT price, price * 2 FROM t").keeps("price"));
        assert!(!exact("SELECT sum(price) FROM t").keeps("price"));
        assert!(!exact("SELECT price AS p FROM t ORDER BY p").keeps("price"));
        assert!(!exact("SELECT price FROM t ORDER BY 1").keeps("price"));
        assert!(!exact("SELECT DISTINCT price FROM t").keeps("price"));
        assert!(!exact("SELECT price FROM t UNION SELECT price FROM u").keeps("price"));
        assert!(!exact("SELECT * FROM t ORDER BY price").keeps("price"));
        assert!(!exact("SELECT x FROM (SELECT price AS x FROM t) s WHERE x > 0").keeps("price"));
        assert!(exact("SELECT price FROM t WHERE other > 1").keeps("price"));
        assert!(!ExactNumeric::none().keeps("price"));
        assert!(exact("SELECT m.f($1)").keeps_function("m.f"));
        assert!(!exact("SELECT m.f($1) + 1").keeps_function("m.f"));
        assert!(!exact("SELECT x FROM t WHERE m.f(x) > 0").keeps_function("m.f"));
    }
}
