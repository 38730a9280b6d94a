//! Traefik v3 router rules, parsed rather than pasted: a raw `rule` must be one
//! expression of known matchers, and a route's `host` and `path_prefix` must be values a
//! matcher can hold — a host such as ``example.com`) || PathPrefix(`/`` would otherwise
//! close its matcher and turn the route into a catch-all.
//!
//! The grammar (checked against Traefik 3.7.15, see `/work/shared/reference/traefik/`):
//!
//! ```text
//! rule     := or
//! or       := and ( "||" and )*
//! and      := unary ( "&&" unary )*
//! unary    := "!" unary | "(" or ")" | matcher
//! matcher  := Name "(" argument ( "," argument )* ")"
//! argument := "`" text without "`" "`" | "\"" text with \-escapes "\""
//! ```

use stackctl_traefik::spec::is_ip_range;

use super::go_regexp;

/// Why a rule is refused, and where (a character offset into the rule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    pub offset: usize,
    pub message: String,
}

/// Each matcher and how many arguments it takes.
const MATCHERS: [(&str, usize, usize); 11] = [
    ("Host", 1, 1),
    ("HostRegexp", 1, 1),
    ("Path", 1, 1),
    ("PathPrefix", 1, 1),
    ("PathRegexp", 1, 1),
    ("Method", 1, 1),
    ("Header", 2, 2),
    ("HeaderRegexp", 2, 2),
    ("Query", 1, 2),
    ("QueryRegexp", 2, 2),
    ("ClientIP", 1, 1),
];

/// Checks a raw rule; on success, the matchers it uses in order (for tests and messages).
pub fn parse(rule: &str) -> Result<Vec<String>, RuleError> {
    let mut parser = Parser {
        characters: rule.chars().collect(),
        index: 0,
        matchers: Vec::new(),
        last_argument: ('`', 0),
    };
    parser.skip_spaces();
    if parser.at_end() {
        return Err(parser.error("the rule is empty"));
    }
    parser.or()?;
    parser.skip_spaces();
    if !parser.at_end() {
        return Err(parser.error("unexpected text after a complete rule (a missing `&&` or `||`?)"));
    }
    Ok(parser.matchers)
}

/// A host name as `Host(…)` takes it: labels of letters, digits and `-`, at most 63
/// characters each and 253 in all (RFC 1035); `Host` has no wildcards (that is
/// `HostRegexp`).
pub fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("is empty".into());
    }
    if host.len() > 253 {
        return Err(format!(
            "is {} characters long; a host name has at most 253",
            host.len()
        ));
    }
    for label in host.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("has an empty label or one longer than 63 characters".into());
        }
        if let Some(bad) = label
            .chars()
            .find(|character| !(character.is_ascii_alphanumeric() || *character == '-'))
        {
            return Err(format!(
                "contains `{bad}`, which a host name cannot hold (letters, digits, `-` and `.` only)"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("has a label starting or ending with `-`".into());
        }
    }
    Ok(())
}

/// A path as `Path(…)`/`PathPrefix(…)` takes it: starting with `/`, no backticks, quotes,
/// spaces or control characters (none of which a request path holds unencoded).
pub fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err("does not start with `/`".into());
    }
    if let Some(bad) = path.chars().find(|character| {
        matches!(character, '`' | '"' | '\\') || character.is_whitespace() || character.is_control()
    }) {
        return Err(format!(
            "contains `{}`, which a request path cannot hold unencoded",
            bad.escape_default()
        ));
    }
    Ok(())
}

struct Parser {
    characters: Vec<char>,
    index: usize,
    matchers: Vec<String>,
    /// The quote and offset of the argument read last.
    last_argument: (char, usize),
}

impl Parser {
    fn error(&self, message: impl Into<String>) -> RuleError {
        RuleError {
            offset: self.index,
            message: message.into(),
        }
    }

    fn at_end(&self) -> bool {
        self.index >= self.characters.len()
    }

    fn peek(&self) -> Option<char> {
        self.characters.get(self.index).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.index += 1;
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_spaces();
        let length = token.chars().count();
        let matches = self.characters.len() >= self.index + length
            && self.characters[self.index..self.index + length]
                .iter()
                .copied()
                .eq(token.chars());
        if matches {
            self.index += length;
        }
        matches
    }

    fn or(&mut self) -> Result<(), RuleError> {
        self.and()?;
        while self.eat("||") {
            self.and()?;
        }
        Ok(())
    }

    fn and(&mut self) -> Result<(), RuleError> {
        self.unary()?;
        while self.eat("&&") {
            self.unary()?;
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<(), RuleError> {
        if self.eat("!") {
            return self.unary();
        }
        if self.eat("(") {
            self.or()?;
            if !self.eat(")") {
                return Err(self.error("a `(` is not closed"));
            }
            return Ok(());
        }
        self.matcher()
    }

    fn matcher(&mut self) -> Result<(), RuleError> {
        self.skip_spaces();
        let start = self.index;
        while self
            .peek()
            .is_some_and(|character| character.is_ascii_alphabetic())
        {
            self.index += 1;
        }
        let name: String = self.characters[start..self.index].iter().collect();
        if name.is_empty() {
            return Err(self.error("expected a matcher such as Host(`example.com`), `!` or `(`"));
        }
        let Some((_, least, most)) = MATCHERS.iter().find(|(known, _, _)| *known == name) else {
            let known: Vec<&str> = MATCHERS.iter().map(|(known, _, _)| *known).collect();
            return Err(RuleError {
                offset: start,
                message: format!(
                    "`{name}` is not a Traefik v3 matcher; expected one of {}",
                    known.join(", ")
                ),
            });
        };
        if !self.eat("(") {
            return Err(self.error(format!("`{name}` is not followed by `(`")));
        }
        let argument_start = self.index;
        let mut arguments = vec![self.argument()?];
        while self.eat(",") {
            arguments.push(self.argument()?);
        }
        if name.ends_with("Regexp") {
            // The pattern is the last argument (`HeaderRegexp(`Name`, `pattern`)`).
            self.check_regexp(&name, arguments.last().map(String::as_str).unwrap_or(""))?;
        }
        if !self.eat(")") {
            return Err(self.error(format!("`{name}(` is not closed by `)`")));
        }
        if arguments.len() < *least || arguments.len() > *most {
            let wanted = if least == most {
                format!("{least}")
            } else {
                format!("{least} or {most}")
            };
            return Err(RuleError {
                offset: argument_start,
                message: format!(
                    "`{name}` takes {wanted} argument(s), not {}",
                    arguments.len()
                ),
            });
        }
        let checked = match name.as_str() {
            "Host" => check_host(&arguments[0]),
            "Path" | "PathPrefix" => check_path(&arguments[0]),
            "ClientIP" if !is_ip_range(&arguments[0]) => {
                Err("is not an IP address or CIDR range".into())
            }
            _ if arguments.iter().any(String::is_empty) => Err("is empty".into()),
            _ => Ok(()),
        };
        if let Err(problem) = checked {
            return Err(RuleError {
                offset: argument_start,
                message: format!("the argument of `{name}` {problem}"),
            });
        }
        self.matchers.push(name);
        Ok(())
    }

    /// Checks the pattern of a `…Regexp` matcher as Go compiles it (Traefik does). The
    /// offset points into the pattern when it was written in backticks (taken as is), at
    /// its opening quote otherwise (escapes shift the characters).
    fn check_regexp(&self, name: &str, pattern: &str) -> Result<(), RuleError> {
        let Err(error) = go_regexp::check(pattern) else {
            return Ok(());
        };
        let (quote, start) = self.last_argument;
        let offset = if quote == '`' {
            start + 1 + error.offset
        } else {
            start
        };
        Err(RuleError {
            offset,
            message: format!(
                "the regexp of `{name}` does not compile as a Go (RE2) regexp: {}",
                error.message
            ),
        })
    }

    /// A backtick string (no escapes) or a double-quoted one (`\` escapes).
    fn argument(&mut self) -> Result<String, RuleError> {
        self.skip_spaces();
        let quote = match self.peek() {
            Some(quote @ ('`' | '"')) => quote,
            _ => return Err(self.error("expected an argument in backticks or double quotes")),
        };
        let start = self.index;
        self.last_argument = (quote, start);
        self.index += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(RuleError {
                        offset: start,
                        message: format!("the `{quote}` opened here is never closed"),
                    })
                }
                Some('\\') if quote == '"' => {
                    self.index += 1;
                    match self.peek() {
                        Some(escaped) => text.push(escaped),
                        None => continue,
                    }
                }
                Some(character) if character == quote => {
                    self.index += 1;
                    return Ok(text);
                }
                Some(character) => text.push(character),
            }
            self.index += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_rule_is_parsed_and_a_malformed_one_is_refused() {
        for good in [
            "Host(`example.com`)",
            "Host(`admin.example.com`) && PathPrefix(`/`)",
            "Host(\"example.com\") && !PathPrefix(`/admin`)",
            "(Host(`a.example`) || Host(`b.example`)) && Method(`GET`)",
            "Header(`X-Forwarded-Proto`, `https`) && Query(`mobile`, `true`)",
            "HostRegexp(`^.+\\.example\\.com$`) && ClientIP(`10.0.0.0/8`)",
            "PathRegexp(`^/api/v[0-9]+`) || QueryRegexp(`id`, `^[0-9]+$`) || HeaderRegexp(`A`, `b.*`)",
            "Path(`/health`)",
        ] {
            assert!(parse(good).is_ok(), "{good}: {:?}", parse(good));
        }
        for (bad, offset) in [
            ("", 0),
            ("Host(`example.com`", 18),
            ("Host(`example.com`) &&", 22),
            ("Host(`example.com`) PathPrefix(`/`)", 20),
            ("Hots(`example.com`)", 0),
            ("Host(`example.com`, `other.com`)", 5),
            ("Host(example.com)", 5),
            ("Host(`exa mple.com`)", 5),
            ("PathPrefix(`api`)", 11),
            ("ClientIP(`10.0.0.0/33`)", 9),
            ("(Host(`example.com`)", 20),
            ("Host(`example.com`) || PathPrefix(`/`) ) || (", 39),
            ("Host(`a.example`) && Header(`X`)", 28),
            ("Host(`unclosed)", 5),
            // Go (RE2) refuses these: the offset is the offending character.
            ("HostRegexp(`^(api|web\\.example\\.com$`)", 13),
            ("PathRegexp(`^/(a)\\1`)", 17),
            ("Host(`a.example`) && PathRegexp(`^/x(?=y)`)", 36),
            ("HeaderRegexp(`X-Id`, `^\\d+\\Z`)", 26),
        ] {
            let error = parse(bad).expect_err(bad);
            assert_eq!(error.offset, offset, "{bad}: {error:?}");
        }
    }

    #[test]
    fn hosts_and_paths_are_values_not_rule_text() {
        assert!(check_host("flower.example.test").is_ok());
        assert!(check_host("example.com`) || PathPrefix(`/").is_err());
        assert!(check_host("*.example.com").is_err());
        assert!(check_host(&format!("{}.com", "a".repeat(64))).is_err());
        assert!(check_path("/api").is_ok());
        assert!(check_path("/api`) || Host(`x").is_err());
        assert!(check_path("api").is_err());
    }
}
