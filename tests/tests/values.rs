//! Every value arrives exactly as sent, and leaves as PostgreSQL writes it.
//!
//! Generated values of every column type (fixed seed; `AMBER_VALUE_CASES`
//! sets how many per type, default [`CASES_DEFAULT`]; the long run in the
//! README uses 5000) go in through every path — simple-protocol literals,
//! extended protocol with text and with binary parameters, INSERT, UPDATE,
//! WHERE, RETURNING, Python procedure arguments and results, objects
//! written by Python and read by SQL and the reverse, `amber.sql()`
//! parameters — and must come out unchanged through every path, as text
//! (simple protocol) and as binary (extended protocol). Where a
//! PostgreSQL 15 is reachable (`AMBER_PG`, default the `pg-scratch` port;
//! `.ci/run` starts one and sets `AMBER_REQUIRE_PG=1`), Amber's text for
//! each value must equal PostgreSQL's for the same input.

use super::{connect, deploy};
use amber_tests::Server;
use bytes::BytesMut;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::error::Error;
use tokio_postgres::types::{to_sql_checked, Format, FromSql, IsNull, ToSql, Type};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// Cases per type in CI.
const CASES_DEFAULT: usize = 40;
const SEED: u64 = 0x5eed_0008;

const MODULE: &str = r#"
import amber
from amber import Persistent
from decimal import Decimal

class V(Persistent):
    t: str | None = None
    b: bytes | None = None
    i: int | None = None
    f: float | None = None
    n: Decimal | None = None
    d: datetime.date | None = None
    ts: datetime.datetime | None = None
    a: list[str | None] | None = None
    j: dict | None = None

def echo_t(x: str) -> str: return x
def echo_b(x: bytes) -> bytes: return x
def echo_i(x: int) -> int: return x
def echo_f(x: float) -> float: return x
def echo_n(x: Decimal) -> Decimal: return x
def echo_d(x: datetime.date) -> datetime.date: return x
def echo_ts(x: datetime.datetime) -> datetime.datetime: return x
def echo_a(x: list[str | None]) -> list[str | None]: return x
def echo_j(x: dict) -> dict: return x

def make_t(x: str) -> int: return V(t=x).id
def make_b(x: bytes) -> int: return V(b=x).id
def make_i(x: int) -> int: return V(i=x).id
def make_f(x: float) -> int: return V(f=x).id
def make_n(x: Decimal) -> int: return V(n=x).id
def make_d(x: datetime.date) -> int: return V(d=x).id
def make_ts(x: datetime.datetime) -> int: return V(ts=x).id
def make_a(x: list[str | None]) -> int: return V(a=x).id
def make_j(x: dict) -> int: return V(j=x).id

def read_t(v: V) -> str: return v.t
def read_b(v: V) -> bytes: return v.b
def read_i(v: V) -> int: return v.i
def read_f(v: V) -> float: return v.f
def read_n(v: V) -> Decimal: return v.n
def read_d(v: V) -> datetime.date: return v.d
def read_ts(v: V) -> datetime.datetime: return v.ts
def read_a(v: V) -> list[str | None]: return v.a
def read_j(v: V) -> dict: return v.j

def sql_t(x: str) -> str: return amber.sql("SELECT $1::text", x)[0][0]
def sql_b(x: bytes) -> bytes: return amber.sql("SELECT $1::bytea", x)[0][0]
def sql_i(x: int) -> int: return amber.sql("SELECT $1::bigint", x)[0][0]
def sql_f(x: float) -> float: return amber.sql("SELECT $1::float8", x)[0][0]
def sql_n(x: Decimal) -> Decimal: return amber.sql("SELECT $1::numeric", x)[0][0]
def sql_d(x: datetime.date) -> datetime.date: return amber.sql("SELECT $1::date", x)[0][0]
def sql_ts(x: datetime.datetime) -> datetime.datetime: return amber.sql("SELECT $1::timestamptz", x)[0][0]
def sql_a(x: list[str | None]) -> list[str | None]: return amber.sql("SELECT $1::text[]", x)[0][0]
def sql_j(x: dict) -> dict: return amber.sql("SELECT $1::jsonb", x)[0][0]
"#;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Text,
    Bytea,
    Int8,
    Float8,
    Numeric,
    Date,
    Timestamptz,
    TextArray,
    Jsonb,
}

impl Kind {
    const ALL: [Kind; 9] = [
        Kind::Text,
        Kind::Bytea,
        Kind::Int8,
        Kind::Float8,
        Kind::Numeric,
        Kind::Date,
        Kind::Timestamptz,
        Kind::TextArray,
        Kind::Jsonb,
    ];
    fn column(self) -> &'static str {
        match self {
            Kind::Text => "t",
            Kind::Bytea => "b",
            Kind::Int8 => "i",
            Kind::Float8 => "f",
            Kind::Numeric => "n",
            Kind::Date => "d",
            Kind::Timestamptz => "ts",
            Kind::TextArray => "a",
            Kind::Jsonb => "j",
        }
    }
    fn sql_type(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Bytea => "bytea",
            Kind::Int8 => "bigint",
            Kind::Float8 => "float8",
            Kind::Numeric => "numeric",
            Kind::Date => "date",
            Kind::Timestamptz => "timestamptz",
            Kind::TextArray => "text[]",
            Kind::Jsonb => "jsonb",
        }
    }
    fn pg_type(self) -> Type {
        match self {
            Kind::Text => Type::TEXT,
            Kind::Bytea => Type::BYTEA,
            Kind::Int8 => Type::INT8,
            Kind::Float8 => Type::FLOAT8,
            Kind::Numeric => Type::NUMERIC,
            Kind::Date => Type::DATE,
            Kind::Timestamptz => Type::TIMESTAMPTZ,
            Kind::TextArray => Type::TEXT_ARRAY,
            Kind::Jsonb => Type::JSONB,
        }
    }
}

/// One generated value: its input text, the text PostgreSQL prints for
/// it (`None` where only PostgreSQL itself can say: float8), and its
/// binary encoding.
#[derive(Clone, Debug)]
struct Case {
    kind: Kind,
    input: String,
    expected: Option<String>,
    binary: Vec<u8>,
    /// Python can hold it (years 1-9999; jsonb numbers Python keeps).
    python: bool,
    /// `WHERE c = $1` finds it (equality is exact for the type).
    comparable: bool,
}

/// A parameter sent as given bytes in the given format.
#[derive(Debug)]
struct Raw {
    bytes: Vec<u8>,
    binary: bool,
}

impl ToSql for Raw {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.extend_from_slice(&self.bytes);
        Ok(IsNull::No)
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    fn encode_format(&self, _: &Type) -> Format {
        if self.binary {
            Format::Binary
        } else {
            Format::Text
        }
    }
    to_sql_checked!();
}

/// A result value's binary bytes.
#[derive(Debug, PartialEq)]
struct RawOut(Vec<u8>);

impl<'a> FromSql<'a> for RawOut {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(RawOut(raw.to_vec()))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

// ---- generators (independent of Amber's own encoders) ----

fn gen_text(rng: &mut StdRng) -> String {
    const POOL: &[&str] = &[
        "a",
        "Z",
        "0",
        " ",
        "'",
        "''",
        "\"",
        "\\",
        "\\\\",
        "{",
        "}",
        ",",
        "$$",
        "NULL",
        "null",
        "\t",
        "\n",
        "\r",
        "\u{1}",
        "\u{1f}",
        "é",
        "中",
        "😀",
        "\u{ffff}",
        "\u{10ffff}",
        "E'",
        "%s",
        "--",
        "/*",
        ";",
    ];
    let n = rng.random_range(0..12);
    (0..n)
        .map(|_| POOL[rng.random_range(0..POOL.len())])
        .collect()
}

fn hex(b: &[u8]) -> String {
    let mut s = String::from("\\x");
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// PostgreSQL's array_out quoting, written independently of Amber's.
fn array_text(items: &[Option<String>]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|i| match i {
            None => "NULL".to_string(),
            Some(s) => {
                let needs = s.is_empty()
                    || s.eq_ignore_ascii_case("null")
                    || s.chars().any(|c| "{}\",\\ \t\n\r\u{b}\u{c}".contains(c));
                if needs {
                    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
                } else {
                    s.clone()
                }
            }
        })
        .collect();
    format!("{{{}}}", quoted.join(","))
}

fn array_binary(items: &[Option<String>]) -> Vec<u8> {
    let mut out = Vec::new();
    let n = items.len() as i32;
    out.extend_from_slice(&(if n == 0 { 0i32 } else { 1 }).to_be_bytes());
    out.extend_from_slice(&(items.iter().any(Option::is_none) as i32).to_be_bytes());
    out.extend_from_slice(&25u32.to_be_bytes());
    if n > 0 {
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes());
    }
    for i in items {
        match i {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(s) => {
                out.extend_from_slice(&(s.len() as i32).to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
    out
}

/// numeric_send of a canonical numeric text (sign, digits, point).
fn numeric_binary(text: &str) -> Vec<u8> {
    let (neg, body) = match text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, text),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let int = int.trim_start_matches('0');
    let int_pad = (4 - int.len() % 4) % 4;
    let frac_pad = (4 - frac.len() % 4) % 4;
    let all = format!("{}{int}{frac}{}", "0".repeat(int_pad), "0".repeat(frac_pad));
    let mut words: Vec<i16> = all
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap().parse().unwrap())
        .collect();
    let mut weight = ((int.len() + int_pad) / 4) as i16 - 1;
    while words.first() == Some(&0) {
        words.remove(0);
        weight -= 1;
    }
    while words.last() == Some(&0) {
        words.pop();
    }
    if words.is_empty() {
        weight = 0;
    }
    let mut out = Vec::new();
    out.extend_from_slice(&(words.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&(if neg { 0x4000u16 } else { 0 }).to_be_bytes());
    out.extend_from_slice(&(frac.len() as u16).to_be_bytes());
    for w in words {
        out.extend_from_slice(&w.to_be_bytes());
    }
    out
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// JSON generated in PostgreSQL's jsonb_out form: unique keys in (length,
/// bytes) order, `": "` and `", "`, numbers as numeric prints them.
fn gen_json(rng: &mut StdRng, depth: u32, python: &mut bool) -> String {
    let choice = if depth >= 3 {
        rng.random_range(0..4)
    } else {
        rng.random_range(0..6)
    };
    match choice {
        0 => "null".into(),
        1 => if rng.random_bool(0.5) {
            "true"
        } else {
            "false"
        }
        .into(),
        2 => {
            let forms = [
                "0",
                "-7",
                "123456789012345678901234567890",
                "1.5",
                "-0.25",
                "1.50",
                "100.000",
            ];
            let f = forms[rng.random_range(0..forms.len())];
            if f.ends_with('0') && f.contains('.') {
                // Python's float would drop the trailing zeros.
                *python = false;
            }
            f.into()
        }
        3 => serde_json::to_string(&gen_text(rng)).unwrap(),
        4 => {
            let n = rng.random_range(0..4);
            let items: Vec<String> = (0..n).map(|_| gen_json(rng, depth + 1, python)).collect();
            format!("[{}]", items.join(", "))
        }
        _ => {
            let n = rng.random_range(0..4);
            let mut keys: Vec<String> = (0..n).map(|i| format!("{}{}", gen_text(rng), i)).collect();
            keys.sort_by(|a, b| {
                a.len()
                    .cmp(&b.len())
                    .then_with(|| a.as_bytes().cmp(b.as_bytes()))
            });
            keys.dedup();
            let items: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}: {}",
                        serde_json::to_string(k).unwrap(),
                        gen_json(rng, depth + 1, python)
                    )
                })
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

fn gen_case(kind: Kind, rng: &mut StdRng, i: usize) -> Case {
    let mut python = true;
    let mut comparable = true;
    let (input, expected, binary) = match kind {
        Kind::Text => {
            let s = gen_text(rng);
            (s.clone(), Some(s.clone()), s.into_bytes())
        }
        Kind::Bytea => {
            let b: Vec<u8> = if i == 0 {
                (0..=255).collect()
            } else {
                (0..rng.random_range(0..40)).map(|_| rng.random()).collect()
            };
            (hex(&b), Some(hex(&b)), b)
        }
        Kind::Int8 => {
            let v: i64 = match i {
                0 => i64::MIN,
                1 => i64::MAX,
                2 => 0,
                _ => rng.random(),
            };
            (v.to_string(), Some(v.to_string()), v.to_be_bytes().to_vec())
        }
        Kind::Float8 => {
            let v: f64 = match i {
                0 => f64::NAN,
                1 => f64::INFINITY,
                2 => f64::NEG_INFINITY,
                3 => -0.0,
                4 => 5e-324,
                5 => f64::MAX,
                6 => 0.1 + 0.2,
                7 => 1e15,
                _ => loop {
                    let v = f64::from_bits(rng.random());
                    if v.is_finite() {
                        break v;
                    }
                },
            };
            comparable = v.is_finite() && v != 0.0;
            let input = if v.is_nan() {
                "NaN".to_string()
            } else if v.is_infinite() {
                if v > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
            } else {
                format!("{v:e}")
            };
            (input, None, v.to_bits().to_be_bytes().to_vec())
        }
        Kind::Numeric => {
            let int_digits = rng.random_range(0..20);
            let scale = rng.random_range(0..10);
            let mut int: String = (0..int_digits)
                .map(|_| char::from(b'0' + rng.random_range(0..10)))
                .collect();
            int = int.trim_start_matches('0').to_string();
            if int.is_empty() {
                int = "0".into();
            }
            let frac: String = (0..scale)
                .map(|_| char::from(b'0' + rng.random_range(0..10)))
                .collect();
            let mut text = if frac.is_empty() {
                int
            } else {
                format!("{int}.{frac}")
            };
            let zero = text.chars().all(|c| c == '0' || c == '.');
            if rng.random_bool(0.4) && !zero {
                text = format!("-{text}");
            }
            (text.clone(), Some(text.clone()), numeric_binary(&text))
        }
        Kind::Date => {
            // Years 1-9999 (Python's); a few BC ones for SQL only.
            let bc = i % 10 == 9;
            let y = if bc {
                rng.random_range(1..4713)
            } else {
                rng.random_range(1..10000)
            };
            let m = rng.random_range(1..13);
            let d = rng.random_range(1..29);
            python = !bc;
            let text = format!("{y:04}-{m:02}-{d:02}{}", if bc { " BC" } else { "" });
            let astro = if bc { 1 - y } else { y };
            let days = days_from_civil(astro, m, d) - 10_957;
            (
                text.clone(),
                Some(text),
                (days as i32).to_be_bytes().to_vec(),
            )
        }
        Kind::Timestamptz => {
            let y = rng.random_range(1..10000);
            let (m, d) = (rng.random_range(1..13), rng.random_range(1..29));
            let (h, mi, s) = (
                rng.random_range(0..24),
                rng.random_range(0..60),
                rng.random_range(0..60),
            );
            let us: i64 = if rng.random_bool(0.3) {
                0
            } else {
                rng.random_range(0..1_000_000)
            };
            let mut text = format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}");
            if us != 0 {
                text.push_str(format!(".{us:06}").trim_end_matches('0'));
            }
            text.push_str("+00");
            let micros = (days_from_civil(y, m, d) - 10_957) * 86_400_000_000
                + ((h * 60 + mi) * 60 + s) * 1_000_000
                + us;
            (text.clone(), Some(text), micros.to_be_bytes().to_vec())
        }
        Kind::TextArray => {
            // Array equality in WHERE is not this test's subject.
            comparable = false;
            let n = rng.random_range(0..5);
            let items: Vec<Option<String>> = (0..n)
                .map(|_| {
                    if rng.random_bool(0.2) {
                        None
                    } else {
                        Some(gen_text(rng))
                    }
                })
                .collect();
            let text = array_text(&items);
            (text.clone(), Some(text), array_binary(&items))
        }
        Kind::Jsonb => {
            comparable = false;
            let mut text = gen_json(rng, 0, &mut python);
            if !text.starts_with('{') {
                // Python's dict annotation needs an object at the top.
                text = format!("{{\"v\": {text}}}");
            }
            let mut b = vec![1];
            b.extend_from_slice(text.as_bytes());
            (text.clone(), Some(text), b)
        }
    };
    Case {
        kind,
        input,
        expected,
        binary,
        python,
        comparable,
    }
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

async fn simple_one(client: &Client, sql: &str) -> Option<String> {
    for m in client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    {
        if let SimpleQueryMessage::Row(r) = m {
            return r.get(0).map(str::to_string);
        }
    }
    panic!("{sql}: no row");
}

/// A PostgreSQL 15 to compare with, if one is reachable.
async fn postgres() -> Option<Client> {
    let dsn = std::env::var("AMBER_PG").unwrap_or_else(|_| {
        "host=127.0.0.1 port=55432 user=amber dbname=amber connect_timeout=3".into()
    });
    match tokio_postgres::connect(&dsn, NoTls).await {
        Ok((client, conn)) => {
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Some(client)
        }
        Err(e) => {
            assert!(
                std::env::var("AMBER_REQUIRE_PG").is_err(),
                "AMBER_REQUIRE_PG is set but PostgreSQL at {dsn} is not reachable: {e}"
            );
            println!("no PostgreSQL at {dsn} ({e}): comparisons with it skipped");
            None
        }
    }
}

/// Checks one output: its text must be the expected text, or (float8)
/// read back to the same value.
fn check_text(case: &Case, path: &str, got: Option<String>) {
    let got = got.unwrap_or_else(|| panic!("{path}: NULL for {case:?}"));
    match &case.expected {
        Some(e) => assert_eq!(&got, e, "{path}: {case:?}"),
        None => {
            let want = f64::from_be_bytes(case.binary.clone().try_into().unwrap());
            let back: f64 = match got.as_str() {
                "NaN" => f64::NAN,
                "Infinity" => f64::INFINITY,
                "-Infinity" => f64::NEG_INFINITY,
                g => g
                    .parse()
                    .unwrap_or_else(|_| panic!("{path}: {got:?} for {case:?}")),
            };
            assert!(
                back.to_bits() == want.to_bits() || (back.is_nan() && want.is_nan()),
                "{path}: {got:?} reads back as {back:e}, sent {want:e}"
            );
        }
    }
}

/// Checks the text `sql` returns for `case` (simple protocol).
async fn check_text_of(client: &Client, case: &Case, path: &str, sql: &str) {
    check_text(case, path, simple_one(client, sql).await);
}

fn check_binary(case: &Case, path: &str, got: Option<RawOut>) {
    let got = got.unwrap_or_else(|| panic!("{path}: NULL for {case:?}"));
    if case.kind == Kind::Float8
        && f64::from_be_bytes(case.binary.clone().try_into().unwrap()).is_nan()
    {
        assert!(
            f64::from_be_bytes(got.0.clone().try_into().unwrap()).is_nan(),
            "{path}"
        );
        return;
    }
    assert_eq!(got.0, case.binary, "{path}: binary result for {case:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_round_trip_through_every_path() {
    let server = Server::start();
    let client = connect(&server).await;
    deploy(&client, "rt", MODULE).await;
    let pg = postgres().await;
    let cases_per_kind: usize = std::env::var("AMBER_VALUE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES_DEFAULT);
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut checked = 0usize;
    for kind in Kind::ALL {
        let col = kind.column();
        let ty = kind.sql_type();
        let insert_bin = client
            .prepare_typed(
                &format!("INSERT INTO rt.v ({col}) VALUES ($1) RETURNING id, {col}"),
                &[kind.pg_type()],
            )
            .await
            .unwrap();
        let insert_txt = client
            .prepare_typed(
                &format!("INSERT INTO rt.v ({col}) VALUES ($1) RETURNING id"),
                &[kind.pg_type()],
            )
            .await
            .unwrap();
        let update = client
            .prepare_typed(
                &format!("UPDATE rt.v SET {col} = $1 WHERE id = $2 RETURNING {col}"),
                &[kind.pg_type(), Type::INT8],
            )
            .await
            .unwrap();
        let find = client
            .prepare_typed(
                &format!("SELECT count(*) FROM rt.v WHERE {col} = $1 AND id = $2"),
                &[kind.pg_type(), Type::INT8],
            )
            .await
            .unwrap();
        let scan = client
            .prepare_typed(
                &format!("SELECT {col} FROM rt.v WHERE id BETWEEN $1 AND $1"),
                &[Type::INT8],
            )
            .await
            .unwrap();
        for i in 0..cases_per_kind {
            let case = gen_case(kind, &mut rng, i);
            let text = || Raw {
                bytes: case.input.clone().into_bytes(),
                binary: false,
            };
            let bin = || Raw {
                bytes: case.binary.clone(),
                binary: true,
            };

            // Binary parameter in, binary RETURNING out.
            let row = client
                .query_one(&insert_bin, &[&bin()])
                .await
                .unwrap_or_else(|e| panic!("binary insert {case:?}: {e:?}"));
            let id: i64 = row.get(0);
            check_binary(&case, "binary INSERT ... RETURNING", row.get(1));
            // Read back as text through the point read and a scan.
            check_text_of(
                &client,
                &case,
                "point read after binary insert",
                &format!("SELECT {col} FROM rt.v WHERE id = {id}"),
            )
            .await;
            let row = client.query_one(&scan, &[&id]).await.unwrap();
            check_binary(&case, "scan after binary insert", row.get(0));

            // Text parameter in, text out.
            let row = client
                .query_one(&insert_txt, &[&text()])
                .await
                .unwrap_or_else(|e| panic!("text insert {case:?}: {e:?}"));
            let id2: i64 = row.get(0);
            check_text_of(
                &client,
                &case,
                "scan after text insert",
                &format!("SELECT {col} FROM rt.v WHERE id BETWEEN {id2} AND {id2}"),
            )
            .await;

            // Simple-protocol literal in, text out (INSERT and UPDATE).
            check_text_of(
                &client,
                &case,
                "literal INSERT ... RETURNING",
                &format!(
                    "INSERT INTO rt.v ({col}) VALUES ({}::{ty}) RETURNING {col}",
                    literal(&case.input)
                ),
            )
            .await;
            check_text_of(
                &client,
                &case,
                "literal UPDATE ... RETURNING",
                &format!(
                    "UPDATE rt.v SET {col} = {} WHERE id = {id} RETURNING {col}",
                    literal(&case.input)
                ),
            )
            .await;

            // UPDATE with parameters, then WHERE finds the value.
            let row = client.query_one(&update, &[&text(), &id2]).await.unwrap();
            check_binary(&case, "UPDATE ... RETURNING", row.get(0));
            if case.comparable {
                let n: i64 = client
                    .query_one(&find, &[&bin(), &id2])
                    .await
                    .unwrap()
                    .get(0);
                assert_eq!(n, 1, "WHERE {col} = $1 did not find {case:?}");
            }

            if case.python {
                // Python procedure argument and result.
                let got = client
                    .query_one(&format!("SELECT rt.echo_{col}($1)"), &[&bin()])
                    .await
                    .unwrap_or_else(|e| panic!("echo {case:?}: {e:?}"));
                check_binary(&case, "Python argument and result", got.get(0));
                // Written by Python, read by SQL.
                let made: i64 = client
                    .query_one(&format!("SELECT rt.make_{col}($1)"), &[&text()])
                    .await
                    .unwrap_or_else(|e| panic!("make {case:?}: {e:?}"))
                    .get(0);
                check_text_of(
                    &client,
                    &case,
                    "written by Python, read by SQL",
                    &format!("SELECT {col} FROM rt.v WHERE id = {made}"),
                )
                .await;
                // Written by SQL, read by Python.
                let got = client
                    .query_one(&format!("SELECT rt.read_{col}($1)"), &[&id2])
                    .await
                    .unwrap_or_else(|e| panic!("read {case:?}: {e:?}"));
                check_binary(&case, "written by SQL, read by Python", got.get(0));
                // amber.sql() parameter and result.
                let got = client
                    .query_one(&format!("SELECT rt.sql_{col}($1)"), &[&bin()])
                    .await
                    .unwrap_or_else(|e| panic!("amber.sql {case:?}: {e:?}"));
                check_binary(&case, "amber.sql() parameter and result", got.get(0));
            }

            // PostgreSQL's own text for the same input.
            if let Some(pg) = &pg {
                let sql = format!("SELECT {}::{ty}", literal(&case.input));
                let theirs = simple_one(pg, &sql).await;
                let ours = simple_one(&client, &sql).await;
                assert_eq!(ours, theirs, "{sql}: Amber and PostgreSQL differ");
            }
            checked += 1;
        }
    }
    println!("{checked} values checked through every path");
}

/// Values whose text depends on session settings, compared with
/// PostgreSQL under the same settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_shape_values_as_in_postgres() {
    let server = Server::start();
    let client = connect(&server).await;
    let pg = postgres().await;
    let checks: &[(&str, &str)] = &[
        (
            "SET TimeZone = 'Asia/Kolkata'",
            "SELECT '2024-01-02 03:04:05.123456+00'::timestamptz",
        ),
        (
            "SET TimeZone = 'America/New_York'",
            "SELECT '2024-11-03 01:30:00'::timestamptz",
        ),
        (
            "SET TimeZone = 'America/New_York'",
            "SELECT '2024-03-10 02:30:00'::timestamptz",
        ),
        (
            "SET TimeZone = 'Asia/Kathmandu'",
            "SELECT '1900-07-02 03:04:05+00'::timestamptz",
        ),
        (
            "SET extra_float_digits = 0",
            "SELECT 0.1::float8 + 0.2::float8",
        ),
        (
            "SET extra_float_digits = 0",
            "SELECT 123456789012345678::float8",
        ),
        (
            "SET extra_float_digits = 1",
            "SELECT 0.1::float8 + 0.2::float8",
        ),
        ("SET extra_float_digits = 1", "SELECT '1e-05'::float8"),
    ];
    for (set, query) in checks {
        client.batch_execute(set).await.unwrap();
        let ours = simple_one(&client, query).await;
        if let Some(pg) = &pg {
            pg.batch_execute(set).await.unwrap();
            let theirs = simple_one(pg, query).await;
            assert_eq!(ours, theirs, "{set}; {query}");
        }
    }
    // Known answers, so the test means something without PostgreSQL too.
    client
        .batch_execute("SET TimeZone = 'Asia/Kolkata'")
        .await
        .unwrap();
    assert_eq!(
        simple_one(
            &client,
            "SELECT '2024-01-02 03:04:05.123456+00'::timestamptz"
        )
        .await
        .as_deref(),
        Some("2024-01-02 08:34:05.123456+05:30")
    );
    // A string compared with a timestamptz column is read in the session's
    // TimeZone, in planned queries too.
    deploy(&client, "rt", MODULE).await;
    client
        .batch_execute("INSERT INTO rt.v (t, ts) VALUES ('tz', '2024-01-02 08:34:05+05:30')")
        .await
        .unwrap();
    for (zone, local) in [
        ("Asia/Kolkata", "2024-01-02 08:34:05"),
        ("UTC", "2024-01-02 03:04:05"),
        ("America/New_York", "2024-01-01 22:04:05"),
    ] {
        client
            .batch_execute(&format!("SET TimeZone = '{zone}'"))
            .await
            .unwrap();
        let n = simple_one(
            &client,
            &format!("SELECT count(*) FROM rt.v WHERE t = 'tz' AND ts = '{local}'"),
        )
        .await;
        assert_eq!(n.as_deref(), Some("1"), "{zone}: ts = '{local}'");
        let n = simple_one(
            &client,
            &format!("SELECT count(*) FROM rt.v WHERE t = 'tz' AND ts > '{local}'"),
        )
        .await;
        assert_eq!(n.as_deref(), Some("0"), "{zone}: ts > '{local}'");
        let shown = simple_one(&client, "SELECT ts FROM rt.v WHERE t = 'tz' ORDER BY ts").await;
        assert!(
            shown.as_deref().is_some_and(|s| s.starts_with(local)),
            "{zone}: {shown:?}"
        );
    }
    let e = client
        .batch_execute("SET TimeZone = 'Mars/Olympus'")
        .await
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("22023"));
    client
        .batch_execute("SET extra_float_digits = 0")
        .await
        .unwrap();
    client.batch_execute("RESET TimeZone").await.unwrap();
    client
        .batch_execute("RESET extra_float_digits")
        .await
        .unwrap();
    assert_eq!(
        simple_one(&client, "SELECT '2024-01-02 03:04:05+05:30'::timestamptz")
            .await
            .as_deref(),
        Some("2024-01-01 21:34:05+00"),
        "RESET TimeZone"
    );
    assert_eq!(
        simple_one(&client, "SELECT 0.1::float8 + 0.2::float8")
            .await
            .as_deref(),
        Some("0.30000000000000004"),
        "RESET extra_float_digits"
    );
}

/// Text parameters are the value itself: nothing is un-escaped (the bug
/// of pgwire's `FromSqlText` this fixed), NUL and bad UTF-8 are refused
/// with PostgreSQL's SQLSTATE, and binary ones must have their type's size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_parameters_are_never_unescaped() {
    let server = Server::start();
    let client = connect(&server).await;
    deploy(&client, "rt", MODULE).await;
    let raw = |s: &[u8]| Raw {
        bytes: s.to_vec(),
        binary: false,
    };
    for value in ["it''s", "''", "'", "\\'", "a''''b", ""] {
        let row = client
            .query_one(
                &client
                    .prepare_typed("SELECT $1::text", &[Type::TEXT])
                    .await
                    .unwrap(),
                &[&raw(value.as_bytes())],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), value);
        let id: i64 = client
            .query_one(
                &client
                    .prepare_typed(
                        "INSERT INTO rt.v (t) VALUES ($1) RETURNING id",
                        &[Type::TEXT],
                    )
                    .await
                    .unwrap(),
                &[&raw(value.as_bytes())],
            )
            .await
            .unwrap()
            .get(0);
        let t = simple_one(&client, &format!("SELECT t FROM rt.v WHERE id = {id}")).await;
        assert_eq!(t.as_deref(), Some(value), "stored text");
        let echoed: String = client
            .query_one(
                &client
                    .prepare_typed("SELECT rt.echo_t($1)", &[Type::TEXT])
                    .await
                    .unwrap(),
                &[&raw(value.as_bytes())],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(echoed, value, "Python argument");
    }
    let text = client
        .prepare_typed("SELECT $1::text", &[Type::TEXT])
        .await
        .unwrap();
    let e = client.query_one(&text, &[&raw(b"a\0b")]).await.unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("22021"), "{e}");
    let e = client
        .query_one(&text, &[&raw(b"a\xc3\x28")])
        .await
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("22021"), "{e}");
    let int = client
        .prepare_typed("SELECT $1::int4", &[Type::INT4])
        .await
        .unwrap();
    let e = client
        .query_one(
            &int,
            &[&Raw {
                bytes: vec![0, 1],
                binary: true,
            }],
        )
        .await
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("22P03"), "{e}");
    let e = client.query_one(&int, &[&raw(b"12x")]).await.unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("22P02"), "{e}");
    let jsonb = client
        .prepare_typed("SELECT $1::jsonb", &[Type::JSONB])
        .await
        .unwrap();
    let e = client
        .query_one(&jsonb, &[&raw(br#""\u0000""#)])
        .await
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("22P05"), "{e}");
    // The server still answers.
    assert_eq!(simple_one(&client, "SELECT 1").await.as_deref(), Some("1"));
}

/// A parameter has one type wherever it appears (PostgreSQL's rule):
/// `'e' || $1` and `ARRAY[$1, $1 + 1]` in one statement read the same
/// bigint. Before, each occurrence was typed from its own context and
/// the statement failed with an Arrow error (the Jepsen set workload's
/// SQL inserts all failed this way).
#[tokio::test]
async fn a_parameter_has_one_type_wherever_it_appears() {
    let server = Server::start();
    let c = connect(&server).await;
    let s = c
        .prepare_typed("SELECT 'e' || $1, ARRAY[$1, $1 + 1]", &[Type::INT8])
        .await
        .unwrap();
    let row = c.query_one(&s, &[&7i64]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "e7");
    assert_eq!(row.get::<_, Vec<i64>>(1), vec![7, 8]);
    c.batch_execute("CREATE TABLE el (v bigint, name text, tags bigint[])")
        .await
        .unwrap();
    let ins = "INSERT INTO el (v, name, tags) VALUES ($1, 'e' || $1, ARRAY[$1, $1 + 1]) RETURNING v, name, tags";
    for v in [1i64, 2] {
        let row = c.query_one(ins, &[&v]).await.unwrap();
        assert_eq!(row.get::<_, i64>(0), v);
        assert_eq!(row.get::<_, String>(1), format!("e{v}"));
        assert_eq!(row.get::<_, Vec<i64>>(2), vec![v, v + 1]);
    }
}
