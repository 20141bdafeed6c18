//! PostgreSQL 15's settings, the one table of them: name, type, unit,
//! range or choices, context and default, taken from PostgreSQL itself
//! (`data/pg15_settings.tsv`, its `pg_settings`), with Amber's own values
//! where Amber differs (time zone, isolation, version). SET of a name not
//! in it is 42704 unless it is a custom `prefix.name`; a value is checked
//! against the setting's type as PostgreSQL checks it (22023), and SHOW
//! prints it as PostgreSQL does (`10s`, not `10000`).

use crate::error::SqlError;
use std::collections::HashMap;
use std::sync::LazyLock;

const TABLE: &str = include_str!("../data/pg15_settings.tsv");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarType {
    Bool,
    Integer,
    Real,
    Enum,
    String,
}

#[derive(Debug)]
pub struct Guc {
    /// As PostgreSQL spells it (`TimeZone`, `DateStyle`).
    pub name: &'static str,
    pub vartype: VarType,
    /// The unit of the stored number (`ms`, `s`, `min`, `kB`, `8kB`, `MB`).
    pub unit: &'static str,
    pub context: &'static str,
    pub min: &'static str,
    pub max: &'static str,
    pub enumvals: Vec<&'static str>,
    /// The default as SHOW prints it.
    pub default: &'static str,
    pub short_desc: &'static str,
}

/// Amber's values where they are not a default PostgreSQL's.
const AMBER_DEFAULTS: &[(&str, &str)] = &[
    ("timezone", "UTC"),
    ("log_timezone", "UTC"),
    ("transaction_isolation", "serializable"),
    ("default_transaction_isolation", "serializable"),
    ("server_version", "15.0"),
    ("server_version_num", "150000"),
    ("is_superuser", "on"),
    ("session_authorization", "amber"),
];

static GUCS: LazyLock<HashMap<String, Guc>> = LazyLock::new(|| {
    let mut map = HashMap::new();
    for line in TABLE
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let f: Vec<&'static str> = line.split('\t').collect();
        // The file is ours and fixed at build time (a unit test reads it
        // whole); a malformed line is skipped rather than trusted.
        let [name, vartype, unit, context, _category, min, max, enumvals, default, short_desc] =
            f[..]
        else {
            continue;
        };
        let vartype = match vartype {
            "bool" => VarType::Bool,
            "integer" => VarType::Integer,
            "real" => VarType::Real,
            "enum" => VarType::Enum,
            _ => VarType::String,
        };
        let lower = name.to_lowercase();
        let default = AMBER_DEFAULTS
            .iter()
            .find(|(n, _)| *n == lower)
            .map(|(_, v)| *v)
            .unwrap_or(default);
        map.insert(
            lower,
            Guc {
                name,
                vartype,
                unit,
                context,
                min,
                max,
                enumvals: enumvals.split(',').filter(|s| !s.is_empty()).collect(),
                default,
                short_desc,
            },
        );
    }
    map
});

/// The setting `name` (any case), if PostgreSQL 15 has it.
pub fn lookup(name: &str) -> Option<&'static Guc> {
    GUCS.get(&name.to_lowercase())
}

/// Every setting, in no order.
pub fn all() -> impl Iterator<Item = &'static Guc> {
    GUCS.values()
}

/// A custom setting (`prefix.name`), which PostgreSQL accepts unchecked.
pub fn is_custom(name: &str) -> bool {
    name.split_once('.')
        .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
}

fn invalid(name: &str, value: &str) -> SqlError {
    SqlError::new(
        "22023",
        format!("invalid value for parameter \"{name}\": \"{value}\""),
    )
}

impl Guc {
    /// Checks a value SET gives this setting; returns the value to keep
    /// (a number in the setting's unit, `on`/`off`, the choice as listed).
    pub fn check(&self, value: &str) -> Result<String, SqlError> {
        match self.context {
            "user" | "superuser" => {}
            "internal" => {
                return Err(SqlError::new(
                    "55P02",
                    format!("parameter \"{}\" cannot be changed", self.name),
                ))
            }
            "postmaster" => {
                return Err(SqlError::new(
                    "55P02",
                    format!(
                        "parameter \"{}\" cannot be changed without restarting the server",
                        self.name
                    ),
                ))
            }
            "backend" | "superuser-backend" => {
                return Err(SqlError::new(
                    "55P02",
                    format!(
                        "parameter \"{}\" cannot be set after connection start",
                        self.name
                    ),
                ))
            }
            _ => {
                return Err(SqlError::new(
                    "55P02",
                    format!("parameter \"{}\" cannot be changed now", self.name),
                ))
            }
        }
        match self.vartype {
            VarType::String => Ok(value.to_string()),
            VarType::Bool => parse_bool(value)
                .map(|b| if b { "on" } else { "off" }.to_string())
                .ok_or_else(|| {
                    SqlError::new(
                        "22023",
                        format!("parameter \"{}\" requires a Boolean value", self.name),
                    )
                }),
            VarType::Enum => self
                .enumvals
                .iter()
                .find(|e| e.eq_ignore_ascii_case(value.trim()))
                .map(|e| e.to_string())
                .ok_or_else(|| invalid(self.name, value)),
            VarType::Integer => {
                let n = self
                    .in_unit(value)
                    .ok_or_else(|| invalid(self.name, value))?;
                let n = n.round();
                self.in_range(n)?;
                Ok(format!("{}", n as i64))
            }
            VarType::Real => {
                let n = self
                    .in_unit(value)
                    .ok_or_else(|| invalid(self.name, value))?;
                self.in_range(n)?;
                Ok(n.to_string())
            }
        }
    }

    fn in_range(&self, n: f64) -> Result<(), SqlError> {
        let (Ok(min), Ok(max)) = (self.min.parse::<f64>(), self.max.parse::<f64>()) else {
            return Ok(());
        };
        if n < min || n > max {
            return Err(SqlError::new(
                "22023",
                format!(
                    "{} {}is outside the valid range for parameter \"{}\" ({} .. {})",
                    n,
                    if self.unit.is_empty() {
                        String::new()
                    } else {
                        format!("{} ", self.unit)
                    },
                    self.name,
                    self.min,
                    self.max
                ),
            ));
        }
        Ok(())
    }

    /// A number with an optional unit, in this setting's unit.
    fn in_unit(&self, value: &str) -> Option<f64> {
        let v = value.trim();
        let end = v
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
            .unwrap_or(v.len());
        // `1e3` is a number; `1min` is not an exponent.
        let (num, unit) = v.split_at(end);
        let n: f64 = num.parse().ok()?;
        if !n.is_finite() {
            return None;
        }
        let unit = unit.trim();
        if unit.is_empty() {
            return Some(n);
        }
        let from = unit_factor(unit)?;
        let to = unit_factor(self.unit)?;
        // Time and memory do not convert into each other.
        if from.1 != to.1 {
            return None;
        }
        Some(n * from.0 / to.0)
    }

    /// A kept value as SHOW prints it: a number in the largest unit that
    /// divides it (`10s`, `128MB`), as PostgreSQL does.
    pub fn display(&self, kept: &str) -> String {
        if self.vartype != VarType::Integer || self.unit.is_empty() {
            return kept.to_string();
        }
        let (Ok(n), Some((base, kind))) = (kept.parse::<i64>(), unit_factor(self.unit)) else {
            return kept.to_string();
        };
        if n <= 0 {
            return n.to_string();
        }
        let units: &[(&str, f64)] = match kind {
            Kind::Time => &[
                ("d", 86_400_000.0),
                ("h", 3_600_000.0),
                ("min", 60_000.0),
                ("s", 1000.0),
                ("ms", 1.0),
                ("us", 0.001),
            ],
            Kind::Memory => &[
                ("TB", 1024.0 * 1024.0 * 1024.0 * 1024.0),
                ("GB", 1024.0 * 1024.0 * 1024.0),
                ("MB", 1024.0 * 1024.0),
                ("kB", 1024.0),
                ("B", 1.0),
            ],
        };
        let amount = n as f64 * base;
        for (name, size) in units {
            if *size < base {
                break;
            }
            let q = amount / size;
            if q.fract() == 0.0 {
                return format!("{}{name}", q as i64);
            }
        }
        format!("{n}{}", self.unit)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Time,
    Memory,
}

/// Size of a unit in milliseconds or bytes.
fn unit_factor(unit: &str) -> Option<(f64, Kind)> {
    Some(match unit {
        "us" => (0.001, Kind::Time),
        "ms" => (1.0, Kind::Time),
        "s" => (1000.0, Kind::Time),
        "min" => (60_000.0, Kind::Time),
        "h" => (3_600_000.0, Kind::Time),
        "d" => (86_400_000.0, Kind::Time),
        "B" => (1.0, Kind::Memory),
        "kB" => (1024.0, Kind::Memory),
        "8kB" => (8192.0, Kind::Memory),
        "16MB" => (16.0 * 1024.0 * 1024.0, Kind::Memory),
        "MB" => (1024.0 * 1024.0, Kind::Memory),
        "GB" => (1024.0 * 1024.0 * 1024.0, Kind::Memory),
        "TB" => (1024.0 * 1024.0 * 1024.0 * 1024.0, Kind::Memory),
        _ => return None,
    })
}

/// PostgreSQL's boolean input for settings: on/off, true/false, yes/no,
/// 1/0 and unambiguous prefixes, any case.
fn parse_bool(v: &str) -> Option<bool> {
    let v = v.trim().to_lowercase();
    if v.is_empty() {
        return None;
    }
    let prefix = |word: &str, min: usize| v.len() >= min && word.starts_with(v.as_str());
    if prefix("true", 1) || prefix("yes", 1) || v == "on" || v == "1" {
        Some(true)
    } else if prefix("false", 1) || prefix("no", 1) || prefix("off", 2) || v == "0" {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_postgres_15s_settings() {
        let lines = TABLE.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(GUCS.len(), lines, "every line parses");
        assert!(GUCS.len() > 300);
        let t = lookup("STATEMENT_TIMEOUT").unwrap();
        assert_eq!(
            (t.name, t.unit, t.vartype),
            ("statement_timeout", "ms", VarType::Integer)
        );
        assert_eq!(lookup("timezone").unwrap().name, "TimeZone");
        assert_eq!(lookup("timezone").unwrap().default, "UTC");
    }

    #[test]
    fn values_are_checked_and_shown_as_postgres_does() {
        let t = lookup("statement_timeout").unwrap();
        assert_eq!(t.check("10s").unwrap(), "10000");
        assert_eq!(t.display("10000"), "10s");
        assert_eq!(t.display("60000"), "1min");
        assert_eq!(t.display("1500"), "1500ms");
        assert_eq!(t.display("0"), "0");
        assert_eq!(t.check("1h").unwrap(), "3600000");
        assert_eq!(t.check("abc").unwrap_err().code, "22023");
        assert_eq!(t.check("-5").unwrap_err().code, "22023");
        assert_eq!(t.check("10 MB").unwrap_err().code, "22023");
        let b = lookup("enable_seqscan").unwrap();
        assert_eq!(b.check("OFF").unwrap(), "off");
        assert_eq!(b.check("t").unwrap(), "on");
        assert_eq!(b.check("maybe").unwrap_err().code, "22023");
        let e = lookup("bytea_output").unwrap();
        assert_eq!(e.check("ESCAPE").unwrap(), "escape");
        assert_eq!(e.check("base64").unwrap_err().code, "22023");
        assert_eq!(
            lookup("port").unwrap().check("1").unwrap_err().code,
            "55P02"
        );
        assert_eq!(
            lookup("server_version")
                .unwrap()
                .check("1")
                .unwrap_err()
                .code,
            "55P02"
        );
        let w = lookup("work_mem").unwrap();
        assert_eq!(w.check("64MB").unwrap(), "65536");
        assert_eq!(w.display("65536"), "64MB");
        assert!(is_custom("myapp.user_id"));
        assert!(!is_custom("nonsense"));
    }
}
