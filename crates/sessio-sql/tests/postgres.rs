//! PostgreSQL store against the real server at 127.0.0.1:5432 (user postgres, trust).
//! Each conformance case runs in its own schema, dropped at the end.

#![cfg(feature = "postgres")]

mod support;

use std::{
    str::FromStr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use sessio::store::{conformance, Change, Committed, Patch, Store, StoreErrorKind, StoreKey};
use sessio_sql::{
    sqlx::{
        self,
        postgres::{PgConnectOptions, PgPool, PgPoolOptions},
    },
    PostgresStore, SqlStoreOptions, TableName,
};
use support::{unique, Created, PG_ADMIN, PG_BASE};

async fn admin() -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .connect(PG_ADMIN)
        .await
        .expect("PostgreSQL must run on 127.0.0.1:5432 (scripts/services/postgres.sh)")
}

/// A pool whose connections work in `schema` only.
async fn pool_in(schema: &str, app: &str, max: u32, test_before_acquire: bool) -> PgPool {
    let options = PgConnectOptions::from_str(PG_ADMIN)
        .expect("url")
        .application_name(app)
        .options([("search_path", schema)]);
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(3))
        .test_before_acquire(test_before_acquire)
        .connect_with(options)
        .await
        .expect("connect")
}

async fn fresh_schema(admin: &PgPool, created: &Created) -> String {
    let schema = unique("pg");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(admin)
        .await
        .expect("create schema");
    created.lock().expect("lock").push(schema.clone());
    schema
}

async fn drop_schemas(admin: &PgPool, created: &Created) {
    let names = std::mem::take(&mut *created.lock().expect("lock"));
    for schema in names {
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(admin)
            .await
            .expect("drop schema");
    }
}

async fn store_in(schema: &str, options: &SqlStoreOptions) -> PostgresStore {
    let store = PostgresStore::from_pool(pool_in(schema, "sessio_test", 8, true).await, options);
    store.migrate().await.expect("migrate");
    store
}

fn key() -> StoreKey {
    StoreKey::from_stored(unique("key"))
}

fn set(k: &str, v: &[u8]) -> Change {
    Change::Set(k.to_owned(), Bytes::copy_from_slice(v))
}

fn create(changes: Vec<Change>, ttl: Duration) -> Patch {
    Patch {
        create: true,
        clear: false,
        changes,
        expires_at: Some(SystemTime::now() + ttl),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_suite() {
    let admin = admin().await;
    let created = Created::default();
    let (a, c) = (admin.clone(), created.clone());
    conformance::run(move || {
        let (admin, created) = (a.clone(), c.clone());
        async move {
            let schema = fresh_schema(&admin, &created).await;
            store_in(&schema, &SqlStoreOptions::new()).await
        }
    })
    .await;
    drop_schemas(&admin, &created).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn data_survives_a_restart_through_connect() {
    let admin = admin().await;
    let db = unique("pgdb");
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&admin)
        .await
        .expect("create database");
    let url = format!("{PG_BASE}/{db}");
    let k = key();
    {
        let store = PostgresStore::connect(&url).await.expect("connect");
        let patch = create(vec![set("user", b"\"iris\"")], Duration::from_secs(60));
        store.commit(&k, &patch).await.expect("commit");
        store.pool().close().await;
    }
    let store = PostgresStore::connect(&url).await.expect("reconnect");
    let record = store.load(&k).await.expect("load").expect("kept");
    assert_eq!(record.values.get("user"), Some(&b"\"iris\""[..]));
    store.pool().close().await;
    drop(store);
    sqlx::query(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .execute(&admin)
        .await
        .expect("drop database");
}

#[tokio::test(flavor = "multi_thread")]
async fn terminated_connections_give_unavailable_then_recover() {
    let admin = admin().await;
    let created = Created::default();
    let schema = fresh_schema(&admin, &created).await;
    let app = unique("fault");
    let store = PostgresStore::from_pool(
        pool_in(&schema, &app, 4, false).await,
        &SqlStoreOptions::new(),
    );
    store.migrate().await.expect("migrate");
    let k = key();
    store
        .commit(&k, &create(vec![set("a", b"1")], Duration::from_secs(60)))
        .await
        .expect("commit");

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (store, k, stop, ok, failed) = (
                store.clone(),
                k.clone(),
                stop.clone(),
                ok.clone(),
                failed.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let patch = Patch {
                        create: false,
                        clear: false,
                        changes: vec![Change::Increment("n".into(), 1), set("b", b"2")],
                        expires_at: Some(SystemTime::now() + Duration::from_secs(60)),
                    };
                    for result in [
                        store.commit(&k, &patch).await.map(drop),
                        store.load(&k).await.map(drop),
                    ] {
                        match result {
                            Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                            Err(e) => {
                                assert_eq!(e.kind(), &StoreErrorKind::Unavailable, "{e}");
                                failed.fetch_add(1, Ordering::Relaxed)
                            }
                        };
                    }
                }
            })
        })
        .collect();
    let mut killed = 0;
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let n: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind(&app)
        .fetch_all(&admin)
        .await
        .expect("terminate");
        killed += n.len();
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("a worker panicked");
    }
    assert!(killed > 0, "the test must have killed connections");
    assert!(ok.load(Ordering::Relaxed) > 0);
    eprintln!(
        "killed {killed} connections; {} calls ok, {} unavailable",
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed)
    );
    // The very next calls work: the pool replaced the dead connections.
    for _ in 0..10 {
        let patch = Patch {
            create: false,
            clear: false,
            changes: vec![Change::Increment("n".into(), 1)],
            expires_at: Some(SystemTime::now() + Duration::from_secs(60)),
        };
        assert!(matches!(
            store
                .commit(&k, &patch)
                .await
                .expect("commit after the fault"),
            Committed::Applied { .. }
        ));
        assert!(store
            .load(&k)
            .await
            .expect("load after the fault")
            .is_some());
    }
    // Every pooled connection dead at once (as after a server restart): the next
    // call of each kind still works, by retrying past the dead connections.
    for ping in [false, true] {
        let store = PostgresStore::from_pool(
            pool_in(&schema, &app, 3, ping).await,
            &SqlStoreOptions::new(),
        );
        // Open all three connections, then kill them while idle.
        let warm: Vec<_> = (0..3).map(|_| store.load(&k)).collect();
        for w in warm {
            w.await.expect("warm up");
        }
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind(&app)
        .execute(&admin)
        .await
        .expect("terminate");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(store.load(&k).await.expect("load right after").is_some());
        assert!(store.count().await.expect("count right after") >= 1);
        let patch = Patch {
            create: false,
            clear: false,
            changes: vec![Change::Increment("n".into(), 1)],
            expires_at: Some(SystemTime::now() + Duration::from_secs(60)),
        };
        store.commit(&k, &patch).await.expect("commit right after");
    }
    drop(store);
    drop_schemas(&admin, &created).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sweeper_deletes_in_batches_and_reports_expiry() {
    let admin = admin().await;
    let created = Created::default();
    let schema = fresh_schema(&admin, &created).await;
    let store = store_in(&schema, &SqlStoreOptions::new().sweep_batch(3)).await;
    support::sweep_ten_expired(&store, || store.spawn_sweeper(Duration::from_millis(50), 3)).await;
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessio_sessions")
        .fetch_one(store.pool())
        .await
        .expect("count rows");
    assert_eq!(rows, 1, "expired rows are deleted");
    let values: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessio_sessions_values")
        .fetch_one(store.pool())
        .await
        .expect("count values");
    assert_eq!(values, 1, "their values go with them");
    drop(store);
    drop_schemas(&admin, &created).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_migrations_and_custom_table() {
    let admin = admin().await;
    let created = Created::default();
    let schema = fresh_schema(&admin, &created).await;
    let options = SqlStoreOptions::new().table(TableName::new("web_sessions").expect("valid"));
    let pools: Vec<_> = {
        let mut v = Vec::new();
        for _ in 0..6 {
            v.push(PostgresStore::from_pool(
                pool_in(&schema, "sessio_test", 1, true).await,
                &options,
            ));
        }
        v
    };
    let runs: Vec<_> = pools
        .iter()
        .cloned()
        .map(|s| tokio::spawn(async move { s.migrate().await }))
        .collect();
    for r in runs {
        r.await.expect("task").expect("concurrent migrate");
    }
    let k = key();
    let store = &pools[0];
    assert_eq!(store.table().as_str(), "web_sessions");
    store
        .commit(&k, &create(vec![set("a", b"1")], Duration::from_secs(60)))
        .await
        .expect("commit");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM web_sessions_values")
        .fetch_one(store.pool())
        .await
        .expect("custom table used");
    assert_eq!(n, 1);
    drop(pools);
    drop_schemas(&admin, &created).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn undecodable_rows_are_corrupt_errors() {
    let admin = admin().await;
    let created = Created::default();
    let schema = fresh_schema(&admin, &created).await;
    let store = store_in(&schema, &SqlStoreOptions::new()).await;
    let k = key();
    store
        .commit(&k, &create(vec![set("a", b"1")], Duration::from_secs(60)))
        .await
        .expect("commit");
    // Someone changed the column type behind our back: the load is a clear error.
    sqlx::query("ALTER TABLE sessio_sessions_values ALTER COLUMN data TYPE TEXT USING 'x'")
        .execute(store.pool())
        .await
        .expect("alter");
    let fresh = PostgresStore::from_pool(
        pool_in(&schema, "sessio_test", 1, true).await,
        &SqlStoreOptions::new(),
    );
    let err = fresh.load(&k).await.expect_err("must not decode");
    assert_eq!(err.kind(), &StoreErrorKind::Corrupt, "{err}");
    assert!(
        std::error::Error::source(&err).is_some(),
        "the driver error is kept"
    );
    drop((store, fresh));
    drop_schemas(&admin, &created).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn user_index_rows_go_with_their_sessions() {
    let admin = admin().await;
    let created = Created::default();
    let schema = fresh_schema(&admin, &created).await;
    let store = store_in(&schema, &SqlStoreOptions::new()).await;
    let pool = store.pool().clone();
    support::index_rows_follow_sessions(&store, || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar("SELECT COUNT(*) FROM sessio_sessions_users")
                .fetch_one(&pool)
                .await
                .expect("count index rows")
        }
    })
    .await;
    drop(store);
    drop_schemas(&admin, &created).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrade_from_a_schema_without_the_user_index() {
    let admin = admin().await;
    let created = Created::default();
    let schema = fresh_schema(&admin, &created).await;
    let options = SqlStoreOptions::new().table(TableName::new("Old_Sessions").expect("valid"));
    let store = store_in(&schema, &options).await;
    support::upgrade_indexes_existing_users(
        &store,
        || async {
            sqlx::query("DROP TABLE Old_Sessions_users")
                .execute(store.pool())
                .await
                .expect("drop index");
        },
        || async { store.migrate().await.expect("migrate") },
    )
    .await;
    drop(store);
    drop_schemas(&admin, &created).await;
}
