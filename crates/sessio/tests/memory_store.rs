//! `MemoryStore` against the store conformance suite, plus its own expiry behaviour.

#![allow(clippy::unwrap_used)]

use std::{
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use sessio::{
    store::{conformance, Change, Patch, Store},
    DestroyReason, IdGenerator, MemoryStore, RandomIds, Sessions, StoreKey,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_passes_conformance() {
    conformance::run(|| async { MemoryStore::new() }).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_store_with_one_shard_passes_conformance() {
    conformance::run(|| async { MemoryStore::builder().shards(1).build() }).await;
}

fn patch(expires_in: Duration) -> Patch {
    Patch {
        create: true,
        clear: false,
        changes: vec![Change::Set("a".into(), Bytes::from_static(b"1"))],
        expires_at: Some(SystemTime::now() + expires_in),
    }
}

#[tokio::test]
async fn purge_removes_only_expired_and_reports_them() {
    let store = MemoryStore::new();
    let expired = Arc::new(Mutex::new(Vec::new()));
    let seen = expired.clone();
    let sessions = Sessions::builder()
        .store(store.clone())
        .on_destroy(move |key, reason| seen.lock().unwrap().push((key.clone(), reason)))
        .build()
        .unwrap();
    let short: Vec<StoreKey> = (0..100)
        .map(|_| StoreKey::for_id(&RandomIds.generate()))
        .collect();
    for key in &short {
        store
            .commit(key, &patch(Duration::from_millis(50)))
            .await
            .unwrap();
    }
    let long = StoreKey::for_id(&RandomIds.generate());
    store
        .commit(&long, &patch(Duration::from_secs(60)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.purge_expired(), 100);
    assert_eq!(store.purge_expired(), 0);
    assert_eq!(sessions.count().await.unwrap(), 1);
    let expired = expired.lock().unwrap();
    assert_eq!(expired.len(), 100);
    assert!(expired.iter().all(|(_, r)| *r == DestroyReason::Expired));
}

#[tokio::test]
async fn writes_sweep_expired_sessions_of_their_shard() {
    let store = MemoryStore::builder().shards(1).build();
    for _ in 0..10 {
        let key = StoreKey::for_id(&RandomIds.generate());
        store
            .commit(&key, &patch(Duration::from_millis(20)))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let key = StoreKey::for_id(&RandomIds.generate());
    store
        .commit(&key, &patch(Duration::from_secs(60)))
        .await
        .unwrap();
    // The write swept all ten (budget 16); nothing is left to purge.
    assert_eq!(store.purge_expired(), 0);
    assert_eq!(store.count().await.unwrap(), 1);
}
