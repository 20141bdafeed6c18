//! Amber's catalog: modules, classes (tables), columns, functions, and the
//! encoding of their values.
//!
//! Architecture invariant: the catalog is the single source of truth for the
//! shape of stored objects. It is persisted in the same transactional store
//! as the objects (key prefix `c`) and read through the statement's
//! transaction ([`Catalog::resolve`]): a statement uses the module versions
//! of its snapshot (or its own transaction's uncommitted deploy), never half
//! a deploy, and a deploy conflicts with every writer that used the module.
//! The in-memory [`Catalog`] is only a cache of decoded records.
//!
//! Objects are stored as binary rows keyed by column id ([`row`]), each
//! value directed by its column's [`SqlType`]; module variables as JSON.
//! The same encoding is written by the Python runtime and by SQL DML, and
//! read by the query engine. See ARCHITECTURE.md for the key layout.

use amber_storage::{StorageError, Txn};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

pub mod history;
pub mod index_key;
pub mod oids;
pub mod row;
mod types;
pub use types::{Declared, SqlType};

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

/// The end (exclusive) of the key range of a class's objects: the prefix
/// of the next class id, so every object id of the class is below it.
pub fn class_range_end(class_id: u64) -> Vec<u8> {
    match class_id.checked_add(1) {
        Some(next) => class_prefix(next),
        None => vec![b'o' + 1],
    }
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

/// The first byte of the unique-index entries an Amber before the
/// order-preserving layout ([`index_key`]) wrote (`x` + index id +
/// canonical JSON of the key -> object id): rebuilt at open.
pub const LEGACY_UNIQUE_TAG: u8 = b'x';

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
    /// Keys the column's field in stored objects ([`row`]); unique within
    /// the class and kept by a redeploy for a column of the same name.
    /// Records written before ids existed get their position (1-based)
    /// when read ([`ModuleDef::assign_column_ids`]).
    #[serde(default)]
    pub id: u32,
    pub name: String,
    #[serde(rename = "type")]
    pub ty: SqlType,
    /// The declared length or precision of a column of a table made by
    /// SQL (`varchar(20)`, `char(3)`, `numeric(10,2)`); `None`: the type
    /// alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared: Option<Declared>,
    pub nullable: bool,
    pub has_default: bool,
    #[serde(default)]
    pub default: Json,
    /// A column filled from a sequence when an INSERT gives it no value
    /// (`serial`, `GENERATED ... AS IDENTITY`): the sequence's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// `GENERATED ALWAYS AS IDENTITY`: an INSERT may not give a value.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub identity_always: bool,
    /// The `pg_attrdef` oid of its default and the `pg_constraint` oid of
    /// the foreign key a reference column is ([`oids`]); 0 where none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub default_oid: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fkey_oid: u32,
    /// The `pg_class` oid of its sequence (`serial`, identity); 0: none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sequence_oid: u32,
    /// `REFERENCES schema.table (column)` of a table made by SQL: each
    /// non-null value must be a key of that column (a PRIMARY KEY or
    /// UNIQUE one), and such a key may not go while referenced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references: Option<ForeignKeyDef>,
    /// Its description (pg_description): a docstring, or `COMMENT ON`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Added with a default while its class had objects: objects written
    /// before (an older layout, [`row`]) read it as that default, so the
    /// deploy writes none of them (live upgrade, lazily).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filled: Option<Filled>,
    /// Its earlier ids and types, newest first, when a deploy changed its
    /// type while its class had objects, lazily (a conversion that cannot
    /// fail: [`row::converts_lazily`]): an object that lacks this id's
    /// field reads the newest earlier one it has, converted type by type
    /// to this one. The column took a new id at each change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub converted: Vec<Converted>,
}

/// An earlier id and type of a column ([`ColumnDef::converted`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Converted {
    pub id: u32,
    #[serde(rename = "type")]
    pub ty: SqlType,
}

/// The default objects older than a column read in it ([`ColumnDef::filled`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Filled {
    /// The class layout the column was added at: objects of an earlier
    /// layout that lack its field read `value`.
    pub layout: u32,
    /// The default, canonical for the column's type (as stored).
    pub value: Json,
}

impl ColumnDef {
    /// A nullable column `name` of type `ty` with column id `id`: no
    /// default, sequence, reference, declared limit, comment or oids yet.
    pub fn new(id: u32, name: impl Into<String>, ty: SqlType) -> ColumnDef {
        ColumnDef {
            id,
            name: name.into(),
            ty,
            declared: None,
            nullable: true,
            has_default: false,
            default: Json::Null,
            sequence: None,
            identity_always: false,
            default_oid: 0,
            fkey_oid: 0,
            sequence_oid: 0,
            references: None,
            comment: None,
            filled: None,
            converted: Vec::new(),
        }
    }
}

/// A CHECK constraint of a table made by SQL: a boolean expression over
/// the table's columns that no written row may make false (NULL passes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckDef {
    pub name: String,
    /// The expression as SQL (sqlparser's rendering of what was declared).
    pub expr: String,
    /// Its `pg_constraint` oid ([`oids`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub oid: u32,
}

/// What a foreign key column references: a column with a unique index, by
/// name (tables and columns are named in SQL; a rename renames here too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignKeyDef {
    pub schema: String,
    pub table: String,
    pub column: String,
    /// The constraint's name (`orders_customer_id_fkey` by default).
    pub name: String,
    /// What deleting a referenced row does to the rows referencing it.
    #[serde(default, skip_serializing_if = "OnDelete::is_no_action")]
    pub on_delete: OnDelete,
}

/// `ON DELETE` of a foreign key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDelete {
    /// Refused while referenced (NO ACTION, RESTRICT).
    #[default]
    NoAction,
    /// The referencing rows are deleted too.
    Cascade,
    /// The referencing column is set to NULL.
    SetNull,
}

impl OnDelete {
    fn is_no_action(&self) -> bool {
        *self == OnDelete::NoAction
    }
}

fn is_zero(v: &u32) -> bool {
    *v == 0
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
    /// The module variables a call may read or write (found by analysing
    /// its code; see the prelude's `_globals_read`): a call loads only
    /// these, so it does not conflict with a writer of the others. `None`:
    /// every one (unbounded, or analysed before Amber recorded this).
    #[serde(default)]
    pub globals: Option<Vec<String>>,
    /// Its `pg_proc` oid ([`oids`]).
    #[serde(default)]
    pub oid: u32,
    /// Its description (pg_description): a docstring, or `COMMENT ON`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
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
    /// A table created by SQL `CREATE TABLE`: its columns are exactly the
    /// declared ones, and the object id is a hidden identity (as a
    /// PostgreSQL row's ctid is) instead of the first column `id`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hidden_id: bool,
    /// Declared indexes, primary key and unique constraints included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<IndexDef>,
    /// The class defines `__migrate__(self, old)`: a deploy that changes
    /// its attributes converts its objects by calling it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub migrate: bool,
    /// CHECK constraints of a table made by SQL.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckDef>,
    /// Its `pg_class` oid and its row type's `pg_type` oid ([`oids`]).
    #[serde(default)]
    pub oid: u32,
    #[serde(default)]
    pub type_oid: u32,
    /// The `pg_class` and `pg_constraint` oids of the primary key `id` is
    /// (a class with a visible id column; [`oids`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub id_index_oid: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub id_constraint_oid: u32,
    /// Its description (pg_description): a docstring, or `COMMENT ON`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The layout objects are written in ([`row`]): raised by a deploy
    /// that adds attributes whose defaults older objects read lazily
    /// ([`ColumnDef::filled`]). 0: every object is in the first layout.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub layout: u32,
    /// The largest column id the class has ever given: a dropped
    /// attribute's field may stay in objects written before (it is
    /// skipped when read), so its id is never given again.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub column_id_max: u32,
}

/// An index of a class: its columns, and whether it is a key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IndexDef {
    /// Unique in the database (an id from the store): keys the index's
    /// entries ([`index_key`]). 0 in what the analyzer describes, until
    /// the deploy gives it one.
    #[serde(default)]
    pub id: u64,
    /// The SQL name (`t1_pkey`, `t1_a_key`, or as `CREATE INDEX` named it;
    /// PostgreSQL's default names for what a module declares).
    #[serde(default)]
    pub name: String,
    /// Column names, in key order.
    pub columns: Vec<String>,
    /// No two objects have equal values in every column (NULLs are never
    /// equal, as in PostgreSQL).
    pub unique: bool,
    /// The table's primary key (unique, and its columns NOT NULL).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub primary: bool,
    /// Declared as a constraint (`PRIMARY KEY`, `UNIQUE`), not by
    /// `CREATE INDEX`: listed in pg_constraint too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub constraint: bool,
    /// The index's `pg_class` oid, and its constraint's `pg_constraint`
    /// oid (0 when it is no constraint) ([`oids`]).
    #[serde(default)]
    pub oid: u32,
    #[serde(default)]
    pub constraint_oid: u32,
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
    /// Views made by SQL `CREATE VIEW` (in schemas made by SQL).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub views: Vec<ViewDef>,
    /// The schema's description: the module's docstring, or `COMMENT ON SCHEMA`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A view: a named query, planned each time a statement names it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ViewDef {
    pub name: String,
    /// The query's text, as PostgreSQL's dialect parses it.
    pub sql: String,
    /// Its output column names, fixed at CREATE VIEW.
    pub columns: Vec<String>,
    /// The schemas its query names: a statement naming the view resolves
    /// these modules too.
    pub references: Vec<String>,
    /// The tables it reads (schema, table): DROP TABLE refuses to drop
    /// one while the view exists (2BP01), as PostgreSQL does.
    pub tables: Vec<(String, String)>,
    /// Its `pg_class` oid and its row type's `pg_type` oid ([`oids`]).
    #[serde(default)]
    pub oid: u32,
    #[serde(default)]
    pub type_oid: u32,
    /// Its description (pg_description): `COMMENT ON VIEW`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
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
    /// A module made by SQL DDL (`CREATE TABLE`, `CREATE SCHEMA`): its
    /// source is written by Amber from its tables, and only SQL DDL
    /// changes it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sql_defined: bool,
    /// RFC 3339 time of the deploy.
    pub deployed_at: String,
    /// The schema's `pg_namespace` oid ([`oids`]).
    #[serde(default)]
    pub oid: u32,
    #[serde(flatten)]
    pub shape: ModuleShape,
}

impl ClassDef {
    /// Class `name` (table `table`) of storage id `id` with `columns`:
    /// a visible `id`, no parent, methods, indexes, checks, oids or
    /// comment yet.
    pub fn new(
        id: u64,
        name: impl Into<String>,
        table: impl Into<String>,
        columns: Vec<ColumnDef>,
    ) -> ClassDef {
        ClassDef {
            id,
            name: name.into(),
            table: table.into(),
            parent: None,
            columns,
            methods: Vec::new(),
            hidden_id: false,
            indexes: Vec::new(),
            migrate: false,
            checks: Vec::new(),
            oid: 0,
            type_oid: 0,
            id_index_oid: 0,
            id_constraint_oid: 0,
            comment: None,
            layout: 0,
            column_id_max: 0,
        }
    }

    /// Gives every column without an id (0) one: the id of the column of
    /// the same name in `old` (the version being replaced), else its
    /// position (1-based) when no column has an id yet (a record written
    /// before ids existed, whose objects are JSON keyed by name), else one
    /// above every id this class or `old` has used.
    pub fn assign_column_ids(&mut self, old: Option<&ClassDef>) {
        let fresh = old.is_none() && self.columns.iter().all(|c| c.id == 0);
        let mut next = self
            .columns
            .iter()
            .chain(old.into_iter().flat_map(|o| o.columns.iter()))
            .map(|c| c.id)
            .chain(old.map(|o| o.column_id_max))
            .chain([self.column_id_max])
            .max()
            .unwrap_or(0);
        if let Some(o) = old {
            self.layout = self.layout.max(o.layout);
        }
        for (i, c) in self.columns.iter_mut().enumerate() {
            if c.id != 0 {
                continue;
            }
            if let Some(o) = old.and_then(|o| o.columns.iter().find(|o| o.name == c.name)) {
                c.id = o.id;
                // The column's catalog oids are its identity too (a
                // redeploy that changes nothing else compares equal).
                if c.has_default == o.has_default && c.sequence == o.sequence {
                    c.default_oid = o.default_oid;
                    c.sequence_oid = o.sequence_oid;
                }
                if c.ty == o.ty {
                    c.fkey_oid = o.fkey_oid;
                }
                // Older objects still read the default they were given.
                if c.filled.is_none() {
                    c.filled = o.filled.clone();
                }
                if c.converted.is_empty() {
                    c.converted = o.converted.clone();
                }
            } else if fresh {
                c.id = u32::try_from(i + 1).unwrap_or(u32::MAX);
            } else {
                next += 1;
                c.id = next;
            }
        }
        debug_assert!(self.columns.iter().all(|c| c.id != 0));
        self.column_id_max = self
            .columns
            .iter()
            .map(|c| c.id)
            .chain([next])
            .max()
            .unwrap_or(0);
    }
}

impl ModuleDef {
    pub fn class(&self, python_name: &str) -> Option<&ClassDef> {
        self.shape.classes.iter().find(|c| c.name == python_name)
    }

    pub fn class_by_id(&self, id: u64) -> Option<&ClassDef> {
        self.shape.classes.iter().find(|c| c.id == id)
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

/// How many versions of one module the cache keeps: the newest few, enough
/// for transactions that began before a deploy to keep using theirs.
const VERSIONS_PER_MODULE_MAX: usize = 4;

/// Decoded module records, shared by all sessions: a cache, never the
/// truth. Which version of a module a statement uses is decided by what its
/// transaction reads (the module's generation key); the cache only saves
/// decoding the record again. Entries are keyed by generation, which is
/// unique across all deploys, so a version that was never committed (or was
/// rolled back) can only ever be found by the transaction that wrote it.
#[derive(Default)]
pub struct Catalog {
    /// Module name -> its known versions, newest generation last.
    versions: RwLock<BTreeMap<String, Vec<Arc<ModuleDef>>>>,
}

/// The modules one statement uses, as its transaction sees them: what every
/// layer above the catalog resolves names through.
#[derive(Debug, Default, Clone)]
pub struct ModuleSet {
    modules: BTreeMap<String, Arc<ModuleDef>>,
}

impl ModuleSet {
    pub fn get(&self, name: &str) -> Option<Arc<ModuleDef>> {
        self.modules.get(name).cloned()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<ModuleDef>> {
        self.modules.values()
    }
}

impl Catalog {
    /// Loads every module record through `txn` (warms the cache).
    pub fn load(txn: &Txn) -> Result<Catalog> {
        let catalog = Catalog::default();
        for (_key, value) in txn.scan_prefix(MODULE_KEY_PREFIX)? {
            catalog.remember(Arc::new(decode(&value)?));
        }
        Ok(catalog)
    }

    /// The version of module `name` that `txn` sees, if any. Reads the
    /// module's generation key, so the read joins the transaction's read
    /// set: a deploy of `name` committed after this transaction's snapshot
    /// makes its commit fail (40001) if it writes, and it never sees half a
    /// deploy. A transaction sees its own uncommitted deploys.
    pub fn resolve(&self, txn: &Txn, name: &str) -> Result<Option<Arc<ModuleDef>>> {
        let generation = match txn.get(&generation_key(name))? {
            Some(g) => Some(decode_generation(name, &g)?),
            // Deployed before generations had their own key: the record.
            None => None,
        };
        if let Some(g) = generation {
            if let Some(def) = self.cached(name, g) {
                return Ok(Some(def));
            }
        }
        let Some(bytes) = txn.get(&module_key(name))? else {
            return match generation {
                None => Ok(None),
                Some(_) => Err(CatalogError::Corrupt(format!(
                    "module {name} has a generation but no record"
                ))),
            };
        };
        let def = decode(&bytes)?;
        if generation.is_some_and(|g| g != def.generation) {
            return Err(CatalogError::Corrupt(format!(
                "module {name}: record and generation key disagree"
            )));
        }
        let def = Arc::new(def);
        self.remember(def.clone());
        Ok(Some(def))
    }

    /// The modules named in `names` that `txn` sees (names that are no
    /// module are left out, having joined the read set: a module created
    /// under that name later conflicts with a writer that looked for it).
    pub fn resolve_set<'a>(
        &self,
        txn: &Txn,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<ModuleSet> {
        let mut set = ModuleSet::default();
        for name in names {
            if set.modules.contains_key(name) {
                continue;
            }
            if let Some(def) = self.resolve(txn, name)? {
                set.modules.insert(name.to_string(), def);
            }
        }
        Ok(set)
    }

    /// Every module `txn` sees (a scan of all generation keys: the whole
    /// module list joins the read set). For statements that list modules.
    pub fn resolve_all(&self, txn: &Txn) -> Result<ModuleSet> {
        let mut names = Vec::new();
        for (key, _) in txn.scan_prefix(GENERATION_KEY_PREFIX)? {
            let name = std::str::from_utf8(&key[GENERATION_KEY_PREFIX.len()..])
                .map_err(|_| CatalogError::Corrupt("module name is not UTF-8".into()))?;
            names.push(name.to_string());
        }
        // Modules deployed before generation keys existed.
        for (key, _) in txn.scan_prefix(MODULE_KEY_PREFIX)? {
            let name = std::str::from_utf8(&key[MODULE_KEY_PREFIX.len()..])
                .map_err(|_| CatalogError::Corrupt("module name is not UTF-8".into()))?;
            names.push(name.to_string());
        }
        self.resolve_set(txn, names.iter().map(String::as_str))
    }

    fn cached(&self, name: &str, generation: u64) -> Option<Arc<ModuleDef>> {
        let versions = self.versions.read().ok()?;
        versions
            .get(name)?
            .iter()
            .rev()
            .find(|d| d.generation == generation)
            .cloned()
    }

    /// Adds a decoded version to the cache, keeping the newest few.
    fn remember(&self, def: Arc<ModuleDef>) {
        let Ok(mut versions) = self.versions.write() else {
            return;
        };
        let list = versions.entry(def.name.clone()).or_default();
        if list.iter().any(|d| d.generation == def.generation) {
            return;
        }
        list.push(def);
        list.sort_by_key(|d| d.generation);
        if list.len() > VERSIONS_PER_MODULE_MAX {
            let excess = list.len() - VERSIONS_PER_MODULE_MAX;
            list.drain(..excess);
        }
    }

    /// Writes a module record into `txn`; call [`Catalog::published`] after
    /// the transaction commits.
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

    /// Fails (40001) unless `module` is the version `txn` sees. The read
    /// joins the transaction's read set, like [`Catalog::resolve`]'s.
    pub fn check_current(txn: &Txn, module: &ModuleDef) -> Result<()> {
        if Catalog::is_current(txn, module)? {
            Ok(())
        } else {
            Err(CatalogError::Redeployed(module.name.clone()))
        }
    }

    fn is_current(txn: &Txn, module: &ModuleDef) -> Result<bool> {
        if let Some(g) = txn.get(&generation_key(&module.name))? {
            return Ok(decode_generation(&module.name, &g)? == module.generation);
        }
        match txn.get(&module_key(&module.name))? {
            None => Ok(false),
            Some(bytes) => Ok(decode(&bytes)?.generation == module.generation),
        }
    }

    /// A committed change of the catalog: `Some(def)` deployed, `None` the
    /// module dropped (its cached versions up to `generation` go).
    pub fn published(&self, name: &str, generation: u64, def: Option<Arc<ModuleDef>>) {
        match def {
            Some(def) => self.remember(def),
            None => {
                if let Ok(mut versions) = self.versions.write() {
                    if let Some(list) = versions.get_mut(name) {
                        list.retain(|d| d.generation > generation);
                        if list.is_empty() {
                            versions.remove(name);
                        }
                    }
                }
            }
        }
    }
}

fn decode(bytes: &[u8]) -> Result<ModuleDef> {
    let mut def: ModuleDef =
        serde_json::from_slice(bytes).map_err(|e| CatalogError::Corrupt(e.to_string()))?;
    for class in &mut def.shape.classes {
        if class.columns.iter().any(|c| c.id == 0) {
            class.assign_column_ids(None);
        }
    }
    Ok(def)
}

fn decode_generation(name: &str, bytes: &[u8]) -> Result<u64> {
    let bytes: [u8; 8] = bytes
        .try_into()
        .map_err(|_| CatalogError::Corrupt(format!("generation of {name}")))?;
    Ok(u64::from_be_bytes(bytes))
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
