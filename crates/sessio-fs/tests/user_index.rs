//! The user index of `FileStore` (log out everywhere): it survives reopening, the
//! purge removes the entries of destroyed and expired sessions, concurrent indexing
//! races with the purge safely, and a directory of the previous version gains it.

// Helpers outside `#[test]` functions are test code too.
#![allow(clippy::unwrap_used)]

use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use http::{header::COOKIE, HeaderMap, HeaderValue};
use sessio::{
    store::{Change, Patch, Store},
    Sessions, StoreKey,
};
use sessio_fs::FileStore;

fn cookie_for(set_cookie: &[HeaderValue]) -> HeaderMap {
    let pair = set_cookie[0].to_str().unwrap().split(';').next().unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(COOKIE, HeaderValue::from_str(pair).unwrap());
    headers
}

async fn login(sessions: &Sessions, user: &str) -> HeaderMap {
    let session = sessions.start(&HeaderMap::new()).await.unwrap();
    session.set("cart", &1).unwrap();
    session.set_user(user).unwrap();
    cookie_for(&session.finish().await.unwrap())
}

async fn is_live(sessions: &Sessions, cookie: &HeaderMap) -> bool {
    !sessions.start(cookie).await.unwrap().is_new()
}

/// `users/<sha-256 of the user in hex>`, as the crate docs lay it out.
fn user_dir(store: &Path, user: &str) -> PathBuf {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(user.as_bytes());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    store.join("users").join(hex)
}

/// The entries of a user's directory (file names), sorted; empty if it is gone.
fn entries(store: &Path, user: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(user_dir(store, user)) else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn entry(key: &str) -> String {
    let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{hex}.session")
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
async fn the_user_index_survives_reopening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = {
        let store = FileStore::open(dir.path()).await.unwrap();
        let sessions = Sessions::builder().store(store.clone()).build().unwrap();
        let alice = [
            login(&sessions, "alice").await,
            login(&sessions, "alice").await,
        ];
        let bob = login(&sessions, "bob").await;
        store.shutdown().await;
        (alice, bob)
    };
    assert_eq!(entries(dir.path(), "alice").len(), 2);
    let store = FileStore::open(dir.path()).await.unwrap();
    let sessions = Sessions::builder().store(store.clone()).build().unwrap();
    for cookie in &alice {
        assert!(is_live(&sessions, cookie).await);
    }
    assert_eq!(sessions.destroy_user("alice").await.unwrap(), 2);
    for cookie in &alice {
        assert!(!is_live(&sessions, cookie).await, "alice is logged out");
    }
    assert!(is_live(&sessions, &bob).await, "bob is not");
    assert!(
        !user_dir(dir.path(), "alice").exists(),
        "alice's index is gone"
    );
    assert_eq!(entries(dir.path(), "bob").len(), 1);
    assert_eq!(store.count().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_purge_removes_entries_of_destroyed_and_expired_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::builder()
        .gc_interval(None)
        .open(dir.path())
        .await
        .unwrap();
    let minute = Duration::from_secs(60);
    let key = |s: &str| StoreKey::from_stored(s);
    for (k, ttl) in [
        ("destroyed", minute),
        ("expires", Duration::from_millis(50)),
        ("live", minute),
    ] {
        store.commit(&key(k), &create(ttl)).await.unwrap();
        store.index_user("alice", &key(k), None).await.unwrap();
        store.index_user("alice", &key(k), None).await.unwrap();
    }
    store.commit(&key("bobs"), &create(minute)).await.unwrap();
    store.index_user("bob", &key("bobs"), None).await.unwrap();
    // A session that is not stored (destroyed before it was indexed) gets no entry.
    store.index_user("alice", &key("gone"), None).await.unwrap();
    // What a crash between deleting a session and its entry leaves behind.
    std::fs::write(user_dir(dir.path(), "bob").join(entry("crashed")), b"").unwrap();
    // A stray file that is not an entry is left alone.
    std::fs::write(user_dir(dir.path(), "bob").join("notes.txt"), b"x").unwrap();
    let mut all = vec![entry("destroyed"), entry("expires"), entry("live")];
    all.sort();
    assert_eq!(entries(dir.path(), "alice"), all);

    assert!(store.destroy(&key("destroyed")).await.unwrap());
    assert!(store.destroy(&key("bobs")).await.unwrap());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.purge_expired().await.unwrap(), 1);
    assert_eq!(entries(dir.path(), "alice"), vec![entry("live")]);
    assert_eq!(entries(dir.path(), "bob"), vec!["notes.txt".to_owned()]);

    std::fs::remove_file(user_dir(dir.path(), "bob").join("notes.txt")).unwrap();
    store.purge_expired().await.unwrap();
    assert!(
        !user_dir(dir.path(), "bob").exists(),
        "an empty user directory goes"
    );
    // destroy_all takes the index along.
    assert_eq!(store.destroy_all().await.unwrap(), 1);
    assert_eq!(
        std::fs::read_dir(dir.path().join("users")).unwrap().count(),
        0
    );
    assert_eq!(store.destroy_user("alice").await.unwrap(), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_indexing_of_one_user_races_safely_with_the_purge() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::builder()
        .gc_interval(None)
        .fsync(false)
        .open(dir.path())
        .await
        .unwrap();
    for round in 0..5 {
        let mut tasks = Vec::new();
        for i in 0..24 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let key = StoreKey::from_stored(format!("r{round}-s{i:02}"));
                store
                    .commit(&key, &create(Duration::from_secs(60)))
                    .await
                    .unwrap();
                store.index_user("carol", &key, None).await.unwrap();
                key
            }));
        }
        // The purge removes carol's directory whenever it finds it empty.
        let purger = {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..20 {
                    store.purge_expired().await.unwrap();
                }
            })
        };
        let mut keys = Vec::new();
        for task in tasks {
            keys.push(task.await.unwrap());
        }
        purger.await.unwrap();
        let mut ended = store.destroy_user("carol").await.unwrap();
        ended.sort();
        keys.sort();
        assert_eq!(ended, keys, "round {round}: every session was indexed");
        assert!(!user_dir(dir.path(), "carol").exists());
    }
    assert_eq!(store.count().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_directory_without_the_user_index_works_and_gains_it() {
    let dir = tempfile::tempdir().unwrap();
    let old = StoreKey::from_stored("old-session");
    {
        let store = FileStore::open(dir.path()).await.unwrap();
        store
            .commit(&old, &create(Duration::from_secs(60)))
            .await
            .unwrap();
        store.shutdown().await;
    }
    // What the previous version left, too: session files only.
    assert!(!dir.path().join("users").exists(), "made on first use");
    let store = FileStore::open(dir.path()).await.unwrap();
    assert!(store.load(&old).await.unwrap().is_some());
    store.index_user("dave", &old, None).await.unwrap();
    assert!(dir.path().join("users").is_dir());
    assert_eq!(store.destroy_user("dave").await.unwrap(), vec![old.clone()]);
    assert!(store.load(&old).await.unwrap().is_none());
}
