//! stack.toml text → a plain JSON tree plus a map from each value's path to where it
//! is written, so every later check can point at `file:line:column`.

use std::collections::HashMap;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::diagnostic::{Diagnostic, Location, SourceFile};

/// Where each value (and its key) sits in the source, by path: `services.api.port`,
/// `firewalls.web.inbound[0].protocol`. The root is the empty path.
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    pub file: Option<SourceFile>,
    values: HashMap<String, Range<usize>>,
    keys: HashMap<String, Range<usize>>,
}

impl SourceMap {
    /// The location of the value at `path`, or of the nearest enclosing value written.
    pub fn value(&self, path: &str) -> Option<Location> {
        let file = self.file.as_ref()?;
        let mut current = path;
        loop {
            if let Some(span) = self.values.get(current) {
                return Some(file.locate(span.clone()));
            }
            current = parent_path(current)?;
        }
    }

    /// The location of the key at `path` (falls back to its value).
    pub fn key(&self, path: &str) -> Option<Location> {
        let file = self.file.as_ref()?;
        match self.keys.get(path) {
            Some(span) => Some(file.locate(span.clone())),
            None => self.value(path),
        }
    }
}

/// `a.b[2].c` → `a.b[2]` → `a.b` → `a` → `` → none.
pub fn parent_path(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

pub fn child_path(parent: &str, key: &str) -> String {
    let simple = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if simple {
        key.to_string()
    } else {
        format!("\"{key}\"")
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

pub fn index_path(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// Parses TOML into JSON and a source map; syntax errors become diagnostics (all that
/// the parser could recover from, not only the first).
pub fn parse(source: &SourceFile) -> Result<(serde_json::Value, SourceMap), Vec<Diagnostic>> {
    let (root, errors) = DeTable::parse_recoverable(&source.text);
    if !errors.is_empty() {
        return Err(errors
            .iter()
            .map(|error| {
                let span = error.span().unwrap_or(0..0);
                Diagnostic::error(
                    "syntax",
                    format!("invalid TOML: {}", error.message().trim()),
                )
                .at(Some(source.locate(span)))
                .expected("valid TOML here")
            })
            .collect());
    }
    let mut map = SourceMap {
        file: Some(source.clone()),
        ..SourceMap::default()
    };
    map.values.insert(String::new(), root.span());
    let json = table_to_json(root.get_ref(), "", &mut map);
    Ok((json, map))
}

fn table_to_json(table: &DeTable<'_>, path: &str, map: &mut SourceMap) -> serde_json::Value {
    let mut object = serde_json::Map::new();
    for (key, value) in table {
        let child = child_path(path, key.get_ref());
        map.keys.insert(child.clone(), key.span());
        object.insert(key.get_ref().to_string(), value_to_json(value, &child, map));
    }
    serde_json::Value::Object(object)
}

fn value_to_json(
    value: &toml::Spanned<DeValue<'_>>,
    path: &str,
    map: &mut SourceMap,
) -> serde_json::Value {
    map.values.insert(path.to_string(), value.span());
    match value.get_ref() {
        DeValue::String(text) => serde_json::Value::String(text.to_string()),
        DeValue::Integer(integer) => {
            let digits = integer.as_str().replace('_', "");
            match i64::from_str_radix(digits.trim_start_matches('+'), integer.radix()) {
                Ok(number) => serde_json::Value::from(number),
                Err(_) => serde_json::Value::String(integer.as_str().to_string()),
            }
        }
        DeValue::Float(float) => float
            .as_str()
            .replace('_', "")
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        DeValue::Boolean(flag) => serde_json::Value::Bool(*flag),
        DeValue::Datetime(datetime) => serde_json::Value::String(datetime.to_string()),
        DeValue::Array(items) => serde_json::Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(index, item)| value_to_json(item, &index_path(path, index), map))
                .collect(),
        ),
        DeValue::Table(table) => table_to_json(table, path, map),
    }
}
