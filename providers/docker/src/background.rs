//! Work that decides no action's success — stopping and removing the container a replace
//! left behind — runs beside the next actions instead of before them. The apply still
//! ends only when all of it is done: `end_apply` waits for it (before the host lock is
//! released), and a failure is reported there. What the engine reads of the host after
//! the actions (the security facts, the run folder's container list) runs beside it and
//! leaves out the containers still being retired.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use stackctl_provider::ProviderError;
use tokio::task::JoinHandle;

use crate::provider::DockerProvider;
use crate::provider_error::failed;

/// The tasks started during one apply.
#[derive(Default)]
pub(crate) struct BackgroundWork {
    tasks: Mutex<Vec<JoinHandle<Result<(), ProviderError>>>>,
    /// The containers the tasks are retiring, until each task ends: what is read of the
    /// stack beside them (the security report's facts, the run folder's container list)
    /// leaves them out, since they are on their way out.
    retiring: Arc<Mutex<BTreeSet<String>>>,
    /// Told each time a retiring container's task ends.
    retired: Arc<tokio::sync::Notify>,
}

impl BackgroundWork {
    /// Starts `work`, which retires `container`, now; [`BackgroundWork::retiring`] names
    /// the container until `work` ends.
    pub(crate) fn spawn_retiring(
        &self,
        container: String,
        work: impl Future<Output = Result<(), ProviderError>> + Send + 'static,
    ) {
        lock(&self.retiring).insert(container.clone());
        let (retiring, retired) = (self.retiring.clone(), self.retired.clone());
        self.spawn(async move {
            let result = work.await;
            lock(&retiring).remove(&container);
            retired.notify_waiters();
            result
        });
    }

    /// Waits until no container is being retired (stopped or not: a failure is reported by
    /// [`BackgroundWork::finish`]), without taking the tasks from `finish`.
    pub(crate) async fn until_retired(&self) {
        loop {
            // Created before the check, so that a task ending in between still wakes it.
            let retired = self.retired.notified();
            if lock(&self.retiring).is_empty() {
                return;
            }
            retired.await;
        }
    }

    /// The containers being retired right now. Taken before a list is asked for, so that
    /// a container listed while it was going is left out even if its task ended since.
    pub(crate) fn retiring(&self) -> BTreeSet<String> {
        lock(&self.retiring).clone()
    }

    /// Starts `work` now; [`BackgroundWork::finish`] waits for it.
    pub(crate) fn spawn(
        &self,
        work: impl Future<Output = Result<(), ProviderError>> + Send + 'static,
    ) {
        let task = tokio::spawn(work);
        lock(&self.tasks).push(task);
    }

    /// Waits for every task started so far; the first failure, after all have ended.
    pub(crate) async fn finish(&self) -> Result<(), ProviderError> {
        let mut first_failure = None;
        loop {
            let tasks: Vec<_> = std::mem::take(&mut *lock(&self.tasks));
            if tasks.is_empty() {
                break;
            }
            for task in tasks {
                let result = match task.await {
                    Ok(result) => result,
                    Err(error) => Err(failed(format!("a clean-up task stopped: {error}"), None)),
                };
                if let Err(error) = result {
                    first_failure.get_or_insert(error);
                }
            }
        }
        match first_failure {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// The guarded value, also after a panic elsewhere (the sets stay consistent: one insert
/// or remove at a time).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl DockerProvider {
    /// Waits until the containers replaced so far are stopped and removed. `end_apply`
    /// calls it; so do tests that apply actions one by one.
    pub async fn finish_background_work(&self) -> Result<(), ProviderError> {
        self.background.finish().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn finish_waits_for_every_task_and_reports_the_first_failure() {
        let work = BackgroundWork::default();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for index in 0..3 {
            let done = done.clone();
            work.spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(20 * index)).await;
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if index == 1 {
                    Err(failed("cannot remove container b", None))
                } else {
                    Ok(())
                }
            });
        }
        let error = work.finish().await.unwrap_err();
        assert_eq!(done.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert_eq!(error.to_string(), "cannot remove container b");
        assert!(
            work.finish().await.is_ok(),
            "finished work is not waited for twice"
        );
    }

    #[tokio::test]
    async fn a_container_is_retiring_until_its_task_ends() {
        let work = BackgroundWork::default();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        work.spawn_retiring("abc".into(), async move {
            let _ = released.await;
            Ok(())
        });
        assert_eq!(work.retiring(), BTreeSet::from(["abc".to_string()]));
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(50), work.until_retired());
        assert!(waited.await.is_err(), "still retiring");
        release.send(()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), work.until_retired())
            .await
            .expect("retired");
        assert!(work.retiring().is_empty());
        work.finish().await.unwrap();
    }
}
