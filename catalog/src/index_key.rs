//! The one key layout of index entries, secondary and unique alike:
//!
//! `i` + index id (u64 BE) + one encoded part per key column + object id
//! (u64 BE) -> empty value.
//!
//! Each part is order-preserving and self-delimiting, so that byte order
//! of keys is PostgreSQL's btree order of the values (ASC, NULLS LAST,
//! text in the "C" collation) and the entries with a given key prefix are
//! one contiguous range. A lookup reads exactly that range, so it
//! conflicts with a concurrent insert of its key and with nothing else;
//! a unique check is the same range read.
//!
//! A part is a presence byte (`1` a value, `2` NULL, which sorts after
//! every value) and then:
//! - integers (bigint, integer, smallint, references; dates as days and
//!   timestamps as microseconds): 8 bytes BE with the sign bit flipped;
//! - double precision: its bits, all inverted when negative, sign bit set
//!   otherwise (`-0` is `0`, NaN after infinity as PostgreSQL sorts it);
//! - boolean: one byte;
//! - text, bytea, and jsonb/arrays (as canonical JSON: equality only,
//!   not PostgreSQL's order): the bytes with `00` escaped as `00 FF`,
//!   ended by `00 01`;
//! - numeric: a class byte (-Infinity, negative, zero, positive,
//!   Infinity, NaN), then for a non-zero finite value `0.D × 10^E` its
//!   exponent E (i32 BE, sign flipped) and significant digits D ended by
//!   `00`, every byte of both inverted when negative. Trailing zeros are
//!   dropped, so `1.50` and `1.5` are one key as they are equal.

/// A key column's value, typed as the encoding needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyPart<'a> {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(&'a str),
    Bytes(&'a [u8]),
    /// A numeric's text (`-12.50`, `NaN`, `Infinity`).
    Numeric(&'a str),
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum KeyError {
    #[error("invalid numeric in an index key: {0}")]
    Numeric(String),
}

/// The first byte of a part holding a value, and of a NULL part (after
/// every value: NULLS LAST).
pub const PRESENT: u8 = 1;
pub const NULL: u8 = 2;
/// Byte length of the index prefix (`i` + id).
pub const INDEX_PREFIX_LEN: usize = 9;
/// Byte length of the object id every entry ends with.
pub const ENTRY_OID_LEN: usize = 8;

/// `i` + index id: the first bytes of all of one index's entries.
pub fn index_prefix(index_id: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(64);
    k.push(b'i');
    k.extend_from_slice(&index_id.to_be_bytes());
    k
}

/// The first key after every entry of `index_id`.
pub fn index_end(index_id: u64) -> Vec<u8> {
    match index_id.checked_add(1) {
        Some(next) => index_prefix(next),
        None => vec![b'j'],
    }
}

/// Appends one encoded part to `out`.
pub fn push_part(out: &mut Vec<u8>, part: &KeyPart<'_>) -> Result<(), KeyError> {
    match part {
        KeyPart::Null => {
            out.push(NULL);
            return Ok(());
        }
        _ => out.push(PRESENT),
    }
    match *part {
        KeyPart::Null => {}
        KeyPart::Int(x) => out.extend_from_slice(&((x as u64) ^ (1 << 63)).to_be_bytes()),
        KeyPart::Float(f) => {
            let f = if f == 0.0 {
                0.0
            } else if f.is_nan() {
                f64::NAN
            } else {
                f
            };
            let bits = f.to_bits();
            let ordered = if bits >> 63 == 1 {
                !bits
            } else {
                bits | (1 << 63)
            };
            out.extend_from_slice(&ordered.to_be_bytes());
        }
        KeyPart::Bool(b) => out.push(u8::from(b)),
        KeyPart::Text(s) => push_bytes(out, s.as_bytes()),
        KeyPart::Bytes(b) => push_bytes(out, b),
        KeyPart::Numeric(s) => push_numeric(out, s)?,
    }
    Ok(())
}

/// An index entry's key: prefix, the encoded parts, the object id.
pub fn entry_key(index_id: u64, parts: &[u8], oid: u64) -> Vec<u8> {
    let mut k = index_prefix(index_id);
    k.extend_from_slice(parts);
    k.extend_from_slice(&oid.to_be_bytes());
    k
}

/// The object id an entry key ends with.
pub fn entry_oid(key: &[u8]) -> Option<u64> {
    if key.len() < INDEX_PREFIX_LEN + ENTRY_OID_LEN || key[0] != b'i' {
        return None;
    }
    let tail: [u8; 8] = key[key.len() - ENTRY_OID_LEN..].try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

/// The first key after every key that starts with `prefix` (`None`:
/// `prefix` is all `FF`, so nothing comes after it).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 1]);
}

const NUM_NEG_INF: u8 = 1;
const NUM_NEG: u8 = 2;
const NUM_ZERO: u8 = 3;
const NUM_POS: u8 = 4;
const NUM_POS_INF: u8 = 5;
const NUM_NAN: u8 = 6;

fn push_numeric(out: &mut Vec<u8>, s: &str) -> Result<(), KeyError> {
    let bad = || KeyError::Numeric(s.chars().take(64).collect());
    match s {
        "NaN" => {
            out.push(NUM_NAN);
            return Ok(());
        }
        "Infinity" => {
            out.push(NUM_POS_INF);
            return Ok(());
        }
        "-Infinity" => {
            out.push(NUM_NEG_INF);
            return Ok(());
        }
        _ => {}
    }
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    // 0.D × 10^E: D the significant digits, E where the point goes.
    let int = int.trim_start_matches('0');
    let (digits, exponent): (String, i64) = if int.is_empty() {
        let lead = frac.len() - frac.trim_start_matches('0').len();
        (
            frac.trim_start_matches('0').to_string(),
            -(i64::try_from(lead).map_err(|_| bad())?),
        )
    } else {
        (
            format!("{int}{frac}"),
            i64::try_from(int.len()).map_err(|_| bad())?,
        )
    };
    let digits = digits.trim_end_matches('0');
    if digits.is_empty() {
        out.push(NUM_ZERO);
        return Ok(());
    }
    let exponent = i32::try_from(exponent).map_err(|_| bad())?;
    let mut body = Vec::with_capacity(digits.len() + 5);
    body.extend_from_slice(&((exponent as u32) ^ (1 << 31)).to_be_bytes());
    body.extend_from_slice(digits.as_bytes());
    body.push(0);
    if negative {
        out.push(NUM_NEG);
        out.extend(body.iter().map(|b| !b));
    } else {
        out.push(NUM_POS);
        out.extend_from_slice(&body);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(parts: &[KeyPart<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in parts {
            push_part(&mut out, p).expect("encodes");
        }
        out
    }

    fn assert_ascending(values: &[KeyPart<'_>]) {
        for pair in values.windows(2) {
            let (a, b) = (enc(&[pair[0]]), enc(&[pair[1]]));
            assert!(a < b, "{:?} should sort before {:?}", pair[0], pair[1]);
        }
    }

    #[test]
    fn integers_sort_as_numbers_with_nulls_last() {
        assert_ascending(&[
            KeyPart::Int(i64::MIN),
            KeyPart::Int(-2),
            KeyPart::Int(-1),
            KeyPart::Int(0),
            KeyPart::Int(1),
            KeyPart::Int(300),
            KeyPart::Int(i64::MAX),
            KeyPart::Null,
        ]);
    }

    #[test]
    fn floats_sort_as_postgresql_sorts_them() {
        assert_ascending(&[
            KeyPart::Float(f64::NEG_INFINITY),
            KeyPart::Float(-1e300),
            KeyPart::Float(-1.5),
            KeyPart::Float(-1e-300),
            KeyPart::Float(0.0),
            KeyPart::Float(1e-300),
            KeyPart::Float(2.5),
            KeyPart::Float(f64::INFINITY),
            KeyPart::Float(f64::NAN),
            KeyPart::Null,
        ]);
        assert_eq!(enc(&[KeyPart::Float(-0.0)]), enc(&[KeyPart::Float(0.0)]));
    }

    #[test]
    fn text_sorts_bytewise_and_parts_delimit_themselves() {
        assert_ascending(&[
            KeyPart::Text(""),
            KeyPart::Text("\0"),
            KeyPart::Text("A"),
            KeyPart::Text("B"),
            KeyPart::Text("a"),
            KeyPart::Text("ab"),
            KeyPart::Text("ab\0"),
            KeyPart::Text("abc"),
            KeyPart::Text("é"),
            KeyPart::Null,
        ]);
        // ("ab", "c") and ("a", "bc") are different keys, in order.
        let a = enc(&[KeyPart::Text("a"), KeyPart::Text("bc")]);
        let b = enc(&[KeyPart::Text("ab"), KeyPart::Text("c")]);
        assert!(a < b);
        // A key's encoding is a prefix of its entries' keys only.
        let k = enc(&[KeyPart::Text("ab")]);
        let longer = enc(&[KeyPart::Text("abc")]);
        assert!(!longer.starts_with(&k));
    }

    #[test]
    fn numerics_sort_by_value_and_equal_values_are_one_key() {
        let values = [
            "-Infinity",
            "-1000",
            "-999.5",
            "-12.34",
            "-12.3",
            "-1",
            "-0.001",
            "0",
            "0.000123",
            "0.1",
            "0.12",
            "1",
            "1.5",
            "9.99",
            "10",
            "12.3",
            "12.34",
            "100",
            "Infinity",
            "NaN",
        ];
        let parts: Vec<KeyPart<'_>> = values.iter().map(|s| KeyPart::Numeric(s)).collect();
        assert_ascending(&parts);
        for (a, b) in [("1.50", "1.5"), ("-0", "0"), ("0.000", "0"), ("010", "10")] {
            assert_eq!(
                enc(&[KeyPart::Numeric(a)]),
                enc(&[KeyPart::Numeric(b)]),
                "{a} = {b}"
            );
        }
        assert!(push_part(&mut Vec::new(), &KeyPart::Numeric("1e5")).is_err());
        assert!(push_part(&mut Vec::new(), &KeyPart::Numeric("")).is_err());
    }

    #[test]
    fn entries_end_with_their_object_id() {
        let parts = enc(&[KeyPart::Int(7)]);
        let key = entry_key(3, &parts, 42);
        assert!(key.starts_with(&index_prefix(3)));
        assert_eq!(entry_oid(&key), Some(42));
        assert!(key < index_end(3));
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF]), None);
    }
}
