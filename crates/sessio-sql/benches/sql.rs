//! Load and commit latency of the SQL stores against the real servers.
//!
//! `cargo bench -p sessio-sql --bench sql -- --warm-up-time 1 --measurement-time 3`
//! PostgreSQL (127.0.0.1:5432) and MariaDB (127.0.0.1:3306) must run; each gets a
//! scratch schema / database, dropped at the end. SQLite uses a temporary file.
//! Labels: `<db>` is the default configuration, `<db>_ping` adds
//! `test_before_acquire(true)`, `postgres_async_commit` sets `synchronous_commit = off`
//! (no WAL flush wait) to show what the statements cost without the flush.

#![allow(missing_docs, clippy::unwrap_used)]

use std::{
    str::FromStr,
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use sessio::store::{Change, Patch, Store, StoreKey};
use sessio_sql::{
    sqlx::{
        self,
        postgres::{PgConnectOptions, PgPoolOptions},
    },
    MySqlStore, PostgresStore, SqlStoreOptions, SqliteStore,
};
use tokio::runtime::Runtime;

const SESSION_KEYS: usize = 20;

fn patch(changes: Vec<Change>, create: bool) -> Patch {
    Patch {
        create,
        clear: false,
        changes,
        expires_at: Some(SystemTime::now() + Duration::from_secs(3600)),
    }
}

/// A session with `SESSION_KEYS` keys of 32 bytes each.
async fn seed(store: &dyn Store) -> StoreKey {
    let key = StoreKey::from_stored(format!("bench-{}", std::process::id()));
    let changes = (0..SESSION_KEYS)
        .map(|i| Change::Set(format!("key{i}"), Bytes::from(vec![b'x'; 32])))
        .collect();
    store.commit(&key, &patch(changes, true)).await.unwrap();
    key
}

fn bench_store(c: &mut Criterion, rt: &Runtime, label: &str, store: &dyn Store) {
    let key = rt.block_on(seed(store));
    let mut group = c.benchmark_group(label);
    group.bench_function(format!("load_{SESSION_KEYS}_keys"), |b| {
        b.to_async(rt)
            .iter(|| async { store.load(&key).await.unwrap() });
    });
    let set = patch(
        vec![Change::Set("key0".into(), Bytes::from_static(b"\"v\""))],
        false,
    );
    group.bench_function("commit_set_1_key", |b| {
        b.to_async(rt)
            .iter(|| async { store.commit(&key, &set).await.unwrap() });
    });
    let inc = patch(vec![Change::Increment("n".into(), 1)], false);
    group.bench_function("commit_increment", |b| {
        b.to_async(rt)
            .iter(|| async { store.commit(&key, &inc).await.unwrap() });
    });
    group.finish();
}

fn options(ping: bool) -> SqlStoreOptions {
    SqlStoreOptions::new()
        .sweep_interval(None)
        .test_before_acquire(ping)
        .max_connections(4)
}

fn postgres(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let schema = format!("sessio_bench_{}", std::process::id());
    let admin = rt
        .block_on(PgPoolOptions::new().connect("postgres://postgres@127.0.0.1:5432/postgres"))
        .expect("PostgreSQL on 127.0.0.1:5432");
    rt.block_on(sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&admin))
        .unwrap();
    // `postgres_async_commit`: `synchronous_commit = off`, to separate the cost of the
    // statements from the cost of the WAL flush.
    for (label, ping, sync) in [
        ("postgres", false, "on"),
        ("postgres_ping", true, "on"),
        ("postgres_async_commit", false, "off"),
    ] {
        let connect = PgConnectOptions::from_str("postgres://postgres@127.0.0.1:5432/postgres")
            .unwrap()
            .options([
                ("search_path", schema.as_str()),
                ("synchronous_commit", sync),
            ]);
        let pool = rt
            .block_on(
                PgPoolOptions::new()
                    .max_connections(4)
                    .test_before_acquire(ping)
                    .connect_with(connect),
            )
            .unwrap();
        let store = PostgresStore::from_pool(pool, &options(ping));
        rt.block_on(store.migrate()).unwrap();
        bench_store(c, &rt, label, &store);
        rt.block_on(store.pool().close());
    }
    for (label, sync) in [
        ("postgres_jsonb_alternative", "on"),
        ("postgres_jsonb_alternative_async_commit", "off"),
    ] {
        let connect = PgConnectOptions::from_str("postgres://postgres@127.0.0.1:5432/postgres")
            .unwrap()
            .options([
                ("search_path", schema.as_str()),
                ("synchronous_commit", sync),
            ]);
        let pool = rt
            .block_on(
                PgPoolOptions::new()
                    .max_connections(4)
                    .connect_with(connect),
            )
            .unwrap();
        jsonb_alternative(c, &rt, label, &pool);
        rt.block_on(pool.close());
    }
    rt.block_on(sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&admin))
        .unwrap();
}

/// The schema not chosen, for comparison: one JSONB document per session, values
/// base64-encoded (JSON cannot hold raw bytes). A set is one `UPDATE ... doc || ...`
/// statement; an increment must decode the value in Rust, so it reads under
/// `FOR UPDATE` in a transaction, as the chosen schema does.
fn jsonb_alternative(c: &mut Criterion, rt: &Runtime, label: &str, pool: &sqlx::PgPool) {
    use base64::{engine::general_purpose::STANDARD, Engine as _};
    use sessio::store::parse_counter;
    const LIVE: &str = "(expires_at IS NULL OR expires_at > $2)";
    let deadline = || {
        i64::try_from(
            (SystemTime::now() + Duration::from_secs(3600))
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap()
    };
    let now = || deadline() - 3_600_000;
    rt.block_on(async {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS jdoc (id TEXT PRIMARY KEY, expires_at BIGINT, doc JSONB NOT NULL)",
        )
        .execute(pool)
        .await
        .unwrap();
        let doc: serde_json::Map<String, serde_json::Value> = (0..SESSION_KEYS)
            .map(|i| (format!("key{i}"), STANDARD.encode([b'x'; 32]).into()))
            .collect();
        sqlx::query("INSERT INTO jdoc VALUES ('s', $1, $2::jsonb) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc")
            .bind(deadline())
            .bind(serde_json::Value::Object(doc).to_string())
            .execute(pool)
            .await
            .unwrap();
    });
    let mut group = c.benchmark_group(label);
    group.bench_function(format!("load_{SESSION_KEYS}_keys"), |b| {
        b.to_async(rt).iter(|| async {
            let (_, doc): (Option<i64>, String) = sqlx::query_as(&format!(
                "SELECT expires_at, doc::text FROM jdoc WHERE id = $1 AND {LIVE}"
            ))
            .bind("s")
            .bind(now())
            .fetch_one(pool)
            .await
            .unwrap();
            let map: std::collections::HashMap<String, String> =
                serde_json::from_str(&doc).unwrap();
            map.into_iter()
                .map(|(k, v)| (k, Bytes::from(STANDARD.decode(v).unwrap())))
                .collect::<std::collections::HashMap<_, _>>()
        });
    });
    let n = std::sync::atomic::AtomicU64::new(0);
    group.bench_function("commit_set_1_key", |b| {
        b.to_async(rt).iter(|| async {
            let v = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            sqlx::query(&format!(
                "UPDATE jdoc SET doc = doc || jsonb_build_object($3::text, $4::text), \
                 expires_at = $5 WHERE id = $1 AND {LIVE}"
            ))
            .bind("s")
            .bind(now())
            .bind("key0")
            .bind(STANDARD.encode(v.to_string()))
            .bind(deadline())
            .execute(pool)
            .await
            .unwrap()
        });
    });
    group.bench_function("commit_increment", |b| {
        b.to_async(rt).iter(|| async {
            let mut tx = pool.begin().await.unwrap();
            let current: Option<Option<String>> = sqlx::query_scalar(&format!(
                "SELECT doc->>'n' FROM jdoc WHERE id = $1 AND {LIVE} FOR UPDATE"
            ))
            .bind("s")
            .bind(now())
            .fetch_optional(&mut *tx)
            .await
            .unwrap();
            let current = match current.flatten() {
                None => 0,
                Some(b64) => parse_counter(&STANDARD.decode(b64).unwrap()).unwrap(),
            };
            let next = current + 1;
            sqlx::query(
                "UPDATE jdoc SET doc = doc || jsonb_build_object('n', $2::text), expires_at = $3 WHERE id = $1",
            )
            .bind("s")
            .bind(STANDARD.encode(next.to_string()))
            .bind(deadline())
            .execute(&mut *tx)
            .await
            .unwrap();
            tx.commit().await.unwrap();
            next
        });
    });
    group.finish();
}

fn mysql(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let db = format!("sessio_bench_{}", std::process::id());
    let admin = rt
        .block_on(sqlx::MySqlPool::connect("mysql://root@127.0.0.1:3306"))
        .expect("MariaDB on 127.0.0.1:3306");
    rt.block_on(sqlx::query(&format!("CREATE DATABASE {db}")).execute(&admin))
        .unwrap();
    for (label, ping) in [("mariadb", false), ("mariadb_ping", true)] {
        let url = format!("mysql://root@127.0.0.1:3306/{db}");
        let store = rt
            .block_on(MySqlStore::connect_with(&url, options(ping)))
            .unwrap();
        bench_store(c, &rt, label, &store);
        rt.block_on(store.pool().close());
    }
    rt.block_on(sqlx::query(&format!("DROP DATABASE {db}")).execute(&admin))
        .unwrap();
}

fn sqlite(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (label, ping) in [("sqlite", false), ("sqlite_ping", true)] {
        let url = format!("sqlite:{}", dir.path().join("bench.db").display());
        let store = rt
            .block_on(SqliteStore::connect_with(&url, options(ping)))
            .unwrap();
        bench_store(c, &rt, label, &store);
        rt.block_on(store.pool().close());
    }
}

criterion_group!(benches, postgres, mysql, sqlite);
criterion_main!(benches);
