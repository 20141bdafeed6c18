//! Session settings: SET, SHOW and RESET, the values PostgreSQL reports
//! (ParameterStatus), and the ones Amber interprets (TimeZone,
//! extra_float_digits, statement_timeout), checked when set.

use crate::error::SqlError;
use crate::session::{Output, Session};
use crate::table::{self};
use crate::value;
use amber_catalog::SqlType;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::sql::sqlparser::ast::{self, Expr, Statement, Value};
use serde_json::Value as Json;
use std::sync::Arc;

/// Settings PostgreSQL reports with ParameterStatus when they change
/// (GUC_REPORT): (lower-case name, reported name).
const REPORTED_SETTINGS: &[(&str, &str)] = &[
    ("timezone", "TimeZone"),
    ("datestyle", "DateStyle"),
    ("intervalstyle", "IntervalStyle"),
    ("application_name", "application_name"),
];

impl Session {
    /// Settings changed since the last call that the client must be told
    /// of (ParameterStatus), as (name, value).
    pub fn take_reported(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.reported)
    }

    pub(crate) fn set_setting(&mut self, name: String, value: String) {
        if let Some((_, reported)) = REPORTED_SETTINGS.iter().find(|(n, _)| *n == name) {
            self.reported.retain(|(n, _)| n != reported);
            self.reported.push((reported.to_string(), value.clone()));
        }
        match name.as_str() {
            "timezone" => {
                self.values.zone = value::Zone::parse(&value).unwrap_or(value::Zone::UTC);
            }
            "extra_float_digits" => {
                self.values.extra_float_digits = value.trim().parse().unwrap_or(1);
            }
            _ => {}
        }
        self.settings.insert(name, value);
    }

    /// statement_timeout in milliseconds (0: none). The value was checked
    /// when it was SET, so an unreadable one never means "no limit".
    pub(crate) fn statement_timeout_ms(&self) -> u64 {
        self.settings
            .get("statement_timeout")
            .and_then(|v| duration_ms(v))
            .unwrap_or(0)
    }

    /// How this session reads and writes values (TimeZone,
    /// extra_float_digits), as its settings say (validated when SET).
    pub fn value_settings(&self) -> value::Settings {
        self.values.clone()
    }

    /// Checks a SET of a setting whose value Amber interprets, with
    /// PostgreSQL's error for a bad value (22023), and returns the value
    /// to keep.
    pub(crate) fn checked_setting(name: &str, value: &str) -> Result<String, SqlError> {
        let bad = || {
            SqlError::new(
                "22023",
                format!("invalid value for parameter \"{name}\": \"{value}\""),
            )
        };
        match name {
            "timezone" => {
                if value.eq_ignore_ascii_case("local") || value.eq_ignore_ascii_case("default") {
                    return Ok("UTC".into());
                }
                value::Zone::parse(value).ok_or_else(bad)?;
                Ok(value.to_string())
            }
            "statement_timeout" => {
                let ms = duration_ms(value).ok_or_else(bad)?;
                if ms > i32::MAX as u64 {
                    return Err(SqlError::new(
                        "22023",
                        format!("{ms} ms is outside the valid range for parameter \"statement_timeout\" (0 .. {})", i32::MAX),
                    ));
                }
                Ok(ms.to_string())
            }
            "extra_float_digits" => {
                let d: i32 = value.trim().parse().map_err(|_| bad())?;
                if !(-15..=3).contains(&d) {
                    return Err(SqlError::new(
                        "22023",
                        format!("{d} is outside the valid range for parameter \"extra_float_digits\" (-15 .. 3)"),
                    ));
                }
                Ok(d.to_string())
            }
            _ => Ok(value.to_string()),
        }
    }

    /// SET/SHOW and friends that need no transaction.
    pub(crate) fn session_command(&mut self, stmt: &Statement) -> Result<Option<Output>, SqlError> {
        Ok(match stmt {
            Statement::Set(set) => {
                if let ast::Set::SingleAssignment {
                    variable, values, ..
                } = set
                {
                    let name = variable.to_string().to_lowercase();
                    let value = values
                        .iter()
                        .map(|v| match v {
                            Expr::Value(v) => match &v.value {
                                Value::SingleQuotedString(s) => s.clone(),
                                other => other.to_string(),
                            },
                            other => other.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    let name = if name == "time zone" {
                        "timezone".to_string()
                    } else {
                        name
                    };
                    let value = Session::checked_setting(&name, &value)?;
                    self.set_setting(name, value);
                }
                if let ast::Set::SetTimeZone { value, .. } = set {
                    let text = match value {
                        Expr::Value(v) => match &v.value {
                            Value::SingleQuotedString(s) => s.clone(),
                            other => other.to_string(),
                        },
                        other => other.to_string(),
                    };
                    let text = Session::checked_setting("timezone", &text)?;
                    self.set_setting("timezone".into(), text);
                }
                Some(Output::Command("SET".into()))
            }
            Statement::Reset(r) => {
                let names: Vec<String> = match &r.reset {
                    ast::Reset::ALL => self.settings.keys().cloned().collect(),
                    ast::Reset::ConfigurationParameter(n) => vec![n.to_string().to_lowercase()],
                };
                for name in names {
                    if self.settings.remove(&name).is_some() {
                        if let Some(default) = self.setting(&name) {
                            self.set_setting(name.clone(), default);
                            self.settings.remove(&name);
                        }
                    }
                }
                Some(Output::Command("RESET".into()))
            }
            Statement::ShowVariable { variable } => {
                let name = variable
                    .iter()
                    .map(|i| i.value.to_lowercase())
                    .collect::<Vec<_>>()
                    .join(".");
                let value = self.setting(&name).ok_or_else(|| {
                    SqlError::new(
                        "42704",
                        format!("unrecognized configuration parameter \"{name}\""),
                    )
                })?;
                let schema = Arc::new(Schema::new(vec![Field::new(&name, DataType::Utf8, true)]));
                let batch =
                    table::batch(schema.clone(), &[SqlType::Text], &[vec![Json::from(value)]])?;
                Some(Output::Rows {
                    schema,
                    batches: vec![batch],
                    tag: "SHOW".into(),
                })
            }
            _ => None,
        })
    }

    pub fn setting(&self, name: &str) -> Option<String> {
        if let Some(v) = self.settings.get(name) {
            return Some(v.clone());
        }
        Some(
            match name {
                "server_version" => "15.0",
                "server_encoding" | "client_encoding" => "UTF8",
                "datestyle" => "ISO, MDY",
                "timezone" => "UTC",
                "transaction_isolation" | "default_transaction_isolation" => "serializable",
                "standard_conforming_strings" => "on",
                "integer_datetimes" => "on",
                "search_path" => "\"$user\", public",
                "statement_timeout" => "0",
                "extra_float_digits" => "1",
                _ => return None,
            }
            .to_string(),
        )
    }
}

/// A duration setting in milliseconds, in PostgreSQL's units (a bare
/// number is milliseconds; us, ms, s, min, h, d); `None` if unreadable.
pub(crate) fn duration_ms(v: &str) -> Option<u64> {
    let v = v.trim().trim_matches('\'').trim().to_lowercase();
    let digits_end = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let n: u64 = v[..digits_end].parse().ok()?;
    Some(match v[digits_end..].trim() {
        "" | "ms" => n,
        "us" => n / 1000,
        "s" => n.checked_mul(1000)?,
        "min" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        "d" => n.checked_mul(86_400_000)?,
        _ => return None,
    })
}
