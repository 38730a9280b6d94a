//! Structural checks of stack.toml against the JSON Schema generated from the config
//! types: unknown keys (with the nearest valid key), wrong types, missing fields, values
//! outside an enumeration. Every problem is reported, with its path and location, before
//! serde sees the document — serde alone would stop at the first.

use serde_json::Value as Json;

use super::diagnostic::{did_you_mean, Diagnostic};
use super::document::{child_path, index_path, SourceMap};

pub fn check(document: &Json, schema: &Json, map: &SourceMap) -> Vec<Diagnostic> {
    let mut checker = Checker {
        root: schema,
        map,
        found: Vec::new(),
    };
    checker.check(document, schema, "");
    checker.found
}

struct Checker<'a> {
    root: &'a Json,
    map: &'a SourceMap,
    found: Vec<Diagnostic>,
}

impl<'a> Checker<'a> {
    fn resolve(&self, schema: &'a Json) -> &'a Json {
        let mut current = schema;
        // Schemas from schemars reference `#/$defs/Name`; follow a bounded chain of them.
        for _ in 0..16 {
            match current.get("$ref").and_then(Json::as_str) {
                Some(reference) => {
                    let name = reference.rsplit('/').next().unwrap_or_default();
                    match self.root.get("$defs").and_then(|defs| defs.get(name)) {
                        Some(target) => current = target,
                        None => return current,
                    }
                }
                None => return current,
            }
        }
        current
    }

    fn check(&mut self, value: &Json, schema: &'a Json, path: &str) {
        let schema = self.resolve(schema);
        if let Some(alternatives) = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(Json::as_array)
        {
            self.check_alternatives(value, alternatives, path);
            return;
        }
        if !self.check_type(value, schema, path) {
            return;
        }
        if let Some(constant) = schema.get("const") {
            if constant != value {
                self.error_value(
                    path,
                    "invalid-value",
                    format!("`{}` must be {constant}", display_path(path)),
                    constant.to_string(),
                );
            }
        }
        if let Some(choices) = schema.get("enum").and_then(Json::as_array) {
            if !choices.contains(value) {
                let names: Vec<String> = choices.iter().map(quoted).collect();
                let given = value.as_str().unwrap_or_default();
                let hint = did_you_mean(given, choices.iter().filter_map(Json::as_str))
                    .map(|text| text.replace('`', "\""));
                self.found.push(
                    Diagnostic::error(
                        "invalid-value",
                        format!(
                            "{} is not a valid value for `{}`",
                            quoted(value),
                            display_path(path)
                        ),
                    )
                    .at(self.map.value(path))
                    .expected(format!("one of {}", names.join(", ")))
                    .hint_if(hint),
                );
            }
        }
        if let (Some(number), Some(maximum)) =
            (value.as_f64(), schema.get("maximum").and_then(Json::as_f64))
        {
            if number > maximum {
                self.error_value(
                    path,
                    "out-of-range",
                    format!("{number} is too large for `{}`", display_path(path)),
                    format!("at most {maximum}"),
                );
            }
        }
        if let (Some(number), Some(minimum)) =
            (value.as_f64(), schema.get("minimum").and_then(Json::as_f64))
        {
            if number < minimum {
                self.error_value(
                    path,
                    "out-of-range",
                    format!("{number} is too small for `{}`", display_path(path)),
                    format!("at least {minimum}"),
                );
            }
        }
        match value {
            Json::Object(entries) => self.check_object(entries, schema, path),
            Json::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (index, item) in items.iter().enumerate() {
                        self.check(item, item_schema, &index_path(path, index));
                    }
                }
            }
            _ => {}
        }
    }

    fn check_object(
        &mut self,
        entries: &serde_json::Map<String, Json>,
        schema: &'a Json,
        path: &str,
    ) {
        let properties = schema.get("properties").and_then(Json::as_object);
        if let Some(required) = schema.get("required").and_then(Json::as_array) {
            for name in required.iter().filter_map(Json::as_str) {
                if !entries.contains_key(name) {
                    let where_ = if path.is_empty() {
                        "stack.toml".to_string()
                    } else {
                        format!("`{}`", display_path(path))
                    };
                    let description = properties
                        .and_then(|properties| properties.get(name))
                        .map(|property| self.describe(property))
                        .unwrap_or_else(|| "a value".to_string());
                    self.found.push(
                        Diagnostic::error("missing-field", format!("missing `{name}` in {where_}"))
                            .at(self.map.key(path))
                            .expected(format!("`{name}` = {description}")),
                    );
                }
            }
        }
        for (key, item) in entries {
            let child = child_path(path, key);
            match properties.and_then(|properties| properties.get(key)) {
                Some(property) => self.check(item, property, &child),
                None => match schema.get("additionalProperties") {
                    Some(Json::Bool(false)) | None if properties.is_some() => {
                        let names: Vec<&str> = properties
                            .map(|properties| properties.keys().map(String::as_str).collect())
                            .unwrap_or_default();
                        let where_ = if path.is_empty() {
                            "stack.toml".to_string()
                        } else {
                            format!("`{}`", display_path(path))
                        };
                        self.found.push(
                            Diagnostic::error(
                                "unknown-key",
                                format!("unknown key `{key}` in {where_}"),
                            )
                            .at(self.map.key(&child))
                            .expected(format!(
                                "one of {}",
                                names
                                    .iter()
                                    .map(|name| format!("`{name}`"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ))
                            .hint_if(did_you_mean(key, names.iter().copied())),
                        );
                    }
                    Some(additional @ Json::Object(_)) => self.check(item, additional, &child),
                    _ => {}
                },
            }
        }
    }

    /// `Option<T>`, untagged and internally tagged enums all arrive as `anyOf`/`oneOf`.
    fn check_alternatives(&mut self, value: &Json, alternatives: &'a [Json], path: &str) {
        let candidates: Vec<&'a Json> = alternatives
            .iter()
            .filter(|alternative| {
                self.resolve(alternative).get("type") != Some(&Json::from("null"))
            })
            .collect();
        if value.is_null() && candidates.len() < alternatives.len() {
            return;
        }
        if let [only] = candidates.as_slice() {
            self.check(value, only, path);
            return;
        }
        // An internally tagged enum: choose the variant by its `type` constant.
        let tags: Vec<(&str, &'a Json)> = candidates
            .iter()
            .filter_map(|candidate| {
                let resolved = self.resolve(candidate);
                let tag = resolved
                    .pointer("/properties/type/const")
                    .and_then(Json::as_str)?;
                Some((tag, *candidate))
            })
            .collect();
        if !tags.is_empty() && tags.len() == candidates.len() {
            let names: Vec<&str> = tags.iter().map(|(tag, _)| *tag).collect();
            let expected = format!(
                "`type` = one of {}",
                names
                    .iter()
                    .map(|name| format!("\"{name}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            match value.get("type") {
                None if value.is_object() => self.found.push(
                    Diagnostic::error(
                        "missing-field",
                        format!("missing `type` in `{}`", display_path(path)),
                    )
                    .at(self.map.key(path))
                    .expected(expected),
                ),
                Some(Json::String(given)) => match tags.iter().find(|(tag, _)| tag == given) {
                    Some((_, variant)) => self.check(value, variant, path),
                    None => self.found.push(
                        Diagnostic::error(
                            "invalid-value",
                            format!("unknown type \"{given}\" in `{}`", display_path(path)),
                        )
                        .at(self.map.value(&child_path(path, "type")))
                        .expected(expected)
                        .hint_if(
                            did_you_mean(given, names.iter().copied())
                                .map(|text| text.replace('`', "\"")),
                        ),
                    ),
                },
                _ => self.error_value(
                    path,
                    "wrong-type",
                    format!("`{}` has the wrong type", display_path(path)),
                    "a table with a `type`".to_string(),
                ),
            }
            return;
        }
        // Untagged: accept the first alternative that fits without problems.
        let mut best: Option<Vec<Diagnostic>> = None;
        for candidate in &candidates {
            let mut trial = Checker {
                root: self.root,
                map: self.map,
                found: Vec::new(),
            };
            trial.check(value, candidate, path);
            if trial.found.is_empty() {
                return;
            }
            if best
                .as_ref()
                .is_none_or(|found| trial.found.len() < found.len())
            {
                best = Some(trial.found);
            }
        }
        let descriptions: Vec<String> = candidates
            .iter()
            .map(|candidate| self.describe(candidate))
            .collect();
        let type_fits = candidates
            .iter()
            .any(|candidate| json_type_matches(value, self.resolve(candidate)));
        match best {
            Some(found) if type_fits => self.found.extend(found),
            _ => self.error_value(
                path,
                "wrong-type",
                format!(
                    "`{}` should be {}, found {}",
                    display_path(path),
                    descriptions.join(" or "),
                    json_type_name(value)
                ),
                descriptions.join(" or "),
            ),
        }
    }

    /// Returns false (after reporting) when the value's type is wrong.
    fn check_type(&mut self, value: &Json, schema: &Json, path: &str) -> bool {
        if schema.get("type").is_none() || json_type_matches(value, schema) {
            return true;
        }
        let expected = self.describe(schema);
        self.error_value(
            path,
            "wrong-type",
            format!(
                "`{}` should be {expected}, found {}",
                display_path(path),
                json_type_name(value)
            ),
            expected,
        );
        false
    }

    fn error_value(&mut self, path: &str, code: &'static str, message: String, expected: String) {
        self.found.push(
            Diagnostic::error(code, message)
                .at(self.map.value(path))
                .expected(expected),
        );
    }

    fn describe(&self, schema: &Json) -> String {
        let schema = self.resolve(schema);
        if let Some(choices) = schema.get("enum").and_then(Json::as_array) {
            return format!(
                "one of {}",
                choices.iter().map(quoted).collect::<Vec<_>>().join(", ")
            );
        }
        if let Some(alternatives) = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(Json::as_array)
        {
            let parts: Vec<String> = alternatives
                .iter()
                .filter(|alternative| {
                    self.resolve(alternative).get("type") != Some(&Json::from("null"))
                })
                .map(|alternative| self.describe(alternative))
                .collect();
            return parts.join(" or ");
        }
        let types: Vec<&str> = match schema.get("type") {
            Some(Json::String(name)) => vec![name.as_str()],
            Some(Json::Array(names)) => names
                .iter()
                .filter_map(Json::as_str)
                .filter(|name| *name != "null")
                .collect(),
            _ => vec![],
        };
        let words: Vec<&str> = types
            .iter()
            .map(|name| match *name {
                "string" => "a string",
                "integer" => "an integer",
                "number" => "a number",
                "boolean" => "true or false",
                "array" => "an array",
                "object" => "a table",
                _ => "a value",
            })
            .collect();
        if words.is_empty() {
            "a value".to_string()
        } else {
            words.join(" or ")
        }
    }
}

fn json_type_matches(value: &Json, schema: &Json) -> bool {
    let matches = |name: &str| match name {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "null" => value.is_null(),
        _ => true,
    };
    match schema.get("type") {
        Some(Json::String(name)) => matches(name),
        Some(Json::Array(names)) => names.iter().filter_map(Json::as_str).any(matches),
        _ => true,
    }
}

fn json_type_name(value: &Json) -> &'static str {
    match value {
        Json::Null => "nothing",
        Json::Bool(_) => "a boolean",
        Json::Number(number) if number.is_f64() => "a float",
        Json::Number(_) => "an integer",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "a table",
    }
}

fn quoted(value: &Json) -> String {
    match value {
        Json::String(text) => format!("\"{text}\""),
        other => other.to_string(),
    }
}

/// The path as users write it: `services.api.port`, or `stack.toml` for the root.
pub fn display_path(path: &str) -> &str {
    if path.is_empty() {
        "stack.toml"
    } else {
        path
    }
}
