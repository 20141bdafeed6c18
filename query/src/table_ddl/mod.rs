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

mod alter;
mod comments;
mod indexes;
mod references;
mod tables;
mod views;

use indexes::index_columns;
use references::ForeignKeyClause;

use crate::convert;
use crate::ddl::Deployed;
use crate::error::SqlError;
use crate::modules::PUBLIC_SCHEMA;
use crate::session::{ident_value, name_parts, Engine, Output};
use crate::value::Settings;
use amber_catalog::{
    class_prefix, class_range_end, Catalog, ClassDef, ColumnDef, Declared, ForeignKeyDef, IndexDef,
    ModuleDef, ModuleShape, SqlType,
};
use amber_storage::Txn;
use datafusion::sql::sqlparser::ast::{
    self, ColumnOption, DataType as AstType, ObjectName, ObjectType, Statement, TableConstraint,
};
use serde_json::Value as Json;
use std::sync::Arc;

/// Whether `stmt` is DDL this module runs.
pub(crate) fn is_table_ddl(stmt: &Statement) -> bool {
    match stmt {
        Statement::CreateTable(_)
        | Statement::AlterTable(_)
        | Statement::Comment { .. }
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
        Statement::AlterTable(at) => {
            ddl.alter_table(at, settings)?;
            "ALTER TABLE"
        }
        Statement::Truncate(t) => {
            ddl.truncate(t)?;
            "TRUNCATE TABLE"
        }
        Statement::Comment {
            object_type,
            object_name,
            comment,
            ..
        } => {
            ddl.comment(object_type, object_name, comment.as_deref())?;
            "COMMENT"
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
        // A table a foreign key of another table references: its rows go
        // only with the referencing table's (listed, or CASCADE), as in
        // PostgreSQL.
        let cascade = matches!(t.cascade, Some(ast::CascadeOption::Cascade));
        let all = self.engine.catalog.resolve_all(self.txn)?;
        // Bounded: each round adds a class not yet listed.
        loop {
            let mut added = false;
            for m in all.iter() {
                for c in &m.shape.classes {
                    if classes.iter().any(|k| k.id == c.id) {
                        continue;
                    }
                    let references = c
                        .columns
                        .iter()
                        .filter_map(|col| col.references.as_ref())
                        .find(|fk| {
                            classes.iter().any(|k| {
                                fk.table == k.table
                                    && all
                                        .get(&fk.schema)
                                        .and_then(|km| km.table(&fk.table).map(|x| x.id))
                                        == Some(k.id)
                            })
                        });
                    let Some(fk) = references else { continue };
                    if !cascade {
                        return Err(SqlError::new(
                            "0A000",
                            "cannot truncate a table referenced in a foreign key constraint",
                        )
                        .with_detail(Some(format!(
                            "Table \"{}\" references \"{}\".",
                            c.table, fk.table
                        )))
                        .with_hint(&format!(
                            "Truncate table \"{}\" at the same time, or use TRUNCATE ... CASCADE.",
                            c.table
                        )));
                    }
                    classes.push(c.clone());
                    added = true;
                }
            }
            if !added {
                break;
            }
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
        crate::class_objects::delete_range(self.txn, &class_prefix(class.id), &end)?;
        for index in &class.indexes {
            crate::index::drop_entries(self.txn, index.id)?;
        }
        Ok(())
    }
}

fn empty_shape() -> ModuleShape {
    ModuleShape {
        classes: Vec::new(),
        functions: Vec::new(),
        globals: Vec::new(),
        views: Vec::new(),
        comment: None,
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
        SqlType::Int8 | SqlType::Int4 | SqlType::Int2 | SqlType::Ref(_) => "int".into(),
        SqlType::Float8 | SqlType::Float4 => "float".into(),
        SqlType::Text => "str".into(),
        SqlType::Bool => "bool".into(),
        SqlType::Bytea => "bytes".into(),
        SqlType::Numeric => "decimal.Decimal".into(),
        SqlType::Date => "datetime.date".into(),
        SqlType::Timestamptz | SqlType::Timestamp => "datetime.datetime".into(),
        SqlType::Jsonb => "dict".into(),
        SqlType::Array(inner) => format!("list[{}]", python_type(inner)),
    }
}
