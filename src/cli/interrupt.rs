//! Ctrl-C and SIGTERM during an apply: the first stops new actions and lets the running
//! ones finish (for at most [`GRACE`]); the second — or the end of the grace period —
//! aborts them. The session records what completed and releases both locks either way;
//! the command then exits 130.
//!
//! The handler is installed only around the apply itself: before it (planning, the
//! confirmation prompt) Ctrl-C ends the process at once, which is safe because nothing
//! has changed and the kernel releases the state lock.

use std::time::Duration;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;

use crate::apply::{InterruptSignal, Interruption};

/// How long the running actions may take to finish after the first interrupt.
pub const GRACE: Duration = Duration::from_secs(30);

/// Watches SIGINT and SIGTERM while it lives; dropping it stops watching.
pub struct InterruptHandler {
    task: tokio::task::JoinHandle<()>,
}

impl InterruptHandler {
    /// Installs the handler and returns the signal to hand to the executor. When the
    /// signals cannot be watched (no signal support), the apply simply cannot be
    /// interrupted gracefully — Ctrl-C then ends the process as before.
    pub fn install() -> (InterruptHandler, InterruptSignal) {
        let (sender, receiver) = InterruptSignal::new();
        let signals = signal(SignalKind::interrupt())
            .and_then(|interrupt| Ok((interrupt, signal(SignalKind::terminate())?)));
        let task = match signals {
            Ok((interrupt, terminate)) => tokio::spawn(watch(sender, interrupt, terminate)),
            Err(error) => {
                tracing::warn!("cannot watch for Ctrl-C: {error}");
                tokio::spawn(async {})
            }
        };
        (InterruptHandler { task }, receiver)
    }
}

impl Drop for InterruptHandler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn watch(sender: watch::Sender<Interruption>, mut interrupt: Signal, mut terminate: Signal) {
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    eprintln!(
        "\nInterrupted: no new action starts; waiting up to {}s for the running ones to finish. Press Ctrl-C again to abort them.",
        GRACE.as_secs()
    );
    let _ = sender.send(Interruption::Stop);
    tokio::select! {
        _ = interrupt.recv() => eprintln!("\nInterrupted again: aborting the running actions."),
        _ = terminate.recv() => eprintln!("\nTerminated: aborting the running actions."),
        _ = tokio::time::sleep(GRACE) => eprintln!(
            "\nThe running actions did not finish within {}s: aborting them.",
            GRACE.as_secs()
        ),
    }
    let _ = sender.send(Interruption::Abort);
}

/// Ctrl-C and SIGTERM during a restore: the restore cannot stop halfway safely (the
/// services it stopped must be started again), so the first signal only says so and the
/// restore runs to its end (bounded by its `timeout`); the second quits at once.
pub struct RestoreInterruptHandler {
    task: tokio::task::JoinHandle<()>,
}

impl RestoreInterruptHandler {
    /// `stopped`: the services the restore stops, named in the message of a forced quit.
    pub fn install(stopped: String) -> RestoreInterruptHandler {
        let signals = signal(SignalKind::interrupt())
            .and_then(|interrupt| Ok((interrupt, signal(SignalKind::terminate())?)));
        let task = match signals {
            Ok((interrupt, terminate)) => {
                tokio::spawn(finish_restore_first(stopped, interrupt, terminate))
            }
            Err(error) => {
                tracing::warn!("cannot watch for Ctrl-C: {error}");
                tokio::spawn(async {})
            }
        };
        RestoreInterruptHandler { task }
    }
}

impl Drop for RestoreInterruptHandler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn finish_restore_first(stopped: String, mut interrupt: Signal, mut terminate: Signal) {
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    eprintln!(
        "\nInterrupted: the restore runs to its end, then the services it stopped are started again. Press Ctrl-C again to quit at once."
    );
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    eprintln!(
        "\nInterrupted again: quitting. The restore may still be running on the host, and {stopped} may be stopped: `stackctl apply` starts them."
    );
    std::process::exit(130);
}
