//! [`Tracked`]: what a store's change channel reports to an in-process cache.

use crate::id::StoreKey;

/// A change reported by a store's change channel (Redis client tracking, PostgreSQL
/// `LISTEN`/`NOTIFY`), for a cache in front of the store (`sessio-tiered`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tracked {
    /// The session under this key was written, expired or deleted, by any process.
    Changed(StoreKey),
    /// The channel failed: until [`Tracked::Resumed`], changes go unreported, so a
    /// cache must drop what it holds and stop serving from memory.
    Lost,
    /// The channel works again after [`Tracked::Lost`] (or the store was flushed as a
    /// whole): every session may have changed.
    Resumed,
}
