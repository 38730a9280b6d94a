//! The regexps of Traefik's `HostRegexp`, `PathRegexp`, `HeaderRegexp` and `QueryRegexp`
//! matchers, checked as Traefik compiles them: with Go's `regexp` package, which speaks
//! RE2's syntax.
//!
//! `regex-syntax` parses nearly the same language (no backreferences, no lookaround, no
//! possessive or atomic groups; `\A`, `\z`, `(?P<name>…)` and `(?<name>…)`; Perl and
//! POSIX classes), so it does the parsing; what it accepts and Go refuses is checked on
//! its syntax tree afterwards:
//!
//! - the flags `x`, `R` and `u` (Go knows only `i`, `m`, `s` and `U`);
//! - a repetition count above 1000 (Go's limit);
//! - a repetition of a repetition such as `a**` (Go: "invalid nested repetition operator");
//! - `\p{Name=Value}` Unicode classes (Go knows only `\pL`, `\p{Greek}`-style names).
//!
//! Both refuse `\Z` (Go has only `\z`), `\C` and backreferences such as `\1`. Go accepts
//! a few things refused here, none common in a router rule: `\Q…\E` quoting, octal
//! escapes such as `\12`, and `[` unescaped inside a class (`[[]`). A refusal of one of
//! those is an error on the safe side: write the pattern another way.

use regex_syntax::ast::{self, Ast, Visitor};

/// Go's limit on `{n}`, `{n,}` and `{n,m}` counts.
const MAXIMUM_REPETITION: u32 = 1000;

/// Why a pattern is refused, and where (a character offset into the pattern).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegexpError {
    pub offset: usize,
    pub message: String,
}

/// Checks `pattern` as Go's `regexp.Compile` would.
pub fn check(pattern: &str) -> Result<(), RegexpError> {
    let at = |byte_offset: usize, message: String| RegexpError {
        offset: pattern[..byte_offset.min(pattern.len())].chars().count(),
        message,
    };
    let tree = ast::parse::Parser::new()
        .parse(pattern)
        .map_err(|error| at(error.span().start.offset, error.kind().to_string()))?;
    regex_syntax::hir::translate::Translator::new()
        .translate(pattern, &tree)
        .map_err(|error| at(error.span().start.offset, error.kind().to_string()))?;
    ast::visit(&tree, GoRestrictions).map_err(|(byte_offset, message)| at(byte_offset, message))
}

/// Walks the syntax tree for what RE2/Go refuses and `regex-syntax` accepts.
struct GoRestrictions;

impl Visitor for GoRestrictions {
    type Output = ();
    type Err = (usize, String);

    fn finish(self) -> Result<(), Self::Err> {
        Ok(())
    }

    fn visit_pre(&mut self, node: &Ast) -> Result<(), Self::Err> {
        match node {
            Ast::Flags(set) => check_flags(&set.flags),
            Ast::Group(group) => match &group.kind {
                ast::GroupKind::NonCapturing(flags) => check_flags(flags),
                _ => Ok(()),
            },
            Ast::Repetition(repetition) => {
                if let ast::RepetitionKind::Range(range) = &repetition.op.kind {
                    let largest = match *range {
                        ast::RepetitionRange::Exactly(count)
                        | ast::RepetitionRange::AtLeast(count) => count,
                        ast::RepetitionRange::Bounded(least, most) => least.max(most),
                    };
                    if largest > MAXIMUM_REPETITION {
                        return Err((
                            repetition.op.span.start.offset,
                            format!(
                                "repetition count {largest} is above Go's limit of {MAXIMUM_REPETITION}"
                            ),
                        ));
                    }
                }
                if let Ast::Repetition(_) = *repetition.ast {
                    return Err((
                        repetition.op.span.start.offset,
                        "a repetition of a repetition (such as `a**`) is refused by Go; group it: `(?:a*)*`".into(),
                    ));
                }
                Ok(())
            }
            Ast::ClassUnicode(class) => match &class.kind {
                ast::ClassUnicodeKind::NamedValue { .. } => Err((
                    class.span.start.offset,
                    "Go knows Unicode classes by name only (`\\pL`, `\\p{Greek}`), not `\\p{Name=Value}`".into(),
                )),
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }

    fn visit_class_set_item_pre(&mut self, item: &ast::ClassSetItem) -> Result<(), Self::Err> {
        match item {
            ast::ClassSetItem::Unicode(class) => match &class.kind {
                ast::ClassUnicodeKind::NamedValue { .. } => Err((
                    class.span.start.offset,
                    "Go knows Unicode classes by name only (`\\pL`, `\\p{Greek}`), not `\\p{Name=Value}`".into(),
                )),
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

/// Go's flags are `i`, `m`, `s` and `U`.
fn check_flags(flags: &ast::Flags) -> Result<(), (usize, String)> {
    for item in &flags.items {
        let name = match item.kind {
            ast::FlagsItemKind::Flag(ast::Flag::IgnoreWhitespace) => "x",
            ast::FlagsItemKind::Flag(ast::Flag::CRLF) => "R",
            ast::FlagsItemKind::Flag(ast::Flag::Unicode) => "u",
            _ => continue,
        };
        return Err((
            item.span.start.offset,
            format!("Go does not know the flag `{name}` (only `i`, `m`, `s` and `U`)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regexps_go_accepts_pass() {
        for good in [
            r"^.+\.example\.com$",
            r"^/api/v[0-9]+",
            r"(?i)^/admin",
            r"\A/x\z",
            r"(?P<id>[0-9]+)",
            r"(?<id>\d+)",
            r"^[a-z]{2,1000}$",
            r"\pL+\p{Greek}",
            r"[[:alpha:]]+",
            r"(?U)a+?",
            r"(?:a*)*",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn regexps_go_refuses_fail_with_the_offending_character() {
        for (bad, offset) in [
            (r"^(api|web", 1),
            (r"a)", 1),
            (r"[a-", 0),
            (r"(a)\1", 3),
            (r"(?=x)", 0),
            (r"(?<!x)y", 0),
            (r"^/x\Z", 3),
            (r"\C", 0),
            (r"a{1001}", 1),
            (r"(?x) a", 2),
            (r"a**", 2),
            (r"\p{Script=Greek}", 0),
            (r"[z-a]", 1),
            (r"*a", 0),
        ] {
            let error = check(bad).expect_err(bad);
            assert_eq!(error.offset, offset, "{bad}: {error:?}");
        }
    }
}
