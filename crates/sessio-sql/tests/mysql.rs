//! MySQL/MariaDB store against the real MariaDB at 127.0.0.1:3306 (root, no
//! password). Each conformance case runs in its own database, dropped at the end.

#![cfg(feature = "mysql")]

mod support;

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use sessio::store::{conformance, Change, Patch, Store, StoreErrorKind, StoreKey};
use sessio_sql::{
    sqlx::{self, mysql::MySqlPool},
    MySqlStore, SqlStoreOptions, TableName,
};
use support::{unique, Created, MARIA_ADMIN};

async fn admin() -> MySqlPool {
    MySqlPool::connect(MARIA_ADMIN)
        .await
        .expect("MariaDB must run on 127.0.0.1:3306 (scripts/services/mariadb.sh)")
}

async fn fresh_database(admin: &MySqlPool, created: &Created) -> String {
    let db = unique("my");
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(admin)
        .await
        .expect("create database");
    created.lock().expect("lock").push(db.clone());
    format!("{MARIA_ADMIN}/{db}")
}

async fn drop_databases(admin: &MySqlPool, created: &Created) {
    let names = std::mem::take(&mut *created.lock().expect("lock"));
    for db in names {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {db}"))
            .execute(admin)
            .await
            .expect("drop database");
    }
}

fn options() -> SqlStoreOptions {
    SqlStoreOptions::new()
        .sweep_interval(None)
        .max_connections(8)
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
            let url = fresh_database(&admin, &created).await;
            MySqlStore::connect_with(&url, options())
                .await
                .expect("connect")
        }
    })
    .await;
    drop_databases(&admin, &created).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn data_survives_a_restart_through_connect() {
    let admin = admin().await;
    let created = Created::default();
    let url = fresh_database(&admin, &created).await;
    let k = key();
    {
        let store = MySqlStore::connect(&url).await.expect("connect");
        let patch = create(
            vec![set("user", b"\"iris\""), set("Key", b"1"), set("key", b"2")],
            Duration::from_secs(60),
        );
        store.commit(&k, &patch).await.expect("commit");
        store.pool().close().await;
    }
    let store = MySqlStore::connect(&url).await.expect("reconnect");
    let record = store.load(&k).await.expect("load").expect("kept");
    assert_eq!(record.values.get("user"), Some(&b"\"iris\""[..]));
    assert_eq!(
        record.values.len(),
        3,
        "keys compare as bytes: `Key` and `key` differ"
    );
    store.pool().close().await;
    drop(store);
    drop_databases(&admin, &created).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sweeper_deletes_in_batches_and_reports_expiry() {
    let admin = admin().await;
    let created = Created::default();
    let url = fresh_database(&admin, &created).await;
    let store = MySqlStore::connect_with(&url, options())
        .await
        .expect("connect");
    support::sweep_ten_expired(&store, || store.spawn_sweeper(Duration::from_millis(50), 3)).await;
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessio_sessions_values")
        .fetch_one(store.pool())
        .await
        .expect("count values");
    assert_eq!(rows, 1, "values are deleted with their session");
    store.pool().close().await;
    drop(store);
    drop_databases(&admin, &created).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_migrations_and_bad_rows() {
    let admin = admin().await;
    let created = Created::default();
    let url = fresh_database(&admin, &created).await;
    let options = options()
        .migrate(false)
        .table(TableName::new("web_sessions").expect("valid"));
    let mut stores = Vec::new();
    for _ in 0..6 {
        stores.push(
            MySqlStore::connect_with(&url, options.clone())
                .await
                .expect("connect"),
        );
    }
    let runs: Vec<_> = stores
        .iter()
        .cloned()
        .map(|s| tokio::spawn(async move { s.migrate().await }))
        .collect();
    for r in runs {
        r.await.expect("task").expect("concurrent migrate");
    }
    let store = &stores[0];
    let k = key();
    store
        .commit(&k, &create(vec![set("a", b"1")], Duration::from_secs(60)))
        .await
        .expect("commit");
    // A key that is not UTF-8 (written behind our back) is a clear error.
    sqlx::query("UPDATE web_sessions_values SET name = UNHEX('FF00')")
        .execute(store.pool())
        .await
        .expect("corrupt");
    let err = store.load(&k).await.expect_err("must not decode");
    assert_eq!(err.kind(), &StoreErrorKind::Corrupt, "{err}");
    for s in &stores {
        s.pool().close().await;
    }
    drop(stores);
    drop_databases(&admin, &created).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_connections_give_unavailable_then_recover() {
    let admin = admin().await;
    let created = Created::default();
    let url = fresh_database(&admin, &created).await;
    let db = url.rsplit('/').next().expect("db").to_owned();
    let store = MySqlStore::connect_with(&url, options().max_connections(3))
        .await
        .expect("connect");
    let k = key();
    store
        .commit(&k, &create(vec![set("a", b"1")], Duration::from_secs(60)))
        .await
        .expect("commit");
    let kill_all = || async {
        let ids: Vec<u64> = sqlx::query_scalar(
            "SELECT CAST(id AS UNSIGNED) FROM information_schema.processlist WHERE db = ?",
        )
        .bind(&db)
        .fetch_all(&admin)
        .await
        .expect("processlist");
        for id in &ids {
            // The connection may be gone already.
            let _ = sqlx::query(&format!("KILL CONNECTION {id}"))
                .execute(&admin)
                .await;
        }
        ids.len()
    };
    // Kill while in use: calls fail with Unavailable or succeed, never panic.
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let (store, k) = (store.clone(), k.clone());
            tokio::spawn(async move {
                for _ in 0..40 {
                    let patch = Patch {
                        create: false,
                        clear: false,
                        changes: vec![Change::Increment("n".into(), 1)],
                        expires_at: Some(SystemTime::now() + Duration::from_secs(60)),
                    };
                    for result in [
                        store.commit(&k, &patch).await.map(drop),
                        store.load(&k).await.map(drop),
                    ] {
                        if let Err(e) = result {
                            assert_eq!(e.kind(), &StoreErrorKind::Unavailable, "{e}");
                        }
                    }
                }
            })
        })
        .collect();
    let mut killed = 0;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        killed += kill_all().await;
    }
    for w in workers {
        w.await.expect("a worker panicked");
    }
    assert!(killed > 0);
    // All idle connections dead at once: the next calls still work.
    let warm: Vec<_> = (0..3).map(|_| store.load(&k)).collect();
    for w in warm {
        w.await.expect("warm up");
    }
    assert!(kill_all().await > 0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(store.load(&k).await.expect("load right after").is_some());
    let patch = Patch {
        create: false,
        clear: false,
        changes: vec![Change::Increment("n".into(), 1)],
        expires_at: Some(SystemTime::now() + Duration::from_secs(60)),
    };
    store.commit(&k, &patch).await.expect("commit right after");
    store.pool().close().await;
    drop(store);
    drop_databases(&admin, &created).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn user_index_rows_go_with_their_sessions() {
    let admin = admin().await;
    let created = Created::default();
    let url = fresh_database(&admin, &created).await;
    let store = MySqlStore::connect_with(&url, options())
        .await
        .expect("connect");
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
    store.pool().close().await;
    drop(store);
    drop_databases(&admin, &created).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrade_from_a_schema_without_the_user_index() {
    let admin = admin().await;
    let created = Created::default();
    let url = fresh_database(&admin, &created).await;
    let options = options().table(TableName::new("Old_Sessions").expect("valid"));
    let store = MySqlStore::connect_with(&url, options)
        .await
        .expect("connect");
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
    store.pool().close().await;
    drop(store);
    drop_databases(&admin, &created).await;
}
