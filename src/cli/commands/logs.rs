//! `stackctl logs [-f] [--since WHEN] [--tail N] SERVICE…`

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use crate::cli::args::LogsArgs;
use crate::cli::providers::ProviderOptions;
use crate::cli::report::{CliError, Outcome};
use crate::cli::settings::Settings;
use crate::session::{Access, ConsoleError, ConsoleOutput, ConsoleStream, LogSelection};

use super::open_session;

pub async fn run(settings: &Settings, arguments: &LogsArgs) -> Result<Outcome, CliError> {
    let since = arguments
        .since
        .as_deref()
        .map(|text| since_to_unix_seconds(text, SystemTime::now()))
        .transpose()
        .map_err(|message| {
            CliError::new(message)
                .hint("for example `--since 10m`, `--since 2h` or `--since 2026-05-02T10:14:03Z`")
        })?;
    let selection = LogSelection {
        follow: arguments.follow,
        since,
        tail: arguments.tail,
    };
    let session = open_session(settings, &ProviderOptions::default(), Access::Read, None)?;
    let services = first_of_each(&arguments.services);
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let mut printer = LogPrinter::new(&services);
    let logs = session.logs(&services, &selection, sender);
    tokio::pin!(logs);
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            Some(output) = receiver.recv() => printer.write(&output),
            result = &mut logs => {
                while let Ok(output) = receiver.try_recv() {
                    printer.write(&output);
                }
                printer.finish();
                result.map_err(console_error)?;
                return Ok(Outcome::Success);
            }
            _ = &mut interrupted => {
                // Dropping the streams closes their connections; nothing else to undo.
                while let Ok(output) = receiver.try_recv() {
                    printer.write(&output);
                }
                printer.finish();
                return Ok(Outcome::Interrupted);
            }
        }
    }
}

/// The names in the order given, each once (`api web api` → `api web`): a service
/// named twice would have its log streamed twice.
fn first_of_each(names: &[String]) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    names
        .iter()
        .filter(|name| seen.insert(name.as_str()))
        .cloned()
        .collect()
}

/// `10m` (that long ago), an RFC 3339 time, or unix seconds → unix seconds.
pub fn since_to_unix_seconds(text: &str, now: SystemTime) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    if let Ok(ago) = humantime::parse_duration(text) {
        let then = now.checked_sub(ago).unwrap_or(UNIX_EPOCH);
        return Ok(unix_seconds(then));
    }
    if let Ok(time) = humantime::parse_rfc3339_weak(text) {
        return Ok(unix_seconds(time));
    }
    Err(format!("`--since {text}` is neither a duration nor a time"))
}

fn unix_seconds(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs() as i64
}

/// The engine's console errors, with what to do about them.
pub fn console_error(error: ConsoleError) -> CliError {
    let message = error.to_string();
    match error {
        ConsoleError::UnknownService { nearest, known, .. } => {
            let error = CliError::new(message);
            match nearest {
                Some(nearest) => error.hint(format!("did you mean `{nearest}`?")),
                None if known.is_empty() => error.hint("stack.toml declares no services"),
                None => error.hint(format!(
                    "services in stack.toml: {}",
                    known
                        .iter()
                        .map(|name| format!("`{name}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
        ConsoleError::NoRunningContainer { .. } => CliError::new(message)
            .hint("`stackctl plan` shows whether it is deployed; `stackctl apply` starts it"),
        ConsoleError::NoHost | ConsoleError::Host(_) => CliError::new(message),
    }
}

/// Writes output as it arrives: stdout to stdout, stderr to stderr; with several
/// services, each line prefixed with its service (lines are completed per service and
/// stream first, so two services never mix inside one line).
pub struct LogPrinter {
    prefixer: Option<LinePrefixer>,
}

impl LogPrinter {
    /// Prefixes lines when there are several services.
    pub fn new(services: &[String]) -> Self {
        LogPrinter {
            prefixer: (services.len() > 1).then(|| LinePrefixer::new(services)),
        }
    }

    pub fn write(&mut self, output: &ConsoleOutput) {
        let bytes = match &mut self.prefixer {
            Some(prefixer) => prefixer.feed(&output.service, output.stream, &output.bytes),
            None => output.bytes.clone(),
        };
        emit(output.stream, &bytes);
    }

    /// The last lines of each stream that did not end with a line break.
    pub fn finish(&mut self) {
        if let Some(prefixer) = &mut self.prefixer {
            for (stream, bytes) in prefixer.finish() {
                emit(stream, &bytes);
            }
        }
    }
}

fn emit(stream: ConsoleStream, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    // A closed pipe (`stackctl logs api | head`) is not an error worth a message.
    match stream {
        ConsoleStream::Stdout => {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(bytes);
            let _ = stdout.flush();
        }
        ConsoleStream::Stderr => {
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(bytes);
            let _ = stderr.flush();
        }
    }
}

/// Prefixes whole lines with `service | ` (names padded to the longest, so the columns
/// line up whatever arrives first), keeping each service's and stream's unfinished line
/// until its end arrives.
pub struct LinePrefixer {
    partial: std::collections::BTreeMap<(String, u8), Vec<u8>>,
    width: usize,
}

impl LinePrefixer {
    pub fn new(services: &[String]) -> Self {
        LinePrefixer {
            partial: std::collections::BTreeMap::new(),
            width: services.iter().map(String::len).max().unwrap_or(0),
        }
    }

    /// The complete lines now available, prefixed.
    pub fn feed(&mut self, service: &str, stream: ConsoleStream, bytes: &[u8]) -> Vec<u8> {
        self.width = self.width.max(service.len());
        let key = (service.to_string(), stream_key(stream));
        let pending = self.partial.entry(key).or_default();
        pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = pending.iter().position(|byte| *byte == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            out.extend_from_slice(format!("{service:<width$} | ", width = self.width).as_bytes());
            out.extend_from_slice(&line);
        }
        out
    }

    /// What is left of every unfinished line, prefixed and ended.
    pub fn finish(&mut self) -> Vec<(ConsoleStream, Vec<u8>)> {
        let width = self.width;
        std::mem::take(&mut self.partial)
            .into_iter()
            .filter(|(_, rest)| !rest.is_empty())
            .map(|((service, stream), rest)| {
                let mut line = format!("{service:<width$} | ").into_bytes();
                line.extend_from_slice(&rest);
                line.push(b'\n');
                let stream = if stream == 2 {
                    ConsoleStream::Stderr
                } else {
                    ConsoleStream::Stdout
                };
                (stream, line)
            })
            .collect()
    }
}

fn stream_key(stream: ConsoleStream) -> u8 {
    match stream {
        ConsoleStream::Stdout => 1,
        ConsoleStream::Stderr => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_service_is_streamed_once_in_the_order_named() {
        let named = |names: &[&str]| names.iter().map(|name| name.to_string()).collect();
        let names: Vec<String> = named(&["api", "web", "api", "worker", "web"]);
        assert_eq!(
            first_of_each(&names),
            named(&["api", "web", "worker"]) as Vec<String>
        );
        assert!(first_of_each(&[]).is_empty());
    }

    #[test]
    fn lines_are_prefixed_whole_per_service_and_stream() {
        let mut prefixer = LinePrefixer::new(&["api".to_string(), "worker".to_string()]);
        assert_eq!(
            prefixer.feed("api", ConsoleStream::Stdout, b"first li"),
            b"".to_vec()
        );
        assert_eq!(
            String::from_utf8(prefixer.feed("worker", ConsoleStream::Stdout, b"w1\nw2")).unwrap(),
            "worker | w1\n"
        );
        assert_eq!(
            String::from_utf8(prefixer.feed("api", ConsoleStream::Stdout, b"ne\nsecond\n"))
                .unwrap(),
            "api    | first line\napi    | second\n"
        );
        assert_eq!(
            prefixer.finish(),
            vec![(ConsoleStream::Stdout, b"worker | w2\n".to_vec())]
        );
    }

    #[test]
    fn since_takes_a_duration_ago_a_time_or_unix_seconds() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(since_to_unix_seconds("10m", now), Ok(1_800_000_000 - 600));
        assert_eq!(
            since_to_unix_seconds("2026-05-02T10:14:03Z", now),
            Ok(1_777_716_843)
        );
        assert_eq!(since_to_unix_seconds("1700000000", now), Ok(1_700_000_000));
        assert!(since_to_unix_seconds("yesterday", now).is_err());
    }
}
