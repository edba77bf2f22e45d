//! `--store SPEC`: which store the demo runs on.

use std::sync::Arc;

use sessio::{store::Store, MemoryStore};

/// The specs this build understands, for error messages.
fn known() -> String {
    let mut known = vec!["memory", "cookie"];
    if cfg!(feature = "redb") {
        known.push("redb:PATH");
    }
    if cfg!(feature = "fs") {
        known.push("fs:DIR");
    }
    if cfg!(feature = "sql") {
        known.extend(["postgres://…", "mysql://…", "sqlite:PATH"]);
    }
    if cfg!(feature = "redis") {
        known.extend([
            "redis://…",
            "rediss://…",
            "redis-cluster://…",
            "redis-sentinel://…",
        ]);
    }
    known.join(", ")
}

/// Opens the store named by `spec` (`cookie` is handled by the caller: it is not a
/// server-side store).
pub(crate) async fn open(spec: &str) -> Result<Arc<dyn Store>, String> {
    match spec {
        "memory" => Ok(Arc::new(MemoryStore::new())),
        #[cfg(feature = "redis")]
        s if s.starts_with("redis://")
            || s.starts_with("rediss://")
            || s.starts_with("redis-cluster://")
            || s.starts_with("redis-sentinel://") =>
        {
            sessio_redis::RedisStore::connect(s)
                .await
                .map(|store| Arc::new(store) as Arc<dyn Store>)
                .map_err(|e| e.to_string())
        }
        #[cfg(feature = "redb")]
        s if s.starts_with("redb:") => sessio_redb::RedbStore::open(&s["redb:".len()..])
            .await
            .map(|store| Arc::new(store) as Arc<dyn Store>)
            .map_err(|e| e.to_string()),
        #[cfg(feature = "fs")]
        s if s.starts_with("fs:") => sessio_fs::FileStore::open(&s["fs:".len()..])
            .await
            .map(|store| Arc::new(store) as Arc<dyn Store>)
            .map_err(|e| e.to_string()),
        #[cfg(feature = "sql")]
        s if s.starts_with("postgres://") || s.starts_with("postgresql://") => {
            sessio_sql::PostgresStore::connect(s)
                .await
                .map(|store| Arc::new(store) as Arc<dyn Store>)
                .map_err(|e| e.to_string())
        }
        #[cfg(feature = "sql")]
        s if s.starts_with("mysql://") || s.starts_with("mariadb://") => {
            let url = s.replacen("mariadb://", "mysql://", 1);
            sessio_sql::MySqlStore::connect(&url)
                .await
                .map(|store| Arc::new(store) as Arc<dyn Store>)
                .map_err(|e| e.to_string())
        }
        #[cfg(feature = "sql")]
        s if s.starts_with("sqlite:") => sessio_sql::SqliteStore::connect(s)
            .await
            .map(|store| Arc::new(store) as Arc<dyn Store>)
            .map_err(|e| e.to_string()),
        other => Err(format!(
            "unknown store spec {other:?}; this build knows: {}",
            known()
        )),
    }
}
