//! PostgreSQL text functions tools send that DataFusion lacks:
//! `format('%I.%I', schema, name)` (Metabase's column comments) and
//! `parse_ident('shop.orders')` (Grafana's column lookup), and
//! `pg_typeof(x)`.

use datafusion::arrow::array::{Array, AsArray, ListBuilder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use std::sync::Arc;

use crate::error::SqlError;
use crate::pg_catalog::text::quote_ident;

pub(crate) fn functions() -> Vec<ScalarUDF> {
    vec![
        parse_ident_udf(),
        ScalarUDF::new_from_impl(Format {
            signature: Signature::variadic_any(Volatility::Stable),
        }),
        ScalarUDF::new_from_impl(TypeOf {
            signature: Signature::any(1, Volatility::Immutable),
        }),
    ]
}

fn sql_error(code: &str, message: String) -> DataFusionError {
    DataFusionError::External(Box::new(SqlError::new(code, message)))
}

/// `parse_ident('a."B c".d')` = `{a,"B c",d}` as PostgreSQL splits it:
/// unquoted parts fold to lower case, quoted ones keep theirs (`""` is
/// a quote); whitespace around a part is skipped. With `strict` (the
/// default) anything after the last part is an error (22P02).
pub(crate) fn parse_ident(text: &str, strict: bool) -> Result<Vec<String>, String> {
    let invalid = || format!("string is not a valid identifier: \"{text}\"");
    let mut parts = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut part = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    Some('"') if chars.next_if_eq(&'"').is_some() => part.push('"'),
                    Some('"') => break,
                    Some(c) => part.push(c),
                    None => return Err(invalid()),
                }
            }
            if part.is_empty() {
                return Err(invalid());
            }
        } else {
            while let Some(c) =
                chars.next_if(|c| c.is_alphanumeric() || *c == '_' || *c == '$' || !c.is_ascii())
            {
                part.extend(c.to_lowercase());
            }
            if part.is_empty() || part.starts_with(|c: char| c.is_ascii_digit() || c == '$') {
                return Err(invalid());
            }
        }
        parts.push(part);
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.next() {
            Some('.') => continue,
            None => return Ok(parts),
            Some(_) if strict => return Err(invalid()),
            Some(_) => return Ok(parts),
        }
    }
}

fn parse_ident_udf() -> ScalarUDF {
    use datafusion::arrow::array::BooleanArray;
    let list = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    let signature = Signature::one_of(
        vec![
            TypeSignature::Exact(vec![DataType::Utf8]),
            TypeSignature::Exact(vec![DataType::Utf8, DataType::Boolean]),
        ],
        Volatility::Immutable,
    );
    ScalarUDF::from(
        datafusion::logical_expr::SimpleScalarUDF::new_with_signature(
            "parse_ident",
            signature,
            list,
            Arc::new(|args: &[ColumnarValue]| {
                let all_scalar = crate::udf::all_scalar(args);
                let arrays = ColumnarValue::values_to_arrays(args)?;
                let texts = arrays[0].as_string::<i32>();
                let stricts: Option<&BooleanArray> = arrays.get(1).map(|a| a.as_boolean());
                let mut out = ListBuilder::new(StringBuilder::new());
                for row in 0..texts.len() {
                    let strict =
                        stricts.map_or(Some(true), |s| (!s.is_null(row)).then(|| s.value(row)));
                    match (texts.is_null(row), strict) {
                        (false, Some(strict)) => {
                            let parts = parse_ident(texts.value(row), strict).map_err(|m| {
                                DataFusionError::External(Box::new(SqlError::new("22P02", m)))
                            })?;
                            for p in parts {
                                out.values().append_value(p);
                            }
                            out.append(true);
                        }
                        _ => out.append(false),
                    }
                }
                crate::udf::result(Arc::new(out.finish()), all_scalar)
            }),
        ),
    )
}

/// PostgreSQL's `quote_literal`: `'it''s'`, and `E'a\\b'` when the text
/// has a backslash.
fn quote_literal(text: &str) -> String {
    let body = text.replace('\'', "''");
    if text.contains('\\') {
        format!("E'{}'", body.replace('\\', "\\\\"))
    } else {
        format!("'{body}'")
    }
}

/// `format(fmt, args...)` as PostgreSQL formats: `%s` (text, NULL as
/// nothing), `%I` (an identifier, quoted when needed; NULL is 22004),
/// `%L` (a literal, NULL as `NULL`), `%%`; each with an optional
/// position `n$`, the `-` flag and a width.
pub(crate) fn format(fmt: &str, args: &[Option<String>]) -> Result<String, (String, String)> {
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    let mut next_arg = 0usize;
    let error = |code: &str, m: &str| Err((code.to_string(), m.to_string()));
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.next_if_eq(&'%').is_some() {
            out.push('%');
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.next_if(|d| d.is_ascii_digit()) {
            digits.push(d);
        }
        let mut width_text = String::new();
        if chars.next_if_eq(&'$').is_some() {
            match digits.parse::<usize>() {
                Ok(p) if p >= 1 => next_arg = p - 1,
                _ => {
                    return error(
                        "22023",
                        "format specifies argument 0, but arguments are numbered from 1",
                    )
                }
            }
        } else {
            width_text = digits;
        }
        let left = chars.next_if_eq(&'-').is_some();
        while let Some(d) = chars.next_if(|d| d.is_ascii_digit()) {
            width_text.push(d);
        }
        let width: usize = match width_text.parse::<usize>() {
            Ok(w) if w <= 1_000_000 => w,
            Ok(_) => return error("22023", "number is out of range"),
            Err(_) => 0,
        };
        let Some(kind) = chars.next() else {
            return error("22023", "unterminated format() type specifier");
        };
        if !matches!(kind, 's' | 'I' | 'L') {
            return Err((
                "22023".into(),
                format!("unrecognized format() type specifier \"{kind}\""),
            ));
        }
        let Some(arg) = args.get(next_arg) else {
            return error("22023", "too few arguments for format()");
        };
        next_arg += 1;
        let text = match (kind, arg) {
            ('s', v) => v.clone().unwrap_or_default(),
            ('I', Some(v)) => quote_ident(v),
            ('I', None) => {
                return error(
                    "22004",
                    "null values cannot be formatted as an SQL identifier",
                )
            }
            (_, Some(v)) => quote_literal(v),
            (_, None) => "NULL".to_string(),
        };
        let pad = width.saturating_sub(text.chars().count());
        if left {
            out.push_str(&text);
            out.extend(std::iter::repeat_n(' ', pad));
        } else {
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(&text);
        }
    }
    Ok(out)
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Format {
    signature: Signature,
}

/// An argument as `format` reads it: PostgreSQL's text output
/// (booleans `t`/`f`).
fn text_of(v: &ScalarValue) -> DfResult<Option<String>> {
    if v.is_null() {
        return Ok(None);
    }
    Ok(Some(match v {
        ScalarValue::Boolean(Some(b)) => if *b { "t" } else { "f" }.to_string(),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => s.clone(),
        other => match other.cast_to(&DataType::Utf8)? {
            ScalarValue::Utf8(Some(s)) => s,
            _ => other.to_string(),
        },
    }))
}

impl ScalarUDFImpl for Format {
    fn name(&self) -> &str {
        "format"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let all_scalar = crate::udf::all_scalar(&args.args);
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let n = if all_scalar { 1 } else { rows };
        let mut out = StringBuilder::new();
        for row in 0..n {
            let mut values = Vec::with_capacity(arrays.len());
            for a in &arrays {
                values.push(text_of(&ScalarValue::try_from_array(a, row)?)?);
            }
            match values.split_first() {
                Some((Some(fmt), rest)) => {
                    let text = format(fmt, rest).map_err(|(code, m)| sql_error(&code, m))?;
                    out.append_value(text);
                }
                _ => out.append_null(),
            }
        }
        crate::udf::result(Arc::new(out.finish()), all_scalar)
    }
}

#[cfg(test)]
mod tests {
    use super::{format, parse_ident};

    #[test]
    fn identifiers_split_as_postgresql_splits_them() {
        assert_eq!(
            parse_ident("shop.Orders", true).unwrap(),
            ["shop", "orders"]
        );
        assert_eq!(
            parse_ident(" a . \"B \"\"c\" .d", true).unwrap(),
            ["a", "B \"c", "d"]
        );
        assert_eq!(parse_ident("events", true).unwrap(), ["events"]);
        assert!(parse_ident("a.b()", true).is_err());
        assert_eq!(parse_ident("a.b()", false).unwrap(), ["a", "b"]);
        assert!(parse_ident("", true).is_err());
        assert!(parse_ident("a..b", true).is_err());
        assert!(parse_ident("\"unterminated", true).is_err());
    }

    #[test]
    fn format_formats_as_postgresql_does() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            format("%I.%I", &[s("shop"), s("Big Orders")]).unwrap(),
            "shop.\"Big Orders\""
        );
        assert_eq!(
            format("%s|%L|%L", &[None, s("it's"), None]).unwrap(),
            "|'it''s'|NULL"
        );
        assert_eq!(format("%2$s %1$s %%", &[s("a"), s("b")]).unwrap(), "b a %");
        assert_eq!(
            format("[%5s][%-5s]", &[s("ab"), s("cd")]).unwrap(),
            "[   ab][cd   ]"
        );
        assert_eq!(format("%L", &[s("a\\b")]).unwrap(), "E'a\\\\b'");
        assert_eq!(format("%s %s", &[s("a")]).unwrap_err().0, "22023");
        assert_eq!(format("%I", &[None]).unwrap_err().0, "22004");
        assert_eq!(format("%x", &[s("a")]).unwrap_err().0, "22023");
    }
}

/// `pg_typeof(x)`: the PostgreSQL type of `x`, as regtype prints it.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TypeOf {
    signature: Signature,
}

impl ScalarUDFImpl for TypeOf {
    fn name(&self) -> &str {
        "pg_typeof"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let field = args
            .arg_fields
            .first()
            .ok_or_else(|| DataFusionError::Internal("pg_typeof takes one argument".into()))?;
        let oid = crate::value::types::oid_of_field(field);
        let name = crate::pg_catalog::text::builtin_type_name(oid, None)
            .unwrap_or_else(|| oid.to_string());
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(name))))
    }
}
