//! Foreign keys in CREATE TABLE (`REFERENCES`) and what DROP TABLE does
//! to those referencing the dropped table; `foreign_keys.rs` keeps them
//! on every write.

use super::*;

impl Ddl<'_> {
    /// What `fk` (a clause of table `class` being made in `schema`)
    /// references, checked as PostgreSQL checks it: the table exists
    /// (42P01), the column exists (42703) and has a unique key of its own
    /// (42830), and the two columns have one type (42804).
    pub(super) fn reference(
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
            on_delete: fk.on_delete,
        })
    }

    /// The foreign keys of other tables that reference `target` (schema,
    /// table): dropped with CASCADE (the tables stay), else 2BP01 as
    /// PostgreSQL refuses.
    pub(super) fn drop_referencing_keys(
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
                )))
                .with_hint("Use DROP ... CASCADE to drop the dependent objects too."));
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
}

/// A `REFERENCES` clause of CREATE TABLE, of one column (as a column
/// option or a table constraint).
pub(super) struct ForeignKeyClause {
    name: Option<String>,
    pub(super) column: String,
    table: ObjectName,
    /// The referenced column; `None`: the referenced table's primary key.
    referred: Option<String>,
    on_delete: amber_catalog::OnDelete,
}

impl ForeignKeyClause {
    pub(super) fn new(
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
        let on_delete = match fk.on_delete {
            None | Some(ast::ReferentialAction::NoAction) | Some(ast::ReferentialAction::Restrict) => {
                amber_catalog::OnDelete::NoAction
            }
            Some(ast::ReferentialAction::Cascade) => amber_catalog::OnDelete::Cascade,
            Some(ast::ReferentialAction::SetNull) => amber_catalog::OnDelete::SetNull,
            Some(other) => {
                return Err(SqlError::unsupported(format!(
                    "ON DELETE {other} is not supported yet (NO ACTION, RESTRICT, CASCADE and SET NULL are)"
                )))
            }
        };
        match fk.on_update {
            None
            | Some(ast::ReferentialAction::NoAction)
            | Some(ast::ReferentialAction::Restrict) => {}
            Some(other) => {
                return Err(SqlError::unsupported(format!(
                    "ON UPDATE {other} is not supported yet (NO ACTION and RESTRICT are)"
                )))
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
            on_delete,
        })
    }
}
