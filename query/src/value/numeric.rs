//! PostgreSQL's `numeric`: an exact decimal with its own display scale
//! (`100.50` keeps both digits after the point), or NaN / ±Infinity.
//!
//! Text input follows `numeric_in` (sign, digits, point, exponent, `NaN`,
//! `Infinity`, surrounding blanks), text output `numeric_out`, binary
//! `numeric_send`/`numeric_recv` (base-10000 digits with weight and scale).

use std::fmt;

/// Largest display scale PostgreSQL keeps (NUMERIC_DSCALE_MAX).
pub const SCALE_MAX: usize = 0x3FFF;
/// Most digits before the point PostgreSQL keeps (131072).
pub const INT_DIGITS_MAX: usize = 131_072;
/// Largest exponent magnitude `numeric_in` accepts (NUMERIC_MAX_PRECISION).
const EXPONENT_MAX: i64 = 1000;
/// Digits of one base-10000 word of the binary format.
const DEC_DIGITS: usize = 4;

const SIGN_POS: u16 = 0x0000;
const SIGN_NEG: u16 = 0x4000;
const SIGN_NAN: u16 = 0xC000;
const SIGN_PINF: u16 = 0xD000;
const SIGN_NINF: u16 = 0xF000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Numeric {
    NaN,
    PosInf,
    NegInf,
    /// `int` has no leading zeros (empty for zero); `frac.len()` is the
    /// display scale. Zero is never negative.
    Finite {
        neg: bool,
        int: String,
        frac: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumericError {
    /// 22P02
    Syntax,
    /// 22003
    Overflow,
}

impl Numeric {
    /// `numeric_in`.
    pub fn parse(s: &str) -> Result<Numeric, NumericError> {
        let t = s.trim_matches(|c: char| c.is_ascii_whitespace());
        let (neg, body) = match t.as_bytes().first() {
            Some(b'-') => (true, &t[1..]),
            Some(b'+') => (false, &t[1..]),
            _ => (false, t),
        };
        if t.eq_ignore_ascii_case("nan") {
            return Ok(Numeric::NaN);
        }
        if body.eq_ignore_ascii_case("infinity") || body.eq_ignore_ascii_case("inf") {
            return Ok(if neg {
                Numeric::NegInf
            } else {
                Numeric::PosInf
            });
        }
        let (mantissa, exponent) = match body.find(['e', 'E']) {
            Some(i) => {
                let e = &body[i + 1..];
                let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(NumericError::Syntax);
                }
                let v: i64 = digits
                    .get(..digits.len().min(8))
                    .and_then(|d| d.parse().ok())
                    .ok_or(NumericError::Syntax)?;
                if v > EXPONENT_MAX || digits.len() > 8 {
                    return Err(NumericError::Syntax);
                }
                (&body[..i], if e.starts_with('-') { -v } else { v })
            }
            None => (body, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if (int.is_empty() && frac.is_empty())
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(NumericError::Syntax);
        }
        // Value = int.frac x 10^exponent; display scale = max(0, frac - exp).
        let digits = format!("{int}{frac}");
        let point = int.len() as i64 + exponent; // digits before the point
        let scale = (frac.len() as i64 - exponent).max(0) as usize;
        if scale > SCALE_MAX {
            return Err(NumericError::Overflow);
        }
        let (int_part, frac_part) = if point <= 0 {
            let zeros = (-point) as usize;
            (String::new(), format!("{}{digits}", "0".repeat(zeros)))
        } else if point as usize >= digits.len() {
            let zeros = point as usize - digits.len();
            (format!("{digits}{}", "0".repeat(zeros)), String::new())
        } else {
            let (a, b) = digits.split_at(point as usize);
            (a.to_string(), b.to_string())
        };
        Numeric::finite(neg, &int_part, &frac_part, scale)
    }

    /// A finite value from digit strings, padded or cut (exactly: only
    /// zeros may be cut) to `scale` digits after the point.
    fn finite(neg: bool, int: &str, frac: &str, scale: usize) -> Result<Numeric, NumericError> {
        let int = int.trim_start_matches('0');
        if int.len() > INT_DIGITS_MAX {
            return Err(NumericError::Overflow);
        }
        let mut frac = frac.to_string();
        if frac.len() > scale {
            debug_assert!(frac[scale..].bytes().all(|b| b == b'0'));
            frac.truncate(scale);
        }
        while frac.len() < scale {
            frac.push('0');
        }
        let zero = int.is_empty() && frac.bytes().all(|b| b == b'0');
        Ok(Numeric::Finite {
            neg: neg && !zero,
            int: int.to_string(),
            frac,
        })
    }

    /// The display scale (digits after the point); 0 for NaN and infinities.
    pub fn scale(&self) -> usize {
        match self {
            Numeric::Finite { frac, .. } => frac.len(),
            _ => 0,
        }
    }

    /// The value as an Arrow Decimal128 of `scale`, rounded half away from
    /// zero (as PostgreSQL rounds); `None` if it has more than `precision`
    /// digits or is not finite.
    pub fn to_i128(&self, precision: u8, scale: i8) -> Option<i128> {
        let Numeric::Finite { neg, int, frac } = self else {
            return None;
        };
        let scale = usize::try_from(scale).ok()?;
        let mut digits = String::with_capacity(int.len() + scale);
        digits.push_str(int);
        let kept = &frac[..frac.len().min(scale)];
        digits.push_str(kept);
        for _ in kept.len()..scale {
            digits.push('0');
        }
        let round_up = frac.as_bytes().get(scale).is_some_and(|d| *d >= b'5');
        let digits = digits.trim_start_matches('0');
        if digits.len() > precision as usize {
            return None;
        }
        let mut v: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().ok()?
        };
        if round_up {
            v += 1;
            if v >= 10i128.checked_pow(precision as u32)? {
                return None;
            }
        }
        Some(if *neg { -v } else { v })
    }

    /// An Arrow Decimal128 value of `scale`, exactly (its scale is the
    /// display scale).
    pub fn from_i128(v: i128, scale: i8) -> Numeric {
        let neg = v < 0;
        let abs = v.unsigned_abs().to_string();
        if scale <= 0 {
            let int = format!("{abs}{}", "0".repeat(scale.unsigned_abs() as usize));
            return Numeric::finite(neg, &int, "", 0).unwrap_or(Numeric::NaN);
        }
        let scale = scale as usize;
        let padded = if abs.len() <= scale {
            format!("{}{abs}", "0".repeat(scale - abs.len() + 1))
        } else {
            abs
        };
        let (i, f) = padded.split_at(padded.len() - scale);
        Numeric::finite(neg, i, f, scale).unwrap_or(Numeric::NaN)
    }

    /// The value rounded half away from zero (as PostgreSQL's
    /// `numeric(p,s)` rounds) to exactly `scale` digits after the point.
    pub fn rounded(&self, scale: usize) -> Numeric {
        let Numeric::Finite { neg, int, frac } = self else {
            return self.clone();
        };
        if frac.len() <= scale {
            let mut frac = frac.clone();
            frac.extend(std::iter::repeat_n('0', scale - frac.len()));
            return Numeric::Finite {
                neg: *neg,
                int: int.clone(),
                frac,
            };
        }
        let round_up = frac.as_bytes()[scale] >= b'5';
        let mut digits: Vec<u8> = int.bytes().chain(frac.bytes().take(scale)).collect();
        if round_up {
            // Decimal increment; a carry out of the first digit adds one.
            let mut i = digits.len();
            loop {
                if i == 0 {
                    digits.insert(0, b'1');
                    break;
                }
                i -= 1;
                if digits[i] == b'9' {
                    digits[i] = b'0';
                } else {
                    digits[i] += 1;
                    break;
                }
            }
        }
        let split = digits.len() - scale;
        let int: String = String::from_utf8_lossy(&digits[..split])
            .trim_start_matches('0')
            .to_string();
        let frac = String::from_utf8_lossy(&digits[split..]).to_string();
        let zero = int.is_empty() && frac.bytes().all(|b| b == b'0');
        Numeric::Finite {
            neg: *neg && !zero,
            int,
            frac,
        }
    }

    /// Digits before the point (0 for a value below 1, NaN and infinities).
    pub fn integer_digits(&self) -> usize {
        match self {
            Numeric::Finite { int, .. } => int.len(),
            _ => 0,
        }
    }

    /// The same value with trailing zeros after the point removed.
    pub fn trimmed(&self) -> Numeric {
        match self {
            Numeric::Finite { neg, int, frac } => Numeric::Finite {
                neg: *neg,
                int: int.clone(),
                frac: frac.trim_end_matches('0').to_string(),
            },
            other => other.clone(),
        }
    }

    /// `numeric_send`.
    pub fn to_binary(&self) -> Vec<u8> {
        let (sign, weight, dscale, words) = match self {
            Numeric::NaN => (SIGN_NAN, 0i16, 0u16, vec![]),
            Numeric::PosInf => (SIGN_PINF, 0, 0, vec![]),
            Numeric::NegInf => (SIGN_NINF, 0, 0, vec![]),
            Numeric::Finite { neg, int, frac } => {
                // Pad to whole base-10000 words on both sides of the point.
                let int_pad = (DEC_DIGITS - int.len() % DEC_DIGITS) % DEC_DIGITS;
                let frac_pad = (DEC_DIGITS - frac.len() % DEC_DIGITS) % DEC_DIGITS;
                let all = format!("{}{int}{frac}{}", "0".repeat(int_pad), "0".repeat(frac_pad));
                let mut words: Vec<i16> = all
                    .as_bytes()
                    .chunks(DEC_DIGITS)
                    .map(|c| c.iter().fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0')))
                    .collect();
                let int_words = (int.len() + int_pad) / DEC_DIGITS;
                let mut weight = int_words as i64 - 1;
                // Strip leading zero words (each lowers the weight) and
                // trailing ones; the display scale keeps the zeros' place.
                let lead = words.iter().take_while(|w| **w == 0).count();
                words.drain(..lead);
                weight -= lead as i64;
                while words.last() == Some(&0) {
                    words.pop();
                }
                if words.is_empty() {
                    weight = 0;
                }
                let sign = if *neg { SIGN_NEG } else { SIGN_POS };
                (sign, weight as i16, frac.len() as u16, words)
            }
        };
        let mut out = Vec::with_capacity(8 + 2 * words.len());
        out.extend_from_slice(&(words.len() as i16).to_be_bytes());
        out.extend_from_slice(&weight.to_be_bytes());
        out.extend_from_slice(&sign.to_be_bytes());
        out.extend_from_slice(&dscale.to_be_bytes());
        for w in words {
            out.extend_from_slice(&w.to_be_bytes());
        }
        out
    }

    /// `numeric_recv`; `None` for malformed data.
    pub fn from_binary(b: &[u8]) -> Option<Numeric> {
        let word = |i: usize| -> Option<u16> {
            Some(u16::from_be_bytes(b.get(i..i + 2)?.try_into().ok()?))
        };
        let ndigits = word(0)? as i16;
        let weight = word(2)? as i16;
        let sign = word(4)?;
        let dscale = word(6)? as usize;
        if ndigits < 0 || b.len() != 8 + 2 * ndigits as usize || dscale > SCALE_MAX {
            return None;
        }
        match sign {
            SIGN_NAN => return Some(Numeric::NaN),
            SIGN_PINF => return Some(Numeric::PosInf),
            SIGN_NINF => return Some(Numeric::NegInf),
            SIGN_POS | SIGN_NEG => {}
            _ => return None,
        }
        let mut digits = String::with_capacity(ndigits as usize * DEC_DIGITS);
        for i in 0..ndigits as usize {
            let w = word(8 + 2 * i)?;
            if w >= 10_000 {
                return None;
            }
            digits.push_str(&format!("{w:04}"));
        }
        // The first word holds the digits of 10000^weight.
        let point = (weight as i64 + 1) * DEC_DIGITS as i64;
        let (int, frac) = if ndigits == 0 {
            (String::new(), String::new())
        } else if point <= 0 {
            (
                String::new(),
                format!("{}{digits}", "0".repeat((-point) as usize)),
            )
        } else if point as usize >= digits.len() {
            (
                format!("{digits}{}", "0".repeat(point as usize - digits.len())),
                String::new(),
            )
        } else {
            let (a, f) = digits.split_at(point as usize);
            (a.to_string(), f.to_string())
        };
        // Digits past the display scale must be zeros (PostgreSQL rounds
        // there; a well-formed sender never puts any).
        let frac = if frac.len() > dscale {
            let (keep, rest) = frac.split_at(dscale);
            if !rest.bytes().all(|c| c == b'0') {
                return None;
            }
            keep.to_string()
        } else {
            frac
        };
        Numeric::finite(sign == SIGN_NEG, &int, &frac, dscale).ok()
    }
}

/// `numeric_out`.
impl fmt::Display for Numeric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Numeric::NaN => f.write_str("NaN"),
            Numeric::PosInf => f.write_str("Infinity"),
            Numeric::NegInf => f.write_str("-Infinity"),
            Numeric::Finite { neg, int, frac } => {
                if *neg {
                    f.write_str("-")?;
                }
                f.write_str(if int.is_empty() { "0" } else { int })?;
                if !frac.is_empty() {
                    write!(f, ".{frac}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> String {
        Numeric::parse(s).unwrap().to_string()
    }

    #[test]
    fn text_as_postgres_prints_it() {
        // Each pair checked against PostgreSQL 15's numeric_out.
        for (input, pg) in [
            ("100.50", "100.50"),
            ("1e2", "100"),
            ("1.50e1", "15.0"),
            ("1e-3", "0.001"),
            (" -0.00 ", "0.00"),
            ("+.5", "0.5"),
            ("5.", "5"),
            ("NaN", "NaN"),
            ("-Infinity", "-Infinity"),
            ("0.000", "0.000"),
            ("-0", "0"),
            ("007.10", "7.10"),
            ("1E+3", "1000"),
        ] {
            assert_eq!(n(input), pg, "{input}");
        }
        for bad in ["", ".", "1e", "abc", "1.2.3", "--1", "1e1001", "1 2"] {
            assert_eq!(Numeric::parse(bad), Err(NumericError::Syntax), "{bad:?}");
        }
    }

    #[test]
    fn binary_round_trips_and_matches_postgres_layout() {
        for s in [
            "0",
            "0.00",
            "1",
            "-1",
            "100.50",
            "12345.6789",
            "0.0001",
            "10000",
            "1e20",
            "-0.000012300",
            "NaN",
            "Infinity",
            "-Infinity",
            "99999999.99999999",
        ] {
            let v = Numeric::parse(s).unwrap();
            assert_eq!(Numeric::from_binary(&v.to_binary()), Some(v.clone()), "{s}");
        }
        // 100.50: ndigits 2, weight 0, sign +, dscale 2, words [100, 5000].
        assert_eq!(
            Numeric::parse("100.50").unwrap().to_binary(),
            vec![0, 2, 0, 0, 0, 0, 0, 2, 0, 100, 0x13, 0x88]
        );
    }

    #[test]
    fn decimal128_conversions_round_half_away_from_zero() {
        let v = Numeric::parse("2.345").unwrap();
        assert_eq!(v.to_i128(38, 2), Some(235));
        assert_eq!(Numeric::parse("-2.345").unwrap().to_i128(38, 2), Some(-235));
        assert_eq!(Numeric::from_i128(10050, 2).to_string(), "100.50");
        assert_eq!(Numeric::from_i128(-5, 3).to_string(), "-0.005");
        assert_eq!(Numeric::parse("1e40").unwrap().to_i128(38, 0), None);
    }
}
