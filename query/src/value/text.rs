//! Text input of the scalar types as PostgreSQL's input functions read it
//! (`int8in`, `boolin`, `byteain`, ...) and the text checks every value
//! crossing the wire gets (valid UTF-8, no NUL).

use crate::error::SqlError;

/// A value's bytes as text: UTF-8 without NUL, or 22021 with PostgreSQL's
/// message (it checks client text the same way, NUL included).
pub fn utf8(bytes: &[u8]) -> Result<&str, SqlError> {
    match std::str::from_utf8(bytes) {
        Ok(s) => match s.find('\0') {
            None => Ok(s),
            Some(_) => Err(bad_byte_sequence(&[0])),
        },
        Err(e) => {
            let start = e.valid_up_to();
            let len = e.error_len().unwrap_or(bytes.len() - start).max(1);
            // PostgreSQL shows the bad byte and what follows, up to a char.
            let end = (start + len.max(2)).min(bytes.len());
            Err(bad_byte_sequence(&bytes[start..end]))
        }
    }
}

fn bad_byte_sequence(bytes: &[u8]) -> SqlError {
    let shown: Vec<String> = bytes.iter().map(|b| format!("0x{b:02x}")).collect();
    SqlError::new(
        "22021",
        format!(
            "invalid byte sequence for encoding \"UTF8\": {}",
            shown.join(" ")
        ),
    )
}

pub fn invalid_syntax(type_name: &str, text: &str) -> SqlError {
    SqlError::new(
        "22P02",
        format!("invalid input syntax for type {type_name}: \"{text}\""),
    )
}

fn out_of_range(type_name: &str, text: &str) -> SqlError {
    SqlError::new(
        "22003",
        format!("value \"{text}\" is out of range for type {type_name}"),
    )
}

/// `int2in`/`int4in`/`int8in`: blanks around, a sign, decimal digits.
pub fn parse_int(text: &str, bits: u32) -> Result<i64, SqlError> {
    let name = match bits {
        16 => "smallint",
        32 => "integer",
        _ => "bigint",
    };
    let t = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid_syntax(name, text));
    }
    let v: i64 = t.parse().map_err(|_| out_of_range(name, text))?;
    let (min, max) = match bits {
        16 => (i16::MIN as i64, i16::MAX as i64),
        32 => (i32::MIN as i64, i32::MAX as i64),
        _ => (i64::MIN, i64::MAX),
    };
    if v < min || v > max {
        return Err(out_of_range(name, text));
    }
    Ok(v)
}

/// `boolin`: any unambiguous prefix of true/false/yes/no, on/off, 1/0,
/// in any case, with blanks around.
pub fn parse_bool(text: &str) -> Result<bool, SqlError> {
    let t = text
        .trim_matches(|c: char| c.is_ascii_whitespace())
        .to_ascii_lowercase();
    let prefix_of = |word: &str| !t.is_empty() && word.starts_with(t.as_str());
    if prefix_of("true") || prefix_of("yes") || t == "on" || t == "1" {
        Ok(true)
    } else if prefix_of("false") || prefix_of("no") || t == "off" || t == "of" || t == "0" {
        Ok(false)
    } else {
        Err(invalid_syntax("boolean", text))
    }
}

/// `byteain`: `\x` and hex digits (blanks between pairs allowed), or the
/// escape format (`\\`, `\ooo`, other bytes as they are).
pub fn parse_bytea(text: &str) -> Result<Vec<u8>, SqlError> {
    let b = text.as_bytes();
    if let Some(hex) = b.strip_prefix(b"\\x") {
        let mut out = Vec::with_capacity(hex.len() / 2);
        let mut i = 0;
        while i < hex.len() {
            if hex[i].is_ascii_whitespace() {
                i += 1;
                continue;
            }
            let hi = hex_digit(hex[i])?;
            let lo = match hex.get(i + 1) {
                Some(c) => hex_digit(*c)?,
                None => {
                    return Err(SqlError::new(
                        "22P02",
                        "invalid hexadecimal data: odd number of digits",
                    ))
                }
            };
            out.push(hi << 4 | lo);
            i += 2;
        }
        return Ok(out);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
        } else if b.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else if let Some(oct) = b.get(i + 1..i + 4).filter(|o| {
            (b'0'..=b'3').contains(&o[0]) && o[1..].iter().all(|c| (b'0'..=b'7').contains(c))
        }) {
            out.push((oct[0] - b'0') << 6 | (oct[1] - b'0') << 3 | (oct[2] - b'0'));
            i += 4;
        } else {
            return Err(SqlError::new(
                "22P02",
                "invalid input syntax for type bytea",
            ));
        }
    }
    Ok(out)
}

fn hex_digit(c: u8) -> Result<u8, SqlError> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(SqlError::new(
            "22P02",
            format!(
                "invalid hexadecimal digit: \"{}\"",
                String::from_utf8_lossy(&[c])
            ),
        )),
    }
}

/// `byteaout` with bytea_output = hex.
pub fn format_bytea(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 + 2 * b.len());
    s.push_str("\\x");
    for x in b {
        s.push(HEX[(x >> 4) as usize] as char);
        s.push(HEX[(x & 15) as usize] as char);
    }
    s
}

/// Pads the UTF-8 text in `buf` with spaces to `chars` characters (a
/// `character(n)` value as sent); longer or non-UTF-8 text is left alone.
pub fn pad_chars(buf: &mut Vec<u8>, chars: usize) {
    if chars == 0 || buf.len() >= chars.saturating_mul(4) {
        return;
    }
    let Ok(s) = std::str::from_utf8(buf) else {
        return;
    };
    let have = s.chars().count();
    buf.extend(std::iter::repeat_n(b' ', chars.saturating_sub(have)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_checks() {
        assert_eq!(utf8(b"it''s").unwrap(), "it''s");
        assert_eq!(utf8(b"a\0b").unwrap_err().code, "22021");
        let e = utf8(b"a\xc3\x28").unwrap_err();
        assert_eq!(e.code, "22021");
        assert_eq!(
            e.message,
            "invalid byte sequence for encoding \"UTF8\": 0xc3 0x28"
        );
    }

    #[test]
    fn scalars_as_postgres_reads_them() {
        assert_eq!(parse_int(" 12 ", 64).unwrap(), 12);
        assert_eq!(parse_int("-32768", 16).unwrap(), -32768);
        assert_eq!(parse_int("32768", 16).unwrap_err().code, "22003");
        assert_eq!(
            parse_int("9223372036854775808", 64).unwrap_err().message,
            "value \"9223372036854775808\" is out of range for type bigint"
        );
        assert_eq!(
            parse_int("abc", 32).unwrap_err().message,
            "invalid input syntax for type integer: \"abc\""
        );
        assert!(parse_bool(" t ").unwrap());
        assert!(parse_bool("yes").unwrap());
        assert!(!parse_bool("of").unwrap());
        assert!(parse_bool("o").is_err());
        assert_eq!(parse_bytea("\\x00ff").unwrap(), vec![0, 255]);
        assert_eq!(parse_bytea("a\\000b\\\\c").unwrap(), b"a\0b\\c".to_vec());
        assert_eq!(
            parse_bytea("\\xg0").unwrap_err().message,
            "invalid hexadecimal digit: \"g\""
        );
        assert_eq!(
            parse_bytea("\\x0").unwrap_err().message,
            "invalid hexadecimal data: odd number of digits"
        );
        assert!(parse_bytea("a\\").is_err());
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(parse_bytea(&format_bytea(&all)).unwrap(), all);
    }
}
