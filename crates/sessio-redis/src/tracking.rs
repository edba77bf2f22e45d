//! Change tracking (feature `tracking`): Redis tells this process which sessions
//! other processes changed, so that an in-process cache can drop them.
//!
//! One extra RESP3 connection per node subscribes with `CLIENT TRACKING on BCAST
//! PREFIX <prefix>`: Redis then reports every write to a key under the store's prefix,
//! by anyone, whatever this process has read. (Default tracking would need the reads
//! on the tracking connection itself, which a pool cannot promise.)

use std::{fmt, sync::Arc};

use fred::{
    clients::Client,
    interfaces::{ClientLike, EventInterface, TrackingInterface},
    types::{config::ReconnectPolicy, RespVersion},
};
use sessio::{store::Tracked, StoreKey};

use crate::{store::RedisStore, Error};

/// Keeps change tracking on; dropping it (or [`ChangeTracker::stop`]) turns it off.
pub struct ChangeTracker {
    client: Client,
}

impl fmt::Debug for ChangeTracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangeTracker").finish_non_exhaustive()
    }
}

impl ChangeTracker {
    /// Stops tracking and closes the connection.
    pub async fn stop(self) {
        self.client.quit().await.ok();
    }
}

impl Drop for ChangeTracker {
    fn drop(&mut self) {
        let client = self.client.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move { client.quit().await.ok() });
        }
    }
}

impl RedisStore {
    /// Reports, through `on_change`, every change that any process makes to a session
    /// under this store's prefix. `on_change` runs on the connection's task: keep it
    /// short (evicting a cache entry is what it is for).
    ///
    /// A connection error reports [`Tracked::Lost`] at once; once reconnected and
    /// tracking again, [`Tracked::Resumed`]. Caveat: a connection that silently
    /// stops delivering (a network partition without a reset) is only noticed when
    /// it is closed.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use sessio::store::Tracked;
    /// use sessio_redis::RedisStore;
    ///
    /// let store = RedisStore::connect("redis://127.0.0.1:6379/0").await?;
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
        let mut config = self.inner.config.clone();
        config.version = RespVersion::RESP3;
        config.fail_fast = true;
        let policy = ReconnectPolicy::new_exponential(0, 100, 2_000, 2);
        let client = Client::new(config, None, None, Some(policy));
        let on_change: Arc<dyn Fn(Tracked) + Send + Sync> = Arc::new(on_change);
        let prefix = self.inner.prefix.clone();

        let report = on_change.clone();
        let strip = prefix.clone();
        client.on_invalidation(move |invalidation| {
            if invalidation.keys.is_empty() {
                // A null key list: Redis flushed (FLUSHALL / FLUSHDB).
                report(Tracked::Resumed);
            }
            for key in invalidation.keys {
                if let Some(key) = key.as_str().and_then(|k| store_key(&strip, k)) {
                    report(Tracked::Changed(key));
                }
            }
            Ok(())
        });

        let init = client.init().await.map_err(|e| Error::Connect(e.into()))?;
        drop(init);
        client
            .start_tracking(prefix.clone(), true, false, false, false)
            .await
            .map_err(|e| Error::Connect(e.into()))?;

        let lost = on_change.clone();
        client.on_error(move |(error, _server)| {
            tracing::warn!(%error, "sessio-redis: change tracking connection failed");
            lost(Tracked::Lost);
            async { Ok(()) }
        });
        let again = client.clone();
        let report = on_change;
        client.on_reconnect(move |_server| {
            let (client, report, prefix) = (again.clone(), report.clone(), prefix.clone());
            async move {
                // Invalidations sent while disconnected are lost: report nothing
                // trustworthy until tracking is on again.
                report(Tracked::Lost);
                match client
                    .start_tracking(prefix, true, false, false, false)
                    .await
                {
                    Ok(()) => report(Tracked::Resumed),
                    Err(error) => tracing::warn!(%error, "sessio-redis: tracking not resumed"),
                }
                Ok(())
            }
        });
        Ok(ChangeTracker { client })
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
