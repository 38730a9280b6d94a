//! `--format markdown`: a pull-request comment. One summary line, warnings about deletes
//! and data loss, a table of actions, and a `<details>` block per resource with its diff.
//! GitHub refuses comments over 65,536 characters, so the output stays under 60 KB by
//! leaving out diffs (then table rows) with a note saying so.

use stackctl_provider::ActionKind;

use super::{expand, ChangeLine, DiffLine, SENSITIVE_CHANGED};
use crate::plan::{LiveStatus, Plan};

pub const LIMIT_BYTES: usize = 60_000;

pub fn render(plan: &Plan) -> String {
    render_with_limit(plan, LIMIT_BYTES)
}

pub fn render_with_limit(plan: &Plan, limit: usize) -> String {
    let summary = plan.summary();
    let title = match plan.mode {
        crate::plan::PlanMode::Drift => "stackctl drift",
        crate::plan::PlanMode::Destroy => "stackctl destroy plan",
        crate::plan::PlanMode::Apply => "stackctl plan",
    };
    let mut head = format!(
        "### {title} for `{}`: {} to create, {} to update, {} to replace, {} to delete, {} to adopt ({} unchanged)\n\n",
        plan.stack, summary.create, summary.update, summary.replace, summary.delete, summary.adopt, summary.unchanged
    );
    if let LiveStatus::NotRead { reason } = &plan.live {
        head.push_str(&format!("> [!NOTE]\n> Live state was not read ({reason}); planned from recorded state only.\n\n"));
    }
    if let LiveStatus::Partial { unread } = &plan.live {
        head.push_str(&format!(
            "> [!WARNING]\n> Live state could not be read for: {}.\n\n",
            unread.join("; ")
        ));
    }
    head.push_str(&super::exposure::markdown(plan));
    let deletes: Vec<String> = plan
        .actions
        .iter()
        .filter(|action| action.kind.destroys())
        .map(|action| format!("`{}` ({})", action.address, action.kind.verb()))
        .collect();
    if !deletes.is_empty() {
        head.push_str(&format!(
            "> [!WARNING]\n> This plan destroys: {}.\n",
            deletes.join(", ")
        ));
        for action in plan.data_loss() {
            head.push_str(&format!(
                "> **Data loss:** `{}` is deleted with its data.\n",
                action.address
            ));
        }
        head.push('\n');
    }
    for warning in &plan.warnings {
        head.push_str(&format!("- warning: {}\n", escape(warning)));
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
            escape(&action.reason.to_string())
        );
        if head.len() + table.len() + row.len() + 400 > limit {
            rows_left_out += 1;
            continue;
        }
        table.push_str(&row);
    }
    if rows_left_out > 0 {
        table.push_str(&format!("\n_{rows_left_out} more actions left out to keep this comment under {} KB; run `stackctl show` on the saved plan for all of them._\n", limit / 1000));
    }
    let mut out = head + &table + "\n";
    let mut diffs_left_out = 0;
    for action in &plan.actions {
        let section = details(action);
        if out.len() + section.len() + 300 > limit {
            diffs_left_out += 1;
            continue;
        }
        out.push_str(&section);
    }
    if diffs_left_out > 0 {
        out.push_str(&format!(
            "\n_The diffs of {diffs_left_out} resources were left out to keep this comment under {} KB; the JSON plan has them all._\n",
            limit / 1000
        ));
    }
    out
}

fn details(action: &stackctl_provider::Action) -> String {
    let mut body = String::new();
    for change in &action.changes {
        for (name, line, forces) in expand(change) {
            let note = if forces { "  # forces replacement" } else { "" };
            match line {
                ChangeLine::Added(value) => body.push_str(&format!("+ {name} = {value}{note}\n")),
                ChangeLine::Removed(value) => body.push_str(&format!("- {name} = {value}{note}\n")),
                ChangeLine::Changed { before, after } => {
                    body.push_str(&format!("- {name} = {before}{note}\n+ {name} = {after}\n"))
                }
                ChangeLine::SensitiveChanged => {
                    body.push_str(&format!("! {name}: {SENSITIVE_CHANGED}{note}\n"))
                }
                ChangeLine::TextDiff(lines) => {
                    body.push_str(&format!("! {name}:{note}\n"));
                    for diff_line in lines {
                        match diff_line {
                            DiffLine::Same(text) => body.push_str(&format!("  {text}\n")),
                            DiffLine::Added(text) => body.push_str(&format!("+ {text}\n")),
                            DiffLine::Removed(text) => body.push_str(&format!("- {text}\n")),
                            DiffLine::Gap => body.push_str("  …\n"),
                        }
                    }
                }
            }
        }
    }
    if body.is_empty() && action.kind == ActionKind::Delete {
        body.push_str("- (the whole resource)\n");
    }
    // A fence longer than any backtick run inside keeps the block closed.
    let fence = "`".repeat(longest_backtick_run(&body).max(2) + 1);
    format!(
        "<details><summary><code>{}</code> {} — {}</summary>\n\n{fence}diff\n{body}{fence}\n\n</details>\n",
        action.address,
        action.kind.verb(),
        html_escape(&action.reason.to_string())
    )
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
