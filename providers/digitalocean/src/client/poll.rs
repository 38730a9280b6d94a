//! Waiting for DigitalOcean to finish something: the polling cadence ([`PollPolicy`]),
//! slowed down when the hourly budget runs low, and waiting for an action to complete.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Client, ClientError};
use crate::api::Action;

/// Timing of the loops that wait for DigitalOcean to finish something.
#[derive(Clone, Debug)]
pub struct PollPolicy {
    pub interval: Duration,
    /// The whole wait (an action, a droplet becoming active) gives up after this.
    pub timeout: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            interval: Duration::from_secs(3),
            timeout: Duration::from_secs(600),
        }
    }
}

/// Below this many remaining requests in the hourly budget, polling slows down.
const LOW_BUDGET: i64 = 100;

impl Client {
    /// The last `ratelimit-remaining` DigitalOcean reported, if any answer carried one.
    pub fn remaining_budget(&self) -> Option<i64> {
        let remaining = self.remaining_budget.load(Ordering::Relaxed);
        (remaining >= 0).then_some(remaining)
    }

    /// The pause between two polls: four times longer when the hourly budget runs low,
    /// so that waiting for a droplet never starves the rest of an apply.
    pub(super) fn poll_pause(&self, poll: &PollPolicy) -> Duration {
        match self.remaining_budget() {
            Some(remaining) if remaining < LOW_BUDGET => poll.interval.saturating_mul(4),
            _ => poll.interval,
        }
    }

    /// Polls an action until it completes; `errored` and running out of time are failures.
    pub async fn wait_for_action(&self, id: i64, poll: &PollPolicy) -> Result<Action, ClientError> {
        let started = Instant::now();
        loop {
            let action = self.get_action(id).await?;
            match action.status.as_str() {
                "completed" => return Ok(action),
                "errored" => {
                    return Err(ClientError::Failed(format!(
                        "DigitalOcean action {id} ({}) errored",
                        action.kind
                    )))
                }
                _ => {}
            }
            let pause = self.poll_pause(poll);
            if started.elapsed() + pause > poll.timeout {
                return Err(ClientError::Timeout(format!(
                    "DigitalOcean action {id} ({}) still {} after {:?}",
                    action.kind,
                    action.status,
                    started.elapsed()
                )));
            }
            tokio::time::sleep(pause).await;
        }
    }
}
