//! Quoting for the few shell strings the SSH transport still builds.
//!
//! Every argument that reaches a remote shell goes through [`quote`]. It wraps the
//! value in single quotes, inside which POSIX shells (and bash, dash, busybox sh, zsh)
//! give no character a special meaning, and spells each embedded single quote as
//! `'\''` (close, escaped quote, reopen). So `$(…)`, backticks, `;`, `&`, `|`,
//! newlines, globs and double quotes all arrive as the literal bytes they are. The one
//! byte a shell argument cannot carry is NUL (C strings end there, so the remote side
//! would silently see a shorter name); it is rejected with an error rather than cut.
//!
//! The functions here are pure so that their behaviour is pinned by unit tests, and
//! the integration tests check the same names end to end against a real sshd.

use std::fmt;

/// A value that cannot be passed to a remote shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuoteError {
    /// The value, with control characters escaped so that the message stays readable.
    pub value: String,
}

impl fmt::Display for QuoteError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "`{}` contains a NUL byte, which no shell argument can carry",
            self.value
        )
    }
}

impl std::error::Error for QuoteError {}

/// Returns `value` as one literal shell word, or an error if it contains NUL.
///
/// ```
/// # use stackctl_host::quote::quote;
/// assert_eq!(quote("it's").unwrap(), r#"'it'\''s'"#);
/// ```
pub fn quote(value: &str) -> Result<String, QuoteError> {
    if value.contains('\0') {
        return Err(QuoteError {
            value: value.escape_debug().to_string(),
        });
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('\'');
    for character in value.chars() {
        if character == '\'' {
            quoted.push_str(r"'\''");
        } else {
            quoted.push(character);
        }
    }
    quoted.push('\'');
    Ok(quoted)
}

/// Returns the words quoted one by one and joined with spaces: a command line whose
/// arguments the shell passes on exactly as given.
pub fn quote_command<S: AsRef<str>>(words: &[S]) -> Result<String, QuoteError> {
    let quoted: Result<Vec<String>, QuoteError> =
        words.iter().map(|word| quote(word.as_ref())).collect();
    Ok(quoted?.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_are_wrapped_in_single_quotes() {
        assert_eq!(quote("docker").unwrap(), "'docker'");
        assert_eq!(
            quote("/etc/traefik/dynamic/api.yml").unwrap(),
            "'/etc/traefik/dynamic/api.yml'"
        );
    }

    #[test]
    fn the_empty_string_stays_one_empty_word() {
        assert_eq!(quote("").unwrap(), "''");
    }

    #[test]
    fn single_quotes_are_closed_escaped_and_reopened() {
        assert_eq!(quote("it's").unwrap(), r"'it'\''s'");
        assert_eq!(quote("'").unwrap(), r"''\'''");
        assert_eq!(quote("''").unwrap(), r"''\'''\'''");
    }

    #[test]
    fn shell_syntax_is_left_inside_the_quotes() {
        for hostile in [
            "$(touch /tmp/pwned)",
            "`touch /tmp/pwned`",
            "a; touch /tmp/pwned",
            "a\ntouch /tmp/pwned",
            "a && b || c | d & e",
            "\"double\" $HOME ${HOME} * ? [a] ~ # !",
            "back\\slash",
        ] {
            let quoted = quote(hostile).unwrap();
            assert_eq!(
                quoted,
                format!("'{hostile}'"),
                "only single quotes need escaping"
            );
        }
    }

    #[test]
    fn nul_is_rejected_with_a_readable_message() {
        let error = quote("a\0b").unwrap_err();
        assert_eq!(error.value, "a\\0b");
        assert_eq!(
            error.to_string(),
            "`a\\0b` contains a NUL byte, which no shell argument can carry"
        );
    }

    #[test]
    fn commands_quote_every_word() {
        assert_eq!(
            quote_command(&["docker", "system", "dial-stdio"]).unwrap(),
            "'docker' 'system' 'dial-stdio'"
        );
        assert_eq!(
            quote_command(&["rm", "-f", "--", "a b"]).unwrap(),
            "'rm' '-f' '--' 'a b'"
        );
        assert!(quote_command(&["ok", "not\0ok"]).is_err());
    }

    /// The real proof: a local `sh` receives exactly the bytes that were quoted.
    #[test]
    fn sh_reads_quoted_words_back_literally() {
        let hostile = [
            "$(touch /tmp/stackctl-quote-pwned)",
            "`touch /tmp/stackctl-quote-pwned`",
            "; touch /tmp/stackctl-quote-pwned",
            "line one\nline two",
            "it's \"quoted\"",
            "-n",
            "trailing backslash \\",
            "ünïcödé ✓",
        ];
        for value in hostile {
            let script = format!("printf '%s' {}", quote(value).unwrap());
            let output = std::process::Command::new("sh")
                .arg("-c")
                .arg(&script)
                .output()
                .expect("sh runs");
            assert!(output.status.success(), "{script}");
            assert_eq!(String::from_utf8_lossy(&output.stdout), value);
        }
        assert!(!std::path::Path::new("/tmp/stackctl-quote-pwned").exists());
    }
}
