//! PostgreSQL object ids of Amber's catalog objects: what `pg_catalog`
//! lists a schema, table, row type, index, constraint, function or view
//! as, and what `::regclass` and RowDescription name them by.
//!
//! Why ids of their own (not the object-id allocator's `u64`s): oids are
//! 32 bits, and a class id can pass 2^32 in a database that has created
//! four billion objects. Catalog oids come from one sequence of their own
//! ([`CATALOG_OID_SEQUENCE`]), start at PostgreSQL's first user oid, are
//! stored with the module version and carried over by every redeploy of
//! an object of the same name: stable across restarts and versions.

use crate::ModuleDef;

/// The store sequence catalog oids are drawn from (object ids, which
/// other sequences are named by, start at 1).
pub const CATALOG_OID_SEQUENCE: u64 = 0;

/// PostgreSQL's `FirstNormalObjectId`: oids below are built-in objects.
pub const FIRST_USER_OID: u32 = 16384;

/// The catalog oid of the `n`th value (1, 2, ...) of
/// [`CATALOG_OID_SEQUENCE`]; `None` past the 32-bit space (fails closed:
/// never a wrapped, reused oid).
pub fn catalog_oid(n: u64) -> Option<u32> {
    let oid = u64::from(FIRST_USER_OID - 1).checked_add(n)?;
    u32::try_from(oid).ok()
}

impl ModuleDef {
    /// Gives every object of this version without an oid (0) one: the oid
    /// of the object of the same name in `old` (the version it replaces),
    /// else a fresh one from `next`.
    pub fn assign_oids<E>(
        &mut self,
        old: Option<&ModuleDef>,
        next: &mut dyn FnMut() -> std::result::Result<u32, E>,
    ) -> std::result::Result<(), E> {
        fn keep<E>(
            oid: &mut u32,
            old: Option<u32>,
            next: &mut dyn FnMut() -> std::result::Result<u32, E>,
        ) -> std::result::Result<(), E> {
            if *oid == 0 {
                *oid = match old.filter(|o| *o != 0) {
                    Some(o) => o,
                    None => next()?,
                };
            }
            Ok(())
        }
        keep(&mut self.oid, old.map(|m| m.oid), next)?;
        for class in &mut self.shape.classes {
            let before = old.and_then(|m| m.shape.classes.iter().find(|c| c.table == class.table));
            keep(&mut class.oid, before.map(|c| c.oid), next)?;
            keep(&mut class.type_oid, before.map(|c| c.type_oid), next)?;
            if !class.hidden_id {
                keep(
                    &mut class.id_index_oid,
                    before.map(|c| c.id_index_oid),
                    next,
                )?;
                keep(
                    &mut class.id_constraint_oid,
                    before.map(|c| c.id_constraint_oid),
                    next,
                )?;
            }
            for column in &mut class.columns {
                let was = before.and_then(|c| c.columns.iter().find(|x| x.name == column.name));
                if column.has_default || column.sequence.is_some() {
                    keep(&mut column.default_oid, was.map(|c| c.default_oid), next)?;
                }
                if column.sequence.is_some() {
                    keep(&mut column.sequence_oid, was.map(|c| c.sequence_oid), next)?;
                }
                if matches!(column.ty, crate::SqlType::Ref(_)) || column.references.is_some() {
                    keep(&mut column.fkey_oid, was.map(|c| c.fkey_oid), next)?;
                }
            }
            for index in &mut class.indexes {
                let was = before.and_then(|c| c.indexes.iter().find(|i| i.name == index.name));
                keep(&mut index.oid, was.map(|i| i.oid), next)?;
                if index.constraint {
                    keep(
                        &mut index.constraint_oid,
                        was.map(|i| i.constraint_oid),
                        next,
                    )?;
                }
            }
            for check in &mut class.checks {
                let was = before.and_then(|c| c.checks.iter().find(|k| k.name == check.name));
                keep(&mut check.oid, was.map(|k| k.oid), next)?;
            }
            for method in &mut class.methods {
                let was = before.and_then(|c| c.methods.iter().find(|f| f.name == method.name));
                keep(&mut method.oid, was.map(|f| f.oid), next)?;
            }
        }
        for function in &mut self.shape.functions {
            let was = old.and_then(|m| m.shape.functions.iter().find(|f| f.name == function.name));
            keep(&mut function.oid, was.map(|f| f.oid), next)?;
        }
        for view in &mut self.shape.views {
            let was = old.and_then(|m| m.shape.views.iter().find(|v| v.name == view.name));
            keep(&mut view.oid, was.map(|v| v.oid), next)?;
            keep(&mut view.type_oid, was.map(|v| v.type_oid), next)?;
        }
        Ok(())
    }

    /// Whether every object of this version has its oid (a postcondition
    /// of [`ModuleDef::assign_oids`]; records written before oids existed
    /// have none until their next deploy).
    pub fn has_oids(&self) -> bool {
        self.oid != 0
            && self.shape.classes.iter().all(|c| {
                c.oid != 0
                    && c.type_oid != 0
                    && c.indexes.iter().all(|i| i.oid != 0)
                    && c.checks.iter().all(|k| k.oid != 0)
                    && c.methods.iter().all(|f| f.oid != 0)
            })
            && self.shape.functions.iter().all(|f| f.oid != 0)
            && self.shape.views.iter().all(|v| v.oid != 0)
    }
}

#[cfg(test)]
mod tests {
    use crate::{ClassDef, ColumnDef, ModuleDef, ModuleShape, SqlType};

    fn module(default: bool) -> ModuleDef {
        let col = |name: &str, ty: SqlType, has_default: bool| ColumnDef {
            has_default,
            ..ColumnDef::new(0, name, ty)
        };
        let class = |name: &str, table: &str, columns: Vec<ColumnDef>| {
            ClassDef::new(7, name, table, columns)
        };
        ModuleDef {
            name: "shop".into(),
            version: 1,
            generation: 1,
            source: String::new(),
            sql_defined: false,
            deployed_at: String::new(),
            oid: 0,
            shape: ModuleShape {
                classes: vec![
                    class(
                        "Customer",
                        "customer",
                        vec![col("name", SqlType::Text, false)],
                    ),
                    class(
                        "Item",
                        "item",
                        vec![
                            col("size", SqlType::Int8, default),
                            col("owner", SqlType::Ref("Customer".into()), false),
                        ],
                    ),
                ],
                functions: Vec::new(),
                globals: Vec::new(),
                views: Vec::new(),
                comment: None,
            },
        }
    }

    fn assigned(m: &mut ModuleDef, old: Option<&ModuleDef>, next: &mut u32) {
        for class in &mut m.shape.classes {
            let before = old.and_then(|o| o.class(&class.name));
            class.assign_column_ids(before);
        }
        m.assign_oids::<()>(old, &mut || {
            *next += 1;
            Ok(*next)
        })
        .unwrap();
        assert!(m.has_oids());
    }

    #[test]
    fn a_redeploy_keeps_every_oid_and_compares_equal() {
        let mut next = super::FIRST_USER_OID - 1;
        let mut v1 = module(true);
        assigned(&mut v1, None, &mut next);
        let item = v1.class("Item").unwrap();
        assert_ne!(item.columns[0].default_oid, 0, "a default has an oid");
        assert_ne!(item.columns[1].fkey_oid, 0, "a reference is a foreign key");
        let used = next;
        // The same source again: the same oids, no new ones, equal columns
        // (what a replace compares to refuse shape changes).
        let mut v2 = module(true);
        for class in &mut v2.shape.classes {
            // What CREATE OR REPLACE MODULE compares before oids are
            // assigned: equal columns.
            let before = v1.class(&class.name).unwrap();
            class.assign_column_ids(Some(before));
            assert_eq!(class.columns, before.columns);
        }
        assigned(&mut v2, Some(&v1), &mut next);
        assert_eq!(next, used);
        assert_eq!(v1.shape, v2.shape);
        assert_eq!(v1.oid, v2.oid);
        // A column losing its default loses that oid; the rest stay.
        let mut v3 = module(false);
        assigned(&mut v3, Some(&v2), &mut next);
        let item3 = v3.class("Item").unwrap();
        assert_eq!(item3.columns[0].default_oid, 0);
        assert_eq!(item3.oid, v2.class("Item").unwrap().oid);
        assert_eq!(next, used);
    }

    #[test]
    fn catalog_oids_start_at_the_first_user_oid_and_fail_closed() {
        assert_eq!(super::catalog_oid(1), Some(16384));
        assert_eq!(
            super::catalog_oid(u64::from(u32::MAX - 16383)),
            Some(u32::MAX)
        );
        assert_eq!(super::catalog_oid(u64::from(u32::MAX - 16383) + 1), None);
    }
}
