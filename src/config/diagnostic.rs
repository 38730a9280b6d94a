//! Problems found in stack.toml, with where they are and what would fix them.
//!
//! Every parse, schema and policy problem becomes a [`Diagnostic`]; they are collected
//! (not stopped at the first) and rendered at the CLI edge as rustc-style snippets, or
//! as JSON with `--format json`.

use std::ops::Range;

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A position in a source file. Lines and columns count from 1; columns count characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
    #[serde(skip)]
    pub span: Range<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A stable identifier for scripts, e.g. `unknown-key`, `dangling-reference`.
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// What was expected there, shown under the snippet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            location: None,
            expected: None,
            hint: None,
        }
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    pub fn at(mut self, location: Option<Location>) -> Self {
        self.location = location;
        self
    }

    pub fn expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn hint_if(self, hint: Option<String>) -> Self {
        match hint {
            Some(hint) => self.hint(hint),
            None => self,
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A source file the diagnostics point into.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
}

impl SourceFile {
    /// Returns the location of a byte offset range.
    pub fn locate(&self, span: Range<usize>) -> Location {
        let start = span.start.min(self.text.len());
        let before = &self.text[..start];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |index| index + 1);
        let column = self.text[line_start..start].chars().count() + 1;
        Location {
            file: self.name.clone(),
            line,
            column,
            span: start..span.end.min(self.text.len()).max(start),
        }
    }
}

/// Suggests the candidate closest to `given`, when one is close enough to be a typo.
pub fn did_you_mean<'a>(
    given: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(given, candidate), candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|left, right| left.0.total_cmp(&right.0))
        .map(|(_, candidate)| format!("did you mean `{candidate}`?"))
}

/// Renders diagnostics as text: `error: …`, ` --> file:line:column`, the snippet, `hint:`.
pub fn render(diagnostics: &[Diagnostic], sources: &[SourceFile], color: bool) -> String {
    use codespan_reporting::diagnostic::{Diagnostic as Report, Label};
    use codespan_reporting::files::SimpleFiles;
    use codespan_reporting::term::{self, termcolor::Buffer, Chars, Config};

    let mut files = SimpleFiles::new();
    let ids: Vec<(String, usize)> = sources
        .iter()
        .map(|source| {
            (
                source.name.clone(),
                files.add(source.name.clone(), source.text.clone()),
            )
        })
        .collect();
    let config = Config {
        chars: Chars::ascii(),
        ..Config::default()
    };
    let mut buffer = if color {
        Buffer::ansi()
    } else {
        Buffer::no_color()
    };
    for diagnostic in diagnostics {
        let mut report = match diagnostic.severity {
            Severity::Error => Report::error(),
            Severity::Warning => Report::warning(),
        }
        .with_message(&diagnostic.message);
        let file_id = diagnostic
            .location
            .as_ref()
            .and_then(|location| ids.iter().find(|(name, _)| *name == location.file));
        match (&diagnostic.location, file_id) {
            (Some(location), Some((_, id))) => {
                let span = if location.span.is_empty() {
                    location.span.start..location.span.start
                } else {
                    location.span.clone()
                };
                report = report.with_labels(vec![Label::primary(*id, span)
                    .with_message(diagnostic.expected.clone().unwrap_or_default())]);
            }
            (Some(location), None) => {
                report = report.with_notes(vec![format!(
                    "at {}:{}:{}",
                    location.file, location.line, location.column
                )]);
            }
            _ => {
                if let Some(expected) = &diagnostic.expected {
                    report = report.with_notes(vec![format!("expected {expected}")]);
                }
            }
        }
        if let Some(hint) = &diagnostic.hint {
            report = report.with_notes(vec![format!("hint: {hint}")]);
        }
        // Writing into an in-memory buffer only fails on a bad span, which `locate` clamps.
        let _ = term::emit(&mut buffer, &config, &files, &report);
    }
    String::from_utf8_lossy(buffer.as_slice()).into_owned()
}
