//! `float8`/`float4` text as PostgreSQL 12+ writes and reads it: the
//! shortest digits that read back to the same value when
//! `extra_float_digits` is positive (the default, 1), or `%.{N}g` with
//! N = DIG + extra_float_digits when it is 0 or less; `NaN`, `Infinity`,
//! `-Infinity`, `-0`.

/// Significant decimal digits a float8 / float4 always keeps (DBL_DIG,
/// FLT_DIG): the switch to exponent notation.
const DBL_DIG: i32 = 15;
const FLT_DIG: i32 = 6;

pub fn format_f64(v: f64, extra_float_digits: i32) -> String {
    if let Some(s) = special(v.is_nan(), v.is_infinite(), v < 0.0) {
        return s.to_string();
    }
    if extra_float_digits > 0 {
        shortest(&format!("{v:e}"), DBL_DIG)
    } else {
        general(v, (DBL_DIG + extra_float_digits).max(1))
    }
}

pub fn format_f32(v: f32, extra_float_digits: i32) -> String {
    if let Some(s) = special(v.is_nan(), v.is_infinite(), v < 0.0) {
        return s.to_string();
    }
    if extra_float_digits > 0 {
        shortest(&format!("{v:e}"), FLT_DIG)
    } else {
        general(f64::from(v), (FLT_DIG + extra_float_digits).max(1))
    }
}

fn special(nan: bool, inf: bool, neg: bool) -> Option<&'static str> {
    match (nan, inf, neg) {
        (true, _, _) => Some("NaN"),
        (false, true, false) => Some("Infinity"),
        (false, true, true) => Some("-Infinity"),
        _ => None,
    }
}

/// Lays out Rust's shortest round-trip digits (`{:e}`: `d.ddde±x`) as
/// PostgreSQL's `float8out` does: fixed notation for exponents from -4 to
/// `dig - 1`, otherwise `d.ddde+XX` with at least two exponent digits.
fn shortest(sci: &str, dig: i32) -> String {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    layout(neg, &digits, exp, dig)
}

/// `%.{precision}g`.
fn general(v: f64, precision: i32) -> String {
    let s = format!("{:.*e}", (precision - 1) as usize, v);
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    layout(neg, digits, exp, precision)
}

/// Digits `d1 d2 ...` meaning `d1.d2... x 10^exp`.
fn layout(neg: bool, digits: &str, exp: i32, dig: i32) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if exp < -4 || exp >= dig {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push_str(&format!(
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        ));
    } else if exp < 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat((-exp - 1) as usize));
        out.push_str(digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(digits);
            out.push_str(&"0".repeat(int_len - digits.len()));
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

/// `float8in`: blanks around, `NaN`/`Infinity`/`inf` in any case, a
/// decimal or exponent number. `Err(true)` when out of range (22003),
/// `Err(false)` for bad syntax (22P02).
pub fn parse_f64(s: &str) -> Result<f64, bool> {
    let t = s.trim_matches(|c: char| c.is_ascii_whitespace());
    let v: f64 = match t.to_ascii_lowercase().as_str() {
        "nan" | "+nan" | "-nan" => return Ok(f64::NAN),
        "infinity" | "+infinity" | "inf" | "+inf" => return Ok(f64::INFINITY),
        "-infinity" | "-inf" => return Ok(f64::NEG_INFINITY),
        _ => {
            if t.is_empty()
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
            {
                return Err(false);
            }
            t.parse().map_err(|_| false)?
        }
    };
    // strtod's ERANGE: overflow to infinity, or underflow of a non-zero
    // input to zero.
    if v.is_infinite() {
        return Err(true);
    }
    if v == 0.0 && t.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
        let mantissa = t.split(['e', 'E']).next().unwrap_or("");
        if mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
            return Err(true);
        }
    }
    Ok(v)
}

/// `float4in`: as [`parse_f64`], then range-checked as float4.
pub fn parse_f32(s: &str) -> Result<f32, bool> {
    let v = parse_f64(s)?;
    let f = v as f32;
    if v.is_finite() && (f.is_infinite() || (f == 0.0 && v != 0.0)) {
        return Err(true);
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float8_as_postgres_prints_it() {
        // Checked against PostgreSQL 15 (extra_float_digits 1, then 0).
        for (v, pg) in [
            (1e15, "1e+15"),
            (123456789012345.0, "123456789012345"),
            (1e16, "1e+16"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e300, "1e+300"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
            (-0.0, "-0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1.5e-7, "1.5e-07"),
            (1e-320, "1e-320"),
            (5e-324, "5e-324"),
            (100.0, "100"),
        ] {
            assert_eq!(format_f64(v, 1), pg, "{v}");
        }
        for (v, pg) in [
            (0.1 + 0.2, "0.3"),
            (1e15, "1e+15"),
            (123456789012345678.0, "1.23456789012346e+17"),
            (1.5e-7, "1.5e-07"),
            (100.0, "100"),
        ] {
            assert_eq!(format_f64(v, 0), pg, "{v}");
        }
        assert_eq!(format_f64(1.5, -15), "2");
        assert_eq!(format_f64(1234.0, -15), "1e+03");
    }

    #[test]
    fn float4_as_postgres_prints_it() {
        for (v, pg) in [
            (123456.0f32, "123456"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (3.4e38, "3.4e+38"),
            (f32::MIN_POSITIVE, "1.1754944e-38"),
            (0.1, "0.1"),
        ] {
            assert_eq!(format_f32(v, 1), pg, "{v}");
        }
        assert_eq!(format_f32(0.1, 0), "0.1");
    }

    #[test]
    fn input_as_postgres_reads_it() {
        assert_eq!(parse_f64(" 1.5 "), Ok(1.5));
        assert!(parse_f64("NaN").unwrap().is_nan());
        assert_eq!(parse_f64("-Infinity"), Ok(f64::NEG_INFINITY));
        assert_eq!(parse_f64("1e400"), Err(true));
        assert_eq!(parse_f64("1e-400"), Err(true));
        assert_eq!(parse_f64("0e-400"), Ok(0.0));
        assert_eq!(parse_f64("abc"), Err(false));
        assert_eq!(parse_f64(""), Err(false));
        assert_eq!(parse_f32("1e39"), Err(true));
    }
}
