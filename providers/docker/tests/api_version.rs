//! Engine API negotiation against the real Docker daemon of this machine (20.10, API 1.41)
//! and against a stand-in that answers as Docker Engine 29 does: newest API 1.52, oldest
//! 1.44, and every `/v1.41/…` path refused with Docker's own error body.

use std::sync::{Arc, Mutex};

use stackctl_docker::api::{list_containers, ClientError, DockerClient};
use stackctl_host::LocalHost;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;

/// Docker 29's answer to a client below its minimum (moby's version middleware).
const TOO_OLD: &str = r#"{"message":"client version 1.41 is too old. Minimum supported API version is 1.44, please upgrade your client to a newer version"}"#;

/// A daemon that speaks HTTP/1.1 (pipelined) on a unix socket like Docker Engine 29,
/// and records every request line it was sent.
struct FakeEngine {
    socket: std::path::PathBuf,
    requests: Arc<Mutex<Vec<String>>>,
    _directory: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeEngine {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer_to(request_line: &str, newest: &str, oldest_minor: u32) -> (u16, String) {
    let path = request_line.split(' ').nth(1).unwrap_or("");
    if path == "/version" {
        let body = format!(
            r#"{{"Version":"29.0.0","ApiVersion":"{newest}","MinAPIVersion":"1.{oldest_minor}","Os":"linux"}}"#
        );
        return (200, body);
    }
    let minor: u32 = path
        .strip_prefix("/v1.")
        .and_then(|rest| rest.split('/').next())
        .and_then(|minor| minor.parse().ok())
        .unwrap_or(0);
    if minor < oldest_minor {
        return (400, TOO_OLD.replace("1.41", &format!("1.{minor}")));
    }
    if path.contains("/containers/json") {
        return (200, "[]".to_string());
    }
    (404, r#"{"message":"page not found"}"#.to_string())
}

async fn start_fake_engine(newest: &'static str, oldest_minor: u32) -> FakeEngine {
    let directory = tempfile::tempdir().expect("temp dir");
    let socket = directory.path().join("docker.sock");
    let listener = UnixListener::bind(&socket).expect("bind the fake daemon's socket");
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    let task = tokio::spawn(async move {
        // Bounded: a test opens a handful of streams.
        for _ in 0..16 {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut reader = BufReader::new(read);
                loop {
                    let mut request_line = String::new();
                    match reader.read_line(&mut request_line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    // Headers until the blank line; these requests carry no body.
                    loop {
                        let mut header = String::new();
                        match reader.read_line(&mut header).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) if header == "\r\n" => break,
                            Ok(_) => {}
                        }
                    }
                    let request_line = request_line.trim_end().to_string();
                    seen.lock().unwrap().push(request_line.clone());
                    let (status, body) = answer_to(&request_line, newest, oldest_minor);
                    let response = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nApi-Version: {newest}\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if write.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    FakeEngine {
        socket,
        requests,
        _directory: directory,
        task,
    }
}

fn client_for(socket: &std::path::Path) -> DockerClient {
    DockerClient::new(Arc::new(LocalHost::with_docker_socket(
        socket.display().to_string(),
    )))
}

#[tokio::test]
async fn a_daemon_like_docker_29_is_spoken_to_in_its_own_api_version() {
    let engine = start_fake_engine("1.52", 44).await;
    let client = client_for(&engine.socket);
    let containers = client
        .send_json(list_containers("shop", None))
        .await
        .expect("Docker 29 answers the negotiated version");
    assert_eq!(containers, serde_json::json!([]));
    assert_eq!(
        client.api_version().map(|v| v.to_string()).as_deref(),
        Some("1.52")
    );
    // Asked once, then every request in the agreed version; never the refused 1.41.
    client
        .send_json(list_containers("shop", None))
        .await
        .expect("second request");
    let requests = engine.requests.lock().unwrap().clone();
    assert_eq!(requests[0], "GET /version HTTP/1.1", "{requests:?}");
    assert_eq!(
        requests
            .iter()
            .filter(|line| line.contains("/version"))
            .count(),
        1
    );
    assert!(
        requests[1..]
            .iter()
            .all(|line| line.starts_with("GET /v1.52/")),
        "{requests:?}"
    );
}

#[tokio::test]
async fn a_pinned_old_version_is_what_docker_29_refuses() {
    // The stand-in is faithful: the 1.41 stackctl used to pin is refused with Docker's body.
    let (status, body) = answer_to("GET /v1.41/containers/json HTTP/1.1", "1.52", 44);
    assert_eq!(status, 400);
    assert!(body.contains("client version 1.41 is too old"), "{body}");
}

#[tokio::test]
async fn a_daemon_too_old_for_stackctl_is_refused_with_the_reason() {
    let engine = start_fake_engine("1.40", 12).await;
    let client = client_for(&engine.socket);
    let error = client
        .send_json(list_containers("shop", None))
        .await
        .expect_err("API 1.40 is below stackctl's oldest");
    assert!(matches!(error, ClientError::Version(_)), "{error:?}");
    assert!(
        error.to_string().contains("stackctl needs 1.41 or newer"),
        "{error}"
    );
    let requests = engine.requests.lock().unwrap().clone();
    assert_eq!(
        requests,
        vec!["GET /version HTTP/1.1".to_string()],
        "nothing else was sent"
    );
}

#[tokio::test]
async fn the_real_docker_20_10_daemon_is_spoken_to_in_1_41() {
    let socket = std::env::var("STACKCTL_DOCKER_SOCKET")
        .unwrap_or_else(|_| "/var/run/docker.sock".to_string());
    assert!(
        std::path::Path::new(&socket).exists(),
        "no Docker daemon at {socket}: `.ci/run` starts dockerd (the 'Docker daemon' step)"
    );
    let client = client_for(std::path::Path::new(&socket));
    client
        .send_json(list_containers("stackctl-api-version-test", None))
        .await
        .expect("the local daemon answers");
    assert_eq!(
        client.api_version().map(|v| v.to_string()).as_deref(),
        Some("1.41")
    );
}
