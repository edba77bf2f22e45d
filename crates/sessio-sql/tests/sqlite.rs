//! SQLite store on files in a temporary directory.

#![cfg(feature = "sqlite")]

mod support;

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use sessio::store::{conformance, Change, Patch, Store, StoreErrorKind, StoreKey};
use sessio_sql::{sqlx, SqlStoreOptions, SqliteStore, TableName};
use support::unique;

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
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().to_owned();
    let n = Arc::new(AtomicU64::new(0));
    conformance::run(move || {
        let path = base.join(format!("case{}.db", n.fetch_add(1, Ordering::Relaxed)));
        async move {
            let url = format!("sqlite:{}", path.display());
            SqliteStore::connect_with(&url, SqlStoreOptions::new().sweep_interval(None))
                .await
                .expect("open")
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn data_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sessions.db");
    let k = key();
    {
        let store = SqliteStore::open(&path).await.expect("open");
        let patch = create(vec![set("user", b"\"iris\"")], Duration::from_secs(60));
        store.commit(&k, &patch).await.expect("commit");
        store.pool().close().await;
    }
    let store = SqliteStore::open(&path).await.expect("reopen");
    let record = store.load(&k).await.expect("load").expect("kept");
    assert_eq!(record.values.get("user"), Some(&b"\"iris\""[..]));
}

#[tokio::test(flavor = "multi_thread")]
async fn sweeper_deletes_in_batches_and_reports_expiry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path().join("s.db"))
        .await
        .expect("open");
    support::sweep_ten_expired(&store, || store.spawn_sweeper(Duration::from_millis(50), 3)).await;
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessio_sessions_values")
        .fetch_one(store.pool())
        .await
        .expect("count values");
    assert_eq!(rows, 1, "values are deleted with their session");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_stores_on_one_file_and_bad_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("shared.db");
    let (a, b) = tokio::join!(SqliteStore::open(&path), SqliteStore::open(&path));
    let (a, b) = (a.expect("open a"), b.expect("open b"));
    let k = key();
    a.commit(&k, &create(vec![set("n", b"0")], Duration::from_secs(60)))
        .await
        .expect("commit");
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let k = k.clone();
            tokio::spawn(async move {
                let patch = Patch {
                    create: false,
                    clear: false,
                    changes: vec![Change::Increment("n".into(), 1)],
                    expires_at: Some(SystemTime::now() + Duration::from_secs(60)),
                };
                store.commit(&k, &patch).await.expect("increment")
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let record = b.load(&k).await.expect("load").expect("exists");
    assert_eq!(record.values.get("n"), Some(&b"40"[..]));
    // A key that is a blob, not text (written behind our back), is a clear error.
    sqlx::query("UPDATE sessio_sessions_values SET name = X'FF00'")
        .execute(a.pool())
        .await
        .expect("corrupt");
    let err = a.load(&k).await.expect_err("must not decode");
    assert_eq!(err.kind(), &StoreErrorKind::Corrupt, "{err}");
}

async fn open_unswept(path: &std::path::Path, table: &str) -> SqliteStore {
    let url = format!("sqlite:{}", path.display());
    let options = SqlStoreOptions::new()
        .sweep_interval(None)
        .table(TableName::new(table).expect("valid"));
    SqliteStore::connect_with(&url, options)
        .await
        .expect("open")
}

#[tokio::test(flavor = "multi_thread")]
async fn user_index_rows_go_with_their_sessions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_unswept(&dir.path().join("s.db"), "sessio_sessions").await;
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
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrade_from_a_schema_without_the_user_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.db");
    let store = open_unswept(&path, "Old_Sessions").await;
    support::upgrade_indexes_existing_users(
        &store,
        || async {
            sqlx::query("DROP TABLE Old_Sessions_users")
                .execute(store.pool())
                .await
                .expect("drop index");
        },
        // Through a fresh open, as an upgraded process would.
        || async {
            open_unswept(&path, "Old_Sessions")
                .await
                .pool()
                .close()
                .await;
        },
    )
    .await;
}
