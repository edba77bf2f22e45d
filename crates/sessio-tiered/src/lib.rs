//! A bounded in-process cache in front of any sessio [`Store`](sessio::store::Store):
//! reads of a cached session cost no round trip to the shared store, and every write
//! still goes through to it as the same atomic patch.
//!
//! ```
//! use std::time::Duration;
//! use sessio::{MemoryStore, Sessions};
//! use sessio_tiered::TieredStore;
//!
//! let shared = MemoryStore::new(); // in production: Redis, PostgreSQL, …
//! let tiered = TieredStore::builder(shared)
//!     .max_entries(10_000)
//!     .max_bytes(64 << 20)
//!     .max_staleness(Duration::from_secs(2))
//!     .build();
//! let sessions = Sessions::builder().store(tiered).build().unwrap();
//! # let _ = sessions;
//! ```
//!
//! # What a read can observe
//!
//! - Writes made through this `TieredStore` are visible to its next read at once: a
//!   successful commit updates the cached copy with exactly what the store applied
//!   (increments take the store's result, not a local recomputation).
//! - A write made by another process reaches this cache through an invalidation
//!   ([`Invalidator::invalidate`]) fed by the shared store's change channel. Between
//!   the other process's commit and the invalidation's arrival, a read here may return
//!   the session as it was before that commit: that window is the only staleness.
//!   Loads and commits that overlap an invalidation of their key never put their
//!   result in the cache (a generation check), so a late load cannot re-insert data
//!   older than the invalidation.
//! - Without a change channel, [`TieredStoreBuilder::max_staleness`] bounds the window
//!   instead: a cached entry older than that is reloaded. Stores used by one process
//!   only (memory, redb, files) need neither.
//! - When a channel reconnects it must call [`Invalidator::flush`] before it resumes:
//!   invalidations sent while it was away are lost.
//! - An expired session is never returned from the cache.
//!
//! # Metrics
//!
//! With feature `metrics` (on by default), the counters of [`TieredStore::stats`] are
//! also reported through the `metrics` facade as `sessio_cache_hits_total`,
//! `sessio_cache_misses_total`, `sessio_cache_evictions_total` and
//! `sessio_cache_invalidations_total`, labelled `store` (the inner store's name).
//! Install the recorder before building the store.

mod cache;
mod generations;
mod stats;
mod store;

pub use self::store::{CacheStats, Invalidator, TieredStore, TieredStoreBuilder};
