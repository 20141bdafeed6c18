//! CHECK constraints of tables made by SQL: each expression is compiled
//! once (per class shape, cached by the session) into a DataFusion
//! physical expression over the table's columns, and evaluated on every
//! row written (INSERT, UPDATE, COPY). A row that makes one false is
//! PostgreSQL's 23514; NULL passes, as in PostgreSQL.

use crate::convert;
use crate::error::SqlError;
use amber_catalog::{CheckDef, ClassDef};
use datafusion::arrow::array::{Array, BooleanArray};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::DFSchema;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::{SessionConfig, SessionContext};
use serde_json::{Map, Value as Json};
use std::sync::{Arc, OnceLock};

/// Compiled checks by (module generation, class id).
pub(crate) type Cache = Vec<((u64, u64), Arc<Checks>)>;

/// The compiled checks of one class shape.
pub(crate) struct Checks {
    schema: SchemaRef,
    exprs: Vec<(String, Arc<dyn PhysicalExpr>)>,
}

/// A context for compiling check expressions: PostgreSQL's dialect,
/// decimals as Amber reads them; built once (it holds only built-ins).
fn context() -> &'static SessionContext {
    static CONTEXT: OnceLock<SessionContext> = OnceLock::new();
    CONTEXT.get_or_init(|| {
        let mut config = SessionConfig::new();
        config.options_mut().sql_parser.dialect = datafusion::config::Dialect::PostgreSQL;
        config.options_mut().sql_parser.parse_float_as_decimal = true;
        SessionContext::new_with_config(config)
    })
}

fn schema_of(class: &ClassDef) -> SchemaRef {
    Arc::new(Schema::new(
        class
            .columns
            .iter()
            .map(|c| Field::new(&c.name, convert::column_arrow_type(c), true))
            .collect::<Vec<_>>(),
    ))
}

/// Compiles `check` against `class`'s columns: 42703 for an unknown
/// column, 42804 when it is not boolean.
pub(crate) fn compile_one(
    class: &ClassDef,
    check: &CheckDef,
) -> Result<Arc<dyn PhysicalExpr>, SqlError> {
    let schema = schema_of(class);
    let df = DFSchema::try_from(schema.as_ref().clone())
        .map_err(|e| SqlError::internal(e.to_string()))?;
    let expr = context()
        .parse_sql_expr(&check.expr, &df)
        .map_err(|e| unknown_column(e.into(), class))?;
    let physical = context()
        .create_physical_expr(expr, &df)
        .map_err(|e| unknown_column(e.into(), class))?;
    let t = physical.data_type(&schema)?;
    if t != datafusion::arrow::datatypes::DataType::Boolean {
        let pg = crate::value::types::oid_of(&t);
        return Err(SqlError::new(
            "42804",
            format!(
                "argument of CHECK must be type boolean, not type {}",
                crate::pg_catalog::text::builtin_type_name(pg, None)
                    .unwrap_or_else(|| t.to_string())
            ),
        ));
    }
    Ok(physical)
}

/// DataFusion's "No field named x" as PostgreSQL's 42703.
fn unknown_column(e: SqlError, class: &ClassDef) -> SqlError {
    let Some(rest) = e.message.strip_prefix("No field named ") else {
        return e;
    };
    let name = rest.split(['.', ' ']).next().unwrap_or(rest);
    let name = name.trim_matches('"');
    if class.columns.iter().any(|c| c.name == name) {
        return e;
    }
    SqlError::new("42703", format!("column \"{name}\" does not exist"))
}

impl Checks {
    pub(crate) fn compile(class: &ClassDef) -> Result<Checks, SqlError> {
        let exprs = class
            .checks
            .iter()
            .map(|k| Ok((k.name.clone(), compile_one(class, k)?)))
            .collect::<Result<Vec<_>, SqlError>>()?;
        Ok(Checks {
            schema: schema_of(class),
            exprs,
        })
    }

    /// Checks one row (`obj`, canonical values by column name) of
    /// `class` of schema `schema`.
    pub(crate) fn verify(
        &self,
        schema: &str,
        class: &ClassDef,
        obj: &Map<String, Json>,
    ) -> Result<(), SqlError> {
        if self.exprs.is_empty() {
            return Ok(());
        }
        let mut columns = Vec::with_capacity(class.columns.len());
        for (c, f) in class.columns.iter().zip(self.schema.fields()) {
            let v = obj.get(&c.name).unwrap_or(&Json::Null);
            columns.push(convert::json_column(&c.ty, f.data_type(), &[v])?);
        }
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| SqlError::internal(e.to_string()))?;
        for (name, expr) in &self.exprs {
            let result = expr.evaluate(&batch)?.into_array(1)?;
            let failed = result
                .as_any()
                .downcast_ref::<BooleanArray>()
                .is_some_and(|b| b.is_valid(0) && !b.value(0));
            if failed {
                return Err(SqlError::new(
                    "23514",
                    format!(
                        "new row for relation \"{}\" violates check constraint \"{name}\"",
                        class.table
                    ),
                )
                .with_detail(Some(format!(
                    "Failing row contains ({}).",
                    row_text(class, obj)
                )))
                .with_table(schema, &class.table)
                .with_constraint(name));
            }
        }
        Ok(())
    }
}

/// A row as PostgreSQL's "Failing row contains" shows it.
fn row_text(class: &ClassDef, obj: &Map<String, Json>) -> String {
    class
        .columns
        .iter()
        .map(|c| match obj.get(&c.name) {
            None | Some(Json::Null) => "null".to_string(),
            Some(Json::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A stored check expression parsed (`None` if it no longer parses).
pub(crate) fn parse(expr: &str) -> Option<datafusion::sql::sqlparser::ast::Expr> {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(expr)
        .and_then(|mut p| p.parse_expr())
        .ok()
}

/// The plain identifiers (column names) `e` uses, each once, in order.
pub(crate) fn identifiers(e: &datafusion::sql::sqlparser::ast::Expr) -> Vec<String> {
    let mut named: Vec<String> = Vec::new();
    let _ = datafusion::sql::sqlparser::ast::visit_expressions(e, |x| {
        if let datafusion::sql::sqlparser::ast::Expr::Identifier(i) = x {
            let n = crate::session::ident_value(i);
            if !named.contains(&n) {
                named.push(n);
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    named
}

/// The columns check expression `expr` names.
pub(crate) fn columns_named(expr: &str) -> Vec<String> {
    parse(expr).map(|e| identifiers(&e)).unwrap_or_default()
}

/// Check expression `expr` with column `old` named `new`.
pub(crate) fn rename_column(expr: &str, old: &str, new: &str) -> String {
    let Some(mut e) = parse(expr) else {
        return expr.to_string();
    };
    let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(&mut e, |x| {
        if let datafusion::sql::sqlparser::ast::Expr::Identifier(i) = x {
            if crate::session::ident_value(i) == old {
                let plain = new
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                    && !new.starts_with(|c: char| c.is_ascii_digit());
                *i = match plain {
                    true => datafusion::sql::sqlparser::ast::Ident::new(new),
                    false => datafusion::sql::sqlparser::ast::Ident::with_quote('"', new),
                };
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    e.to_string()
}
