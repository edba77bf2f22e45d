//! `PostgresStore::track_changes` feeding `sessio-tiered` caches, against the real
//! PostgreSQL on 127.0.0.1:5432: the conformance suite through a cache, and a write on
//! one server reaching another server's cache within a bounded window.

#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use sessio::store::{conformance, Change, Patch, Store, StoreKey};
use sessio_sql::{sqlx, ChangeListener, PostgresStore, SqlStoreOptions, TableName};
use sessio_tiered::TieredStore;
use support::{unique, PG_BASE};

async fn admin() -> sqlx::PgPool {
    sqlx::PgPool::connect(&format!("{PG_BASE}/postgres"))
        .await
        .expect("PostgreSQL must run on 127.0.0.1:5432 (scripts/services/postgres.sh)")
}

/// A fresh database, so that tests running at the same time share nothing: its name
/// and URL.
async fn fresh_database() -> (String, String) {
    let db = unique("pgtrack");
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&admin().await)
        .await
        .unwrap();
    let url = format!("{PG_BASE}/{db}");
    (db, url)
}

/// Drops `db`, closing what still uses it (listeners, pools).
async fn drop_database(db: &str) {
    sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .execute(&admin().await)
        .await
        .unwrap();
}

async fn server(url: &str) -> (TieredStore, ChangeListener) {
    let store = PostgresStore::connect_with(url, SqlStoreOptions::new())
        .await
        .unwrap();
    let cache = TieredStore::builder(store.clone()).build();
    let invalidator = cache.invalidator();
    let listener = store
        .track_changes(move |change| invalidator.apply(change))
        .await
        .unwrap();
    (cache, listener)
}

fn patch(create: bool, v: &str) -> Patch {
    Patch {
        create,
        clear: false,
        changes: vec![Change::Set(
            "v".into(),
            Bytes::copy_from_slice(v.as_bytes()),
        )],
        expires_at: Some(SystemTime::now() + Duration::from_secs(60)),
    }
}

async fn read(store: &TieredStore, key: &StoreKey) -> Option<String> {
    let record = store.load(key).await.unwrap()?;
    Some(String::from_utf8_lossy(record.values.get("v")?).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_through_a_tracked_cache() {
    let (db, url) = fresh_database().await;
    let listeners = std::sync::Arc::new(std::sync::Mutex::new(Vec::<ChangeListener>::new()));
    let mut n = 0;
    // One database; each case gets its own table, so each starts empty.
    conformance::run(|| {
        n += 1;
        let url = url.clone();
        let table = format!("sessions_case{n}");
        let listeners = listeners.clone();
        async move {
            let options = SqlStoreOptions::new().table(TableName::new(&table).unwrap());
            let store = PostgresStore::connect_with(&url, options).await.unwrap();
            let cache = TieredStore::builder(store.clone()).build();
            let invalidator = cache.invalidator();
            let listener = store
                .track_changes(move |change| invalidator.apply(change))
                .await
                .unwrap();
            listeners.lock().unwrap().push(listener);
            cache
        }
    })
    .await;
    drop(listeners);
    drop_database(&db).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_on_one_server_reaches_the_other_cache_within_the_window() {
    let (db, url) = fresh_database().await;
    let (a, _la) = server(&url).await;
    let (b, _lb) = server(&url).await;
    let key = StoreKey::from_stored(unique("key"));
    b.commit(&key, &patch(true, "0")).await.unwrap();
    let mut windows = Vec::new();
    for i in 1..=30 {
        assert!(read(&a, &key).await.is_some()); // cached on A
        let want = i.to_string();
        b.commit(&key, &patch(false, &want)).await.unwrap();
        let acked = Instant::now();
        while read(&a, &key).await.as_deref() != Some(want.as_str()) {
            assert!(
                acked.elapsed() < Duration::from_millis(100),
                "A still stale after 100 ms"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        windows.push(acked.elapsed());
    }
    windows.sort();
    println!(
        "NOTIFY window over 30 writes: median {:?}, max {:?}",
        windows[15], windows[29]
    );
    assert!(a.stats().hits > 0, "A served reads from its cache");
    assert!(a.stats().invalidations >= 30);
    drop_database(&db).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_user_on_one_server_reaches_the_other_cache() {
    let (db, url) = fresh_database().await;
    let (a, _la) = server(&url).await;
    let (b, _lb) = server(&url).await;
    let later = Some(SystemTime::now() + Duration::from_secs(60));
    let keys: Vec<StoreKey> = (0..3)
        .map(|_| StoreKey::from_stored(unique("key")))
        .collect();
    for key in &keys {
        b.commit(key, &patch(true, "x")).await.unwrap();
        b.index_user("alice", key, later).await.unwrap();
        assert!(read(&a, key).await.is_some()); // cached on A
    }
    let hits = a.stats().hits;
    assert!(read(&a, &keys[0]).await.is_some());
    assert!(a.stats().hits > hits, "A serves them from its cache");
    assert_eq!(b.destroy_user("alice").await.unwrap().len(), 3);
    let acked = Instant::now();
    for key in &keys {
        while read(&a, key).await.is_some() {
            assert!(
                acked.elapsed() < Duration::from_secs(2),
                "A still serves a session logged out everywhere"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    drop_database(&db).await;
}
