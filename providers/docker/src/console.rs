//! Logs and exec of a stack's services (`stackctl logs`, `stackctl exec`), over the same
//! Docker stream as everything else: the unix socket here, an SSH channel to it there.
//!
//! A service's containers are found by their labels (`stackctl.stack`,
//! `stackctl.resource`), never by guessing names. Logs are read as the daemon sends them
//! ([`crate::streaming_body`]) and decoded frame by frame ([`crate::log_frames`]), so a
//! followed log is shown line by line and never kept. An exec is created, then started
//! on a connection that the daemon upgrades to the process's raw stream: what is written
//! to it reaches the process's stdin (its end closes stdin), what is read from it is the
//! process's output. Its exit code is asked for once that stream ends.

use serde_json::{json, Value as Json};
use tokio::io::{AsyncBufRead, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::api::{
    self, check, ClientError, DockerClient, API_VERSION, LABEL_RESOURCE, LABEL_STACK,
};
use crate::http::{percent_encode, HttpError, Request, Response};
use crate::log_frames::{LogFrameDecoder, OutputChunk};
use crate::streaming_body::{read_head, BodyReader, ResponseHead};

/// A running container of a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceContainer {
    pub id: String,
    /// Its name, without Docker's leading `/`.
    pub name: String,
    /// Unix seconds.
    pub created: i64,
}

/// The running containers labelled as `service` of `stack`, newest first (two during a
/// swap, for a moment).
pub async fn running_containers(
    client: &DockerClient,
    stack: &str,
    service: &str,
) -> Result<Vec<ServiceContainer>, ClientError> {
    let listing = client
        .send_json(api::list_containers(
            stack,
            Some(&format!("service.{service}")),
        ))
        .await?;
    Ok(parse_running_containers(&listing, stack, service))
}

/// The running containers in a `GET /containers/json` answer that carry both labels.
pub fn parse_running_containers(
    listing: &Json,
    stack: &str,
    service: &str,
) -> Vec<ServiceContainer> {
    let resource = format!("service.{service}");
    let mut containers: Vec<ServiceContainer> = listing
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["State"] == "running")
        .filter(|entry| {
            entry["Labels"][LABEL_STACK] == stack && entry["Labels"][LABEL_RESOURCE] == *resource
        })
        .map(|entry| ServiceContainer {
            id: entry["Id"].as_str().unwrap_or_default().to_string(),
            name: entry["Names"][0]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            created: entry["Created"].as_i64().unwrap_or(0),
        })
        .filter(|container| !container.id.is_empty())
        .collect();
    containers.sort_by(|left, right| {
        right
            .created
            .cmp(&left.created)
            .then(left.id.cmp(&right.id))
    });
    containers
}

/// What part of a log to show.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Keep the stream open and show new lines as they are written.
    pub follow: bool,
    /// Only lines written at or after this time (unix seconds).
    pub since: Option<i64>,
    /// Only the last lines (`None`: all).
    pub tail: Option<u64>,
}

/// `GET /containers/{id}/logs` with stdout, stderr and the options.
pub fn logs_request(container: &str, options: &LogOptions) -> Request {
    let mut request = Request::new(
        "GET",
        format!("/containers/{}/logs", percent_encode(container)),
    )
    .query("stdout", "1")
    .query("stderr", "1")
    .query("follow", if options.follow { "1" } else { "0" })
    .query(
        "tail",
        options
            .tail
            .map(|lines| lines.to_string())
            .unwrap_or_else(|| "all".to_string()),
    );
    if let Some(since) = options.since {
        request = request.query("since", since.to_string());
    }
    request
}

/// Streams a container's log, handing each piece of output to `on_output` as it
/// arrives; returns when the log ends (at once without `follow`; when the container
/// stops with it). Dropping the future closes the stream.
///
/// A stuck daemon or channel must not hang `stackctl logs`: opening the stream and
/// reading the response head take at most the client's operation timeout, and without
/// `follow` so does each read of the body (a long log still streams as long as it
/// moves). A followed log may be silent for hours, so its body is not bounded.
pub async fn stream_logs(
    client: &DockerClient,
    container: &str,
    options: &LogOptions,
    on_output: &mut (dyn FnMut(OutputChunk) + Send),
) -> Result<(), ClientError> {
    let timeout = client.timeout();
    let inspected = client.send_json(api::inspect_container(container)).await?;
    let tty = inspected["Config"]["Tty"].as_bool().unwrap_or(false);
    let request = logs_request(container, options);
    let opening = async {
        let mut reader = open_stream(client, &request.to_bytes(&api_version(client))).await?;
        let head = read_head(&mut reader).await?;
        ensure_success(&request, &head, &mut reader).await?;
        Ok::<_, ClientError>((reader, head))
    };
    let (mut reader, head) = within(timeout, opening).await?;
    let mut body = BodyReader::new(head.framing);
    let mut decoder = LogFrameDecoder::new(!tty);
    loop {
        let piece = if options.follow {
            body.next(&mut reader).await?
        } else {
            within(timeout, async { Ok(body.next(&mut reader).await?) }).await?
        };
        let Some(piece) = piece else { break };
        for chunk in decoder.feed(&piece) {
            on_output(chunk);
        }
    }
    Ok(())
}

/// `work`, or [`ClientError::Timeout`] when it takes longer than `timeout`.
async fn within<T>(
    timeout: std::time::Duration,
    work: impl std::future::Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| ClientError::Timeout(timeout))?
}

/// A command to run in a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecRequest {
    pub command: Vec<String>,
    /// Give the process a terminal (`docker exec -t`): output is then raw, not framed.
    pub tty: bool,
    /// The terminal's size (rows, columns), when there is one.
    pub size: Option<(u16, u16)>,
}

/// `POST /containers/{id}/exec`, stdin attached: what the user types or pipes reaches it.
pub fn create_attached_exec(container: &str, exec: &ExecRequest) -> Request {
    let mut body = json!({
        "Cmd": exec.command,
        "AttachStdin": true,
        "AttachStdout": true,
        "AttachStderr": true,
        "Tty": exec.tty,
    });
    if let (true, Some((rows, columns))) = (exec.tty, exec.size) {
        body["ConsoleSize"] = json!([rows, columns]);
    }
    Request::new(
        "POST",
        format!("/containers/{}/exec", percent_encode(container)),
    )
    .json(body)
}

/// `POST /exec/{id}/start` asking the daemon to upgrade the connection to the process's
/// stream (`Connection: Upgrade`, `Upgrade: tcp`), as the Docker CLI does.
pub fn start_exec_upgraded(exec_id: &str, tty: bool, api_version: &str) -> Vec<u8> {
    let body = json!({ "Detach": false, "Tty": tty }).to_string();
    format!(
        "POST /v{api_version}/exec/{}/start HTTP/1.1\r\nHost: docker\r\nUser-Agent: stackctl\r\n\
         Content-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\
         Content-Length: {}\r\n\r\n{body}",
        percent_encode(exec_id),
        body.len()
    )
    .into_bytes()
}

/// `POST /exec/{id}/resize`: the terminal changed size.
pub fn resize_exec(exec_id: &str, rows: u16, columns: u16) -> Request {
    Request::new("POST", format!("/exec/{}/resize", percent_encode(exec_id)))
        .query("h", rows.to_string())
        .query("w", columns.to_string())
}

/// Runs `exec` in `container`: `input` is sent to its stdin (stdin is closed when
/// `input` ends), its output goes to `on_output` as it arrives, `resizes` carries new
/// terminal sizes. Returns the process's exit code.
pub async fn run_exec(
    client: &DockerClient,
    container: &str,
    exec: &ExecRequest,
    mut input: mpsc::Receiver<Vec<u8>>,
    mut resizes: mpsc::Receiver<(u16, u16)>,
    on_output: &mut (dyn FnMut(OutputChunk) + Send),
) -> Result<i64, ClientError> {
    let created = client
        .send_json(create_attached_exec(container, exec))
        .await?;
    let exec_id = created["Id"].as_str().unwrap_or_default().to_string();
    if exec_id.is_empty() {
        return Err(ClientError::Http(HttpError::Malformed(
            "the exec was created without an id".into(),
        )));
    }
    let mut reader = open_stream(
        client,
        &start_exec_upgraded(&exec_id, exec.tty, &api_version(client)),
    )
    .await?;
    tracing::debug!(%exec_id, "exec created; starting it on an upgraded connection");
    let head = read_head(&mut reader).await?;
    tracing::debug!(status = head.status, "exec started");
    let start = Request::new("POST", format!("/exec/{exec_id}/start"));
    ensure_success(&start, &head, &mut reader).await?;
    if let (true, Some((rows, columns))) = (exec.tty, exec.size) {
        // ConsoleSize at creation is honoured by newer daemons only.
        let _ = client.send(resize_exec(&exec_id, rows, columns)).await;
    }
    let (mut output, mut stdin) = tokio::io::split(reader);
    let resize_client = client.clone();
    let resize_id = exec_id.clone();
    let feeder = tokio::spawn(async move {
        let (mut input_open, mut resizes_open) = (true, true);
        while input_open || resizes_open {
            tokio::select! {
                piece = input.recv(), if input_open => match piece {
                    Some(bytes) => {
                        if stdin.write_all(&bytes).await.is_err() || stdin.flush().await.is_err() {
                            break;
                        }
                    }
                    None => {
                        // The end of our input is the end of the process's stdin.
                        let shutdown = stdin.shutdown().await;
                        tracing::debug!(?shutdown, "stdin of the exec closed");
                        input_open = false;
                    }
                },
                size = resizes.recv(), if resizes_open => match size {
                    Some((rows, columns)) => {
                        let _ = resize_client.send(resize_exec(&resize_id, rows, columns)).await;
                    }
                    None => resizes_open = false,
                },
            }
        }
    });
    let mut body = BodyReader::new(crate::streaming_body::Framing::UntilClose);
    let mut decoder = LogFrameDecoder::new(!exec.tty);
    let mut buffered = BufReader::new(&mut output);
    let read = async {
        while let Some(piece) = body.next(&mut buffered).await? {
            for chunk in decoder.feed(&piece) {
                on_output(chunk);
            }
        }
        Ok::<(), HttpError>(())
    }
    .await;
    feeder.abort();
    read?;
    exit_code(client, &exec_id).await
}

/// The exec's exit code; the daemon records it a moment after the stream ends.
async fn exit_code(client: &DockerClient, exec_id: &str) -> Result<i64, ClientError> {
    for _ in 0..50 {
        let state = client.send_json(api::inspect_exec(exec_id)).await?;
        if state["Running"] != true {
            if let Some(code) = state["ExitCode"].as_i64() {
                return Ok(code);
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    }
    Err(ClientError::Http(HttpError::Malformed(format!(
        "the exec {exec_id} ended but the daemon reports no exit code"
    ))))
}

fn api_version(client: &DockerClient) -> String {
    client
        .api_version()
        .map(|version| version.to_string())
        .unwrap_or_else(|| API_VERSION.to_string())
}

/// Opens a stream to the daemon and writes `request` on it.
async fn open_stream(
    client: &DockerClient,
    request: &[u8],
) -> Result<BufReader<Box<dyn stackctl_host::Stream>>, ClientError> {
    let mut stream = client.host().docker_stream().await?;
    stream.write_all(request).await.map_err(HttpError::Io)?;
    stream.flush().await.map_err(HttpError::Io)?;
    Ok(BufReader::new(stream))
}

/// Turns an error status into [`ClientError::Status`] with the daemon's message.
async fn ensure_success<R: AsyncBufRead + Unpin>(
    request: &Request,
    head: &ResponseHead,
    reader: &mut R,
) -> Result<(), ClientError> {
    if (200..300).contains(&head.status) || head.status == 101 {
        return Ok(());
    }
    let mut body = BodyReader::new(head.framing);
    let mut bytes = Vec::new();
    while let Some(piece) = body.next(reader).await? {
        bytes.extend(piece);
        if bytes.len() > 64 * 1024 {
            break;
        }
    }
    check(
        request.method,
        &request.path,
        Response {
            status: head.status,
            body: bytes,
        },
    )
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_requests_carry_follow_tail_and_since() {
        let request = logs_request(
            "abc",
            &LogOptions {
                follow: true,
                since: Some(1_700_000_000),
                tail: Some(5),
            },
        );
        assert_eq!(
            request.target("1.41"),
            "/v1.41/containers/abc/logs?stdout=1&stderr=1&follow=1&tail=5&since=1700000000"
        );
        assert_eq!(
            logs_request("abc", &LogOptions::default()).target("1.41"),
            "/v1.41/containers/abc/logs?stdout=1&stderr=1&follow=0&tail=all"
        );
    }

    #[test]
    fn exec_is_created_attached_and_started_on_an_upgraded_connection() {
        let request = create_attached_exec(
            "abc",
            &ExecRequest {
                command: vec!["sh".into(), "-c".into(), "exit 3".into()],
                tty: true,
                size: Some((24, 80)),
            },
        );
        assert_eq!(request.path, "/containers/abc/exec");
        assert_eq!(
            request.body,
            crate::http::Body::Json(json!({
                "Cmd": ["sh", "-c", "exit 3"], "AttachStdin": true, "AttachStdout": true,
                "AttachStderr": true, "Tty": true, "ConsoleSize": [24, 80]
            }))
        );
        let start = String::from_utf8(start_exec_upgraded("e1", false, "1.41")).unwrap();
        assert_eq!(
            start,
            "POST /v1.41/exec/e1/start HTTP/1.1\r\nHost: docker\r\nUser-Agent: stackctl\r\n\
             Content-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\
             Content-Length: 28\r\n\r\n{\"Detach\":false,\"Tty\":false}"
        );
        assert_eq!(
            resize_exec("e1", 40, 120).target("1.41"),
            "/v1.41/exec/e1/resize?h=40&w=120"
        );
    }

    #[test]
    fn only_running_containers_with_both_labels_newest_first() {
        let listing = json!([
            {"Id": "old", "Names": ["/shop-api-1"], "State": "running", "Created": 10,
             "Labels": {"stackctl.stack": "shop", "stackctl.resource": "service.api"}},
            {"Id": "new", "Names": ["/shop-api-2"], "State": "running", "Created": 20,
             "Labels": {"stackctl.stack": "shop", "stackctl.resource": "service.api"}},
            {"Id": "stopped", "Names": ["/shop-api-0"], "State": "exited", "Created": 30,
             "Labels": {"stackctl.stack": "shop", "stackctl.resource": "service.api"}},
            {"Id": "other", "Names": ["/x"], "State": "running", "Created": 40,
             "Labels": {"stackctl.stack": "other", "stackctl.resource": "service.api"}}
        ]);
        let found = parse_running_containers(&listing, "shop", "api");
        assert_eq!(
            found
                .iter()
                .map(|container| (container.id.as_str(), container.name.as_str()))
                .collect::<Vec<_>>(),
            vec![("new", "shop-api-2"), ("old", "shop-api-1")]
        );
    }
}
