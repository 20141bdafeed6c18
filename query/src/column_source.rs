//! Where an output column comes from, as RowDescription tells a client:
//! the table's oid and the column's attnum (pg_class.oid,
//! pg_attribute.attnum), or zeros for a computed column. Drivers read them
//! (pgjdbc's `getTableName`/`isNullable`, Npgsql's schema, ORMs mapping
//! results to tables).
//!
//! A class table's and a view's fields carry both in their metadata;
//! DataFusion keeps a field's metadata through column references and
//! aliases (so `SELECT name AS n` and a column of a subquery still name
//! their table, as in PostgreSQL) and drops it for anything computed. A
//! UNION keeps it only where every branch agrees.

use datafusion::arrow::datatypes::Field;
use std::collections::HashMap;

const TABLE_OID_KEY: &str = "amber.table_oid";
const ATTNUM_KEY: &str = "amber.attnum";

/// The metadata naming table `table_oid`'s column `attnum`.
pub(crate) fn metadata(table_oid: u32, attnum: i16) -> HashMap<String, String> {
    HashMap::from([
        (TABLE_OID_KEY.to_string(), table_oid.to_string()),
        (ATTNUM_KEY.to_string(), attnum.to_string()),
    ])
}

/// `f` marked as column `attnum` of table `table_oid` (its other metadata
/// kept); unmarked when the table has no oid yet (0: a module deployed
/// before oids existed).
pub(crate) fn with_source(f: Field, table_oid: u32, attnum: i16) -> Field {
    if table_oid == 0 {
        return f;
    }
    let mut m = f.metadata().clone();
    m.extend(metadata(table_oid, attnum));
    f.with_metadata(m)
}

/// The table oid and attnum `f` comes from; `(0, 0)` when computed.
pub fn source_of(f: &Field) -> (u32, i16) {
    let m = f.metadata();
    match (
        m.get(TABLE_OID_KEY).and_then(|v| v.parse::<u32>().ok()),
        m.get(ATTNUM_KEY).and_then(|v| v.parse::<i16>().ok()),
    ) {
        (Some(t), Some(a)) => (t, a),
        _ => (0, 0),
    }
}
