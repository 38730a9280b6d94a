//! Build and pull progress is streamed: each JSON line reaches the caller while the
//! daemon is still sending. A stand-in daemon sends the first line of a pull, then holds
//! the rest back until the caller has seen that line (or 10 s pass, which fails the test).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use stackctl_docker::api::{pull_image, DockerClient};
use stackctl_host::LocalHost;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::Notify;

fn chunk(text: &str) -> String {
    format!("{:x}\r\n{text}\r\n", text.len())
}

#[tokio::test]
async fn pull_progress_lines_arrive_while_the_daemon_is_still_sending() {
    let directory = tempfile::tempdir().unwrap();
    let socket = directory.path().join("docker.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let first_line_seen = Arc::new(Notify::new());
    // What happened, in order, on both sides.
    let story: Arc<Mutex<Vec<String>>> = Arc::default();

    let daemon_seen = first_line_seen.clone();
    let daemon_story = story.clone();
    let daemon = tokio::spawn(async move {
        for _ in 0..4 {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (read, mut write) = stream.into_split();
            let mut reader = BufReader::new(read);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                    break;
                }
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).await.unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                }
                if line.starts_with("GET /version") {
                    let body = r#"{"ApiVersion":"1.41","MinAPIVersion":"1.12"}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = write.write_all(answer.as_bytes()).await;
                    continue;
                }
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                let first = chunk("{\"status\":\"Pulling fs layer\"}\n");
                daemon_story
                    .lock()
                    .unwrap()
                    .push("daemon sent line 1".into());
                let _ = write.write_all(format!("{head}{first}").as_bytes()).await;
                let _ = write.flush().await;
                let waited =
                    tokio::time::timeout(Duration::from_secs(10), daemon_seen.notified()).await;
                daemon_story.lock().unwrap().push(format!(
                    "daemon goes on ({})",
                    if waited.is_ok() {
                        "line 1 was seen"
                    } else {
                        "timed out"
                    }
                ));
                let rest = chunk("{\"status\":\"Download complete\"}\n");
                let _ = write.write_all(format!("{rest}0\r\n\r\n").as_bytes()).await;
            }
        }
    });

    let client = DockerClient::new(Arc::new(LocalHost::with_docker_socket(
        socket.display().to_string(),
    )));
    let client_story = story.clone();
    let notify = first_line_seen.clone();
    let mut on_line = move |line: &str| {
        client_story
            .lock()
            .unwrap()
            .push(format!("caller got {line}"));
        notify.notify_one();
    };
    let response = tokio::time::timeout(
        Duration::from_secs(20),
        client.send_streaming(pull_image("acme/api:1"), &mut on_line),
    )
    .await
    .expect("in time")
    .expect("the pull answers");
    daemon.abort();

    assert_eq!(
        *story.lock().unwrap(),
        vec![
            "daemon sent line 1".to_string(),
            "caller got {\"status\":\"Pulling fs layer\"}".to_string(),
            "daemon goes on (line 1 was seen)".to_string(),
            "caller got {\"status\":\"Download complete\"}".to_string(),
        ]
    );
    // The whole body is still there for the error check after the stream.
    assert_eq!(
        String::from_utf8_lossy(&response.body),
        "{\"status\":\"Pulling fs layer\"}\n{\"status\":\"Download complete\"}\n"
    );
}
