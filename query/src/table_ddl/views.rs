//! CREATE VIEW, DROP VIEW, and the views a dropped table takes along.

use super::*;

impl Ddl<'_> {
    /// The views that read `target` (schema, relation): dropped with
    /// CASCADE, else 2BP01 as PostgreSQL refuses. Bounded: each round
    /// drops one view, and views are finite.
    pub(super) fn drop_dependent_views(
        &mut self,
        target: &(String, String),
        what: &str,
        cascade: bool,
    ) -> Result<(), SqlError> {
        loop {
            let all = self.engine.catalog.resolve_all(self.txn)?;
            let dependent = all.iter().find_map(|m| {
                m.shape
                    .views
                    .iter()
                    .find(|v| v.tables.contains(target))
                    .map(|v| (m.name.clone(), v.name.clone()))
            });
            let Some((schema, view)) = dependent else {
                return Ok(());
            };
            if !cascade {
                return Err(SqlError::new(
                    "2BP01",
                    format!("cannot drop {what} because other objects depend on it"),
                )
                .with_detail(Some(format!("view {view} depends on {what}"))));
            }
            self.drop_view_named(&schema, &view, false, true)?;
        }
    }

    pub(super) fn create_view(
        &mut self,
        cv: &ast::CreateView,
        view: ViewShape,
    ) -> Result<(), SqlError> {
        if cv.materialized || cv.temporary {
            return Err(SqlError::unsupported(
                "materialized and temporary views are not supported yet",
            ));
        }
        let (schema, name) = self.to_create(&cv.name)?;
        reserved_schema(&schema)?;
        let module = self.sql_module(&schema)?;
        if module.is_none() && schema != PUBLIC_SCHEMA {
            return Err(SqlError::new(
                "3F000",
                format!("schema \"{schema}\" does not exist"),
            ));
        }
        let mut shape = module
            .as_ref()
            .map(|m| m.shape.clone())
            .unwrap_or_else(empty_shape);
        if shape.classes.iter().any(|c| c.table == name) {
            return Err(SqlError::new(
                "42P07",
                format!("relation \"{name}\" already exists"),
            ));
        }
        // CREATE OR REPLACE keeps the view's comment, as PostgreSQL does.
        let mut comment = None;
        if let Some(old) = shape.views.iter().position(|v| v.name == name) {
            if cv.if_not_exists {
                return Ok(());
            }
            if !cv.or_replace {
                return Err(SqlError::new(
                    "42P07",
                    format!("relation \"{name}\" already exists"),
                ));
            }
            comment = shape.views.remove(old).comment;
        }
        if view.tables.contains(&(schema.clone(), name.clone())) {
            return Err(SqlError::new(
                "42P17",
                format!("infinite recursion detected in rules for relation \"{name}\""),
            ));
        }
        let columns = if cv.columns.is_empty() {
            view.columns
        } else if cv.columns.len() > view.columns.len() {
            return Err(SqlError::new(
                "42601",
                "CREATE VIEW specifies more column names than columns",
            ));
        } else {
            let mut named: Vec<String> = cv.columns.iter().map(|c| ident_value(&c.name)).collect();
            named.extend(view.columns.into_iter().skip(cv.columns.len()));
            named
        };
        shape.views.push(amber_catalog::ViewDef {
            name,
            sql: cv.query.to_string(),
            columns,
            references: view.references,
            tables: view.tables,
            oid: 0,
            type_oid: 0,
            comment,
        });
        self.store(&schema, module.as_deref(), shape)
    }

    pub(super) fn drop_view(
        &mut self,
        name: &ObjectName,
        if_exists: bool,
        cascade: bool,
    ) -> Result<(), SqlError> {
        let (schema, view) = self.to_find(name)?;
        self.drop_view_named(&schema, &view, if_exists, cascade)
    }

    pub(super) fn drop_view_named(
        &mut self,
        schema: &str,
        view: &str,
        if_exists: bool,
        cascade: bool,
    ) -> Result<(), SqlError> {
        let module = self.module(schema)?;
        let Some(module) = module.filter(|m| m.shape.views.iter().any(|v| v.name == view)) else {
            if if_exists {
                return Ok(());
            }
            return Err(SqlError::new(
                "42P01",
                format!("view \"{view}\" does not exist"),
            ));
        };
        let target = (schema.to_string(), view.to_string());
        self.drop_dependent_views(&target, &format!("view {view}"), cascade)?;
        let module = self.module(schema)?.unwrap_or(module);
        let mut shape = module.shape.clone();
        shape.views.retain(|v| v.name != view);
        self.store(schema, Some(&module), shape)
    }
}
