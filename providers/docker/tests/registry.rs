//! `pull = "always"` and registry credentials, against a stand-in daemon (no registry is
//! reachable here, and the Engine API's `/distribution` question goes from the daemon to
//! the registry): the daemon reports that the registry now serves another digest for the
//! tag, and records the `X-Registry-Auth` header it was sent. The credentials come from a
//! Docker configuration in a temporary directory naming a fake credential helper.
//!
//! One test in this binary: it sets `PATH` (for the helper) and the daemon socket for the
//! whole process.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use base64::Engine as _;
use stackctl_docker::{DockerOptions, DockerProvider};
use stackctl_host::HostConnector;
use stackctl_provider::{
    Action, ActionKind, Address, ApplyContext, ApplyOutcome, Provider, ReadRequest, Reason,
    RecordedResource, Resource, Value,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;

const REFERENCE: &str = "ghcr.io/acme/api:1";
const REGISTRY_PASSWORD: &str = "registry-Secret-7731";
const OLD: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const NEW: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

/// A request as the stand-in daemon saw it: its request line and headers.
#[derive(Clone, Debug)]
struct Seen {
    line: String,
    headers: BTreeMap<String, String>,
}

/// Answers like Docker 20.10 would, with the registry serving `NEW` for the tag; the host
/// has `OLD` until a pull happened.
fn answer(seen: &Seen, pulled: bool) -> (u16, String) {
    let path = seen.line.split(' ').nth(1).unwrap_or("");
    let digest = if pulled { NEW } else { OLD };
    if path == "/version" {
        return (
            200,
            r#"{"Version":"20.10.24","ApiVersion":"1.41","MinAPIVersion":"1.12"}"#.into(),
        );
    }
    if path.contains("/containers/json") || path.contains("/networks") {
        return (200, "[]".into());
    }
    if path.contains("/volumes") {
        return (200, r#"{"Volumes":[]}"#.into());
    }
    if path.contains("/distribution/ghcr.io/acme/api:1/json") {
        return (
            200,
            format!(
                r#"{{"Descriptor":{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{NEW}","size":1}}}}"#
            ),
        );
    }
    if path.contains("/images/create") {
        return (
            200,
            "{\"status\":\"Pulling from acme/api\"}\n{\"status\":\"Digest: new\"}\n".into(),
        );
    }
    if path.contains("/images/ghcr.io/acme/api:1/json") {
        return (
            200,
            format!(
                r#"{{"Id":"sha256:image-{pulled}","RepoDigests":["ghcr.io/acme/api@{digest}"],"Config":{{"Labels":{{}}}}}}"#
            ),
        );
    }
    (404, r#"{"message":"page not found"}"#.into())
}

async fn start_fake_daemon(
    socket: std::path::PathBuf,
) -> (Arc<Mutex<Vec<Seen>>>, tokio::task::JoinHandle<()>) {
    let listener = UnixListener::bind(&socket).expect("bind the fake daemon's socket");
    let requests: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let record = requests.clone();
    let task = tokio::spawn(async move {
        // Bounded: the test opens a handful of streams.
        for _ in 0..32 {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let record = record.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut reader = BufReader::new(read);
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let mut headers = BTreeMap::new();
                    loop {
                        let mut header = String::new();
                        match reader.read_line(&mut header).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) if header == "\r\n" => break,
                            Ok(_) => {
                                if let Some((name, value)) = header.trim_end().split_once(": ") {
                                    headers.insert(name.to_ascii_lowercase(), value.to_string());
                                }
                            }
                        }
                    }
                    let seen = Seen {
                        line: line.trim_end().to_string(),
                        headers,
                    };
                    let pulled = {
                        let mut all = record.lock().unwrap();
                        all.push(seen.clone());
                        all.iter()
                            .any(|request| request.line.contains("/images/create"))
                    };
                    let (status, body) = answer(&seen, pulled);
                    let response = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if write.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (requests, task)
}

fn image(pull: &str) -> Resource {
    Resource::new(Address::new("image", "api"), "docker")
        .with("reference", REFERENCE)
        .with("pull", pull)
}

fn decoded_auth(seen: &Seen) -> serde_json::Value {
    let header = seen
        .headers
        .get("x-registry-auth")
        .unwrap_or_else(|| panic!("no X-Registry-Auth on {}", seen.line));
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(header)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

#[tokio::test]
async fn a_moved_tag_is_found_with_the_users_credentials_and_pulled_with_them_never_written() {
    let directory = tempfile::tempdir().unwrap();
    // The user's Docker configuration names a credential helper for ghcr.io.
    let config = directory.path().join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.json"),
        r#"{"credHelpers": {"ghcr.io": "stackctl-fake"}}"#,
    )
    .unwrap();
    let helpers = directory.path().join("bin");
    std::fs::create_dir_all(&helpers).unwrap();
    let asked = directory.path().join("asked");
    let helper = helpers.join("docker-credential-stackctl-fake");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 3\ncat > '{}'\nprintf '%s' '{{\"ServerURL\":\"ghcr.io\",\"Username\":\"deploy\",\"Secret\":\"{REGISTRY_PASSWORD}\"}}'\n",
            asked.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::env::set_var(
        "PATH",
        format!(
            "{}:{}",
            helpers.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    );
    let socket = directory.path().join("docker.sock");
    std::env::set_var("STACKCTL_DOCKER_SOCKET", &socket);
    let (requests, daemon) = start_fake_daemon(socket).await;

    let provider = DockerProvider::with_options(
        Arc::new(HostConnector::local()),
        "registry-test",
        DockerOptions {
            docker_config: Some(config),
            ..DockerOptions::default()
        },
    );
    let desired = image("always");
    let mut recorded = RecordedResource::from_desired(&desired, Some("sha256:image-false".into()));
    recorded
        .attributes
        .insert("digest".into(), Value::text(OLD));
    recorded
        .attributes
        .insert("image_id".into(), Value::text("sha256:image-false"));

    // Refresh: the registry's digest for the tag, asked with the user's credentials.
    let live = tokio::time::timeout(
        Duration::from_secs(20),
        provider.read(&ReadRequest {
            stack: "registry-test".into(),
            salt: "salt".into(),
            desired: vec![desired.clone()],
            recorded: vec![recorded.clone()],
        }),
    )
    .await
    .expect("refresh in time")
    .expect("refresh");
    let found = live
        .iter()
        .find(|resource| resource.address == Address::new("image", "api"))
        .unwrap_or_else(|| panic!("the image is live: {:?}", requests.lock().unwrap()));
    assert_eq!(found.attributes.get("digest"), Some(&Value::text(NEW)));
    assert!(!format!("{live:?}").contains(REGISTRY_PASSWORD));
    let seen = requests.lock().unwrap().clone();
    let question = seen
        .iter()
        .find(|request| request.line.contains("/distribution/"))
        .expect("the registry digest was asked");
    assert_eq!(
        decoded_auth(question),
        serde_json::json!({"username": "deploy", "password": REGISTRY_PASSWORD, "serveraddress": "ghcr.io"})
    );
    assert_eq!(std::fs::read_to_string(&asked).unwrap(), "ghcr.io");
    // Only the registry questions carry credentials.
    assert!(seen
        .iter()
        .filter(|request| !request.line.contains("/distribution/"))
        .all(|request| !request.headers.contains_key("x-registry-auth")));

    // Apply: the update pulls with the same credentials and records the new digest.
    let action = Action {
        address: desired.address.clone(),
        provider: "docker".into(),
        kind: ActionKind::Update,
        reason: Reason::TagMoved,
        changes: Vec::new(),
        depends_on: Vec::new(),
        desired: Some(desired.clone()),
        prior: Some(recorded.clone()),
        live_id: None,
    };
    let context = ApplyContext {
        stack: "registry-test".into(),
        lineage: "lineage-of-the-test".into(),
        state_was_empty: true,
        salt: "salt".into(),
        health_timeout: Duration::from_secs(5),
        allow_data_loss: false,
        recorded: Arc::new(RwLock::new(BTreeMap::new())),
    };
    let streamed: Arc<Mutex<Vec<String>>> = Arc::default();
    let collected = streamed.clone();
    provider.report_progress_to(Arc::new(move |address: &Address, line: &str| {
        collected.lock().unwrap().push(format!("{address}: {line}"));
    }));
    let outcome = tokio::time::timeout(Duration::from_secs(20), provider.apply(&action, &context))
        .await
        .expect("apply in time")
        .expect("apply");
    let ApplyOutcome::Recorded(applied) = outcome else {
        panic!("an update records the image");
    };
    assert_eq!(applied.attributes.get("digest"), Some(&Value::text(NEW)));
    let serialized = serde_json::to_string(&applied).unwrap();
    assert!(!serialized.contains(REGISTRY_PASSWORD) && !serialized.contains("deploy"));
    let seen = requests.lock().unwrap().clone();
    let pull = seen
        .iter()
        .find(|request| request.line.contains("/images/create"))
        .expect("pulled");
    assert_eq!(decoded_auth(pull)["password"], REGISTRY_PASSWORD);
    // The pull's progress reached the progress display, line by line.
    assert_eq!(
        *streamed.lock().unwrap(),
        vec![
            "image.api: Pulling from acme/api".to_string(),
            "image.api: Digest: new".to_string()
        ]
    );
    daemon.abort();
}
