//! The indexes a deployed module declares (`__indexes__`, `__unique__`,
//! and one per reference attribute), given their identities at deploy.
//!
//! An index of the version replaced with the same columns and uniqueness
//! keeps its id and name, so its entries stay and its oids carry over
//! (`ModuleDef::assign_oids` matches by name). A new one gets a fresh id
//! and PostgreSQL's default name (`account_owner_idx`,
//! `customer_email_key`) and is built over the class's objects in the
//! deploy's transaction: a duplicate there refuses the deploy (23505) and
//! the old version stays. An index the new version no longer declares
//! is dropped with its entries.

use crate::error::SqlError;
use amber_catalog::{ModuleDef, ModuleShape};
use amber_storage::{Store, Txn};
use std::collections::HashSet;

/// PostgreSQL's limit on a name (NAMEDATALEN - 1 bytes).
const NAME_BYTES_MAX: usize = 63;

pub(crate) fn assign(
    store: &Store,
    txn: &mut Txn,
    shape: &mut ModuleShape,
    existing: Option<&ModuleDef>,
    rewritten: &HashSet<String>,
    retyped: &HashSet<(String, String)>,
    deferred: &HashSet<String>,
) -> Result<(), SqlError> {
    let mut names: HashSet<String> = shape.classes.iter().map(|c| c.table.clone()).collect();
    // Names kept by surviving indexes are taken first, so a new index
    // never takes the name of one that stays.
    let mut fresh = Vec::new();
    for class in shape.classes.iter_mut() {
        let old = existing.and_then(|m| m.class(&class.name));
        for (pos, index) in class.indexes.iter_mut().enumerate() {
            let kept = old.and_then(|o| {
                o.indexes
                    .iter()
                    .find(|i| i.columns == index.columns && i.unique == index.unique)
            });
            // The objects of a class whose attributes changed were
            // rewritten, or a column changed type lazily: the index is
            // built again (a key's encoding follows its column's type),
            // under its name.
            let rebuilt = rewritten.contains(&class.name)
                || deferred.contains(&class.name)
                || index
                    .columns
                    .iter()
                    .any(|c| retyped.contains(&(class.name.clone(), c.clone())));
            match kept {
                Some(k) if rebuilt && names.insert(k.name.clone()) => {
                    index.name = k.name.clone();
                    fresh.push((class.name.clone(), pos));
                }
                Some(k) if names.insert(k.name.clone()) => {
                    index.id = k.id;
                    index.name = k.name.clone();
                }
                _ => fresh.push((class.name.clone(), pos)),
            }
        }
    }
    for (class_name, pos) in fresh {
        let Some(class) = shape.classes.iter_mut().find(|c| c.name == class_name) else {
            continue;
        };
        if class.indexes[pos].name.is_empty() {
            let suffix = if class.indexes[pos].unique {
                "key"
            } else {
                "idx"
            };
            let name = default_name(&class.table, &class.indexes[pos].columns, suffix, &names);
            names.insert(name.clone());
            class.indexes[pos].name = name;
        }
        let index = &mut class.indexes[pos];
        index.id = store.allocate_oid()?;
        let index = index.clone();
        // A class its `__migrate__` converts is built once converted.
        if !deferred.contains(&class.name) {
            super::build(txn, class, &index).map_err(|e| refused(e, &class.name))?;
        }
    }
    if let Some(old) = existing {
        for class in &old.shape.classes {
            let new = shape.classes.iter().find(|c| c.name == class.name);
            for index in &class.indexes {
                if !new.is_some_and(|n| n.indexes.iter().any(|i| i.id == index.id)) {
                    super::drop_entries(txn, index.id)?;
                }
            }
        }
    }
    debug_assert!(shape
        .classes
        .iter()
        .all(|c| c.indexes.iter().all(|i| i.id != 0 && !i.name.is_empty())));
    Ok(())
}

/// A unique index that cannot be built refuses the deploy, naming the class.
pub(crate) fn refused(e: SqlError, class: &str) -> SqlError {
    let message = format!("{} (class {class}); the old version stays", e.message);
    SqlError::new(&e.code, message).with_detail(e.detail)
}

/// PostgreSQL's name for an index of `table` on `columns`
/// (`ChooseRelationName`): `table_col1_col2_suffix`, cut to 63 bytes, a
/// number added until no relation of the schema has it.
fn default_name(table: &str, columns: &[String], suffix: &str, taken: &HashSet<String>) -> String {
    let stem = format!("{table}_{}", columns.join("_"));
    for n in 0u32.. {
        let tail = if n == 0 {
            format!("_{suffix}")
        } else {
            format!("_{suffix}{n}")
        };
        let mut head = stem.clone();
        while head.len() + tail.len() > NAME_BYTES_MAX {
            head.pop();
        }
        let name = format!("{head}{tail}");
        if !taken.contains(&name) {
            return name;
        }
    }
    unreachable!("u32 names exhausted")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_are_postgresqls() {
        let mut taken = HashSet::from(["account".to_string()]);
        let cols = vec!["owner".to_string()];
        assert_eq!(
            default_name("account", &cols, "idx", &taken),
            "account_owner_idx"
        );
        taken.insert("account_owner_idx".into());
        assert_eq!(
            default_name("account", &cols, "idx", &taken),
            "account_owner_idx1"
        );
        let long = "x".repeat(70);
        let name = default_name(&long, &cols, "key", &taken);
        assert_eq!(name.len(), NAME_BYTES_MAX);
        assert!(name.ends_with("_key"));
    }
}
