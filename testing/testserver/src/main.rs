//! A tiny HTTP server for stackctl's end-to-end tests.
//!
//! It stands in for every application service of a test stack (web, api, django, a
//! postgres-like or a redis-like service): one static binary that runs in a `FROM
//! scratch` image, so no test pulls an image from a registry. It uses the standard
//! library only, which keeps its static build fast and its behaviour easy to read.
//!
//! Behaviour, all from the environment so one image serves every role:
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `PORT` | TCP port to listen on (all interfaces) | `8080` |
//! | `NAME` | echoed as `backend` in every answer | `testserver` |
//! | `ECHO_ENV` | echoed as `env` in every answer (`null` when unset) | unset |
//! | `HEALTH_PATH` | a second health path besides `/health` | `/health` |
//! | `SERVER_HEADER` | sent as `Server:` and `X-Powered-By:` (to test header removal) | unset |
//! | `START_DELAY_MS` | wait this long before listening (a slow start) | `0` |
//! | `UNHEALTHY` | `1`/`true`: health paths answer 503 (a failing health check) | unset |
//! | `LOG_LINES` | print this text to stderr at start (evidence in container logs) | unset |
//!
//! Every path answers `200 {"status":"ok","backend":NAME,"env":ECHO_ENV}`; the health
//! paths answer the same, or 503 with `"status":"unhealthy"` in unhealthy mode.
//! `/env/<VARIABLE>` answers the value of that variable, so tests can see what the
//! container received (secrets included: this is a test tool, never a production one).
//! `/slow?ms=N` answers like any path after N milliseconds (at most 60 s): a request
//! still in flight while a test swaps or stops the container.
//!
//! `testserver health` requests its own health path on 127.0.0.1 and exits 0 on a 200,
//! 1 otherwise: a scratch image has no shell or curl, so this is its `HEALTHCHECK`.
//!
//! `testserver task [--print-env NAME]… [--print-file PATH]… [--exit CODE]` stands in for
//! a release task (Django's `migrate`): prints `NAME=value` for each variable and
//! `PATH: contents` for each file, so a test sees which env and image it ran with, then
//! exits with CODE (default 0).
//!
//! As PID 1 in a container, a process gets no default signal handling, so `docker stop`
//! would wait out its whole timeout. The server shuts down the way production servers
//! (uvicorn, gunicorn) do: on SIGTERM or SIGINT it stops accepting connections, finishes
//! the requests in flight, and exits 0 as soon as none is left — at once when idle, which
//! keeps swaps and test clean-up fast, and after the slow request when one is running.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// Set by the SIGTERM/SIGINT handler (an atomic store is async-signal-safe).
static TERMINATING: AtomicBool = AtomicBool::new(false);

/// Requests read but not yet fully answered: the shutdown waits for them.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// How often the accept loop looks at `TERMINATING` and the shutdown at `IN_FLIGHT`.
const SHUTDOWN_POLL: Duration = Duration::from_millis(10);

/// The longest `/slow` delay honoured.
const LONGEST_SLOW_REQUEST: Duration = Duration::from_secs(60);

/// How the server behaves, read once from the environment.
#[derive(Clone, Debug)]
struct Settings {
    port: u16,
    name: String,
    echo_env: Option<String>,
    health_path: String,
    server_header: Option<String>,
    start_delay: Duration,
    unhealthy: bool,
}

impl Settings {
    fn from_environment() -> Settings {
        let variable = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        let port = variable("PORT")
            .and_then(|text| text.parse::<u16>().ok())
            .unwrap_or(8080);
        let mut health_path = variable("HEALTH_PATH").unwrap_or_else(|| "/health".to_string());
        if !health_path.starts_with('/') {
            health_path.insert(0, '/');
        }
        Settings {
            port,
            name: variable("NAME").unwrap_or_else(|| "testserver".to_string()),
            echo_env: std::env::var("ECHO_ENV").ok(),
            health_path,
            server_header: variable("SERVER_HEADER"),
            start_delay: Duration::from_millis(
                variable("START_DELAY_MS")
                    .and_then(|text| text.parse::<u64>().ok())
                    .unwrap_or(0),
            ),
            unhealthy: matches!(
                variable("UNHEALTHY").as_deref(),
                Some("1") | Some("true") | Some("yes")
            ),
        }
    }

    fn is_health_path(&self, path: &str) -> bool {
        path == "/health" || path == self.health_path
    }
}

fn main() {
    let settings = Settings::from_environment();
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    // `--port N` and `--name X` override the environment for runs outside Docker.
    let settings = apply_arguments(settings, &arguments);
    match arguments.first().map(String::as_str) {
        Some("health") => std::process::exit(health_check(&settings)),
        Some("task") => std::process::exit(task(&arguments[1..])),
        Some("--help") | Some("-h") => {
            println!("usage: testserver [serve|health] [--port N] [--name NAME]");
        }
        _ => serve(&settings),
    }
}

fn apply_arguments(mut settings: Settings, arguments: &[String]) -> Settings {
    let mut index = 0;
    while index < arguments.len() {
        let next = arguments.get(index + 1);
        match (arguments[index].as_str(), next) {
            ("--port", Some(value)) => {
                if let Ok(port) = value.parse() {
                    settings.port = port;
                }
                index += 1;
            }
            ("--name", Some(value)) => {
                settings.name = value.clone();
                index += 1;
            }
            _ => {}
        }
        index += 1;
    }
    settings
}

fn serve(settings: &Settings) {
    install_shutdown_on_terminate();
    if let Ok(lines) = std::env::var("LOG_LINES") {
        eprintln!("{lines}");
    }
    if !settings.start_delay.is_zero() {
        eprintln!("testserver {}: starting in {:?}", settings.name, settings.start_delay);
        let started = std::time::Instant::now();
        while started.elapsed() < settings.start_delay {
            if TERMINATING.load(Ordering::SeqCst) {
                std::process::exit(0);
            }
            std::thread::sleep(SHUTDOWN_POLL);
        }
    }
    let listener = match TcpListener::bind(("0.0.0.0", settings.port)) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("testserver: cannot listen on port {}: {error}", settings.port);
            std::process::exit(2);
        }
    };
    // Non-blocking, so that the loop sees a SIGTERM within `SHUTDOWN_POLL`.
    if let Err(error) = listener.set_nonblocking(true) {
        eprintln!("testserver: cannot make the listener non-blocking: {error}");
        std::process::exit(2);
    }
    eprintln!(
        "testserver {} listening on port {} (health {}, unhealthy {})",
        settings.name, settings.port, settings.health_path, settings.unhealthy
    );
    while !TERMINATING.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                // Accepted sockets do not inherit O_NONBLOCK on Linux; be explicit.
                let _ = stream.set_nonblocking(false);
                let settings = settings.clone();
                // One thread per connection: test loads are small, and this keeps
                // keep-alive connections from a proxy (Traefik) from blocking each other.
                std::thread::spawn(move || {
                    let _ = handle_connection(stream, &settings);
                });
            }
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(SHUTDOWN_POLL)
            }
            Err(_) => {}
        }
    }
    // No new connection from here on; requests already read are answered first.
    drop(listener);
    let in_flight = IN_FLIGHT.load(Ordering::SeqCst);
    eprintln!("testserver {}: terminating, {in_flight} request(s) in flight", settings.name);
    while IN_FLIGHT.load(Ordering::SeqCst) > 0 {
        std::thread::sleep(SHUTDOWN_POLL);
    }
    eprintln!("testserver {}: every request answered, exiting", settings.name);
    std::process::exit(0);
}

/// Counts one request in flight for as long as it lives.
struct InFlight;

impl InFlight {
    fn begin() -> InFlight {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves requests on one connection until the peer closes it (HTTP/1.1 keep-alive).
fn handle_connection(stream: TcpStream, settings: &Settings) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_nodelay(true).ok();
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let _in_flight = InFlight::begin();
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("/").to_string();
        let version = parts.next().unwrap_or("HTTP/1.0").to_string();
        let mut content_length = 0usize;
        let mut close = version == "HTTP/1.0";
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 {
                return Ok(());
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => content_length = value.parse().unwrap_or(0),
                    "connection" if value.eq_ignore_ascii_case("close") => close = true,
                    "connection" if value.eq_ignore_ascii_case("keep-alive") => close = false,
                    _ => {}
                }
            }
        }
        // Bodies are read and ignored so the next request on the connection parses.
        if content_length > 0 {
            let mut body = vec![0u8; content_length.min(1 << 20)];
            reader.read_exact(&mut body)?;
        }
        let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
        if path == "/slow" {
            std::thread::sleep(slow_delay(query));
        }
        // A server shutting down answers what it read, then closes the connection.
        close |= TERMINATING.load(Ordering::SeqCst);
        let (status, body) = respond(settings, path);
        let mut response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(server) = &settings.server_header {
            response.push_str(&format!("Server: {server}\r\nX-Powered-By: {server}\r\n"));
        }
        if close {
            response.push_str("Connection: close\r\n");
        }
        response.push_str("\r\n");
        writer.write_all(response.as_bytes())?;
        if method != "HEAD" {
            writer.write_all(body.as_bytes())?;
        }
        writer.flush()?;
        if close {
            return Ok(());
        }
    }
}

/// Returns the status line text and JSON body for a path.
fn respond(settings: &Settings, path: &str) -> (&'static str, String) {
    if let Some(variable) = path.strip_prefix("/env/") {
        let value = std::env::var(variable).ok();
        return (
            "200 OK",
            format!(
                "{{\"variable\":{},\"value\":{}}}",
                json_string(variable),
                json_optional(value.as_deref())
            ),
        );
    }
    let unhealthy = settings.unhealthy && settings.is_health_path(path);
    let status_word = if unhealthy { "unhealthy" } else { "ok" };
    let body = format!(
        "{{\"status\":\"{status_word}\",\"backend\":{},\"env\":{}}}",
        json_string(&settings.name),
        json_optional(settings.echo_env.as_deref())
    );
    if unhealthy {
        ("503 Service Unavailable", body)
    } else {
        ("200 OK", body)
    }
}

/// The delay `/slow?ms=N` asks for (none when `ms` is missing or not a number).
fn slow_delay(query: &str) -> Duration {
    let milliseconds = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "ms")
        .and_then(|(_, value)| value.parse::<u64>().ok())
        .unwrap_or(0);
    Duration::from_millis(milliseconds).min(LONGEST_SLOW_REQUEST)
}

fn json_optional(value: Option<&str>) -> String {
    value.map(json_string).unwrap_or_else(|| "null".to_string())
}

/// Encodes text as a JSON string literal (quotes, backslashes, control characters).
fn json_string(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len() + 2);
    encoded.push('"');
    for character in text.chars() {
        match character {
            '"' => encoded.push_str("\\\""),
            '\\' => encoded.push_str("\\\\"),
            '\n' => encoded.push_str("\\n"),
            '\r' => encoded.push_str("\\r"),
            '\t' => encoded.push_str("\\t"),
            control if (control as u32) < 0x20 => {
                encoded.push_str(&format!("\\u{:04x}", control as u32))
            }
            other => encoded.push(other),
        }
    }
    encoded.push('"');
    encoded
}

/// The `health` subcommand: 0 when the configured health path answers 200, else 1.
/// A one-off task: prints what it was asked to show, then exits with the code asked for.
fn task(arguments: &[String]) -> i32 {
    let mut exit_code = 0;
    let mut index = 0;
    while index + 1 < arguments.len() {
        let value = &arguments[index + 1];
        match arguments[index].as_str() {
            "--print-env" => println!("{value}={}", std::env::var(value).unwrap_or_default()),
            "--print-file" => match std::fs::read_to_string(value) {
                Ok(contents) => println!("{value}: {}", contents.trim_end()),
                Err(error) => println!("{value}: unreadable ({error})"),
            },
            "--exit" => exit_code = value.parse().unwrap_or(1),
            other => eprintln!("testserver task: unknown argument `{other}`"),
        }
        index += 2;
    }
    exit_code
}

fn health_check(settings: &Settings) -> i32 {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], settings.port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(2)) else {
        return 1;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        settings.health_path
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return 1;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let healthy = response
        .lines()
        .next()
        .is_some_and(|status| status.split_whitespace().nth(1) == Some("200"));
    if healthy {
        0
    } else {
        println!("unhealthy: {}", response.lines().next().unwrap_or("no answer"));
        1
    }
}

extern "C" {
    fn signal(signal_number: i32, handler: usize) -> usize;
}

extern "C" fn begin_shutdown(_signal_number: i32) {
    // Only async-signal-safe work here: an atomic store is.
    TERMINATING.store(true, Ordering::SeqCst);
}

/// Shuts down gracefully on SIGTERM and SIGINT (PID 1 in a container ignores them
/// otherwise): see `serve`.
fn install_shutdown_on_terminate() {
    const SIGINT: i32 = 2;
    const SIGTERM: i32 = 15;
    let handler = begin_shutdown as extern "C" fn(i32) as usize;
    unsafe {
        signal(SIGTERM, handler);
        signal(SIGINT, handler);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            port: 0,
            name: "api".into(),
            echo_env: Some("v\"1".into()),
            health_path: "/api/health".into(),
            server_header: None,
            start_delay: Duration::ZERO,
            unhealthy: false,
        }
    }

    #[test]
    fn answers_every_path_with_name_and_env() {
        let (status, body) = respond(&settings(), "/anything");
        assert_eq!(status, "200 OK");
        assert_eq!(body, r#"{"status":"ok","backend":"api","env":"v\"1"}"#);
    }

    #[test]
    fn slow_requests_wait_the_milliseconds_asked_for_within_a_bound() {
        assert_eq!(slow_delay("ms=2000"), Duration::from_millis(2000));
        assert_eq!(slow_delay("x=1&ms=5"), Duration::from_millis(5));
        assert_eq!(slow_delay(""), Duration::ZERO);
        assert_eq!(slow_delay("ms=soon"), Duration::ZERO);
        assert_eq!(slow_delay("ms=999999999"), LONGEST_SLOW_REQUEST);
    }

    #[test]
    fn unhealthy_mode_fails_only_health_paths() {
        let mut settings = settings();
        settings.unhealthy = true;
        assert_eq!(respond(&settings, "/api/health").0, "503 Service Unavailable");
        assert_eq!(respond(&settings, "/health").0, "503 Service Unavailable");
        assert_eq!(respond(&settings, "/").0, "200 OK");
    }
}
