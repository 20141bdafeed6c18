//! CREATE [UNIQUE] INDEX and DROP INDEX.

use super::*;

impl Ddl<'_> {
    pub(super) fn create_index(&mut self, ci: &ast::CreateIndex) -> Result<(), SqlError> {
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
        crate::index::build(self.txn, &class, &index)?;
        let mut shape = module.shape.clone();
        if let Some(c) = shape.classes.iter_mut().find(|c| c.id == class.id) {
            c.indexes.push(index);
        }
        self.store(&schema, Some(&module), shape)
    }

    pub(super) fn drop_index(
        &mut self,
        name: &ObjectName,
        if_exists: bool,
    ) -> Result<(), SqlError> {
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
        crate::index::drop_entries(self.txn, def.id)?;
        let mut shape = module.shape.clone();
        if let Some(c) = shape.classes.iter_mut().find(|c| c.id == class_id) {
            c.indexes.retain(|i| i.id != def.id);
        }
        self.store(&schema, Some(&module), shape)
    }
}

pub(super) fn index_columns(cols: &[ast::IndexColumn]) -> Result<Vec<String>, SqlError> {
    cols.iter()
        .map(|c| match &c.column.expr {
            ast::Expr::Identifier(i) => Ok(ident_value(i)),
            other => Err(SqlError::unsupported(format!(
                "index on expression {other} is not supported yet"
            ))),
        })
        .collect()
}
