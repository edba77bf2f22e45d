//! Fault injection for the networked SQL stores (as `sessio-redis/tests/fault.rs` does
//! for Redis): a TCP proxy (`support::proxy`) sits between the store and the real
//! PostgreSQL / MariaDB; while writers commit increments, the link is cut (a network
//! partition: open connections go silent, new ones hang), then restored. Calls must fail
//! with `Unavailable` within the configured call timeout (the adapters answer 503),
//! recover by themselves without rebuilding the store, and no commit that was
//! acknowledged may be lost.

mod support;

use std::{
    net::SocketAddr,
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
use sessio_sql::{SqlStoreOptions, TableName};
use support::{proxy::Proxy, unique};

/// The store's call timeout in these tests.
const CALL_TIMEOUT: Duration = Duration::from_millis(800);
/// Scheduling slack on a busy 2-core machine, on top of the call timeout.
const SLACK: Duration = Duration::from_millis(700);

fn options() -> SqlStoreOptions {
    SqlStoreOptions::new()
        .table(TableName::new(&unique("f")).expect("table name"))
        .max_connections(4)
        .acquire_timeout(Duration::from_millis(500))
        .call_timeout(Some(CALL_TIMEOUT))
        .sweep_interval(None)
}

fn patch(create: bool, changes: Vec<Change>) -> Patch {
    Patch {
        create,
        clear: false,
        changes,
        expires_at: Some(SystemTime::now() + Duration::from_secs(600)),
    }
}

fn counter(record: &sessio::store::Record) -> i64 {
    std::str::from_utf8(&record.values["n"])
        .expect("ascii")
        .parse()
        .expect("counter")
}

/// The scenario, on any store whose traffic goes through `proxy`.
async fn cut_and_restore_under_load<S: Store + 'static>(store: Arc<S>, proxy: &Proxy) {
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
        .expect("create while the link is up");

    // Writers increment a counter for as long as the test runs, remembering the highest
    // value the store acknowledged, and checking that no call outlives the timeout.
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
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                    let took = started.elapsed();
                    assert!(took <= CALL_TIMEOUT + SLACK, "a commit took {took:?}");
                }
                (ok, failed)
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(400)).await;
    proxy.cut();
    let acked_before_cut = acknowledged.load(Ordering::SeqCst);
    assert!(acked_before_cut > 0, "writes went through before the cut");

    // Every kind of call fails fast with Unavailable while the link is cut.
    for _ in 0..2 {
        let started = Instant::now();
        let err = store.load(&key).await.expect_err("load while cut");
        assert_eq!(err.kind(), &StoreErrorKind::Unavailable, "{err}");
        assert!(
            started.elapsed() <= CALL_TIMEOUT + SLACK,
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
            .expect_err("commit while cut");
        assert_eq!(err.kind(), &StoreErrorKind::Unavailable, "{err}");
        assert!(
            started.elapsed() <= CALL_TIMEOUT + SLACK,
            "commit took {:?}",
            started.elapsed()
        );
        let started = Instant::now();
        let err = store.count().await.expect_err("count while cut");
        assert_eq!(err.kind(), &StoreErrorKind::Unavailable, "{err}");
        let err = store
            .destroy(&StoreKey::for_id(&RandomIds.generate()))
            .await
            .expect_err("destroy while cut");
        assert_eq!(err.kind(), &StoreErrorKind::Unavailable, "{err}");
        assert!(
            started.elapsed() <= 2 * (CALL_TIMEOUT + SLACK),
            "count + destroy took {:?}",
            started.elapsed()
        );
        let started = Instant::now();
        let err = store
            .index_user("kataras", &key, None)
            .await
            .expect_err("index_user while cut");
        assert_eq!(err.kind(), &StoreErrorKind::Unavailable, "{err}");
        let err = store
            .destroy_user("kataras")
            .await
            .expect_err("destroy_user while cut");
        assert_eq!(err.kind(), &StoreErrorKind::Unavailable, "{err}");
        assert!(
            started.elapsed() <= 2 * (CALL_TIMEOUT + SLACK),
            "index_user + destroy_user took {:?}",
            started.elapsed()
        );
    }

    // The link is back: the same store recovers by itself.
    proxy.restore();
    let restored = Instant::now();
    let record = loop {
        match store.load(&key).await {
            Ok(Some(record)) => break record,
            Ok(None) => panic!("the session did not survive the outage"),
            Err(e) => {
                assert_eq!(e.kind(), &StoreErrorKind::Unavailable, "{e}");
                assert!(
                    restored.elapsed() < Duration::from_secs(15),
                    "no recovery within 15 s: {e}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let recovered_after = restored.elapsed();
    // Writers keep going a little after the recovery, so some acknowledge again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut totals = (0, 0);
    for w in writers {
        let (ok, failed) = w.await.expect("writer must not panic");
        totals.0 += ok;
        totals.1 += failed;
    }
    assert!(
        totals.1 > 0,
        "some writes must have failed while the link was cut"
    );

    // No acknowledged write was lost. (A write that timed out may or may not have been
    // applied, so the stored counter can be higher than the acknowledged maximum.)
    let stored = counter(&record);
    assert!(
        stored >= acked_before_cut,
        "stored {stored} < acknowledged {acked_before_cut}"
    );
    assert_eq!(record.values["user"], Bytes::from_static(b"\"kataras\""));
    let final_n = counter(&store.load(&key).await.expect("load").expect("exists"));
    let acked = acknowledged.load(Ordering::SeqCst);
    assert!(final_n >= acked, "stored {final_n} < acknowledged {acked}");
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
    // Log out everywhere works again too.
    store
        .index_user("kataras", &key, None)
        .await
        .expect("index_user after recovery");
    assert_eq!(
        store
            .destroy_user("kataras")
            .await
            .expect("destroy_user after recovery"),
        vec![key.clone()]
    );
    eprintln!(
        "{}: {} commits acknowledged, {} failed while cut (slowest failure {:?}, call timeout \
         {CALL_TIMEOUT:?}); recovered {recovered_after:?} after the restore",
        store.name(),
        totals.0,
        totals.1,
        Duration::from_micros(slowest_failure_us.load(Ordering::Relaxed))
    );
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread")]
async fn postgres_cut_and_restored_under_load() {
    use sessio_sql::{
        sqlx::{self, postgres::PgPoolOptions},
        PostgresStore,
    };

    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(support::PG_ADMIN)
        .await
        .expect("PostgreSQL must run on 127.0.0.1:5432 (scripts/services/postgres.sh)");
    let db = unique("fault");
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&admin)
        .await
        .expect("create database");
    let proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], 5432))).await;
    let url = format!("postgres://postgres@127.0.0.1:{}/{db}", proxy.port);
    let store = PostgresStore::connect_with(&url, options())
        .await
        .expect("connect through the proxy");
    cut_and_restore_under_load(Arc::new(store), &proxy).await;
    drop(proxy);
    sqlx::query(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .execute(&admin)
        .await
        .expect("drop database");
}

#[cfg(feature = "mysql")]
#[tokio::test(flavor = "multi_thread")]
async fn mariadb_cut_and_restored_under_load() {
    use sessio_sql::{
        sqlx::{self, mysql::MySqlPoolOptions},
        MySqlStore,
    };

    let admin = MySqlPoolOptions::new()
        .max_connections(1)
        .connect(support::MARIA_ADMIN)
        .await
        .expect("MariaDB must run on 127.0.0.1:3306 (scripts/services/mariadb.sh)");
    let db = unique("fault");
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&admin)
        .await
        .expect("create database");
    let proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], 3306))).await;
    let url = format!("mysql://root@127.0.0.1:{}/{db}", proxy.port);
    let store = MySqlStore::connect_with(&url, options())
        .await
        .expect("connect through the proxy");
    cut_and_restore_under_load(Arc::new(store), &proxy).await;
    drop(proxy);
    sqlx::query(&format!("DROP DATABASE {db}"))
        .execute(&admin)
        .await
        .expect("drop database");
}
