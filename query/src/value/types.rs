//! The one table of PostgreSQL types Amber speaks on the wire: oids,
//! names, array types, and the Arrow type each is computed as.

use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use std::sync::Arc;

/// Field metadata key naming the PostgreSQL type where Arrow's type is
/// ambiguous: `jsonb` and `json` (Utf8), `numeric` (Utf8 holding the
/// exact text of a stored numeric).
pub const PG_TYPE_KEY: &str = "pg_type";

pub const BOOL: u32 = 16;
pub const BYTEA: u32 = 17;
pub const CHAR: u32 = 18;
pub const NAME: u32 = 19;
pub const INT8: u32 = 20;
pub const INT2: u32 = 21;
pub const INT2VECTOR: u32 = 22;
pub const INT4: u32 = 23;
pub const REGPROC: u32 = 24;
pub const TEXT: u32 = 25;
pub const OID: u32 = 26;
pub const OIDVECTOR: u32 = 30;
pub const JSON: u32 = 114;
pub const PG_NODE_TREE: u32 = 194;
pub const FLOAT4: u32 = 700;
pub const FLOAT8: u32 = 701;
pub const UNKNOWN: u32 = 705;
pub const BPCHAR: u32 = 1042;
pub const VARCHAR: u32 = 1043;
pub const DATE: u32 = 1082;
pub const TIMESTAMP: u32 = 1114;
pub const TIMESTAMPTZ: u32 = 1184;
pub const NUMERIC: u32 = 1700;
pub const UUID: u32 = 2950;
pub const JSONB: u32 = 3802;

/// pg_type.typlen of a wire type (RowDescription's type size): the fixed
/// width in bytes, -1 for variable-width types, -2 for C strings.
pub fn typlen(oid: u32) -> i16 {
    match oid {
        BOOL | CHAR => 1,
        INT2 => 2,
        INT4 | OID | REGPROC | FLOAT4 | DATE => 4,
        INT8 | FLOAT8 | TIMESTAMP | TIMESTAMPTZ => 8,
        UUID => 16,
        NAME => 64,
        UNKNOWN => -2,
        _ => -1,
    }
}

/// (element oid, array oid) of every type with an array type here.
const ARRAYS: &[(u32, u32)] = &[
    (BOOL, 1000),
    (BYTEA, 1001),
    (CHAR, 1002),
    (NAME, 1003),
    (INT2, 1005),
    (INT4, 1007),
    (TEXT, 1009),
    (BPCHAR, 1014),
    (VARCHAR, 1015),
    (INT8, 1016),
    (FLOAT4, 1021),
    (FLOAT8, 1022),
    (OID, 1028),
    (TIMESTAMP, 1115),
    (DATE, 1182),
    (TIMESTAMPTZ, 1185),
    (NUMERIC, 1231),
    (JSON, 199),
    (UUID, 2951),
    (JSONB, 3807),
];

pub fn array_of(element: u32) -> Option<u32> {
    ARRAYS.iter().find(|(e, _)| *e == element).map(|(_, a)| *a)
}

pub fn element_of(array: u32) -> Option<u32> {
    match array {
        INT2VECTOR => return Some(INT2),
        OIDVECTOR => return Some(OID),
        _ => {}
    }
    ARRAYS.iter().find(|(_, a)| *a == array).map(|(e, _)| *e)
}

/// The oid a column of `field` is described with.
/// Field metadata: the typmod of a column with a declared length or
/// precision (RowDescription's type modifier; a `character(n)` column's
/// values are padded to it when sent).
pub const PG_TYPMOD_KEY: &str = "pg_typmod";

/// The typmod of `field`'s values; -1 for none.
pub fn typmod_of_field(field: &Field) -> i32 {
    field
        .metadata()
        .get(PG_TYPMOD_KEY)
        .and_then(|m| m.parse().ok())
        .unwrap_or(-1)
}

pub fn oid_of_field(field: &Field) -> u32 {
    match field.metadata().get(PG_TYPE_KEY).map(String::as_str) {
        Some("jsonb") => JSONB,
        Some("json") => JSON,
        Some("numeric") => NUMERIC,
        // The catalog's own types (`pg_catalog/`).
        Some("name") => NAME,
        Some("char") => CHAR,
        Some("varchar") => VARCHAR,
        Some("bpchar") => BPCHAR,
        Some("regproc") => REGPROC,
        Some("int2vector") => INT2VECTOR,
        Some("oidvector") => OIDVECTOR,
        Some("pg_node_tree") => PG_NODE_TREE,
        _ => oid_of(field.data_type()),
    }
}

/// The oid of values computed as `dt`.
pub fn oid_of(dt: &DataType) -> u32 {
    match dt {
        DataType::Int64 | DataType::UInt64 => INT8,
        // Only the catalog computes unsigned 32-bit values: its oids.
        DataType::UInt32 => OID,
        DataType::Int32 | DataType::UInt16 => INT4,
        DataType::Int16 | DataType::Int8 | DataType::UInt8 => INT2,
        DataType::Float64 => FLOAT8,
        DataType::Float32 | DataType::Float16 => FLOAT4,
        DataType::Boolean => BOOL,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => BYTEA,
        DataType::Decimal128(..) | DataType::Decimal256(..) => NUMERIC,
        DataType::Date32 | DataType::Date64 => DATE,
        DataType::Timestamp(_, Some(_)) => TIMESTAMPTZ,
        DataType::Timestamp(_, None) => TIMESTAMP,
        DataType::List(f) | DataType::LargeList(f) => array_of(oid_of_field(f)).unwrap_or(1009),
        _ => TEXT,
    }
}

/// The Arrow type a parameter declared as `oid` is computed as.
pub fn arrow_of(oid: u32) -> Option<DataType> {
    Some(match oid {
        INT8 | OID => DataType::Int64,
        INT4 => DataType::Int32,
        INT2 => DataType::Int16,
        FLOAT8 => DataType::Float64,
        FLOAT4 => DataType::Float32,
        BOOL => DataType::Boolean,
        TEXT | VARCHAR | BPCHAR | NAME | CHAR | UNKNOWN | JSON | JSONB | UUID => DataType::Utf8,
        BYTEA => DataType::Binary,
        NUMERIC => DataType::Decimal128(
            crate::convert::NUMERIC_PRECISION,
            crate::convert::NUMERIC_SCALE,
        ),
        DATE => DataType::Date32,
        TIMESTAMPTZ => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        TIMESTAMP => DataType::Timestamp(TimeUnit::Microsecond, None),
        other => {
            let element = arrow_of(element_of(other)?)?;
            DataType::List(Arc::new(Field::new("item", element, true)))
        }
    })
}
