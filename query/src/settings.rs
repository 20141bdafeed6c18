//! Session settings: SET, SHOW and RESET, the values PostgreSQL reports
//! (ParameterStatus), and the ones Amber interprets (TimeZone,
//! extra_float_digits, statement_timeout), checked when set.

use crate::error::SqlError;
use crate::gucs;
use crate::session::{Output, Session, TxnState};
use crate::table::{self};
use crate::value;
use amber_catalog::SqlType;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::sql::sqlparser::ast::{self, Expr, Statement, Value};
use serde_json::Value as Json;
use std::collections::HashMap;
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

    /// Checks a SET as PostgreSQL does: an unknown setting is 42704 (a
    /// custom `prefix.name` is kept as given), a bad value 22023, one that
    /// cannot change in a session 55P02; returns the value to keep.
    pub(crate) fn checked_setting(name: &str, value: &str) -> Result<String, SqlError> {
        if name == "timezone" {
            if value.eq_ignore_ascii_case("local") || value.eq_ignore_ascii_case("default") {
                return Ok("UTC".into());
            }
            value::Zone::parse(value).ok_or_else(|| {
                SqlError::new(
                    "22023",
                    format!("invalid value for parameter \"TimeZone\": \"{value}\""),
                )
            })?;
            return Ok(value.to_string());
        }
        match gucs::lookup(name) {
            Some(guc) => guc.check(value),
            None if gucs::is_custom(name) => Ok(value.to_string()),
            None => Err(unrecognized(name)),
        }
    }

    /// A setting the client's startup packet gives (a parameter, or
    /// `options=-c name=value`): checked as SET checks it; an error refuses
    /// the connection, as in PostgreSQL. Nothing is reported for it: the
    /// startup's ParameterStatus messages carry the session's values.
    pub fn apply_startup_setting(&mut self, name: &str, value: &str) -> Result<(), SqlError> {
        let name = name.to_lowercase();
        let value = Session::checked_setting(&name, value)?;
        self.set_setting(name, value);
        self.reported.clear();
        Ok(())
    }

    /// SET/SHOW and friends that need no transaction.
    pub(crate) fn session_command(&mut self, stmt: &Statement) -> Result<Option<Output>, SqlError> {
        Ok(match stmt {
            Statement::Set(ast::Set::SetTransaction { modes, session, .. }) => {
                let Some(read_only) = crate::session::access_mode(modes) else {
                    // Isolation levels: every transaction is serializable.
                    return Ok(Some(Output::Command("SET".into())));
                };
                let value = if read_only { "on" } else { "off" };
                if *session {
                    self.set_setting("default_transaction_read_only".into(), value.into());
                } else if let TxnState::Open(h) = &self.state {
                    let mut txn = crate::dml::lock(h)?;
                    if !read_only && txn.is_read_only() && self.block_statements > 0 {
                        return Err(SqlError::new(
                            "25001",
                            "transaction read-write mode must be set before any query",
                        ));
                    }
                    txn.set_read_only(read_only);
                }
                // Outside a block PostgreSQL only warns: it has no effect.
                Some(Output::Command("SET".into()))
            }
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
                    if value.eq_ignore_ascii_case("default") {
                        // SET x TO DEFAULT is RESET x.
                        self.reset_setting(&name)?;
                    } else {
                        let value = Session::checked_setting(&name, &value)?;
                        self.set_setting(name, value);
                    }
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
                match &r.reset {
                    ast::Reset::ALL => self.reset_all(),
                    ast::Reset::ConfigurationParameter(n) => {
                        self.reset_setting(&n.to_string().to_lowercase())?
                    }
                }
                Some(Output::Command("RESET".into()))
            }
            // What connection pools send to clean a connection for its next
            // user (pgbouncer's server_reset_query, JDBC pools).
            Statement::Discard { object_type } => {
                if matches!(object_type, ast::DiscardObject::ALL) {
                    if self.in_transaction() {
                        return Err(SqlError::new(
                            "25001",
                            "DISCARD ALL cannot run inside a transaction block",
                        ));
                    }
                    self.reset_all();
                }
                Some(Output::Command(format!("DISCARD {object_type}")))
            }
            // Prepared statements live in the connection's statement store
            // (the server's), which drops them on Close; there are no SQL
            // cursors and no LISTEN.
            Statement::Deallocate { name, .. } => {
                Some(Output::Command(if name.value.eq_ignore_ascii_case("all") {
                    "DEALLOCATE ALL".into()
                } else {
                    "DEALLOCATE".into()
                }))
            }
            Statement::Close { cursor } => match cursor {
                ast::CloseCursor::All => Some(Output::Command("CLOSE CURSOR ALL".into())),
                ast::CloseCursor::Specific { name } => {
                    return Err(SqlError::new(
                        "34000",
                        format!("cursor \"{}\" does not exist", name.value),
                    ))
                }
            },
            Statement::UNLISTEN { .. } => Some(Output::Command("UNLISTEN".into())),
            Statement::ShowVariable { variable }
                if variable.len() == 1 && variable[0].value.eq_ignore_ascii_case("all") =>
            {
                let mut rows: Vec<Vec<Json>> = gucs::all()
                    .map(|g| {
                        vec![
                            Json::from(g.name),
                            Json::from(self.setting(g.name).unwrap_or_default()),
                            Json::from(g.short_desc),
                        ]
                    })
                    .collect();
                rows.sort_by(|a, b| a[0].as_str().cmp(&b[0].as_str()));
                let schema = Arc::new(Schema::new(vec![
                    Field::new("name", DataType::Utf8, true),
                    Field::new("setting", DataType::Utf8, true),
                    Field::new("description", DataType::Utf8, true),
                ]));
                let batch = table::batch(
                    schema.clone(),
                    &[SqlType::Text, SqlType::Text, SqlType::Text],
                    &rows,
                )?;
                Some(Output::Rows {
                    schema,
                    batches: vec![batch],
                    tag: "SHOW".into(),
                })
            }
            Statement::ShowVariable { variable } => {
                let name = variable
                    .iter()
                    .map(|i| i.value.to_lowercase())
                    .collect::<Vec<_>>()
                    .join(".");
                // PostgreSQL's grammar spells three settings in words.
                let name = match name.as_str() {
                    "time.zone" => "timezone".to_string(),
                    "transaction.isolation.level" => "transaction_isolation".to_string(),
                    "session.authorization" => "session_authorization".to_string(),
                    _ => name,
                };
                let value = self.setting(&name).ok_or_else(|| unrecognized(&name))?;
                // The column is named as PostgreSQL spells the setting.
                let column = gucs::lookup(&name).map_or(name.as_str(), |g| g.name);
                let schema = Arc::new(Schema::new(vec![Field::new(column, DataType::Utf8, true)]));
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

    /// A setting's value as SHOW prints it; None for a name PostgreSQL
    /// does not know that was not SET as a custom setting.
    pub fn setting(&self, name: &str) -> Option<String> {
        shown(
            &self.settings,
            self.open_block_read_only().ok().flatten(),
            name,
        )
    }

    /// The open block's access mode (None: no open block).
    pub(crate) fn open_block_read_only(&self) -> Result<Option<bool>, SqlError> {
        Ok(match &self.state {
            TxnState::Open(h) => Some(crate::dml::lock(h)?.is_read_only()),
            _ => None,
        })
    }

    /// RESET of one setting: back to its default.
    fn reset_setting(&mut self, name: &str) -> Result<(), SqlError> {
        if gucs::lookup(name).is_none() && !gucs::is_custom(name) {
            return Err(unrecognized(name));
        }
        if self.settings.remove(name).is_some() {
            if let Some(default) = self.setting(name) {
                // The setting's effects (TimeZone, ...) and its report.
                self.set_setting(name.to_string(), default);
                self.settings.remove(name);
            }
        }
        Ok(())
    }

    /// RESET ALL (and DISCARD ALL's part of it).
    pub(crate) fn reset_all(&mut self) {
        let names: Vec<String> = self.settings.keys().cloned().collect();
        for name in names {
            let _ = self.reset_setting(&name);
        }
    }
}

/// A setting as SHOW and current_setting() show it, from the settings SET
/// in the session (`explicit`, by lower-case name, as kept) and the open
/// block's access mode; None for a name neither PostgreSQL nor the session
/// knows.
pub(crate) fn shown(
    explicit: &HashMap<String, String>,
    block_read_only: Option<bool>,
    name: &str,
) -> Option<String> {
    let name = name.to_lowercase();
    if name == "transaction_read_only" {
        if let Some(ro) = block_read_only {
            return Some(if ro { "on" } else { "off" }.into());
        }
        // The default for the next block.
        return shown(explicit, None, "default_transaction_read_only");
    }
    let guc = gucs::lookup(&name);
    match (explicit.get(&name), guc) {
        (Some(v), Some(g)) => Some(g.display(v)),
        (Some(v), None) => Some(v.clone()),
        (None, Some(g)) => Some(g.default.to_string()),
        (None, None) => None,
    }
}

/// The schemas of a search_path value, in order: names as PostgreSQL
/// reads them (unquoted folded to lower case), `"$user"` as the user's
/// name unless that is a system schema (Amber's `amber` is one).
/// `pg_catalog` is searched first implicitly and is not listed.
pub(crate) fn search_path_schemas(value: &str, user: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = value.trim();
    // Bounded: each round consumes at least one character.
    while !rest.is_empty() {
        let (name, after) = if let Some(quoted) = rest.strip_prefix('"') {
            let mut name = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                if c == '"' {
                    if quoted[i + 1..].starts_with('"') {
                        name.push('"');
                        chars.next();
                        continue;
                    }
                    end = i + 1;
                    break;
                }
                name.push(c);
            }
            let after = &quoted[end.min(quoted.len())..];
            if name == "$user" {
                (
                    Some(user.to_string()).filter(|u| !is_system_schema(u)),
                    after,
                )
            } else {
                (Some(name), after)
            }
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            let name = rest[..end].trim();
            let name = if name == "$user" {
                Some(user.to_string()).filter(|u| !is_system_schema(u))
            } else {
                Some(name.to_lowercase())
            };
            (name.filter(|n| !n.is_empty()), &rest[end..])
        };
        if let Some(n) = name {
            if n != "pg_catalog" && !out.contains(&n) {
                out.push(n);
            }
        }
        rest = after.trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        if !after.is_empty() && after.len() == rest.len() && !rest.starts_with('"') {
            // Something other than a separator after a quoted name.
            let skip = rest.find(',').map(|i| i + 1).unwrap_or(rest.len());
            rest = rest[skip..].trim_start();
        }
    }
    out
}

fn is_system_schema(name: &str) -> bool {
    matches!(name, "amber" | "pg_catalog" | "information_schema")
}

pub(crate) fn unrecognized(name: &str) -> SqlError {
    SqlError::new(
        "42704",
        format!("unrecognized configuration parameter \"{name}\""),
    )
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
