//! Plans rendered for people and machines: text (terminal), JSON (versioned, fields
//! documented in docs/plan-json.md) and markdown (a pull-request comment). Each is a pure
//! function of the plan: same plan, byte-identical output. Secrets appear only as
//! `(sensitive)`; values known only after apply as `(known after apply)`.

pub mod events;
pub mod exposure;
pub mod json;
pub mod markdown;
pub mod text;

use stackctl_provider::{AttributeChange, Value};

/// Attributes that say how stackctl does its work, not what the stack becomes: where a
/// file is written and its temporary directory (derived from the stack root), Traefik's
/// directories and admin address, hashes that only mirror a change shown elsewhere (the
/// static file's content, an image's build context), and which backend file a routed
/// service writes. A reviewer rarely needs them, so text shows them last and markdown in a
/// collapsed "Details for operators" block; JSON keeps every attribute as it is.
pub const PLUMBING_ATTRIBUTES: &[&str] = &[
    "admin_url",
    "config_hash",
    "context_hash",
    "dynamic_dir",
    "file",
    "path",
    "route_backend",
    "temp_dir",
    "tls_path",
];

pub fn is_plumbing(change: &AttributeChange) -> bool {
    PLUMBING_ATTRIBUTES.contains(&change.attribute.as_str())
}

/// The changes a reviewer reads first, then the plumbing ones, each in their own order.
pub fn reviewer_then_plumbing(
    changes: &[AttributeChange],
) -> (Vec<&AttributeChange>, Vec<&AttributeChange>) {
    changes.iter().partition(|change| !is_plumbing(change))
}

pub const SENSITIVE: &str = "(sensitive)";
pub const SENSITIVE_CHANGED: &str = "(sensitive value changed)";
pub const KNOWN_AFTER_APPLY: &str = "(known after apply)";

/// A value on one line: strings quoted, secrets and unknowns as their markers.
pub fn inline(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(flag) => flag.to_string(),
        Value::Integer(number) => number.to_string(),
        Value::Text(text) => serde_json::to_string(text).unwrap_or_default(),
        Value::Secret(_) => SENSITIVE.to_string(),
        Value::Unknown(_) => KNOWN_AFTER_APPLY.to_string(),
        Value::List(items) => format!(
            "[{}]",
            items.iter().map(inline).collect::<Vec<_>>().join(", ")
        ),
        Value::Map(entries) => format!(
            "{{ {} }}",
            entries
                .iter()
                .map(|(key, item)| format!("{key} = {}", inline(item)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// One rendered line of a change, without glyph or colour: `(sensitive value changed)`,
/// `"a" → "b"`, `+ "b"`, `- "a"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeLine {
    Added(String),
    Removed(String),
    Changed {
        before: String,
        after: String,
    },
    SensitiveChanged,
    /// A multi-line text that is new: its lines, shown as a block.
    AddedText(Vec<String>),
    /// A multi-line text that goes: its lines, shown as a block.
    RemovedText(Vec<String>),
    /// A multi-line text that changed: a unified line diff.
    TextDiff(Vec<DiffLine>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiffLine {
    Same(String),
    Added(String),
    Removed(String),
    Gap,
}

/// Flattens a change for display: maps on both sides become one line per changed key
/// (`env.DATABASE_URL`), so a one-variable change shows as one line.
pub fn expand(change: &AttributeChange) -> Vec<(String, ChangeLine, bool)> {
    let mut lines = Vec::new();
    expand_into(
        &change.attribute,
        change.before.as_ref(),
        change.after.as_ref(),
        change.sensitive,
        &mut lines,
    );
    lines
        .into_iter()
        .map(|(name, line)| (name, line, change.forces_replace))
        .collect()
}

fn expand_into(
    name: &str,
    before: Option<&Value>,
    after: Option<&Value>,
    sensitive: bool,
    lines: &mut Vec<(String, ChangeLine)>,
) {
    if let (Some(Value::Map(old)), Some(Value::Map(new))) = (before, after) {
        let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            let (old_value, new_value) = (old.get(key), new.get(key));
            if old_value != new_value {
                let nested_sensitive = old_value.is_some_and(Value::contains_secret)
                    || new_value.is_some_and(Value::contains_secret);
                expand_into(
                    &format!("{name}.{key}"),
                    old_value,
                    new_value,
                    nested_sensitive,
                    lines,
                );
            }
        }
        return;
    }
    let shown = |value: &Value| {
        if sensitive && !matches!(value, Value::Unknown(_)) {
            SENSITIVE.to_string()
        } else {
            inline(value)
        }
    };
    let lines_of = |text: &str| text.lines().map(str::to_string).collect();
    let line = match (before, after) {
        (None, Some(Value::Text(new))) if !sensitive && new.contains('\n') => {
            ChangeLine::AddedText(lines_of(new))
        }
        (Some(Value::Text(old)), None) if !sensitive && old.contains('\n') => {
            ChangeLine::RemovedText(lines_of(old))
        }
        (None, Some(new)) => ChangeLine::Added(shown(new)),
        (Some(old), None) => ChangeLine::Removed(shown(old)),
        (Some(_), Some(_)) if sensitive => ChangeLine::SensitiveChanged,
        (Some(Value::Text(old)), Some(Value::Text(new)))
            if old.contains('\n') || new.contains('\n') =>
        {
            ChangeLine::TextDiff(text_diff(old, new))
        }
        (Some(old), Some(new)) => ChangeLine::Changed {
            before: inline(old),
            after: inline(new),
        },
        (None, None) => return,
    };
    lines.push((name.to_string(), line));
}

/// A unified diff of two texts with three lines of context.
pub fn text_diff(old: &str, new: &str) -> Vec<DiffLine> {
    let diff = similar::TextDiff::from_lines(old, new);
    let mut lines = Vec::new();
    for (index, group) in diff.grouped_ops(3).iter().enumerate() {
        if index > 0 {
            lines.push(DiffLine::Gap);
        }
        for operation in group {
            for change in diff.iter_changes(operation) {
                let text = change.value().trim_end_matches('\n').to_string();
                lines.push(match change.tag() {
                    similar::ChangeTag::Equal => DiffLine::Same(text),
                    similar::ChangeTag::Insert => DiffLine::Added(text),
                    similar::ChangeTag::Delete => DiffLine::Removed(text),
                });
            }
        }
    }
    lines
}

/// `, 1 release task to run` for the summary line; empty when none is planned, so plans
/// without release tasks read as they always did.
fn release_tasks_to_run(count: usize) -> String {
    match count {
        0 => String::new(),
        1 => ", 1 release task to run".to_string(),
        _ => format!(", {count} release tasks to run"),
    }
}
