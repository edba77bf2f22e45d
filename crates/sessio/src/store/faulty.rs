//! [`FaultyStore`]: a real store that can be switched off, for testing error paths.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::{Committed, KeyPage, Patch, Record, Store, StoreError, StoreFuture, StoreKey, StoreOp};
use crate::MemoryStore;

/// Wraps a real store, counts the calls that reach it, and while
/// [`set_down(true)`](Self::set_down) fails every load, commit and destroy the way a store
/// whose server went away does ([`StoreErrorKind::Unavailable`](super::StoreErrorKind)).
/// For testing how an app or adapter answers store outages (503s, recovery).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use sessio::{store::{FaultyStore, Store}, StoreKey, IdGenerator, RandomIds};
///
/// let store = FaultyStore::new(sessio::MemoryStore::new());
/// let key = StoreKey::for_id(&RandomIds.generate());
/// assert!(store.load(&key).await.is_ok());
/// store.set_down(true);
/// assert!(store.load(&key).await.unwrap_err().is_transient());
/// assert_eq!(store.calls(), 2);
/// # }
/// ```
#[derive(Debug)]
pub struct FaultyStore<S = MemoryStore> {
    inner: S,
    down: AtomicBool,
    calls: AtomicUsize,
}

impl<S: Store> FaultyStore<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        FaultyStore {
            inner,
            down: AtomicBool::new(false),
            calls: AtomicUsize::new(0),
        }
    }

    /// Makes loads, commits and destroys fail (`true`) or work again (`false`).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// How many loads, commits and destroys were attempted.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn check<T>(&self, op: StoreOp) -> Result<(), StoreFuture<'static, T>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            Err(StoreFuture::ready(Err(StoreError::unavailable(
                "faulty",
                op,
                "connection refused (FaultyStore is down)",
            ))))
        } else {
            Ok(())
        }
    }
}

impl<S: Store> Store for FaultyStore<S> {
    fn name(&self) -> &'static str {
        "faulty"
    }
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Record>> {
        self.check(StoreOp::Load)
            .map_or_else(|e| e, |()| self.inner.load(key))
    }
    fn commit<'a>(&'a self, key: &'a StoreKey, patch: &'a Patch) -> StoreFuture<'a, Committed> {
        self.check(StoreOp::Commit)
            .map_or_else(|e| e, |()| self.inner.commit(key, patch))
    }
    fn destroy<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, bool> {
        self.check(StoreOp::Destroy)
            .map_or_else(|e| e, |()| self.inner.destroy(key))
    }
    fn destroy_all(&self) -> StoreFuture<'_, u64> {
        self.inner.destroy_all()
    }
    fn count(&self) -> StoreFuture<'_, u64> {
        self.inner.count()
    }
    fn keys<'a>(&'a self, cursor: Option<&'a str>, limit: usize) -> StoreFuture<'a, KeyPage> {
        self.inner.keys(cursor, limit)
    }
    fn index_user<'a>(
        &'a self,
        user: &'a str,
        key: &'a StoreKey,
        expires_at: Option<std::time::SystemTime>,
    ) -> StoreFuture<'a, ()> {
        self.inner.index_user(user, key, expires_at)
    }
    fn destroy_user<'a>(&'a self, user: &'a str) -> StoreFuture<'a, Vec<StoreKey>> {
        self.inner.destroy_user(user)
    }
}
