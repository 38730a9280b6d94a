//! Pieces shared by the real shop's end-to-end tests (tests/e2e_shop.rs on this machine's
//! Docker, tests/e2e_shop_droplet.rs on a droplet-shaped host).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use super::repository;

/// Builds the test images and the shop's (bases and apps), cached by content.
pub fn build_images() {
    for script in ["testing/build-images.sh", "testing/build-shop-images.sh"] {
        let status = Command::new("bash")
            .arg(repository().join(script))
            .status()
            .unwrap_or_else(|error| panic!("run {script}: {error}"));
        assert!(
            status.success(),
            "{script} failed: is dockerd running, Traefik installed and mmdebstrap, npm and pip available? (.ci/run sees to all of them)"
        );
    }
}

/// apps/ without the React app's node_modules (the bundle in dist/ and Flower's wheel in
/// wheels/, made by testing/build-shop-images.sh, are what the images are built from).
pub fn copy_apps(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == "node_modules" {
            continue;
        }
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_apps(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

pub fn json_field(body: &str, field: &str) -> serde_json::Value {
    serde_json::from_str::<serde_json::Value>(body)
        .unwrap_or_else(|error| panic!("not JSON ({error}): {body}"))[field]
        .clone()
}

/// The run folders under `directory/runs`, oldest first.
pub fn run_folders(directory: &Path) -> Vec<PathBuf> {
    let mut folders: Vec<_> = std::fs::read_dir(directory.join("runs"))
        .expect("a runs folder")
        .flatten()
        .map(|entry| entry.path())
        .collect();
    folders.sort();
    folders
}

/// Every file under `directory` with its text (lossy), recursively.
pub fn files_under(directory: &Path) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(directory).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            found.push((path, text));
        }
    }
    found
}

/// The plan's actions as (address, action), sorted.
pub fn plan_actions(plan_json: &str) -> Vec<(String, String)> {
    let document: serde_json::Value = serde_json::from_str(plan_json)
        .unwrap_or_else(|error| panic!("the plan is not JSON ({error}): {plan_json}"));
    let mut actions: Vec<(String, String)> = document["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|action| {
            (
                action["address"].as_str().unwrap().to_string(),
                action["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    actions.sort();
    actions
}

/// Traefik's static file names Let's Encrypt's staging directory as the resolver's CA.
pub fn assert_staging_resolver(static_file: &Path) {
    let static_file = std::fs::read_to_string(static_file).expect("Traefik's static file");
    assert!(
        static_file
            .contains("caServer: \"https://acme-staging-v02.api.letsencrypt.org/directory\""),
        "{static_file}"
    );
}

/// A run folder holds the seed's artifacts (plus `extra` ones), and `checks.json` the
/// responses of the front page and of `/api/health` as the checks got them.
pub fn assert_seed_artifacts(run: &Path, extra: &[&str], front_page_url: &str, health_url: &str) {
    let seed = [
        "plan.txt",
        "plan.json",
        "events.jsonl",
        "checks.json",
        "docker/containers.json",
        "docker/traefik.log",
        "traefik/files/traefik.yml",
        "traefik/files/route-api.yml",
        "traefik/files/middleware-flower-auth.yml",
    ];
    for artifact in seed.iter().chain(extra) {
        assert!(
            run.join(artifact).is_file(),
            "{artifact} missing from {}",
            run.display()
        );
    }
    let checks: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("checks.json")).expect("checks.json"),
    )
    .expect("checks.json is JSON");
    let response = |url: &str| {
        checks
            .as_array()
            .expect("checks.json is a list")
            .iter()
            .find(|check| check["url"] == url)
            .unwrap_or_else(|| panic!("no response of {url} in checks.json: {checks:#}"))
            .clone()
    };
    assert_eq!(response(front_page_url)["status"], 200);
    assert!(response(front_page_url)["body_excerpt"]
        .as_str()
        .unwrap_or_default()
        .contains("/app.js"));
    assert_eq!(response(health_url)["status"], 200);
    assert!(response(health_url)["body_excerpt"]
        .as_str()
        .unwrap_or_default()
        .contains("\"postgres\":\"ok\""));
}
