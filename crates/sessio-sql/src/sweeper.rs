//! [`SweeperHandle`]: the background task that deletes expired sessions.

use std::{future::Future, time::Duration};

use tokio::{sync::oneshot, task::JoinHandle};

/// Stops the sweeper task started by `spawn_sweeper`: when dropped (at once; a batch
/// in flight is abandoned and its transaction rolled back), or gracefully with
/// [`SweeperHandle::shutdown`].
#[derive(Debug)]
pub struct SweeperHandle {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl SweeperHandle {
    /// Starts `sweep` every `interval` on the current Tokio runtime. Must be called
    /// from within a runtime.
    pub(crate) fn spawn<F, Fut>(interval: Duration, mut sweep: F) -> Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (stop, mut stopped) = oneshot::channel::<()>();
        let interval = interval.max(Duration::from_millis(10));
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick completes at once: sweep what expired while we were down.
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = ticks.tick() => {}
                }
                // A batch in flight finishes before a shutdown is noticed.
                sweep().await;
            }
        });
        Self {
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the sweeper after the sweep in flight (if any) and waits for it.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SweeperHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
