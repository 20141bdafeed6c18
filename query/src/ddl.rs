//! Module DDL: `CREATE [OR REPLACE] MODULE name AS $$source$$`,
//! `DROP MODULE name [CASCADE]`.

use crate::dml::lock;
use crate::error::SqlError;
use crate::session::{Engine, Output};
use amber_catalog::{class_prefix, global_key, Catalog, ClassDef, ModuleDef, ModuleShape, SqlType};
use amber_runtime::TxnHandle;
use amber_storage::Txn;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub enum ModuleDdl {
    Create {
        name: String,
        source: String,
        replace: bool,
    },
    Drop {
        name: String,
        cascade: bool,
        if_exists: bool,
    },
}

/// Words of `s` matched case-insensitively; returns the rest.
fn keyword<'a>(s: &'a str, word: &str) -> Option<&'a str> {
    let s = s.trim_start();
    // `get`, not indexing: the text may have a multi-byte character where
    // the keyword would end (`CREAT€`).
    if s.get(..word.len())
        .is_some_and(|w| w.eq_ignore_ascii_case(word))
    {
        let rest = &s[word.len()..];
        if rest
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric() && c != '_')
        {
            return Some(rest);
        }
    }
    None
}

fn identifier(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start();
    if let Some(rest) = s.strip_prefix('"') {
        let end = rest.find('"')?;
        return Some((rest[..end].to_string(), &rest[end + 1..]));
    }
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    if end == 0 || s.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((s[..end].to_lowercase(), &s[end..]))
}

/// Recognises module DDL at the start of `sql`; returns it and the text
/// after it. `Ok(None)` when `sql` starts with something else.
pub fn parse_module_ddl(sql: &str) -> Result<Option<(ModuleDdl, &str)>, SqlError> {
    if let Some(rest) = keyword(sql, "CREATE") {
        let (rest, replace) = match keyword(rest, "OR").and_then(|r| keyword(r, "REPLACE")) {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let Some(rest) = keyword(rest, "MODULE") else {
            return Ok(None);
        };
        let (name, rest) = identifier(rest).ok_or_else(|| {
            SqlError::syntax("syntax error: expected a module name after CREATE MODULE")
        })?;
        let rest = keyword(rest, "AS").ok_or_else(|| {
            SqlError::syntax("syntax error: expected AS $$...$$ after the module name")
        })?;
        let rest = rest.trim_start();
        if !rest.starts_with('$') {
            return Err(SqlError::syntax(
                "syntax error: the module source must be dollar-quoted ($$...$$)",
            ));
        }
        let tag_end = rest[1..]
            .find('$')
            .ok_or_else(|| SqlError::syntax("syntax error: unterminated dollar quote"))?
            + 2;
        let tag = &rest[..tag_end];
        let body = &rest[tag_end..];
        let close = body.find(tag).ok_or_else(|| {
            SqlError::syntax("syntax error: unterminated dollar-quoted module source")
        })?;
        let source = body[..close].to_string();
        let after = body[close + tag.len()..].trim_start();
        let after = match after.strip_prefix(';') {
            Some(a) => a,
            None if after.is_empty() => after,
            None => {
                return Err(SqlError::syntax(
                    "syntax error: expected ; after the module source",
                ))
            }
        };
        return Ok(Some((
            ModuleDdl::Create {
                name,
                source,
                replace,
            },
            after,
        )));
    }
    if let Some(rest) = keyword(sql, "DROP") {
        let Some(rest) = keyword(rest, "MODULE") else {
            return Ok(None);
        };
        let (rest, if_exists) = match keyword(rest, "IF").and_then(|r| keyword(r, "EXISTS")) {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let (name, rest) = identifier(rest).ok_or_else(|| {
            SqlError::syntax("syntax error: expected a module name after DROP MODULE")
        })?;
        let (rest, cascade) = match keyword(rest, "CASCADE") {
            Some(r) => (r, true),
            None => (keyword(rest, "RESTRICT").unwrap_or(rest), false),
        };
        let rest = rest.trim_start();
        let rest = match rest.strip_prefix(';') {
            Some(r) => r,
            None if rest.is_empty() => rest,
            None => return Err(SqlError::syntax("syntax error at end of DROP MODULE")),
        };
        return Ok(Some((
            ModuleDdl::Drop {
                name,
                cascade,
                if_exists,
            },
            rest,
        )));
    }
    Ok(None)
}

/// A module deployed or dropped by a transaction: what the shared catalog
/// cache learns once that transaction commits.
#[derive(Debug, Clone)]
pub struct Deployed {
    name: String,
    /// The new version's generation, or the dropped one's.
    generation: u64,
    def: Option<Arc<ModuleDef>>,
}

impl Deployed {
    /// `def`: the new version, or `None` for a module dropped.
    pub(crate) fn new(name: String, generation: u64, def: Option<Arc<ModuleDef>>) -> Deployed {
        Deployed {
            name,
            generation,
            def,
        }
    }

    pub fn publish(&self, catalog: &Catalog) {
        catalog.published(&self.name, self.generation, self.def.clone());
    }
}

/// What module DDL needs before it touches a transaction: for CREATE, the
/// module's shape, found by running its top-level code in a worker of its
/// own under the statement's deadline and cancel. Called before any lock
/// or transaction is taken, so a module that never finishes loading holds
/// nothing anyone waits for.
pub async fn prepare_module_ddl(
    engine: &Arc<Engine>,
    ddl: &ModuleDdl,
    deadline: Option<std::time::Instant>,
    cancel: &Arc<std::sync::atomic::AtomicBool>,
) -> Result<Option<ModuleShape>, SqlError> {
    match ddl {
        ModuleDdl::Create { name, source, .. } => Ok(Some(
            engine
                .runtime
                .analyze(
                    name.to_string(),
                    source.to_string(),
                    deadline,
                    Some(cancel.clone()),
                )
                .await?,
        )),
        ModuleDdl::Drop { .. } => Ok(None),
    }
}

/// Runs module DDL in `txn` (the session's block or a fresh transaction the
/// caller commits), with the shape [`prepare_module_ddl`] found; `when`
/// is the statement's deadline and cancel flag (a `__migrate__` runs
/// under them).
pub fn execute_module_ddl(
    engine: &Arc<Engine>,
    ddl: &ModuleDdl,
    shape: Option<ModuleShape>,
    handle: &TxnHandle,
    when: (
        Option<std::time::Instant>,
        Arc<std::sync::atomic::AtomicBool>,
    ),
) -> Result<(Output, Deployed), SqlError> {
    let (out, deployed, pending) = {
        let mut txn = lock(handle)?;
        execute_locked(engine, ddl, shape, &mut txn)?
    };
    if let (false, Some(def)) = (pending.is_empty(), &deployed.def) {
        crate::upgrade::run_python(engine, handle, def, &pending, when)?;
    }
    Ok((out, deployed))
}

fn execute_locked(
    engine: &Arc<Engine>,
    ddl: &ModuleDdl,
    shape: Option<ModuleShape>,
    txn: &mut Txn,
) -> Result<(Output, Deployed, Vec<crate::upgrade::Pending>), SqlError> {
    match (ddl, shape) {
        (
            ModuleDdl::Create {
                name,
                source,
                replace,
            },
            Some(shape),
        ) => create_module(engine, txn, name, source, *replace, shape),
        (ModuleDdl::Create { .. }, None) => {
            Err(SqlError::internal("CREATE MODULE without its analysis"))
        }
        (
            ModuleDdl::Drop {
                name,
                cascade,
                if_exists,
            },
            _,
        ) => drop_module(engine, txn, name, *cascade, *if_exists).map(|(o, d)| (o, d, Vec::new())),
    }
}

/// A fresh catalog oid ([`amber_catalog::oids`]); 54000 once the 32-bit
/// space is used up (never a reused oid).
pub(crate) fn catalog_oid(store: &amber_storage::Store) -> Result<u32, SqlError> {
    let n = store.sequence_next(amber_catalog::oids::CATALOG_OID_SEQUENCE)?;
    amber_catalog::oids::catalog_oid(n)
        .ok_or_else(|| SqlError::new("54000", "the database has used every catalog oid"))
}

fn validate_shape(name: &str, shape: &ModuleShape) -> Result<(), SqlError> {
    let mut tables = std::collections::HashSet::new();
    for c in &shape.classes {
        if !tables.insert(c.table.clone()) {
            return Err(SqlError::new(
                "42P07",
                format!("module {name} defines table {} twice", c.table),
            ));
        }
        for col in &c.columns {
            check_refs(name, shape, &col.ty)?;
        }
    }
    if name == "amber" || name == "pg_catalog" || name == "information_schema" || name == "public" {
        return Err(SqlError::new(
            "42939",
            format!("module name \"{name}\" is reserved"),
        ));
    }
    Ok(())
}

fn check_refs(name: &str, shape: &ModuleShape, t: &SqlType) -> Result<(), SqlError> {
    match t {
        SqlType::Ref(c) if !shape.classes.iter().any(|k| &k.name == c) => Err(SqlError::new(
            "42P13",
            format!("module {name}: reference to class {c}, which is not a persistent class of this module"),
        )),
        SqlType::Array(inner) => check_refs(name, shape, inner),
        _ => Ok(()),
    }
}

fn has_objects(txn: &Txn, class_id: u64) -> Result<bool, SqlError> {
    let end = amber_catalog::class_range_end(class_id);
    Ok(!txn.scan_range(&class_prefix(class_id), &end, 1)?.is_empty())
}

fn create_module(
    engine: &Arc<Engine>,
    txn: &mut Txn,
    name: &str,
    source: &str,
    replace: bool,
    mut shape: ModuleShape,
) -> Result<(Output, Deployed, Vec<crate::upgrade::Pending>), SqlError> {
    let existing = engine.catalog.resolve(txn, name)?;
    if existing.is_some() && !replace {
        return Err(SqlError::new(
            "42P06",
            format!("module \"{name}\" already exists"),
        ));
    }
    validate_shape(name, &shape)?;
    // Keep the identity of classes that survive a replace.
    let mut migrated = std::collections::HashSet::new();
    // (class, column) of columns whose type changed lazily: the indexes
    // on them are built again.
    let mut retyped = std::collections::HashSet::new();
    // Classes converted by their own `__migrate__`, once the new version
    // is in the transaction (their indexes are built after it).
    let mut pending = Vec::new();
    for class in shape.classes.iter_mut() {
        let old: Option<&ClassDef> = existing.as_ref().and_then(|m| m.class(&class.name));
        class.assign_column_ids(old);
        if let Some(c) = class
            .columns
            .iter()
            .find(|c| c.id > amber_catalog::row::COLUMN_ID_MAX)
        {
            return Err(SqlError::new(
                "54011",
                format!(
                    "class {} has used more than {} column ids (column {})",
                    class.name,
                    amber_catalog::row::COLUMN_ID_MAX,
                    c.name
                ),
            ));
        }
        match old {
            Some(old) => {
                class.id = old.id;
                if old.columns != class.columns && has_objects(txn, old.id)? {
                    if class.migrate {
                        pending.push(crate::upgrade::Pending {
                            old: old.clone(),
                            class: class.name.clone(),
                        });
                    } else {
                        let done = crate::upgrade::migrate_class(txn, name, old, class)?;
                        if done.rewritten > 0 {
                            tracing::info!(module = name, class = %class.name, objects = done.rewritten, "objects converted");
                        }
                        if done.rewritten > 0 {
                            migrated.insert(class.name.clone());
                        }
                        for column in done.retyped {
                            retyped.insert((class.name.clone(), column));
                        }
                    }
                }
            }
            None => class.id = engine.store.allocate_oid()?,
        }
    }
    if let Some(old) = &existing {
        for class in &old.shape.classes {
            if shape.class_ids(&class.name).is_none() && has_objects(txn, class.id)? {
                return Err(SqlError::new(
                    "2BP01",
                    format!(
                        "cannot drop class {} because it still has objects",
                        class.name
                    ),
                ));
            }
        }
    }
    crate::index::deploy::assign(
        &engine.store,
        txn,
        &mut shape,
        existing.as_deref(),
        &migrated,
        &retyped,
        &pending.iter().map(|p| p.class.clone()).collect(),
    )?;
    for g in &shape.globals {
        let key = global_key(name, &g.name);
        let Some(stored) = txn.get(&key)? else {
            txn.put(&key, g.value.to_string().as_bytes())?;
            continue;
        };
        let old_type = existing
            .as_ref()
            .and_then(|m| m.shape.globals.iter().find(|o| o.name == g.name))
            .map(|o| o.ty.clone());
        if old_type.as_ref() == Some(&g.ty) {
            continue;
        }
        // The variable changes type: its stored value is converted, or the
        // deploy is refused (a value no call can read would fail them all).
        let value: serde_json::Value = serde_json::from_slice(&stored)
            .map_err(|e| SqlError::internal(format!("stored module variable {}: {e}", g.name)))?;
        let converted = crate::canonical::convert_value(&g.ty, &value).map_err(|e| {
            SqlError::new(
                "42804",
                format!(
                    "module variable {}.{} changes type to {} and its value {} cannot be converted; the old version stays",
                    name,
                    g.name,
                    g.ty.pg_name(),
                    value
                ),
            )
            .with_detail(Some(e.message))
        })?;
        if converted.is_null() && !g.nullable {
            return Err(SqlError::new(
                "42804",
                format!(
                    "module variable {name}.{} may not be None; the old version stays",
                    g.name
                ),
            ));
        }
        txn.put(&key, converted.to_string().as_bytes())?;
    }
    let mut def = ModuleDef {
        name: name.to_string(),
        version: existing.as_ref().map(|m| m.version + 1).unwrap_or(1),
        generation: engine.store.allocate_oid()?,
        source: source.to_string(),
        sql_defined: false,
        deployed_at: chrono::Utc::now().to_rfc3339(),
        oid: 0,
        shape,
    };
    def.assign_oids(existing.as_deref(), &mut || catalog_oid(&engine.store))?;
    debug_assert!(def.has_oids());
    Catalog::store_module(txn, &def)?;
    amber_catalog::history::record(txn, &def, crate::session::SESSION_USER)?;
    tracing::info!(
        module = name,
        generation = def.generation,
        "module deployed"
    );
    let output = Output::Command(if existing.is_some() {
        "CREATE OR REPLACE MODULE".into()
    } else {
        "CREATE MODULE".into()
    });
    let deployed = Deployed {
        name: name.to_string(),
        generation: def.generation,
        def: Some(Arc::new(def)),
    };
    Ok((output, deployed, pending))
}

trait ShapeExt {
    fn class_ids(&self, name: &str) -> Option<u64>;
}

impl ShapeExt for ModuleShape {
    fn class_ids(&self, name: &str) -> Option<u64> {
        self.classes.iter().find(|c| c.name == name).map(|c| c.id)
    }
}

fn drop_module(
    engine: &Arc<Engine>,
    txn: &mut Txn,
    name: &str,
    cascade: bool,
    if_exists: bool,
) -> Result<(Output, Deployed), SqlError> {
    let Some(existing) = engine.catalog.resolve(txn, name)? else {
        if if_exists {
            let nothing = Deployed {
                name: name.to_string(),
                generation: 0,
                def: None,
            };
            return Ok((Output::Command("DROP MODULE".into()), nothing));
        }
        return Err(SqlError::new(
            "3F000",
            format!("module \"{name}\" does not exist"),
        ));
    };
    for class in &existing.shape.classes {
        if !cascade && has_objects(txn, class.id)? {
            return Err(SqlError::new(
                "2BP01",
                format!(
                    "cannot drop module {name} because class {} has objects",
                    class.name
                ),
            )
            .with_detail(Some(
                "Use DROP MODULE ... CASCADE to drop the objects too.".into(),
            )));
        }
        for (key, _) in txn.scan_prefix(&class_prefix(class.id))? {
            txn.delete(&key)?;
        }
        for index in &class.indexes {
            crate::index::drop_entries(txn, index.id)?;
        }
    }
    for g in &existing.shape.globals {
        txn.delete(&global_key(name, &g.name))?;
    }
    Catalog::delete_module(txn, name)?;
    let dropped = Deployed {
        name: name.to_string(),
        generation: existing.generation,
        def: None,
    };
    Ok((Output::Command("DROP MODULE".into()), dropped))
}
