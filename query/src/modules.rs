//! Which modules a statement uses: names it mentions, resolved through its
//! transaction (so a statement sees the module versions of its snapshot).

use crate::error::SqlError;
use crate::session::split_qualified;
use amber_catalog::{Catalog, ModuleSet};
use amber_storage::Txn;
use datafusion::sql::sqlparser::ast::{self, Expr, ObjectName, Statement};
use std::collections::BTreeSet;
use std::ops::ControlFlow;

/// The schema `amber` lists every module (`amber.modules`).
const AMBER_SCHEMA: &str = "amber";

/// Statements reading pg_catalog read every module (`pg_catalog/`).
const CATALOG_SCHEMA: &str = "pg_catalog";

/// The schema made by SQL that always exists (created with its first
/// table), as PostgreSQL's `public`.
pub const PUBLIC_SCHEMA: &str = "public";

/// First parts of the schema-qualified tables and functions `stmt` names:
/// the candidates for module names; an unqualified table name may name a
/// table of any schema of `search_path` (tables created by SQL), and so
/// may `current_schema()` read them. Unqualified function names never name
/// a module function.
pub fn referenced(stmt: &Statement, search_path: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut unqualified = false;
    let _ = ast::visit_relations(stmt, |name: &ObjectName| {
        match split_qualified(name) {
            Some((schema, _)) => {
                out.insert(schema);
            }
            None => {
                unqualified = true;
                if let Some(ast::ObjectNamePart::Identifier(i)) = name.0.last() {
                    if crate::pg_catalog::is_pg_catalog_relation(&i.value.to_lowercase()) {
                        out.insert(CATALOG_SCHEMA.to_string());
                    }
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
    // One pass over the expressions: catalog functions and reg* casts
    // read every module; `current_schema()` reads search_path; a qualified
    // function names its module.
    let _ = ast::visit_expressions(stmt, |e: &Expr| {
        match e {
            Expr::Function(f) => {
                if let Some(ast::ObjectNamePart::Identifier(i)) = f.name.0.last() {
                    let last = i.value.to_lowercase();
                    if crate::pg_catalog::functions::is_catalog_function(&last) {
                        out.insert(CATALOG_SCHEMA.to_string());
                    }
                    if last == "current_schema" || last == "current_schemas" {
                        unqualified = true;
                    }
                }
                if let Some((schema, _)) = split_qualified(&f.name) {
                    out.insert(schema);
                }
            }
            Expr::Cast { .. } if crate::pg_catalog::rewrite::needed_expr(e) => {
                out.insert(CATALOG_SCHEMA.to_string());
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    if unqualified {
        out.extend(search_path.iter().cloned());
    }
    let mut add = |name: &ObjectName| {
        if let Some((schema, _)) = split_qualified(name) {
            out.insert(schema);
        }
    };
    if let Statement::Call(f) = stmt {
        add(&f.name);
    }
    if let Statement::Copy {
        source: ast::CopySource::Table { table_name, .. },
        ..
    } = stmt
    {
        match split_qualified(table_name) {
            Some(_) => add(table_name),
            None => out.extend(search_path.iter().cloned()),
        }
    }
    out
}

/// The modules `stmt` uses, as `txn` sees them; every module when it reads
/// `amber.modules`.
pub fn resolve(
    catalog: &Catalog,
    txn: &Txn,
    stmt: &Statement,
    search_path: &[String],
) -> Result<ModuleSet, SqlError> {
    let names = referenced(stmt, search_path);
    if names.contains(AMBER_SCHEMA)
        || names
            .iter()
            .any(|n| crate::pg_catalog::is_catalog_schema(n))
    {
        return Ok(catalog.resolve_all(txn)?);
    }
    let mut names = names;
    // A view's query may name other schemas: those modules join the
    // statement's. Bounded: each round adds a module or stops, and a
    // statement resolves at most VIEW_SCHEMAS_MAX of them this way.
    const VIEW_SCHEMAS_MAX: usize = 64;
    loop {
        let set = catalog.resolve_set(txn, names.iter().map(String::as_str))?;
        let before = names.len();
        for m in set.iter() {
            for v in &m.shape.views {
                names.extend(v.references.iter().cloned());
            }
        }
        if names.len() == before || names.len() > before + VIEW_SCHEMAS_MAX {
            return Ok(set);
        }
    }
}
