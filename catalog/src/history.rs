//! The deploy history of modules: one record per deploy, ever (kept when
//! a later version replaces it, and after DROP MODULE), read by
//! `amber.module_history`.
//!
//! Key: `c\0h\0` + module + `\0` + generation (u64 BE, unique across all
//! deploys and increasing), so a module's records are one range, in
//! deploy order. Value: JSON [`Deploy`].

use crate::{CatalogError, ModuleDef, Result};
use amber_storage::Txn;
use serde::{Deserialize, Serialize};

const HISTORY_KEY_PREFIX: &[u8] = b"c\x00h\x00";

/// One deploy of a module.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Deploy {
    pub name: String,
    pub version: u64,
    pub generation: u64,
    pub source: String,
    pub deployed_at: String,
    /// The role that deployed it.
    pub deployed_by: String,
}

fn key(name: &str, generation: u64) -> Vec<u8> {
    let mut k = HISTORY_KEY_PREFIX.to_vec();
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    k.extend_from_slice(&generation.to_be_bytes());
    k
}

/// Records the deploy of `module` by `who`, in the deploy's transaction.
pub fn record(txn: &mut Txn, module: &ModuleDef, who: &str) -> Result<()> {
    let d = Deploy {
        name: module.name.clone(),
        version: module.version,
        generation: module.generation,
        source: module.source.clone(),
        deployed_at: module.deployed_at.clone(),
        deployed_by: who.to_string(),
    };
    let bytes = serde_json::to_vec(&d).map_err(|e| CatalogError::Corrupt(e.to_string()))?;
    txn.put(&key(&module.name, module.generation), &bytes)?;
    Ok(())
}

/// Every deploy recorded, by module name, then in deploy order.
pub fn all(txn: &Txn) -> Result<Vec<Deploy>> {
    txn.scan_prefix(HISTORY_KEY_PREFIX)?
        .into_iter()
        .map(|(_, v)| serde_json::from_slice(&v).map_err(|e| CatalogError::Corrupt(e.to_string())))
        .collect()
}
