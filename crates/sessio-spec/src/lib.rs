//! Store specs: the one-string names of session stores that the demo's `--store` and
//! the `sessio` admin CLI accept, and the code that opens them.
//!
//! | spec | store | feature |
//! |------|-------|---------|
//! | `memory` | [`MemoryStore`] (this process only) | always |
//! | `redis://…`, `rediss://…`, `redis-cluster://…`, `redis-sentinel://…` | `sessio_redis::RedisStore` | `redis` |
//! | `redb:PATH` | `sessio_redb::RedbStore` | `redb` |
//! | `fs:DIR` | `sessio_fs::FileStore` | `fs` |
//! | `postgres://…`, `mysql://…` (or `mariadb://…`), `sqlite:PATH` | `sessio_sql` stores | `sql` |
//!
//! Redis specs take one parameter of their own, `key_prefix=` (default `sessio:`), so
//! that several applications or tests can share one Redis:
//! `redis://127.0.0.1:6379/0?key_prefix=myapp:`. It is removed before the URL goes
//! to the Redis client.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let opened = sessio_spec::open("memory", sessio_spec::Mode::Serve).await.expect("open");
//! assert_eq!(opened.store().name(), "memory");
//! assert!(sessio_spec::open("nosuch:x", sessio_spec::Mode::Serve).await.is_err());
//! # }
//! ```

mod cache;
mod redact;

use std::sync::Arc;

pub use cache::{Cached, UNTRACKED_STALENESS};
pub use redact::redact;
use sessio::{
    store::{Store, StoreError},
    BoxError, MemoryStore,
};

/// How a store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// For an application: SQL stores create their tables and start their sweeper,
    /// embedded stores start their background purge.
    Serve,
    /// For an admin tool: change nothing on open (no table creation) and start no
    /// background task.
    Admin,
}

/// Why a spec could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The spec names no store this build knows.
    #[error("unknown store spec {spec:?}; this build knows: {known}")]
    Unknown {
        /// The spec as given.
        spec: String,
        /// The specs this build understands.
        known: String,
    },
    /// The store was recognised but could not be opened (bad URL, server unreachable,
    /// file locked or corrupt). The display is the store's own message.
    #[error("{source}")]
    Open {
        /// The backend: `"redis"`, `"postgres"`, `"redb"`, ...
        backend: &'static str,
        /// The store's error.
        #[source]
        source: BoxError,
    },
}

fn open_error(backend: &'static str, e: impl Into<BoxError>) -> SpecError {
    SpecError::Open {
        backend,
        source: e.into(),
    }
}

/// The specs this build understands, for error messages.
pub fn known() -> String {
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

/// An opened store, with access to what only some backends have (SQL migrations).
#[derive(Debug, Clone)]
pub struct Opened {
    store: Arc<dyn Store>,
    handle: Handle,
}

/// The concrete store, where the CLI needs more than [`Store`].
#[derive(Debug, Clone)]
enum Handle {
    Other,
    #[cfg(feature = "redis")]
    Redis(sessio_redis::RedisStore),
    #[cfg(feature = "sql")]
    Postgres(sessio_sql::PostgresStore),
    #[cfg(feature = "sql")]
    MySql(sessio_sql::MySqlStore),
    #[cfg(feature = "sql")]
    Sqlite(sessio_sql::SqliteStore),
}

impl Opened {
    fn new(store: impl Store, handle: Handle) -> Self {
        Opened {
            store: Arc::new(store),
            handle,
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The store, consuming the handle.
    pub fn into_store(self) -> Arc<dyn Store> {
        self.store
    }

    /// Whether the store has a schema to migrate (the SQL stores).
    pub fn has_schema(&self) -> bool {
        #[cfg(feature = "sql")]
        if matches!(
            self.handle,
            Handle::Postgres(_) | Handle::MySql(_) | Handle::Sqlite(_)
        ) {
            return true;
        }
        false
    }

    /// Creates or upgrades the SQL tables; returns `Ok(false)` for stores without a
    /// schema.
    pub async fn migrate(&self) -> Result<bool, StoreError> {
        match &self.handle {
            #[cfg(feature = "sql")]
            Handle::Postgres(s) => s.migrate().await.map(|()| true),
            #[cfg(feature = "sql")]
            Handle::MySql(s) => s.migrate().await.map(|()| true),
            #[cfg(feature = "sql")]
            Handle::Sqlite(s) => s.migrate().await.map(|()| true),
            _ => Ok(false),
        }
    }
}

/// Opens the store named by `spec` (`cookie` is not a server-side store: callers
/// handle it before calling this).
pub async fn open(spec: &str, mode: Mode) -> Result<Opened, SpecError> {
    open_with(spec, mode, false).await
}

/// Opens the store named by `spec` for an application (as [`Mode::Serve`]) behind a
/// cache of `entries` sessions, kept coherent by the store's change channel where it
/// has one (see [`Cached`]).
pub async fn open_cached(spec: &str, entries: usize) -> Result<Cached, SpecError> {
    open_with(spec, Mode::Serve, true)
        .await?
        .cached(entries)
        .await
}

/// `tracking`: a Redis store will feed a cache its changes, so it speaks RESP3.
async fn open_with(spec: &str, mode: Mode, tracking: bool) -> Result<Opened, SpecError> {
    let _ = (mode, tracking); // unused when no backend feature is on
    match spec {
        "memory" => Ok(Opened::new(MemoryStore::new(), Handle::Other)),
        #[cfg(feature = "redis")]
        s if s.starts_with("redis://")
            || s.starts_with("rediss://")
            || s.starts_with("redis-cluster://")
            || s.starts_with("redis-sentinel://") =>
        {
            let err = |e| open_error("redis", e);
            let (url, prefix) = split_key_prefix(s);
            let mut builder = sessio_redis::RedisStore::builder(&url).map_err(err)?;
            if let Some(prefix) = prefix {
                builder = builder.key_prefix(prefix);
            }
            if tracking {
                builder = builder.tracking();
            }
            let store = builder.connect().await.map_err(err)?;
            Ok(Opened::new(store.clone(), Handle::Redis(store)))
        }
        #[cfg(feature = "redb")]
        s if s.starts_with("redb:") => {
            let mut builder = sessio_redb::RedbStore::builder();
            if mode == Mode::Admin {
                builder = builder.gc_interval(None);
            }
            let store = builder
                .open(&s["redb:".len()..])
                .await
                .map_err(|e| open_error("redb", e))?;
            Ok(Opened::new(store, Handle::Other))
        }
        #[cfg(feature = "fs")]
        s if s.starts_with("fs:") => {
            let mut builder = sessio_fs::FileStore::builder();
            if mode == Mode::Admin {
                builder = builder.gc_interval(None);
            }
            let store = builder
                .open(&s["fs:".len()..])
                .await
                .map_err(|e| open_error("fs", e))?;
            Ok(Opened::new(store, Handle::Other))
        }
        #[cfg(feature = "sql")]
        s if s.starts_with("postgres://") || s.starts_with("postgresql://") => {
            let store = sessio_sql::PostgresStore::connect_with(s, sql_options(mode))
                .await
                .map_err(|e| open_error("postgres", e))?;
            Ok(Opened::new(store.clone(), Handle::Postgres(store)))
        }
        #[cfg(feature = "sql")]
        s if s.starts_with("mysql://") || s.starts_with("mariadb://") => {
            let url = s.replacen("mariadb://", "mysql://", 1);
            let store = sessio_sql::MySqlStore::connect_with(&url, sql_options(mode))
                .await
                .map_err(|e| open_error("mysql", e))?;
            Ok(Opened::new(store.clone(), Handle::MySql(store)))
        }
        #[cfg(feature = "sql")]
        s if s.starts_with("sqlite:") => {
            let store = sessio_sql::SqliteStore::connect_with(s, sql_options(mode))
                .await
                .map_err(|e| open_error("sqlite", e))?;
            Ok(Opened::new(store.clone(), Handle::Sqlite(store)))
        }
        other => Err(SpecError::Unknown {
            spec: other.to_owned(),
            known: known(),
        }),
    }
}

#[cfg(feature = "sql")]
fn sql_options(mode: Mode) -> sessio_sql::SqlStoreOptions {
    let options = sessio_sql::SqlStoreOptions::new();
    match mode {
        Mode::Serve => options,
        Mode::Admin => options.migrate(false).sweep_interval(None),
    }
}

/// Splits the `key_prefix=` parameter (ours, not the Redis client's) off a Redis URL.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
fn split_key_prefix(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut prefix = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|p| match p.strip_prefix("key_prefix=") {
            Some(v) => {
                prefix = Some(v.to_owned());
                false
            }
            None => !p.is_empty(),
        })
        .collect();
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    (url, prefix)
}

#[cfg(test)]
mod tests {
    use super::split_key_prefix;

    #[test]
    fn key_prefix_is_ours_and_removed() {
        assert_eq!(
            split_key_prefix("redis://h:1/0?key_prefix=a:b:"),
            ("redis://h:1/0".to_owned(), Some("a:b:".to_owned()))
        );
        assert_eq!(
            split_key_prefix("redis-cluster://h:1?node=x:2&key_prefix=p&z=1"),
            (
                "redis-cluster://h:1?node=x:2&z=1".to_owned(),
                Some("p".to_owned())
            )
        );
        assert_eq!(
            split_key_prefix("redis://h"),
            ("redis://h".to_owned(), None)
        );
    }
}
