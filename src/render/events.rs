//! `plan --json` and `apply --json`: one JSON object per line, written as things happen,
//! for scripts and CI (the schema is in docs/json-events.md). Every object has `type`;
//! the apply's action events are exactly the lines of the run folder's `events.jsonl`
//! with `"type": "action"` added. Values come from the plan's JSON rendering, so secrets
//! are `{"sensitive": true}` here as there; the CLI also passes every line through the
//! run folder's redaction before writing it.

use serde_json::{json, Value as Json};

use crate::apply::{ApplyReport, Event};
use crate::plan::Plan;

/// The version of this event stream's shape; it changes when a field changes meaning or
/// goes away.
pub const EVENTS_FORMAT_VERSION: u32 = 1;

/// The first line: which stack, which command.
pub fn started(stack: &str, command: &str) -> Json {
    json!({
        "type": "started",
        "format_version": EVENTS_FORMAT_VERSION,
        "stack": stack,
        "command": command,
    })
}

/// One `planned_change` line per action, then a `change_summary`.
pub fn plan(plan: &Plan) -> Vec<Json> {
    let mut lines: Vec<Json> = plan
        .actions
        .iter()
        .map(|action| {
            let mut line = json!({ "type": "planned_change" });
            if let (Some(line), Json::Object(fields)) =
                (line.as_object_mut(), super::json::action(action))
            {
                line.extend(fields);
            }
            line
        })
        .collect();
    let summary = plan.summary();
    lines.push(json!({
        "type": "change_summary",
        "create": summary.create,
        "update": summary.update,
        "replace": summary.replace,
        "delete": summary.delete,
        "adopt": summary.adopt,
        "run": summary.run,
        "unchanged": summary.unchanged,
        "has_changes": plan.has_changes(),
        "live": plan.live,
        "warnings": plan.warnings,
    }));
    lines
}

/// An executor event (an action started, finished, failed…), as in `events.jsonl`.
pub fn action(event: &Event) -> Json {
    let mut line = json!({ "type": "action" });
    if let (Some(line), Ok(Json::Object(fields))) =
        (line.as_object_mut(), serde_json::to_value(event))
    {
        line.extend(fields);
    }
    line
}

/// A warning or a note the run gave (`level` is `warning` or `note`).
pub fn message(level: &str, text: &str) -> Json {
    json!({ "type": "message", "level": level, "message": text.trim_end() })
}

/// The last line of an apply: counts, duration and the run folder.
pub fn apply_summary(report: &ApplyReport, run_folder: &str) -> Json {
    json!({
        "type": "apply_summary",
        "succeeded": report.succeeded(),
        "failed": report.failed(),
        "skipped": report.skipped(),
        "unreachable": report.unreachable(),
        "interrupted": report.interrupted(),
        "duration_ms": report.duration_ms,
        "run_folder": run_folder,
    })
}

/// The checks through the edge after an apply, as `stackctl verify --format json` prints
/// them.
pub fn checks(document: &str) -> Json {
    json!({
        "type": "checks",
        "report": serde_json::from_str::<Json>(document).unwrap_or(Json::Null),
    })
}

/// One line of the stream: compact JSON and a line break.
pub fn line(event: &Json) -> String {
    let mut text = event.to_string();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_events_are_the_event_log_lines_with_a_type() {
        let event = Event {
            at_ms: 12,
            address: "service.api".into(),
            event: "finished",
            duration_ms: Some(3),
            message: None,
        };
        assert_eq!(
            line(&action(&event)),
            "{\"type\":\"action\",\"at_ms\":12,\"address\":\"service.api\",\"event\":\"finished\",\"duration_ms\":3}\n"
        );
        assert_eq!(
            message("warning", "careful\n"),
            json!({"type": "message", "level": "warning", "message": "careful"})
        );
    }
}
