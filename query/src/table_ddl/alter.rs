//! ALTER TABLE of a table made by SQL: ADD COLUMN, DROP COLUMN, RENAME
//! COLUMN, RENAME TO, ALTER COLUMN SET/DROP DEFAULT and NOT NULL, ADD
//! CONSTRAINT ... CHECK and DROP CONSTRAINT of a check, in
//! the statement's transaction (existing rows are checked or rewritten
//! in it, so a concurrent writer conflicts rather than slips by).

use super::tables::{default_value, is_serial, sql_type, COLUMNS_MAX};
use super::*;
use serde_json::Map;

impl Ddl<'_> {
    pub(super) fn alter_table(
        &mut self,
        at: &ast::AlterTable,
        settings: &Settings,
    ) -> Result<(), SqlError> {
        let (schema, table) = self.to_find(&at.name)?;
        let Some(module) = self.module(&schema)? else {
            return missing_table(&table, at.if_exists);
        };
        if module.table(&table).is_none() {
            return missing_table(&table, at.if_exists);
        }
        self.sql_module(&schema)?;
        for op in &at.operations {
            // Each operation reads the version the previous one wrote.
            let module = self
                .sql_module(&schema)?
                .ok_or_else(|| SqlError::internal("module vanished"))?;
            let class = module
                .table(&table)
                .cloned()
                .ok_or_else(|| SqlError::internal("table vanished"))?;
            self.alter_one(&module, &class, op, settings)?;
        }
        Ok(())
    }

    fn alter_one(
        &mut self,
        module: &ModuleDef,
        class: &ClassDef,
        op: &ast::AlterTableOperation,
        settings: &Settings,
    ) -> Result<(), SqlError> {
        use ast::AlterTableOperation as Op;
        let table = class.table.clone();
        let mut new = class.clone();
        match op {
            Op::AddColumn {
                if_not_exists,
                column_def,
                column_position: None,
                ..
            } => {
                let name = ident_value(&column_def.name);
                if class.columns.iter().any(|c| c.name == name) {
                    if *if_not_exists {
                        return Ok(());
                    }
                    return Err(SqlError::new(
                        "42701",
                        format!("column \"{name}\" of relation \"{table}\" already exists"),
                    ));
                }
                if class.columns.len() >= COLUMNS_MAX {
                    return Err(SqlError::new(
                        "54011",
                        format!("tables can have at most {COLUMNS_MAX} columns"),
                    ));
                }
                let col = self.new_column(class, column_def, &name, settings)?;
                let mut later_keys = Vec::new();
                let mut later_fks = Vec::new();
                for opt in &column_def.options {
                    let given = opt.name.as_ref().map(ident_value);
                    match &opt.option {
                        ColumnOption::PrimaryKey(_) => later_keys.push((given, true)),
                        ColumnOption::Unique(_) => later_keys.push((given, false)),
                        ColumnOption::ForeignKey(fk) => {
                            later_fks.push(ForeignKeyClause::new(given, vec![name.clone()], fk)?)
                        }
                        _ => {}
                    }
                }
                // Existing rows take the default (PostgreSQL fills them in
                // too); NOT NULL without one needs an empty table.
                // A row without the field reads NULL: only a default needs
                // writing into the existing rows.
                let fill = match col.has_default {
                    true => Some(crate::declared::apply(&col, col.default.clone())?),
                    false => None,
                };
                let required = !col.nullable && fill.is_none();
                new.columns.push(col);
                match fill {
                    Some(v) => self.rewrite_rows(class, &new, |obj| {
                        obj.insert(name.clone(), v.clone());
                        Ok(())
                    })?,
                    None if required => self
                        .check_rows(class, |_| Err(contains_nulls(&module.name, &table, &name)))?,
                    None => {}
                }
                let added = new.clone();
                for (given, primary) in later_keys {
                    self.add_key(module, &added, &mut new, given, vec![name.clone()], primary)?;
                }
                for clause in later_fks {
                    self.add_foreign_key(module, &mut new, &clause)?;
                }
            }
            Op::DropColumn {
                column_names,
                if_exists,
                drop_behavior,
                ..
            } => {
                let cascade = matches!(drop_behavior, Some(ast::DropBehavior::Cascade));
                for ident in column_names {
                    let name = ident_value(ident);
                    let Some(pos) = new.columns.iter().position(|c| c.name == name) else {
                        if *if_exists {
                            continue;
                        }
                        return Err(missing_column(&name, &table));
                    };
                    self.refuse_if_views_read(module, &table, "drop a column of")?;
                    if new.columns.len() == 1 {
                        // PostgreSQL allows a table of no columns; Amber's
                        // scans do not read one yet.
                        return Err(SqlError::unsupported(format!(
                            "dropping the last column of table \"{table}\" is not supported yet"
                        )));
                    }
                    self.drop_column_keys(module, &mut new, &name, cascade)?;
                    // Its checks go with it, as in PostgreSQL.
                    new.checks
                        .retain(|k| !crate::checks::columns_named(&k.expr).contains(&name));
                    new.columns.remove(pos);
                }
                // Rewritten without the dropped fields, so that a column
                // added later (with a reused id) cannot see them.
                self.rewrite_rows(class, &new, |_| Ok(()))?;
            }
            Op::RenameColumn {
                old_column_name,
                new_column_name,
            } => {
                let (old, renamed) = (ident_value(old_column_name), ident_value(new_column_name));
                let Some(pos) = new.columns.iter().position(|c| c.name == old) else {
                    return Err(missing_column(&old, &table));
                };
                if new.columns.iter().any(|c| c.name == renamed) {
                    return Err(SqlError::new(
                        "42701",
                        format!("column \"{renamed}\" of relation \"{table}\" already exists"),
                    ));
                }
                self.refuse_if_views_read(module, &table, "rename a column of")?;
                new.columns[pos].name = renamed.clone();
                for check in &mut new.checks {
                    check.expr = crate::checks::rename_column(&check.expr, &old, &renamed);
                }
                for index in &mut new.indexes {
                    for c in &mut index.columns {
                        if *c == old {
                            *c = renamed.clone();
                        }
                    }
                }
                // Stored rows are keyed by column id: they need no rewrite.
                self.retarget_references(module, &table, Some((&old, &renamed)), None)?;
            }
            Op::RenameTable { table_name } => {
                let to = match table_name {
                    ast::RenameTableNameKind::To(n) | ast::RenameTableNameKind::As(n) => n,
                };
                let renamed = one_part(to)?;
                if module.table(&renamed).is_some()
                    || module.shape.views.iter().any(|v| v.name == renamed)
                {
                    return Err(SqlError::new(
                        "42P07",
                        format!("relation \"{renamed}\" already exists"),
                    ));
                }
                self.refuse_if_views_read(module, &table, "rename")?;
                new.table = renamed.clone();
                self.retarget_references(module, &table, None, Some(&renamed))?;
            }
            Op::AlterColumn { column_name, op } => {
                let name = ident_value(column_name);
                let Some(pos) = new.columns.iter().position(|c| c.name == name) else {
                    return Err(missing_column(&name, &table));
                };
                match op {
                    ast::AlterColumnOperation::SetDefault { value } => {
                        let col = &mut new.columns[pos];
                        col.default = default_value(col, value, settings)?;
                        col.has_default = !col.default.is_null();
                    }
                    ast::AlterColumnOperation::DropDefault => {
                        let col = &mut new.columns[pos];
                        col.default = Json::Null;
                        col.has_default = false;
                    }
                    ast::AlterColumnOperation::DropNotNull => {
                        if new
                            .indexes
                            .iter()
                            .any(|i| i.primary && i.columns.contains(&name))
                        {
                            return Err(SqlError::new(
                                "42P16",
                                format!("column \"{name}\" is in a primary key"),
                            ));
                        }
                        new.columns[pos].nullable = true;
                    }
                    ast::AlterColumnOperation::SetNotNull => {
                        new.columns[pos].nullable = false;
                        self.check_rows(class, |obj| match obj.get(&name) {
                            None | Some(Json::Null) => {
                                Err(contains_nulls(&module.name, &table, &name))
                            }
                            Some(_) => Ok(()),
                        })?;
                    }
                    other => {
                        return Err(SqlError::unsupported(format!(
                            "ALTER TABLE ... ALTER COLUMN {other} is not supported yet"
                        )))
                    }
                }
            }
            Op::AddConstraint {
                constraint: TableConstraint::Check(cc),
                not_valid: false,
            } => {
                let name = match &cc.name {
                    Some(n) => ident_value(n),
                    None => super::tables::check_name(&new, &cc.expr, None),
                };
                if new.checks.iter().any(|k| k.name == name)
                    || new.indexes.iter().any(|i| i.name == name)
                {
                    return Err(SqlError::new(
                        "42710",
                        format!("constraint \"{name}\" for relation \"{table}\" already exists"),
                    ));
                }
                new.checks.push(amber_catalog::CheckDef {
                    name: name.clone(),
                    expr: cc.expr.to_string(),
                    oid: 0,
                });
                // Every existing row must satisfy it, as in PostgreSQL.
                let only = ClassDef {
                    checks: vec![new
                        .checks
                        .last()
                        .cloned()
                        .ok_or_else(|| SqlError::internal("no check"))?],
                    ..new.clone()
                };
                let compiled = crate::checks::Checks::compile(&only)?;
                self.check_rows(class, |obj| {
                    compiled.verify(&module.name, &only, obj).map_err(|_| {
                        SqlError::new(
                            "23514",
                            format!("check constraint \"{name}\" of relation \"{table}\" is violated by some row"),
                        )
                        .with_table(&module.name, &table)
                        .with_constraint(&name)
                    })
                })?;
            }
            Op::AddConstraint {
                constraint:
                    constraint @ (TableConstraint::PrimaryKey(_) | TableConstraint::Unique(_)),
                not_valid: false,
            } => {
                let (given, columns, primary) = match constraint {
                    TableConstraint::PrimaryKey(pk) => (
                        pk.name.as_ref().map(ident_value),
                        super::indexes::index_columns(&pk.columns)?,
                        true,
                    ),
                    TableConstraint::Unique(u) => (
                        u.name.as_ref().map(ident_value),
                        super::indexes::index_columns(&u.columns)?,
                        false,
                    ),
                    _ => return Err(SqlError::internal("not a key")),
                };
                self.add_key(module, class, &mut new, given, columns, primary)?;
            }
            Op::AddConstraint {
                constraint: TableConstraint::ForeignKey(fk),
                not_valid: false,
            } => {
                let clause = ForeignKeyClause::new(
                    fk.name.as_ref().map(ident_value),
                    fk.columns.iter().map(ident_value).collect(),
                    fk,
                )?;
                self.add_foreign_key(module, &mut new, &clause)?;
            }
            Op::DropConstraint {
                if_exists, name, ..
            } => {
                let name = ident_value(name);
                match new.checks.iter().position(|k| k.name == name) {
                    Some(pos) => {
                        new.checks.remove(pos);
                    }
                    None if new.indexes.iter().any(|i| i.name == name && i.constraint)
                        || new
                            .columns
                            .iter()
                            .any(|c| c.references.as_ref().is_some_and(|fk| fk.name == name)) =>
                    {
                        return Err(SqlError::unsupported(format!(
                            "ALTER TABLE ... DROP CONSTRAINT of key \"{name}\" is not supported yet"
                        )))
                    }
                    None if *if_exists => return Ok(()),
                    None => {
                        return Err(SqlError::new(
                            "42704",
                            format!("constraint \"{name}\" of relation \"{table}\" does not exist"),
                        ))
                    }
                }
            }
            other => {
                return Err(SqlError::unsupported(format!(
                    "ALTER TABLE ... {other} is not supported yet"
                )))
            }
        }
        let mut shape = self
            .sql_module(&module.name)?
            .map(|m| m.shape.clone())
            .unwrap_or_else(|| module.shape.clone());
        for c in shape.classes.iter_mut() {
            if c.id == new.id {
                *c = new.clone();
            }
        }
        let current = self.sql_module(&module.name)?;
        self.store(&module.name, current.as_deref(), shape)
    }

    /// `ALTER TABLE ... ADD PRIMARY KEY / UNIQUE (columns)`: a unique
    /// index built over the existing rows (23505 on a duplicate); a
    /// primary key's columns become NOT NULL (23502 on a NULL).
    fn add_key(
        &mut self,
        module: &ModuleDef,
        class: &ClassDef,
        new: &mut ClassDef,
        given: Option<String>,
        columns: Vec<String>,
        primary: bool,
    ) -> Result<(), SqlError> {
        let table = new.table.clone();
        for c in &columns {
            if !new.columns.iter().any(|k| &k.name == c) {
                return Err(SqlError::new(
                    "42703",
                    format!("column \"{c}\" named in key does not exist"),
                ));
            }
        }
        if primary && new.indexes.iter().any(|i| i.primary) {
            return Err(SqlError::new(
                "42P16",
                format!("multiple primary keys for table \"{table}\" are not allowed"),
            ));
        }
        let name = given.unwrap_or_else(|| match primary {
            true => format!("{table}_pkey"),
            false => format!("{table}_{}_key", columns.join("_")),
        });
        let taken = module
            .shape
            .classes
            .iter()
            .any(|c| c.table == name || c.indexes.iter().any(|i| i.name == name))
            || module.shape.views.iter().any(|v| v.name == name);
        if taken {
            return Err(SqlError::new(
                "42P07",
                format!("relation \"{name}\" already exists"),
            ));
        }
        if primary {
            for c in new.columns.iter_mut().filter(|c| columns.contains(&c.name)) {
                c.nullable = false;
            }
            self.check_rows(class, |obj| {
                match columns
                    .iter()
                    .find(|k| obj.get(*k).is_none_or(Json::is_null))
                {
                    Some(k) => Err(contains_nulls(&module.name, &table, k)),
                    None => Ok(()),
                }
            })?;
        }
        let index = IndexDef {
            id: self.engine.store.allocate_oid()?,
            name,
            columns,
            unique: true,
            primary,
            constraint: true,
            oid: 0,
            constraint_oid: 0,
        };
        crate::index::build(self.txn, new, &index)?;
        new.indexes.push(index);
        Ok(())
    }

    /// `ALTER TABLE ... ADD FOREIGN KEY (column) REFERENCES ...`: checked
    /// as in CREATE TABLE, then over every existing row (23503).
    fn add_foreign_key(
        &mut self,
        module: &ModuleDef,
        new: &mut ClassDef,
        clause: &ForeignKeyClause,
    ) -> Result<(), SqlError> {
        let reference = self.reference(&module.name, new, clause)?;
        let Some(pos) = new.columns.iter().position(|c| c.name == clause.column) else {
            return Err(SqlError::new(
                "42703",
                format!(
                    "column \"{}\" referenced in foreign key constraint does not exist",
                    clause.column
                ),
            ));
        };
        if new.columns[pos].references.is_some() {
            return Err(SqlError::unsupported(format!(
                "a second foreign key on column \"{}\" is not supported yet",
                clause.column
            )));
        }
        new.columns[pos].references = Some(reference);
        // The modules as they will be: this table with its new key.
        let mut all: Vec<Arc<ModuleDef>> = self
            .engine
            .catalog
            .resolve_all(self.txn)?
            .iter()
            .cloned()
            .collect();
        if let Some(m) = all.iter_mut().find(|m| m.name == module.name) {
            let mut changed = (**m).clone();
            for c in changed.shape.classes.iter_mut().filter(|c| c.id == new.id) {
                *c = new.clone();
            }
            *m = Arc::new(changed);
        }
        crate::class_objects::for_each(self.txn, new, |txn, _, _, obj| {
            crate::foreign_keys::check_references(txn, &all, &module.name, new, &obj)
        })
    }

    /// A column for ADD COLUMN: a type, NULL/NOT NULL and a constant
    /// DEFAULT (keys, references and sequences are not added so yet).
    fn new_column(
        &self,
        class: &ClassDef,
        def: &ast::ColumnDef,
        name: &str,
        settings: &Settings,
    ) -> Result<ColumnDef, SqlError> {
        if name.starts_with("__amber") {
            return Err(SqlError::new(
                "42939",
                format!("column name \"{name}\" is reserved"),
            ));
        }
        if is_serial(&def.data_type) {
            return Err(SqlError::unsupported(
                "ALTER TABLE ... ADD COLUMN of a serial column is not supported yet",
            ));
        }
        let (ty, declared) = sql_type(&def.data_type)?;
        // Never an id the class used: a dropped column's rows were
        // rewritten without it, but a higher id costs nothing.
        let id = class.columns.iter().map(|c| c.id).max().unwrap_or(0) + 1;
        let mut col = ColumnDef::new(id, name, ty);
        col.declared = declared;
        for opt in &def.options {
            match &opt.option {
                ColumnOption::Null => col.nullable = true,
                ColumnOption::NotNull => col.nullable = false,
                ColumnOption::Default(e) => {
                    col.default = default_value(&col, e, settings)?;
                    col.has_default = !col.default.is_null();
                }
                // Applied once the column exists (`alter_one`).
                ColumnOption::PrimaryKey(_)
                | ColumnOption::Unique(_)
                | ColumnOption::ForeignKey(_) => {}
                other => {
                    return Err(SqlError::unsupported(format!(
                        "ALTER TABLE ... ADD COLUMN with {other} is not supported yet"
                    )))
                }
            }
        }
        Ok(col)
    }

    /// Every object of `old` decoded, changed by `change`, and stored as
    /// an object of `new` (same class id).
    fn rewrite_rows(
        &mut self,
        old: &ClassDef,
        new: &ClassDef,
        mut change: impl FnMut(&mut Map<String, Json>) -> Result<(), SqlError>,
    ) -> Result<(), SqlError> {
        debug_assert_eq!(old.id, new.id);
        crate::class_objects::for_each(self.txn, old, |txn, key, _, mut obj| {
            obj.retain(|k, _| new.columns.iter().any(|c| &c.name == k));
            change(&mut obj)?;
            txn.put(key, &amber_catalog::row::encode(new, &obj)?)?;
            Ok(())
        })
    }

    /// Every object of `class` checked by `check`, nothing written.
    fn check_rows(
        &mut self,
        class: &ClassDef,
        mut check: impl FnMut(&Map<String, Json>) -> Result<(), SqlError>,
    ) -> Result<(), SqlError> {
        crate::class_objects::for_each(self.txn, class, |_, _, _, obj| check(&obj))
    }

    /// 0A000 when a view reads `table` (its stored text names columns).
    fn refuse_if_views_read(
        &self,
        module: &ModuleDef,
        table: &str,
        what: &str,
    ) -> Result<(), SqlError> {
        let target = (module.name.clone(), table.to_string());
        let all = self.engine.catalog.resolve_all(self.txn)?;
        if let Some(v) = all
            .iter()
            .flat_map(|m| m.shape.views.iter())
            .find(|v| v.tables.contains(&target))
        {
            return Err(SqlError::unsupported(format!(
                "cannot {what} table \"{table}\" while view \"{}\" reads it (yet)",
                v.name
            ))
            .with_hint("Drop the view, alter the table, and create the view again."));
        }
        Ok(())
    }

    /// Drops the indexes of `new` on column `name` (and their keys), and
    /// refuses (or with `cascade` drops) the foreign keys of other tables
    /// that reference it.
    fn drop_column_keys(
        &mut self,
        module: &ModuleDef,
        new: &mut ClassDef,
        name: &str,
        cascade: bool,
    ) -> Result<(), SqlError> {
        let all = self.engine.catalog.resolve_all(self.txn)?;
        for m in all.iter() {
            for c in &m.shape.classes {
                for col in &c.columns {
                    let Some(fk) = &col.references else { continue };
                    if fk.schema != module.name || fk.table != new.table || fk.column != name {
                        continue;
                    }
                    if c.id == new.id {
                        continue;
                    }
                    if !cascade {
                        return Err(SqlError::new(
                            "2BP01",
                            format!(
                                "cannot drop column {name} of table {} because other objects depend on it",
                                new.table
                            ),
                        )
                        .with_detail(Some(format!(
                            "constraint {} on table {} depends on column {name} of table {}",
                            fk.name, c.table, new.table
                        )))
                        .with_hint("Use DROP ... CASCADE to drop the dependent objects too."));
                    }
                }
            }
        }
        if cascade {
            let table = new.table.clone();
            self.drop_references_to(module, &table, name)?;
        }
        let (gone, kept): (Vec<IndexDef>, Vec<IndexDef>) = new
            .indexes
            .drain(..)
            .partition(|i| i.columns.iter().any(|c| c == name));
        new.indexes = kept;
        for index in gone {
            crate::index::drop_entries(self.txn, index.id)?;
        }
        // A self-reference to the dropped column goes with it.
        for col in new.columns.iter_mut() {
            if col.references.as_ref().is_some_and(|fk| {
                fk.schema == module.name && fk.table == new.table && fk.column == name
            }) {
                col.references = None;
            }
        }
        Ok(())
    }

    /// Removes the foreign keys of other tables referencing `table.column`.
    fn drop_references_to(
        &mut self,
        module: &ModuleDef,
        table: &str,
        column: &str,
    ) -> Result<(), SqlError> {
        let all = self.engine.catalog.resolve_all(self.txn)?;
        for m in all.iter() {
            let hit = |col: &ColumnDef| {
                col.references.as_ref().is_some_and(|fk| {
                    fk.schema == module.name && fk.table == table && fk.column == column
                })
            };
            let touches = m
                .shape
                .classes
                .iter()
                .any(|c| c.table != table && c.columns.iter().any(hit));
            if !touches {
                continue;
            }
            let mut shape = m.shape.clone();
            for c in shape
                .classes
                .iter_mut()
                .filter(|c| c.table != table || m.name != module.name)
            {
                for col in c.columns.iter_mut().filter(|col| hit(col)) {
                    col.references = None;
                }
            }
            self.store(&m.name, Some(m), shape)?;
        }
        Ok(())
    }

    /// Points the foreign keys of other tables at a renamed column
    /// (`column`: old, new) or table (`table`: new name) of `module`.
    fn retarget_references(
        &mut self,
        module: &ModuleDef,
        table: &str,
        column: Option<(&str, &str)>,
        renamed_table: Option<&str>,
    ) -> Result<(), SqlError> {
        if column.is_none() && renamed_table.is_none() {
            return Ok(());
        }
        let all = self.engine.catalog.resolve_all(self.txn)?;
        for m in all.iter() {
            let hit = |fk: &ForeignKeyDef| {
                fk.schema == module.name
                    && fk.table == table
                    && column.is_none_or(|(old, _)| fk.column == old)
            };
            let touches = m.shape.classes.iter().any(|c| {
                !(m.name == module.name && c.table == table)
                    && c.columns
                        .iter()
                        .any(|col| col.references.as_ref().is_some_and(hit))
            });
            if !touches {
                continue;
            }
            let mut shape = m.shape.clone();
            for c in shape.classes.iter_mut() {
                if m.name == module.name && c.table == table {
                    continue;
                }
                for col in c.columns.iter_mut() {
                    if let Some(fk) = col.references.as_mut().filter(|fk| hit(fk)) {
                        if let Some((_, new)) = column {
                            fk.column = new.to_string();
                        }
                        if let Some(t) = renamed_table {
                            fk.table = t.to_string();
                        }
                    }
                }
            }
            self.store(&m.name, Some(m), shape)?;
        }
        Ok(())
    }
}

fn missing_table(table: &str, if_exists: bool) -> Result<(), SqlError> {
    if if_exists {
        return Ok(());
    }
    Err(SqlError::new(
        "42P01",
        format!("relation \"{table}\" does not exist"),
    ))
}

/// 23502 as ALTER TABLE reports a NULL where a column may not have one.
fn contains_nulls(schema: &str, table: &str, column: &str) -> SqlError {
    SqlError::new(
        "23502",
        format!("column \"{column}\" of relation \"{table}\" contains null values"),
    )
    .with_table(schema, table)
    .with_column(column)
}

fn missing_column(column: &str, table: &str) -> SqlError {
    SqlError::new(
        "42703",
        format!("column \"{column}\" of relation \"{table}\" does not exist"),
    )
}
