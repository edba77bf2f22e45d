//! The [`Store`] trait that every session backend implements, and the types it
//! exchanges with sessions: [`Record`], [`Patch`], [`Change`], [`Committed`].
//!
//! # Contract
//!
//! A store keeps, per [`StoreKey`], a map of string keys to opaque bytes and an
//! optional deadline. Everything else (flash messages, immutable markers, the creation
//! time for absolute expiry) travels inside that map under reserved keys that start
//! with `__sessio:`, so a store never needs to know about them. Keys are any UTF-8
//! without NUL; values are arbitrary bytes and must come back exactly as written.
//!
//! - [`Store::load`] never returns a record whose deadline has passed, whether or not
//!   any garbage collection ran.
//! - [`Store::commit`] applies a [`Patch`] atomically: either every change is visible
//!   to later loads or none is. It touches only the keys the patch names, so two
//!   concurrent commits that write different keys both keep their writes, and
//!   concurrent [`Change::Increment`]s on one key are exact.
//! - A patch with `create == false` for a key that does not exist (expired, destroyed)
//!   changes nothing and returns [`Committed::Missing`]; sessions are never resurrected.
//!
//! [`conformance`] (feature `conformance`) checks all of this for any store.

mod cookie;
mod future;
mod memory;
mod tracked;
mod values;

#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
#[cfg(feature = "conformance")]
mod faulty;

use std::{fmt, sync::Arc, time::SystemTime};

use bytes::Bytes;

pub(crate) use self::cookie::{unsupported, ClientSide};
#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub use self::faulty::FaultyStore;
pub use self::{
    cookie::CookieStore,
    future::StoreFuture,
    memory::{MemoryStore, MemoryStoreBuilder},
    tracked::Tracked,
    values::{Iter as ValuesIter, Values},
};
pub use crate::{
    error::{StoreError, StoreErrorKind, StoreOp},
    id::{KeyHasher, PassThrough, StoreKey},
};

/// The value key under which the core keeps a session's user
/// ([`Session::set_user`](crate::Session::set_user)), as UTF-8 bytes. A store that
/// builds its user index from stored sessions (say, a migration's backfill) reads it.
pub const USER_KEY: &str = crate::reserved::USER;

/// A stored session as [`Store::load`] returns it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    /// Every key and its encoded value, reserved keys included. Shared, so that a
    /// store that keeps records in memory can hand them out without copying.
    pub values: Arc<Values>,
    /// When the session expires; `None` means never (until destroyed).
    pub expires_at: Option<SystemTime>,
}

/// One change inside a [`Patch`].
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Sets `key` to the encoded value.
    Set(String, Bytes),
    /// Removes `key` (no error if absent).
    Remove(String),
    /// Adds `by` to the integer stored under `key` (absent counts as 0) and stores
    /// the result as ASCII decimal. The new value is returned in
    /// [`Committed::Applied`]. A value that is not a decimal `i64` is a
    /// [`StoreErrorKind::NotAnInteger`] error; overflow is [`StoreErrorKind::Overflow`];
    /// either error leaves the whole patch unapplied.
    Increment(String, i64),
}

/// What one request changed in a session, applied atomically by [`Store::commit`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Patch {
    /// Whether the session may be created: true for a session started in this request
    /// (its id is fresh), false otherwise.
    pub create: bool,
    /// Remove every existing key before applying `changes`.
    pub clear: bool,
    /// The changes, applied in order.
    pub changes: Vec<Change>,
    /// The new deadline (`None`: never expires). Always applied.
    pub expires_at: Option<SystemTime>,
}

/// The result of [`Store::commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Committed {
    /// The patch was applied. `counters` holds the new value of each
    /// [`Change::Increment`] in the patch, in order.
    Applied {
        /// New counter values, one per increment.
        counters: Vec<i64>,
    },
    /// The patch did not create the session and it does not exist (any more): nothing
    /// was written.
    Missing,
}

/// One page of [`Store::keys`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPage {
    /// Keys of live sessions on this page.
    pub keys: Vec<StoreKey>,
    /// The cursor for the next page, or `None` when this was the last.
    pub next: Option<String>,
}

/// Called by a store for each session that it removes because it expired.
pub type ExpiryListener = Arc<dyn Fn(&StoreKey) + Send + Sync>;

/// A session backend. See the [module docs](self) for the contract.
///
/// Methods return [`StoreFuture`] so that `Store` works as `dyn Store`:
///
/// ```
/// use sessio::store::{Committed, Patch, Record, Store, StoreFuture, StoreKey, KeyPage};
///
/// #[derive(Debug)]
/// struct Nothing;
///
/// impl Store for Nothing {
///     fn name(&self) -> &'static str { "nothing" }
///     fn load<'a>(&'a self, _key: &'a StoreKey) -> StoreFuture<'a, Option<Record>> {
///         StoreFuture::ready(Ok(None))
///     }
///     fn commit<'a>(&'a self, _key: &'a StoreKey, _patch: &'a Patch) -> StoreFuture<'a, Committed> {
///         StoreFuture::new(async { Ok(Committed::Missing) })
///     }
///     fn destroy<'a>(&'a self, _key: &'a StoreKey) -> StoreFuture<'a, bool> {
///         StoreFuture::ready(Ok(false))
///     }
///     fn destroy_all(&self) -> StoreFuture<'_, u64> { StoreFuture::ready(Ok(0)) }
///     fn count(&self) -> StoreFuture<'_, u64> { StoreFuture::ready(Ok(0)) }
///     fn keys<'a>(&'a self, _cursor: Option<&'a str>, _limit: usize) -> StoreFuture<'a, KeyPage> {
///         StoreFuture::ready(Ok(KeyPage::default()))
///     }
/// }
/// ```
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// A short name for errors, logs and metrics (`"memory"`, `"redis"`, ...).
    fn name(&self) -> &'static str;

    /// Loads a live session; `None` if it does not exist or has expired.
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Record>>;

    /// Applies `patch` atomically (see the module docs).
    fn commit<'a>(&'a self, key: &'a StoreKey, patch: &'a Patch) -> StoreFuture<'a, Committed>;

    /// Removes a session; returns whether it existed (and was live).
    fn destroy<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, bool>;

    /// Removes every session; returns how many there were.
    fn destroy_all(&self) -> StoreFuture<'_, u64>;

    /// Counts live sessions (exactly, or as exactly as the backend can; say so in the
    /// store's docs when it is an estimate).
    fn count(&self) -> StoreFuture<'_, u64>;

    /// Lists up to `limit` keys of live sessions, starting at `cursor` (from the
    /// previous page's [`KeyPage::next`]; `None` for the first page). Sessions created
    /// or removed while paging may or may not be listed; none is listed twice.
    fn keys<'a>(&'a self, cursor: Option<&'a str>, limit: usize) -> StoreFuture<'a, KeyPage>;

    /// Registers the function to call for each session this store expires, so that
    /// `on_destroy` callbacks see expiry. Returns `false` (the default) when the store
    /// cannot report expiry.
    fn set_expiry_listener(&self, listener: ExpiryListener) -> bool {
        let _ = listener;
        false
    }

    /// Deletes every expired session now and returns how many it deleted, or `None`
    /// when the backend expires sessions by itself (Redis key TTLs) and there is
    /// nothing to purge. Loads never return expired sessions either way; this only
    /// reclaims space early, for admin tools such as `sessio purge-expired`.
    ///
    /// The default returns `Ok(None)`. Stores that keep expired data until a sweep
    /// (SQL, redb, files, memory) override it with their own purge.
    fn purge_expired(&self) -> StoreFuture<'_, Option<u64>> {
        StoreFuture::ready(Ok(None))
    }

    /// Records that the session under `key` belongs to `user`, for
    /// [`destroy_user`](Self::destroy_user) ("log out everywhere"). Called after a
    /// commit that set the user, created the session (new or regenerated) or moved its
    /// deadline; `expires_at` is the session's deadline, so that the index can expire
    /// with the user's last session. Idempotent.
    ///
    /// The default returns [`StoreErrorKind::Unsupported`]: a store without a user
    /// index says so instead of silently not logging anyone out.
    fn index_user<'a>(
        &'a self,
        user: &'a str,
        key: &'a StoreKey,
        expires_at: Option<SystemTime>,
    ) -> StoreFuture<'a, ()> {
        let _ = (user, key, expires_at);
        StoreFuture::ready(Err(no_user_index(self.name(), StoreOp::IndexUser)))
    }

    /// Destroys every session indexed under `user` and the index itself; returns the
    /// keys of the sessions that were live. The default returns
    /// [`StoreErrorKind::Unsupported`].
    fn destroy_user<'a>(&'a self, user: &'a str) -> StoreFuture<'a, Vec<StoreKey>> {
        let _ = user;
        StoreFuture::ready(Err(no_user_index(self.name(), StoreOp::DestroyUser)))
    }
}

/// The error of a store without a user index.
pub fn no_user_index(store: &'static str, op: StoreOp) -> StoreError {
    StoreError::new(store, op, StoreErrorKind::Unsupported)
        .with_source("this store keeps no index from users to sessions (log out everywhere)")
}

impl<S: Store + ?Sized> Store for Arc<S> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Record>> {
        (**self).load(key)
    }
    fn commit<'a>(&'a self, key: &'a StoreKey, patch: &'a Patch) -> StoreFuture<'a, Committed> {
        (**self).commit(key, patch)
    }
    fn destroy<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, bool> {
        (**self).destroy(key)
    }
    fn destroy_all(&self) -> StoreFuture<'_, u64> {
        (**self).destroy_all()
    }
    fn count(&self) -> StoreFuture<'_, u64> {
        (**self).count()
    }
    fn keys<'a>(&'a self, cursor: Option<&'a str>, limit: usize) -> StoreFuture<'a, KeyPage> {
        (**self).keys(cursor, limit)
    }
    fn set_expiry_listener(&self, listener: ExpiryListener) -> bool {
        (**self).set_expiry_listener(listener)
    }
    fn purge_expired(&self) -> StoreFuture<'_, Option<u64>> {
        (**self).purge_expired()
    }
    fn index_user<'a>(
        &'a self,
        user: &'a str,
        key: &'a StoreKey,
        expires_at: Option<SystemTime>,
    ) -> StoreFuture<'a, ()> {
        (**self).index_user(user, key, expires_at)
    }
    fn destroy_user<'a>(&'a self, user: &'a str) -> StoreFuture<'a, Vec<StoreKey>> {
        (**self).destroy_user(user)
    }
}

/// Applies the changes of `patch` to `values` in place, for stores that keep a whole
/// map per session (memory, embedded and file stores). Returns the new counter values.
///
/// On error `values` may be partly changed: apply to a copy when the patch must be
/// all-or-nothing.
pub fn apply_changes(
    values: &mut Values,
    patch: &Patch,
    store: &'static str,
) -> Result<Vec<i64>, StoreError> {
    if patch.clear {
        values.clear();
    }
    let mut counters = Vec::new();
    for change in &patch.changes {
        match change {
            Change::Set(k, v) => {
                values.insert(k, v);
            }
            Change::Remove(k) => {
                values.remove(k);
            }
            Change::Increment(k, by) => {
                let current = match values.get(k) {
                    None => 0,
                    Some(raw) => parse_counter(raw).ok_or_else(|| {
                        StoreError::new(
                            store,
                            StoreOp::Commit,
                            StoreErrorKind::NotAnInteger { key: k.clone() },
                        )
                    })?,
                };
                let next = current.checked_add(*by).ok_or_else(|| {
                    StoreError::new(
                        store,
                        StoreOp::Commit,
                        StoreErrorKind::Overflow { key: k.clone() },
                    )
                })?;
                values.insert(k, next.to_string());
                counters.push(next);
            }
        }
    }
    Ok(counters)
}

/// Parses a stored counter: an ASCII decimal `i64` (optional leading `-`).
pub fn parse_counter(raw: &[u8]) -> Option<i64> {
    std::str::from_utf8(raw).ok()?.parse().ok()
}

/// Whether a deadline has passed at `now`.
pub fn is_expired(expires_at: Option<SystemTime>, now: SystemTime) -> bool {
    matches!(expires_at, Some(t) if t <= now)
}
