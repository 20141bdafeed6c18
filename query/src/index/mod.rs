//! Indexes of classes: their entries, kept by every write
//! (`entries.rs`); the indexes a module declares, named and built at
//! deploy (`deploy.rs`); entries of an older layout rebuilt at open
//! (`legacy.rs`); filters of a class scan answered through them
//! (`pushdown.rs`); `ORDER BY ... LIMIT` read in an index's order
//! (`ordered.rs`); the scan node of a class table, shown by EXPLAIN as an
//! IndexScan when an index chose its rows (`exec.rs`).

pub(crate) mod deploy;
pub(crate) mod entries;
pub(crate) mod exec;
pub(crate) mod join;
pub(crate) mod legacy;
pub(crate) mod ordered;
pub(crate) mod pushdown;

pub(crate) use entries::{
    build, canonical, delete_stored, drop_entries, holder, lookup_json, put_stored, remove, write,
};
