//! Progress of an apply: on a terminal, one line per running action with a spinner and
//! its elapsed time; elsewhere (CI, logs), one plain timestamped line per event.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::apply::redact::redact;
use crate::apply::Event;

pub struct Progress {
    live: Option<MultiProgress>,
    bars: BTreeMap<String, ProgressBar>,
    color: bool,
    secrets: Vec<String>,
}

impl Progress {
    pub fn new(color: bool, secrets: Vec<String>) -> Progress {
        let live = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Progress {
            live,
            bars: BTreeMap::new(),
            color,
            secrets,
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// The words for a finished event: `done (1.2s)`, `failed (0.3s): why`.
    fn outcome(&self, event: &Event) -> String {
        let duration = event
            .duration_ms
            .map(|milliseconds| format!(" ({:.1}s)", milliseconds as f64 / 1000.0))
            .unwrap_or_default();
        let message = event
            .message
            .as_deref()
            .map(|message| format!(": {}", redact(message, &self.secrets)))
            .unwrap_or_default();
        match event.event {
            "succeeded" => format!("{}{duration}", self.paint("32", "done")),
            "failed" => format!("{}{duration}{message}", self.paint("31", "failed")),
            "unreachable" => format!(
                "{}{message}",
                self.paint("33", "skipped, target unreachable")
            ),
            "skipped" => format!("{}{message}", self.paint("33", "skipped")),
            "interrupted" => format!("{}{message}", self.paint("33", "interrupted")),
            other => format!("{other}{message}"),
        }
    }

    pub fn event(&mut self, event: &Event) {
        if event.event == "progress" {
            self.progress_line(event);
            return;
        }
        match &self.live {
            Some(live) => {
                if event.event == "started" {
                    let bar = live.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_message(format!(
                        "{}: {}",
                        event.address,
                        event.message.as_deref().unwrap_or("working")
                    ));
                    bar.enable_steady_tick(Duration::from_millis(120));
                    self.bars.insert(event.address.clone(), bar);
                    return;
                }
                let line = format!("{}: {}", event.address, self.outcome(event));
                match self.bars.remove(&event.address) {
                    Some(bar) => {
                        bar.set_style(
                            ProgressStyle::with_template("  {msg}")
                                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                        );
                        bar.finish_with_message(line);
                    }
                    None => {
                        let _ = live.println(format!("  {line}"));
                    }
                }
            }
            None => {
                let time = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
                let words = if event.event == "started" {
                    format!("{}…", event.message.as_deref().unwrap_or("working"))
                } else {
                    self.outcome(event)
                };
                eprintln!("[{time}] {}: {words}", event.address);
            }
        }
    }

    /// A line a running action streamed (a build's or a pull's output): the action's
    /// spinner shows the latest; without a terminal, each line is printed.
    fn progress_line(&mut self, event: &Event) {
        let line = redact(event.message.as_deref().unwrap_or(""), &self.secrets);
        match (&self.live, self.bars.get(&event.address)) {
            (Some(_), Some(bar)) => bar.set_message(format!("{}: {line}", event.address)),
            (Some(live), None) => {
                let _ = live.println(format!("  {}: {line}", event.address));
            }
            (None, _) => {
                let time = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
                eprintln!("[{time}]   {}: {line}", event.address);
            }
        }
    }
}
