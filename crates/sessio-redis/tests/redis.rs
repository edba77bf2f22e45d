//! Redis-specific behaviour: layout, increment parity with `apply_changes`, round
//! trips per operation, errors. Uses 127.0.0.1:6379 and servers started here.

mod support;

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use sessio::{
    store::{apply_changes, Change, Committed, Patch, Store, StoreErrorKind, Values},
    IdGenerator, RandomIds, StoreKey,
};
use sessio_redis::{
    fred::interfaces::{HashesInterface, KeysInterface, SortedSetsInterface},
    Error, RedisStore,
};

async fn local_store() -> RedisStore {
    RedisStore::builder("redis://127.0.0.1:6379")
        .expect("url")
        .key_prefix(support::random_prefix())
        .connect()
        .await
        .expect("Redis must run on 127.0.0.1:6379")
}

fn new_key() -> StoreKey {
    StoreKey::for_id(&RandomIds.generate())
}

fn patch(create: bool, changes: Vec<Change>) -> Patch {
    Patch {
        create,
        clear: false,
        changes,
        expires_at: Some(SystemTime::now() + Duration::from_secs(60)),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn layout_is_one_hash_per_session_with_a_hash_tag() {
    let store = local_store().await;
    let key = new_key();
    store
        .commit(
            &key,
            &patch(
                true,
                vec![Change::Set("name".into(), Bytes::from_static(b"\"iris\""))],
            ),
        )
        .await
        .expect("commit");
    let redis_key = store.redis_key(&key);
    assert_eq!(
        redis_key,
        format!("{}{{{}}}", store.key_prefix(), key.as_str())
    );
    let pool = store.pool();
    let fields: std::collections::HashMap<String, String> =
        pool.hgetall(&redis_key).await.expect("hgetall");
    assert_eq!(fields.get("name").map(String::as_str), Some("\"iris\""));
    assert_eq!(fields.get("\0").map(String::as_str), Some("1"), "marker");
    assert_eq!(fields.len(), 2);
    let ttl: i64 = pool.pttl(&redis_key).await.expect("pttl");
    assert!((58_000..=60_000).contains(&ttl), "ttl {ttl}");
    store.destroy_all().await.expect("clean up");
}

/// Stored values and increments whose outcome must match `apply_changes` exactly.
#[tokio::test(flavor = "multi_thread")]
async fn increments_match_apply_changes() {
    let store = local_store().await;
    let stored: &[&[u8]] = &[
        b"0",
        b"41",
        b"-41",
        b"+5",
        b"007",
        b"-0",
        b"-007",
        b"",
        b"+",
        b"-",
        b" 5",
        b"5 ",
        b"1.5",
        b"1e3",
        b"0x10",
        b"\"5\"",
        b"9223372036854775807",
        b"9223372036854775806",
        b"-9223372036854775808",
        b"-9223372036854775807",
        b"9223372036854775808",
        b"-9223372036854775809",
        b"00000000000000000000000009223372036854775807",
        b"99999999999999999999",
        b"999999999",
        b"1000000000",
        b"-1000000000",
        b"1999999999",
        b"\xff\xfe",
    ];
    let bys = [
        0,
        1,
        -1,
        999_999_999,
        -999_999_999,
        1_000_000_001,
        -1_000_000_001,
        i64::MAX,
        i64::MIN,
        i64::MAX - 1,
        i64::MIN + 1,
        123_456_789_012_345_678,
        -123_456_789_012_345_678,
    ];
    let mut checked = 0;
    for value in stored {
        for by in bys {
            let key = new_key();
            let create = patch(
                true,
                vec![Change::Set("n".into(), Bytes::copy_from_slice(value))],
            );
            store.commit(&key, &create).await.expect("create");
            let inc = patch(
                false,
                vec![
                    Change::Increment("n".into(), by),
                    Change::Increment("n".into(), by),
                ],
            );
            let mut expected_values: Values = [("n".to_owned(), Bytes::copy_from_slice(value))]
                .into_iter()
                .collect();
            let expected = apply_changes(&mut expected_values, &inc, "redis");
            let got = store.commit(&key, &inc).await;
            let loaded = store.load(&key).await.expect("load").expect("exists");
            match (expected, got) {
                (Ok(counters), Ok(Committed::Applied { counters: got })) => {
                    assert_eq!(got, counters, "{value:?} + {by} twice");
                    assert_eq!(*loaded.values, expected_values, "{value:?} + {by}");
                }
                (Err(e), Err(g)) => {
                    assert_eq!(e.kind(), g.kind(), "{value:?} + {by}");
                    assert_eq!(
                        loaded.values.get("n"),
                        Some(*value),
                        "a failed increment writes nothing"
                    );
                }
                (e, g) => panic!("{value:?} + {by}: expected {e:?}, got {g:?}"),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, stored.len() * bys.len());
    store.destroy_all().await.expect("clean up");
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_sessions_exist_and_clear_keeps_them() {
    let store = local_store().await;
    let key = new_key();
    store
        .commit(&key, &patch(true, vec![]))
        .await
        .expect("create");
    assert!(store
        .load(&key)
        .await
        .expect("load")
        .expect("exists")
        .values
        .is_empty());
    store
        .commit(
            &key,
            &patch(
                false,
                vec![Change::Set("a".into(), Bytes::from_static(b"1"))],
            ),
        )
        .await
        .expect("set");
    let cleared = Patch {
        clear: true,
        ..patch(false, vec![Change::Remove("a".into())])
    };
    assert!(matches!(
        store.commit(&key, &cleared).await.expect("clear"),
        Committed::Applied { .. }
    ));
    let record = store.load(&key).await.expect("load").expect("still exists");
    assert!(record.values.is_empty());
    assert_eq!(store.count().await.expect("count"), 1);
    store.destroy_all().await.expect("clean up");
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_data_under_a_session_key_is_corrupt_not_unavailable() {
    let store = local_store().await;
    let key = new_key();
    let _: () = store
        .pool()
        .set(store.redis_key(&key), "not a hash", None, None, false)
        .await
        .expect("set");
    let err = store
        .load(&key)
        .await
        .expect_err("a string is not a session");
    assert_eq!(err.kind(), &StoreErrorKind::Corrupt, "{err}");
    assert!(std::error::Error::source(&err).is_some(), "keeps the cause");
    let err = store
        .commit(
            &key,
            &patch(false, vec![Change::Set("a".into(), Bytes::new())]),
        )
        .await
        .expect_err("commit on a string");
    assert_eq!(err.kind(), &StoreErrorKind::Corrupt, "{err}");
    let _: () = store.pool().del(store.redis_key(&key)).await.expect("del");
    // The same for a user index.
    let index = store.user_key("zed");
    let _: () = store
        .pool()
        .set(&index, "not a sorted set", None, None, false)
        .await
        .expect("set");
    let err = store
        .index_user("zed", &key, None)
        .await
        .expect_err("index_user on a string");
    assert_eq!(err.kind(), &StoreErrorKind::Corrupt, "{err}");
    let err = store
        .destroy_user("zed")
        .await
        .expect_err("destroy_user on a string");
    assert_eq!(err.kind(), &StoreErrorKind::Corrupt, "{err}");
    let _: () = store.pool().del(&index).await.expect("del");
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_with_a_foreign_cursor_fail_cleanly() {
    let store = local_store().await;
    let err = store
        .keys(Some("garbage"), 10)
        .await
        .expect_err("bad cursor");
    assert_eq!(err.kind(), &StoreErrorKind::Corrupt);
}

#[tokio::test(flavor = "multi_thread")]
async fn prefixes_with_braces_are_refused() {
    let err = RedisStore::builder("redis://127.0.0.1:6379")
        .expect("url")
        .key_prefix("app{x}:")
        .connect()
        .await
        .expect_err("braces");
    assert!(matches!(err, Error::Prefix { .. }));
}

#[tokio::test(flavor = "multi_thread")]
async fn connecting_to_nothing_fails_within_the_connect_timeout() {
    let port = support::free_port();
    let start = Instant::now();
    let err = RedisStore::builder(&format!("redis://127.0.0.1:{port}"))
        .expect("url")
        .connect_timeout(Duration::from_millis(500))
        .connect()
        .await
        .expect_err("nothing listens there");
    assert!(matches!(err, Error::Connect(_)), "{err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

/// Each load, commit, index_user and destroy is exactly one command (so one round trip), counted
/// by the server itself on a Redis that only this test uses.
#[tokio::test(flavor = "multi_thread")]
async fn one_round_trip_per_operation() {
    let dir = support::TempDir::new("round-trips");
    let server = support::RedisServer::start(dir.path(), &["--save", "", "--appendonly", "no"]);
    let store = RedisStore::builder(&format!("redis://127.0.0.1:{}", server.port))
        .expect("url")
        .pool_size(1)
        .connect()
        .await
        .expect("connect");
    // Top-level commands this store may send; commands run inside scripts also count
    // in commandstats, so only these are summed.
    const TOP_LEVEL: [&str; 5] = ["evalsha", "eval", "del", "scan", "script|load"];
    let sent = || -> u64 {
        let stats = server.info("commandstats");
        TOP_LEVEL
            .iter()
            .map(|c| support::command_calls(&stats, c))
            .sum()
    };
    let key = new_key();
    store.load(&key).await.expect("load");
    store
        .commit(
            &key,
            &patch(
                true,
                vec![Change::Set("a".into(), Bytes::from_static(b"1"))],
            ),
        )
        .await
        .expect("commit");

    const N: u64 = 50;
    let before = sent();
    for _ in 0..N {
        store.load(&key).await.expect("load").expect("exists");
    }
    let loads = sent() - before;
    let before = sent();
    for i in 0..N {
        store
            .commit(
                &key,
                &patch(
                    false,
                    vec![
                        Change::Set("a".into(), Bytes::from(i.to_string())),
                        Change::Increment("n".into(), 1),
                        Change::Remove("zz".into()),
                    ],
                ),
            )
            .await
            .expect("commit");
    }
    let commits = sent() - before;
    let before = sent();
    for _ in 0..N {
        store
            .index_user(
                "ann",
                &key,
                Some(SystemTime::now() + Duration::from_secs(60)),
            )
            .await
            .expect("index_user");
    }
    let indexes = sent() - before;
    let before = sent();
    assert!(store.destroy(&key).await.expect("destroy"));
    let destroys = sent() - before;
    assert_eq!(
        (loads, commits, indexes, destroys),
        (N, N, N, 1),
        "commands per operation"
    );
    let stats = server.info("commandstats");
    assert_eq!(support::command_calls(&stats, "evalsha"), 3 * N + 2);
    assert_eq!(
        support::command_calls(&stats, "eval"),
        0,
        "scripts are loaded at connect, never sent per call"
    );
    drop(store);
    drop(server);
}

/// After `SCRIPT FLUSH` (as after a restart or failover) the scripts are sent again.
#[tokio::test(flavor = "multi_thread")]
async fn scripts_are_resent_after_script_flush() {
    let dir = support::TempDir::new("flush");
    let server = support::RedisServer::start(dir.path(), &["--save", "", "--appendonly", "no"]);
    let store = RedisStore::connect(&format!("redis://127.0.0.1:{}", server.port))
        .await
        .expect("connect");
    let key = new_key();
    store
        .commit(&key, &patch(true, vec![Change::Increment("n".into(), 1)]))
        .await
        .expect("commit");
    assert!(support::raw_command(server.port, "SCRIPT FLUSH")
        .expect("flush")
        .starts_with("+OK"));
    let outcome = store
        .commit(&key, &patch(false, vec![Change::Increment("n".into(), 2)]))
        .await
        .expect("commit after flush");
    assert_eq!(outcome, Committed::Applied { counters: vec![3] });
    assert!(support::raw_command(server.port, "SCRIPT FLUSH")
        .expect("flush")
        .starts_with("+OK"));
    assert!(store.load(&key).await.expect("load after flush").is_some());
    drop(store);
    drop(server);
}

/// Hashed ids at rest: after commits through `Sessions`, no Redis key (listed with
/// `redis-cli --scan`, independently of the store) holds a cookie's session id.
#[tokio::test(flavor = "multi_thread")]
async fn redis_holds_no_cookie_ids_at_rest() {
    let store = local_store().await;
    let sessions = sessio::Sessions::builder()
        .store(store.clone())
        .build()
        .expect("build");
    let mut ids = Vec::new();
    let mut cookies = Vec::new();
    for i in 0..5 {
        let session = sessions
            .lazy_from_cookie_headers(std::iter::empty::<&[u8]>(), false)
            .load()
            .await
            .expect("load");
        session.set("n", &i).expect("set");
        let set_cookie = session.finish().await.expect("finish");
        let pair = set_cookie[0]
            .to_str()
            .expect("ascii")
            .split(';')
            .next()
            .expect("pair")
            .to_owned();
        ids.push(session.id().as_str().to_owned());
        cookies.push(pair);
    }
    let listed = std::process::Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", "6379", "--scan", "--pattern"])
        .arg(format!("{}*", store.key_prefix()))
        .output()
        .expect("redis-cli must be installed");
    assert!(listed.status.success());
    let listed = String::from_utf8(listed.stdout).expect("utf-8");
    let keys: Vec<&str> = listed.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(keys.len(), 5, "{keys:?}");
    for id in &ids {
        assert!(
            !listed.contains(id.as_str()),
            "a Redis key holds a session id"
        );
    }
    // The cookies still find their sessions.
    let again = sessions
        .lazy_from_cookie_headers([cookies[2].as_bytes()], false)
        .load()
        .await
        .expect("load");
    assert!(!again.is_new());
    assert_eq!(again.get::<i32>("n").expect("get"), Some(2));
    assert!(sessions.destroy_by_id(&ids[2]).await.expect("destroy"));
    store.destroy_all().await.expect("clean up");
}

/// Milliseconds left on a Redis key (`PTTL`): -1 without a TTL, -2 when missing.
async fn pttl(store: &RedisStore, key: &str) -> i64 {
    store.pool().pttl(key).await.expect("PTTL")
}

async fn exists(store: &RedisStore, key: &str) -> bool {
    let n: i64 = store.pool().exists(key).await.expect("EXISTS");
    n == 1
}

async fn members(store: &RedisStore, user: &str) -> Vec<String> {
    let mut out: Vec<String> = store
        .pool()
        .zrange(
            store.user_key(user),
            0_i64,
            -1_i64,
            None,
            false,
            None,
            false,
        )
        .await
        .expect("ZRANGE");
    out.sort();
    out
}

/// Commits a new session that lives `ttl` (`None`: no deadline) and indexes it under
/// `user`, as `Session::finish` does.
async fn user_session(store: &RedisStore, user: &str, ttl: Option<Duration>) -> StoreKey {
    let key = new_key();
    let deadline = ttl.map(|t| SystemTime::now() + t);
    let patch = Patch {
        expires_at: deadline,
        ..patch(
            true,
            vec![Change::Set("n".into(), Bytes::from_static(b"1"))],
        )
    };
    store.commit(&key, &patch).await.expect("commit");
    store
        .index_user(user, &key, deadline)
        .await
        .expect("index_user");
    key
}

fn sorted(keys: &[&StoreKey]) -> Vec<String> {
    let mut out: Vec<String> = keys.iter().map(|k| k.as_str().to_owned()).collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn user_index_expires_with_the_longest_session_and_goes_with_the_user() {
    const GRACE_MS: i64 = 60_000;
    let store = local_store().await;
    let index = store.user_key("ann");
    assert_eq!(index, format!("{}user:ann", store.key_prefix()));
    let short = user_session(&store, "ann", Some(Duration::from_secs(60))).await;
    let within =
        |ttl: i64, want_ms: i64| (want_ms + GRACE_MS - 5_000..=want_ms + GRACE_MS).contains(&ttl);
    let ttl = pttl(&store, &index).await;
    assert!(within(ttl, 60_000), "follows the only session: {ttl}");
    let long = user_session(&store, "ann", Some(Duration::from_secs(600))).await;
    let ttl = pttl(&store, &index).await;
    assert!(within(ttl, 600_000), "follows the longest session: {ttl}");
    // Re-indexing the long session with a shorter deadline (a racing request) never
    // shortens it: the index outlives every session it names.
    store
        .index_user(
            "ann",
            &long,
            Some(SystemTime::now() + Duration::from_secs(5)),
        )
        .await
        .expect("index_user");
    let ttl = pttl(&store, &index).await;
    assert!(within(ttl, 600_000), "never shortened: {ttl}");
    // Indexing is idempotent.
    store
        .index_user(
            "ann",
            &short,
            Some(SystemTime::now() + Duration::from_secs(60)),
        )
        .await
        .expect("index_user");
    assert_eq!(members(&store, "ann").await, sorted(&[&short, &long]));
    // A session without a deadline: the index has none either.
    let endless = user_session(&store, "ann", None).await;
    assert_eq!(pttl(&store, &index).await, -1, "persisted");
    // A member whose deadline is long past is dropped by the next call.
    let _: i64 = store
        .pool()
        .zadd(&index, None, None, false, false, (1.0, "long-gone"))
        .await
        .expect("ZADD");
    store
        .index_user(
            "ann",
            &short,
            Some(SystemTime::now() + Duration::from_secs(60)),
        )
        .await
        .expect("index_user");
    assert_eq!(
        members(&store, "ann").await,
        sorted(&[&short, &long, &endless])
    );

    let bystander = user_session(&store, "bob", Some(Duration::from_secs(60))).await;
    let mut ended = store.destroy_user("ann").await.expect("destroy_user");
    ended.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(
        ended
            .iter()
            .map(|k| k.as_str().to_owned())
            .collect::<Vec<_>>(),
        sorted(&[&short, &long, &endless])
    );
    assert!(!exists(&store, &index).await, "the index is gone");
    for key in [&short, &long, &endless] {
        assert!(store.load(key).await.expect("load").is_none());
    }
    assert!(store.destroy_user("ann").await.expect("again").is_empty());
    assert!(store.load(&bystander).await.expect("load").is_some());
    // destroy_all takes the user indexes along, and counts only sessions.
    assert!(exists(&store, &store.user_key("bob")).await);
    assert_eq!(store.destroy_all().await.expect("destroy_all"), 1);
    assert!(!exists(&store, &store.user_key("bob")).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn odd_user_names_are_their_own_and_never_name_a_session() {
    let store = local_store().await;
    let victim = user_session(&store, "victim", Some(Duration::from_secs(60))).await;
    let long: String = "ü:*{}".chars().cycle().take(1000).collect();
    let users = [
        "a:b".to_owned(),
        "*".to_owned(),
        "?".to_owned(),
        "[a-z]*".to_owned(),
        "ключ ✓ 🦀".to_owned(),
        "%41".to_owned(),
        "A".to_owned(),
        long,
        // Names made to look like the victim's session, its Redis key and its index.
        victim.as_str().to_owned(),
        format!("{{{}}}", victim.as_str()),
        store.redis_key(&victim),
        format!("../{}", store.user_key("victim")),
    ];
    let mut keys = Vec::new();
    for user in &users {
        let index = store.user_key(user);
        assert!(!index.contains(['{', '}']), "{index}");
        assert_ne!(index, store.redis_key(&victim));
        keys.push(user_session(&store, user, Some(Duration::from_secs(60))).await);
    }
    for (user, key) in users.iter().zip(&keys) {
        assert_eq!(members(&store, user).await, sorted(&[key]), "{user}");
    }
    for (user, key) in users.iter().zip(&keys) {
        let ended = store.destroy_user(user).await.expect("destroy_user");
        assert_eq!(
            sorted(&ended.iter().collect::<Vec<_>>()),
            sorted(&[key]),
            "{user}"
        );
        assert!(!exists(&store, &store.user_key(user)).await, "{user}");
    }
    assert!(
        store.load(&victim).await.expect("load").is_some(),
        "untouched"
    );
    assert_eq!(store.count().await.expect("count"), 1);
    assert_eq!(members(&store, "victim").await, sorted(&[&victim]));
    store.destroy_all().await.expect("clean up");
}

/// Sessions without a deadline never age out of the index; once there are many, the
/// ones destroyed one by one (logouts) are dropped.
#[tokio::test(flavor = "multi_thread")]
async fn logged_out_endless_sessions_are_pruned_from_the_index() {
    let store = local_store().await;
    let mut gone = Vec::new();
    for _ in 0..40 {
        gone.push(user_session(&store, "cy", None).await);
    }
    let kept = user_session(&store, "cy", None).await;
    for key in &gone {
        assert!(store.destroy(key).await.expect("destroy"));
    }
    assert_eq!(members(&store, "cy").await.len(), 41, "not pruned yet");
    let last = user_session(&store, "cy", None).await;
    assert_eq!(members(&store, "cy").await, sorted(&[&kept, &last]));
    assert_eq!(
        store.destroy_user("cy").await.expect("destroy_user").len(),
        2
    );
    assert!(!exists(&store, &store.user_key("cy")).await);
}
