//! SQL types of columns, parameters and results, and their names as the
//! Python analyzer writes them (`int`, `array:str`, `ref:Customer`, ...).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SqlType {
    Int8,
    /// `integer` and `smallint` columns of tables made by SQL: stored as
    /// bigint's varint, computed as Arrow Int32 / Int16, range-checked on
    /// write (22003). Python sees `int` (its analyzer never writes these).
    Int4,
    Int2,
    Float8,
    /// `real`: stored as a double that is exactly a float4, computed as
    /// Arrow Float32.
    Float4,
    Text,
    Bool,
    Bytea,
    Numeric,
    Date,
    Timestamptz,
    /// `timestamp without time zone`: stored as timestamptz's microseconds
    /// (read as UTC), computed and shown without a zone.
    Timestamp,
    /// A reference to an object of the named class (same module): `bigint`.
    Ref(String),
    Array(Box<SqlType>),
    Jsonb,
}

impl SqlType {
    pub fn parse(s: &str) -> Option<SqlType> {
        Some(match s {
            "int" => SqlType::Int8,
            "int4" => SqlType::Int4,
            "int2" => SqlType::Int2,
            "float" => SqlType::Float8,
            "float4" => SqlType::Float4,
            "str" => SqlType::Text,
            "bool" => SqlType::Bool,
            "bytes" => SqlType::Bytea,
            "numeric" => SqlType::Numeric,
            "date" => SqlType::Date,
            "timestamptz" => SqlType::Timestamptz,
            "timestamp" => SqlType::Timestamp,
            "jsonb" => SqlType::Jsonb,
            _ => {
                if let Some(c) = s.strip_prefix("ref:") {
                    SqlType::Ref(c.to_string())
                } else if let Some(inner) = s.strip_prefix("array:") {
                    SqlType::Array(Box::new(SqlType::parse(inner)?))
                } else {
                    return None;
                }
            }
        })
    }

    pub fn describe(&self) -> String {
        match self {
            SqlType::Int8 => "int".into(),
            SqlType::Int4 => "int4".into(),
            SqlType::Int2 => "int2".into(),
            SqlType::Float8 => "float".into(),
            SqlType::Float4 => "float4".into(),
            SqlType::Text => "str".into(),
            SqlType::Bool => "bool".into(),
            SqlType::Bytea => "bytes".into(),
            SqlType::Numeric => "numeric".into(),
            SqlType::Date => "date".into(),
            SqlType::Timestamptz => "timestamptz".into(),
            SqlType::Timestamp => "timestamp".into(),
            SqlType::Jsonb => "jsonb".into(),
            SqlType::Ref(c) => format!("ref:{c}"),
            SqlType::Array(t) => format!("array:{}", t.describe()),
        }
    }

    /// PostgreSQL's name of the type.
    pub fn pg_name(&self) -> String {
        match self {
            SqlType::Int8 | SqlType::Ref(_) => "bigint".into(),
            SqlType::Int4 => "integer".into(),
            SqlType::Int2 => "smallint".into(),
            SqlType::Float8 => "double precision".into(),
            SqlType::Float4 => "real".into(),
            SqlType::Text => "text".into(),
            SqlType::Bool => "boolean".into(),
            SqlType::Bytea => "bytea".into(),
            SqlType::Numeric => "numeric".into(),
            SqlType::Date => "date".into(),
            SqlType::Timestamptz => "timestamp with time zone".into(),
            SqlType::Timestamp => "timestamp without time zone".into(),
            SqlType::Jsonb => "jsonb".into(),
            SqlType::Array(t) => format!("{}[]", t.pg_name()),
        }
    }

    /// Whether values are integers (stored as varints).
    pub fn is_integer(&self) -> bool {
        matches!(
            self,
            SqlType::Int8 | SqlType::Int4 | SqlType::Int2 | SqlType::Ref(_)
        )
    }

    /// The inclusive range of an integer type's values.
    pub fn integer_range(&self) -> Option<(i64, i64)> {
        match self {
            SqlType::Int8 | SqlType::Ref(_) => Some((i64::MIN, i64::MAX)),
            SqlType::Int4 => Some((i32::MIN.into(), i32::MAX.into())),
            SqlType::Int2 => Some((i16::MIN.into(), i16::MAX.into())),
            _ => None,
        }
    }
}

/// What a column declared beyond its stored type: the length of a
/// character type, the precision and scale of a numeric. Values are
/// checked (and `character` padded, `numeric` rounded) on every write.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Declared {
    /// `character varying(n)` (`varchar`): at most `length` characters;
    /// no limit when `None`.
    Varchar { length: Option<u32> },
    /// `character(n)` (`char(n)`, `bpchar`): padded with spaces to `length`.
    Char { length: u32 },
    /// `numeric(precision, scale)`: rounded to `scale` digits after the
    /// point, at most `precision - scale` before it.
    Numeric { precision: u32, scale: u32 },
}

impl Declared {
    /// PostgreSQL's atttypmod for it (-1: none).
    pub fn typmod(&self) -> i32 {
        const VARHDRSZ: i64 = 4;
        let m = match self {
            Declared::Varchar { length: None } => return -1,
            Declared::Varchar { length: Some(n) } | Declared::Char { length: n } => {
                i64::from(*n) + VARHDRSZ
            }
            Declared::Numeric { precision, scale } => {
                ((i64::from(*precision) << 16) | i64::from(*scale)) + VARHDRSZ
            }
        };
        i32::try_from(m).unwrap_or(-1)
    }
}

impl Serialize for SqlType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.describe())
    }
}

impl<'de> Deserialize<'de> for SqlType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        SqlType::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown type {s}")))
    }
}
