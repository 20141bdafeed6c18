//! The one statement splitter: a query string into Amber's module DDL and
//! ordinary SQL statements, in order, each parsed once.
//!
//! The string is tokenized once (sqlparser's tokenizer knows quotes, dollar
//! quotes and comments); at each statement start, module DDL is recognised
//! on the text from that token on, and everything else goes to sqlparser's
//! statement parser. So `BEGIN; CREATE MODULE m AS $$...$$; COMMIT` is
//! three statements, whatever the module source contains.

use crate::ddl;
use crate::error::SqlError;
use crate::session::PreparedKind;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Location, Token, Tokenizer};

/// Parses `sql` into its statements. Bounded: every iteration of the loop
/// consumes at least one token.
pub fn parse_statements(sql: &str) -> Result<Vec<PreparedKind>, SqlError> {
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| syntax(&e.to_string()))?;
    let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
    let mut offsets = Offsets::new(sql);
    let mut out = Vec::new();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        let next = parser.peek_token();
        let starts_ddl = match &next.token {
            Token::EOF => break,
            Token::Word(w) => matches!(w.keyword, Keyword::CREATE | Keyword::DROP),
            _ => false,
        };
        if starts_ddl {
            let start = offsets.of(next.span.start);
            if let Some((module_ddl, after)) = ddl::parse_module_ddl(&sql[start..])? {
                out.push(PreparedKind::Module(module_ddl));
                let consumed = sql.len() - after.len();
                // Skip the tokens of the module statement (its `;` too).
                loop {
                    let t = parser.peek_token();
                    if t.token == Token::EOF || offsets.of(t.span.start) >= consumed {
                        break;
                    }
                    parser.next_token();
                }
                continue;
            }
        }
        let stmt = parser
            .parse_statement()
            .map_err(|e| syntax(&e.to_string()))?;
        out.push(PreparedKind::Sql(Box::new(stmt)));
        let after = parser.peek_token();
        if !matches!(after.token, Token::SemiColon | Token::EOF) {
            return Err(syntax(&format!(
                "Expected: end of statement, found: {}",
                after.token
            )));
        }
    }
    Ok(out)
}

fn syntax(m: &str) -> SqlError {
    let m = m.trim_start_matches("sql parser error: ");
    SqlError::syntax(format!("syntax error: {m}"))
}

/// Byte offsets of token locations (line and column count characters from
/// 1). Locations are asked for in increasing order, so a cursor walks the
/// text once; an earlier location restarts it.
struct Offsets<'a> {
    text: &'a str,
    line: u64,
    column: u64,
    byte: usize,
}

impl<'a> Offsets<'a> {
    fn new(text: &'a str) -> Offsets<'a> {
        Offsets {
            text,
            line: 1,
            column: 1,
            byte: 0,
        }
    }

    fn of(&mut self, at: Location) -> usize {
        if (at.line, at.column) < (self.line, self.column) {
            *self = Offsets::new(self.text);
        }
        // Bounded by the text's length.
        for c in self.text[self.byte..].chars() {
            if (self.line, self.column) >= (at.line, at.column) {
                break;
            }
            self.byte += c.len_utf8();
            if c == '\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
        }
        self.byte
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<&'static str> {
        parse_statements(sql)
            .unwrap()
            .iter()
            .map(|k| match k {
                PreparedKind::Empty => "empty",
                PreparedKind::Module(_) => "module",
                PreparedKind::Sql(_) => "sql",
            })
            .collect()
    }

    #[test]
    fn module_ddl_anywhere_in_a_string() {
        assert_eq!(
            kinds(
                "BEGIN; CREATE MODULE m AS $$x = 'é;'\n$$; INSERT INTO m.t (a) VALUES (1); COMMIT"
            ),
            ["sql", "module", "sql", "sql"]
        );
        assert_eq!(
            kinds("select 1;\n-- c\n drop module m cascade; ; create or replace module \"M\" as $a$;$a$"),
            ["sql", "module", "module"]
        );
        assert_eq!(kinds("CREATE TABLE t (a int)"), ["sql"]);
        assert!(kinds(" ;; ").is_empty());
        assert!(parse_statements("SELECT 1 SELECT 2").is_err());
        assert!(parse_statements("CREAT€ MODULE").is_err());
    }
}
