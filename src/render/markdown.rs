//! `--format markdown`: a pull-request comment a reviewer reads in a minute. One summary
//! line, the risks (data loss, requests failing, production certificates, exposure
//! widened) as a GitHub alert, a table of actions, then a collapsed `<details>` block per
//! resource with its diff — multi-line values as text blocks, plumbing attributes in a
//! nested "Details for operators" block.
//!
//! GitHub refuses comments over 65,536 characters, so the output stays under
//! [`LIMIT_BYTES`] by leaving out diffs (then table rows), with a note saying so and where
//! the whole plan is. Inside HTML tags markdown is not rendered, so code there is written
//! as `<code>` with its text HTML-escaped, never with backticks.

use stackctl_provider::{Action, ActionKind, AttributeChange};

use super::{expand, reviewer_then_plumbing, ChangeLine, DiffLine, SENSITIVE_CHANGED};
use crate::plan::{LiveStatus, Plan, PlanMode, WarningKind};

/// Bytes, not characters: a byte count never undercounts GitHub's character limit.
pub const LIMIT_BYTES: usize = 60_000;

/// Room kept for the notes saying what was left out.
const NOTE_ROOM: usize = 600;

/// Where the reviewer finds what a truncated comment left out.
const WHOLE_PLAN: &str = "The whole plan: `stackctl plan --format json` (or `stackctl show` on a saved plan); an apply also writes `plan.txt` and `plan.json` to its run folder.";

pub fn render(plan: &Plan) -> String {
    render_with_limit(plan, LIMIT_BYTES)
}

pub fn render_with_limit(plan: &Plan, limit: usize) -> String {
    let mut head = title(plan);
    head.push_str(&live_state(&plan.live));
    head.push_str(&super::exposure::markdown(plan));
    head.push_str(&risks(plan));
    for warning in &plan.warnings {
        head.push_str(&format!("- warning: {}\n", table_cell(warning)));
    }
    if !plan.warnings.is_empty() {
        head.push('\n');
    }
    if plan.actions.is_empty() {
        head.push_str("No changes.\n");
        return head;
    }

    let mut table = String::from("| | Resource | Action | Reason |\n|---|---|---|---|\n");
    let mut rows_left_out = 0;
    for action in &plan.actions {
        let row = format!(
            "| `{}` | `{}` | {} | {} |\n",
            action.kind.glyph(),
            action.address,
            action.kind.verb(),
            table_cell(&action.reason.to_string())
        );
        if head.len() + table.len() + row.len() + NOTE_ROOM > limit {
            rows_left_out += 1;
            continue;
        }
        table.push_str(&row);
    }
    if rows_left_out > 0 {
        table.push_str(&format!(
            "\n_{rows_left_out} more actions left out to keep this comment under {} KB. {WHOLE_PLAN}_\n",
            limit / 1000
        ));
    }
    let mut out = head + &table + "\n";
    let mut diffs_left_out = 0;
    for action in &plan.actions {
        let section = details(action);
        if out.len() + section.len() + NOTE_ROOM > limit {
            diffs_left_out += 1;
            continue;
        }
        out.push_str(&section);
    }
    if diffs_left_out > 0 {
        out.push_str(&format!(
            "\n_The diffs of {diffs_left_out} resources were left out to keep this comment under {} KB. {WHOLE_PLAN}_\n",
            limit / 1000
        ));
    }
    out
}

fn title(plan: &Plan) -> String {
    let summary = plan.summary();
    let title = match plan.mode {
        PlanMode::Drift => "stackctl drift",
        PlanMode::Destroy => "stackctl destroy plan",
        PlanMode::Apply => "stackctl plan",
    };
    format!(
        "### {title} for `{}`: {} to create, {} to update, {} to replace, {} to delete, {} to adopt{} ({} unchanged)\n\n",
        plan.stack,
        summary.create,
        summary.update,
        summary.replace,
        summary.delete,
        summary.adopt,
        super::release_tasks_to_run(summary.run),
        summary.unchanged
    )
}

fn live_state(live: &LiveStatus) -> String {
    match live {
        LiveStatus::Read => String::new(),
        LiveStatus::NotRead { reason } => format!(
            "> [!NOTE]\n> Live state was not read ({reason}); planned from recorded state only.\n\n"
        ),
        LiveStatus::Partial { unread } => format!(
            "> [!WARNING]\n> Live state could not be read for: {}.\n\n",
            unread.join("; ")
        ),
    }
}

/// One GitHub alert listing every risk; a caution (red) when data or exposure is at stake.
/// How many risks (and exposure changes) a comment lists before it points at the JSON
/// plan: a reviewer reads a screenful, and the comment must stay under GitHub's limit.
pub const MOST_LISTED: usize = 25;

fn risks(plan: &Plan) -> String {
    if plan.risks.is_empty() {
        return String::new();
    }
    let severe = plan.risks.iter().any(|warning| {
        matches!(
            warning.kind,
            WarningKind::DataLoss | WarningKind::ExposureWidened
        )
    });
    let mut alert = format!(
        "> [!{}]\n> Applying this plan risks:\n",
        if severe { "CAUTION" } else { "WARNING" }
    );
    // The exposure section above lists every widening: here they are one line.
    let widened: Vec<String> = plan
        .risks
        .iter()
        .filter(|warning| warning.kind == WarningKind::ExposureWidened)
        .map(|warning| format!("`{}`", warning.address))
        .collect();
    let others = plan
        .risks
        .iter()
        .filter(|warning| warning.kind != WarningKind::ExposureWidened);
    let mut shown = 0;
    for warning in others {
        if shown == MOST_LISTED {
            break;
        }
        shown += 1;
        alert.push_str(&format!(
            "> - **{}:** `{}` {}.\n",
            capitalized(warning.kind.label()),
            warning.address,
            warning.why.replace('\n', " ")
        ));
    }
    let left_out = plan.risks.len() - widened.len() - shown;
    if left_out > 0 {
        alert.push_str(&format!(
            "> - …and {left_out} more (every one in `stackctl plan --format json`).\n"
        ));
    }
    if !widened.is_empty() {
        let named = widened
            .iter()
            .take(MOST_LISTED)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        let more = widened.len().saturating_sub(MOST_LISTED);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        alert.push_str(&format!(
            "> - **Exposure widened:** {named}{more} (see the exposure section above).\n"
        ));
    }
    alert.push('\n');
    alert
}

fn capitalized(text: &str) -> String {
    let mut characters = text.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}

/// A collapsed block with the resource's diff; plumbing attributes in a nested block.
fn details(action: &Action) -> String {
    let (reviewer, plumbing) = reviewer_then_plumbing(&action.changes);
    // "forces replacement" means something only for a resource that stays.
    let replacing = matches!(action.kind, ActionKind::Update) || action.kind.is_replace();
    let mut body = diff_lines(&reviewer, replacing);
    if body.is_empty() && plumbing.is_empty() {
        body.push_str(match action.kind {
            ActionKind::Delete => "- (the whole resource)\n",
            ActionKind::Adopt => "  (recorded in state as found; nothing on the target changes)\n",
            _ => "  (no attribute differs; applied again so state records the new configuration)\n",
        });
    }
    let mut section = format!(
        "<details><summary><code>{}</code> {} — {}</summary>\n\n",
        html_escape(&action.address.to_string()),
        html_escape(action.kind.verb()),
        html_with_code(&action.reason.to_string())
    );
    if !body.is_empty() {
        section.push_str(&diff_block(&body));
    }
    let operators = diff_lines(&plumbing, replacing);
    if !operators.is_empty() {
        section.push_str("<details><summary>Details for operators</summary>\n\n");
        section.push_str(&diff_block(&operators));
        section.push_str("</details>\n");
    }
    section.push_str("</details>\n");
    section
}

fn diff_block(body: &str) -> String {
    // A fence longer than any backtick run inside keeps the block closed.
    let fence = "`".repeat(longest_backtick_run(body).max(2) + 1);
    format!("{fence}diff\n{body}{fence}\n\n")
}

fn diff_lines(changes: &[&AttributeChange], show_forces: bool) -> String {
    let mut body = String::new();
    for change in changes {
        for (name, line, forces) in expand(change) {
            let note = if forces && show_forces {
                "  # forces replacement"
            } else {
                ""
            };
            match line {
                ChangeLine::Added(value) => body.push_str(&format!("+ {name} = {value}{note}\n")),
                ChangeLine::Removed(value) => body.push_str(&format!("- {name} = {value}{note}\n")),
                ChangeLine::Changed { before, after } => {
                    body.push_str(&format!("- {name} = {before}{note}\n+ {name} = {after}\n"))
                }
                ChangeLine::SensitiveChanged => {
                    body.push_str(&format!("! {name}: {SENSITIVE_CHANGED}{note}\n"))
                }
                ChangeLine::AddedText(lines) => {
                    body.push_str(&format!("+ {name}:{note}\n"));
                    for text in lines {
                        body.push_str(&format!("+   {text}\n"));
                    }
                }
                ChangeLine::RemovedText(lines) => {
                    body.push_str(&format!("- {name}:{note}\n"));
                    for text in lines {
                        body.push_str(&format!("-   {text}\n"));
                    }
                }
                ChangeLine::TextDiff(lines) => {
                    body.push_str(&format!("! {name}:{note}\n"));
                    for diff_line in lines {
                        match diff_line {
                            DiffLine::Same(text) => body.push_str(&format!("    {text}\n")),
                            DiffLine::Added(text) => body.push_str(&format!("+   {text}\n")),
                            DiffLine::Removed(text) => body.push_str(&format!("-   {text}\n")),
                            DiffLine::Gap => body.push_str("    …\n"),
                        }
                    }
                }
            }
        }
    }
    body
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// Text for a table cell: one line, no column breaks.
fn table_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Text for inside an HTML tag: `` `memory` `` becomes `<code>memory</code>`, the rest
/// is escaped. An unpaired backtick stays a backtick.
fn html_with_code(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('`') {
        let Some(length) = rest[start + 1..].find('`') else {
            break;
        };
        let code = &rest[start + 1..start + 1 + length];
        out.push_str(&html_escape(&rest[..start]));
        out.push_str(&format!("<code>{}</code>", html_escape(code)));
        rest = &rest[start + 2 + length..];
    }
    out.push_str(&html_escape(rest));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_inside_html_is_a_code_tag_never_backticks() {
        assert_eq!(
            html_with_code("replace forced by `route_backend`"),
            "replace forced by <code>route_backend</code>"
        );
        assert_eq!(
            html_with_code("drift: `a<b` & `c`"),
            "drift: <code>a&lt;b</code> &amp; <code>c</code>"
        );
        assert_eq!(html_with_code("no code"), "no code");
        assert_eq!(html_with_code("a `b"), "a `b");
    }
}
