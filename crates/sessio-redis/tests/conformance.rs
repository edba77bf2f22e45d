//! The sessio store conformance suite against a real Redis on 127.0.0.1:6379 and
//! against a real 3-primary Redis Cluster that this test starts itself.

mod support;

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use sessio::{
    store::{conformance, Change, Patch, Store},
    IdGenerator, RandomIds, StoreKey,
};
use sessio_redis::RedisStore;

/// Runs the suite with a fresh key prefix per case (a fresh, empty store), then
/// deletes what the cases left behind.
async fn run_suite(url: &str) {
    let stores: Arc<Mutex<Vec<RedisStore>>> = Arc::default();
    conformance::run(|| {
        let stores = stores.clone();
        let url = url.to_owned();
        async move {
            let store = RedisStore::builder(&url)
                .expect("valid url")
                .key_prefix(support::random_prefix())
                .connect()
                .await
                .expect("Redis must be reachable for this test");
            stores.lock().expect("lock").push(store.clone());
            store
        }
    })
    .await;
    let stores = std::mem::take(&mut *stores.lock().expect("lock"));
    for store in stores {
        store.destroy_all().await.expect("clean up");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_standalone_6379() {
    run_suite("redis://127.0.0.1:6379/0").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_cluster_of_three() {
    let cluster = support::Cluster::start();
    run_suite(&cluster.url()).await;
    sessions_spread_and_page_over_all_nodes(&cluster).await;
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_through_sentinel() {
    let sentinel = support::Sentinel::start();
    run_suite(&sentinel.url()).await;
    drop(sentinel);
}

/// Sessions land on every primary (the hash tag is the store key, not the prefix),
/// `keys` pages through all nodes, whatever the page size, and `destroy_user` reaches
/// a user's sessions on every node.
async fn sessions_spread_and_page_over_all_nodes(cluster: &support::Cluster) {
    const N: usize = 300;
    let store = RedisStore::builder(&cluster.url())
        .expect("url")
        .key_prefix(support::random_prefix())
        .connect()
        .await
        .expect("connect");
    let patch = Patch {
        create: true,
        clear: false,
        changes: vec![Change::Set("a".into(), Bytes::from_static(b"1"))],
        expires_at: Some(SystemTime::now() + Duration::from_secs(120)),
    };
    let keys: Vec<StoreKey> = (0..N)
        .map(|_| StoreKey::for_id(&RandomIds.generate()))
        .collect();
    let commits = keys.iter().map(|k| store.commit(k, &patch));
    for outcome in futures::future::join_all(commits).await {
        outcome.expect("commit");
    }
    for node in &cluster.nodes {
        let size = support::raw_command(node.port, "DBSIZE").expect("DBSIZE");
        let size: u64 = size
            .trim()
            .trim_start_matches(':')
            .parse()
            .expect("integer");
        assert!(
            size > N as u64 / 10,
            "node {} holds only {size} keys",
            node.port
        );
    }
    let created: BTreeSet<String> = keys.iter().map(|k| k.as_str().to_owned()).collect();
    for limit in [1, 64, 1000] {
        let mut seen = BTreeSet::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = store.keys(cursor.as_deref(), limit).await.expect("keys");
            assert!(page.keys.len() <= limit);
            for key in page.keys {
                assert!(
                    seen.insert(key.as_str().to_owned()),
                    "listed twice (limit {limit})"
                );
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, created, "limit {limit}");
    }
    assert_eq!(store.count().await.expect("count"), N as u64);
    // One user's sessions on every node: the index is read on its own slot and each
    // session deleted on its own.
    let deadline = patch.expires_at;
    for key in &keys[..N / 2] {
        store
            .index_user("ann", key, deadline)
            .await
            .expect("index_user");
    }
    let ended: BTreeSet<String> = store
        .destroy_user("ann")
        .await
        .expect("destroy_user")
        .iter()
        .map(|k| k.as_str().to_owned())
        .collect();
    let indexed: BTreeSet<String> = keys[..N / 2]
        .iter()
        .map(|k| k.as_str().to_owned())
        .collect();
    assert_eq!(ended, indexed);
    assert_eq!(store.count().await.expect("count"), (N - N / 2) as u64);
    assert_eq!(
        store.destroy_all().await.expect("destroy_all"),
        (N - N / 2) as u64
    );
    assert_eq!(store.count().await.expect("count"), 0);
}
