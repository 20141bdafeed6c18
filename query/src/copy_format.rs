//! COPY's three data formats, as PostgreSQL reads and writes them: text
//! (tab-separated, backslash escapes, `\N` for NULL), CSV (quotes, NULL as
//! an unquoted empty field) and binary (`PGCOPY` header, length-prefixed
//! fields in each type's binary send format). Only the framing is here:
//! fields are turned into values by `value::from_text` / `from_binary`,
//! and values into fields by `value::encode_cell`, the same functions that
//! read and write bind parameters and result rows.

use crate::error::SqlError;
use datafusion::sql::sqlparser::ast::{CopyLegacyCsvOption, CopyLegacyOption, CopyOption};

/// The longest record COPY FROM accepts (PostgreSQL's limit on one value
/// is 1 GB): a record is buffered until its end arrives, so this bounds
/// the buffer of a client that never sends a newline.
pub const RECORD_BYTES_MAX: usize = 256 << 20;

/// The binary format's signature, flags and header-extension length.
const BINARY_SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
const BINARY_HEADER_BYTES: usize = 19;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Csv,
    Binary,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub format: Format,
    pub delimiter: u8,
    /// How NULL is written (text: `\N`, CSV: an unquoted empty field).
    pub null: String,
    pub quote: u8,
    pub escape: u8,
    /// A header line: skipped on input, column names on output.
    pub header: bool,
}

fn option_error(message: impl Into<String>) -> SqlError {
    SqlError::new("22023", message)
}

fn single_byte(what: &str, c: char) -> Result<u8, SqlError> {
    if c.is_ascii() {
        Ok(c as u8)
    } else {
        Err(SqlError::new(
            "0A000",
            format!("COPY {what} must be a single one-byte character"),
        ))
    }
}

impl Options {
    /// The options of a COPY statement (`WITH (FORMAT csv, ...)` and the
    /// pre-9.0 forms `CSV HEADER`, `BINARY`, `DELIMITER ','`), checked as
    /// PostgreSQL checks them.
    pub fn parse(options: &[CopyOption], legacy: &[CopyLegacyOption]) -> Result<Options, SqlError> {
        let mut format = Format::Text;
        let mut delimiter = None;
        let mut null = None;
        let mut quote = None;
        let mut escape = None;
        let mut header = false;
        for o in options {
            match o {
                CopyOption::Format(name) => {
                    format = match name.value.to_lowercase().as_str() {
                        "text" => Format::Text,
                        "csv" => Format::Csv,
                        "binary" => Format::Binary,
                        other => {
                            return Err(option_error(format!(
                                "COPY format \"{other}\" not recognized"
                            )))
                        }
                    }
                }
                CopyOption::Delimiter(c) => delimiter = Some(single_byte("delimiter", *c)?),
                CopyOption::Null(s) => null = Some(s.clone()),
                CopyOption::Header(h) => header = *h,
                CopyOption::Quote(c) => quote = Some(single_byte("quote", *c)?),
                CopyOption::Escape(c) => escape = Some(single_byte("escape", *c)?),
                CopyOption::Freeze(_) | CopyOption::Encoding(_) => {}
                other => {
                    return Err(SqlError::unsupported(format!("COPY option {other}")));
                }
            }
        }
        for o in legacy {
            match o {
                CopyLegacyOption::Binary => format = Format::Binary,
                CopyLegacyOption::Delimiter(c) => delimiter = Some(single_byte("delimiter", *c)?),
                CopyLegacyOption::Null(s) => null = Some(s.clone()),
                CopyLegacyOption::Csv(csv) => {
                    format = Format::Csv;
                    for c in csv {
                        match c {
                            CopyLegacyCsvOption::Header => header = true,
                            CopyLegacyCsvOption::Quote(q) => {
                                quote = Some(single_byte("quote", *q)?)
                            }
                            CopyLegacyCsvOption::Escape(e) => {
                                escape = Some(single_byte("escape", *e)?)
                            }
                            other => {
                                return Err(SqlError::unsupported(format!("COPY option {other}")))
                            }
                        }
                    }
                }
                other => return Err(SqlError::unsupported(format!("COPY option {other}"))),
            }
        }
        if format == Format::Binary {
            if delimiter.is_some() {
                return Err(SqlError::new(
                    "42601",
                    "cannot specify DELIMITER in BINARY mode",
                ));
            }
            if null.is_some() {
                return Err(SqlError::new("42601", "cannot specify NULL in BINARY mode"));
            }
            if header {
                return Err(SqlError::new(
                    "0A000",
                    "cannot specify HEADER in BINARY mode",
                ));
            }
        }
        if format != Format::Csv && (quote.is_some() || escape.is_some()) {
            return Err(SqlError::new(
                "0A000",
                "COPY quote and escape are available only in CSV mode",
            ));
        }
        let delimiter = delimiter.unwrap_or(if format == Format::Csv { b',' } else { b'\t' });
        let quote = quote.unwrap_or(b'"');
        let escape = escape.unwrap_or(quote);
        if delimiter == b'\n' || delimiter == b'\r' {
            return Err(option_error(
                "COPY delimiter cannot be newline or carriage return",
            ));
        }
        if format == Format::Text
            && (delimiter == b'\\' || delimiter.is_ascii_alphanumeric() || delimiter == b'.')
        {
            return Err(option_error(format!(
                "COPY delimiter cannot be \"{}\"",
                delimiter as char
            )));
        }
        let null = null.unwrap_or_else(|| {
            if format == Format::Csv {
                String::new()
            } else {
                "\\N".into()
            }
        });
        if null.contains(['\n', '\r']) {
            return Err(option_error(
                "COPY null representation cannot use newline or carriage return",
            ));
        }
        if format == Format::Csv && (delimiter == quote) {
            return Err(option_error("COPY delimiter and quote must be different"));
        }
        Ok(Options {
            format,
            delimiter,
            null,
            quote,
            escape,
            header,
        })
    }
}

/// One field of a record read by COPY FROM: NULL or its bytes (text for
/// text and CSV, the type's binary format for binary).
pub type Field = Option<Vec<u8>>;

fn bad_data(message: impl Into<String>) -> SqlError {
    SqlError::new("22P04", message)
}

/// Splits the data of COPY FROM, which arrives in chunks that need not
/// end at record boundaries, into records.
pub struct RecordReader {
    options: Options,
    buf: Vec<u8>,
    /// Start of the first record not yet returned.
    pos: usize,
    /// The header (text/CSV header line, binary signature) is still ahead.
    header_pending: bool,
    /// The end marker (`\.`, the binary trailer) was read: what follows is
    /// ignored, as PostgreSQL ignores it.
    ended: bool,
}

impl RecordReader {
    pub fn new(options: Options) -> RecordReader {
        let header_pending = options.header || options.format == Format::Binary;
        RecordReader {
            options,
            buf: Vec::new(),
            pos: 0,
            header_pending,
            ended: false,
        }
    }

    pub fn push(&mut self, data: &[u8]) -> Result<(), SqlError> {
        if self.ended {
            return Ok(());
        }
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        if self.buf.len() - self.pos + data.len() > RECORD_BYTES_MAX {
            return Err(SqlError::new(
                "54000",
                format!("COPY record longer than {RECORD_BYTES_MAX} bytes"),
            ));
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// The next complete record's fields into `fields`; false when no
    /// complete record is buffered. `at_end`: no more data will come (a
    /// last line without a newline is a record).
    pub fn next_record(&mut self, fields: &mut Vec<Field>, at_end: bool) -> Result<bool, SqlError> {
        loop {
            if self.ended {
                return Ok(false);
            }
            let found = match self.options.format {
                Format::Binary => self.binary_record(fields)?,
                Format::Text => self.text_record(fields, at_end)?,
                Format::Csv => self.csv_record(fields, at_end)?,
            };
            if !found {
                return Ok(false);
            }
            if self.header_pending {
                self.header_pending = false;
                if self.options.format != Format::Binary {
                    continue;
                }
            }
            if !self.ended {
                return Ok(true);
            }
        }
    }

    /// The line at `pos` (without its `\n` or `\r\n`), advancing past it.
    fn take_line(&mut self, at_end: bool) -> Option<(usize, usize)> {
        let rest = &self.buf[self.pos..];
        let (len, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (i, i + 1),
            None if at_end && !rest.is_empty() => (rest.len(), rest.len()),
            None => return None,
        };
        let start = self.pos;
        let mut end = start + len;
        if end > start && self.buf[end - 1] == b'\r' {
            end -= 1;
        }
        self.pos += next;
        Some((start, end))
    }

    fn text_record(&mut self, fields: &mut Vec<Field>, at_end: bool) -> Result<bool, SqlError> {
        let Some((start, end)) = self.take_line(at_end) else {
            return Ok(false);
        };
        let line = &self.buf[start..end];
        if line == b"\\." {
            self.ended = true;
            return Ok(true);
        }
        fields.clear();
        if self.header_pending {
            return Ok(true);
        }
        let delim = self.options.delimiter;
        let null = self.options.null.as_bytes();
        let mut i = 0;
        loop {
            // The raw field: up to an unescaped delimiter.
            let from = i;
            while i < line.len() && line[i] != delim {
                i += if line[i] == b'\\' { 2 } else { 1 };
            }
            let raw = &line[from..i.min(line.len())];
            fields.push(if raw == null {
                None
            } else {
                Some(unescape_text(raw))
            });
            if i >= line.len() {
                return Ok(true);
            }
            i += 1;
        }
    }

    fn csv_record(&mut self, fields: &mut Vec<Field>, at_end: bool) -> Result<bool, SqlError> {
        let o = &self.options;
        let rest = &self.buf[self.pos..];
        if rest.is_empty() {
            return Ok(false);
        }
        let mut out: Vec<Field> = Vec::new();
        let mut field = Vec::new();
        let mut quoted = false;
        let mut in_quotes = false;
        let mut i = 0;
        loop {
            let Some(&b) = rest.get(i) else {
                if !at_end {
                    return Ok(false);
                }
                if in_quotes {
                    return Err(bad_data("unterminated CSV quoted field"));
                }
                // The last record, without a newline.
                out.push(csv_field(field, quoted, &o.null));
                break;
            };
            if in_quotes {
                if b == o.escape {
                    match rest.get(i + 1) {
                        None if !at_end => return Ok(false),
                        Some(&n) if n == o.quote || (n == o.escape && o.escape != o.quote) => {
                            // `""` (or the escape before a quote): one quote.
                            field.push(n);
                            i += 2;
                            continue;
                        }
                        _ => {}
                    }
                }
                if b == o.quote {
                    in_quotes = false;
                } else {
                    field.push(b);
                }
                i += 1;
                continue;
            }
            i += 1;
            if b == o.quote {
                in_quotes = true;
                quoted = true;
            } else if b == b'\r' && matches!(rest.get(i), Some(b'\n') | None) {
                // `\r\n` ends the line as `\n` does.
                if rest.get(i).is_none() && !at_end {
                    return Ok(false);
                }
            } else if b == o.delimiter || b == b'\n' {
                out.push(csv_field(std::mem::take(&mut field), quoted, &o.null));
                quoted = false;
                if b == b'\n' {
                    break;
                }
            } else {
                field.push(b);
            }
        }
        let consumed = i.min(rest.len());
        let is_end_marker = out.len() == 1 && out[0].as_deref() == Some(b"\\.".as_slice()) && {
            let line = &rest[..consumed];
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            line.strip_suffix(b"\r").unwrap_or(line) == b"\\."
        };
        self.pos += consumed;
        if is_end_marker {
            self.ended = true;
            return Ok(true);
        }
        *fields = out;
        Ok(true)
    }

    fn binary_record(&mut self, fields: &mut Vec<Field>) -> Result<bool, SqlError> {
        let rest = &self.buf[self.pos..];
        if self.header_pending {
            if rest.len() < BINARY_HEADER_BYTES {
                return Ok(false);
            }
            if &rest[..11] != BINARY_SIGNATURE {
                return Err(bad_data("COPY file signature not recognized"));
            }
            let flags = u32::from_be_bytes([rest[11], rest[12], rest[13], rest[14]]);
            // Bits 16-31 are critical (16: OIDs, which PostgreSQL 12+
            // refuses too); a reader must fail on any it does not know.
            if flags & 0xffff_0000 != 0 {
                return Err(bad_data("unrecognized critical flags in COPY file header"));
            }
            let ext = u32::from_be_bytes([rest[15], rest[16], rest[17], rest[18]]) as usize;
            if rest.len() < BINARY_HEADER_BYTES + ext {
                if ext > RECORD_BYTES_MAX {
                    return Err(bad_data("invalid COPY file header (wrong length)"));
                }
                return Ok(false);
            }
            self.pos += BINARY_HEADER_BYTES + ext;
            self.header_pending = false;
            return self.binary_record(fields);
        }
        if rest.len() < 2 {
            return Ok(false);
        }
        let count = i16::from_be_bytes([rest[0], rest[1]]);
        if count == -1 {
            self.pos += 2;
            self.ended = true;
            return Ok(true);
        }
        if count < 0 {
            return Err(bad_data(format!(
                "row field count is {count}, expected a count >= 0"
            )));
        }
        let mut at = 2;
        let mut out = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let Some(len) = rest.get(at..at + 4) else {
                return Ok(false);
            };
            let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
            at += 4;
            if len == -1 {
                out.push(None);
                continue;
            }
            if len < 0 {
                return Err(bad_data(format!("invalid field size {len}")));
            }
            let Some(bytes) = rest.get(at..at + len as usize) else {
                return Ok(false);
            };
            out.push(Some(bytes.to_vec()));
            at += len as usize;
        }
        self.pos += at;
        *fields = out;
        Ok(true)
    }

    pub fn format(&self) -> Format {
        self.options.format
    }

    /// Bytes of an incomplete record are left (at the end of the data:
    /// a truncated binary tuple).
    pub fn has_partial(&self) -> bool {
        !self.ended && self.pos < self.buf.len()
    }
}

fn csv_field(bytes: Vec<u8>, quoted: bool, null: &str) -> Field {
    if !quoted && bytes == null.as_bytes() {
        None
    } else {
        Some(bytes)
    }
}

/// A text-format field without its backslash escapes.
fn unescape_text(raw: &[u8]) -> Vec<u8> {
    if !raw.contains(&b'\\') {
        return raw.to_vec();
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        i += 1;
        if b != b'\\' || i >= raw.len() {
            out.push(b);
            continue;
        }
        let c = raw[i];
        i += 1;
        match c {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = (c - b'0') as u32;
                for _ in 0..2 {
                    match raw.get(i) {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + (d - b'0') as u32;
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            b'x' if raw.get(i).is_some_and(|d| d.is_ascii_hexdigit()) => {
                let mut v = 0u32;
                for _ in 0..2 {
                    match raw.get(i).and_then(|d| (*d as char).to_digit(16)) {
                        Some(d) => {
                            v = v * 16 + d;
                            i += 1;
                        }
                        None => break,
                    }
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
    out
}

/// Appends one field of COPY TO's text or CSV output: `text` is the
/// value's text form, `None` for NULL.
pub fn write_text_field(o: &Options, text: Option<&[u8]>, out: &mut Vec<u8>) {
    let Some(text) = text else {
        out.extend_from_slice(o.null.as_bytes());
        return;
    };
    if o.format == Format::Csv {
        let needs_quotes = text.is_empty() && o.null.is_empty()
            || text == o.null.as_bytes()
            || text
                .iter()
                .any(|&b| b == o.delimiter || b == o.quote || b == b'\n' || b == b'\r')
            || text.starts_with(b"\\.");
        if !needs_quotes {
            out.extend_from_slice(text);
            return;
        }
        out.push(o.quote);
        for &b in text {
            if b == o.quote || b == o.escape {
                out.push(o.escape);
            }
            out.push(b);
        }
        out.push(o.quote);
        return;
    }
    let plain = |b: &u8| !(*b == b'\\' || *b == o.delimiter || *b < 0x20);
    if text.iter().all(plain) {
        out.extend_from_slice(text);
        return;
    }
    for &b in text {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' if o.delimiter == b'\t' => out.extend_from_slice(b"\\t"),
            8 => out.extend_from_slice(b"\\b"),
            12 => out.extend_from_slice(b"\\f"),
            11 => out.extend_from_slice(b"\\v"),
            b if b == o.delimiter => {
                out.push(b'\\');
                out.push(b);
            }
            b => out.push(b),
        }
    }
}

/// The binary format's header (signature, no flags, no extension).
pub fn binary_header(out: &mut Vec<u8>) {
    out.extend_from_slice(BINARY_SIGNATURE);
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(format: Format) -> Options {
        let f = match format {
            Format::Text => "text",
            Format::Csv => "csv",
            Format::Binary => "binary",
        };
        Options::parse(
            &[CopyOption::Format(
                datafusion::sql::sqlparser::ast::Ident::new(f),
            )],
            &[],
        )
        .unwrap()
    }

    fn read_all(o: Options, chunks: &[&[u8]]) -> Vec<Vec<Field>> {
        let mut r = RecordReader::new(o);
        let mut rows = Vec::new();
        let mut fields = Vec::new();
        for c in chunks {
            r.push(c).unwrap();
            while r.next_record(&mut fields, false).unwrap() {
                rows.push(fields.clone());
            }
        }
        while r.next_record(&mut fields, true).unwrap() {
            rows.push(fields.clone());
        }
        rows
    }

    fn s(v: &str) -> Field {
        Some(v.as_bytes().to_vec())
    }

    #[test]
    fn text_records_split_anywhere() {
        let rows = read_all(
            options(Format::Text),
            &[
                b"1\ta\\tb\\\\\t\\N\n2\t",
                b"x\\ny\t\r\n3\t\\101\\x41\tz",
                b"\n\\.\nignored",
            ],
        );
        assert_eq!(
            rows,
            vec![
                vec![s("1"), s("a\tb\\"), None],
                vec![s("2"), s("x\ny"), s("")],
                vec![s("3"), s("AA"), s("z")],
            ]
        );
    }

    #[test]
    fn csv_quotes_nulls_and_newlines() {
        let mut o = options(Format::Csv);
        o.header = true;
        let rows = read_all(
            o,
            &[
                b"id,name\n1,\"a,\"\"b\"\"\",\n2,\"\",\"line\n",
                b"two\"\r\n3,x,y",
            ],
        );
        assert_eq!(
            rows,
            vec![
                vec![s("1"), s("a,\"b\""), None],
                vec![s("2"), s(""), s("line\ntwo")],
                vec![s("3"), s("x"), s("y")],
            ]
        );
    }

    #[test]
    fn binary_tuples_and_trailer() {
        let mut data = Vec::new();
        binary_header(&mut data);
        data.extend_from_slice(&2i16.to_be_bytes());
        data.extend_from_slice(&8i32.to_be_bytes());
        data.extend_from_slice(&7i64.to_be_bytes());
        data.extend_from_slice(&(-1i32).to_be_bytes());
        data.extend_from_slice(&(-1i16).to_be_bytes());
        let (a, b) = data.split_at(21);
        let rows = read_all(options(Format::Binary), &[a, b]);
        assert_eq!(rows, vec![vec![Some(7i64.to_be_bytes().to_vec()), None]]);
    }

    #[test]
    fn output_escapes_what_input_reads() {
        for format in [Format::Text, Format::Csv] {
            let o = options(format);
            let values = [Some("a\tb,c\"d\\e\nf"), None, Some(""), Some("\\.")];
            let mut line = Vec::new();
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    line.push(o.delimiter);
                }
                write_text_field(&o, v.map(str::as_bytes), &mut line);
            }
            line.push(b'\n');
            let rows = read_all(o, &[&line]);
            let want: Vec<Field> = values
                .iter()
                .map(|v| v.map(|t| t.as_bytes().to_vec()))
                .collect();
            assert_eq!(rows, vec![want], "{format:?}");
        }
    }
}
