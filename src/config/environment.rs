//! `${VAR}` values: the env file, overridden by the process environment, and which of
//! them are secrets.

use std::collections::{BTreeMap, BTreeSet};

/// Variable values with their origin, and the rule that says which are secret.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    values: BTreeMap<String, String>,
    declared_secrets: BTreeSet<String>,
    not_secrets: BTreeSet<String>,
}

/// The result of resolving `${VAR}` in one string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interpolated {
    pub text: String,
    /// At least one variable in it is a secret: the whole value is one.
    pub secret: bool,
    /// Variables that have no value.
    pub missing: Vec<String>,
}

const SECRET_SUFFIXES: [&str; 5] = ["_PASSWORD", "_SECRET", "_TOKEN", "_KEY", "_PASSWD"];

impl Environment {
    /// `file_values` from the env file, `process` from the environment (it wins).
    pub fn new(
        file_values: BTreeMap<String, String>,
        process: &BTreeMap<String, String>,
        declared_secrets: &[String],
        not_secrets: &[String],
    ) -> Self {
        let mut values = file_values;
        for name in values.keys().cloned().collect::<Vec<_>>() {
            if let Some(value) = process.get(&name) {
                values.insert(name, value.clone());
            }
        }
        // Variables only in the process environment are visible too, but only those the
        // stack asks for are ever read.
        for (name, value) in process {
            values.entry(name.clone()).or_insert_with(|| value.clone());
        }
        Environment {
            values,
            declared_secrets: declared_secrets.iter().cloned().collect(),
            not_secrets: not_secrets.iter().cloned().collect(),
        }
    }

    pub fn is_secret(&self, name: &str) -> bool {
        if self.not_secrets.contains(name) {
            return false;
        }
        self.declared_secrets.contains(name)
            || SECRET_SUFFIXES.iter().any(|suffix| name.ends_with(suffix))
    }

    /// Listed in `[stack] not_secrets`: the operator said it is not a secret.
    pub fn declared_not_secret(&self, name: &str) -> bool {
        self.not_secrets.contains(name)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Every secret value the stack uses: redaction replaces each of them in artifacts.
    pub fn secret_values(&self, used: &BTreeSet<String>) -> Vec<String> {
        used.iter()
            .filter(|name| self.is_secret(name))
            .filter_map(|name| self.values.get(name))
            .filter(|value| !value.is_empty())
            .cloned()
            .collect()
    }

    /// Resolves `${NAME}` and `${NAME:-default}`; `$$` is a literal `$`.
    pub fn interpolate(&self, text: &str) -> Interpolated {
        let mut result = Interpolated {
            text: String::with_capacity(text.len()),
            secret: false,
            missing: Vec::new(),
        };
        let mut rest = text;
        while let Some(start) = rest.find('$') {
            result.text.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            if let Some(stripped) = after.strip_prefix('$') {
                result.text.push('$');
                rest = stripped;
            } else if let Some(body_and_rest) = after.strip_prefix('{') {
                match body_and_rest.find('}') {
                    Some(end) => {
                        let body = &body_and_rest[..end];
                        let (name, default) = match body.split_once(":-") {
                            Some((name, default)) => (name, Some(default)),
                            None => (body, None),
                        };
                        match (self.values.get(name), default) {
                            (Some(value), _) => result.text.push_str(value),
                            (None, Some(default)) => result.text.push_str(default),
                            (None, None) => result.missing.push(name.to_string()),
                        }
                        if self.is_secret(name) {
                            result.secret = true;
                        }
                        rest = &body_and_rest[end + 1..];
                    }
                    None => {
                        result.text.push_str(&rest[start..]);
                        rest = "";
                    }
                }
            } else {
                result.text.push('$');
                rest = after;
            }
        }
        result.text.push_str(rest);
        result
    }
}

/// The names of every `${VAR}` in a string.
pub fn variables_in(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('$') {
        let after = &rest[start + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('{') {
            match body.find('}') {
                Some(end) => {
                    let name = body[..end].split(":-").next().unwrap_or_default();
                    names.push(name.to_string());
                    rest = &body[end + 1..];
                }
                None => break,
            }
        } else {
            rest = after;
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment() -> Environment {
        Environment::new(
            BTreeMap::from([
                ("DOMAIN".to_string(), "file.example".to_string()),
                ("POSTGRES_PASSWORD".to_string(), "hunter2".to_string()),
            ]),
            &BTreeMap::from([("DOMAIN".to_string(), "env.example".to_string())]),
            &[],
            &[],
        )
    }

    #[test]
    fn the_process_environment_wins_over_the_env_file() {
        assert_eq!(
            environment().interpolate("https://${DOMAIN}/").text,
            "https://env.example/"
        );
    }

    #[test]
    fn a_value_using_a_secret_variable_is_secret() {
        let resolved = environment().interpolate("postgres://app:${POSTGRES_PASSWORD}@db/app");
        assert!(resolved.secret);
        assert_eq!(resolved.text, "postgres://app:hunter2@db/app");
    }

    #[test]
    fn missing_variables_are_listed_and_defaults_apply() {
        let resolved = environment().interpolate("${NOPE} ${ALSO:-fallback} $$HOME");
        assert_eq!(resolved.missing, vec!["NOPE"]);
        assert_eq!(resolved.text, " fallback $HOME");
    }

    #[test]
    fn secret_names_follow_the_suffix_rule_unless_overridden() {
        let environment = Environment::new(
            BTreeMap::new(),
            &BTreeMap::new(),
            &["SESSION".into()],
            &["SSH_PUBLIC_KEY".into()],
        );
        assert!(environment.is_secret("API_TOKEN"));
        assert!(environment.is_secret("SESSION"));
        assert!(!environment.is_secret("SSH_PUBLIC_KEY"));
        assert!(!environment.is_secret("WEBSITE_DOMAIN"));
    }
}
