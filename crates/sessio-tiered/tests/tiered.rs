//! `TieredStore` over the memory store and a real Redis (127.0.0.1:6379): the store
//! conformance suite, and what the cache adds: hits that skip the shared store,
//! invalidation, the generation guard, bounds, staleness and expiry.

#![allow(clippy::unwrap_used)]

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use sessio::{
    store::{
        conformance, Change, Committed, ExpiryListener, KeyPage, Patch, Record, Store, StoreFuture,
    },
    IdGenerator, MemoryStore, RandomIds, StoreKey,
};
use sessio_redis::RedisStore;
use sessio_tiered::TieredStore;

#[tokio::test(flavor = "multi_thread")]
async fn conformance_over_memory() {
    conformance::run(|| async { TieredStore::builder(MemoryStore::new()).build() }).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_over_redis() {
    conformance::run(|| async {
        let prefix = format!("sessio-tiered-test:{}:", RandomIds.generate().as_str());
        // RESP3, as under a tracked cache (the store's own suite runs RESP2).
        let redis = RedisStore::builder("redis://127.0.0.1:6379/0")
            .unwrap()
            .key_prefix(prefix)
            .tracking()
            .connect()
            .await
            .expect("Redis on 127.0.0.1:6379 (scripts/services/redis.sh starts it)");
        TieredStore::builder(redis).build()
    })
    .await;
}

/// A store that counts the loads that reach it and can be slowed down.
#[derive(Debug, Default)]
struct Counting {
    inner: MemoryStore,
    loads: AtomicU64,
    load_delay_ms: AtomicU64,
}

impl Store for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Record>> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        let delay = Duration::from_millis(self.load_delay_ms.load(Ordering::SeqCst));
        StoreFuture::new(async move {
            let found = self.inner.load(key).await;
            tokio::time::sleep(delay).await;
            found
        })
    }
    fn commit<'a>(&'a self, key: &'a StoreKey, patch: &'a Patch) -> StoreFuture<'a, Committed> {
        self.inner.commit(key, patch)
    }
    fn destroy<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, bool> {
        self.inner.destroy(key)
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
    fn set_expiry_listener(&self, listener: ExpiryListener) -> bool {
        self.inner.set_expiry_listener(listener)
    }
}

fn key() -> StoreKey {
    StoreKey::for_id(&RandomIds.generate())
}

fn patch(create: bool, changes: Vec<Change>) -> Patch {
    Patch {
        create,
        clear: false,
        changes,
        expires_at: Some(SystemTime::now() + Duration::from_secs(60)),
    }
}

fn set(k: &str, v: &str) -> Change {
    Change::Set(k.into(), Bytes::copy_from_slice(v.as_bytes()))
}

async fn value(store: &dyn Store, key: &StoreKey, k: &str) -> Option<Bytes> {
    store
        .load(key)
        .await
        .unwrap()?
        .values
        .get(k)
        .map(Bytes::copy_from_slice)
}

#[tokio::test]
async fn cached_reads_skip_the_shared_store() {
    let shared = Arc::new(Counting::default());
    let tiered = TieredStore::builder_shared(shared.clone()).build();
    let k = key();
    tiered
        .commit(&k, &patch(true, vec![set("a", "1")]))
        .await
        .unwrap();
    for _ in 0..10 {
        assert_eq!(value(&tiered, &k, "a").await.as_deref(), Some(&b"1"[..]));
    }
    assert_eq!(
        shared.loads.load(Ordering::SeqCst),
        1,
        "one miss, then hits"
    );
    let stats = tiered.stats();
    assert_eq!((stats.hits, stats.misses), (9, 1));
}

#[tokio::test]
async fn own_writes_update_the_cache_with_the_stores_results() {
    let shared = Arc::new(MemoryStore::new());
    let a = TieredStore::builder_shared(shared.clone()).build();
    let b = TieredStore::builder_shared(shared.clone()).build();
    let k = key();
    a.commit(&k, &patch(true, vec![Change::Increment("n".into(), 1)]))
        .await
        .unwrap();
    a.load(&k).await.unwrap(); // cached on A
                               // B (another server) increments: the store holds 2.
    b.commit(&k, &patch(false, vec![Change::Increment("n".into(), 1)]))
        .await
        .unwrap();
    // A increments and writes in one patch: its copy takes the store's 3, not 2.
    let done = a
        .commit(
            &k,
            &patch(
                false,
                vec![Change::Increment("n".into(), 1), set("after", "x")],
            ),
        )
        .await
        .unwrap();
    assert_eq!(done, Committed::Applied { counters: vec![3] });
    assert_eq!(value(&a, &k, "n").await.as_deref(), Some(&b"3"[..]));
    assert_eq!(value(&a, &k, "after").await.as_deref(), Some(&b"x"[..]));
    assert_eq!(a.stats().misses, 1, "served from the updated copy");
}

/// Two requests of one session on this server commit different keys at the same time;
/// whichever finishes last, the cache never drops the other's key.
#[tokio::test]
async fn concurrent_commits_of_one_process_keep_both_keys_in_the_cache() {
    let tiered = TieredStore::builder(MemoryStore::new()).build();
    let k = key();
    tiered
        .commit(&k, &patch(true, vec![set("a", "0")]))
        .await
        .unwrap();
    tiered.load(&k).await.unwrap(); // cached
                                    // Both commits start from the same cached copy before either finishes.
    let (one, two) = (
        patch(false, vec![set("x", "1")]),
        patch(false, vec![set("y", "2")]),
    );
    let (r1, r2) = tokio::join!(tiered.commit(&k, &one), tiered.commit(&k, &two));
    r1.unwrap();
    r2.unwrap();
    assert_eq!(value(&tiered, &k, "x").await.as_deref(), Some(&b"1"[..]));
    assert_eq!(value(&tiered, &k, "y").await.as_deref(), Some(&b"2"[..]));
}

#[tokio::test]
async fn invalidation_evicts_what_another_server_changed() {
    let shared = Arc::new(MemoryStore::new());
    let a = TieredStore::builder_shared(shared.clone()).build();
    let b = TieredStore::builder_shared(shared.clone()).build();
    let k = key();
    b.commit(&k, &patch(true, vec![set("v", "old")]))
        .await
        .unwrap();
    assert_eq!(value(&a, &k, "v").await.as_deref(), Some(&b"old"[..]));
    b.commit(&k, &patch(false, vec![set("v", "new")]))
        .await
        .unwrap();
    // No channel yet: the documented window, A still sees its copy.
    assert_eq!(value(&a, &k, "v").await.as_deref(), Some(&b"old"[..]));
    a.invalidator().invalidate(&k);
    assert_eq!(value(&a, &k, "v").await.as_deref(), Some(&b"new"[..]));
    // A flush (a channel reconnected) drops everything.
    b.commit(&k, &patch(false, vec![set("v", "newer")]))
        .await
        .unwrap();
    a.invalidator().flush();
    assert_eq!(value(&a, &k, "v").await.as_deref(), Some(&b"newer"[..]));
    assert_eq!(a.stats().invalidations, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_load_overlapping_an_invalidation_is_not_cached() {
    let shared = Arc::new(Counting::default());
    let tiered = TieredStore::builder_shared(shared.clone()).build();
    let k = key();
    shared
        .commit(&k, &patch(true, vec![set("v", "1")]))
        .await
        .unwrap();
    shared.load_delay_ms.store(200, Ordering::SeqCst);
    let loading = {
        let (tiered, k) = (tiered.clone(), k.clone());
        tokio::spawn(async move { tiered.load(&k).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    tiered.invalidator().invalidate(&k);
    loading.await.unwrap().unwrap();
    shared.load_delay_ms.store(0, Ordering::SeqCst);
    tiered.load(&k).await.unwrap();
    assert_eq!(
        shared.loads.load(Ordering::SeqCst),
        2,
        "the result read before the invalidation was not cached"
    );
}

#[tokio::test]
async fn entries_and_bytes_stay_bounded() {
    let shared = Arc::new(MemoryStore::new());
    let tiered = TieredStore::builder_shared(shared.clone())
        .max_entries(64)
        .build();
    for _ in 0..1000 {
        let k = key();
        tiered
            .commit(&k, &patch(true, vec![set("a", "1")]))
            .await
            .unwrap();
        tiered.load(&k).await.unwrap();
    }
    let stats = tiered.stats();
    assert!(stats.entries <= 64, "{stats:?}");
    assert!(stats.evictions >= 1000 - 64, "{stats:?}");

    // 10 KiB values against a 64 KiB budget: only a handful fit.
    let small = TieredStore::builder_shared(shared)
        .max_bytes(64 << 10)
        .build();
    let big = "x".repeat(10 << 10);
    for _ in 0..100 {
        let k = key();
        small
            .commit(&k, &patch(true, vec![set("big", &big)]))
            .await
            .unwrap();
        small.load(&k).await.unwrap();
    }
    assert!(small.stats().entries <= 6, "{:?}", small.stats());
}

#[tokio::test]
async fn max_staleness_bounds_reads_without_a_channel() {
    let shared = Arc::new(MemoryStore::new());
    let a = TieredStore::builder_shared(shared.clone())
        .max_staleness(Duration::from_millis(200))
        .build();
    let k = key();
    shared
        .commit(&k, &patch(true, vec![set("v", "old")]))
        .await
        .unwrap();
    assert_eq!(value(&a, &k, "v").await.as_deref(), Some(&b"old"[..]));
    shared
        .commit(&k, &patch(false, vec![set("v", "new")]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(value(&a, &k, "v").await.as_deref(), Some(&b"new"[..]));
}

#[tokio::test]
async fn expired_sessions_are_never_served_from_the_cache() {
    let tiered = TieredStore::builder(MemoryStore::new()).build();
    let k = key();
    let mut p = patch(true, vec![set("v", "1")]);
    p.expires_at = Some(SystemTime::now() + Duration::from_millis(300));
    tiered.commit(&k, &p).await.unwrap();
    assert!(tiered.load(&k).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(tiered.load(&k).await.unwrap().is_none());
}

#[tokio::test]
async fn destroy_drops_the_cached_copy() {
    let tiered = TieredStore::builder(MemoryStore::new()).build();
    let k = key();
    tiered
        .commit(&k, &patch(true, vec![set("v", "1")]))
        .await
        .unwrap();
    tiered.load(&k).await.unwrap();
    assert!(tiered.destroy(&k).await.unwrap());
    assert!(tiered.load(&k).await.unwrap().is_none());
}
