//! Which numeric columns a statement may read as their exact stored text.
//!
//! DataFusion computes numerics as Decimal128 with one scale per column,
//! while a PostgreSQL numeric keeps its own scale per value (`100.50`).
//! A column that a statement only outputs (a bare select item, or `*`)
//! is read as its exact text and printed as stored; a column used in any
//! other way (filters, arithmetic, joins, ordering, grouping, functions)
//! is read as Decimal128, so computing with it works and its value is
//! exact, though trailing zeros may not be. The analysis is syntactic and
//! errs toward Decimal128: a name used anywhere else, an alias of it used
//! anywhere, positional ORDER/GROUP BY, DISTINCT and set operations turn
//! exact text off.

use datafusion::sql::sqlparser::ast::{
    Expr, GroupByExpr, OrderByKind, Query, SelectItem, SetExpr, Statement, Value, Visit, Visitor,
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
        }
    }

    pub fn of_statement(stmt: &Statement) -> ExactNumeric {
        let mut v = Walk::default();
        let _ = stmt.visit(&mut v);
        if v.disabled {
            return ExactNumeric::none();
        }
        let mut used = HashSet::new();
        for (name, n) in &v.total {
            if *n > v.bare.get(name).copied().unwrap_or(0) {
                used.insert(name.clone());
            }
        }
        for (alias, column) in &v.aliases {
            if v.total.get(alias).copied().unwrap_or(0) > v.bare.get(alias).copied().unwrap_or(0) {
                used.insert(column.clone());
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
