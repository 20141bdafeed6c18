//! SQL types of columns, parameters and results, and their names as the
//! Python analyzer writes them (`int`, `array:str`, `ref:Customer`, ...).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SqlType {
    Int8,
    Float8,
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
            "float" => SqlType::Float8,
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
            SqlType::Float8 => "float".into(),
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
            SqlType::Float8 => "double precision".into(),
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
