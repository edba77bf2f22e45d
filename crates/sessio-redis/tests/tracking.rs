//! Change tracking feeding `sessio-tiered` caches: two "servers" (two stores, two
//! caches) on one Redis. A write on one reaches the other's cache within a bounded
//! window, alternating requests never read older data than that window allows, and a
//! Redis restart never leaves a stale copy behind.

#![cfg(feature = "tracking")]
#![allow(clippy::unwrap_used)]

mod support;

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant, SystemTime},
};

use bytes::Bytes;
use sessio::{
    store::{Change, Patch, Store, Tracked},
    IdGenerator, RandomIds, StoreKey,
};
use sessio_redis::{ChangeTracker, RedisStore};
use sessio_tiered::TieredStore;

/// The bound asserted on the invalidation window.
const WINDOW: Duration = Duration::from_millis(100);

/// One app server: its own connections, its own cache, its own tracker.
struct Server {
    cache: TieredStore,
    _tracker: ChangeTracker,
    lost: Arc<AtomicBool>,
}

async fn server(url: &str, prefix: &str) -> Server {
    let redis = RedisStore::builder(url)
        .unwrap()
        .key_prefix(prefix)
        .command_timeout(Duration::from_millis(500))
        .tracking()
        .connect()
        .await
        .expect("Redis (scripts/services/redis.sh starts it)");
    let cache = TieredStore::builder(redis.clone()).build();
    let invalidator = cache.invalidator();
    let lost = Arc::new(AtomicBool::new(false));
    let seen_lost = lost.clone();
    let tracker = redis
        .track_changes(move |change| {
            if change == Tracked::Lost {
                seen_lost.store(true, Ordering::SeqCst);
            }
            invalidator.apply(change);
        })
        .await
        .unwrap();
    Server {
        cache,
        _tracker: tracker,
        lost,
    }
}

fn patch(create: bool, changes: Vec<Change>) -> Patch {
    Patch {
        create,
        clear: false,
        changes,
        expires_at: Some(SystemTime::now() + Duration::from_secs(60)),
    }
}

fn set(v: &str) -> Change {
    Change::Set("v".into(), Bytes::copy_from_slice(v.as_bytes()))
}

async fn read(store: &TieredStore, key: &StoreKey, field: &str) -> Option<String> {
    let record = store.load(key).await.ok()??;
    let raw = record.values.get(field)?;
    Some(String::from_utf8_lossy(raw).into_owned())
}

fn prefix() -> String {
    format!("sessio-tracking-test:{}:", RandomIds.generate().as_str())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_built_without_tracking_refuses_to_track() {
    let redis = RedisStore::builder("redis://127.0.0.1:6379/0")
        .unwrap()
        .key_prefix(prefix())
        .connect()
        .await
        .expect("Redis (scripts/services/redis.sh starts it)");
    match redis.track_changes(|_| {}).await {
        Err(sessio_redis::Error::NotTracking) => {}
        other => panic!("expected NotTracking, got {:?}", other.map(drop)),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_on_one_server_reaches_the_other_cache_within_the_window() {
    let prefix = prefix();
    let a = server("redis://127.0.0.1:6379/0", &prefix).await;
    let b = server("redis://127.0.0.1:6379/0", &prefix).await;
    let key = StoreKey::for_id(&RandomIds.generate());
    b.cache
        .commit(&key, &patch(true, vec![set("0")]))
        .await
        .unwrap();
    let mut windows = Vec::new();
    for i in 1..=50 {
        assert!(read(&a.cache, &key, "v").await.is_some()); // cached on A
        let want = i.to_string();
        b.cache
            .commit(&key, &patch(false, vec![set(&want)]))
            .await
            .unwrap();
        windows.push(visible_within_window(&a, &key, &want).await);
    }
    windows.sort();
    println!(
        "invalidation window over 50 writes: median {:?}, max {:?}",
        windows[25], windows[49]
    );
    assert!(a.cache.stats().hits > 0, "A served reads from its cache");
    a.cache.destroy_all().await.unwrap();
}

/// Waits until `server` reads `want`, failing after [`WINDOW`]; returns how long it
/// took (the invalidation window of that write).
async fn visible_within_window(server: &Server, key: &StoreKey, want: &str) -> Duration {
    let acked = Instant::now();
    while read(&server.cache, key, "v").await.as_deref() != Some(want) {
        assert!(acked.elapsed() < WINDOW, "still stale after {WINDOW:?}");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    acked.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_own_commit_stays_cached_and_a_foreign_one_still_evicts() {
    let prefix = prefix();
    let a = server("redis://127.0.0.1:6379/0", &prefix).await;
    let b = server("redis://127.0.0.1:6379/0", &prefix).await;
    let key = StoreKey::for_id(&RandomIds.generate());
    a.cache
        .commit(&key, &patch(true, vec![set("0")]))
        .await
        .unwrap();
    assert_eq!(read(&a.cache, &key, "v").await.as_deref(), Some("0")); // now cached
    for round in 1..=10 {
        for i in 1..=5 {
            let want = format!("a{round}.{i}");
            a.cache
                .commit(&key, &patch(false, vec![set(&want)]))
                .await
                .unwrap();
            // Time for an invalidation of A's own write to arrive, were one sent.
            tokio::time::sleep(Duration::from_millis(10)).await;
            let before = a.cache.stats();
            assert_eq!(read(&a.cache, &key, "v").await.as_deref(), Some(&*want));
            let after = a.cache.stats();
            assert_eq!(
                (after.hits, after.misses),
                (before.hits + 1, before.misses),
                "A's own commit evicted its cached copy (round {round}, commit {i})"
            );
        }
        // After A's own writes, B's write still reaches A's cache.
        let want = format!("b{round}");
        b.cache
            .commit(&key, &patch(false, vec![set(&want)]))
            .await
            .unwrap();
        visible_within_window(&a, &key, &want).await;
    }
    a.cache.destroy_all().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn alternating_requests_never_read_older_than_the_window() {
    let prefix = prefix();
    let a = server("redis://127.0.0.1:6379/0", &prefix).await;
    let b = server("redis://127.0.0.1:6379/0", &prefix).await;
    let key = StoreKey::for_id(&RandomIds.generate());
    a.cache.commit(&key, &patch(true, vec![])).await.unwrap();
    // (ack time, value) of every acknowledged increment.
    let mut acked: Vec<(Instant, i64)> = Vec::new();
    for i in 0..1000 {
        let (writer, reader) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let done = writer
            .cache
            .commit(&key, &patch(false, vec![Change::Increment("n".into(), 1)]))
            .await
            .unwrap();
        let sessio::store::Committed::Applied { counters } = done else {
            panic!("session vanished");
        };
        acked.push((Instant::now(), counters[0]));
        let seen: i64 = read(&reader.cache, &key, "n")
            .await
            .unwrap()
            .parse()
            .unwrap();
        let now = Instant::now();
        let floor = acked
            .iter()
            .rev()
            .find(|(t, _)| now.duration_since(*t) > WINDOW)
            .map_or(0, |(_, v)| *v);
        let latest = acked.last().map_or(0, |(_, v)| *v);
        assert!(
            (floor..=latest).contains(&seen),
            "read {seen}: older than {floor} (acked over {WINDOW:?} ago) or newer than {latest}"
        );
    }
    a.cache.destroy_all().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_restart_leaves_no_stale_copy() {
    let dir = support::TempDir::new("tracking");
    let mut redis = support::RedisServer::start(dir.path(), &["--save", "", "--appendonly", "no"]);
    let url = format!("redis://127.0.0.1:{}/0", redis.port);
    let prefix = prefix();
    let a = server(&url, &prefix).await;
    let b = server(&url, &prefix).await;
    let key = StoreKey::for_id(&RandomIds.generate());
    b.cache
        .commit(&key, &patch(true, vec![set("before")]))
        .await
        .unwrap();
    assert_eq!(read(&a.cache, &key, "v").await.as_deref(), Some("before"));

    redis.restart(); // nothing persisted: the session is gone
    let start = Instant::now();
    while !a.lost.load(Ordering::SeqCst) {
        assert!(start.elapsed() < Duration::from_secs(10), "A never noticed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // From here on A may answer with an error or the truth, never its old copy.
    loop {
        match a.cache.load(&key).await {
            Ok(found) => {
                assert!(found.is_none(), "stale copy served after the restart");
                break;
            }
            Err(_) => {
                assert!(
                    start.elapsed() < Duration::from_secs(15),
                    "A never recovered"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    // And it follows new writes again, through its cache.
    b.cache
        .commit(&key, &patch(true, vec![set("after")]))
        .await
        .unwrap();
    let acked = Instant::now();
    while read(&a.cache, &key, "v").await.as_deref() != Some("after") {
        assert!(
            acked.elapsed() < Duration::from_secs(5),
            "A never saw the new write"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Sessions made through B's cache and read (so cached) through A's: enough of them
/// that every node of a three-node cluster holds some (16384 slots over three nodes).
async fn created_on_b_and_cached_on_a(a: &Server, b: &Server) -> Vec<StoreKey> {
    let keys: Vec<StoreKey> = (0..24)
        .map(|_| StoreKey::for_id(&RandomIds.generate()))
        .collect();
    for key in &keys {
        b.cache
            .commit(key, &patch(true, vec![set("0")]))
            .await
            .unwrap();
        assert_eq!(read(&a.cache, key, "v").await.as_deref(), Some("0"));
    }
    keys
}

/// A fresh three-node cluster, two servers A and B with caches on it, and the sessions
/// of [`created_on_b_and_cached_on_a`].
async fn two_servers_on_a_cluster() -> (support::Cluster, Server, Server, Vec<StoreKey>) {
    let cluster = support::Cluster::start();
    let url = cluster.url();
    let prefix = prefix();
    let (a, b) = (server(&url, &prefix).await, server(&url, &prefix).await);
    let keys = created_on_b_and_cached_on_a(&a, &b).await;
    (cluster, a, b, keys)
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_cluster_writes_on_every_node_reach_the_other_cache() {
    let (cluster, a, b, keys) = two_servers_on_a_cluster().await;
    for key in &keys {
        b.cache
            .commit(key, &patch(false, vec![set("1")]))
            .await
            .unwrap();
        visible_within_window(&a, key, "1").await;
    }
    // A's own commits stay cached on every node too; B's still reach A.
    for key in &keys {
        a.cache
            .commit(key, &patch(false, vec![set("2")]))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let before = a.cache.stats();
        assert_eq!(read(&a.cache, key, "v").await.as_deref(), Some("2"));
        assert_eq!(a.cache.stats().misses, before.misses, "own commit evicted");
        b.cache
            .commit(key, &patch(false, vec![set("3")]))
            .await
            .unwrap();
        visible_within_window(&a, key, "3").await;
    }
    a.cache.destroy_all().await.unwrap();
    drop(cluster);
}

/// An operator moves every slot of one node to another (keys and all) while both
/// servers run: the moved sessions' invalidations now come from their new node, and a
/// write on one server still reaches the other's cache within the window.
#[tokio::test(flavor = "multi_thread")]
async fn after_a_reshard_writes_still_reach_the_other_cache() {
    let (cluster, a, b, keys) = two_servers_on_a_cluster().await;
    cluster.move_all_slots(0, 1);
    for (i, key) in keys.iter().enumerate() {
        let value = format!("{}", i + 1);
        // The first commits after the move may meet the old slot map: retry the
        // (idempotent) write until the cluster answers.
        let write = patch(false, vec![set(&value)]);
        support::until_recovered(Duration::from_secs(10), Duration::from_millis(20), || {
            b.cache.commit(key, &write)
        })
        .await;
        visible_within_window(&a, key, &value).await;
    }
    // Listing walks every primary: right after the move the node that lost its slots
    // may still be in the client's cluster map (a transient `Unavailable`), possibly
    // after a first node's keys were already deleted, so a retry counts only the rest.
    let started = Instant::now();
    let destroyed =
        support::until_recovered(Duration::from_secs(10), Duration::from_millis(50), || {
            a.cache.destroy_all()
        })
        .await;
    eprintln!(
        "reshard: destroy_all answered after {:?}",
        started.elapsed()
    );
    assert!(destroyed <= keys.len() as u64, "destroyed {destroyed}");
    // Asked of Redis itself, not of a cache that an invalidation may not have reached.
    let redis = b.cache.inner();
    assert_eq!(redis.count().await.expect("count"), 0);
    for key in &keys {
        assert_eq!(redis.load(key).await.expect("load"), None);
    }
    drop(cluster);
}
