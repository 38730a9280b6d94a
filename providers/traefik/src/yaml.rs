//! A small YAML emitter for the files this crate writes.
//!
//! Traefik's configuration is a tree of maps, lists, strings, integers and booleans, and
//! the renderers decide the order of every key, so an ordered tree and a block-style
//! emitter are all that is needed. Strings are always double-quoted with JSON-style
//! escapes, which is valid YAML and leaves no room for the usual surprises (`no` read
//! as a boolean, `1s` or `08` as something else, a leading `*` or `&`, a `: ` inside a
//! rule). Keys are written bare only when they are plainly identifiers.

/// One YAML node. Maps keep their insertion order: the renderers choose it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Yaml {
    Text(String),
    Integer(i64),
    Bool(bool),
    List(Vec<Yaml>),
    Map(Vec<(String, Yaml)>),
}

impl Yaml {
    pub fn text(text: impl Into<String>) -> Yaml {
        Yaml::Text(text.into())
    }

    pub fn map() -> Yaml {
        Yaml::Map(Vec::new())
    }

    /// Appends `key: value` to a map (a no-op on any other node, which the renderers
    /// never do).
    pub fn insert(&mut self, key: impl Into<String>, value: Yaml) {
        if let Yaml::Map(entries) = self {
            entries.push((key.into(), value));
        }
    }

    /// Builder form of [`Yaml::insert`].
    pub fn with(mut self, key: impl Into<String>, value: Yaml) -> Yaml {
        self.insert(key, value);
        self
    }

    pub fn texts<I, S>(items: I) -> Yaml
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Yaml::List(
            items
                .into_iter()
                .map(|item| Yaml::Text(item.into()))
                .collect(),
        )
    }

    pub fn is_empty_map(&self) -> bool {
        matches!(self, Yaml::Map(entries) if entries.is_empty())
    }

    /// Renders the node as a YAML document (a map at the top, in practice), ending with a
    /// newline.
    pub fn to_document(&self) -> String {
        let mut output = String::new();
        match self {
            Yaml::Map(entries) if !entries.is_empty() => write_map(&mut output, entries, 0),
            Yaml::List(items) if !items.is_empty() => write_list(&mut output, items, 0),
            scalar_or_empty => {
                output.push_str(&inline(scalar_or_empty));
                output.push('\n');
            }
        }
        output
    }
}

fn indent(output: &mut String, level: usize) {
    for _ in 0..level {
        output.push_str("  ");
    }
}

/// The inline form of a scalar or an empty collection.
fn inline(node: &Yaml) -> String {
    match node {
        Yaml::Text(text) => quote(text),
        Yaml::Integer(number) => number.to_string(),
        Yaml::Bool(flag) => flag.to_string(),
        Yaml::List(items) if items.is_empty() => "[]".to_string(),
        Yaml::Map(entries) if entries.is_empty() => "{}".to_string(),
        // Non-empty collections are always written in block style by the callers.
        Yaml::List(_) | Yaml::Map(_) => String::new(),
    }
}

fn is_block(node: &Yaml) -> bool {
    match node {
        Yaml::List(items) => !items.is_empty(),
        Yaml::Map(entries) => !entries.is_empty(),
        _ => false,
    }
}

fn write_map(output: &mut String, entries: &[(String, Yaml)], level: usize) {
    for (key, value) in entries {
        indent(output, level);
        write_entry(output, key, value, level);
    }
}

/// Writes `key: value` whose key starts at the current column (indentation already done).
fn write_entry(output: &mut String, key: &str, value: &Yaml, level: usize) {
    output.push_str(&key_text(key));
    output.push(':');
    if is_block(value) {
        output.push('\n');
        match value {
            Yaml::Map(entries) => write_map(output, entries, level + 1),
            Yaml::List(items) => write_list(output, items, level + 1),
            _ => {}
        }
    } else {
        output.push(' ');
        output.push_str(&inline(value));
        output.push('\n');
    }
}

fn write_list(output: &mut String, items: &[Yaml], level: usize) {
    for item in items {
        indent(output, level);
        output.push_str("- ");
        match item {
            // A map inside a list: its first key follows the dash, the rest line up with it.
            Yaml::Map(entries) if !entries.is_empty() => {
                for (position, (key, value)) in entries.iter().enumerate() {
                    if position > 0 {
                        indent(output, level + 1);
                    }
                    write_entry(output, key, value, level + 1);
                }
            }
            Yaml::List(inner) if !inner.is_empty() => {
                output.push('\n');
                write_list(output, inner, level + 1);
            }
            scalar_or_empty => {
                output.push_str(&inline(scalar_or_empty));
                output.push('\n');
            }
        }
    }
}

/// YAML 1.1 and 1.2 words that a bare key or value could be read as.
const RESERVED_WORDS: &[&str] = &[
    "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~",
];

/// A key is written bare when it is a plain identifier (letters, digits, `_`, `-`, `.`,
/// starting with a letter or `_`) and not a reserved word; otherwise it is quoted.
fn key_text(key: &str) -> String {
    let mut characters = key.chars();
    let plain = match characters.next() {
        Some(first) if first.is_ascii_alphabetic() || first == '_' => characters.all(|character| {
            character.is_ascii_alphanumeric() || matches!(character, '_' | '-' | '.')
        }),
        _ => false,
    };
    if plain && !RESERVED_WORDS.contains(&key.to_ascii_lowercase().as_str()) {
        key.to_string()
    } else {
        quote(key)
    }
}

/// A double-quoted YAML scalar. YAML's double-quoted style accepts JSON's escapes, so
/// every control character, quote and backslash is escaped the JSON way.
pub fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for character in text.chars() {
        match character {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            // Control characters, DEL, and the Unicode line and paragraph separators
            // (which YAML treats as line breaks) are written as escapes.
            control if control.is_control() || control == '\u{2028}' || control == '\u{2029}' => {
                quoted.push_str(&format!("\\u{:04X}", control as u32));
            }
            other => quoted.push(other),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_nested_maps_and_lists_in_block_style() {
        let document = Yaml::map()
            .with(
                "http",
                Yaml::map().with(
                    "services",
                    Yaml::map().with(
                        "api",
                        Yaml::map().with(
                            "loadBalancer",
                            Yaml::map().with(
                                "servers",
                                Yaml::List(vec![Yaml::map()
                                    .with("url", Yaml::text("http://api:8000"))
                                    .with("weight", Yaml::Integer(1))]),
                            ),
                        ),
                    ),
                ),
            )
            .with("tls", Yaml::map())
            .with("list", Yaml::texts(["a", "b"]))
            .with("flag", Yaml::Bool(true));
        assert_eq!(
            document.to_document(),
            "http:\n  services:\n    api:\n      loadBalancer:\n        servers:\n          - url: \"http://api:8000\"\n            weight: 1\ntls: {}\nlist:\n  - \"a\"\n  - \"b\"\nflag: true\n"
        );
    }

    #[test]
    fn quotes_everything_that_could_be_misread() {
        assert_eq!(quote("no"), "\"no\"");
        assert_eq!(quote("a\"b\\c\nd\u{7}"), "\"a\\\"b\\\\c\\nd\\u0007\"");
        assert_eq!(key_text("X-Powered-By"), "X-Powered-By");
        assert_eq!(key_text("on"), "\"on\"");
        assert_eq!(key_text("my key"), "\"my key\"");
        assert_eq!(key_text("1st"), "\"1st\"");
        assert_eq!(key_text(""), "\"\"");
    }
}
