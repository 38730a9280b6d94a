//! The `.env` file, read the way Docker Compose documents it
//! (<https://docs.docker.com/compose/how-tos/environment-variables/variable-interpolation/#env-file-syntax>):
//!
//! - `# comment` lines and blank lines are skipped; `export KEY=value` is allowed;
//! - an unquoted value runs to the end of the line, trimmed; ` #` starts an inline comment;
//!   `$NAME`, `${NAME}` and `${NAME:-default}` are expanded, `$$` is a literal `$`;
//! - a double-quoted value may span lines, knows `\n`, `\r`, `\t`, `\\`, `\"`, and is
//!   expanded like an unquoted one;
//! - a single-quoted value is literal (`\'` is a quote), never expanded.
//!
//! Where Compose would substitute an empty string for an undefined variable, this is an
//! error naming the line: `p@$w0rd` deploying the password `p@` is worse than refusing.
//! Errors carry a line, a column and the variable's name, never a value: the file holds
//! secrets, and the error is printed in CI logs.

use std::collections::BTreeMap;
use std::path::Path;

/// A problem in the env file, at `line:column` (from 1). `message` never quotes a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvFileError {
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub hint: Option<String>,
}

/// Reads a file only if it is a regular file: a FIFO (or a device) named as `.env` would
/// block the read forever.
pub fn read_regular_file(path: &Path) -> std::io::Result<String> {
    let metadata = std::fs::metadata(path)?;
    if !metadata.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "it is not a regular file (a FIFO, a device or a directory); stackctl reads only regular files",
        ));
    }
    std::fs::read_to_string(path)
}

/// Parses env file text. `process` is consulted first when a value refers to a variable
/// (as Compose does), then the lines above. Every problem is reported, not only the first.
pub fn parse(
    text: &str,
    process: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, Vec<EnvFileError>> {
    let mut parser = Parser {
        characters: text.chars().collect(),
        index: 0,
        line: 1,
        column: 1,
    };
    let mut values = BTreeMap::new();
    let mut errors = Vec::new();
    while parser.skip_blank_and_comments() {
        let line = parser.line;
        match parser.entry(process, &values) {
            Ok((key, value)) => {
                values.insert(key, value);
            }
            Err(error) => {
                errors.push(error);
                // Resynchronise at the next line; a value is never echoed.
                parser.skip_to_line_after(line);
            }
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

struct Parser {
    characters: Vec<char>,
    index: usize,
    line: usize,
    column: usize,
}

fn error(line: usize, column: usize, message: impl Into<String>) -> EnvFileError {
    EnvFileError {
        line,
        column,
        message: message.into(),
        hint: None,
    }
}

fn is_name_start(character: char) -> bool {
    character.is_ascii_alphabetic() || character == '_'
}

fn is_name_character(character: char) -> bool {
    character.is_ascii_alphanumeric() || character == '_'
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.characters.get(self.index).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.characters.get(self.index + offset).copied()
    }

    fn advance(&mut self) -> Option<char> {
        let character = self.peek()?;
        self.index += 1;
        if character == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(character)
    }

    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.advance();
        }
    }

    fn skip_line(&mut self) {
        while let Some(character) = self.advance() {
            if character == '\n' {
                break;
            }
        }
    }

    fn skip_to_line_after(&mut self, line: usize) {
        while self.line == line && self.peek().is_some() {
            self.advance();
        }
    }

    /// Skips blank lines and `#` comments; false at the end of the text.
    fn skip_blank_and_comments(&mut self) -> bool {
        loop {
            self.skip_spaces();
            match self.peek() {
                None => return false,
                Some('\n' | '\r') => {
                    self.advance();
                }
                Some('#') => self.skip_line(),
                Some(_) => return true,
            }
        }
    }

    fn entry(
        &mut self,
        process: &BTreeMap<String, String>,
        earlier: &BTreeMap<String, String>,
    ) -> Result<(String, String), EnvFileError> {
        let line = self.line;
        if self.characters[self.index..].starts_with(&['e', 'x', 'p', 'o', 'r', 't', ' ']) {
            for _ in 0..7 {
                self.advance();
            }
            self.skip_spaces();
        }
        let column = self.column;
        let mut key = String::new();
        while let Some(character) = self.peek() {
            if is_name_character(character) || character == '.' || character == '-' {
                key.push(character);
                self.advance();
            } else {
                break;
            }
        }
        if !key.starts_with(is_name_start) {
            return Err(error(
                line,
                column,
                "this line is not `NAME=value` (a name starts with a letter or `_`)",
            ));
        }
        self.skip_spaces();
        if self.peek() != Some('=') {
            // The key is not named: a line without `=` may be a pasted password.
            return Err(error(line, self.column, "this line is not `NAME=value`"));
        }
        self.advance();
        self.skip_spaces();
        let lookup = |name: &str| process.get(name).or_else(|| earlier.get(name)).cloned();
        let value = match self.peek() {
            Some('\'') => self.single_quoted(&key)?,
            Some('"') => {
                let raw = self.double_quoted(&key)?;
                expand(&raw, &key, &lookup)?
            }
            _ => {
                let raw = self.unquoted();
                expand(&raw, &key, &lookup)?
            }
        };
        Ok((key, value))
    }

    /// After a closing quote: only spaces and a `# comment` until the end of the line.
    fn end_of_quoted(&mut self, key: &str) -> Result<(), EnvFileError> {
        self.skip_spaces();
        match self.peek() {
            None | Some('\n') | Some('#') => {
                self.skip_line();
                Ok(())
            }
            Some('\r') if self.peek_at(1) == Some('\n') || self.peek_at(1).is_none() => {
                self.skip_line();
                Ok(())
            }
            Some(_) => Err(error(
                self.line,
                self.column,
                format!("`{key}`: text after the closing quote"),
            )),
        }
    }

    fn single_quoted(&mut self, key: &str) -> Result<String, EnvFileError> {
        let (line, column) = (self.line, self.column);
        self.advance();
        let mut value = String::new();
        loop {
            match self.advance() {
                None => {
                    return Err(error(
                        line,
                        column,
                        format!("`{key}`: the single quote is never closed"),
                    ))
                }
                Some('\\') if self.peek() == Some('\'') => {
                    self.advance();
                    value.push('\'');
                }
                Some('\'') => break,
                Some(character) => value.push(character),
            }
        }
        self.end_of_quoted(key)?;
        Ok(value)
    }

    /// The raw text between double quotes, escapes resolved, `$` left for [`expand`]
    /// (positions kept so an error can point at the `$`).
    fn double_quoted(&mut self, key: &str) -> Result<Vec<Positioned>, EnvFileError> {
        let (line, column) = (self.line, self.column);
        self.advance();
        let mut value = Vec::new();
        loop {
            let (here_line, here_column) = (self.line, self.column);
            let at = |character| Positioned {
                character,
                line: here_line,
                column: here_column,
                escaped: true,
            };
            match self.advance() {
                None => {
                    return Err(error(
                        line,
                        column,
                        format!("`{key}`: the double quote is never closed"),
                    ))
                }
                Some('\\') => match self.advance() {
                    Some('n') => value.push(at('\n')),
                    Some('r') => value.push(at('\r')),
                    Some('t') => value.push(at('\t')),
                    Some('\\') => value.push(at('\\')),
                    Some('"') => value.push(at('"')),
                    Some('\'') => value.push(at('\'')),
                    Some('$') => value.push(at('$')),
                    Some(other) => {
                        value.push(at('\\'));
                        value.push(at(other));
                    }
                    None => {
                        return Err(error(
                            line,
                            column,
                            format!("`{key}`: the double quote is never closed"),
                        ))
                    }
                },
                Some('"') => break,
                Some(character) => value.push(Positioned {
                    character,
                    line: here_line,
                    column: here_column,
                    escaped: false,
                }),
            }
        }
        self.end_of_quoted(key)?;
        Ok(value)
    }

    /// An unquoted value: to the end of the line, an inline comment (` #`) cut, trimmed.
    fn unquoted(&mut self) -> Vec<Positioned> {
        let mut value: Vec<Positioned> = Vec::new();
        while let Some(character) = self.peek() {
            if character == '\n' {
                break;
            }
            let after_space = value
                .last()
                .is_some_and(|last| matches!(last.character, ' ' | '\t'));
            if character == '#' && after_space {
                self.skip_line();
                break;
            }
            value.push(Positioned {
                character,
                line: self.line,
                column: self.column,
                escaped: false,
            });
            self.advance();
        }
        if self.peek() == Some('\n') {
            self.advance();
        }
        while value
            .last()
            .is_some_and(|last| last.character.is_whitespace())
        {
            value.pop();
        }
        value
    }
}

/// One character of a value and where it was written.
#[derive(Clone, Copy, Debug)]
struct Positioned {
    character: char,
    line: usize,
    column: usize,
    /// Written as an escape (`\$`): never starts an expansion.
    escaped: bool,
}

fn undefined(key: &str, at: &Positioned) -> EnvFileError {
    EnvFileError {
        line: at.line,
        column: at.column,
        message: format!(
            "`{key}`: the `$` here refers to a variable that is not set, so the value would silently lose everything from it"
        ),
        hint: Some(
            "write `$$` for a literal `$` (or single-quote the value); if it is meant to refer to a variable, set that variable above this line or in the environment".into(),
        ),
    }
}

/// Expands `$$`, `$NAME`, `${NAME}`, `${NAME:-default}`, `${NAME-default}`,
/// `${NAME:+other}`, `${NAME+other}`, `${NAME:?message}` and `${NAME?message}`.
fn expand(
    value: &[Positioned],
    key: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, EnvFileError> {
    let mut result = String::new();
    let mut index = 0;
    while index < value.len() {
        let here = value[index];
        if here.character != '$' || here.escaped {
            result.push(here.character);
            index += 1;
            continue;
        }
        let next = value.get(index + 1).map(|next| next.character);
        match next {
            Some('$') => {
                result.push('$');
                index += 2;
            }
            Some(character) if is_name_start(character) => {
                let mut end = index + 1;
                while end < value.len() && is_name_character(value[end].character) {
                    end += 1;
                }
                let name: String = value[index + 1..end].iter().map(|p| p.character).collect();
                result.push_str(&lookup(&name).ok_or_else(|| undefined(key, &here))?);
                index = end;
            }
            Some('{') => {
                // The matching `}`, counting nested `${…}` in a default.
                let mut depth = 0;
                let mut close = None;
                for (offset, positioned) in value[index + 1..].iter().enumerate() {
                    match positioned.character {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                close = Some(index + 1 + offset);
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let Some(close) = close else {
                    return Err(error(
                        here.line,
                        here.column,
                        format!("`{key}`: `${{` is never closed by `}}`"),
                    ));
                };
                result.push_str(&braced(&value[index + 2..close], &here, key, lookup)?);
                index = close + 1;
            }
            _ => {
                return Err(EnvFileError {
                    line: here.line,
                    column: here.column,
                    message: format!("`{key}`: a `$` that starts no variable"),
                    hint: Some("write `$$` for a literal `$` (or single-quote the value)".into()),
                })
            }
        }
    }
    Ok(result)
}

/// The inside of `${…}`: a name, then nothing or an operator and its word.
fn braced(
    body: &[Positioned],
    dollar: &Positioned,
    key: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, EnvFileError> {
    let name_length = body
        .iter()
        .take_while(|positioned| is_name_character(positioned.character))
        .count();
    let name: String = body[..name_length].iter().map(|p| p.character).collect();
    if !name.starts_with(is_name_start) {
        return Err(error(
            dollar.line,
            dollar.column,
            format!("`{key}`: `${{…}}` does not start with a variable name"),
        ));
    }
    let rest = &body[name_length..];
    let operator: String = rest.iter().take(2).map(|p| p.character).collect();
    let (operator, word) = if operator.len() == 2 && operator.starts_with(':') {
        (operator.as_str(), &rest[2.min(rest.len())..])
    } else if let Some(first) = rest.first() {
        (
            match first.character {
                '-' => "-",
                '+' => "+",
                '?' => "?",
                _ => "",
            },
            &rest[1..],
        )
    } else {
        ("", rest)
    };
    let value = lookup(&name);
    let set_and_not_empty = value.as_deref().is_some_and(|value| !value.is_empty());
    match operator {
        "" if rest.is_empty() => value.ok_or_else(|| undefined(key, dollar)),
        ":-" if set_and_not_empty => Ok(value.unwrap_or_default()),
        ":-" => expand(word, key, lookup),
        "-" => match value {
            Some(value) => Ok(value),
            None => expand(word, key, lookup),
        },
        ":+" if set_and_not_empty => expand(word, key, lookup),
        ":+" => Ok(String::new()),
        "+" if value.is_some() => expand(word, key, lookup),
        "+" => Ok(String::new()),
        ":?" | "?" => {
            let present = if operator == ":?" {
                set_and_not_empty
            } else {
                value.is_some()
            };
            if present {
                Ok(value.unwrap_or_default())
            } else {
                Err(error(
                    dollar.line,
                    dollar.column,
                    format!("`{key}`: `${{…:?…}}` requires a variable that is not set"),
                ))
            }
        }
        _ => Err(error(
            dollar.line,
            dollar.column,
            format!("`{key}`: `${{…}}` uses an operator Compose does not know"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<BTreeMap<String, String>, Vec<EnvFileError>> {
        parse(
            text,
            &BTreeMap::from([("FROM_PROCESS".to_string(), "process".to_string())]),
        )
    }

    /// One row per rule of Compose's documented `.env` syntax: the line, and the value
    /// of `V` it gives.
    #[test]
    fn compose_env_file_semantics() {
        let cases: &[(&str, &str)] = &[
            ("V=plain", "plain"),
            ("V = spaced ", "spaced"),
            ("export V=exported", "exported"),
            ("V=", ""),
            ("V=p@$$w0rd", "p@$w0rd"),
            ("V=value # inline comment", "value"),
            ("V=value#not-a-comment", "value#not-a-comment"),
            (
                "V='single $NOT ${EXPANDED} \\n'",
                "single $NOT ${EXPANDED} \\n",
            ),
            ("V='Let\\'s go!'", "Let's go!"),
            ("V='quoted' # comment", "quoted"),
            ("V=\"double # not a comment\"", "double # not a comment"),
            ("V=\"tab\\there\\nline\"", "tab\there\nline"),
            (
                "V=\"{\\\"hello\\\": \\\"json\\\"}\"",
                "{\"hello\": \"json\"}",
            ),
            ("V=\"two\nlines\"", "two\nlines"),
            ("V=\"a $$ b\"", "a $ b"),
            ("V=\"escaped \\$HOME\"", "escaped $HOME"),
            ("A=one\nV=${A}-$A", "one-one"),
            ("A=one\nV=\"${A}\"", "one"),
            ("V=${FROM_PROCESS}", "process"),
            ("V=${UNSET:-fallback}", "fallback"),
            ("E=\nV=${E:-for-empty}", "for-empty"),
            ("E=\nV=${E-kept-empty}", ""),
            ("V=${UNSET-for-unset}", "for-unset"),
            ("A=x\nV=${A:+other}", "other"),
            ("V=${UNSET:+other}", ""),
            ("V=${UNSET:-${FROM_PROCESS}}", "process"),
            ("# comment\n\n   \nV=after blank lines", "after blank lines"),
            ("V=crlf\r\n", "crlf"),
        ];
        for (text, expected) in cases {
            let values = parsed(text).unwrap_or_else(|errors| panic!("{text:?}: {errors:?}"));
            assert_eq!(
                values.get("V").map(String::as_str),
                Some(*expected),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_dollar_that_expands_to_nothing_is_an_error_naming_the_line() {
        for (text, line, column) in [
            ("A=1\nFLOWER_PASSWORD=p@$w0rd\n", 2, 19),
            ("FLOWER_PASSWORD=\"p@${w0rd}\"", 1, 20),
            ("FLOWER_PASSWORD=p@$", 1, 19),
            ("FLOWER_PASSWORD=p@$ x", 1, 19),
        ] {
            let errors = parsed(text).expect_err(text);
            assert_eq!(
                (errors[0].line, errors[0].column),
                (line, column),
                "{text:?}"
            );
            assert!(errors[0].message.contains("FLOWER_PASSWORD"), "{errors:?}");
            assert!(!errors[0].message.contains("w0rd"), "{errors:?}");
            assert!(errors[0].hint.as_deref().unwrap_or_default().contains("$$"));
        }
    }

    #[test]
    fn a_malformed_env_line_never_prints_a_value() {
        let text = "A=1\nSECRET_ONE=\"hunter2-first\nB=hunter2-second\n";
        let errors = parsed(text).expect_err("an unclosed quote");
        assert_eq!(errors[0].line, 2);
        let text = "A=1\nthis line hunter2 is broken\nC='hunter2' trailing hunter2\n";
        let errors = parsed(text).expect_err("two broken lines");
        assert_eq!(
            errors.iter().map(|error| error.line).collect::<Vec<_>>(),
            vec![2, 3]
        );
        for error in errors {
            assert!(!error.message.contains("hunter2"), "{error:?}");
        }
    }
}
