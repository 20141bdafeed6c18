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

/// First parts of the schema-qualified tables and functions `stmt` names:
/// the candidates for module names. Unqualified names never name a module
/// object.
pub fn referenced(stmt: &Statement) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut add = |name: &ObjectName| {
        if let Some((schema, _)) = split_qualified(name) {
            out.insert(schema);
        }
    };
    let _ = ast::visit_relations(stmt, |name: &ObjectName| {
        add(name);
        ControlFlow::<()>::Continue(())
    });
    let _ = ast::visit_expressions(stmt, |e: &Expr| {
        if let Expr::Function(f) = e {
            add(&f.name);
        }
        ControlFlow::<()>::Continue(())
    });
    if let Statement::Call(f) = stmt {
        add(&f.name);
    }
    if let Statement::Copy {
        source: ast::CopySource::Table { table_name, .. },
        ..
    } = stmt
    {
        add(table_name);
    }
    out
}

/// The modules `stmt` uses, as `txn` sees them; every module when it reads
/// `amber.modules`.
pub fn resolve(catalog: &Catalog, txn: &Txn, stmt: &Statement) -> Result<ModuleSet, SqlError> {
    let names = referenced(stmt);
    Ok(if names.contains(AMBER_SCHEMA) {
        catalog.resolve_all(txn)?
    } else {
        catalog.resolve_set(txn, names.iter().map(String::as_str))?
    })
}
