//! Flood resistance: cookieless reads create nothing, and a bounded `MemoryStore`
//! evicts the least recently used session instead of growing.
//!
//! The two 1,000,000-request cases are heavy and ignored by default; run them with
//! `cargo test -p sessio --release -- --ignored flood`.

mod support;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use http::{header::COOKIE, HeaderMap, HeaderValue};
use sessio::{
    store::{Change, Patch, Store},
    DestroyReason, IdGenerator, MemoryStore, RandomIds, Sessions, StoreKey,
};

fn key() -> StoreKey {
    StoreKey::for_id(&RandomIds.generate())
}

fn create() -> Patch {
    Patch {
        create: true,
        clear: false,
        changes: vec![Change::Set("a".into(), Bytes::from_static(b"1"))],
        expires_at: Some(SystemTime::now() + Duration::from_secs(60)),
    }
}

fn touch() -> Patch {
    Patch {
        create: false,
        ..create()
    }
}

async fn exists(store: &MemoryStore, key: &StoreKey) -> bool {
    store.load(key).await.expect("load").is_some()
}

#[tokio::test]
async fn cookieless_read_creates_nothing_and_sets_no_cookie() {
    let store = MemoryStore::new();
    let sessions = Sessions::builder()
        .store(store.clone())
        .build()
        .expect("build");
    for _ in 0..100 {
        let session = sessions.start(&HeaderMap::new()).await.expect("start");
        assert_eq!(session.get::<String>("user").expect("get"), None);
        assert!(session
            .get_flash::<String>("notice")
            .expect("flash")
            .is_none());
        assert!(session.is_empty());
        assert!(session.finish().await.expect("finish").is_empty());
    }
    // An unknown (forged or expired) id is no different: reading creates nothing.
    let mut forged = HeaderMap::new();
    forged.insert(
        COOKIE,
        HeaderValue::from_static("sessio=unknown-id-0123456789abc"),
    );
    let session = sessions.start(&forged).await.expect("start");
    assert_eq!(session.get::<u64>("n").expect("get"), None);
    assert!(session.finish().await.expect("finish").is_empty());
    assert_eq!(sessions.count().await.expect("count"), 0);
    assert_eq!(store.count().await.expect("count"), 0);
}

#[tokio::test]
async fn memory_capacity_is_respected() {
    let store = MemoryStore::builder().shards(4).capacity(100).build();
    for _ in 0..1000 {
        store.commit(&key(), &create()).await.expect("commit");
        assert!(store.count().await.expect("count") <= 100);
    }
    // Keys spread over the 4 shards: after 1000 creations every shard is full.
    assert_eq!(store.count().await.expect("count"), 100);

    // A capacity smaller than the shard count still holds.
    let tiny = MemoryStore::builder().shards(64).capacity(5).build();
    for _ in 0..200 {
        tiny.commit(&key(), &create()).await.expect("commit");
    }
    let n = tiny.count().await.expect("count");
    assert!(
        (1..=5).contains(&n),
        "{n} sessions in a store of capacity 5"
    );
}

#[tokio::test]
async fn memory_capacity_evicts_least_recently_used_first() {
    let store = MemoryStore::builder().shards(1).capacity(3).build();
    let [a, b, c, d, e] = [key(), key(), key(), key(), key()];
    for k in [&a, &b, &c] {
        store.commit(k, &create()).await.expect("commit");
    }
    // A load counts as a use: `a` is now more recent than `b` and `c`.
    assert!(exists(&store, &a).await);
    store.commit(&d, &create()).await.expect("commit");
    assert!(!exists(&store, &b).await, "b was least recently used");
    // A write counts as a use too: `c` becomes the most recent.
    store.commit(&c, &touch()).await.expect("commit");
    store.commit(&e, &create()).await.expect("commit");
    assert!(!exists(&store, &a).await, "a was least recently used");
    for k in [&c, &d, &e] {
        assert!(exists(&store, k).await);
    }
    assert_eq!(store.count().await.expect("count"), 3);
    // Destroyed sessions free their room without evicting anyone.
    assert!(store.destroy(&d).await.expect("destroy"));
    store.commit(&a, &create()).await.expect("commit");
    for k in [&a, &c, &e] {
        assert!(exists(&store, k).await);
    }
}

#[tokio::test]
async fn memory_capacity_evicted_sessions_read_as_new() {
    let store = MemoryStore::builder().shards(1).capacity(1).build();
    let ended = Arc::new(Mutex::new(Vec::new()));
    let seen = ended.clone();
    let sessions = Sessions::builder()
        .store(store.clone())
        .on_destroy(move |_, reason| seen.lock().expect("lock").push(reason))
        .build()
        .expect("build");
    let first = sessions.start(&HeaderMap::new()).await.expect("start");
    first.set("user", "iris").expect("set");
    let first_cookie = first.finish().await.expect("finish");
    let second = sessions.start(&HeaderMap::new()).await.expect("start");
    second.set("user", "kataras").expect("set");
    second.finish().await.expect("finish");

    let again = sessions
        .start(&support::cookie_header(&first_cookie[0]))
        .await
        .expect("start");
    assert!(again.is_new(), "an evicted session starts over");
    assert_ne!(again.id(), first.id());
    assert_eq!(again.get::<String>("user").expect("get"), None);
    assert_eq!(
        *ended.lock().expect("lock"),
        vec![DestroyReason::Expired],
        "eviction is reported like expiry"
    );
}

/// Resident set size of this process in KiB, from `/proc/self/status`.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[tokio::test]
#[ignore = "heavy: cargo test -p sessio --release -- --ignored flood"]
async fn flood_of_a_million_cookieless_reads_leaves_the_store_empty() {
    let store = MemoryStore::new();
    let sessions = Sessions::builder()
        .store(store.clone())
        .build()
        .expect("build");
    let before = rss_kib();
    for _ in 0..1_000_000 {
        let session = sessions.start(&HeaderMap::new()).await.expect("start");
        assert_eq!(session.get::<String>("user").expect("get"), None);
        assert!(session.finish().await.expect("finish").is_empty());
    }
    assert_eq!(store.count().await.expect("count"), 0);
    println!(
        "1,000,000 cookieless reads: store holds 0 sessions; VmRSS {before:?} KiB -> {:?} KiB",
        rss_kib()
    );
}

#[tokio::test]
#[ignore = "heavy: cargo test -p sessio --release -- --ignored flood"]
async fn flood_of_a_million_cookieless_writes_with_capacity_keeps_rss_bounded() {
    const CAPACITY: usize = 100_000;
    let store = MemoryStore::builder().capacity(CAPACITY).build();
    let sessions = Sessions::builder()
        .store(store.clone())
        .build()
        .expect("build");
    let start = rss_kib().expect("VmRSS in /proc/self/status");
    let mut at_capacity = 0;
    for i in 0..1_000_000u64 {
        let session = sessions.start(&HeaderMap::new()).await.expect("start");
        session.set("n", &i).expect("set");
        assert_eq!(session.finish().await.expect("finish").len(), 1);
        if i == 200_000 {
            at_capacity = rss_kib().expect("VmRSS");
        }
    }
    let end = rss_kib().expect("VmRSS");
    let count = store.count().await.expect("count");
    println!(
        "1,000,000 cookieless writes, capacity {CAPACITY}: {count} sessions kept; \
         VmRSS start {start} KiB, after 200,000 writes {at_capacity} KiB, after 1,000,000 {end} KiB"
    );
    assert!(count <= CAPACITY as u64);
    // 100,000 small sessions take a few tens of MiB; unbounded, a million would take
    // ten times that. Growth past the first 200,000 writes must stay small.
    assert!(end - start < 200 * 1024, "RSS grew by {} KiB", end - start);
    assert!(
        end.saturating_sub(at_capacity) < 32 * 1024,
        "RSS kept growing after the store was full: {at_capacity} -> {end} KiB"
    );
}
