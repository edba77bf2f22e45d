//! The store conformance suite: every [`Store`] (ours and yours) runs it with one call.
//!
//! ```no_run
//! # async fn demo() {
//! use sessio::{store::conformance, MemoryStore};
//!
//! // Each case gets a fresh, empty store from the factory.
//! conformance::run(|| async { MemoryStore::new() }).await;
//! # }
//! ```
//!
//! It panics (failing the test) with the name of the first case that fails. It needs a
//! multi-threaded Tokio runtime (`#[tokio::test(flavor = "multi_thread")]`) and takes
//! a few seconds, most of it waiting for sessions to expire.

use std::{
    collections::BTreeSet,
    future::Future,
    sync::Arc,
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use http::{header::COOKIE, HeaderMap, HeaderValue};

use super::{Change, Committed, Patch, Store, StoreErrorKind, StoreKey, Values};
use crate::{id::RandomIds, Error, IdGenerator, Sessions};

/// How long the expiry cases wait for a session to expire.
const SHORT_TTL: Duration = Duration::from_millis(1200);

/// Runs every case, each against a fresh store from `new_store`.
pub async fn run<S, F, Fut>(mut new_store: F)
where
    S: Store,
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
{
    macro_rules! cases {
        ($($case:ident),* $(,)?) => {$(
            tracing::info!(case = stringify!($case), "store conformance");
            let store: Arc<dyn Store> = Arc::new(new_store().await);
            $case(store).await;
        )*};
    }
    cases!(
        load_of_unknown_key_is_none,
        create_then_load_round_trips_bytes_exactly,
        commit_without_create_never_resurrects,
        patch_touches_only_named_keys,
        clear_removes_old_keys_first,
        increments_are_counted_in_order,
        bad_increment_leaves_patch_unapplied,
        expired_sessions_are_never_returned,
        no_deadline_means_no_expiry,
        destroy_reports_existence,
        destroy_all_and_count,
        keys_pages_list_each_session_once,
        concurrent_distinct_keys_all_kept,
        concurrent_increments_are_exact,
        commits_cut_off_midway_leave_the_store_usable,
        garbage_values_are_decode_errors,
        strict_ids_regenerate_and_destroy_through_sessions,
        idle_expiry_through_sessions,
        user_index_destroys_every_session_or_is_unsupported,
    );
}

fn new_key() -> StoreKey {
    StoreKey::for_id(&RandomIds.generate())
}

fn in_a_minute() -> Option<SystemTime> {
    Some(SystemTime::now() + Duration::from_secs(60))
}

fn set(k: &str, v: &[u8]) -> Change {
    Change::Set(k.to_owned(), Bytes::copy_from_slice(v))
}

fn create(changes: Vec<Change>) -> Patch {
    Patch {
        create: true,
        clear: false,
        changes,
        expires_at: in_a_minute(),
    }
}

fn update(changes: Vec<Change>) -> Patch {
    Patch {
        create: false,
        ..create(changes)
    }
}

async fn commit(store: &dyn Store, key: &StoreKey, patch: Patch) -> Vec<i64> {
    match store.commit(key, &patch).await {
        Ok(Committed::Applied { counters }) => counters,
        other => panic!("commit should apply: {other:?}"),
    }
}

async fn values(store: &dyn Store, key: &StoreKey) -> Values {
    let record = store
        .load(key)
        .await
        .expect("load must succeed")
        .expect("the session must exist");
    (*record.values).clone()
}

fn map(pairs: &[(&str, &[u8])]) -> Values {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Bytes::copy_from_slice(v)))
        .collect()
}

async fn load_of_unknown_key_is_none(store: Arc<dyn Store>) {
    assert!(store.load(&new_key()).await.expect("load").is_none());
    assert_eq!(
        store.count().await.expect("count"),
        0,
        "a fresh store is empty"
    );
}

async fn create_then_load_round_trips_bytes_exactly(store: Arc<dyn Store>) {
    let key = new_key();
    let binary: Vec<u8> = (0..=255).collect();
    let deadline = in_a_minute();
    let patch = Patch {
        expires_at: deadline,
        ..create(vec![
            set("text", b"\"hello\""),
            set("binary", &binary),
            set("empty", b""),
            set("ключ ✓", b"1"),
            set("__sessio:flash:x", b"2"),
        ])
    };
    commit(&*store, &key, patch).await;
    let record = store.load(&key).await.expect("load").expect("exists");
    assert_eq!(
        *record.values,
        map(&[
            ("text", b"\"hello\""),
            ("binary", &binary),
            ("empty", b""),
            ("ключ ✓", b"1"),
            ("__sessio:flash:x", b"2"),
        ])
    );
    let (Some(stored), Some(wanted)) = (record.expires_at, deadline) else {
        panic!("the deadline must be kept");
    };
    let skew = stored
        .duration_since(wanted)
        .unwrap_or_else(|e| e.duration());
    assert!(
        skew <= Duration::from_secs(1),
        "deadline kept to the second, off by {skew:?}"
    );
}

async fn commit_without_create_never_resurrects(store: Arc<dyn Store>) {
    let key = new_key();
    let outcome = store.commit(&key, &update(vec![set("a", b"1")])).await;
    assert_eq!(outcome.expect("commit"), Committed::Missing);
    assert!(store.load(&key).await.expect("load").is_none());
    commit(&*store, &key, create(vec![set("a", b"1")])).await;
    assert!(store.destroy(&key).await.expect("destroy"));
    let outcome = store.commit(&key, &update(vec![set("b", b"2")])).await;
    assert_eq!(
        outcome.expect("commit"),
        Committed::Missing,
        "destroyed stays dead"
    );
    assert!(store.load(&key).await.expect("load").is_none());
}

async fn patch_touches_only_named_keys(store: Arc<dyn Store>) {
    let key = new_key();
    commit(&*store, &key, create(vec![set("a", b"1"), set("b", b"2")])).await;
    commit(
        &*store,
        &key,
        update(vec![
            set("c", b"3"),
            Change::Remove("a".into()),
            Change::Remove("zz".into()),
        ]),
    )
    .await;
    assert_eq!(
        values(&*store, &key).await,
        map(&[("b", b"2"), ("c", b"3")])
    );
    // Later changes of one patch win over earlier ones.
    commit(&*store, &key, update(vec![set("b", b"x"), set("b", b"y")])).await;
    assert_eq!(
        values(&*store, &key).await,
        map(&[("b", b"y"), ("c", b"3")])
    );
}

async fn clear_removes_old_keys_first(store: Arc<dyn Store>) {
    let key = new_key();
    commit(&*store, &key, create(vec![set("a", b"1"), set("b", b"2")])).await;
    let patch = Patch {
        clear: true,
        ..update(vec![set("d", b"4")])
    };
    commit(&*store, &key, patch).await;
    assert_eq!(values(&*store, &key).await, map(&[("d", b"4")]));
}

async fn increments_are_counted_in_order(store: Arc<dyn Store>) {
    let key = new_key();
    let counters = commit(
        &*store,
        &key,
        create(vec![
            Change::Increment("n".into(), 5),
            Change::Increment("n".into(), -2),
            Change::Increment("m".into(), -1),
        ]),
    )
    .await;
    assert_eq!(counters, vec![5, 3, -1]);
    commit(&*store, &key, update(vec![set("s", b"40")])).await;
    let counters = commit(
        &*store,
        &key,
        update(vec![Change::Increment("s".into(), 2)]),
    )
    .await;
    assert_eq!(
        counters,
        vec![42],
        "a decimal set by `set` can be incremented"
    );
    let values = values(&*store, &key).await;
    assert_eq!(
        values.get("n"),
        Some(&b"3"[..]),
        "counters are ASCII decimal"
    );
    assert_eq!(values.get("m"), Some(&b"-1"[..]));
}

async fn bad_increment_leaves_patch_unapplied(store: Arc<dyn Store>) {
    let key = new_key();
    commit(
        &*store,
        &key,
        create(vec![
            set("text", b"\"abc\""),
            set("max", i64::MAX.to_string().as_bytes()),
        ]),
    )
    .await;
    let before = values(&*store, &key).await;
    let err = store
        .commit(
            &key,
            &update(vec![set("new", b"1"), Change::Increment("text".into(), 1)]),
        )
        .await
        .expect_err("incrementing a non-integer must fail");
    assert!(
        matches!(err.kind(), StoreErrorKind::NotAnInteger { key } if key == "text"),
        "wrong error: {err}"
    );
    let err = store
        .commit(
            &key,
            &update(vec![set("new", b"1"), Change::Increment("max".into(), 1)]),
        )
        .await
        .expect_err("overflow must fail");
    assert!(
        matches!(err.kind(), StoreErrorKind::Overflow { key } if key == "max"),
        "wrong error: {err}"
    );
    assert_eq!(
        values(&*store, &key).await,
        before,
        "a failed patch changes nothing"
    );
}

async fn expired_sessions_are_never_returned(store: Arc<dyn Store>) {
    let short = new_key();
    let long = new_key();
    let patch = Patch {
        expires_at: Some(SystemTime::now() + SHORT_TTL),
        ..create(vec![set("a", b"1")])
    };
    commit(&*store, &short, patch).await;
    commit(&*store, &long, create(vec![set("a", b"1")])).await;
    assert!(store.load(&short).await.expect("load").is_some());
    assert_eq!(store.count().await.expect("count"), 2);
    tokio::time::sleep(SHORT_TTL + Duration::from_millis(300)).await;
    assert!(
        store.load(&short).await.expect("load").is_none(),
        "expired session served"
    );
    let outcome = store.commit(&short, &update(vec![set("b", b"2")])).await;
    assert_eq!(
        outcome.expect("commit"),
        Committed::Missing,
        "expired stays dead"
    );
    assert_eq!(
        store.count().await.expect("count"),
        1,
        "count skips expired sessions"
    );
    let page = store.keys(None, 100).await.expect("keys");
    assert_eq!(page.keys, vec![long.clone()], "keys skips expired sessions");
    assert!(
        !store.destroy(&short).await.expect("destroy"),
        "expired is not live"
    );
    // A fresh session may reuse an expired key without inheriting its data.
    commit(&*store, &short, create(vec![set("c", b"3")])).await;
    assert_eq!(values(&*store, &short).await, map(&[("c", b"3")]));
}

async fn no_deadline_means_no_expiry(store: Arc<dyn Store>) {
    let key = new_key();
    let patch = Patch {
        expires_at: None,
        ..create(vec![set("a", b"1")])
    };
    commit(&*store, &key, patch).await;
    let record = store.load(&key).await.expect("load").expect("exists");
    assert_eq!(record.expires_at, None);
    // And a deadline can be set later, then removed again.
    commit(&*store, &key, update(vec![])).await;
    assert!(store
        .load(&key)
        .await
        .expect("load")
        .expect("exists")
        .expires_at
        .is_some());
}

async fn destroy_reports_existence(store: Arc<dyn Store>) {
    let key = new_key();
    assert!(!store.destroy(&key).await.expect("destroy"));
    commit(&*store, &key, create(vec![set("a", b"1")])).await;
    assert!(store.destroy(&key).await.expect("destroy"));
    assert!(!store.destroy(&key).await.expect("destroy"));
    assert!(store.load(&key).await.expect("load").is_none());
}

async fn destroy_all_and_count(store: Arc<dyn Store>) {
    for _ in 0..5 {
        commit(&*store, &new_key(), create(vec![set("a", b"1")])).await;
    }
    assert_eq!(store.count().await.expect("count"), 5);
    assert_eq!(store.destroy_all().await.expect("destroy_all"), 5);
    assert_eq!(store.count().await.expect("count"), 0);
    assert!(store.keys(None, 10).await.expect("keys").keys.is_empty());
}

async fn keys_pages_list_each_session_once(store: Arc<dyn Store>) {
    let mut created = BTreeSet::new();
    for _ in 0..25 {
        let key = new_key();
        commit(&*store, &key, create(vec![set("a", b"1")])).await;
        created.insert(key.as_str().to_owned());
    }
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let page = store.keys(cursor.as_deref(), 7).await.expect("keys");
        assert!(page.keys.len() <= 7, "a page holds at most `limit` keys");
        for key in page.keys {
            assert!(
                seen.insert(key.as_str().to_owned()),
                "a key was listed twice"
            );
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, created);
}

async fn concurrent_distinct_keys_all_kept(store: Arc<dyn Store>) {
    let key = new_key();
    commit(&*store, &key, create(vec![set("base", b"0")])).await;
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = store.clone();
            let key = key.clone();
            tokio::spawn(async move {
                let patch = update(vec![set(&format!("k{i}"), i.to_string().as_bytes())]);
                commit(&*store, &key, patch).await;
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let values = values(&*store, &key).await;
    assert_eq!(values.len(), 65, "every concurrent write must be kept");
    for i in 0..64 {
        assert_eq!(
            values.get(&format!("k{i}")).map(|b| b.to_vec()),
            Some(i.to_string().into_bytes())
        );
    }
}

/// A client that hangs up drops its request's future, and with it a commit halfway
/// through (so does a call timeout). Whatever became of those commits, the store must
/// stay usable: every later call works.
async fn commits_cut_off_midway_leave_the_store_usable(store: Arc<dyn Store>) {
    let keys: Vec<StoreKey> = (0..8).map(|_| new_key()).collect();
    for key in &keys {
        commit(&*store, key, create(vec![set("n", b"0")])).await;
    }
    let mut cut = 0;
    for round in 0..200u64 {
        let tasks: Vec<_> = keys
            .iter()
            .enumerate()
            .map(|(i, key)| {
                let (store, key) = (store.clone(), key.clone());
                // Dropped after 0 to ~1 ms: before, inside or after the write.
                let wait = Duration::from_micros((round * 37 + i as u64 * 113) % 1000);
                tokio::spawn(async move {
                    let patch = update(vec![Change::Increment("n".into(), 1)]);
                    tokio::time::timeout(wait, store.commit(&key, &patch))
                        .await
                        .is_err()
                })
            })
            .collect();
        for t in tasks {
            cut += usize::from(t.await.expect("task"));
        }
    }
    // Stores whose commits complete at once (memory) have nothing to cut off.
    tracing::info!(cut, "commits cut off midway");
    for key in &keys {
        let patch = update(vec![set("after", b"1")]);
        let done = tokio::time::timeout(Duration::from_secs(10), store.commit(key, &patch))
            .await
            .expect("a commit after the cut-off ones finishes");
        assert!(
            matches!(done, Ok(Committed::Applied { .. })),
            "commit after {cut} cut-off commits: {done:?}"
        );
        assert_eq!(values(&*store, key).await.get("after"), Some(&b"1"[..]));
    }
}

async fn concurrent_increments_are_exact(store: Arc<dyn Store>) {
    let key = new_key();
    commit(&*store, &key, create(vec![set("other", b"1")])).await;
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let store = store.clone();
            let key = key.clone();
            tokio::spawn(async move {
                commit(
                    &*store,
                    &key,
                    update(vec![Change::Increment("n".into(), 1)]),
                )
                .await[0]
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.expect("task"));
    }
    results.sort_unstable();
    assert_eq!(
        results,
        (1..=200).collect::<Vec<i64>>(),
        "each increment sees its own value"
    );
    assert_eq!(values(&*store, &key).await.get("n"), Some(&b"200"[..]));
}

fn cookie_for(header: &HeaderValue) -> HeaderMap {
    let pair = header
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let mut headers = HeaderMap::new();
    headers.insert(COOKIE, HeaderValue::from_str(&pair).expect("valid"));
    headers
}

async fn garbage_values_are_decode_errors(store: Arc<dyn Store>) {
    let sessions = Sessions::builder()
        .shared_store(store.clone())
        .build()
        .expect("build");
    let session = sessions.start(&HeaderMap::new()).await.expect("start");
    session.set("seed", &1).expect("set");
    let cookie = session.finish().await.expect("finish");
    let key = sessions.store_key(&session.id());
    commit(
        &*store,
        &key,
        update(vec![
            set("garbage", b"\xff\x00{not json"),
            set("text", b"\"x\""),
        ]),
    )
    .await;
    let session = sessions
        .start(&cookie_for(&cookie[0]))
        .await
        .expect("start");
    assert!(matches!(
        session.get::<String>("garbage"),
        Err(Error::Decode { .. })
    ));
    assert!(matches!(
        session.get::<i64>("text"),
        Err(Error::Decode { .. })
    ));
    assert_eq!(
        session.get::<i64>("seed").expect("seed"),
        Some(1),
        "other keys still work"
    );
}

async fn strict_ids_regenerate_and_destroy_through_sessions(store: Arc<dyn Store>) {
    let sessions = Sessions::builder()
        .shared_store(store.clone())
        .build()
        .expect("build");
    // Unknown ids are never adopted.
    let mut forged = HeaderMap::new();
    forged.insert(
        COOKIE,
        HeaderValue::from_static("sessio=attacker-chosen-id-0123456789"),
    );
    let session = sessions.start(&forged).await.expect("start");
    assert!(session.is_new());
    assert_ne!(session.id().as_str(), "attacker-chosen-id-0123456789");
    session.set("user", "kataras").expect("set");
    let cookie = session.finish().await.expect("finish");
    assert_eq!(cookie.len(), 1);
    let old = cookie_for(&cookie[0]);
    assert!(store
        .load(&StoreKey::for_id(&RandomIds.generate()))
        .await
        .expect("load")
        .is_none());

    // Regenerate: same data, new id, old id dead.
    let session = sessions.start(&old).await.expect("start");
    assert!(!session.is_new());
    let old_id = session.id();
    session.regenerate();
    let cookie = session.finish().await.expect("finish");
    assert_ne!(session.id(), old_id);
    assert!(store
        .load(&sessions.store_key(&old_id))
        .await
        .expect("load")
        .is_none());
    let new = cookie_for(&cookie[0]);
    let session = sessions.start(&new).await.expect("start");
    assert_eq!(
        session.get::<String>("user").expect("get").as_deref(),
        Some("kataras")
    );
    let stale = sessions.start(&old).await.expect("start");
    assert!(stale.is_new() && stale.get::<String>("user").expect("get").is_none());

    // Destroy: gone from the store, cookie removed.
    session.destroy();
    let cookie = session.finish().await.expect("finish");
    assert!(cookie[0].to_str().expect("ascii").contains("Max-Age=0"));
    let again = sessions.start(&new).await.expect("start");
    assert!(again.is_new());
    assert_eq!(sessions.count().await.expect("count"), 0);
}

async fn idle_expiry_through_sessions(store: Arc<dyn Store>) {
    let sessions = Sessions::builder()
        .shared_store(store)
        .idle_timeout(SHORT_TTL)
        .build()
        .expect("build");
    let session = sessions.start(&HeaderMap::new()).await.expect("start");
    session.set("a", &1).expect("set");
    let cookie = cookie_for(&session.finish().await.expect("finish")[0]);
    assert!(!sessions.start(&cookie).await.expect("start").is_new());
    tokio::time::sleep(SHORT_TTL + Duration::from_millis(300)).await;
    let session = sessions.start(&cookie).await.expect("start");
    assert!(session.is_new(), "an idle session must expire");
    assert_eq!(session.get::<i64>("a").expect("get"), None);
}

fn is_unsupported(e: &Error) -> bool {
    matches!(e, Error::Store(e) if matches!(e.kind(), StoreErrorKind::Unsupported))
}

/// Log out everywhere: a store either keeps a user index that `destroy_user` empties,
/// or says `Unsupported` on both ends (never a silent no-op).
async fn user_index_destroys_every_session_or_is_unsupported(store: Arc<dyn Store>) {
    let sessions = Sessions::builder()
        .shared_store(store.clone())
        .build()
        .expect("build");
    let bystander = sessions.start(&HeaderMap::new()).await.expect("start");
    bystander.set("n", &1).expect("set");
    let bystander = cookie_for(&bystander.finish().await.expect("finish")[0]);

    let probe = sessions.start(&HeaderMap::new()).await.expect("start");
    probe.set_user("alice").expect("set_user");
    let probe_cookie = match probe.finish().await {
        Err(e) if is_unsupported(&e) => {
            let err = sessions
                .destroy_user("alice")
                .await
                .expect_err("destroy_user without an index must fail");
            assert!(is_unsupported(&err), "{err}");
            return;
        }
        Err(e) => panic!("set_user + commit failed: {e}"),
        Ok(cookie) => cookie,
    };
    assert_eq!(probe_cookie.len(), 1);
    let mut alice = vec![cookie_for(&probe_cookie[0])];
    // A login flow: regenerate, then set the user; and the user set first.
    for regenerate_first in [true, false] {
        let session = sessions.start(&HeaderMap::new()).await.expect("start");
        session.set("cart", &3).expect("set");
        let cookie = session.finish().await.expect("finish");
        let session = sessions
            .start(&cookie_for(&cookie[0]))
            .await
            .expect("start");
        if regenerate_first {
            session.regenerate();
            session.set_user("alice").expect("set_user");
        } else {
            session.set_user("alice").expect("set_user");
            session.regenerate();
        }
        let cookie = session.finish().await.expect("finish");
        alice.push(cookie_for(&cookie[0]));
    }
    let bob = sessions.start(&HeaderMap::new()).await.expect("start");
    bob.set_user("bob").expect("set_user");
    let bob = cookie_for(&bob.finish().await.expect("finish")[0]);
    // An indexed session that expires is not counted and does no harm.
    let short = new_key();
    commit(
        &*store,
        &short,
        Patch {
            expires_at: Some(SystemTime::now() + SHORT_TTL),
            ..create(vec![set("k", b"1")])
        },
    )
    .await;
    store
        .index_user("alice", &short, Some(SystemTime::now() + SHORT_TTL))
        .await
        .expect("index_user");
    tokio::time::sleep(SHORT_TTL + Duration::from_millis(300)).await;

    // The probe plus the two logins.
    assert_eq!(
        sessions.destroy_user("alice").await.expect("destroy_user"),
        3
    );
    for cookie in &alice {
        let session = sessions.start(cookie).await.expect("start");
        assert!(session.is_new(), "alice's sessions are gone");
    }
    assert_eq!(sessions.destroy_user("alice").await.expect("again"), 0);
    assert_eq!(sessions.destroy_user("nobody").await.expect("nobody"), 0);
    let session = sessions.start(&bob).await.expect("start");
    assert!(!session.is_new(), "bob keeps his session");
    assert_eq!(session.user().as_deref(), Some("bob"));
    assert!(!sessions.start(&bystander).await.expect("start").is_new());
}
