//! `stackctl exec SERVICE -- COMMAND…`
//!
//! With a terminal on stdin (and stdout) the command gets a terminal: ours is put in raw
//! mode for the time of the command (keys, Ctrl-C included, go to the command) and its
//! size follows ours. Otherwise stdin is piped to the command and its end closes the
//! command's stdin. The command's exit code is stackctl's.

use std::io::{IsTerminal, Read, Write};
use std::process::{Command, Stdio};

use tokio::sync::mpsc;

use crate::cli::args::ExecArgs;
use crate::cli::providers::ProviderOptions;
use crate::cli::report::{CliError, Outcome};
use crate::cli::settings::Settings;
use crate::session::{Access, ConsoleStream, ExecCommand, ExecInput};

use super::logs::console_error;
use super::open_session;

pub async fn run(settings: &Settings, arguments: &ExecArgs) -> Result<Outcome, CliError> {
    let session = open_session(settings, &ProviderOptions::default(), Access::Read, None)?;
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let command = ExecCommand {
        command: arguments.command.clone(),
        tty,
        size: if tty { terminal_size() } else { None },
    };
    let (stdin_sender, stdin) = mpsc::channel(16);
    let (resize_sender, resizes) = mpsc::channel(4);
    let raw_mode = if tty { RawMode::enter() } else { None };
    read_stdin_in_background(stdin_sender);
    if tty {
        watch_terminal_size(resize_sender);
    } else {
        drop(resize_sender);
    }
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let exec = session.exec(
        &arguments.service,
        &command,
        ExecInput { stdin, resizes },
        sender,
    );
    tokio::pin!(exec);
    let result = loop {
        tokio::select! {
            Some(output) = receiver.recv() => write(output.stream, &output.bytes),
            result = &mut exec => {
                while let Ok(output) = receiver.try_recv() {
                    write(output.stream, &output.bytes);
                }
                break result;
            }
        }
    };
    drop(raw_mode);
    let code = result.map_err(console_error)?;
    // Exit codes are 0–255 on Unix; Docker reports a signal death as 128 + signal.
    Ok(match code {
        0 => Outcome::Success,
        code => Outcome::Exited(u8::try_from(code.rem_euclid(256)).unwrap_or(1)),
    })
}

fn write(stream: ConsoleStream, bytes: &[u8]) {
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

/// Reads stdin on a plain thread (a blocking read of a terminal never ends by itself, and
/// the async runtime would wait for it at exit); its end drops the sender, which closes
/// the command's stdin.
fn read_stdin_in_background(sender: mpsc::Sender<Vec<u8>>) {
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            match stdin.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(read) => {
                    if sender.blocking_send(buffer[..read].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
}

/// Sends the terminal's new size each time it changes (SIGWINCH).
fn watch_terminal_size(sender: mpsc::Sender<(u16, u16)>) {
    tokio::spawn(async move {
        let Ok(mut changes) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        while changes.recv().await.is_some() {
            if let Some(size) = terminal_size() {
                if sender.send(size).await.is_err() {
                    return;
                }
            }
        }
    });
}

/// Rows and columns of the terminal on stdin, as `stty size` reports them.
fn terminal_size() -> Option<(u16, u16)> {
    let output = Command::new("stty")
        .arg("size")
        .stdin(Stdio::inherit())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    parse_stty_size(&String::from_utf8_lossy(&output.stdout))
}

fn parse_stty_size(text: &str) -> Option<(u16, u16)> {
    let mut numbers = text.split_whitespace().map(|word| word.parse::<u16>().ok());
    match (numbers.next()??, numbers.next()??) {
        (0, _) | (_, 0) => None,
        size => Some(size),
    }
}

/// The terminal in raw mode (no echo, no line editing, no signals from keys) until
/// dropped, which restores the settings it had. `stty` does it, so that no terminal
/// library is needed for two calls.
struct RawMode {
    saved: String,
}

impl RawMode {
    fn enter() -> Option<RawMode> {
        let saved = Command::new("stty")
            .arg("-g")
            .stdin(Stdio::inherit())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|output| output.status.success())?;
        let saved = String::from_utf8_lossy(&saved.stdout).trim().to_string();
        let entered = Command::new("stty")
            .args(["raw", "-echo"])
            .stdin(Stdio::inherit())
            .status()
            .is_ok_and(|status| status.success());
        entered.then_some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = Command::new("stty")
            .arg(&self.saved)
            .stdin(Stdio::inherit())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stty_size_is_rows_then_columns() {
        assert_eq!(parse_stty_size("24 80\n"), Some((24, 80)));
        assert_eq!(parse_stty_size("0 0\n"), None);
        assert_eq!(parse_stty_size(""), None);
    }
}
