//! Tables, schemas and indexes made by SQL DDL (SPEC §3: "Plain CREATE
//! TABLE also works"). A schema made by SQL is a module whose classes are
//! its tables; Amber writes the module's Python source from them, so
//! `amber.modules` lists it like any other. A table made by SQL has
//! exactly its declared columns: the object id is hidden
//! ([`ClassDef::hidden_id`]).
//!
//! Each statement writes a new version of the schema's module in the
//! statement's transaction (the path `CREATE MODULE` takes: a concurrent
//! user of the old version fails at COMMIT with 40001), and is published
//! to other sessions when that transaction commits.

use crate::convert;
use crate::ddl::Deployed;
use crate::error::SqlError;
use crate::modules::PUBLIC_SCHEMA;
use crate::session::{ident_value, name_parts, Engine, Output};
use crate::unique;
use crate::value::Settings;
use amber_catalog::{
    class_prefix, class_range_end, Catalog, ClassDef, ColumnDef, ForeignKeyDef, IndexDef,
    ModuleDef, ModuleShape, SqlType,
};
use amber_storage::Txn;
use datafusion::sql::sqlparser::ast::{
    self, ColumnOption, DataType as AstType, ObjectName, ObjectType, Statement, TableConstraint,
};
use serde_json::Value as Json;
use std::sync::Arc;

/// Most columns a table may declare (PostgreSQL's limit).
const COLUMNS_MAX: usize = 1600;

/// Whether `stmt` is DDL this module runs.
pub(crate) fn is_table_ddl(stmt: &Statement) -> bool {
    match stmt {
        Statement::CreateTable(_)
        | Statement::CreateIndex(_)
        | Statement::CreateSchema { .. }
        | Statement::CreateView(_)
        | Statement::Truncate(_) => true,
        Statement::Drop { object_type, .. } => matches!(
            object_type,
            ObjectType::Table | ObjectType::Index | ObjectType::Schema | ObjectType::View
        ),
        _ => false,
    }
}

/// What planning a CREATE VIEW's query found (the session plans it, in
/// the statement's catalog, before the DDL runs).
pub(crate) struct ViewShape {
    pub columns: Vec<String>,
    pub references: Vec<String>,
    pub tables: Vec<(String, String)>,
}

/// Runs table DDL `stmt` in `txn`; the module versions it wrote are
/// published by the caller once `txn` commits. `view`: for CREATE VIEW,
/// what its query's plan gave.
pub(crate) fn execute(
    engine: &Arc<Engine>,
    txn: &mut Txn,
    stmt: &Statement,
    settings: &Settings,
    view: Option<ViewShape>,
    search_path: &[String],
) -> Result<(Output, Vec<Deployed>), SqlError> {
    let mut ddl = Ddl {
        engine,
        txn,
        deployed: Vec::new(),
        search_path,
    };
    let tag = match stmt {
        Statement::CreateTable(ct) => {
            ddl.create_table(ct, settings)?;
            "CREATE TABLE"
        }
        Statement::CreateIndex(ci) => {
            ddl.create_index(ci)?;
            "CREATE INDEX"
        }
        Statement::Truncate(t) => {
            ddl.truncate(t)?;
            "TRUNCATE TABLE"
        }
        Statement::CreateView(cv) => {
            let shape = view.ok_or_else(|| SqlError::internal("CREATE VIEW without its plan"))?;
            ddl.create_view(cv, shape)?;
            "CREATE VIEW"
        }
        Statement::CreateSchema {
            schema_name,
            if_not_exists,
            ..
        } => {
            let name = match schema_name {
                ast::SchemaName::Simple(n) => one_part(n)?,
                _ => return Err(SqlError::unsupported("CREATE SCHEMA ... AUTHORIZATION")),
            };
            ddl.create_schema(&name, *if_not_exists)?;
            "CREATE SCHEMA"
        }
        Statement::Drop {
            object_type,
            if_exists,
            names,
            cascade,
            ..
        } => {
            for name in names {
                match object_type {
                    ObjectType::Table => ddl.drop_table(name, *if_exists, *cascade)?,
                    ObjectType::Index => ddl.drop_index(name, *if_exists)?,
                    ObjectType::Schema => ddl.drop_schema(name, *if_exists, *cascade)?,
                    ObjectType::View => ddl.drop_view(name, *if_exists, *cascade)?,
                    _ => return Err(SqlError::internal("not table DDL")),
                }
            }
            match object_type {
                ObjectType::Table => "DROP TABLE",
                ObjectType::Index => "DROP INDEX",
                ObjectType::View => "DROP VIEW",
                _ => "DROP SCHEMA",
            }
        }
        _ => return Err(SqlError::internal("not table DDL")),
    };
    Ok((Output::Command(tag.into()), ddl.deployed))
}

struct Ddl<'a> {
    engine: &'a Arc<Engine>,
    txn: &'a mut Txn,
    deployed: Vec<Deployed>,
    search_path: &'a [String],
}

impl Ddl<'_> {
    /// `(schema, name)` of a relation to create: an unqualified name goes
    /// to the first schema of search_path that exists (`public` always
    /// does), as in PostgreSQL.
    fn to_create(&self, name: &ObjectName) -> Result<(String, String), SqlError> {
        match name_parts(name).as_slice() {
            [t] => {
                for s in self.search_path {
                    if s == PUBLIC_SCHEMA || self.module(s)?.is_some() {
                        return Ok((s.clone(), t.clone()));
                    }
                }
                Err(SqlError::new(
                    "3F000",
                    "no schema has been selected to create in",
                ))
            }
            _ => schema_and_name(name),
        }
    }

    /// `(schema, name)` of an existing relation (or index): an unqualified
    /// name is looked up along search_path (the first schema when no one
    /// has it, for the error).
    fn to_find(&self, name: &ObjectName) -> Result<(String, String), SqlError> {
        match name_parts(name).as_slice() {
            [t] => {
                for s in self.search_path {
                    if let Some(m) = self.module(s)? {
                        let has = m.table(t).is_some()
                            || m.shape.views.iter().any(|v| &v.name == t)
                            || m.shape
                                .classes
                                .iter()
                                .any(|c| c.indexes.iter().any(|i| &i.name == t));
                        if has {
                            return Ok((s.clone(), t.clone()));
                        }
                    }
                }
                let first = self.search_path.first().cloned();
                Ok((
                    first.unwrap_or_else(|| PUBLIC_SCHEMA.to_string()),
                    t.clone(),
                ))
            }
            _ => schema_and_name(name),
        }
    }

    /// The module of `schema` as this transaction sees it.
    fn module(&self, schema: &str) -> Result<Option<Arc<ModuleDef>>, SqlError> {
        Ok(self.engine.catalog.resolve(self.txn, schema)?)
    }

    /// A module of `schema` that SQL DDL may change (42P06 for a module
    /// defined by Python source: its classes come from its code).
    fn sql_module(&self, schema: &str) -> Result<Option<Arc<ModuleDef>>, SqlError> {
        let Some(m) = self.module(schema)? else {
            return Ok(None);
        };
        if !m.sql_defined {
            return Err(SqlError::new(
                "0A000",
                format!(
                    "schema \"{schema}\" is the Python module {schema}: its tables are the classes of its source"
                ),
            )
            .with_detail(Some(
                "Add the class to the module's source (CREATE OR REPLACE MODULE), or create the table in another schema.".into(),
            )));
        }
        Ok(Some(m))
    }

    /// Writes `shape` as the next version of SQL schema `name`.
    fn store(
        &mut self,
        name: &str,
        old: Option<&ModuleDef>,
        shape: ModuleShape,
    ) -> Result<(), SqlError> {
        let mut def = ModuleDef {
            name: name.to_string(),
            version: old.map(|m| m.version + 1).unwrap_or(1),
            generation: self.engine.store.allocate_oid()?,
            source: python_source(name, &shape),
            sql_defined: true,
            deployed_at: chrono::Utc::now().to_rfc3339(),
            oid: 0,
            shape,
        };
        let store = &self.engine.store;
        def.assign_oids(old, &mut || crate::ddl::catalog_oid(store))?;
        debug_assert!(def.has_oids());
        Catalog::store_module(self.txn, &def)?;
        tracing::info!(schema = name, generation = def.generation, "schema changed");
        self.deployed.push(Deployed::new(
            name.to_string(),
            def.generation,
            Some(Arc::new(def)),
        ));
        Ok(())
    }

    fn create_schema(&mut self, name: &str, if_not_exists: bool) -> Result<(), SqlError> {
        reserved_schema(name)?;
        if self.module(name)?.is_some() {
            if if_not_exists {
                return Ok(());
            }
            return Err(SqlError::new(
                "42P06",
                format!("schema \"{name}\" already exists"),
            ));
        }
        self.store(name, None, empty_shape())
    }

    fn drop_schema(
        &mut self,
        name: &ObjectName,
        if_exists: bool,
        cascade: bool,
    ) -> Result<(), SqlError> {
        let name = one_part(name)?;
        let Some(module) = self.module(&name)? else {
            if if_exists {
                return Ok(());
            }
            return Err(SqlError::new(
                "3F000",
                format!("schema \"{name}\" does not exist"),
            ));
        };
        if !module.sql_defined {
            return Err(SqlError::new(
                "0A000",
                format!("schema \"{name}\" is the Python module {name}: drop it with DROP MODULE"),
            ));
        }
        let first = module
            .shape
            .classes
            .first()
            .map(|c| format!("table {name}.{}", c.table))
            .or_else(|| {
                module
                    .shape
                    .views
                    .first()
                    .map(|v| format!("view {name}.{}", v.name))
            });
        if let (false, Some(first)) = (cascade, first) {
            return Err(SqlError::new(
                "2BP01",
                format!("cannot drop schema {name} because other objects depend on it"),
            )
            .with_detail(Some(format!("{first} depends on schema {name}"))));
        }
        // Views of other schemas that read its tables or views go too
        // (CASCADE), as in PostgreSQL.
        let relations: Vec<String> = module
            .shape
            .classes
            .iter()
            .map(|c| c.table.clone())
            .chain(module.shape.views.iter().map(|v| v.name.clone()))
            .collect();
        for r in relations {
            self.drop_dependent_views(&(name.clone(), r.clone()), &format!("{name}.{r}"), true)?;
        }
        let module = self.module(&name)?.unwrap_or(module);
        for class in &module.shape.classes {
            self.delete_data(class)?;
        }
        Catalog::delete_module(self.txn, &name)?;
        self.deployed
            .push(Deployed::new(name.clone(), module.generation, None));
        Ok(())
    }

    fn create_table(&mut self, ct: &ast::CreateTable, settings: &Settings) -> Result<(), SqlError> {
        refuse_options(ct)?;
        let (schema, table) = self.to_create(&ct.name)?;
        reserved_schema(&schema)?;
        let module = self.sql_module(&schema)?;
        if let Some(m) = &module {
            if m.table(&table).is_some() || m.shape.views.iter().any(|v| v.name == table) {
                if ct.if_not_exists {
                    return Ok(());
                }
                return Err(SqlError::new(
                    "42P07",
                    format!("relation \"{table}\" already exists"),
                ));
            }
        } else if schema != PUBLIC_SCHEMA {
            return Err(SqlError::new(
                "3F000",
                format!("schema \"{schema}\" does not exist"),
            ));
        }
        if ct.columns.len() > COLUMNS_MAX {
            return Err(SqlError::new(
                "54011",
                format!("tables can have at most {COLUMNS_MAX} columns"),
            ));
        }
        let mut columns: Vec<ColumnDef> = Vec::with_capacity(ct.columns.len());
        let mut keys: Vec<(Option<String>, Vec<String>, bool)> = Vec::new();
        let mut foreign_keys: Vec<ForeignKeyClause> = Vec::new();
        for (i, c) in ct.columns.iter().enumerate() {
            let name = ident_value(&c.name);
            if name.starts_with("__amber") {
                return Err(SqlError::new(
                    "42939",
                    format!("column name \"{name}\" is reserved"),
                ));
            }
            if columns.iter().any(|k| k.name == name) {
                return Err(SqlError::new(
                    "42701",
                    format!("column \"{name}\" specified more than once"),
                ));
            }
            let serial = is_serial(&c.data_type);
            let ty = match serial {
                true => SqlType::Int8,
                false => sql_type(&c.data_type)?,
            };
            let mut col = ColumnDef {
                id: u32::try_from(i + 1).unwrap_or(u32::MAX),
                name: name.clone(),
                ty,
                nullable: !serial,
                has_default: false,
                default: Json::Null,
                sequence: None,
                identity_always: false,
                default_oid: 0,
                fkey_oid: 0,
                references: None,
            };
            if serial {
                col.sequence = Some(self.engine.store.allocate_oid()?);
            }
            for opt in &c.options {
                let constraint = opt.name.as_ref().map(ident_value);
                match &opt.option {
                    ColumnOption::Null => col.nullable = true,
                    ColumnOption::NotNull => col.nullable = false,
                    ColumnOption::Default(e) => {
                        col.default = default_value(&col, e, settings)?;
                        col.has_default = !col.default.is_null();
                    }
                    ColumnOption::PrimaryKey(_) => {
                        col.nullable = false;
                        keys.push((constraint, vec![name.clone()], true));
                    }
                    ColumnOption::Unique(_) => keys.push((constraint, vec![name.clone()], false)),
                    ColumnOption::ForeignKey(fk) => foreign_keys.push(ForeignKeyClause::new(
                        constraint,
                        vec![name.clone()],
                        fk,
                    )?),
                    ColumnOption::Comment(_) => {}
                    ColumnOption::Generated {
                        generated_as:
                            generated @ (ast::GeneratedAs::Always | ast::GeneratedAs::ByDefault),
                        generation_expr: None,
                        ..
                    } => {
                        if col.ty != SqlType::Int8 {
                            return Err(SqlError::new(
                                "42611",
                                "identity column type must be smallint, integer, or bigint",
                            ));
                        }
                        col.nullable = false;
                        col.sequence = Some(self.engine.store.allocate_oid()?);
                        col.identity_always = matches!(generated, ast::GeneratedAs::Always);
                    }
                    other => {
                        return Err(SqlError::unsupported(format!(
                            "column option {other} is not supported yet"
                        )))
                    }
                }
            }
            columns.push(col);
        }
        for tc in &ct.constraints {
            match tc {
                TableConstraint::PrimaryKey(pk) => keys.push((
                    pk.name.as_ref().map(ident_value),
                    index_columns(&pk.columns)?,
                    true,
                )),
                TableConstraint::Unique(u) => keys.push((
                    u.name.as_ref().map(ident_value),
                    index_columns(&u.columns)?,
                    false,
                )),
                TableConstraint::ForeignKey(fk) => foreign_keys.push(ForeignKeyClause::new(
                    fk.name.as_ref().map(ident_value),
                    fk.columns.iter().map(ident_value).collect(),
                    fk,
                )?),
                other => {
                    return Err(SqlError::unsupported(format!(
                        "table constraint {other} is not supported yet"
                    )))
                }
            }
        }
        if keys.iter().filter(|(_, _, primary)| *primary).count() > 1 {
            return Err(SqlError::new(
                "42P16",
                format!("multiple primary keys for table \"{table}\" are not allowed"),
            ));
        }
        let mut class = ClassDef {
            id: self.engine.store.allocate_oid()?,
            name: class_name(&table, module.as_deref()),
            table: table.clone(),
            parent: None,
            columns,
            methods: Vec::new(),
            hidden_id: true,
            indexes: Vec::new(),
            oid: 0,
            type_oid: 0,
            id_index_oid: 0,
            id_constraint_oid: 0,
        };
        let taken: Vec<String> = module
            .iter()
            .flat_map(|m| m.shape.classes.iter())
            .flat_map(|c| c.indexes.iter().map(|i| i.name.clone()))
            .collect();
        for (name, cols, primary) in keys {
            for c in &cols {
                let Some(col) = class.columns.iter_mut().find(|k| &k.name == c) else {
                    return Err(SqlError::new(
                        "42703",
                        format!("column \"{c}\" named in key does not exist"),
                    ));
                };
                if primary {
                    col.nullable = false;
                }
            }
            let name = match name {
                Some(n) => n,
                None if primary => format!("{table}_pkey"),
                None => format!("{table}_{}_key", cols.join("_")),
            };
            if taken.contains(&name) || class.indexes.iter().any(|i| i.name == name) {
                return Err(SqlError::new(
                    "42P07",
                    format!("relation \"{name}\" already exists"),
                ));
            }
            class.indexes.push(IndexDef {
                id: self.engine.store.allocate_oid()?,
                name,
                columns: cols,
                unique: true,
                primary,
                constraint: true,
                oid: 0,
                constraint_oid: 0,
            });
        }
        for fk in foreign_keys {
            let reference = self.reference(&schema, &class, &fk)?;
            let Some(col) = class.columns.iter_mut().find(|c| c.name == fk.column) else {
                return Err(SqlError::new(
                    "42703",
                    format!(
                        "column \"{}\" referenced in foreign key constraint does not exist",
                        fk.column
                    ),
                ));
            };
            col.references = Some(reference);
        }
        let mut shape = module
            .as_ref()
            .map(|m| m.shape.clone())
            .unwrap_or_else(empty_shape);
        shape.classes.push(class);
        self.store(&schema, module.as_deref(), shape)
    }

    /// What `fk` (a clause of table `class` being made in `schema`)
    /// references, checked as PostgreSQL checks it: the table exists
    /// (42P01), the column exists (42703) and has a unique key of its own
    /// (42830), and the two columns have one type (42804).
    fn reference(
        &self,
        schema: &str,
        class: &ClassDef,
        fk: &ForeignKeyClause,
    ) -> Result<ForeignKeyDef, SqlError> {
        let (target_schema, target_table) = self.to_find(&fk.table)?;
        let own = target_schema == schema && target_table == class.table;
        let module = match own {
            true => None,
            false => self.module(&target_schema)?,
        };
        let target: &ClassDef = match (own, module.as_deref()) {
            (true, _) => class,
            (false, Some(m)) => m.table(&target_table).ok_or_else(|| {
                SqlError::new("42P01", format!("relation \"{}\" does not exist", fk.table))
            })?,
            (false, None) => {
                return Err(SqlError::new(
                    "42P01",
                    format!("relation \"{}\" does not exist", fk.table),
                ))
            }
        };
        if !target.hidden_id {
            return Err(SqlError::unsupported(format!(
                "REFERENCES a Python class (\"{target_table}\") is not supported: declare the attribute as a reference to the class in Python"
            )));
        }
        let key = match &fk.referred {
            Some(c) => c.clone(),
            None => {
                let primary = target.indexes.iter().find(|i| i.primary).ok_or_else(|| {
                    SqlError::new(
                        "42830",
                        format!("there is no primary key for referenced table \"{target_table}\""),
                    )
                })?;
                match primary.columns.as_slice() {
                    [one] => one.clone(),
                    _ => {
                        return Err(SqlError::new(
                            "42830",
                            "number of referencing and referenced columns for foreign key disagree",
                        ))
                    }
                }
            }
        };
        let Some(key_col) = target.columns.iter().find(|c| c.name == key) else {
            return Err(SqlError::new(
                "42703",
                format!("column \"{key}\" referenced in foreign key constraint does not exist"),
            ));
        };
        if !target
            .indexes
            .iter()
            .any(|i| i.unique && i.columns.len() == 1 && i.columns[0] == key)
        {
            return Err(SqlError::new(
                "42830",
                format!(
                    "there is no unique constraint matching given keys for referenced table \"{target_table}\""
                ),
            ));
        }
        let name = fk
            .name
            .clone()
            .unwrap_or_else(|| format!("{}_{}_fkey", class.table, fk.column));
        if let Some(col) = class.columns.iter().find(|c| c.name == fk.column) {
            if col.ty != key_col.ty {
                return Err(SqlError::new(
                    "42804",
                    format!("foreign key constraint \"{name}\" cannot be implemented"),
                )
                .with_detail(Some(format!(
                    "Key columns \"{}\" and \"{}\" are of incompatible types: {} and {}.",
                    fk.column,
                    key,
                    col.ty.pg_name(),
                    key_col.ty.pg_name()
                ))));
            }
        }
        Ok(ForeignKeyDef {
            schema: target_schema,
            table: target_table,
            column: key,
            name,
        })
    }

    fn drop_table(
        &mut self,
        name: &ObjectName,
        if_exists: bool,
        cascade: bool,
    ) -> Result<(), SqlError> {
        let (schema, table) = self.to_find(name)?;
        let module = self.module(&schema)?;
        let Some(class) = module.as_ref().and_then(|m| m.table(&table)).cloned() else {
            if if_exists {
                return Ok(());
            }
            return Err(SqlError::new(
                "42P01",
                format!("table \"{table}\" does not exist"),
            ));
        };
        self.sql_module(&schema)?;
        let target = (schema.clone(), table.clone());
        self.drop_dependent_views(&target, &format!("table {table}"), cascade)?;
        self.drop_referencing_keys(&target, cascade)?;
        // Read again: dropping views may have written a new version.
        let module = self
            .sql_module(&schema)?
            .ok_or_else(|| SqlError::internal("module vanished"))?;
        self.delete_data(&class)?;
        let mut shape = module.shape.clone();
        shape.classes.retain(|c| c.id != class.id);
        self.store(&schema, Some(&module), shape)
    }

    /// The foreign keys of other tables that reference `target` (schema,
    /// table): dropped with CASCADE (the tables stay), else 2BP01 as
    /// PostgreSQL refuses.
    fn drop_referencing_keys(
        &mut self,
        target: &(String, String),
        cascade: bool,
    ) -> Result<(), SqlError> {
        let all = self.engine.catalog.resolve_all(self.txn)?;
        let references = |m: &ModuleDef, c: &ClassDef, col: &ColumnDef| {
            col.references.as_ref().is_some_and(|fk| {
                fk.schema == target.0
                    && fk.table == target.1
                    && !(m.name == target.0 && c.table == target.1)
            })
        };
        for m in all.iter() {
            let Some((class, col)) = m.shape.classes.iter().find_map(|c| {
                c.columns
                    .iter()
                    .find(|col| references(m, c, col))
                    .map(|col| (c, col))
            }) else {
                continue;
            };
            if !cascade {
                let name = col.references.as_ref().map_or("", |fk| fk.name.as_str());
                // Named as PostgreSQL names them: qualified unless in public.
                let shown = |schema: &str, table: &str| match schema {
                    PUBLIC_SCHEMA => table.to_string(),
                    _ => format!("{schema}.{table}"),
                };
                let dropped = shown(&target.0, &target.1);
                return Err(SqlError::new(
                    "2BP01",
                    format!("cannot drop table {dropped} because other objects depend on it"),
                )
                .with_detail(Some(format!(
                    "constraint {name} on table {} depends on table {dropped}",
                    shown(&m.name, &class.table)
                ))));
            }
            let mut shape = m.shape.clone();
            for c in &mut shape.classes {
                let table = c.table.clone();
                for col in &mut c.columns {
                    let dropped = col.references.as_ref().is_some_and(|fk| {
                        fk.schema == target.0
                            && fk.table == target.1
                            && !(m.name == target.0 && table == target.1)
                    });
                    if dropped {
                        col.references = None;
                    }
                }
            }
            let module = self
                .sql_module(&m.name)?
                .ok_or_else(|| SqlError::internal("referencing module vanished"))?;
            self.store(&m.name, Some(&module), shape)?;
        }
        Ok(())
    }

    /// The views that read `target` (schema, relation): dropped with
    /// CASCADE, else 2BP01 as PostgreSQL refuses. Bounded: each round
    /// drops one view, and views are finite.
    fn drop_dependent_views(
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

    fn create_view(&mut self, cv: &ast::CreateView, view: ViewShape) -> Result<(), SqlError> {
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
            shape.views.remove(old);
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
        });
        self.store(&schema, module.as_deref(), shape)
    }

    fn drop_view(
        &mut self,
        name: &ObjectName,
        if_exists: bool,
        cascade: bool,
    ) -> Result<(), SqlError> {
        let (schema, view) = self.to_find(name)?;
        self.drop_view_named(&schema, &view, if_exists, cascade)
    }

    fn drop_view_named(
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

    /// `TRUNCATE [TABLE] t [, ...]`: every object of the tables (and
    /// their keys' entries) deleted in the statement's transaction.
    fn truncate(&mut self, t: &ast::Truncate) -> Result<(), SqlError> {
        if matches!(t.identity, Some(ast::TruncateIdentityOption::Restart)) {
            return Err(SqlError::unsupported(
                "TRUNCATE ... RESTART IDENTITY is not supported yet",
            ));
        }
        let mut classes = Vec::with_capacity(t.table_names.len());
        for target in &t.table_names {
            let (schema, table) = self.to_find(&target.name)?;
            let class = self.module(&schema)?.and_then(|m| m.table(&table).cloned());
            let Some(class) = class else {
                return Err(SqlError::new(
                    "42P01",
                    format!("relation \"{table}\" does not exist"),
                ));
            };
            self.sql_module(&schema)?;
            classes.push(class);
        }
        for class in &classes {
            self.delete_rows(class)?;
        }
        Ok(())
    }

    /// Deletes every object of `class`, every entry of its indexes and
    /// its columns' sequences.
    fn delete_data(&mut self, class: &ClassDef) -> Result<(), SqlError> {
        for seq in class.columns.iter().filter_map(|c| c.sequence) {
            self.txn.delete(&amber_storage::sequence_key(seq))?;
        }
        self.delete_rows(class)
    }

    /// Deletes every object of `class` and every entry of its indexes.
    fn delete_rows(&mut self, class: &ClassDef) -> Result<(), SqlError> {
        let end = class_range_end(class.id);
        delete_range(self.txn, &class_prefix(class.id), &end)?;
        for index in &class.indexes {
            let prefix = amber_catalog::unique_prefix(index.id);
            let end = amber_catalog::unique_prefix(index.id.saturating_add(1));
            delete_range(self.txn, &prefix, &end)?;
        }
        Ok(())
    }

    fn create_index(&mut self, ci: &ast::CreateIndex) -> Result<(), SqlError> {
        if ci.predicate.is_some() || !ci.include.is_empty() {
            return Err(SqlError::unsupported(
                "partial indexes and INCLUDE are not supported yet",
            ));
        }
        let (schema, table) = self.to_find(&ci.table_name)?;
        let module = self.module(&schema)?;
        let Some(class) = module.as_ref().and_then(|m| m.table(&table)).cloned() else {
            return Err(SqlError::new(
                "42P01",
                format!("relation \"{table}\" does not exist"),
            ));
        };
        let module = self
            .sql_module(&schema)?
            .ok_or_else(|| SqlError::internal("module vanished"))?;
        let columns = index_columns(&ci.columns)?;
        for c in &columns {
            if !class.columns.iter().any(|k| &k.name == c) {
                return Err(SqlError::new(
                    "42703",
                    format!("column \"{c}\" does not exist"),
                ));
            }
        }
        let name = match &ci.name {
            Some(n) => match name_parts(n).as_slice() {
                [n] | [_, n] => n.clone(),
                _ => return Err(SqlError::syntax(format!("improper index name {n}"))),
            },
            None => format!("{table}_{}_idx", columns.join("_")),
        };
        let exists = module
            .shape
            .classes
            .iter()
            .any(|c| c.table == name || c.indexes.iter().any(|i| i.name == name));
        if exists {
            if ci.if_not_exists {
                return Ok(());
            }
            return Err(SqlError::new(
                "42P07",
                format!("relation \"{name}\" already exists"),
            ));
        }
        let index = IndexDef {
            id: self.engine.store.allocate_oid()?,
            name,
            columns,
            unique: ci.unique,
            primary: false,
            constraint: false,
            oid: 0,
            constraint_oid: 0,
        };
        if index.unique {
            unique::build(self.txn, &class, &index)?;
        }
        let mut shape = module.shape.clone();
        if let Some(c) = shape.classes.iter_mut().find(|c| c.id == class.id) {
            c.indexes.push(index);
        }
        self.store(&schema, Some(&module), shape)
    }

    fn drop_index(&mut self, name: &ObjectName, if_exists: bool) -> Result<(), SqlError> {
        let (schema, index) = self.to_find(name)?;
        let module = self.module(&schema)?;
        let found = module.as_ref().and_then(|m| {
            m.shape.classes.iter().find_map(|c| {
                c.indexes
                    .iter()
                    .find(|i| i.name == index)
                    .map(|i| (c.id, i.clone()))
            })
        });
        let Some((class_id, def)) = found else {
            if if_exists {
                return Ok(());
            }
            return Err(SqlError::new(
                "42704",
                format!("index \"{index}\" does not exist"),
            ));
        };
        if def.constraint {
            return Err(SqlError::new(
                "2BP01",
                format!(
                    "cannot drop index {index} because constraint {index} on its table requires it"
                ),
            ));
        }
        let module = self
            .sql_module(&schema)?
            .ok_or_else(|| SqlError::internal("module vanished"))?;
        let prefix = amber_catalog::unique_prefix(def.id);
        let end = amber_catalog::unique_prefix(def.id.saturating_add(1));
        delete_range(self.txn, &prefix, &end)?;
        let mut shape = module.shape.clone();
        if let Some(c) = shape.classes.iter_mut().find(|c| c.id == class_id) {
            c.indexes.retain(|i| i.id != def.id);
        }
        self.store(&schema, Some(&module), shape)
    }
}

/// Deletes every key in `[start, end)`, a batch at a time (the number of
/// keys is the table's size: bounded by what the store holds).
fn delete_range(txn: &mut Txn, start: &[u8], end: &[u8]) -> Result<(), SqlError> {
    const BATCH_MAX: usize = 4096;
    loop {
        let batch = txn.scan_range(start, end, BATCH_MAX)?;
        let done = batch.len() < BATCH_MAX;
        for (key, _) in batch {
            txn.delete(&key)?;
        }
        if done {
            return Ok(());
        }
    }
}

/// A `REFERENCES` clause of CREATE TABLE, of one column (as a column
/// option or a table constraint).
struct ForeignKeyClause {
    name: Option<String>,
    column: String,
    table: ObjectName,
    /// The referenced column; `None`: the referenced table's primary key.
    referred: Option<String>,
}

impl ForeignKeyClause {
    fn new(
        name: Option<String>,
        columns: Vec<String>,
        fk: &ast::ForeignKeyConstraint,
    ) -> Result<ForeignKeyClause, SqlError> {
        let [column] = columns.as_slice() else {
            return Err(SqlError::unsupported(
                "a foreign key of several columns is not supported yet",
            ));
        };
        let referred = match fk.referred_columns.as_slice() {
            [] => None,
            [one] => Some(ident_value(one)),
            _ => {
                return Err(SqlError::new(
                    "42830",
                    "number of referencing and referenced columns for foreign key disagree",
                ))
            }
        };
        for (what, action) in [("DELETE", &fk.on_delete), ("UPDATE", &fk.on_update)] {
            match action {
                None
                | Some(ast::ReferentialAction::NoAction)
                | Some(ast::ReferentialAction::Restrict) => {}
                Some(other) => {
                    return Err(SqlError::unsupported(format!(
                        "ON {what} {other} is not supported yet (NO ACTION and RESTRICT are)"
                    )))
                }
            }
        }
        if fk
            .characteristics
            .as_ref()
            .is_some_and(|c| c.deferrable == Some(true) || c.initially.is_some())
        {
            return Err(SqlError::unsupported(
                "deferrable foreign keys are not supported yet",
            ));
        }
        Ok(ForeignKeyClause {
            name,
            column: column.clone(),
            table: fk.foreign_table.clone(),
            referred,
        })
    }
}

fn empty_shape() -> ModuleShape {
    ModuleShape {
        classes: Vec::new(),
        functions: Vec::new(),
        globals: Vec::new(),
        views: Vec::new(),
    }
}

fn reserved_schema(name: &str) -> Result<(), SqlError> {
    if name == "amber"
        || name == "pg_catalog"
        || name == "information_schema"
        || name.starts_with("pg_")
    {
        return Err(
            SqlError::new("42939", format!("unacceptable schema name \"{name}\"")).with_detail(
                Some(
                    "The prefix \"pg_\" and Amber's own schemas are reserved for system schemas."
                        .into(),
                ),
            ),
        );
    }
    Ok(())
}

/// Options of CREATE TABLE this version does not build: refused rather
/// than ignored, so no one believes they hold.
fn refuse_options(ct: &ast::CreateTable) -> Result<(), SqlError> {
    let what = if ct.temporary {
        Some("TEMPORARY tables")
    } else if ct.query.is_some() {
        Some("CREATE TABLE ... AS")
    } else if ct.like.is_some() {
        Some("CREATE TABLE ... LIKE")
    } else if ct.or_replace {
        Some("CREATE OR REPLACE TABLE")
    } else {
        None
    };
    match what {
        Some(w) => Err(SqlError::unsupported(format!("{w} are not supported yet"))),
        None => Ok(()),
    }
}

/// `(schema, name)` of a qualified name (an unqualified one: `public`).
fn schema_and_name(name: &ObjectName) -> Result<(String, String), SqlError> {
    match name_parts(name).as_slice() {
        [t] => Ok((PUBLIC_SCHEMA.to_string(), t.clone())),
        [s, t] => Ok((s.clone(), t.clone())),
        [_db, s, t] => Ok((s.clone(), t.clone())),
        _ => Err(SqlError::syntax(format!("improper qualified name: {name}"))),
    }
}

fn one_part(name: &ObjectName) -> Result<String, SqlError> {
    match name_parts(name).as_slice() {
        [n] => Ok(n.clone()),
        _ => Err(SqlError::syntax(format!("improper schema name: {name}"))),
    }
}

fn index_columns(cols: &[ast::IndexColumn]) -> Result<Vec<String>, SqlError> {
    cols.iter()
        .map(|c| match &c.column.expr {
            ast::Expr::Identifier(i) => Ok(ident_value(i)),
            other => Err(SqlError::unsupported(format!(
                "index on expression {other} is not supported yet"
            ))),
        })
        .collect()
}

/// `serial`, `bigserial`, `smallserial` (and their `serialN` names): an
/// integer column filled from its own sequence.
fn is_serial(t: &AstType) -> bool {
    match t {
        AstType::Custom(name, mods) if mods.is_empty() => matches!(
            name_parts(name).as_slice(),
            [n] if ["serial", "serial4", "bigserial", "serial8", "smallserial", "serial2"].contains(&n.as_str())
        ),
        _ => false,
    }
}

/// The stored type of a declared column type. Integer types are stored
/// as bigint, floating types as double precision and character types as
/// text (values and their arithmetic are the same; the declared names
/// are not kept yet).
fn sql_type(t: &AstType) -> Result<SqlType, SqlError> {
    Ok(match t {
        AstType::Int(_)
        | AstType::Integer(_)
        | AstType::Int2(_)
        | AstType::Int4(_)
        | AstType::Int8(_)
        | AstType::SmallInt(_)
        | AstType::BigInt(_)
        | AstType::TinyInt(_)
        | AstType::MediumInt(_) => SqlType::Int8,
        AstType::Real
        | AstType::Float4
        | AstType::Float8
        | AstType::Float(_)
        | AstType::Double(_)
        | AstType::DoublePrecision => SqlType::Float8,
        AstType::Text
        | AstType::Varchar(_)
        | AstType::CharacterVarying(_)
        | AstType::Char(_)
        | AstType::Character(_)
        | AstType::String(_) => SqlType::Text,
        AstType::Bool | AstType::Boolean => SqlType::Bool,
        AstType::Bytea => SqlType::Bytea,
        AstType::Numeric(_) | AstType::Decimal(_) | AstType::Dec(_) => SqlType::Numeric,
        AstType::Date => SqlType::Date,
        AstType::Timestamp(_, ast::TimezoneInfo::WithTimeZone | ast::TimezoneInfo::Tz) => {
            SqlType::Timestamptz
        }
        AstType::JSON | AstType::JSONB => SqlType::Jsonb,
        AstType::Array(ast::ArrayElemTypeDef::SquareBracket(inner, _))
        | AstType::Array(ast::ArrayElemTypeDef::AngleBracket(inner)) => match sql_type(inner)? {
            SqlType::Array(_) | SqlType::Jsonb => {
                return Err(SqlError::unsupported(format!(
                    "column type {t} is not supported yet"
                )))
            }
            inner => SqlType::Array(Box::new(inner)),
        },
        other => {
            return Err(SqlError::unsupported(format!(
                "column type {other} is not supported yet"
            )))
        }
    })
}

/// A column's DEFAULT: a constant, converted to the column's type now.
fn default_value(col: &ColumnDef, e: &ast::Expr, settings: &Settings) -> Result<Json, SqlError> {
    let Some(v) = crate::constant::constant_value(e, &[], settings)? else {
        return Err(SqlError::unsupported(format!(
            "DEFAULT {e} is not supported yet (only constants)"
        )));
    };
    convert::scalar_to_json(&col.ty, &v, settings)
}

/// A Python class name for table `table`, unique in the module.
fn class_name(table: &str, module: Option<&ModuleDef>) -> String {
    let mut base: String = table
        .split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut cs = p.chars();
            match cs.next() {
                Some(f) => f.to_uppercase().chain(cs).collect::<String>(),
                None => String::new(),
            }
        })
        .collect::<String>()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    if base.is_empty() || base.starts_with(|c: char| c.is_ascii_digit()) {
        base = format!("Table{base}");
    }
    let taken = |n: &str| module.is_some_and(|m| m.class(n).is_some()) || n == "Persistent";
    if !taken(&base) {
        return base;
    }
    // Bounded: each step tries a new suffix, and a module has finitely
    // many classes.
    (2..)
        .map(|i| format!("{base}{i}"))
        .find(|n| !taken(n))
        .unwrap_or(base)
}

/// The Python source of a schema made by SQL: a class per table.
fn python_source(schema: &str, shape: &ModuleShape) -> String {
    let mut s = format!(
        "# Schema {schema}, written by Amber from its SQL DDL (CREATE TABLE);\n# change it with SQL.\nimport datetime\nimport decimal\nfrom amber import Persistent\n"
    );
    for c in &shape.classes {
        s.push_str(&format!("\n\nclass {}(Persistent):\n", c.name));
        s.push_str(&format!(
            "    \"\"\"Table {}.\"\"\"\n",
            c.table.escape_default()
        ));
        for col in &c.columns {
            let mut ann = python_type(&col.ty);
            if col.nullable {
                ann.push_str(" | None");
            }
            let valid = col
                .name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
                && !col.name.starts_with(|ch: char| ch.is_ascii_digit());
            if valid {
                s.push_str(&format!("    {}: {ann}\n", col.name));
            } else {
                s.push_str(&format!("    # column {:?}: {ann}\n", col.name));
            }
        }
    }
    s
}

fn python_type(t: &SqlType) -> String {
    match t {
        SqlType::Int8 | SqlType::Ref(_) => "int".into(),
        SqlType::Float8 => "float".into(),
        SqlType::Text => "str".into(),
        SqlType::Bool => "bool".into(),
        SqlType::Bytea => "bytes".into(),
        SqlType::Numeric => "decimal.Decimal".into(),
        SqlType::Date => "datetime.date".into(),
        SqlType::Timestamptz => "datetime.datetime".into(),
        SqlType::Jsonb => "dict".into(),
        SqlType::Array(inner) => format!("list[{}]", python_type(inner)),
    }
}
