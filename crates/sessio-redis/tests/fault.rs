//! Fault injection: a Redis that this test starts (with `appendfsync always`) is killed
//! while requests run, then restarted on the same port. Calls must fail fast with
//! `Unavailable` (no hang, no panic), recover without rebuilding the store, and no
//! acknowledged write may be lost.

mod support;

use std::{
    sync::{
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant, SystemTime},
};

use bytes::Bytes;
use sessio::{
    store::{Change, Committed, Patch, Store, StoreErrorKind},
    IdGenerator, RandomIds, StoreKey,
};
use sessio_redis::RedisStore;

const TIMEOUT: Duration = Duration::from_millis(800);
/// Scheduling slack on a busy 2-core machine, on top of the configured timeout.
const SLACK: Duration = Duration::from_millis(700);

fn patch(create: bool, changes: Vec<Change>) -> Patch {
    Patch {
        create,
        clear: false,
        changes,
        expires_at: Some(SystemTime::now() + Duration::from_secs(600)),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_and_restart_redis_under_load() {
    let dir = support::TempDir::new("fault");
    let mut server = support::RedisServer::start(
        dir.path(),
        &[
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ],
    );
    let store = RedisStore::builder(&format!("redis://127.0.0.1:{}", server.port))
        .expect("url")
        .command_timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .reconnect_max_delay(Duration::from_millis(300))
        .connect()
        .await
        .expect("connect");
    let store = Arc::new(store);
    let key = StoreKey::for_id(&RandomIds.generate());
    store
        .commit(
            &key,
            &patch(
                true,
                vec![Change::Set(
                    "user".into(),
                    Bytes::from_static(b"\"kataras\""),
                )],
            ),
        )
        .await
        .expect("create while Redis runs");

    // Writers increment a counter for as long as the test runs, remembering the highest
    // value Redis acknowledged, and checking that no call outlives the timeout.
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(AtomicI64::new(0));
    let slowest_failure_us = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (store, key) = (store.clone(), key.clone());
            let (stop, acknowledged) = (stop.clone(), acknowledged.clone());
            let slowest = slowest_failure_us.clone();
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0u32, 0u32);
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let inc = patch(false, vec![Change::Increment("n".into(), 1)]);
                    match store.commit(&key, &inc).await {
                        Ok(Committed::Applied { counters }) => {
                            acknowledged.fetch_max(counters[0], Ordering::SeqCst);
                            ok += 1;
                        }
                        Ok(other) => panic!("session lost: {other:?}"),
                        Err(e) => {
                            assert_eq!(e.kind(), &StoreErrorKind::Unavailable, "{e}");
                            failed += 1;
                            let us =
                                u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                            slowest.fetch_max(us, Ordering::Relaxed);
                        }
                    }
                    let took = started.elapsed();
                    assert!(took <= TIMEOUT + SLACK, "a commit took {took:?}");
                    if failed > 0 {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                (ok, failed)
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill();
    let acked_before_kill = acknowledged.load(Ordering::SeqCst);
    assert!(acked_before_kill > 0, "writes went through before the kill");

    // Every kind of call fails fast with Unavailable while Redis is down.
    for _ in 0..2 {
        let started = Instant::now();
        let err = store.load(&key).await.expect_err("load while down");
        assert!(err.is_transient(), "{err}");
        assert!(
            started.elapsed() <= TIMEOUT + SLACK,
            "load took {:?}",
            started.elapsed()
        );
        let started = Instant::now();
        let err = store
            .commit(
                &key,
                &patch(false, vec![Change::Set("x".into(), Bytes::new())]),
            )
            .await
            .expect_err("commit while down");
        assert!(err.is_transient(), "{err}");
        assert!(
            started.elapsed() <= TIMEOUT + SLACK,
            "commit took {:?}",
            started.elapsed()
        );
        let started = Instant::now();
        assert!(store
            .count()
            .await
            .expect_err("count while down")
            .is_transient());
        assert!(store
            .destroy(&StoreKey::for_id(&RandomIds.generate()))
            .await
            .is_err());
        assert!(
            started.elapsed() <= 2 * (TIMEOUT + SLACK),
            "{:?}",
            started.elapsed()
        );
        let started = Instant::now();
        assert!(store
            .index_user("kataras", &key, None)
            .await
            .expect_err("index_user while down")
            .is_transient());
        assert!(store
            .destroy_user("kataras")
            .await
            .expect_err("destroy_user while down")
            .is_transient());
        assert!(
            started.elapsed() <= 2 * (TIMEOUT + SLACK),
            "{:?}",
            started.elapsed()
        );
    }

    // Back on the same port: the same store recovers by itself.
    server.restart();
    let restarted = Instant::now();
    let record =
        support::until_recovered(Duration::from_secs(15), Duration::from_millis(50), || {
            store.load(&key)
        })
        .await
        .expect("the session did not survive the restart");
    let recovered_after = restarted.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut totals = (0, 0);
    for w in writers {
        let (ok, failed) = w.await.expect("writer must not panic");
        totals.0 += ok;
        totals.1 += failed;
    }
    assert!(
        totals.1 > 0,
        "some writes must have failed while Redis was down"
    );

    // No acknowledged write was lost. (A write that timed out may or may not have been
    // applied, so the stored counter can be higher than the acknowledged maximum.)
    let stored: i64 = std::str::from_utf8(&record.values["n"])
        .expect("ascii")
        .parse()
        .expect("counter");
    assert!(
        stored >= acked_before_kill,
        "stored {stored} < acknowledged {acked_before_kill}"
    );
    assert_eq!(record.values["user"], Bytes::from_static(b"\"kataras\""));
    let final_record = store.load(&key).await.expect("load").expect("exists");
    let final_n: i64 = std::str::from_utf8(&final_record.values["n"])
        .expect("ascii")
        .parse()
        .expect("counter");
    assert!(final_n >= acknowledged.load(Ordering::SeqCst));
    let outcome = store
        .commit(&key, &patch(false, vec![Change::Increment("n".into(), 1)]))
        .await
        .expect("commit after recovery");
    assert_eq!(
        outcome,
        Committed::Applied {
            counters: vec![final_n + 1]
        }
    );
    eprintln!(
        "fault: {} commits acknowledged, {} failed while down (slowest failure {:?}, timeout {TIMEOUT:?}); \
         recovered {recovered_after:?} after the restart answered PING",
        totals.0,
        totals.1,
        Duration::from_micros(slowest_failure_us.load(Ordering::Relaxed))
    );
    drop(store);
    drop(server);
}

/// A server that stops answering but keeps its connections open (a hung host) must
/// not hang requests either; when it answers again, so does the store.
#[tokio::test(flavor = "multi_thread")]
async fn frozen_redis_times_out_and_recovers() {
    let dir = support::TempDir::new("frozen");
    let server = support::RedisServer::start(dir.path(), &["--save", "", "--appendonly", "no"]);
    let store = RedisStore::builder(&format!("redis://127.0.0.1:{}", server.port))
        .expect("url")
        .command_timeout(TIMEOUT)
        .connect()
        .await
        .expect("connect");
    let key = StoreKey::for_id(&RandomIds.generate());
    store
        .commit(&key, &patch(true, vec![Change::Increment("n".into(), 1)]))
        .await
        .expect("commit");

    server.signal("STOP");
    for _ in 0..3 {
        let started = Instant::now();
        let err = store
            .load(&key)
            .await
            .expect_err("load from a frozen server");
        assert!(err.is_transient(), "{err}");
        let took = started.elapsed();
        assert!(took <= TIMEOUT + SLACK, "load took {took:?}");
    }
    server.signal("CONT");

    let thawed = Instant::now();
    let record =
        support::until_recovered(Duration::from_secs(15), Duration::from_millis(50), || {
            store.load(&key)
        })
        .await;
    assert!(record.is_some(), "the session survives a freeze");
    eprintln!("frozen: recovered {:?} after SIGCONT", thawed.elapsed());
    drop(store);
    drop(server);
}
