//! `--cache N`: a `sessio-tiered` cache in front of an opened store, kept coherent by
//! the store's change channel where it has one.

use std::{any::Any, time::Duration};

use sessio_tiered::TieredStore;

use crate::{open_error, Handle, Opened, SpecError};

/// Without a change channel (MySQL, SQLite shared by several processes), a cached
/// session is reloaded after this long.
pub const UNTRACKED_STALENESS: Duration = Duration::from_secs(1);

/// A cached store and what keeps its change channel open (hold it as long as the store
/// is used).
pub struct Cached {
    /// The cache, over the opened store.
    pub store: TieredStore,
    /// The change channel (Redis tracking, PostgreSQL `LISTEN`), if any.
    pub channel: Option<Box<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for Cached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached")
            .field("store", &self.store)
            .field("tracked", &self.channel.is_some())
            .finish()
    }
}

impl Opened {
    /// Puts a cache with room for `entries` sessions in front of the store. Redis and
    /// PostgreSQL feed it their changes; MySQL and SQLite (which may be shared by
    /// other processes) bound staleness to [`UNTRACKED_STALENESS`]; memory, redb and
    /// file stores belong to this process alone and need neither.
    pub(crate) async fn cached(self, entries: usize) -> Result<Cached, SpecError> {
        let builder = TieredStore::builder_shared(self.store.clone()).max_entries(entries);
        match self.handle {
            #[cfg(feature = "redis")]
            Handle::Redis(redis) => {
                let store = builder.build();
                let tracker = redis
                    .track_changes({
                        let invalidator = store.invalidator();
                        move |change| invalidator.apply(change)
                    })
                    .await
                    .map_err(|e| open_error("redis", e))?;
                Ok(Cached {
                    store,
                    channel: Some(Box::new(tracker)),
                })
            }
            #[cfg(feature = "sql")]
            Handle::Postgres(pg) => {
                let store = builder.build();
                let listener = pg
                    .track_changes({
                        let invalidator = store.invalidator();
                        move |change| invalidator.apply(change)
                    })
                    .await
                    .map_err(|e| open_error("postgres", e))?;
                Ok(Cached {
                    store,
                    channel: Some(Box::new(listener)),
                })
            }
            #[cfg(feature = "sql")]
            Handle::MySql(_) | Handle::Sqlite(_) => Ok(Cached {
                store: builder.max_staleness(UNTRACKED_STALENESS).build(),
                channel: None,
            }),
            Handle::Other => Ok(Cached {
                store: builder.build(),
                channel: None,
            }),
        }
    }
}
