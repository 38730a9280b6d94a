//! stack.toml → [`Config`]: parse with spans, check the shape against the schema
//! generated from the types, deserialise, then validate references and policy. Every
//! problem is collected as a [`Diagnostic`] pointing at `file:line:column`.

pub mod derived;
pub mod diagnostic;
pub mod document;
pub mod env_file;
pub mod environment;
pub mod go_regexp;
pub mod hardening;
pub mod parse;
pub mod placement;
pub mod secret_generation;
pub mod secret_hints;
pub mod shape;
pub mod traefik_rule;
pub mod types;
pub mod validate;

#[cfg(test)]
mod validate_tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub use diagnostic::{Diagnostic, Severity, SourceFile};
pub use document::SourceMap;
pub use environment::{Environment, Interpolated};
pub use types::*;

/// A loaded, validated stack.
#[derive(Clone, Debug)]
pub struct LoadedConfig {
    pub config: Config,
    pub map: SourceMap,
    pub environment: Environment,
    /// The file itself, for messages.
    pub path: PathBuf,
    /// Relative paths in the config (build contexts, key files) resolve against this.
    pub base_directory: PathBuf,
    /// Warnings (errors stop loading).
    pub warnings: Vec<Diagnostic>,
    pub sources: Vec<SourceFile>,
    /// sha256 of the stack file and env file contents: a saved plan refuses to apply
    /// when it moved. Secrets enter it only through this hash.
    pub fingerprint: String,
}

/// Loading failed: every problem found, and the sources they point into.
#[derive(Clone, Debug)]
pub struct ConfigErrors {
    pub diagnostics: Vec<Diagnostic>,
    pub sources: Vec<SourceFile>,
}

#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `--env-file`: replaces `[stack].env_file`.
    pub env_file: Option<PathBuf>,
    /// The process environment (passed in, so loading stays a pure function of inputs).
    pub process_environment: BTreeMap<String, String>,
    /// `--strict`: warnings are errors.
    pub strict: bool,
}

/// The JSON Schema of stack.toml, generated from [`Config`].
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(Config);
    serde_json::to_value(&schema).unwrap_or_default()
}

/// Reads and validates a stack file.
pub fn load(path: &Path, options: &LoadOptions) -> Result<LoadedConfig, ConfigErrors> {
    let name = display_name(path);
    let text = env_file::read_regular_file(path).map_err(|error| ConfigErrors {
        diagnostics: vec![Diagnostic::error("unreadable", format!("cannot read `{name}`: {error}"))
            .hint("pass the stack file with `--config PATH`, or run from the directory holding stack.toml")],
        sources: vec![],
    })?;
    let source = SourceFile { name, text };
    let base_directory = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    load_text(source, &base_directory, options)
}

/// Validates stack.toml text; `base_directory` locates the env file and build contexts.
pub fn load_text(
    source: SourceFile,
    base_directory: &Path,
    options: &LoadOptions,
) -> Result<LoadedConfig, ConfigErrors> {
    let fail = |diagnostics: Vec<Diagnostic>, sources: Vec<SourceFile>| ConfigErrors {
        diagnostics,
        sources,
    };
    let sources = vec![source.clone()];
    let (document, map) = document::parse(&source).map_err(|found| fail(found, sources.clone()))?;
    let structural = shape::check(&document, &json_schema(), &map);
    if !structural.is_empty() {
        return Err(fail(structural, sources));
    }
    let config: Config = serde_json::from_value(document.clone()).map_err(|error| {
        fail(
            vec![
                Diagnostic::error("invalid", format!("invalid stack file: {error}"))
                    .at(map.value("")),
            ],
            sources.clone(),
        )
    })?;

    let env_path = options.env_file.clone().or_else(|| {
        config
            .stack
            .env_file
            .as_ref()
            .map(|file| base_directory.join(file))
    });
    let mut env_text = String::new();
    let mut file_values = BTreeMap::new();
    let mut diagnostics = Vec::new();
    if let Some(env_path) = &env_path {
        match env_file::read_regular_file(env_path) {
            Ok(text) => {
                env_text = text;
                match parse_env_file(&env_text, &options.process_environment) {
                    Ok(values) => file_values = values,
                    Err(errors) => {
                        diagnostics.extend(env_file_diagnostics(env_path, errors));
                    }
                }
            }
            // The stack's own `env_file` may be absent (values from the environment);
            // a file named on the command line must exist.
            Err(error)
                if error.kind() == std::io::ErrorKind::NotFound && options.env_file.is_none() => {}
            Err(error) => diagnostics.push(Diagnostic::error(
                "env-file",
                format!("cannot read `{}`: {error}", env_path.display()),
            )),
        }
    }
    let environment = Environment::new(
        file_values,
        &options.process_environment,
        &config.stack.secrets,
        &config.stack.not_secrets,
    );
    diagnostics.extend(validate::validate(
        &config,
        &document,
        &map,
        &environment,
        base_directory,
        env_path.as_deref(),
    ));
    if options.strict {
        for diagnostic in &mut diagnostics {
            diagnostic.severity = Severity::Error;
        }
    }
    diagnostics.sort_by(|left, right| {
        let key = |diagnostic: &Diagnostic| {
            diagnostic
                .location
                .as_ref()
                .map(|location| (location.line, location.column))
        };
        key(left).cmp(&key(right))
    });
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(fail(diagnostics, sources));
    }
    let fingerprint =
        stackctl_provider::sha256_hex(format!("{}\0{}", source.text, env_text).as_bytes());
    Ok(LoadedConfig {
        path: PathBuf::from(&source.name),
        config,
        map,
        environment,
        base_directory: base_directory.to_path_buf(),
        warnings: diagnostics,
        sources,
        fingerprint,
    })
}

/// The variables a stack file uses and the rule saying which are secret, read without
/// needing their values (`stackctl secrets generate` runs before the env file is complete).
#[derive(Clone, Debug)]
pub struct StackVariables {
    /// Every `${VAR}` name in the file.
    pub used: BTreeSet<String>,
    /// The env file: `--env-file`, else `[stack].env_file` beside the stack file.
    pub env_file: Option<PathBuf>,
    /// No values: only [`Environment::is_secret`] is meant to be asked.
    pub rules: Environment,
}

/// Reads which variables `path` uses (its shape is checked; its values are not).
pub fn stack_variables(
    path: &Path,
    env_file_override: Option<&Path>,
) -> Result<StackVariables, ConfigErrors> {
    let name = display_name(path);
    let text = env_file::read_regular_file(path).map_err(|error| ConfigErrors {
        diagnostics: vec![Diagnostic::error("unreadable", format!("cannot read `{name}`: {error}"))
            .hint("pass the stack file with `--config PATH`, or run from the directory holding stack.toml")],
        sources: vec![],
    })?;
    let source = SourceFile { name, text };
    let sources = vec![source.clone()];
    let fail = |diagnostics| ConfigErrors {
        diagnostics,
        sources: sources.clone(),
    };
    let (document, map) = document::parse(&source).map_err(fail)?;
    let structural = shape::check(&document, &json_schema(), &map);
    if !structural.is_empty() {
        return Err(fail(structural));
    }
    let config: Config = serde_json::from_value(document.clone()).map_err(|error| {
        fail(vec![Diagnostic::error(
            "invalid",
            format!("invalid stack file: {error}"),
        )
        .at(map.value(""))])
    })?;
    let base_directory = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let env_file = env_file_override.map(Path::to_path_buf).or_else(|| {
        config
            .stack
            .env_file
            .as_ref()
            .map(|file| base_directory.join(file))
    });
    let mut used = BTreeSet::new();
    collect_variables(&document, &mut used);
    Ok(StackVariables {
        used,
        env_file,
        rules: Environment::new(
            BTreeMap::new(),
            &BTreeMap::new(),
            &config.stack.secrets,
            &config.stack.not_secrets,
        ),
    })
}

fn collect_variables(value: &serde_json::Value, found: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::String(text) => found.extend(environment::variables_in(text)),
        serde_json::Value::Array(items) => {
            for item in items {
                collect_variables(item, found);
            }
        }
        serde_json::Value::Object(entries) => {
            for item in entries.values() {
                collect_variables(item, found);
            }
        }
        _ => {}
    }
}

/// The env file's variables, with Docker Compose's semantics (see [`env_file`]).
pub fn parse_env_file(
    text: &str,
    process_environment: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, Vec<env_file::EnvFileError>> {
    env_file::parse(text, process_environment)
}

/// Each env file problem at `file:line:column`. The env file is not among the sources,
/// so no snippet of it (secrets) is ever printed.
fn env_file_diagnostics(path: &Path, errors: Vec<env_file::EnvFileError>) -> Vec<Diagnostic> {
    errors
        .into_iter()
        .map(|error| {
            let location = diagnostic::Location {
                file: display_name(path),
                line: error.line,
                column: error.column,
                span: 0..0,
            };
            Diagnostic::error(
                "env-file",
                format!("cannot parse `{}`: {}", display_name(path), error.message),
            )
            .at(Some(location))
            .hint_if(error.hint)
        })
        .collect()
}

fn display_name(path: &Path) -> String {
    path.to_string_lossy().trim_start_matches("./").to_string()
}
