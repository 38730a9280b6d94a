//! `stackctl ps`: what runs now, as a table or as JSON.

use std::time::{Duration, SystemTime};

use crate::cli::args::ReportFormat;
use crate::cli::providers::ProviderOptions;
use crate::cli::report::{CliError, Outcome};
use crate::cli::settings::Settings;
use crate::session::{Access, StackStatus};

use super::{open_session, print};

pub async fn run(settings: &Settings, format: ReportFormat) -> Result<Outcome, CliError> {
    let session = open_session(settings, &ProviderOptions::default(), Access::Read, None)?;
    let status = session.status().await?;
    for unread in &status.unread {
        eprintln!("warning: not read, so not shown: {unread}");
    }
    match format {
        ReportFormat::Json => {
            let mut text = serde_json::to_string_pretty(&status).unwrap_or_default();
            text.push('\n');
            print(&text);
        }
        ReportFormat::Text => print(&render(&status, SystemTime::now())),
    }
    if status.unread.is_empty() {
        Ok(Outcome::Success)
    } else {
        Ok(Outcome::Partial)
    }
}

/// One line per service (a second and further lines for more routes), aligned.
pub fn render(status: &StackStatus, now: SystemTime) -> String {
    let header = [
        "SERVICE",
        "CONTAINER",
        "IMAGE",
        "STATE",
        "HEALTH",
        "UPTIME",
        "RESTARTS",
        "ROUTES",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.map(str::to_string).to_vec()];
    for service in &status.services {
        let none = || "-".to_string();
        let uptime = match (&service.started_at, service.state.as_str()) {
            (Some(started), "running") => uptime(started, now).unwrap_or_else(none),
            _ => none(),
        };
        let mut routes = service
            .routes
            .iter()
            .map(|route| format!("{}: {}", route.route, route.rule));
        rows.push(vec![
            service.service.clone(),
            service.container.clone().unwrap_or_else(none),
            service.image.clone().unwrap_or_else(none),
            service.state.clone(),
            service.health.clone().unwrap_or_else(none),
            uptime,
            service
                .restart_count
                .map_or_else(none, |count| count.to_string()),
            routes.next().unwrap_or_else(none),
        ]);
        for route in routes {
            let mut row = vec![String::new(); 7];
            row.push(route);
            rows.push(row);
        }
    }
    super::table::render(&rows)
}

/// How long since `started` (RFC 3339), in the two largest units: `3d 4h`, `5m 12s`.
fn uptime(started: &str, now: SystemTime) -> Option<String> {
    let started = humantime::parse_rfc3339(started).ok()?;
    let seconds = now
        .duration_since(started)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let units = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    let mut parts = Vec::new();
    let mut rest = seconds;
    for (name, size) in units {
        if rest >= size || (parts.is_empty() && size == 1) {
            parts.push(format!("{}{name}", rest / size));
            rest %= size;
        }
        if parts.len() == 2 {
            break;
        }
    }
    // Two largest units, counted from the first non-zero one.
    Some(parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{ServiceStatus, StackStatus};

    #[test]
    fn uptime_shows_the_two_largest_units() {
        let now = humantime::parse_rfc3339("2026-11-30T05:00:00Z").unwrap();
        assert_eq!(
            uptime("2026-11-30T04:59:48.5Z", now).as_deref(),
            Some("11s")
        );
        assert_eq!(
            uptime("2026-11-30T04:54:48Z", now).as_deref(),
            Some("5m 12s")
        );
        assert_eq!(
            uptime("2026-11-27T01:00:00Z", now).as_deref(),
            Some("3d 4h")
        );
        assert_eq!(uptime("not a time", now), None);
    }

    #[test]
    fn the_table_has_a_line_per_service_and_per_further_route() {
        let status = StackStatus {
            format_version: 1,
            stack: "shop".into(),
            services: vec![ServiceStatus {
                service: "web".into(),
                container: Some("shop-web".into()),
                container_id: Some("abc".into()),
                image: Some("shop/web:1".into()),
                state: "running".into(),
                health: Some("healthy".into()),
                started_at: Some("2026-11-30T04:58:00Z".into()),
                restart_count: Some(0),
                routes: vec![
                    crate::session::RouteStatus {
                        route: "site".into(),
                        rule: "Host(`a.test`)".into(),
                    },
                    crate::session::RouteStatus {
                        route: "www".into(),
                        rule: "Host(`www.a.test`)".into(),
                    },
                ],
            }],
            unread: Vec::new(),
        };
        let now = humantime::parse_rfc3339("2026-11-30T05:00:00Z").unwrap();
        let text = render(&status, now);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[..2],
            [
                "SERVICE  CONTAINER  IMAGE       STATE    HEALTH   UPTIME  RESTARTS  ROUTES",
                "web      shop-web   shop/web:1  running  healthy  2m      0         site: Host(`a.test`)",
            ]
        );
        assert_eq!(lines[2].trim_start(), "www: Host(`www.a.test`)");
        assert_eq!(lines[2].find("www"), lines[1].find("site"), "routes align");
    }
}
