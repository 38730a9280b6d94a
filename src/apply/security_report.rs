//! The run's security report (`security.json` and `security.txt`): per container its
//! user, capabilities, privileges, limits, read-only root, networks and published ports
//! as the target's daemon shows them; the edge's exposure (every published port); and
//! the findings of the policy `stackctl validate` enforces, checked against those live
//! values. The seed's audit checklist, produced by the tool.
//!
//! On a swarm, the stack's swarm services are a section of their own (`swarm_services`):
//! the same facts, read from the service's spec on the manager (every task's container
//! runs it, on whichever node), each running task with its node, and the same policy.
//!
//! Pure: the facts come from the providers (`Provider::security_facts`) and the edge's
//! TLS from the probe `verify` runs (`EdgeTlsReport`). The document is one JSON object
//! with a section per subject (`containers`, `swarm_services`, `networks`, `edge`,
//! `tls`, `findings`).

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};
use stackctl_provider::EdgeTlsReport;

/// The report, ready to write.
#[derive(Clone, Debug)]
pub struct SecurityReport {
    pub document: Json,
    pub text: String,
}

/// Version of the document's shape.
pub const SECURITY_REPORT_VERSION: u32 = 1;

/// `facts`: each provider's `{"containers": [...], "networks": [...]}`, and on a swarm
/// `"swarm_services": [...]`. `reasons`: a
/// resource's address (`service.edge`) → why it relaxes the hardened default, from the
/// stack, shown beside what it explains. `tls`: the edge's TLS as `verify` probed it in
/// this run, `None` when no probe ran (checks skipped, no edge, the apply failed).
pub fn build(
    stack: &str,
    facts: &[Json],
    reasons: &BTreeMap<String, String>,
    tls: Option<&EdgeTlsReport>,
) -> SecurityReport {
    let mut containers: Vec<Json> = Vec::new();
    let mut swarm_services: Vec<Json> = Vec::new();
    let mut networks: Vec<Json> = Vec::new();
    for provider in facts {
        swarm_services.extend(
            provider["swarm_services"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
        containers.extend(
            provider["containers"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
        networks.extend(provider["networks"].as_array().cloned().unwrap_or_default());
    }
    for container in containers.iter_mut().chain(swarm_services.iter_mut()) {
        if let Some(reason) = container["resource"]
            .as_str()
            .and_then(|address| reasons.get(address))
        {
            container["reason"] = json!(reason);
        }
    }
    let mut published = Vec::new();
    for container in containers.iter().chain(&swarm_services) {
        for port in container["published_ports"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            published.push(json!({ "container": container["name"], "port": port }));
        }
    }
    let mut findings: Vec<Json> = containers
        .iter()
        .chain(&swarm_services)
        .flat_map(findings_of)
        .collect();
    if let Some(tls) = tls {
        findings.extend(tls_findings(tls));
    }
    let document = json!({
        "format_version": SECURITY_REPORT_VERSION,
        "stack": stack,
        "read_from": read_from(&swarm_services),
        "containers": containers,
        "swarm_services": swarm_services,
        "networks": networks,
        "edge": { "published_ports": published },
        "tls": tls.map(|tls| serde_json::to_value(tls).unwrap_or(Json::Null)),
        "findings": findings,
    });
    let text = render_text(&document);
    SecurityReport { document, text }
}

/// Where the facts come from, as the report says it.
fn read_from(swarm_services: &[Json]) -> &'static str {
    if swarm_services.is_empty() {
        "the target's Docker daemon (container and network inspect), not stack.toml"
    } else {
        "the target's Docker daemon (container and network inspect; on the swarm's first manager, each swarm service's spec and tasks), not stack.toml"
    }
}

/// The probe's failures (a version below the minimum accepted, HSTS missing or short, no
/// handshake at all) as findings, so the checklist has one place to look.
fn tls_findings(tls: &EdgeTlsReport) -> Vec<Json> {
    tls.failures
        .iter()
        .map(|failure| {
            json!({
                "severity": "error",
                "code": "tls-probe",
                "container": "",
                "message": format!("the edge at {}: {failure}", tls.endpoint),
            })
        })
        .collect()
}

/// The policy, checked against what a container runs with. A relaxation with a reason
/// in the stack is still listed (it is an exception, not a pass), with that reason.
fn findings_of(container: &Json) -> Vec<Json> {
    let name = container["name"].as_str().unwrap_or("");
    let is_edge = container["resource"].as_str() == Some("service.edge");
    let mut found = Vec::new();
    let mut add = |severity: &str, code: &str, message: String| {
        let mut finding = json!({
            "severity": severity,
            "code": code,
            "container": name,
            "message": message,
        });
        if let Some(reason) = container["reason"].as_str() {
            finding["reason"] = json!(reason);
        }
        found.push(finding);
    };
    if container["runs_as_root"] == true {
        add(
            "warning",
            "policy-root-user",
            format!("`{name}` runs as root"),
        );
    } else if container["runs_as_root"].is_null() && container["kind"] == "swarm_service" {
        // The spec sets no user and the image's USER could not be read: neither root
        // nor not, said as such.
        add(
            "warning",
            "policy-user-unknown",
            format!("`{name}` runs as its image's USER, which could not be read on the first manager: it may be root (set `user` in stack.toml to know)"),
        );
    }
    if container["privileged"] == true {
        add(
            "warning",
            "policy-privileged",
            format!("`{name}` runs privileged"),
        );
    }
    if container["no_new_privileges"] != true {
        add(
            "warning",
            "policy-new-privileges",
            if container["kind"] == "swarm_service" {
                format!("`{name}` may gain privileges through setuid binaries (no `no-new-privileges`: Engine API 1.41 has no such setting for a swarm service)")
            } else {
                format!(
                    "`{name}` may gain privileges through setuid binaries (no `no-new-privileges`)"
                )
            },
        );
    }
    let dropped_all = container["capabilities"]["dropped"]
        .as_array()
        .is_some_and(|names| names.iter().any(|name| name == "ALL"));
    if !dropped_all {
        add(
            "warning",
            "policy-capabilities",
            format!("`{name}` keeps Docker's default capabilities (not all dropped)"),
        );
    }
    let added: Vec<&str> = container["capabilities"]["added"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(Json::as_str)
        .collect();
    if !added.is_empty() {
        add(
            "note",
            "capabilities-added",
            format!("`{name}` has {}", added.join(", ")),
        );
    }
    if container["memory_bytes"].is_null() {
        add(
            "warning",
            "policy-no-memory-limit",
            format!("`{name}` has no memory limit"),
        );
    }
    if container["cpus"].is_null() && !is_edge {
        add(
            "warning",
            "policy-no-cpu-limit",
            format!("`{name}` has no CPU limit"),
        );
    }
    if container["pids_limit"].is_null() {
        add(
            "warning",
            "policy-no-pids-limit",
            format!("`{name}` has no process limit"),
        );
    }
    let publishes = container["published_ports"]
        .as_array()
        .is_some_and(|ports| !ports.is_empty());
    if publishes && !is_edge {
        add(
            "error",
            "policy-published-port",
            format!("`{name}` publishes host ports; only the edge may"),
        );
    }
    found
}

/// `security.txt`: the same facts for people, one block per container.
fn render_text(document: &Json) -> String {
    let mut out = format!(
        "Security of stack `{}`, read from {}.\n\nContainers:\n",
        document["stack"].as_str().unwrap_or(""),
        document["read_from"].as_str().unwrap_or("")
    );
    for container in document["containers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        out.push_str(&subject_text(container));
    }
    let swarm_services = document["swarm_services"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if !swarm_services.is_empty() {
        out.push_str("\nSwarm services (every task runs the service's spec, on its node):\n");
    }
    for service in swarm_services {
        out.push_str(&subject_text(service));
        let tasks: Vec<String> = service["tasks"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .map(|task| {
                format!(
                    "slot {} on {} ({})",
                    task["slot"],
                    task["node"].as_str().unwrap_or(""),
                    task["state"].as_str().unwrap_or("")
                )
            })
            .collect();
        out.push_str(&format!(
            "    replicas {}; tasks: {}\n",
            service["replicas"],
            or_none(tasks)
        ));
    }
    let edge: Vec<String> = document["edge"]["published_ports"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|entry| {
            format!(
                "{} ({})",
                entry["port"].as_str().unwrap_or(""),
                entry["container"].as_str().unwrap_or("")
            )
        })
        .collect();
    out.push_str(&format!("\nPublished on the host: {}\n", or_none(edge)));
    out.push_str(&tls_text(&document["tls"]));
    out.push_str("\nFindings:\n");
    let findings = document["findings"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if findings.is_empty() {
        out.push_str("  none\n");
    }
    for finding in findings {
        out.push_str(&format!(
            "  {}: {} [{}]\n",
            finding["severity"].as_str().unwrap_or(""),
            finding["message"].as_str().unwrap_or(""),
            finding["code"].as_str().unwrap_or("")
        ));
        if let Some(reason) = finding["reason"].as_str() {
            out.push_str(&format!("    reason given: {reason}\n"));
        }
    }
    out
}

/// One container's (or swarm service's) block of `security.txt`.
fn subject_text(container: &Json) -> String {
    let limit = |field: &str| match &container[field] {
        Json::Null => "none".to_string(),
        value => value.to_string(),
    };
    let networks: Vec<String> = container["networks"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|network| {
            let name = network["name"].as_str().unwrap_or("");
            if network["internal"] == true {
                format!("{name} (internal)")
            } else {
                name.to_string()
            }
        })
        .collect();
    let mut out = format!(
        "  {}\n    user {}; capabilities dropped: {}, added: {}; no-new-privileges {}; privileged {}\n    read-only root {}; processes {}; memory {} bytes; cpus {}\n    networks: {}; published ports: {}\n",
        container["name"].as_str().unwrap_or(""),
        container["user"].as_str().unwrap_or(""),
        or_none(text_list(&container["capabilities"]["dropped"])),
        or_none(text_list(&container["capabilities"]["added"])),
        yes_no(&container["no_new_privileges"]),
        yes_no(&container["privileged"]),
        yes_no(&container["read_only_root"]),
        limit("pids_limit"),
        limit("memory_bytes"),
        limit("cpus"),
        or_none(networks),
        or_none(text_list(&container["published_ports"])),
    );
    if let Some(reason) = container["reason"].as_str() {
        out.push_str(&format!("    why it differs from the default: {reason}\n"));
    }
    out
}

fn text_list(json: &Json) -> Vec<String> {
    json.as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|item| {
            item.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| item.to_string())
        })
        .collect()
}

fn or_none(items: Vec<String>) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

/// The TLS section for people: what was refused, what a client gets, HSTS.
fn tls_text(tls: &Json) -> String {
    let Ok(tls) = serde_json::from_value::<EdgeTlsReport>(tls.clone()) else {
        return "\nTLS: not probed in this run (checks skipped, no edge, or the apply did not finish).\n"
            .to_string();
    };
    let mut out = format!(
        "\nTLS at {} ({}), minimum {}: {}\n",
        tls.endpoint,
        tls.server_name,
        tls.minimum_version,
        if tls.passed { "passed" } else { "FAILED" }
    );
    for probe in &tls.below_minimum {
        out.push_str(&format!(
            "  {}: {}\n",
            probe.version,
            if probe.refused { "refused" } else { "ACCEPTED" }
        ));
    }
    let negotiated = &tls.negotiated;
    let unknown = || "unknown".to_string();
    out.push_str(&format!(
        "  a current client gets {} with {}, certificate issued by {}\n",
        negotiated.version.clone().unwrap_or_else(unknown),
        negotiated.cipher_suite.clone().unwrap_or_else(unknown),
        negotiated
            .certificate_issuer
            .clone()
            .unwrap_or_else(unknown)
    ));
    out.push_str(&format!(
        "  HSTS: {}\n",
        tls.hsts.header.as_deref().unwrap_or("absent")
    ));
    out
}

fn yes_no(value: &Json) -> &'static str {
    if value == &Json::Bool(true) {
        "yes"
    } else {
        "no"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_come_from_the_live_values() {
        let facts = json!({
            "containers": [
                {"name": "shop-api", "resource": "service.api", "user": "10001", "runs_as_root": false,
                 "capabilities": {"dropped": ["ALL"], "added": []}, "no_new_privileges": true,
                 "privileged": false, "read_only_root": false, "pids_limit": 256,
                 "memory_bytes": 1024, "cpus": 1.0, "networks": [], "published_ports": []},
                {"name": "shop-edge", "resource": "service.edge", "user": "root (the image's default)", "runs_as_root": true,
                 "capabilities": {"dropped": ["ALL"], "added": ["NET_BIND_SERVICE"]}, "no_new_privileges": true,
                 "privileged": false, "read_only_root": false, "pids_limit": 256,
                 "memory_bytes": null, "cpus": null, "networks": [], "published_ports": ["0.0.0.0:443->443/tcp"]},
                {"name": "shop-db", "resource": "service.db", "user": "", "runs_as_root": true,
                 "capabilities": {"dropped": [], "added": []}, "no_new_privileges": false,
                 "privileged": true, "read_only_root": false, "pids_limit": null,
                 "memory_bytes": null, "cpus": null, "networks": [], "published_ports": ["0.0.0.0:5432->5432/tcp"]}
            ],
            "networks": []
        });
        let reasons = BTreeMap::from([("service.edge".to_string(), "binds 443".to_string())]);
        let report = build("shop", &[facts], &reasons, None);
        let codes = |container: &str| -> Vec<String> {
            report.document["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|finding| finding["container"] == container)
                .map(|finding| finding["code"].as_str().unwrap().to_string())
                .collect()
        };
        assert!(codes("shop-api").is_empty());
        assert_eq!(
            codes("shop-edge"),
            vec![
                "policy-root-user",
                "capabilities-added",
                "policy-no-memory-limit"
            ]
        );
        assert_eq!(
            codes("shop-db"),
            vec![
                "policy-root-user",
                "policy-privileged",
                "policy-new-privileges",
                "policy-capabilities",
                "policy-no-memory-limit",
                "policy-no-cpu-limit",
                "policy-no-pids-limit",
                "policy-published-port"
            ]
        );
        assert_eq!(report.document["containers"][1]["reason"], "binds 443");
        assert_eq!(
            report.document["edge"]["published_ports"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert!(
            report
                .text
                .contains("why it differs from the default: binds 443"),
            "{}",
            report.text
        );
        assert!(
            report.text.contains("0.0.0.0:443->443/tcp (shop-edge)"),
            "{}",
            report.text
        );
    }

    #[test]
    fn swarm_services_are_a_section_with_their_tasks_and_the_same_policy() {
        let facts = json!({
            "containers": [],
            "networks": [],
            "swarm_services": [
                {"kind": "swarm_service", "name": "shop-web", "resource": "swarm_service.web",
                 "user": "10001", "runs_as_root": false,
                 "capabilities": {"dropped": ["ALL"], "added": []}, "no_new_privileges": false,
                 "privileged": false, "read_only_root": true, "pids_limit": 256,
                 "memory_bytes": null, "cpus": 0.5,
                 "networks": [{"name": "shop_edge", "internal": false}],
                 "published_ports": ["host 8080->80/tcp"], "replicas": 2,
                 "tasks": [
                     {"id": "t1", "slot": 1, "node": "web-2", "state": "running", "container": "c1"},
                     {"id": "t2", "slot": 2, "node": "web-3", "state": "running", "container": "c2"}
                 ]}
            ]
        });
        let reasons = BTreeMap::from([(
            "swarm_service.web".to_string(),
            "serves the admin port".to_string(),
        )]);
        let report = build("shop", &[facts], &reasons, None);
        let services = report.document["swarm_services"].as_array().unwrap();
        assert_eq!(services.len(), 1);
        assert_eq!(services[0]["tasks"][1]["node"], "web-3");
        assert_eq!(services[0]["reason"], "serves the admin port");
        let codes: Vec<&str> = report.document["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|finding| finding["container"] == "shop-web")
            .map(|finding| finding["code"].as_str().unwrap())
            .collect();
        assert_eq!(
            codes,
            [
                "policy-new-privileges",
                "policy-no-memory-limit",
                "policy-published-port"
            ]
        );
        assert!(
            report.document["read_from"]
                .as_str()
                .unwrap()
                .contains("swarm service's spec and tasks"),
            "{}",
            report.document["read_from"]
        );
        for expected in [
            "Swarm services (every task runs the service's spec, on its node):\n  shop-web\n",
            "read-only root yes; processes 256; memory none bytes; cpus 0.5",
            "replicas 2; tasks: slot 1 on web-2 (running), slot 2 on web-3 (running)",
            "host 8080->80/tcp (shop-web)",
            "Engine API 1.41 has no such setting for a swarm service",
        ] {
            assert!(
                report.text.contains(expected),
                "{expected}\n{}",
                report.text
            );
        }
    }

    #[test]
    fn a_swarm_service_whose_user_is_unknown_is_said_so_not_called_root() {
        let service = |name: &str, user: &str, runs_as_root: Json| {
            json!({"kind": "swarm_service", "name": name, "resource": format!("swarm_service.{name}"),
                   "user": user, "runs_as_root": runs_as_root,
                   "capabilities": {"dropped": ["ALL"], "added": []}, "no_new_privileges": false,
                   "privileged": false, "read_only_root": true, "pids_limit": 256,
                   "memory_bytes": 268435456, "cpus": 0.5, "networks": [],
                   "published_ports": [], "replicas": 1, "tasks": []})
        };
        let facts = json!({
            "containers": [],
            "networks": [],
            "swarm_services": [
                service("unknown", "unknown: the spec sets none", Json::Null),
                service("imaged", "10001 (the image's USER)", json!(false)),
            ]
        });
        let report = build("shop", &[facts], &BTreeMap::new(), None);
        let codes = |container: &str| -> Vec<String> {
            report.document["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|finding| finding["container"] == container)
                .map(|finding| finding["code"].as_str().unwrap().to_string())
                .collect()
        };
        assert!(codes("unknown").contains(&"policy-user-unknown".to_string()));
        assert!(!codes("unknown").contains(&"policy-root-user".to_string()));
        assert!(!codes("imaged")
            .iter()
            .any(|code| code == "policy-user-unknown" || code == "policy-root-user"));
    }

    #[test]
    fn the_edges_tls_probe_is_a_section_and_its_failures_are_findings() {
        use stackctl_provider::{HstsFinding, NegotiatedTls, VersionProbe};
        let probe = |version: &str, refused: bool| VersionProbe {
            version: version.to_string(),
            refused,
            passed: refused,
            answer: String::new(),
        };
        let tls = EdgeTlsReport {
            endpoint: "127.0.0.1:443".to_string(),
            server_name: "shop.example".to_string(),
            minimum_version: "TLS 1.2".to_string(),
            passed: false,
            below_minimum: vec![probe("TLS 1.0", true), probe("TLS 1.1", false)],
            negotiated: NegotiatedTls {
                version: Some("TLS 1.3".to_string()),
                cipher_suite: Some("TLS13_AES_128_GCM_SHA256".to_string()),
                certificate_issuer: Some("CN=(STAGING) Ersatz Edamame E1".to_string()),
                ..NegotiatedTls::default()
            },
            hsts: HstsFinding {
                header: Some("max-age=31536000".to_string()),
                ..HstsFinding::default()
            },
            failures: vec!["TLS 1.1 was accepted below the minimum TLS 1.2".to_string()],
            warnings: Vec::new(),
        };
        let report = build(
            "shop",
            &[json!({"containers": [], "networks": []})],
            &BTreeMap::new(),
            Some(&tls),
        );
        assert_eq!(report.document["tls"]["minimum_version"], "TLS 1.2");
        assert_eq!(report.document["findings"][0]["code"], "tls-probe");
        assert!(report.text.contains("TLS 1.1: ACCEPTED"), "{}", report.text);
        assert!(
            report.text.contains(
                "TLS 1.3 with TLS13_AES_128_GCM_SHA256, certificate issued by CN=(STAGING)"
            ),
            "{}",
            report.text
        );

        let unprobed = build("shop", &[], &BTreeMap::new(), None);
        assert!(unprobed.document["tls"].is_null());
        assert!(
            unprobed.text.contains("TLS: not probed in this run"),
            "{}",
            unprobed.text
        );
    }
}
