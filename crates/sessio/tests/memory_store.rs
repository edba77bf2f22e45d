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

/// Random creates, updates, expiries, destroys and purges on one shard, checked against
/// a plain map after every step.
#[tokio::test]
async fn random_operations_keep_the_indexes_consistent() {
    use std::collections::HashMap;

    let store = MemoryStore::builder().shards(1).build();
    let keys: Vec<StoreKey> = (0..64)
        .map(|_| StoreKey::for_id(&RandomIds.generate()))
        .collect();
    let mut model: HashMap<usize, Bytes> = HashMap::new();
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    for step in 0..4000u32 {
        rng = rng
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let k = (rng >> 33) as usize % keys.len();
        let value = Bytes::from(step.to_string());
        // A deadline in the past expires the session at once; a long one keeps it.
        let past = rng >> 62 == 0;
        let expires_at = if past {
            SystemTime::now() - Duration::from_secs(1)
        } else {
            SystemTime::now() + Duration::from_secs(600)
        };
        let op = (rng >> 40) % 4;
        let patch = Patch {
            create: op == 0,
            clear: false,
            changes: vec![Change::Set("v".into(), value.clone())],
            expires_at: Some(expires_at),
        };
        match op {
            0 | 1 => {
                let live = model.contains_key(&k);
                store.commit(&keys[k], &patch).await.unwrap();
                if past {
                    model.remove(&k);
                } else if live || op == 0 {
                    model.insert(k, value);
                }
            }
            2 => {
                let existed = store.destroy(&keys[k]).await.unwrap();
                assert_eq!(existed, model.remove(&k).is_some(), "step {step}");
            }
            _ => {
                store.purge_expired();
            }
        }
        let loaded = store.load(&keys[k]).await.unwrap();
        assert_eq!(
            loaded.and_then(|r| r.values.get("v").map(Bytes::copy_from_slice)),
            model.get(&k).cloned(),
            "step {step}"
        );
    }
    assert_eq!(store.count().await.unwrap(), model.len() as u64);
    let page = store.keys(None, 1000).await.unwrap();
    let mut listed: Vec<&str> = page.keys.iter().map(StoreKey::as_str).collect();
    let mut expected: Vec<&str> = model.keys().map(|&k| keys[k].as_str()).collect();
    listed.sort_unstable();
    expected.sort_unstable();
    assert_eq!(listed, expected);
    for (k, key) in keys.iter().enumerate() {
        let loaded = store.load(key).await.unwrap();
        assert_eq!(
            loaded.and_then(|r| r.values.get("v").map(Bytes::copy_from_slice)),
            model.get(&k).cloned()
        );
    }
}
