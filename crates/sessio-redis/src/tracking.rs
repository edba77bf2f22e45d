//! Change tracking (feature `tracking`): Redis tells this process which sessions
//! other processes changed, so that an in-process cache can drop them.
//!
//! Every pool connection turns on default (per-key) RESP3 tracking with `NOLOOP`
//! (`CLIENT TRACKING ON NOLOOP`, on every node of a cluster). Redis then reports a
//! write to any key that connection read, except the connection's own writes, and the
//! store runs every command on a session on one connection chosen by the key's hash: a
//! commit by this process does not evict the copy it just wrote, a write by anyone
//! else does. The commit script reads its key after writing it, since Redis forgets a
//! tracked key once it invalidates it, even for the client that `NOLOOP` spared.
//!
//! (BCAST tracking on one extra connection, used before, reported this process's own
//! commits too, and fred sends `CLIENT TRACKING … BCAST` to one cluster node only.)

use std::{
    fmt,
    sync::{Arc, Mutex},
};

use fred::{
    clients::{Client, Pool},
    interfaces::{ClientLike, EventInterface, TrackingInterface},
    types::{client::Invalidation, RespVersion},
};
use sessio::{store::Tracked, StoreKey};
use tokio::{sync::broadcast::error::RecvError, task::JoinHandle};

use crate::{store::RedisStore, Error};

/// What a tracker reports to.
type Report = Arc<dyn Fn(Tracked) + Send + Sync>;

/// Keeps change tracking on; dropping it (or [`ChangeTracker::stop`]) turns it off.
pub struct ChangeTracker {
    /// The store's pool, whose connections track.
    pool: Pool,
    /// Listener tasks, aborted when tracking stops.
    tasks: Vec<JoinHandle<Result<(), fred::error::Error>>>,
}

impl fmt::Debug for ChangeTracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangeTracker")
            .field("connections", &self.pool.size())
            .finish_non_exhaustive()
    }
}

impl ChangeTracker {
    /// Stops tracking.
    pub async fn stop(mut self) {
        self.abort_tasks();
        for client in self.pool.clients() {
            client.stop_tracking().await.ok();
        }
    }

    fn abort_tasks(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

impl Drop for ChangeTracker {
    fn drop(&mut self) {
        self.abort_tasks();
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let pool = self.pool.clone();
        handle.spawn(async move {
            for client in pool.clients() {
                client.stop_tracking().await.ok();
            }
        });
    }
}

impl RedisStore {
    /// Reports, through `on_change`, every change that another process (or another
    /// store on other connections) makes to a session under this store's prefix that
    /// this store read since it was last reported. `on_change` runs on a connection's task: keep it
    /// short (evicting a cache entry is what it is for).
    ///
    /// The store's own commits are not reported (tracking runs on the pool
    /// connections with `NOLOOP`), so a cache in front of the store keeps what it
    /// just committed. Needs Redis 6 or later and a store built with
    /// [`RedisStoreBuilder::tracking`](crate::RedisStoreBuilder::tracking) (RESP3);
    /// other stores fail with [`Error::NotTracking`].
    /// The other side of it: a write made through this store (or its
    /// [`pool`](RedisStore::pool)) without going through the cache is not reported
    /// either, so route every session write of this process through the cache, or
    /// make such writes on a store of their own.
    ///
    /// A connection error reports [`Tracked::Lost`] at once; once reconnected and
    /// tracking again, [`Tracked::Resumed`]. So does a burst of invalidations that the
    /// listener fell behind on. Caveat: a connection that silently stops delivering (a
    /// network partition without a reset) is only noticed when it is closed.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use sessio::store::Tracked;
    /// use sessio_redis::RedisStore;
    ///
    /// let store = RedisStore::builder("redis://127.0.0.1:6379/0")?
    ///     .tracking()
    ///     .connect()
    ///     .await?;
    /// let tracker = store
    ///     .track_changes(|change| match change {
    ///         Tracked::Changed(key) => println!("changed: {} bytes of key", key.as_str().len()),
    ///         Tracked::Lost => println!("stop caching"),
    ///         Tracked::Resumed => println!("drop everything, cache again"),
    ///         _ => {}
    ///     })
    ///     .await?;
    /// # drop(tracker); Ok(()) }
    /// ```
    pub async fn track_changes(
        &self,
        on_change: impl Fn(Tracked) + Send + Sync + 'static,
    ) -> Result<ChangeTracker, Error> {
        let pool = self.inner.pool.clone();
        if pool.protocol_version() != RespVersion::RESP3 {
            return Err(Error::NotTracking);
        }
        let report: Report = Arc::new(on_change);
        let health = Arc::new(PoolHealth {
            tracking: Mutex::new(vec![false; pool.clients().len()]),
            report: report.clone(),
        });
        let mut tracker = ChangeTracker {
            pool: pool.clone(),
            tasks: Vec::with_capacity(4 * pool.clients().len()),
        };
        for (i, client) in pool.clients().iter().enumerate() {
            // Listen before tracking starts: no invalidation may go unheard.
            tracker.tasks.push(listen(
                client,
                self.inner.prefix.clone(),
                report.clone(),
                health.clone(),
            ));
            start_pool_tracking(client).await?;
            health.set(i, true);
            let down = health.clone();
            tracker.tasks.push(client.on_error(move |(error, _server)| {
                tracing::warn!(%error, "sessio-redis: a tracking pool connection failed");
                down.set(i, false);
                async { Ok(()) }
            }));
            // A cluster node joined or left: a new node's connection tracks nothing
            // until told to; tell every node again, as on a reconnection.
            let again = client.clone();
            let up = health.clone();
            tracker.tasks.push(
                client.on_cluster_change(move |_changes| rearm(again.clone(), up.clone(), i)),
            );
            let again = client.clone();
            let up = health.clone();
            // The new connection tracks nothing yet, and invalidations sent while it
            // was away are lost: trust nothing cached until it tracks again. Whatever
            // a load on it cached before that is dropped by the flush that `Resumed`
            // brings, and a load in flight across `Resumed` is refused by the cache's
            // generation check.
            tracker
                .tasks
                .push(client.on_reconnect(move |_server| rearm(again.clone(), up.clone(), i)));
        }
        // Anything cached before every connection tracked may never be invalidated.
        report(Tracked::Resumed);
        Ok(tracker)
    }
}

/// Which pool connections track: the cache may serve only while all of them do.
struct PoolHealth {
    tracking: Mutex<Vec<bool>>,
    report: Report,
}

impl PoolHealth {
    /// Records whether connection `i` tracks. A connection going down reports
    /// [`Tracked::Lost`]; the last one coming back reports [`Tracked::Resumed`].
    fn set(&self, i: usize, on: bool) {
        let all = {
            let mut tracking = self
                .tracking
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(slot) = tracking.get_mut(i) {
                *slot = on;
            }
            tracking.iter().all(|&t| t)
        };
        match (on, all) {
            (false, _) => (self.report)(Tracked::Lost),
            (true, true) => (self.report)(Tracked::Resumed),
            (true, false) => {}
        }
    }

    /// Invalidations were missed: drop everything, and serve from the cache again
    /// only if every connection tracks.
    fn missed(&self) {
        let all = self
            .tracking
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .all(|&t| t);
        (self.report)(if all { Tracked::Resumed } else { Tracked::Lost });
    }
}

/// Turns tracking on again on pool connection `i` (after a reconnection or a cluster
/// change); the cache treats the connection as not tracking until Redis confirms.
async fn rearm(
    client: Client,
    health: Arc<PoolHealth>,
    i: usize,
) -> Result<(), fred::error::Error> {
    health.set(i, false);
    match start_pool_tracking(&client).await {
        Ok(()) => health.set(i, true),
        Err(error) => tracing::warn!(%error, "sessio-redis: tracking not resumed"),
    }
    Ok(())
}

/// `CLIENT TRACKING ON NOLOOP` on a pool connection (on every node, were it
/// clustered).
async fn start_pool_tracking(client: &Client) -> Result<(), Error> {
    client
        .start_tracking(Vec::<String>::new(), false, false, false, true)
        .await
        .map_err(|e| Error::Connect(e.into()))
}

/// Reports the invalidations `client` receives. fred's own `on_invalidation` stops
/// for good when its listener falls behind the broadcast channel; here a lag reports
/// [`Tracked::Resumed`] (drop everything: some invalidations were missed) and goes on.
fn listen(
    client: &Client,
    prefix: String,
    report: Report,
    health: Arc<PoolHealth>,
) -> JoinHandle<Result<(), fred::error::Error>> {
    let mut rx = client.invalidation_rx();
    tokio::spawn(async move {
        let missed = || health.missed();
        loop {
            match rx.recv().await {
                Ok(invalidation) => deliver(&prefix, &report, &missed, invalidation),
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "sessio-redis: invalidations missed, flushing");
                    missed();
                }
                Err(RecvError::Closed) => return Ok(()),
            }
        }
    })
}

fn deliver(prefix: &str, report: &Report, missed: &dyn Fn(), invalidation: Invalidation) {
    if invalidation.keys.is_empty() {
        // A null key list: Redis flushed (FLUSHALL / FLUSHDB).
        missed();
    }
    for key in invalidation.keys {
        if let Some(key) = key.as_str().and_then(|k| store_key(prefix, k)) {
            report(Tracked::Changed(key));
        }
    }
}

/// The store key inside a Redis key `{prefix}{<store key>}`.
fn store_key(prefix: &str, redis_key: &str) -> Option<StoreKey> {
    let inner = redis_key
        .strip_prefix(prefix)?
        .strip_prefix('{')?
        .strip_suffix('}')?;
    Some(StoreKey::from_stored(inner))
}

#[cfg(test)]
mod tests {
    use super::store_key;

    #[test]
    fn store_keys_come_out_of_redis_keys() {
        assert_eq!(
            store_key("sessio:", "sessio:{abc}").map(|k| k.as_str().to_owned()),
            Some("abc".to_owned())
        );
        assert!(store_key("sessio:", "other:{abc}").is_none());
        assert!(store_key("sessio:", "sessio:abc").is_none());
    }
}
