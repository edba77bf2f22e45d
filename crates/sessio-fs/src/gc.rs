//! The background task that purges expired session files.

use std::{sync::Weak, time::Duration};

use tokio::{sync::watch, task::JoinHandle};

use crate::store::Inner;

/// Runs `purge_expired` every `interval` until `stop` fires or the store is dropped.
pub(crate) fn spawn(
    inner: Weak<Inner>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            // `changed` returns when shutdown is requested (Ok) or every store handle
            // is gone (Err: the sender lives in the store).
            if tokio::time::timeout(interval, stop.changed()).await.is_ok() {
                break;
            }
            let Some(inner) = inner.upgrade() else { break };
            match tokio::task::spawn_blocking(move || inner.purge_expired()).await {
                Ok(Ok(n)) if n > 0 => {
                    tracing::debug!(removed = n, "fs store: purged expired sessions")
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "fs store: purging expired sessions failed")
                }
                Err(e) => tracing::error!(error = %e, "fs store: the purge task panicked"),
            }
        }
        tracing::debug!("fs store: expiry task stopped");
    })
}
