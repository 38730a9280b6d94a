//! `--format json`: the plan for machines. Field meanings are in docs/plan-json.md;
//! `format_version` changes when a field changes meaning or goes away.

use serde_json::{json, Value as Json};
use stackctl_provider::{Action, Value};

use super::{KNOWN_AFTER_APPLY, SENSITIVE};
use crate::plan::{LiveStatus, Plan};

/// A value as JSON: secrets become `{"sensitive": true}`, unknowns
/// `{"known_after_apply": "<reference>"}`.
pub fn value(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(flag) => json!(flag),
        Value::Integer(number) => json!(number),
        Value::Text(text) => json!(text),
        Value::List(items) => Json::Array(items.iter().map(self::value).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(key, item)| (key.clone(), self::value(item)))
                .collect(),
        ),
        Value::Secret(_) => json!({ "sensitive": true }),
        Value::Unknown(reference) => json!({ "known_after_apply": reference.to_string() }),
    }
}

fn masked(item: Option<&Value>, sensitive: bool) -> Json {
    match item {
        None => Json::Null,
        Some(item)
            if sensitive && !item.contains_secret() && !matches!(item, Value::Unknown(_)) =>
        {
            json!({ "sensitive": true })
        }
        Some(item) => value(item),
    }
}

pub fn action(action: &Action) -> Json {
    json!({
        "address": action.address.to_string(),
        "kind": action.address.kind(),
        "name": action.address.name(),
        "provider": action.provider,
        "action": action.kind,
        "glyph": action.kind.glyph(),
        "reason": {
            "code": reason_code(&action.reason),
            "message": action.reason.to_string(),
        },
        "depends_on": action.depends_on.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "changes": action.changes.iter().map(|change| json!({
            "attribute": change.attribute,
            "before": masked(change.before.as_ref(), change.sensitive),
            "after": masked(change.after.as_ref(), change.sensitive),
            "sensitive": change.sensitive,
            "forces_replace": change.forces_replace,
        })).collect::<Vec<_>>(),
    })
}

fn reason_code(reason: &stackctl_provider::Reason) -> String {
    serde_json::to_value(reason)
        .ok()
        .and_then(|json| json.get("code").and_then(Json::as_str).map(str::to_string))
        .unwrap_or_default()
}

/// `null` for a drift report; otherwise the changes first, then both surfaces.
fn exposure(plan: &Plan) -> Json {
    let Some(exposure) = &plan.exposure else {
        return Json::Null;
    };
    json!({
        "widens": exposure.widens(),
        "unchanged": exposure.is_unchanged(),
        "changes": exposure.changes,
        "before": exposure.before,
        "after": exposure.after,
    })
}

pub fn render(plan: &Plan) -> String {
    let summary = plan.summary();
    let live = match &plan.live {
        LiveStatus::Read => json!({ "read": true }),
        LiveStatus::NotRead { reason } => json!({ "read": false, "reason": reason }),
        LiveStatus::Partial { unread } => json!({ "read": "partial", "unread": unread }),
    };
    let document = json!({
        "format_version": plan.format_version,
        "mode": plan.mode,
        "stack": plan.stack,
        "live_state": live,
        "state": { "lineage": plan.state.lineage, "serial": plan.state.serial },
        "targets": plan.targets.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "summary": {
            "create": summary.create,
            "update": summary.update,
            "replace": summary.replace,
            "delete": summary.delete,
            "adopt": summary.adopt,
            "run": summary.run,
            "unchanged": summary.unchanged,
        },
        "exposure": exposure(plan),
        "warnings": plan.warnings,
        "risks": plan.risks.iter().map(|warning| json!({
            "kind": warning.kind,
            "label": warning.kind.label(),
            "address": warning.address.to_string(),
            "why": warning.why,
        })).collect::<Vec<_>>(),
        "actions": plan.actions.iter().map(action).collect::<Vec<_>>(),
        "unchanged": plan.unchanged.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "markers": { "sensitive": SENSITIVE, "known_after_apply": KNOWN_AFTER_APPLY },
    });
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}
