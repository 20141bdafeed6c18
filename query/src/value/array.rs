//! One-dimensional array text as PostgreSQL's `array_in`/`array_out`
//! reads and writes it: `{a,"b c",NULL,"\"q\""}`.

use crate::error::SqlError;

/// Most elements an array value may have (PostgreSQL's MaxArraySize is
/// about 134M; a bound here keeps one parameter from taking the server's
/// memory). Fails closed with 54000.
pub const ELEMENTS_MAX: usize = 1 << 24;

fn malformed(text: &str, why: &str) -> SqlError {
    SqlError::new("22P02", format!("malformed array literal: \"{text}\""))
        .with_detail(Some(why.to_string()))
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Splits array text into its elements' texts (`None` for NULL).
pub fn parse(text: &str) -> Result<Vec<Option<String>>, SqlError> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() && is_space(b[i]) {
        i += 1;
    }
    if b.get(i) == Some(&b'[') {
        return Err(SqlError::unsupported(
            "array literals with explicit bounds are not supported",
        ));
    }
    if b.get(i) != Some(&b'{') {
        return Err(malformed(
            text,
            "Array value must start with \"{\" or dimension information.",
        ));
    }
    i += 1;
    let mut out = Vec::new();
    let mut expect_element = true;
    loop {
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }
        match b.get(i) {
            None => return Err(malformed(text, "Unexpected end of input.")),
            Some(b'}') if out.is_empty() && expect_element => {
                i += 1;
                break;
            }
            Some(b'{') => {
                return Err(SqlError::unsupported(
                    "multidimensional arrays are not supported",
                ))
            }
            Some(b'}') | Some(b',') if expect_element => {
                return Err(malformed(text, "Unexpected \",\" or \"}\" character."))
            }
            Some(b'}') => {
                i += 1;
                break;
            }
            Some(b',') => {
                i += 1;
                expect_element = true;
                continue;
            }
            Some(_) if !expect_element => {
                return Err(malformed(text, "Expected \",\" or \"}\" character."))
            }
            Some(b'"') => {
                i += 1;
                let mut s = Vec::new();
                loop {
                    match b.get(i) {
                        None => return Err(malformed(text, "Unexpected end of input.")),
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            let c = *b
                                .get(i + 1)
                                .ok_or_else(|| malformed(text, "Unexpected end of input."))?;
                            s.push(c);
                            i += 2;
                        }
                        Some(c) => {
                            s.push(*c);
                            i += 1;
                        }
                    }
                }
                out.push(Some(
                    String::from_utf8(s).map_err(|_| malformed(text, "invalid UTF-8"))?,
                ));
                expect_element = false;
            }
            Some(_) => {
                // Unquoted: up to , or }, backslash escapes, blanks trimmed
                // at both ends (escaped blanks are kept).
                let mut s = Vec::new();
                let mut kept = 0; // length up to the last escaped byte
                let mut quoted_any = false;
                while let Some(&c) = b.get(i) {
                    match c {
                        b',' | b'}' => break,
                        b'{' | b'"' => return Err(malformed(text, "Unexpected array element.")),
                        b'\\' => {
                            let c = *b
                                .get(i + 1)
                                .ok_or_else(|| malformed(text, "Unexpected end of input."))?;
                            s.push(c);
                            kept = s.len();
                            quoted_any = true;
                            i += 2;
                        }
                        c => {
                            s.push(c);
                            i += 1;
                        }
                    }
                }
                while s.len() > kept && s.last().is_some_and(|c| is_space(*c)) {
                    s.pop();
                }
                let s = String::from_utf8(s).map_err(|_| malformed(text, "invalid UTF-8"))?;
                if !quoted_any && s.eq_ignore_ascii_case("null") {
                    out.push(None);
                } else {
                    out.push(Some(s));
                }
                expect_element = false;
            }
        }
        if out.len() > ELEMENTS_MAX {
            return Err(SqlError::new(
                "54000",
                format!("array size exceeds the maximum allowed ({ELEMENTS_MAX})"),
            ));
        }
    }
    while i < b.len() && is_space(b[i]) {
        i += 1;
    }
    if i != b.len() {
        return Err(malformed(text, "Junk after closing right brace."));
    }
    Ok(out)
}

/// `array_out` of elements already in their text form.
pub fn format<S: AsRef<str>>(elements: &[Option<S>]) -> String {
    let mut out = String::from("{");
    for (i, e) in elements.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match e {
            None => out.push_str("NULL"),
            Some(s) => {
                let s = s.as_ref();
                let quote = s.is_empty()
                    || s.eq_ignore_ascii_case("null")
                    || s.bytes()
                        .any(|c| matches!(c, b'{' | b'}' | b',' | b'"' | b'\\') || is_space(c));
                if quote {
                    out.push('"');
                    for c in s.chars() {
                        if c == '"' || c == '\\' {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                    out.push('"');
                } else {
                    out.push_str(s);
                }
            }
        }
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_arrays_as_postgres_writes_them() {
        let elements = [
            Some("a"),
            Some("b c"),
            Some("\"q\""),
            Some("x,y"),
            Some("{"),
            Some("}"),
            Some("back\\slash"),
            None,
            Some(""),
            Some("NULL"),
            Some("null"),
            Some(" s"),
        ];
        // PostgreSQL 15's output for the same array.
        let pg = r#"{a,"b c","\"q\"","x,y","{","}","back\\slash",NULL,"","NULL","null"," s"}"#;
        assert_eq!(format(&elements), pg);
        let back = parse(pg).unwrap();
        assert_eq!(
            back,
            elements
                .iter()
                .map(|e| e.map(str::to_string))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            parse(" { 1 , 2 } ").unwrap(),
            vec![Some("1".into()), Some("2".into())]
        );
        assert_eq!(parse("{}").unwrap(), Vec::<Option<String>>::new());
        assert_eq!(parse("{a\\ }").unwrap(), vec![Some("a ".into())]);
        assert!(parse("{1,}").is_err());
        assert!(parse("{1").is_err());
        assert!(parse("1}").is_err());
        assert_eq!(parse("{{1}}").unwrap_err().code, "0A000");
    }
}
