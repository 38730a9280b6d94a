//! The exposure section, the first thing a plan shows after the note on live state (which
//! says how far to trust everything below it): one line when the public surface is unchanged, otherwise one `+`/`-`/`~` line per change saying whether it widens or
//! narrows the surface. Markdown puts widenings under a `> [!CAUTION]` and lists the
//! surface after the plan in a collapsed block. Drift reports and plans without actions
//! have no section.

use crate::plan::exposure::reach::ServiceReach;
use crate::plan::exposure::surface::Surface;
use crate::plan::exposure::{describe::code, Direction, Exposure, ExposureChange};
use crate::plan::Plan;

/// The section for the terminal, ending with a blank line; empty when there is none.
pub fn text(plan: &Plan, color: bool) -> String {
    let Some(exposure) = shown(plan) else {
        return String::new();
    };
    // Who reaches what, when the plan changes it (a first apply, a service that moves
    // to another network, a network made internal).
    let reach = if exposure.before.reach == exposure.after.reach {
        String::new()
    } else {
        reach_text(&exposure.after)
    };
    if exposure.is_unchanged() {
        return format!("Exposure: unchanged.\n{reach}\n");
    }
    let paint = |code: &str, text: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    let mut out = format!("Exposure: {}:\n", headline(exposure));
    for change in &exposure.changes {
        let (colour, word) = match change.direction {
            Direction::Widens => ("31", "widens: "),
            Direction::Narrows => ("32", "narrows:"),
        };
        out.push_str(&format!(
            "  {} {} {}\n",
            paint(colour, change.change.glyph()),
            paint(colour, word),
            change.message
        ));
    }
    out.push_str(&reach);
    out.push('\n');
    out
}

/// What each service can reach after the plan, one line each; empty without services.
fn reach_text(surface: &Surface) -> String {
    if surface.reach.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "  reach after this plan (edge: the edge forwards to it; internet: a way out):\n",
    );
    let width = surface
        .reach
        .iter()
        .map(|reach| reach.service.len())
        .max()
        .unwrap_or(0);
    for reach in &surface.reach {
        out.push_str(&format!(
            "    {:width$}  {}\n",
            reach.service,
            reach_line(reach)
        ));
    }
    out
}

fn reach_line(reach: &ServiceReach) -> String {
    let yes_no = |flag: bool| if flag { "yes" } else { "no" };
    let networks: Vec<String> = reach
        .networks
        .iter()
        .map(|network| {
            if network.internal {
                format!("{} (internal)", network.name)
            } else {
                network.name.clone()
            }
        })
        .collect();
    let edge = if reach.service == "edge" {
        "-".to_string()
    } else {
        yes_no(reach.edge).to_string()
    };
    let peers = if reach.peers.is_empty() {
        "none".to_string()
    } else {
        reach.peers.join(", ")
    };
    format!(
        "edge {edge}, internet {}, services: {peers}; networks: {}",
        yes_no(reach.internet),
        if networks.is_empty() {
            "none".to_string()
        } else {
            networks.join(", ")
        }
    )
}

/// The section for a pull-request comment, ending with a blank line; empty when there is
/// none.
pub fn markdown(plan: &Plan) -> String {
    let Some(exposure) = shown(plan) else {
        return String::new();
    };
    if exposure.is_unchanged() {
        return "**Exposure:** unchanged.\n\n".to_string();
    }
    let mut out = String::new();
    if exposure.widens() {
        out.push_str(&format!(
            "> [!CAUTION]\n> **Exposure widens:** {}.\n>\n",
            headline(exposure)
        ));
        for change in exposure.changes.iter().take(super::markdown::MOST_LISTED) {
            out.push_str(&format!("> {}\n", markdown_line(change)));
        }
        out.push_str(&more_changes(exposure, "> "));
    } else {
        out.push_str(&format!(
            "**Exposure narrows:** {}.\n\n",
            headline(exposure)
        ));
        for change in exposure.changes.iter().take(super::markdown::MOST_LISTED) {
            out.push_str(&format!("{}\n", markdown_line(change)));
        }
        out.push_str(&more_changes(exposure, ""));
    }
    out.push('\n');
    let surface = surface_details(&exposure.after);
    // A very large surface (hundreds of routes) would crowd out the plan itself.
    if surface.len() <= SURFACE_BYTES {
        out.push_str(&surface);
    } else {
        out.push_str("The whole public surface after this plan is in `stackctl plan --format json` (`exposure.after`).\n\n");
    }
    out
}

/// The most bytes the "public surface after this plan" block may take in a comment.
const SURFACE_BYTES: usize = 12 * 1024;

/// "…and 12 more changes", when the list was cut.
fn more_changes(exposure: &Exposure, prefix: &str) -> String {
    let more = exposure
        .changes
        .len()
        .saturating_sub(super::markdown::MOST_LISTED);
    if more == 0 {
        return String::new();
    }
    format!("{prefix}- …and {more} more changes (every one in `stackctl plan --format json`)\n")
}

/// Drift reports have no exposure; a plan with nothing to do says "No changes" instead.
fn shown(plan: &Plan) -> Option<&Exposure> {
    if plan.actions.is_empty() {
        return None;
    }
    plan.exposure.as_ref()
}

/// "2 changes widen the public surface, 1 narrows it".
fn headline(exposure: &Exposure) -> String {
    let widen = exposure.count(Direction::Widens);
    let narrow = exposure.count(Direction::Narrows);
    let changes = |count: usize| {
        if count == 1 {
            "1 change".to_string()
        } else {
            format!("{count} changes")
        }
    };
    let verb = |count: usize, singular: &'static str, plural: &'static str| {
        if count == 1 {
            singular
        } else {
            plural
        }
    };
    match (widen, narrow) {
        (0, narrow) => format!(
            "{} {} the public surface",
            changes(narrow),
            verb(narrow, "narrows", "narrow")
        ),
        (widen, 0) => format!(
            "{} {} the public surface",
            changes(widen),
            verb(widen, "widens", "widen")
        ),
        (widen, narrow) => format!(
            "{} {} the public surface, {narrow} {} it",
            changes(widen),
            verb(widen, "widens", "widen"),
            verb(narrow, "narrows", "narrow")
        ),
    }
}

fn markdown_line(change: &ExposureChange) -> String {
    let word = match change.direction {
        Direction::Widens => "**widens**",
        Direction::Narrows => "narrows",
    };
    format!(
        "- `{}` {word}: {}",
        change.change.glyph(),
        escape(&change.message)
    )
}

/// The whole surface after the plan, collapsed: for the reviewer who wants to check what
/// answers, not only what changed.
fn surface_details(surface: &Surface) -> String {
    let mut out = String::from("<details><summary>Public surface after this plan</summary>\n\n");
    if surface.published_ports.is_empty() {
        out.push_str("- Published ports: none\n");
    } else {
        out.push_str("- Published ports:\n");
        for port in &surface.published_ports {
            out.push_str(&format!("  - service {}: {port}\n", code(&port.service)));
        }
    }
    if !surface.firewall_rules.is_empty() {
        out.push_str("- Firewall lets in:\n");
        for rule in &surface.firewall_rules {
            out.push_str(&format!(
                "  - firewall {}: {} {} from {}\n",
                code(&rule.firewall),
                rule.protocol,
                rule.ports,
                rule.sources.join(", ")
            ));
        }
    }
    if !surface.entrypoints.is_empty() {
        out.push_str(&format!(
            "- Entry points: {}\n",
            surface
                .entrypoints
                .iter()
                .map(|entrypoint| format!("{} (port {})", code(&entrypoint.name), entrypoint.port))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out.push_str(&format!(
        "- Dashboard: {}\n",
        if surface.dashboard { "on" } else { "off" }
    ));
    match &surface.certificates {
        Some(certificates) => out.push_str(&format!(
            "- Certificates: {}\n",
            escape(&certificates.to_string())
        )),
        None => out.push_str("- Certificates: none\n"),
    }
    if surface.routes.is_empty() {
        out.push_str("- Routes: none\n");
    } else {
        out.push_str("- Routes:\n");
        for route in &surface.routes {
            out.push_str(&format!(
                "  - {}: {}\n",
                code(&route.name),
                escape(&route.summary())
            ));
        }
    }
    out.push_str(&format!(
        "- Reachable through the edge: {}\n",
        if surface.reachable_services.is_empty() {
            "nothing".to_string()
        } else {
            crate::plan::exposure::describe::names(&surface.reachable_services)
        }
    ));
    if !surface.reach.is_empty() {
        out.push_str("- Reach (edge: the edge forwards to it; internet: a way out):\n");
        for reach in &surface.reach {
            out.push_str(&format!(
                "  - {}: {}\n",
                code(&reach.service),
                escape(&reach_line(reach))
            ));
        }
    }
    out.push_str("\n</details>\n\n");
    out
}

/// Keeps a message on its line (a list item ends at a line break).
fn escape(text: &str) -> String {
    text.replace('\n', " ")
}
