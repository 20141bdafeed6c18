//! Amber's catalog: modules, classes (tables), columns, functions, and the
//! encoding of their values.
//!
//! Architecture invariant: the catalog is the single source of truth for the
//! shape of stored objects. It is persisted in the same transactional store
//! as the objects (key prefix `c`), and an in-memory copy is swapped
//! atomically when a module deploy commits, so readers never see half a
//! module.
//!
//! Values are stored as JSON, directed by the column's [`SqlType`]: the same
//! encoding is written by the Python runtime and by SQL DML, and read by the
//! query engine. See ARCHITECTURE.md for the key layout.

use amber_storage::{StorageError, Txn};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

mod types;
pub use types::SqlType;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("corrupt catalog entry: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Invalid(String),
    /// A statement used a module version its transaction does not see.
    #[error("could not serialize access: module {0} was redeployed by a concurrent transaction")]
    Redeployed(String),
}

impl CatalogError {
    pub fn sqlstate(&self) -> &'static str {
        match self {
            CatalogError::Storage(s) => s.sqlstate(),
            CatalogError::Redeployed(_) => "40001",
            CatalogError::Corrupt(_) | CatalogError::Invalid(_) => "XX000",
        }
    }
}

pub type Result<T> = std::result::Result<T, CatalogError>;

/// Key prefix of module records: `c\0m\0<module name>`.
const MODULE_KEY_PREFIX: &[u8] = b"c\x00m\x00";

/// Key prefix of each module's generation: `c\0g\0<module name>` -> 8
/// bytes BE. Small, so that every statement using a module can read it:
/// a deploy writes it, so a transaction that used the old version
/// conflicts with the deploy (40001) instead of writing the old shape.
const GENERATION_KEY_PREFIX: &[u8] = b"c\x00g\x00";

pub fn generation_key(name: &str) -> Vec<u8> {
    let mut k = GENERATION_KEY_PREFIX.to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

pub fn module_key(name: &str) -> Vec<u8> {
    let mut k = MODULE_KEY_PREFIX.to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

/// Key prefix of all objects of one class: `o` + class id (8 bytes BE).
pub fn class_prefix(class_id: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(b'o');
    k.extend_from_slice(&class_id.to_be_bytes());
    k
}

/// Key of one object: `o` + class id (8 bytes BE) + object id (8 bytes BE).
pub fn object_key(class_id: u64, oid: u64) -> Vec<u8> {
    let mut k = class_prefix(class_id);
    k.extend_from_slice(&oid.to_be_bytes());
    k
}

/// Object id of an object key.
pub fn oid_of_key(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(9..17)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

/// (class id, object id) of an object key; `None` for any other key.
pub fn object_of_key(key: &[u8]) -> Option<(u64, u64)> {
    if key.len() != 17 || key[0] != b'o' {
        return None;
    }
    let cid: [u8; 8] = key[1..9].try_into().ok()?;
    Some((u64::from_be_bytes(cid), oid_of_key(key)?))
}

/// Key of a persistent module-level variable: `g` + module + `\0` + name.
pub fn global_key(module: &str, name: &str) -> Vec<u8> {
    let mut k = vec![b'g'];
    k.extend_from_slice(module.as_bytes());
    k.push(0);
    k.extend_from_slice(name.as_bytes());
    k
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ColumnDef {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: SqlType,
    pub nullable: bool,
    pub has_default: bool,
    #[serde(default)]
    pub default: Json,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ParamDef {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: SqlType,
}

/// What a function returns, as SQL sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Returns {
    Void,
    Scalar(SqlType),
    /// A set of objects of the named class of the same module.
    SetOf(String),
}

impl Returns {
    pub fn parse(s: &str) -> Option<Returns> {
        if s == "void" {
            Some(Returns::Void)
        } else if let Some(c) = s.strip_prefix("setof:") {
            Some(Returns::SetOf(c.to_string()))
        } else {
            SqlType::parse(s).map(Returns::Scalar)
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Returns::Void => "void".into(),
            Returns::Scalar(t) => t.describe(),
            Returns::SetOf(c) => format!("setof:{c}"),
        }
    }
}

impl Serialize for Returns {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.describe())
    }
}

impl<'de> Deserialize<'de> for Returns {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Returns::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("bad return type {s}")))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FunctionDef {
    /// The Python name (`deposit`, `transfer`).
    pub name: String,
    pub params: Vec<ParamDef>,
    pub returns: Returns,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClassDef {
    /// Unique in the database, never reused; the object key prefix.
    #[serde(default)]
    pub id: u64,
    /// The Python class name (`OrderLine`).
    pub name: String,
    /// The SQL table name (`order_line`).
    pub table: String,
    /// The Python name of the persistent parent class in the same module.
    pub parent: Option<String>,
    pub columns: Vec<ColumnDef>,
    pub methods: Vec<FunctionDef>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GlobalDef {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: SqlType,
    pub nullable: bool,
    /// The value at first deploy, already encoded.
    #[serde(default)]
    pub value: Json,
}

/// What the runtime finds in a module's source: everything but identities.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModuleShape {
    pub classes: Vec<ClassDef>,
    pub functions: Vec<FunctionDef>,
    pub globals: Vec<GlobalDef>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModuleDef {
    pub name: String,
    /// 1 at first deploy, +1 per replace (what users see).
    pub version: u64,
    /// Unique across all deploys ever (an id from the store): what loaded
    /// interpreter copies are keyed by, since `version` restarts after DROP.
    #[serde(default)]
    pub generation: u64,
    pub source: String,
    /// RFC 3339 time of the deploy.
    pub deployed_at: String,
    #[serde(flatten)]
    pub shape: ModuleShape,
}

impl ModuleDef {
    pub fn class(&self, python_name: &str) -> Option<&ClassDef> {
        self.shape.classes.iter().find(|c| c.name == python_name)
    }

    pub fn table(&self, table: &str) -> Option<&ClassDef> {
        self.shape.classes.iter().find(|c| c.table == table)
    }

    /// Ids of a class and all its (transitive) subclasses in this module.
    pub fn class_ids_with_subclasses(&self, python_name: &str) -> Vec<u64> {
        let mut out = Vec::new();
        let mut stack = vec![python_name.to_string()];
        // Bounded: each class is visited once, classes are finite.
        while let Some(name) = stack.pop() {
            if let Some(c) = self.class(&name) {
                if out.contains(&c.id) {
                    continue;
                }
                out.push(c.id);
                for sub in &self.shape.classes {
                    if sub.parent.as_deref() == Some(name.as_str()) {
                        stack.push(sub.name.clone());
                    }
                }
            }
        }
        out
    }

    /// Resolves an SQL function name of this module: a top-level function
    /// `name`, or a method `class_method` (first argument the object id).
    pub fn sql_function(&self, sql_name: &str) -> Option<Callable<'_>> {
        if let Some(f) = self.shape.functions.iter().find(|f| f.name == sql_name) {
            return Some(Callable {
                class: None,
                function: f,
            });
        }
        for c in &self.shape.classes {
            if let Some(rest) = sql_name.strip_prefix(&c.table) {
                if let Some(method) = rest.strip_prefix('_') {
                    if let Some(f) = c.methods.iter().find(|m| m.name == method) {
                        return Some(Callable {
                            class: Some(c),
                            function: f,
                        });
                    }
                }
            }
        }
        None
    }

    /// Every SQL-callable function of the module, with its SQL name.
    pub fn sql_functions(&self) -> Vec<(String, Callable<'_>)> {
        let mut out: Vec<(String, Callable<'_>)> = self
            .shape
            .functions
            .iter()
            .map(|f| {
                (
                    f.name.clone(),
                    Callable {
                        class: None,
                        function: f,
                    },
                )
            })
            .collect();
        for c in &self.shape.classes {
            for m in &c.methods {
                out.push((
                    format!("{}_{}", c.table, m.name),
                    Callable {
                        class: Some(c),
                        function: m,
                    },
                ));
            }
        }
        out
    }
}

/// A function or method as SQL calls it.
#[derive(Debug, Clone, Copy)]
pub struct Callable<'a> {
    pub class: Option<&'a ClassDef>,
    pub function: &'a FunctionDef,
}

impl Callable<'_> {
    /// The SQL parameter types, with the object id first for methods.
    pub fn sql_params(&self) -> Vec<SqlType> {
        let mut out = Vec::new();
        if let Some(c) = self.class {
            out.push(SqlType::Ref(c.name.clone()));
        }
        out.extend(self.function.params.iter().map(|p| p.ty.clone()));
        out
    }
}

/// The in-memory catalog, shared by all sessions.
#[derive(Default)]
pub struct Catalog {
    modules: RwLock<BTreeMap<String, Arc<ModuleDef>>>,
}

impl Catalog {
    /// Loads every module record through `txn`.
    pub fn load(txn: &Txn) -> Result<Catalog> {
        let mut modules = BTreeMap::new();
        for (_key, value) in txn.scan_prefix(MODULE_KEY_PREFIX)? {
            let m: ModuleDef =
                serde_json::from_slice(&value).map_err(|e| CatalogError::Corrupt(e.to_string()))?;
            modules.insert(m.name.clone(), Arc::new(m));
        }
        Ok(Catalog {
            modules: RwLock::new(modules),
        })
    }

    pub fn module(&self, name: &str) -> Option<Arc<ModuleDef>> {
        self.modules.read().ok()?.get(name).cloned()
    }

    pub fn modules(&self) -> Vec<Arc<ModuleDef>> {
        self.modules
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Writes a module record into `txn`; call [`Catalog::publish`] after the
    /// transaction commits.
    pub fn store_module(txn: &mut Txn, module: &ModuleDef) -> Result<()> {
        let bytes = serde_json::to_vec(module).map_err(|e| CatalogError::Corrupt(e.to_string()))?;
        txn.put(&module_key(&module.name), &bytes)?;
        txn.put(
            &generation_key(&module.name),
            &module.generation.to_be_bytes(),
        )?;
        Ok(())
    }

    pub fn delete_module(txn: &mut Txn, name: &str) -> Result<()> {
        txn.delete(&module_key(name))?;
        txn.delete(&generation_key(name))?;
        Ok(())
    }

    /// Fails (40001) unless `module` is the version `txn` sees. The read joins the
    /// transaction's read set, so a deploy committed after it makes the
    /// transaction's commit fail (serializable), and a version deployed
    /// before the statement but after the transaction's snapshot is
    /// reported here.
    pub fn check_current(txn: &Txn, module: &ModuleDef) -> Result<()> {
        if Catalog::is_current(txn, module)? {
            Ok(())
        } else {
            Err(CatalogError::Redeployed(module.name.clone()))
        }
    }

    fn is_current(txn: &Txn, module: &ModuleDef) -> Result<bool> {
        if let Some(g) = txn.get(&generation_key(&module.name))? {
            let bytes: [u8; 8] = g
                .as_slice()
                .try_into()
                .map_err(|_| CatalogError::Corrupt(format!("generation of {}", module.name)))?;
            return Ok(u64::from_be_bytes(bytes) == module.generation);
        }
        // Deployed before generations had their own key: the record itself.
        match txn.get(&module_key(&module.name))? {
            None => Ok(false),
            Some(bytes) => {
                let stored: ModuleDef = serde_json::from_slice(&bytes)
                    .map_err(|e| CatalogError::Corrupt(e.to_string()))?;
                Ok(stored.generation == module.generation)
            }
        }
    }

    /// Makes a committed module visible (or removes it with `None`).
    pub fn publish(&self, name: &str, module: Option<ModuleDef>) {
        if let Ok(mut m) = self.modules.write() {
            match module {
                Some(def) => {
                    m.insert(name.to_string(), Arc::new(def));
                }
                None => {
                    m.remove(name);
                }
            }
        }
    }
}

/// `OrderLine` -> `order_line`.
pub fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev_lower =
                i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if i > 0 && (prev_lower || (next_lower && chars[i - 1].is_uppercase())) {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_matches_spec() {
        assert_eq!(snake_case("OrderLine"), "order_line");
        assert_eq!(snake_case("Account"), "account");
        assert_eq!(snake_case("HTTPRequest"), "http_request");
    }

    #[test]
    fn returns_round_trip() {
        for s in ["void", "int", "setof:Account", "array:str", "ref:Customer"] {
            assert_eq!(Returns::parse(s).map(|r| r.describe()).as_deref(), Some(s));
        }
    }
}
