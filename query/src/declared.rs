//! What a column of a table made by SQL declares beyond its type
//! (`varchar(n)`, `char(n)`, `numeric(p,s)`), applied to every value
//! written to it, from SQL, COPY or Python, with PostgreSQL's errors.

use crate::error::SqlError;
use crate::value::numeric::Numeric;
use amber_catalog::{ColumnDef, Declared};
use serde_json::Value as Json;

/// `v` (the canonical value of `col`'s type) as the column stores it:
/// a `character(n)` padded, a `numeric(p,s)` rounded to its scale.
/// Too long a string is 22001, too large a number 22003.
pub fn apply(col: &ColumnDef, v: Json) -> Result<Json, SqlError> {
    let Some(declared) = &col.declared else {
        return Ok(v);
    };
    match (declared, v) {
        (_, Json::Null) => Ok(Json::Null),
        (Declared::Varchar { length: None }, v) => Ok(v),
        (Declared::Varchar { length: Some(n) }, Json::String(s)) => {
            Ok(Json::String(fit(s, *n, "character varying")?))
        }
        // Stored without its padding, so that comparisons, length() and
        // casts to text ignore trailing spaces as PostgreSQL's bpchar does;
        // the padding is added when a column of it is sent (its typmod).
        (Declared::Char { length }, Json::String(s)) => {
            let s = fit(s, *length, "character")?;
            Ok(Json::String(s.trim_end_matches(' ').to_string()))
        }
        (Declared::Numeric { precision, scale }, Json::String(s)) => {
            let n = Numeric::parse(&s)
                .map_err(|_| SqlError::new("XX000", format!("not a numeric value: {s}")))?;
            Ok(Json::String(numeric(&n, *precision, *scale)?.to_string()))
        }
        (_, other) => Err(SqlError::new(
            "XX000",
            format!("a value of column {} is not of its type: {other}", col.name),
        )),
    }
}

/// `s` in at most `n` characters: longer is an error unless only spaces
/// go, as PostgreSQL's varchar and bpchar input functions do.
fn fit(s: String, n: u32, type_name: &str) -> Result<String, SqlError> {
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    match s.char_indices().nth(n) {
        None => Ok(s),
        Some((cut, _)) if s[cut..].bytes().all(|b| b == b' ') => Ok(s[..cut].to_string()),
        Some(_) => Err(SqlError::new(
            "22001",
            format!("value too long for type {type_name}({n})"),
        )),
    }
}

/// `n` as `numeric(precision, scale)` stores it.
fn numeric(n: &Numeric, precision: u32, scale: u32) -> Result<Numeric, SqlError> {
    let overflow =
        |detail: String| SqlError::new("22003", "numeric field overflow").with_detail(Some(detail));
    match n {
        Numeric::NaN => Ok(Numeric::NaN),
        Numeric::PosInf | Numeric::NegInf => Err(overflow(format!(
            "A field with precision {precision}, scale {scale} cannot hold an infinite value."
        ))),
        Numeric::Finite { .. } => {
            let r = n.rounded(usize::try_from(scale).unwrap_or(usize::MAX));
            let allowed = precision.saturating_sub(scale);
            if r.integer_digits() > usize::try_from(allowed).unwrap_or(usize::MAX) {
                return Err(overflow(format!(
                    "A field with precision {precision}, scale {scale} must round to an absolute value less than {}.",
                    if allowed == 0 { "1".to_string() } else { format!("10^{allowed}") }
                )));
            }
            Ok(r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(declared: Declared, ty: amber_catalog::SqlType) -> ColumnDef {
        let mut c = ColumnDef::new(1, "c", ty);
        c.declared = Some(declared);
        c
    }

    #[test]
    fn lengths_and_precisions_apply_as_in_postgresql() {
        use amber_catalog::SqlType::{Numeric as N, Text};
        let vc = col(Declared::Varchar { length: Some(3) }, Text);
        assert_eq!(apply(&vc, Json::from("abc")).unwrap(), Json::from("abc"));
        assert_eq!(apply(&vc, Json::from("ab  ")).unwrap(), Json::from("ab "));
        assert_eq!(apply(&vc, Json::from("äöüé")).unwrap_err().code, "22001");
        let ch = col(Declared::Char { length: 3 }, Text);
        assert_eq!(apply(&ch, Json::from("a ")).unwrap(), Json::from("a"));
        assert_eq!(apply(&ch, Json::from("abcd")).unwrap_err().code, "22001");
        let num = col(
            Declared::Numeric {
                precision: 5,
                scale: 2,
            },
            N,
        );
        let n = |s: &str| apply(&num, Json::from(s));
        assert_eq!(n("1.5").unwrap(), Json::from("1.50"));
        assert_eq!(n("1.005").unwrap(), Json::from("1.01"));
        assert_eq!(n("-1.005").unwrap(), Json::from("-1.01"));
        assert_eq!(n("-0.001").unwrap(), Json::from("0.00"));
        assert_eq!(n("999.994").unwrap(), Json::from("999.99"));
        assert_eq!(n("NaN").unwrap(), Json::from("NaN"));
        let e = n("999.995").unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("22003", "numeric field overflow")
        );
        assert_eq!(n("Infinity").unwrap_err().code, "22003");
        let int = col(
            Declared::Numeric {
                precision: 3,
                scale: 0,
            },
            N,
        );
        assert_eq!(apply(&int, Json::from("12.5")).unwrap(), Json::from("13"));
    }
}
