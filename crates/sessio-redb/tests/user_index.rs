//! The user index of `RedbStore` (log out everywhere): it survives reopening, its rows
//! go with their sessions, and a database of the previous version gains it.

// Helpers outside `#[test]` functions are test code too.
#![allow(clippy::unwrap_used)]

use std::{
    path::Path,
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use http::{header::COOKIE, HeaderMap, HeaderValue};
use sessio::{
    store::{Change, Patch, Store},
    Sessions, StoreKey,
};
use sessio_redb::{
    redb::{
        self, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable,
        ReadableTableMetadata, TableDefinition,
    },
    RedbStore,
};

const USER_SESSIONS: MultimapTableDefinition<&str, &str> =
    MultimapTableDefinition::new("sessio_user_sessions_v1");
const SESSION_USERS: MultimapTableDefinition<&str, &str> =
    MultimapTableDefinition::new("sessio_session_users_v1");
const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessio_sessions_v1");
const EXPIRY: TableDefinition<(u64, &str), ()> = TableDefinition::new("sessio_expiry_v1");

fn cookie_for(set_cookie: &[HeaderValue]) -> HeaderMap {
    let pair = set_cookie[0].to_str().unwrap().split(';').next().unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(COOKIE, HeaderValue::from_str(pair).unwrap());
    headers
}

/// A session of `user`, committed; returns the cookie that names it.
async fn login(sessions: &Sessions, user: &str) -> HeaderMap {
    let session = sessions.start(&HeaderMap::new()).await.unwrap();
    session.set("cart", &1).unwrap();
    session.set_user(user).unwrap();
    let cookies = session.finish().await.unwrap();
    cookie_for(&cookies)
}

async fn is_live(sessions: &Sessions, cookie: &HeaderMap) -> bool {
    !sessions.start(cookie).await.unwrap().is_new()
}

/// (user, session key) pairs.
type Rows = Vec<(String, String)>;

/// Every (user, key) row of both index tables, read from the closed file.
fn index_rows(path: &Path) -> (Rows, Rows) {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let read = |def: MultimapTableDefinition<'static, &'static str, &'static str>| {
        let table = txn.open_multimap_table(def).unwrap();
        let mut rows = Vec::new();
        for row in table.iter().unwrap() {
            let (k, values) = row.unwrap();
            for v in values {
                rows.push((k.value().to_owned(), v.unwrap().value().to_owned()));
            }
        }
        rows
    };
    let by_user = read(USER_SESSIONS);
    let mut by_key: Rows = read(SESSION_USERS)
        .into_iter()
        .map(|(key, user)| (user, key))
        .collect();
    by_key.sort();
    (by_user, by_key)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_user_index_survives_reopening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let (alice, bob) = {
        let store = RedbStore::open(&path).await.unwrap();
        let sessions = Sessions::builder().store(store.clone()).build().unwrap();
        let alice = [
            login(&sessions, "alice").await,
            login(&sessions, "alice").await,
        ];
        let bob = login(&sessions, "bob").await;
        store.shutdown().await.unwrap();
        (alice, bob)
        // Every handle drops here: the file is closed.
    };
    let store = RedbStore::open(&path).await.unwrap();
    let sessions = Sessions::builder().store(store.clone()).build().unwrap();
    for cookie in &alice {
        assert!(is_live(&sessions, cookie).await);
    }
    assert_eq!(sessions.destroy_user("alice").await.unwrap(), 2);
    for cookie in &alice {
        assert!(!is_live(&sessions, cookie).await, "alice is logged out");
    }
    assert!(is_live(&sessions, &bob).await, "bob is not");
    store.shutdown().await.unwrap();
    drop((sessions, store));
    let (by_user, by_key) = index_rows(&path);
    assert_eq!(by_user.len(), 1, "only bob's row is left: {by_user:?}");
    assert_eq!(by_user[0].0, "bob");
    assert_eq!(by_key, by_user);
}

fn create(ttl: Duration) -> Patch {
    Patch {
        create: true,
        clear: false,
        changes: vec![Change::Set("a".into(), Bytes::from_static(b"1"))],
        expires_at: Some(SystemTime::now() + ttl),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn index_rows_go_with_destroyed_and_expired_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let store = RedbStore::builder()
        .gc_interval(None)
        .open(&path)
        .await
        .unwrap();
    let minute = Duration::from_secs(60);
    let key = |s: &str| StoreKey::from_stored(s);
    for (k, ttl) in [
        ("destroyed", minute),
        ("expires", Duration::from_millis(50)),
        ("live", minute),
        ("shared", minute),
    ] {
        store.commit(&key(k), &create(ttl)).await.unwrap();
        store.index_user("alice", &key(k), None).await.unwrap();
        // Idempotent: a second call adds nothing.
        store.index_user("alice", &key(k), None).await.unwrap();
    }
    // A session whose user changed is indexed under both.
    store.index_user("bob", &key("shared"), None).await.unwrap();
    // A session that is not stored (destroyed before it was indexed) gets no row.
    store.index_user("alice", &key("gone"), None).await.unwrap();

    assert!(store.destroy(&key("destroyed")).await.unwrap());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.purge_expired().await.unwrap(), 1);
    store.shutdown().await.unwrap();
    drop(store);
    let rows = |v: &[(&str, &str)]| -> Rows {
        v.iter()
            .map(|(u, k)| ((*u).to_owned(), (*k).to_owned()))
            .collect()
    };
    let (by_user, by_key) = index_rows(&path);
    let want = rows(&[("alice", "live"), ("alice", "shared"), ("bob", "shared")]);
    assert_eq!(by_user, want);
    assert_eq!(by_key, want);

    // Destroying bob's sessions takes the shared one, and alice's row for it too.
    let store = RedbStore::open(&path).await.unwrap();
    assert_eq!(
        store.destroy_user("bob").await.unwrap(),
        vec![key("shared")]
    );
    assert!(store.load(&key("live")).await.unwrap().is_some());
    assert_eq!(store.destroy_user("bob").await.unwrap(), vec![]);
    store.shutdown().await.unwrap();
    drop(store);
    let (by_user, by_key) = index_rows(&path);
    assert_eq!(by_user, rows(&[("alice", "live")]));
    assert_eq!(by_key, by_user);

    // destroy_all empties the index as well.
    let store = RedbStore::open(&path).await.unwrap();
    store.commit(&key("other"), &create(minute)).await.unwrap();
    store
        .index_user("carol", &key("other"), None)
        .await
        .unwrap();
    assert_eq!(store.destroy_all().await.unwrap(), 2);
    assert_eq!(store.destroy_user("alice").await.unwrap(), vec![]);
    store.shutdown().await.unwrap();
    drop(store);
    assert_eq!(index_rows(&path), (vec![], vec![]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_without_the_user_index_opens_and_gains_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.redb");
    // What the previous version wrote: only the sessions and the expiry index.
    let deadline = SystemTime::now() + Duration::from_secs(60);
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut sessions = txn.open_table(SESSIONS).unwrap();
            let mut expiry = txn.open_table(EXPIRY).unwrap();
            let values: sessio::store::Values = [("n".to_owned(), Bytes::from_static(b"7"))]
                .into_iter()
                .collect();
            let record = sessio_fs::format::encode(&values, Some(deadline));
            sessions.insert("old-session", record.as_slice()).unwrap();
            let ms = sessio_fs::format::deadline_millis(deadline);
            expiry.insert((ms, "old-session"), ()).unwrap();
        }
        txn.commit().unwrap();
        assert_eq!(txn_tables(&db), 0, "no index tables yet");
    }
    let store = RedbStore::open(&path).await.unwrap();
    let old = StoreKey::from_stored("old-session");
    let record = store.load(&old).await.unwrap().unwrap();
    assert_eq!(record.values.get("n"), Some(&b"7"[..]));
    store
        .index_user("dave", &old, Some(deadline))
        .await
        .unwrap();
    assert_eq!(store.destroy_user("dave").await.unwrap(), vec![old.clone()]);
    assert!(store.load(&old).await.unwrap().is_none());
    assert_eq!(store.count().await.unwrap(), 0);
    store.shutdown().await.unwrap();
    drop(store);
    let db = redb::Database::open(&path).unwrap();
    assert_eq!(txn_tables(&db), 2, "the index tables were created on open");
    let txn = db.begin_read().unwrap();
    assert!(txn.open_table(SESSIONS).unwrap().is_empty().unwrap());
}

/// How many multimap tables (the index) the database has.
fn txn_tables(db: &redb::Database) -> usize {
    db.begin_read()
        .unwrap()
        .list_multimap_tables()
        .unwrap()
        .count()
}
