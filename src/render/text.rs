//! The terminal rendering: glyphs `+ ~ +/- -/+ - <=`, colour only when asked for. Per
//! resource, the attributes a reviewer reads come first and plumbing ones (see
//! [`super::PLUMBING_ATTRIBUTES`]) after them; the risks close the plan, where a terminal
//! leaves them on screen.

use stackctl_provider::{ActionKind, AttributeChange, Value};

use super::{expand, inline, reviewer_then_plumbing, ChangeLine, DiffLine, SENSITIVE};
use crate::plan::{LiveStatus, Plan, PlanMode};

struct Palette {
    enabled: bool,
}

impl Palette {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.enabled {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn for_kind(&self, kind: ActionKind, text: &str) -> String {
        let code = match kind {
            ActionKind::Create | ActionKind::Adopt => "32",
            ActionKind::Update => "33",
            ActionKind::ReplaceCreateBeforeDestroy | ActionKind::ReplaceDestroyBeforeCreate => "35",
            ActionKind::Delete => "31",
            ActionKind::Run => "36",
        };
        self.paint(code, text)
    }
}

pub fn render(plan: &Plan, color: bool) -> String {
    let palette = Palette { enabled: color };
    let mut out = String::new();
    match &plan.live {
        LiveStatus::Read => {}
        LiveStatus::NotRead { reason } => out.push_str(&format!(
            "{} live state was not read ({reason}); this plan compares stack.toml with recorded state only.\n\n",
            palette.paint("1", "note:")
        )),
        LiveStatus::Partial { unread } => out.push_str(&format!(
            "{} live state could not be read for: {}; those resources were planned from recorded state.\n\n",
            palette.paint("33", "warning:"),
            unread.join("; ")
        )),
    }
    out.push_str(&super::exposure::text(plan, color));
    for warning in &plan.warnings {
        out.push_str(&format!("{} {warning}\n", palette.paint("33", "warning:")));
    }
    if !plan.warnings.is_empty() {
        out.push('\n');
    }
    if plan.actions.is_empty() {
        out.push_str(&match plan.mode {
            PlanMode::Drift => format!(
                "No drift. Stack `{}` is as the last apply left it.\n",
                plan.stack
            ),
            _ => format!(
                "No changes. Stack `{}` matches stack.toml ({} resources).\n",
                plan.stack,
                plan.unchanged.len()
            ),
        });
        return out;
    }
    out.push_str(&match plan.mode {
        PlanMode::Apply => format!("Stack `{}`: stackctl will perform these actions, in this order:\n\n", plan.stack),
        PlanMode::Destroy => format!("Stack `{}`: stackctl will destroy everything it created, in this order:\n\n", plan.stack),
        PlanMode::Drift => format!("Stack `{}` drifted: these resources changed outside stackctl (apply repairs them):\n\n", plan.stack),
    });
    for action in &plan.actions {
        let glyph = palette.for_kind(action.kind, &format!("{:>3}", action.kind.glyph()));
        out.push_str(&format!(
            "{glyph} {}  {} ({})\n",
            palette.paint("1", &action.address.to_string()),
            action.kind.verb(),
            action.reason
        ));
        if !action.depends_on.is_empty() && action.kind != ActionKind::Delete {
            out.push_str(&format!(
                "      after: {}\n",
                action
                    .depends_on
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let (reviewer, plumbing) = reviewer_then_plumbing(&action.changes);
        let ordered: Vec<&AttributeChange> = reviewer.into_iter().chain(plumbing).collect();
        match action.kind {
            ActionKind::Create | ActionKind::Run
                if action.changes.iter().all(|change| change.before.is_none()) =>
            {
                let width = action
                    .changes
                    .iter()
                    .map(|change| change.attribute.len())
                    .max()
                    .unwrap_or(0);
                for change in ordered {
                    let value = change
                        .after
                        .as_ref()
                        .map_or(String::new(), |value| shown(value, change.sensitive));
                    if let Some(Value::Text(text)) = &change.after {
                        if text.contains('\n') && !change.sensitive {
                            out.push_str(&format!(
                                "      {} {} = <<EOT\n",
                                palette.paint("32", "+"),
                                change.attribute
                            ));
                            for line in text.lines() {
                                out.push_str(&format!("          {line}\n"));
                            }
                            out.push_str("          EOT\n");
                            continue;
                        }
                    }
                    out.push_str(&format!(
                        "      {} {:width$} = {value}\n",
                        palette.paint("32", "+"),
                        change.attribute
                    ));
                }
            }
            ActionKind::Delete => {
                // What the live resource reports that state never recorded (a swarm
                // node's `services`: what moves when it goes); the rest is the whole
                // resource, which the verb already says.
                let recorded = action.prior.as_ref().map(|prior| &prior.attributes);
                for change in ordered {
                    if recorded.is_some_and(|recorded| recorded.contains_key(&change.attribute)) {
                        continue;
                    }
                    if let Some(value) = &change.before {
                        out.push_str(&format!(
                            "      {} {} = {}\n",
                            palette.paint("31", "-"),
                            change.attribute,
                            shown(value, change.sensitive)
                        ));
                    }
                }
            }
            _ => {
                // "forces replacement" means something only for a resource that stays.
                let replacing = action.kind == ActionKind::Update || action.kind.is_replace();
                for change in ordered {
                    for (name, line, forces) in expand(change) {
                        let note = if forces && replacing {
                            palette.paint("31", "  # forces replacement")
                        } else {
                            String::new()
                        };
                        match line {
                            ChangeLine::Added(value) => out.push_str(&format!(
                                "      {} {name} = {value}{note}\n",
                                palette.paint("32", "+")
                            )),
                            ChangeLine::Removed(value) => out.push_str(&format!(
                                "      {} {name} = {value}{note}\n",
                                palette.paint("31", "-")
                            )),
                            ChangeLine::Changed { before, after } => out.push_str(&format!(
                                "      {} {name}: {before} → {after}{note}\n",
                                palette.paint("33", "~")
                            )),
                            ChangeLine::SensitiveChanged => out.push_str(&format!(
                                "      {} {name}: {}{note}\n",
                                palette.paint("33", "~"),
                                super::SENSITIVE_CHANGED
                            )),
                            ChangeLine::AddedText(lines) => text_block(
                                &mut out,
                                &palette.paint("32", "+"),
                                &name,
                                &note,
                                &lines,
                            ),
                            ChangeLine::RemovedText(lines) => text_block(
                                &mut out,
                                &palette.paint("31", "-"),
                                &name,
                                &note,
                                &lines,
                            ),
                            ChangeLine::TextDiff(lines) => {
                                out.push_str(&format!(
                                    "      {} {name}:{note}\n",
                                    palette.paint("33", "~")
                                ));
                                for diff_line in lines {
                                    let rendered = match diff_line {
                                        DiffLine::Same(text) => format!("          {text}"),
                                        DiffLine::Added(text) => {
                                            palette.paint("32", &format!("        + {text}"))
                                        }
                                        DiffLine::Removed(text) => {
                                            palette.paint("31", &format!("        - {text}"))
                                        }
                                        DiffLine::Gap => "          …".to_string(),
                                    };
                                    out.push_str(rendered.trim_end());
                                    out.push('\n');
                                }
                            }
                        }
                    }
                }
            }
        }
        out.push('\n');
    }
    let summary = plan.summary();
    if plan.mode == PlanMode::Drift {
        let vanished = plan
            .actions
            .iter()
            .filter(|action| action.reason == stackctl_provider::Reason::Vanished)
            .count();
        out.push_str(&format!(
            "Drift: {} changed, {vanished} vanished; {} unchanged. `stackctl apply` repairs it, `stackctl drift --accept` records it.\n",
            plan.actions.len() - vanished,
            summary.unchanged
        ));
        return out;
    }
    out.push_str(&format!(
        "Plan: {} to create, {} to update, {} to replace, {} to delete, {} to adopt{}; {} unchanged.\n",
        summary.create,
        summary.update,
        summary.replace,
        summary.delete,
        summary.adopt,
        super::release_tasks_to_run(summary.run),
        summary.unchanged
    ));
    for warning in &plan.risks {
        out.push_str(&format!(
            "{} ({}): `{}` {}\n",
            palette.paint("31", "warning"),
            warning.kind.label(),
            warning.address,
            warning.why
        ));
    }
    out
}

fn shown(value: &Value, sensitive: bool) -> String {
    // `inline` already masks secrets inside maps and lists; an attribute the schema calls
    // sensitive is masked whole.
    if sensitive && !value.contains_secret() && !matches!(value, Value::Unknown(_)) {
        SENSITIVE.to_string()
    } else {
        inline(value)
    }
}

/// A multi-line value created or deleted, as a heredoc-style block of its lines.
fn text_block(out: &mut String, glyph: &str, name: &str, note: &str, lines: &[String]) {
    out.push_str(&format!("      {glyph} {name} = <<EOT{note}\n"));
    for text in lines {
        out.push_str(format!("          {text}").trim_end());
        out.push('\n');
    }
    out.push_str("          EOT\n");
}
