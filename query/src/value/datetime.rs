//! `date`, `timestamp` and `timestamptz` text as PostgreSQL reads and
//! writes it (DateStyle ISO), over PostgreSQL's range (4714-11-24 BC to
//! 5874897 AD for dates; timestamps to 294247-01-09, where microseconds
//! from 1970 end), with `infinity`.
//!
//! Days count from 1970-01-01 (Arrow's Date32); timestamps are
//! microseconds from 1970-01-01 00:00 UTC (Arrow's Timestamp(µs)). The
//! infinities are the extreme values, as PostgreSQL's DT_NOBEGIN/NOEND.

use chrono::{NaiveDate, NaiveDateTime, Offset, TimeZone as _};
use std::fmt::Write;

pub const DATE_NEG_INFINITY: i32 = i32::MIN;
pub const DATE_INFINITY: i32 = i32::MAX;
pub const TS_NEG_INFINITY: i64 = i64::MIN;
pub const TS_INFINITY: i64 = i64::MAX;

const US_PER_SEC: i64 = 1_000_000;
const US_PER_DAY: i64 = 86_400 * US_PER_SEC;
/// Julian day 0 (4714-11-24 BC) is PostgreSQL's first date; days from
/// 1970-01-01 of 4713-01-01 BC and of the last dates it accepts.
const DATE_MIN_DAYS: i64 = -2_440_588;
const DATE_MAX_DAYS: i64 = 2_145_042_905; // 5874897-12-31
/// The last whole day whose microseconds from 1970 fit an i64 below the
/// infinity sentinel: 294247-01-09. (PostgreSQL counts from 2000 and so
/// reaches 294276-12-31; Arrow's timestamps count from 1970.)
const TS_MAX_DAYS: i64 = 106_751_990;

/// The session's TimeZone: a fixed offset or a zone of the tz database.
#[derive(Clone, Debug, PartialEq)]
pub enum Zone {
    /// Seconds east of UTC.
    Fixed(i32),
    Named(chrono_tz::Tz),
}

impl Zone {
    pub const UTC: Zone = Zone::Fixed(0);

    /// A TimeZone setting: a tz database name (`Europe/Paris`, `UTC`,
    /// `Etc/UTC`; case-insensitive as PostgreSQL), or `None`.
    pub fn parse(name: &str) -> Option<Zone> {
        let n = name.trim();
        if n.eq_ignore_ascii_case("utc")
            || n.eq_ignore_ascii_case("z")
            || n.eq_ignore_ascii_case("gmt")
        {
            return Some(Zone::Named(chrono_tz::Tz::UTC));
        }
        // Exact spelling first; then any case, as PostgreSQL matches zone
        // names (a scan of the ~600 names, only when a zone is SET).
        n.parse::<chrono_tz::Tz>()
            .ok()
            .or_else(|| {
                chrono_tz::TZ_VARIANTS
                    .iter()
                    .find(|tz| tz.name().eq_ignore_ascii_case(n))
                    .copied()
            })
            .map(Zone::Named)
    }

    /// The zone's name as Arrow takes it for a timestamp type: a tz
    /// database name, or a fixed `+HH:MM`.
    pub fn arrow_name(&self) -> String {
        match self {
            Zone::Named(tz) => tz.name().to_string(),
            Zone::Fixed(0) => "UTC".to_string(),
            Zone::Fixed(s) => {
                let a = s.unsigned_abs();
                format!(
                    "{}{:02}:{:02}",
                    if *s < 0 { '-' } else { '+' },
                    a / 3600,
                    a / 60 % 60
                )
            }
        }
    }

    /// Seconds east of UTC in effect at `us` (UTC microseconds).
    pub fn offset_at_utc(&self, us: i64) -> i32 {
        match self {
            Zone::Fixed(s) => *s,
            Zone::Named(tz) => {
                let secs = us.div_euclid(US_PER_SEC);
                // Beyond chrono's years the zone's current rules hold.
                let secs = secs.clamp(-8_000_000_000_000, 8_000_000_000_000);
                match chrono::DateTime::from_timestamp(secs, 0) {
                    Some(t) => tz
                        .offset_from_utc_datetime(&t.naive_utc())
                        .fix()
                        .local_minus_utc(),
                    None => 0,
                }
            }
        }
    }

    /// Seconds east of UTC for a local wall-clock time (microseconds from
    /// 1970-01-01 local): an ambiguous time (the hour repeated when clocks
    /// go back) is standard time, a skipped one takes the offset in effect
    /// before the change (both as PostgreSQL).
    pub fn offset_for_local(&self, local_us: i64) -> i32 {
        match self {
            Zone::Fixed(s) => *s,
            Zone::Named(tz) => {
                let secs = local_us
                    .div_euclid(US_PER_SEC)
                    .clamp(-8_000_000_000_000, 8_000_000_000_000);
                let Some(naive) = chrono::DateTime::from_timestamp(secs, 0).map(|t| t.naive_utc())
                else {
                    return 0;
                };
                match tz.offset_from_local_datetime(&naive) {
                    chrono::LocalResult::Single(o) => o.fix().local_minus_utc(),
                    chrono::LocalResult::Ambiguous(a, b) => {
                        a.fix().local_minus_utc().min(b.fix().local_minus_utc())
                    }
                    chrono::LocalResult::None => {
                        let before = naive - chrono::Duration::hours(3);
                        tz.offset_from_local_datetime(&before)
                            .earliest()
                            .map(|o| o.fix().local_minus_utc())
                            .unwrap_or(0)
                    }
                }
            }
        }
    }
}

/// Why a date/time text was refused, with PostgreSQL's SQLSTATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateTimeError {
    /// 22007 invalid input syntax for type ...
    Syntax,
    /// 22008 date/time field value out of range
    FieldRange,
    /// 22008 date out of range / timestamp out of range
    Range,
    /// 22023 time zone not recognized
    UnknownZone(String),
}

/// (year, month, day) of a day count from 1970-01-01 (proleptic
/// Gregorian; year 0 is 1 BC). Howard Hinnant's `civil_from_days`.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Day count from 1970-01-01 of a valid civil date (`days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn write_date(out: &mut String, days: i64) -> bool {
    let (y, m, d) = civil_from_days(days);
    let bc = y <= 0;
    let year = if bc { 1 - y } else { y };
    let _ = write!(out, "{year:04}-{m:02}-{d:02}");
    bc
}

/// `date_out`.
pub fn format_date(days: i32) -> String {
    match days {
        DATE_NEG_INFINITY => "-infinity".into(),
        DATE_INFINITY => "infinity".into(),
        _ => {
            let mut s = String::with_capacity(13);
            if write_date(&mut s, days as i64) {
                s.push_str(" BC");
            }
            s
        }
    }
}

/// `timestamp_out` (no zone) or `timestamptz_out` in `zone`.
pub fn format_timestamp(us: i64, zone: Option<&Zone>) -> String {
    match us {
        TS_NEG_INFINITY => return "-infinity".into(),
        TS_INFINITY => return "infinity".into(),
        _ => {}
    }
    let offset = zone.map(|z| z.offset_at_utc(us));
    let local = us.saturating_add(offset.unwrap_or(0) as i64 * US_PER_SEC);
    let days = local.div_euclid(US_PER_DAY);
    let in_day = local.rem_euclid(US_PER_DAY);
    let mut s = String::with_capacity(40);
    let bc = write_date(&mut s, days);
    let secs = in_day / US_PER_SEC;
    let micros = in_day % US_PER_SEC;
    let _ = write!(
        s,
        " {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if micros != 0 {
        let frac = format!("{micros:06}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    if let Some(off) = offset {
        let sign = if off < 0 { '-' } else { '+' };
        let a = off.unsigned_abs();
        let _ = write!(s, "{sign}{:02}", a / 3600);
        if a % 3600 != 0 {
            let _ = write!(s, ":{:02}", a / 60 % 60);
            if a % 60 != 0 {
                let _ = write!(s, ":{:02}", a % 60);
            }
        }
    }
    if bc {
        s.push_str(" BC");
    }
    s
}

/// A cursor over date/time text.
struct Scan<'a> {
    s: &'a [u8],
    i: usize,
}

impl Scan<'_> {
    fn digits(&mut self, max: usize) -> Option<(i64, usize)> {
        let start = self.i;
        let mut v: i64 = 0;
        while self.i < self.s.len() && self.s[self.i].is_ascii_digit() && self.i - start < max {
            v = v * 10 + (self.s[self.i] - b'0') as i64;
            self.i += 1;
        }
        (self.i > start).then_some((v, self.i - start))
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn blanks(&mut self) {
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }
    fn rest(&self) -> &str {
        std::str::from_utf8(&self.s[self.i..]).unwrap_or("")
    }
}

/// `YYYY-MM-DD` (or `YYYYMMDD`) at the cursor: the civil date, unchecked.
fn scan_date(sc: &mut Scan) -> Result<(i64, u32, u32), DateTimeError> {
    let (y, n) = sc.digits(9).ok_or(DateTimeError::Syntax)?;
    if sc.eat(b'-') {
        let (m, _) = sc.digits(2).ok_or(DateTimeError::Syntax)?;
        if !sc.eat(b'-') {
            return Err(DateTimeError::Syntax);
        }
        let (d, _) = sc.digits(2).ok_or(DateTimeError::Syntax)?;
        Ok((y, m as u32, d as u32))
    } else if n == 8 {
        Ok((y / 10_000, (y / 100 % 100) as u32, (y % 100) as u32))
    } else {
        Err(DateTimeError::Syntax)
    }
}

/// A trailing ` BC` / ` AD`.
fn scan_era(sc: &mut Scan) -> bool {
    let save = sc.i;
    sc.blanks();
    let rest = sc.rest();
    for (word, bc) in [("BC", true), ("AD", false)] {
        if rest.len() >= 2 && rest[..2].eq_ignore_ascii_case(word) {
            sc.i += 2;
            return bc;
        }
    }
    sc.i = save;
    false
}

fn checked_days(y: i64, m: u32, d: u32, bc: bool) -> Result<i64, DateTimeError> {
    if !(1..=12).contains(&m) || d == 0 || y == 0 && bc {
        return Err(DateTimeError::FieldRange);
    }
    let y = if bc { 1 - y } else { y };
    if d > days_in_month(y, m) {
        return Err(DateTimeError::FieldRange);
    }
    Ok(days_from_civil(y, m, d))
}

/// The special input words dates and timestamps share.
enum Special {
    Infinity,
    NegInfinity,
    Epoch,
}

fn special_word(t: &str) -> Option<Special> {
    match t.to_ascii_lowercase().as_str() {
        "infinity" | "+infinity" => Some(Special::Infinity),
        "-infinity" => Some(Special::NegInfinity),
        "epoch" => Some(Special::Epoch),
        _ => None,
    }
}

/// `date_in` (ISO order).
pub fn parse_date(text: &str) -> Result<i32, DateTimeError> {
    let t = text.trim();
    match special_word(t) {
        Some(Special::Infinity) => return Ok(DATE_INFINITY),
        Some(Special::NegInfinity) => return Ok(DATE_NEG_INFINITY),
        Some(Special::Epoch) => return Ok(0),
        None => {}
    }
    let mut sc = Scan {
        s: t.as_bytes(),
        i: 0,
    };
    let (y, m, d) = scan_date(&mut sc)?;
    let bc = scan_era(&mut sc);
    sc.blanks();
    if sc.i != sc.s.len() {
        return Err(DateTimeError::Syntax);
    }
    let days = checked_days(y, m, d, bc)?;
    if !(DATE_MIN_DAYS..=DATE_MAX_DAYS).contains(&days) {
        return Err(DateTimeError::Range);
    }
    Ok(days as i32)
}

/// `timestamptz_in` (with `zone` for times without an offset) or, with
/// `zone` None, `timestamp_in` (an offset given is ignored, as there).
pub fn parse_timestamp(text: &str, zone: Option<&Zone>) -> Result<i64, DateTimeError> {
    let t = text.trim();
    match special_word(t) {
        Some(Special::Infinity) => return Ok(TS_INFINITY),
        Some(Special::NegInfinity) => return Ok(TS_NEG_INFINITY),
        Some(Special::Epoch) => return Ok(0),
        None => {}
    }
    let mut sc = Scan {
        s: t.as_bytes(),
        i: 0,
    };
    let (y, m, d) = scan_date(&mut sc)?;
    let mut time_us: i64 = 0;
    let save = sc.i;
    if sc.eat(b'T') || sc.eat(b't') || sc.eat(b' ') {
        sc.blanks();
        if sc.s.get(sc.i).is_some_and(|c| c.is_ascii_digit()) {
            let (h, _) = sc.digits(2).ok_or(DateTimeError::Syntax)?;
            if !sc.eat(b':') {
                return Err(DateTimeError::Syntax);
            }
            let (mi, _) = sc.digits(2).ok_or(DateTimeError::Syntax)?;
            let mut sec = 0;
            let mut frac_us = 0;
            if sc.eat(b':') {
                sec = sc.digits(2).ok_or(DateTimeError::Syntax)?.0;
                if sc.eat(b'.') {
                    let start = sc.i;
                    while sc.s.get(sc.i).is_some_and(|c| c.is_ascii_digit()) {
                        sc.i += 1;
                    }
                    let f = std::str::from_utf8(&sc.s[start..sc.i]).unwrap_or("");
                    // Rounded to microseconds, as PostgreSQL.
                    let mut digits: String = f.chars().take(7).collect();
                    while digits.len() < 7 {
                        digits.push('0');
                    }
                    let v: i64 = digits.parse().map_err(|_| DateTimeError::Syntax)?;
                    frac_us = (v + 5) / 10;
                }
            }
            if h > 24 || mi > 59 || sec > 60 || (h == 24 && (mi > 0 || sec > 0 || frac_us > 0)) {
                return Err(DateTimeError::FieldRange);
            }
            time_us = ((h * 60 + mi) * 60 + sec) * US_PER_SEC + frac_us;
        }
    } else {
        sc.i = save;
    }
    // Zone: Z, ±HH[:MM[:SS]], ±HHMM, or a tz database name.
    sc.blanks();
    let mut offset: Option<i32> = None;
    let mut named: Option<Zone> = None;
    match sc.s.get(sc.i) {
        Some(b'Z') | Some(b'z')
            if !sc.rest()[1..]
                .trim_start()
                .starts_with(|c: char| c.is_ascii_alphabetic()) =>
        {
            sc.i += 1;
            offset = Some(0);
        }
        Some(&c) if c == b'+' || c == b'-' => {
            sc.i += 1;
            let (a, n) = sc.digits(6).ok_or(DateTimeError::Syntax)?;
            let (h, mut mi, mut se) = match n {
                1 | 2 => (a, 0, 0),
                4 => (a / 100, a % 100, 0),
                6 => (a / 10_000, a / 100 % 100, a % 100),
                _ => return Err(DateTimeError::Syntax),
            };
            if n <= 2 && sc.eat(b':') {
                mi = sc.digits(2).ok_or(DateTimeError::Syntax)?.0;
                if sc.eat(b':') {
                    se = sc.digits(2).ok_or(DateTimeError::Syntax)?.0;
                }
            }
            if h > 15 || mi > 59 || se > 59 {
                return Err(DateTimeError::FieldRange);
            }
            let secs = (h * 3600 + mi * 60 + se) as i32;
            offset = Some(if c == b'-' { -secs } else { secs });
        }
        Some(c) if c.is_ascii_alphabetic() => {
            let start = sc.i;
            while sc.s.get(sc.i).is_some_and(|c| {
                c.is_ascii_alphanumeric() || matches!(c, b'/' | b'_' | b'-' | b'+')
            }) {
                sc.i += 1;
            }
            let word = std::str::from_utf8(&sc.s[start..sc.i]).unwrap_or("");
            if word.eq_ignore_ascii_case("bc") || word.eq_ignore_ascii_case("ad") {
                sc.i = start;
            } else {
                named = Some(
                    Zone::parse(word)
                        .ok_or_else(|| DateTimeError::UnknownZone(word.to_string()))?,
                );
            }
        }
        _ => {}
    }
    let bc = scan_era(&mut sc);
    sc.blanks();
    if sc.i != sc.s.len() {
        return Err(DateTimeError::Syntax);
    }
    let days = checked_days(y, m, d, bc)?;
    if !(DATE_MIN_DAYS..=TS_MAX_DAYS).contains(&days) {
        return Err(DateTimeError::Range);
    }
    let local = days
        .checked_mul(US_PER_DAY)
        .and_then(|l| l.checked_add(time_us))
        .ok_or(DateTimeError::Range)?;
    let Some(zone) = zone else {
        return Ok(local);
    };
    let off = match (offset, named) {
        (Some(o), _) => o,
        (None, Some(z)) => z.offset_for_local(local),
        (None, None) => zone.offset_for_local(local),
    };
    local
        .checked_sub(off as i64 * US_PER_SEC)
        .filter(|us| *us != TS_INFINITY && *us != TS_NEG_INFINITY)
        .ok_or(DateTimeError::Range)
}

/// A chrono date of a day count, where chrono can hold it.
pub fn naive_date(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days.checked_add(719_163)?)
}

/// A chrono date-time of UTC microseconds, where chrono can hold it.
pub fn naive_datetime(us: i64) -> Option<NaiveDateTime> {
    chrono::DateTime::from_timestamp_micros(us).map(|t| t.naive_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in [
            -2_440_588i64,
            -719_528,
            -1,
            0,
            1,
            19_000,
            106_741_026,
            2_145_031_948,
        ] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
    }

    #[test]
    fn dates_as_postgres_prints_them() {
        assert_eq!(format_date(parse_date("2024-02-29").unwrap()), "2024-02-29");
        assert_eq!(
            format_date(parse_date("4713-01-01 BC").unwrap()),
            "4713-01-01 BC"
        );
        assert_eq!(
            format_date(parse_date("0044-03-15 BC").unwrap()),
            "0044-03-15 BC"
        );
        assert_eq!(
            format_date(parse_date("5874897-12-31").unwrap()),
            "5874897-12-31"
        );
        assert_eq!(format_date(parse_date("infinity").unwrap()), "infinity");
        assert_eq!(parse_date("2024-02-30"), Err(DateTimeError::FieldRange));
        assert_eq!(parse_date("x"), Err(DateTimeError::Syntax));
        assert_eq!(parse_date("5874898-01-01"), Err(DateTimeError::Range));
    }

    #[test]
    fn timestamps_as_postgres_prints_them() {
        let ny = Zone::parse("America/New_York").unwrap();
        let f = |s: &str| format_timestamp(parse_timestamp(s, Some(&ny)).unwrap(), Some(&ny));
        // Each checked against PostgreSQL 15 with TimeZone America/New_York.
        assert_eq!(f("2024-11-03 01:30:00"), "2024-11-03 01:30:00-05");
        assert_eq!(f("2024-03-10 02:30:00"), "2024-03-10 03:30:00-04");
        assert_eq!(f("2024-01-01 24:00:00"), "2024-01-02 00:00:00-05");
        assert_eq!(
            f("2024-01-01T10:00:00.1234567Z"),
            "2024-01-01 05:00:00.123457-05"
        );
        assert_eq!(f("2024-01-01 10:00 Europe/Paris"), "2024-01-01 04:00:00-05");
        assert_eq!(f("2024-01-01 10:00:00+0530"), "2023-12-31 23:30:00-05");
        assert_eq!(f("20240101 10:00"), "2024-01-01 10:00:00-05");
        let utc = Zone::UTC;
        let u = |s: &str| format_timestamp(parse_timestamp(s, Some(&utc)).unwrap(), Some(&utc));
        assert_eq!(u("0044-03-15 BC"), "0044-03-15 00:00:00+00 BC");
        assert_eq!(
            u("294247-01-09 23:59:59.999999+00"),
            "294247-01-09 23:59:59.999999+00"
        );
        assert_eq!(
            parse_timestamp("294247-01-11 00:00:00+00", Some(&utc)),
            Err(DateTimeError::Range)
        );
        assert_eq!(u("infinity"), "infinity");
        let k = Zone::parse("Asia/Kolkata").unwrap();
        let t = parse_timestamp("2024-01-02 03:04:05.123456+00", Some(&utc)).unwrap();
        assert_eq!(
            format_timestamp(t, Some(&k)),
            "2024-01-02 08:34:05.123456+05:30"
        );
        let kt = Zone::parse("Asia/Kathmandu").unwrap();
        let t = parse_timestamp("1900-07-02 03:04:05+00", Some(&utc)).unwrap();
        assert_eq!(
            format_timestamp(t, Some(&kt)),
            "1900-07-02 08:45:21+05:41:16"
        );
        assert_eq!(
            parse_timestamp("2024-01-01 25:00", Some(&utc)),
            Err(DateTimeError::FieldRange)
        );
    }
}
