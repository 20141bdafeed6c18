//! `COMMENT ON TABLE | VIEW | COLUMN | SCHEMA ... IS '...' | NULL` of
//! tables and schemas made by SQL: the comment is part of the schema's
//! module (a new version, in the statement's transaction) and is what
//! pg_description, `obj_description` and psql's `\d+` show. A Python
//! module's objects are described by their docstrings instead.

use super::*;

/// Longest comment kept (PostgreSQL's limit is a field's 1 GB; a comment
/// travels in every catalog snapshot, so Amber keeps it small).
const COMMENT_BYTES_MAX: usize = 64 * 1024;

impl Ddl<'_> {
    pub(super) fn comment(
        &mut self,
        object_type: &ast::CommentObject,
        name: &ObjectName,
        comment: Option<&str>,
    ) -> Result<(), SqlError> {
        if comment.is_some_and(|c| c.len() > COMMENT_BYTES_MAX) {
            return Err(SqlError::new(
                "54000",
                format!("comments are limited to {COMMENT_BYTES_MAX} bytes"),
            ));
        }
        let comment = comment.map(str::to_string);
        match object_type {
            ast::CommentObject::Schema => {
                let schema = one_part(name)?;
                let module = self.sql_module(&schema)?.ok_or_else(|| {
                    SqlError::new("3F000", format!("schema \"{schema}\" does not exist"))
                })?;
                let mut shape = module.shape.clone();
                shape.comment = comment;
                self.store(&schema, Some(&module), shape)
            }
            ast::CommentObject::Table | ast::CommentObject::View => {
                let (schema, table) = self.to_find(name)?;
                let module = self.relation_module(&schema, &table, name)?;
                let mut shape = module.shape.clone();
                let described = match object_type {
                    ast::CommentObject::Table => shape
                        .classes
                        .iter_mut()
                        .find(|c| c.table == table)
                        .map(|c| c.comment = comment),
                    _ => shape
                        .views
                        .iter_mut()
                        .find(|v| v.name == table)
                        .map(|v| v.comment = comment),
                };
                if described.is_none() {
                    let kind = match object_type {
                        ast::CommentObject::Table => "a table",
                        _ => "a view",
                    };
                    return Err(SqlError::new("42809", format!("\"{table}\" is not {kind}")));
                }
                self.store(&schema, Some(&module), shape)
            }
            ast::CommentObject::Column => {
                let mut parts = name_parts(name);
                let column = parts
                    .pop()
                    .ok_or_else(|| SqlError::syntax("column name must be qualified"))?;
                if parts.is_empty() {
                    return Err(SqlError::syntax("column name must be qualified"));
                }
                let relation =
                    ObjectName::from(parts.into_iter().map(ast::Ident::new).collect::<Vec<_>>());
                let (schema, table) = self.to_find(&relation)?;
                let module = self.relation_module(&schema, &table, &relation)?;
                let mut shape = module.shape.clone();
                let Some(class) = shape.classes.iter_mut().find(|c| c.table == table) else {
                    return Err(SqlError::unsupported(
                        "COMMENT ON COLUMN of a view is not supported yet",
                    ));
                };
                let Some(col) = class.columns.iter_mut().find(|c| c.name == column) else {
                    return Err(SqlError::new(
                        "42703",
                        format!("column \"{column}\" of relation \"{relation}\" does not exist"),
                    ));
                };
                col.comment = comment;
                self.store(&schema, Some(&module), shape)
            }
            other => Err(SqlError::unsupported(format!(
                "COMMENT ON {other} is not supported yet"
            ))),
        }
    }

    /// The SQL module holding relation `schema.table`, written `written`
    /// (42P01 if none).
    fn relation_module(
        &self,
        schema: &str,
        table: &str,
        written: &ObjectName,
    ) -> Result<Arc<ModuleDef>, SqlError> {
        let missing = || SqlError::new("42P01", format!("relation \"{written}\" does not exist"));
        let module = self.module(schema)?.ok_or_else(missing)?;
        let has =
            module.table(table).is_some() || module.shape.views.iter().any(|v| v.name == table);
        if !has {
            return Err(missing());
        }
        if !module.sql_defined {
            return Err(SqlError::unsupported(format!(
                "\"{table}\" is a class of the Python module {schema}: its docstring is its comment"
            )));
        }
        Ok(module)
    }
}
