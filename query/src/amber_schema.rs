//! The `amber` schema's own relations: `amber.modules` (the statement's
//! modules, every one when it names this table, see `modules.rs`) and
//! `amber.module_history` (every deploy, `amber_catalog::history`).

use crate::table;
use amber_catalog::{ModuleDef, SqlType};
use amber_runtime::TxnHandle;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::{MemTable, TableProvider};
use datafusion::error::{DataFusionError, Result as DfResult};
use serde_json::Value as Json;
use std::sync::Arc;

/// `amber.modules`: the statement's modules (every module when it
/// names this table, see `modules.rs`).
pub(crate) fn modules(modules: &[Arc<ModuleDef>]) -> DfResult<Arc<dyn TableProvider>> {
    let fields = vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("version", DataType::Int64, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("deployed_at", DataType::Utf8, false),
    ];
    let schema = Arc::new(Schema::new(fields));
    let rows: Vec<Vec<Json>> = modules
        .iter()
        .map(|m| {
            vec![
                Json::from(m.name.clone()),
                Json::from(m.version),
                Json::from(m.source.clone()),
                Json::from(m.deployed_at.clone()),
            ]
        })
        .collect();
    let batch = table::batch(
        schema.clone(),
        &[SqlType::Text, SqlType::Int8, SqlType::Text, SqlType::Text],
        &rows,
    )
    .map_err(|e| DataFusionError::External(Box::new(e)))?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

/// `amber.module_history`: every deploy of every module, as the
/// statement's transaction sees them.
pub(crate) fn history(txn: &TxnHandle) -> DfResult<Arc<dyn TableProvider>> {
    let fields = vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("version", DataType::Int64, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("deployed_at", DataType::Utf8, false),
        Field::new("deployed_by", DataType::Utf8, false),
    ];
    let schema = Arc::new(Schema::new(fields));
    let deploys = {
        let txn = txn
            .lock()
            .map_err(|_| DataFusionError::Execution("transaction lock poisoned".into()))?;
        amber_catalog::history::all(&txn).map_err(|e| DataFusionError::External(Box::new(e)))?
    };
    let rows: Vec<Vec<Json>> = deploys
        .into_iter()
        .map(|d| {
            vec![
                Json::from(d.name),
                Json::from(d.version),
                Json::from(d.source),
                Json::from(d.deployed_at),
                Json::from(d.deployed_by),
            ]
        })
        .collect();
    let batch = table::batch(
        schema.clone(),
        &[
            SqlType::Text,
            SqlType::Int8,
            SqlType::Text,
            SqlType::Text,
            SqlType::Text,
        ],
        &rows,
    )
    .map_err(|e| DataFusionError::External(Box::new(e)))?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}
