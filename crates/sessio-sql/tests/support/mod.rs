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

/// A session created with `values` (raw), expiring after `ttl`, as any version of the
/// store would write it. `__sessio:user` (`sessio::store::USER_KEY`) is where the core keeps the user.
pub async fn session_with<S: sessio::store::Store>(
    store: &S,
    values: &[(&str, &str)],
    ttl: std::time::Duration,
) -> sessio::StoreKey {
    use sessio::store::{Change, Patch};
    let key = sessio::StoreKey::from_stored(unique("key"));
    let patch = Patch {
        create: true,
        clear: false,
        changes: values
            .iter()
            .map(|(k, v)| Change::Set((*k).into(), bytes::Bytes::copy_from_slice(v.as_bytes())))
            .collect(),
        expires_at: Some(std::time::SystemTime::now() + ttl),
    };
    store.commit(&key, &patch).await.expect("commit");
    key
}

fn sorted(mut keys: Vec<sessio::StoreKey>) -> Vec<String> {
    let mut v: Vec<String> = keys.drain(..).map(|k| k.as_str().to_owned()).collect();
    v.sort();
    v
}

/// The upgrade case every database runs (on a table named in mixed case, which
/// some databases fold). `drop_index` drops `<table>_users` (what a
/// schema made by the version before the user index looks like: the sessions and
/// values tables have not changed) and `migrate` runs the store's migration. Sessions
/// written with users before the upgrade must be found by `destroy_user` after it.
pub async fn upgrade_indexes_existing_users<S, D, DF, M, MF>(store: &S, drop_index: D, migrate: M)
where
    S: sessio::store::Store,
    D: FnOnce() -> DF,
    DF: std::future::Future<Output = ()>,
    M: Fn() -> MF,
    MF: std::future::Future<Output = ()>,
{
    use std::time::Duration;
    let long = Duration::from_secs(60);
    drop_index().await;
    // Written by the "old version": values only, no index rows.
    let a1 = session_with(store, &[("__sessio:user", "alice"), ("n", "1")], long).await;
    let a2 = session_with(store, &[("__sessio:user", "alice")], long).await;
    let b = session_with(store, &[("__sessio:user", "bob")], long).await;
    let anon = session_with(store, &[("n", "1")], long).await;
    let _gone = session_with(
        store,
        &[("__sessio:user", "alice")],
        Duration::from_millis(100),
    )
    .await;
    // More than one page (500) of the backfill.
    let mut carol = Vec::new();
    for _ in 0..510 {
        carol.push(session_with(store, &[("__sessio:user", "carol")], long).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    migrate().await;
    // A second run finds the index and leaves it alone: it does not index again.
    let unindexed = session_with(store, &[("__sessio:user", "dave")], long).await;
    migrate().await;
    assert_eq!(store.destroy_user("dave").await.expect("dave"), Vec::new());
    assert!(store.load(&unindexed).await.expect("load").is_some());
    let ended = store.destroy_user("alice").await.expect("destroy_user");
    assert_eq!(sorted(ended), sorted(vec![a1.clone(), a2.clone()]));
    assert!(store.load(&a1).await.expect("load").is_none());
    assert!(store.load(&b).await.expect("load").is_some());
    assert!(store.load(&anon).await.expect("load").is_some());
    assert_eq!(
        sorted(store.destroy_user("bob").await.expect("bob")),
        sorted(vec![b])
    );
    assert!(store.load(&anon).await.expect("load").is_some());
    let ended = store.destroy_user("carol").await.expect("carol");
    assert_eq!(sorted(ended), sorted(carol));
}

/// The index-hygiene case every database runs: index rows go with their sessions,
/// however these end. `rows` counts the rows of `<table>_users`.
pub async fn index_rows_follow_sessions<S, R, RF>(store: &S, rows: R)
where
    S: sessio::store::Store,
    R: Fn() -> RF,
    RF: std::future::Future<Output = i64>,
{
    use std::time::{Duration, SystemTime};
    let long = Duration::from_secs(60);
    let later = Some(SystemTime::now() + long);
    let destroyed = session_with(store, &[("n", "1")], long).await;
    let kept = session_with(store, &[("n", "1")], long).await;
    let short = session_with(store, &[("n", "1")], Duration::from_millis(200)).await;
    let moved = session_with(store, &[("n", "1")], long).await;
    for key in [&destroyed, &kept, &short, &moved] {
        store
            .index_user("alice", key, later)
            .await
            .expect("index_user");
        // Idempotent.
        store
            .index_user("alice", key, later)
            .await
            .expect("index_user again");
    }
    assert_eq!(rows().await, 4);
    // A session has one user: indexing it under bob takes it out of alice's sessions.
    store
        .index_user("bob", &moved, later)
        .await
        .expect("index_user");
    assert_eq!(rows().await, 4);

    assert!(store.destroy(&destroyed).await.expect("destroy"));
    assert_eq!(rows().await, 3, "destroy removes the index row");
    tokio::time::sleep(Duration::from_millis(400)).await;
    // An ended or unknown session is not indexed.
    store
        .index_user("alice", &short, later)
        .await
        .expect("index expired");
    let unknown = sessio::StoreKey::from_stored(unique("key"));
    store
        .index_user("alice", &unknown, later)
        .await
        .expect("index unknown");
    assert_eq!(rows().await, 3);
    assert_eq!(store.purge_expired().await.expect("purge"), Some(1));
    assert_eq!(rows().await, 2, "the sweep removes the index row");

    let ended = store.destroy_user("alice").await.expect("destroy_user");
    assert_eq!(sorted(ended), vec![kept.as_str().to_owned()]);
    assert_eq!(rows().await, 1);
    assert!(
        store.load(&moved).await.expect("load").is_some(),
        "bob's now"
    );

    // User ids of any length and content (the index keeps a hash).
    let long_user = format!("{}✓", "u".repeat(10_000));
    store
        .index_user(&long_user, &moved, later)
        .await
        .expect("index long");
    assert_eq!(store.destroy_user("bob").await.expect("bob"), Vec::new());
    let ended = store.destroy_user(&long_user).await.expect("destroy long");
    assert_eq!(sorted(ended), vec![moved.as_str().to_owned()]);
    assert_eq!(rows().await, 0);

    // Indexing a session while it is being destroyed is no error: either it was
    // indexed and the row went with it, or there was nothing left to index.
    for _ in 0..30 {
        let racing = session_with(store, &[("n", "1")], long).await;
        let (indexed, destroyed) = tokio::join!(
            store.index_user("erin", &racing, later),
            store.destroy(&racing)
        );
        indexed.expect("index_user racing a destroy");
        assert!(destroyed.expect("destroy"));
    }
    assert_eq!(rows().await, 0);

    let again = session_with(store, &[("n", "1")], long).await;
    store
        .index_user("carol", &again, later)
        .await
        .expect("index");
    assert_eq!(store.destroy_all().await.expect("destroy_all"), 1);
    assert_eq!(rows().await, 0, "destroy_all empties the index");
}
