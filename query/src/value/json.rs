//! `json` and `jsonb` text: validated as PostgreSQL validates it, and
//! `jsonb` printed as `jsonb_out` prints it (keys ordered by length and
//! then bytes, the last of duplicate keys kept, `": "` and `", "`
//! separators, numbers as `numeric`).
//!
//! Stored JSON keeps every number's text (serde_json's
//! `arbitrary_precision`), so `1.50` and 30-digit integers survive.

use super::numeric::Numeric;
use serde_json::Value as Json;
use std::fmt::Write;

/// Deepest nesting accepted: serde_json's own recursion limit, checked
/// first so that the refusal is a clear 54001, never a parse error.
pub const DEPTH_MAX: usize = 127;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonError {
    /// 22P02 invalid input syntax for type json
    Syntax(String),
    /// 22P05 unsupported Unicode escape sequence (`\u0000` in jsonb)
    NulEscape,
    /// 54001 too deeply nested
    TooDeep,
}

/// Parses `json`/`jsonb` input text. `jsonb` refuses `\u0000` (it cannot
/// be text), as PostgreSQL.
pub fn parse(text: &str, jsonb: bool) -> Result<Json, JsonError> {
    if depth(text) > DEPTH_MAX {
        return Err(JsonError::TooDeep);
    }
    let v: Json = serde_json::from_str(text).map_err(|e| JsonError::Syntax(e.to_string()))?;
    if jsonb && has_nul(&v) {
        return Err(JsonError::NulEscape);
    }
    Ok(v)
}

/// Deepest nesting of `[`/`{` outside strings (a linear pre-check, so
/// serde_json's own recursion stays bounded).
fn depth(text: &str) -> usize {
    let (mut d, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                d += 1;
                max = max.max(d);
            }
            b']' | b'}' => d = d.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn has_nul(v: &Json) -> bool {
    match v {
        Json::String(s) => s.contains('\0'),
        Json::Array(a) => a.iter().any(has_nul),
        Json::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// `jsonb_out`.
pub fn jsonb_text(v: &Json) -> String {
    let mut out = String::new();
    write_jsonb(&mut out, v);
    out
}

fn write_jsonb(out: &mut String, v: &Json) {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => {
            let text = n.to_string();
            match Numeric::parse(&text) {
                Ok(num) => {
                    let _ = write!(out, "{num}");
                }
                Err(_) => out.push_str(&text),
            }
        }
        Json::String(s) => write_string(out, s),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_jsonb(out, item);
            }
            out.push(']');
        }
        Json::Object(map) => {
            // serde_json keeps the last of duplicate keys already.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| {
                a.len()
                    .cmp(&b.len())
                    .then_with(|| a.as_bytes().cmp(b.as_bytes()))
            });
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(out, k);
                out.push_str(": ");
                write_jsonb(out, &map[k]);
            }
            out.push('}');
        }
    }
}

/// PostgreSQL's `escape_json`.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonb_as_postgres_prints_it() {
        // Checked against PostgreSQL 15.
        let v = parse(
            r#"{"b":1,"a":[1.50,1e2,-0,1E-3,true,null],"aa":"\u00e9\u0001","b":2}"#,
            true,
        )
        .unwrap();
        assert_eq!(
            jsonb_text(&v),
            r#"{"a": [1.50, 100, 0, 0.001, true, null], "b": 2, "aa": "é\u0001"}"#
        );
        let big = parse("123456789012345678901234567890.000", true).unwrap();
        assert_eq!(jsonb_text(&big), "123456789012345678901234567890.000");
        assert_eq!(parse(r#""\u0000""#, true), Err(JsonError::NulEscape));
        assert!(parse(r#""\u0000""#, false).is_ok());
        assert!(matches!(parse("{", true), Err(JsonError::Syntax(_))));
        let deep = format!("{}{}", "[".repeat(DEPTH_MAX + 1), "]".repeat(DEPTH_MAX + 1));
        assert_eq!(parse(&deep, true), Err(JsonError::TooDeep));
    }
}
