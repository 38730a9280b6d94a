//! `state/<stack>.lock`: one writer at a time, held by the kernel.
//!
//! The lock is an exclusive file lock (`flock`) on the lock file, held for the whole run
//! through an open file; the kernel releases it when the process ends, however it ends
//! (kill -9 included), so no run ever leaves a lock that needs `stackctl state unlock`.
//! The file also names its holder (pid, host, user, command, since) for the message a
//! second writer gets. A file that names a holder while nobody holds the kernel lock was
//! left by a run that is gone: the next writer takes it over and reports whose it was.
//!
//! The file itself is never removed: removing it would let two runs lock two different
//! files under the same name.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::StateError;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    pub pid: u32,
    pub host: String,
    pub user: String,
    pub command: String,
    /// RFC 3339, UTC.
    pub since: String,
}

impl LockHolder {
    pub fn current(command: &str) -> Self {
        LockHolder {
            pid: std::process::id(),
            host: gethostname::gethostname().to_string_lossy().to_string(),
            user: whoami::username(),
            command: command.to_string(),
            since: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        }
    }

    fn unknown() -> Self {
        LockHolder {
            pid: 0,
            host: "unknown".into(),
            user: "unknown".into(),
            command: "unknown".into(),
            since: "unknown".into(),
        }
    }
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{}@{} (pid {}, `{}`, since {})",
            self.user, self.host, self.pid, self.command, self.since
        )
    }
}

/// A held lock; dropping it (or the process ending) releases the lock.
#[derive(Debug)]
pub struct StateLock {
    file: File,
    /// The holder named in the file when this run took it over from a run that is gone.
    taken_over_from: Option<LockHolder>,
}

/// How often, and how long apart, a busy lock is tried again before giving up: `plan`
/// probes the lock for an instant (to say who holds it), which must not make a
/// concurrent apply fail.
const ATTEMPTS: u32 = 5;
const RETRY_DELAY: Duration = Duration::from_millis(40);

impl StateLock {
    pub fn acquire(path: &Path, stack: &str, command: &str) -> Result<StateLock, StateError> {
        let mut file = open(path)?;
        let mut attempt = 1;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if attempt < ATTEMPTS => {
                    attempt += 1;
                    std::thread::sleep(RETRY_DELAY);
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(StateError::Locked {
                        stack: stack.to_string(),
                        holder: Box::new(
                            read_holder(&mut file).unwrap_or_else(LockHolder::unknown),
                        ),
                        path: path.display().to_string(),
                    })
                }
                Err(TryLockError::Error(source)) => return Err(io_error("lock", path, source)),
            }
        }
        let taken_over_from = read_holder(&mut file);
        let holder = LockHolder::current(command);
        let text = serde_json::to_string_pretty(&holder).unwrap_or_default();
        write_contents(&mut file, text.as_bytes())
            .map_err(|source| io_error("write", path, source))?;
        Ok(StateLock {
            file,
            taken_over_from,
        })
    }

    /// [`StateLock::acquire`], waiting up to `timeout` for a live holder to finish
    /// (`--lock-timeout`): tried again with a growing pause (0.1 s doubling up to 2 s),
    /// saying once per holder who it waits for. A zero timeout fails at once; one too
    /// long for the clock to add waits without a deadline.
    ///
    /// Called from async commands: each pause tells the runtime that this thread
    /// blocks, so that other tasks move to another worker meanwhile.
    pub fn acquire_waiting(
        path: &Path,
        stack: &str,
        command: &str,
        timeout: Duration,
    ) -> Result<StateLock, StateError> {
        let deadline = std::time::Instant::now().checked_add(timeout);
        let before_deadline =
            || deadline.is_none_or(|deadline| std::time::Instant::now() < deadline);
        let mut pause = Duration::from_millis(100);
        let mut announced: Option<LockHolder> = None;
        loop {
            match StateLock::acquire(path, stack, command) {
                Err(StateError::Locked { holder, .. }) if before_deadline() => {
                    if announced.as_ref() != Some(&*holder) {
                        tracing::warn!(
                            "the state `{stack}` is locked by {holder}; waiting up to {} for it (`--lock-timeout`)",
                            humantime::format_duration(timeout)
                        );
                        announced = Some(*holder);
                    }
                    let left = deadline.map_or(pause, |deadline| {
                        deadline.saturating_duration_since(std::time::Instant::now())
                    });
                    blocking_sleep(pause.min(left));
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                other => return other,
            }
        }
    }

    /// The run whose lock this one took over (it ended without releasing it: killed, or
    /// its machine lost power), for a warning.
    pub fn taken_over_from(&self) -> Option<&LockHolder> {
        self.taken_over_from.as_ref()
    }

    /// Who holds the lock at `path` right now, if a live run does. Probes the kernel
    /// lock for an instant.
    pub fn holder(path: &Path) -> Option<LockHolder> {
        let mut file = File::open(path).ok()?;
        match file.try_lock_shared() {
            Ok(()) => None,
            Err(TryLockError::WouldBlock) => {
                Some(read_holder(&mut file).unwrap_or_else(LockHolder::unknown))
            }
            Err(TryLockError::Error(_)) => None,
        }
    }

    /// Clears the holder left in the file by a run that is gone. Returns who it was.
    /// Refuses while a live run holds the lock: removing its lock would let a second
    /// writer in.
    pub fn force_unlock(path: &Path, stack: &str) -> Result<Option<LockHolder>, StateError> {
        if !path.exists() {
            return Ok(None);
        }
        let lock = StateLock::acquire(path, stack, "stackctl state unlock")?;
        let previous = lock.taken_over_from.clone();
        drop(lock);
        Ok(previous)
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        // Empty means "free"; the kernel lock goes with the file descriptor.
        let _ = write_contents(&mut self.file, b"");
        let _ = self.file.unlock();
    }
}

fn open(path: &Path) -> Result<File, StateError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| io_error("create", parent, source))?;
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|source| io_error("open", path, source))
}

fn read_holder(file: &mut File) -> Option<LockHolder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_contents(file: &mut File, contents: &[u8]) -> std::io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(contents)?;
    file.sync_all()
}

fn io_error(operation: &'static str, path: &Path, source: std::io::Error) -> StateError {
    StateError::Io {
        operation,
        path: path.display().to_string(),
        source,
    }
}

/// Sleeps on this thread; inside a multi-threaded tokio runtime, first hands this
/// worker's other tasks to another one (a plain sleep there would stall them).
fn blocking_sleep(pause: Duration) {
    let in_multi_threaded_runtime = tokio::runtime::Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if in_multi_threaded_runtime {
        tokio::task::block_in_place(|| std::thread::sleep(pause));
    } else {
        std::thread::sleep(pause);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_left_by_a_killed_run_is_taken_over_naming_its_holder() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("demo.lock");
        // What a run killed with -9 leaves: the file naming it, and no kernel lock.
        let gone = LockHolder {
            pid: 999_999,
            ..LockHolder::current("stackctl apply")
        };
        std::fs::write(&path, serde_json::to_string(&gone).unwrap()).unwrap();
        assert_eq!(StateLock::holder(&path), None, "nobody holds it");
        let lock = StateLock::acquire(&path, "demo", "stackctl apply").unwrap();
        assert_eq!(lock.taken_over_from(), Some(&gone));
        assert_eq!(
            StateLock::holder(&path).map(|holder| holder.pid),
            Some(std::process::id())
        );
        drop(lock);
        assert_eq!(StateLock::holder(&path), None);
        let again = StateLock::acquire(&path, "demo", "stackctl apply").unwrap();
        assert_eq!(
            again.taken_over_from(),
            None,
            "a released lock is not taken over"
        );
    }

    #[test]
    fn a_waiting_writer_gets_the_lock_once_its_holder_releases_it_or_times_out() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("demo.lock");
        let held = StateLock::acquire(&path, "demo", "stackctl apply").unwrap();
        let started = std::time::Instant::now();
        let error =
            StateLock::acquire_waiting(&path, "demo", "stackctl apply", Duration::from_millis(300))
                .unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(error.to_string().contains("locked by"), "{error}");
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(held);
        });
        let lock =
            StateLock::acquire_waiting(&path, "demo", "stackctl apply", Duration::from_secs(10));
        assert!(lock.is_ok(), "{lock:?}");
        release.join().unwrap();
    }

    #[test]
    fn a_timeout_too_long_for_the_clock_waits_without_a_deadline() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("demo.lock");
        // `Instant::now() + Duration::MAX` panics; a free lock is taken at once.
        let lock = StateLock::acquire_waiting(&path, "demo", "stackctl apply", Duration::MAX);
        assert!(lock.is_ok(), "{lock:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn waiting_inside_the_runtime_leaves_its_other_tasks_running() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("demo.lock");
        let held = StateLock::acquire(&path, "demo", "stackctl apply").unwrap();
        // The runtime's only worker waits for the lock; a task beside it still ticks.
        let waiting_path = path.clone();
        let waiter = tokio::spawn(async move {
            let result = StateLock::acquire_waiting(
                &waiting_path,
                "demo",
                "stackctl apply",
                Duration::from_millis(600),
            );
            (result.map(drop), std::time::Instant::now())
        });
        let ticker = tokio::spawn(async {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            std::time::Instant::now()
        });
        let (result, waiter_done) = waiter.await.unwrap();
        let ticker_done = ticker.await.unwrap();
        assert!(result.is_err(), "the lock is held");
        assert!(
            ticker_done < waiter_done,
            "the other task waited for the lock wait to end"
        );
        drop(held);
    }

    #[test]
    fn a_held_lock_refuses_a_second_writer_and_a_forced_unlock() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("demo.lock");
        let _held = StateLock::acquire(&path, "demo", "stackctl apply").unwrap();
        let error = StateLock::acquire(&path, "demo", "stackctl apply").unwrap_err();
        assert!(error.to_string().contains("locked by"), "{error}");
        assert!(StateLock::force_unlock(&path, "demo").is_err());
    }
}
