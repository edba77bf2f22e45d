//! Helpers shared by the integration tests: unique namespaces on the real servers.

#![allow(dead_code, unreachable_pub)]

pub mod proxy;

use std::{
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc, Mutex,
    },
    time::{SystemTime, UNIX_EPOCH},
};

pub const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const PG_BASE: &str = "postgres://postgres@127.0.0.1:5432";
pub const MARIA_ADMIN: &str = "mysql://root@127.0.0.1:3306";

/// A name no other test (in this or a concurrent run) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "sessio_t_{prefix}_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Names created by a test, dropped at its end.
pub type Created = Arc<Mutex<Vec<String>>>;

/// The sweeper case every database runs: ten sessions that expire and one that lives,
/// swept by `spawn` (which must start a sweeper in batches of 3 at 50 ms). Checks that
/// the expiry listener heard exactly the ten and that the live one still loads; the
/// caller then checks its own tables.
pub async fn sweep_ten_expired<S: sessio::store::Store>(
    store: &S,
    spawn: impl FnOnce() -> sessio_sql::SweeperHandle,
) {
    use std::{
        sync::atomic::AtomicU64,
        time::{Duration, SystemTime},
    };

    use sessio::store::{Change, Patch};

    let patch = |ttl: Duration| Patch {
        create: true,
        clear: false,
        changes: vec![Change::Set("a".into(), bytes::Bytes::from_static(b"1"))],
        expires_at: Some(SystemTime::now() + ttl),
    };
    let key = || sessio::StoreKey::from_stored(unique("key"));
    let heard = Arc::new(AtomicU64::new(0));
    let h = heard.clone();
    assert!(store.set_expiry_listener(Arc::new(move |_| {
        h.fetch_add(1, Ordering::Relaxed);
    })));
    for _ in 0..10 {
        store
            .commit(&key(), &patch(Duration::from_millis(200)))
            .await
            .expect("commit");
    }
    let keep = key();
    store
        .commit(&keep, &patch(Duration::from_secs(60)))
        .await
        .expect("commit");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sweeper = spawn();
    tokio::time::sleep(Duration::from_millis(500)).await;
    sweeper.shutdown().await;
    assert_eq!(heard.load(Ordering::Relaxed), 10);
    assert!(store.load(&keep).await.expect("load").is_some());
}
