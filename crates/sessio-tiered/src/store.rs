//! [`TieredStore`]: the cache wired in front of a store, and its invalidation handle.

use std::{
    fmt,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, SystemTime},
};

use sessio::store::{
    is_expired, Change, Committed, ExpiryListener, KeyPage, Patch, Record, Store, StoreFuture,
    StoreKey, Tracked, Values,
};

use crate::{
    cache::{Cache, Entry},
    generations::Generations,
    stats::Counters,
};

/// A bounded in-process cache in front of `inner`. See the [crate docs](crate) for
/// the exact guarantee.
#[derive(Clone)]
pub struct TieredStore {
    inner: Arc<dyn Store>,
    shared: Arc<Shared>,
}

struct Shared {
    cache: Cache,
    generations: Generations,
    /// Set while the change channel is down: nothing is served from the cache or
    /// put into it, since invalidations cannot arrive.
    suspended: AtomicBool,
    max_staleness: Option<Duration>,
    stats: Counters,
}

/// Cache counters since the store was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Loads answered from the cache.
    pub hits: u64,
    /// Loads that went to the shared store.
    pub misses: u64,
    /// Entries pushed out to respect the bounds.
    pub evictions: u64,
    /// Invalidations received (each key, and each flush, counts once).
    pub invalidations: u64,
    /// Entries cached now.
    pub entries: u64,
}

/// Configures a [`TieredStore`].
#[derive(Debug)]
pub struct TieredStoreBuilder {
    inner: Arc<dyn Store>,
    max_entries: usize,
    max_bytes: usize,
    max_staleness: Option<Duration>,
}

impl TieredStoreBuilder {
    /// At most `n` cached sessions (default 10,000), least recently used evicted first.
    #[must_use]
    pub fn max_entries(mut self, n: usize) -> Self {
        self.max_entries = n.max(1);
        self
    }

    /// At most about `bytes` of cached keys and values (default 64 MiB), counting a
    /// fixed 256 bytes per entry for the structures around them.
    #[must_use]
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes.max(1);
        self
    }

    /// Reload an entry cached longer ago than `age` (default: never). For shared
    /// stores that have no invalidation channel: it bounds how stale a read can be.
    #[must_use]
    pub fn max_staleness(mut self, age: impl Into<Option<Duration>>) -> Self {
        self.max_staleness = age.into();
        self
    }

    /// Builds the store.
    pub fn build(self) -> TieredStore {
        let stats = Counters::new(self.inner.name());
        TieredStore {
            inner: self.inner,
            shared: Arc::new(Shared {
                cache: Cache::new(self.max_entries, self.max_bytes),
                generations: Generations::new(),
                suspended: AtomicBool::new(false),
                max_staleness: self.max_staleness,
                stats,
            }),
        }
    }
}

impl TieredStore {
    /// Configures a cache in front of `inner`.
    pub fn builder(inner: impl Store) -> TieredStoreBuilder {
        Self::builder_shared(Arc::new(inner))
    }

    /// Like [`TieredStore::builder`], for a store already behind an `Arc`.
    pub fn builder_shared(inner: Arc<dyn Store>) -> TieredStoreBuilder {
        TieredStoreBuilder {
            inner,
            max_entries: 10_000,
            max_bytes: 64 << 20,
            max_staleness: None,
        }
    }

    /// The handle that a change channel (Redis client tracking, PostgreSQL
    /// `LISTEN`, …) uses to evict what other processes changed.
    pub fn invalidator(&self) -> Invalidator {
        Invalidator {
            shared: self.shared.clone(),
        }
    }

    /// The store behind the cache.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    /// Hits, misses, evictions and invalidations so far.
    pub fn stats(&self) -> CacheStats {
        let s = &self.shared.stats;
        CacheStats {
            hits: s.hits.get(),
            misses: s.misses.get(),
            evictions: s.evictions.get(),
            invalidations: s.invalidations.get(),
            entries: self.shared.cache.len() as u64,
        }
    }
}

impl Shared {
    fn fresh(&self, entry: &Entry, now: SystemTime) -> bool {
        !is_expired(entry.record.expires_at, now)
            && self
                .max_staleness
                .is_none_or(|max| entry.loaded_at.elapsed() <= max)
    }

    /// Caches `record` unless `key` was invalidated since `generation` was read. With
    /// `derived_from`, only if the cache still holds those values (see
    /// [`Cache::replace_if_current`]).
    fn put(
        &self,
        key: &StoreKey,
        record: Record,
        generation: u64,
        derived_from: Option<&Arc<Values>>,
    ) {
        if self.suspended.load(Ordering::Acquire) || !self.generations.unchanged(key, generation) {
            self.cache.remove(key);
            return;
        }
        let entry = Entry::new(record);
        let evicted = match derived_from {
            Some(expected) => self.cache.replace_if_current(key, expected, entry),
            None => self.cache.insert(key.clone(), entry),
        };
        // An invalidation that raced the insert itself: undo it.
        if !self.generations.unchanged(key, generation) {
            self.cache.remove(key);
        }
        if evicted.0 > 0 {
            self.stats.evictions.add(evicted.0);
        }
    }
}

impl fmt::Debug for TieredStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TieredStore")
            .field("inner", &self.inner)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Evicts sessions that another process changed. Cheap to clone.
#[derive(Clone)]
pub struct Invalidator {
    shared: Arc<Shared>,
}

impl fmt::Debug for Invalidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invalidator").finish_non_exhaustive()
    }
}

impl Invalidator {
    /// `key` changed elsewhere: drop it, and keep loads and commits in flight from
    /// caching what they read.
    pub fn invalidate(&self, key: &StoreKey) {
        self.shared.generations.bump(key);
        self.shared.cache.remove(key);
        self.shared.stats.invalidations.add(1);
    }

    /// Anything may have changed (the channel reconnected, or overflowed): drop every
    /// entry.
    pub fn flush(&self) {
        self.shared.generations.bump_all();
        self.shared.cache.clear();
        self.shared.stats.invalidations.add(1);
        tracing::debug!("session cache flushed");
    }

    /// Follows a store's change channel: [`Tracked::Changed`] invalidates the key,
    /// [`Tracked::Lost`] suspends the cache, [`Tracked::Resumed`] resumes it.
    ///
    /// ```
    /// use sessio::{store::Tracked, MemoryStore, StoreKey};
    /// use sessio_tiered::TieredStore;
    ///
    /// let cache = TieredStore::builder(MemoryStore::new()).build();
    /// let invalidator = cache.invalidator();
    /// // What a channel's callback does, e.g. `redis.track_changes(move |c| invalidator.apply(c))`.
    /// invalidator.apply(Tracked::Changed(StoreKey::from_stored("k")));
    /// invalidator.apply(Tracked::Lost);
    /// invalidator.apply(Tracked::Resumed);
    /// assert_eq!(cache.stats().invalidations, 3);
    /// ```
    pub fn apply(&self, change: Tracked) {
        match change {
            Tracked::Changed(key) => self.invalidate(&key),
            Tracked::Lost => self.suspend(),
            // `Resumed`, and whatever a later version reports: trust nothing cached.
            _ => self.resume(),
        }
    }

    /// The change channel is down: drop every entry and bypass the cache (every
    /// load goes to the shared store) until [`Invalidator::resume`].
    pub fn suspend(&self) {
        self.shared.suspended.store(true, Ordering::Release);
        self.flush();
        tracing::warn!("session cache suspended: change channel down");
    }

    /// The change channel is back: drop what was cached before (changes may have been
    /// missed) and cache again.
    pub fn resume(&self) {
        self.flush();
        self.shared.suspended.store(false, Ordering::Release);
        tracing::info!("session cache resumed");
    }
}

impl Store for TieredStore {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Record>> {
        let shared = &self.shared;
        if shared.suspended.load(Ordering::Acquire) {
            shared.stats.misses.add(1);
            return self.inner.load(key);
        }
        if let Some(entry) = shared.cache.get(key) {
            if shared.fresh(&entry, SystemTime::now()) {
                shared.stats.hits.add(1);
                return StoreFuture::ready(Ok(Some(entry.record)));
            }
            shared.cache.remove(key);
        }
        shared.stats.misses.add(1);
        let generation = shared.generations.current(key);
        StoreFuture::new(async move {
            let found = self.inner.load(key).await?;
            if let Some(record) = &found {
                shared.put(key, record.clone(), generation, None);
            }
            Ok(found)
        })
    }

    fn commit<'a>(&'a self, key: &'a StoreKey, patch: &'a Patch) -> StoreFuture<'a, Committed> {
        let shared = &self.shared;
        let generation = shared.generations.current(key);
        let cached = shared.cache.get(key);
        StoreFuture::new(async move {
            let result = self.inner.commit(key, patch).await;
            match (&result, cached) {
                // Bring the cached copy to what the store now holds: the patch's sets
                // and removals, and the store's own results for increments.
                (Ok(Committed::Applied { counters }), Some(entry)) => {
                    let mut values = (*entry.record.values).clone();
                    // Two commits of this process on one session may finish in
                    // either order: only the one whose starting copy is still cached
                    // may replace it; the other drops it.
                    match replay(&mut values, patch, counters) {
                        Some(()) => shared.put(
                            key,
                            Record {
                                values: Arc::new(values),
                                expires_at: patch.expires_at,
                            },
                            generation,
                            Some(&entry.record.values),
                        ),
                        None => shared.cache.remove(key),
                    }
                }
                // A new session (nothing cached), a vanished one, or an error whose
                // effect is unknown: the next load asks the store.
                _ => shared.cache.remove(key),
            }
            result
        })
    }

    fn destroy<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, bool> {
        self.shared.generations.bump(key);
        self.shared.cache.remove(key);
        self.inner.destroy(key)
    }

    fn destroy_all(&self) -> StoreFuture<'_, u64> {
        StoreFuture::new(async move {
            let n = self.inner.destroy_all().await;
            self.shared.generations.bump_all();
            self.shared.cache.clear();
            n
        })
    }

    fn count(&self) -> StoreFuture<'_, u64> {
        self.inner.count()
    }

    fn keys<'a>(&'a self, cursor: Option<&'a str>, limit: usize) -> StoreFuture<'a, KeyPage> {
        self.inner.keys(cursor, limit)
    }

    fn set_expiry_listener(&self, listener: ExpiryListener) -> bool {
        self.inner.set_expiry_listener(listener)
    }

    fn purge_expired(&self) -> StoreFuture<'_, Option<u64>> {
        // Cached copies carry their deadline: loads skip expired ones by themselves.
        self.inner.purge_expired()
    }

    fn index_user<'a>(
        &'a self,
        user: &'a str,
        key: &'a StoreKey,
        expires_at: Option<SystemTime>,
    ) -> StoreFuture<'a, ()> {
        self.inner.index_user(user, key, expires_at)
    }

    fn destroy_user<'a>(&'a self, user: &'a str) -> StoreFuture<'a, Vec<StoreKey>> {
        StoreFuture::new(async move {
            let ended = self.inner.destroy_user(user).await?;
            for key in &ended {
                self.shared.generations.bump(key);
                self.shared.cache.remove(key);
            }
            Ok(ended)
        })
    }
}

/// Applies `patch` to a cached copy in order, taking each increment's result from
/// the store (`counters`) rather than recomputing it from a possibly older copy.
/// `None` when the counters do not match the patch (then the copy is dropped).
fn replay(values: &mut Values, patch: &Patch, counters: &[i64]) -> Option<()> {
    if patch.clear {
        values.clear();
    }
    let mut counters = counters.iter();
    for change in &patch.changes {
        match change {
            Change::Set(k, v) => {
                values.insert(k, v);
            }
            Change::Remove(k) => {
                values.remove(k);
            }
            Change::Increment(k, _) => {
                let n = counters.next()?;
                values.insert(k, n.to_string());
            }
        }
    }
    counters.next().is_none().then_some(())
}
