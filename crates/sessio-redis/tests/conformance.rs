//! The sessio store conformance suite against a real Redis on 127.0.0.1:6379 and
//! against a real 3-primary Redis Cluster that this test starts itself.

mod support;

use std::sync::{Arc, Mutex};

use sessio::store::{conformance, Store};
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
    drop(cluster);
}
