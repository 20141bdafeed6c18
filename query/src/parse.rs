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
use datafusion::sql::sqlparser::tokenizer::{
    Location, Token, TokenWithSpan, Tokenizer, Whitespace,
};

/// Parses `sql` into its statements. Bounded: every iteration of the loop
/// consumes at least one token.
pub fn parse_statements(sql: &str) -> Result<Vec<PreparedKind>, SqlError> {
    let dialect = PostgreSqlDialect {};
    let mut tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| syntax(&e.to_string()))?;
    rewrite_only(&mut tokens);
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

/// `FROM ONLY t` (also after JOIN, UPDATE and a comma of a FROM list),
/// which sqlparser does not know: the table named
/// `<table::ONLY_PREFIX>t AS t`, which the statement's catalog reads as
/// t's own objects without its subclasses'. One pass over the tokens.
fn rewrite_only(tokens: &mut Vec<TokenWithSpan>) {
    let significant = |t: &TokenWithSpan| !matches!(t.token, Token::Whitespace(_));
    let mut i = 0;
    while i < tokens.len() {
        let is_only = matches!(&tokens[i].token, Token::Word(w) if w.keyword == Keyword::ONLY && w.quote_style.is_none());
        let before = tokens[..i].iter().rev().find(|t| significant(t));
        let after_table_keyword = before.is_some_and(|t| match &t.token {
            Token::Word(w) => matches!(w.keyword, Keyword::FROM | Keyword::JOIN | Keyword::UPDATE),
            Token::Comma => true,
            _ => false,
        });
        if !(is_only && after_table_keyword) {
            i += 1;
            continue;
        }
        // The dotted name after ONLY: its last part is the table.
        let mut j = i + 1;
        while tokens.get(j).is_some_and(|t| !significant(t)) {
            j += 1;
        }
        let mut last = None;
        while let Some(Token::Word(_)) = tokens.get(j).map(|t| &t.token) {
            last = Some(j);
            if tokens.get(j + 1).map(|t| &t.token) == Some(&Token::Period) {
                j += 2;
            } else {
                break;
            }
        }
        let Some(last) = last else {
            i += 1;
            continue;
        };
        let Token::Word(table) = tokens[last].token.clone() else {
            i += 1;
            continue;
        };
        let span = tokens[last].span;
        let mut renamed = table.clone();
        renamed.value = format!("{}{}", crate::table::ONLY_PREFIX, table.value);
        tokens[last].token = Token::Word(renamed);
        // Keep the table's name for column references, unless aliased.
        let next = tokens[last + 1..].iter().find(|t| significant(t));
        let aliased = next.is_some_and(|t| match &t.token {
            Token::Word(w) => {
                !matches!(
                    w.keyword,
                    Keyword::WHERE
                        | Keyword::JOIN
                        | Keyword::INNER
                        | Keyword::LEFT
                        | Keyword::RIGHT
                        | Keyword::FULL
                        | Keyword::CROSS
                        | Keyword::NATURAL
                        | Keyword::ON
                        | Keyword::USING
                        | Keyword::GROUP
                        | Keyword::ORDER
                        | Keyword::LIMIT
                        | Keyword::OFFSET
                        | Keyword::HAVING
                        | Keyword::WINDOW
                        | Keyword::UNION
                        | Keyword::INTERSECT
                        | Keyword::EXCEPT
                        | Keyword::SET
                        | Keyword::FETCH
                        | Keyword::FOR
                        | Keyword::RETURNING
                ) || w.quote_style.is_some()
            }
            _ => false,
        });
        if !aliased {
            let with_span = |token: Token| TokenWithSpan { token, span };
            let alias = [
                with_span(Token::Whitespace(Whitespace::Space)),
                with_span(Token::make_keyword("AS")),
                with_span(Token::Whitespace(Whitespace::Space)),
                with_span(Token::Word(table)),
            ];
            tokens.splice(last + 1..last + 1, alias);
        }
        tokens.remove(i);
        i = last + 1;
    }
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
