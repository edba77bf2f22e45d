//! The axum variants: bare, tower-sessions (memory, Redis) and sessio-axum (memory,
//! Redis), all on axum 0.8 with the same routes.

use std::sync::Arc;

use axum::{http::StatusCode, routing::get, Router};
use sessio::{store::Store, MemoryStore, Sessions};
use sessio_axum::SessionLayer;

use crate::{announce, bare_next, set_value, Opts};

/// Builds the variant's router and serves it until SIGTERM/SIGINT.
pub(crate) async fn serve(opts: Opts) -> Result<(), String> {
    let app = match opts.variant.as_str() {
        "axum-bare" => bare::router(),
        "axum-bare-redis" => bare::with_redis_writes(&opts.redis).await?,
        "tower-memory" => tower::router(tower_sessions::MemoryStore::default()),
        "tower-redis" => tower::router(tower::redis_store(&opts.redis).await?),
        "sessio-axum-memory" => sessio_router(Arc::new(MemoryStore::new()))?,
        "sessio-axum-redb"
        | "sessio-axum-fs"
        | "sessio-axum-sqlite"
        | "sessio-axum-postgres"
        | "sessio-axum-mysql" => sessio_router(persistent_store(&opts.variant).await?)?,
        "sessio-axum-redis" => sessio_router(sessio_redis_store(&opts.redis).await?)?,
        "sessio-axum-redis-cached" => sessio_router(cached_redis_store(&opts.redis).await?)?,
        other => return Err(format!("{other} is not an axum variant")),
    };
    let app = app.route("/healthz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(opts.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", opts.addr))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    announce(&opts, local);
    let result = tokio::select! {
        served = axum::serve(listener, app) => served.map_err(|e| e.to_string()),
        () = shutdown_signal() => Ok(()),
    };
    // The embedded stores' files (absent for the other variants).
    let _ = std::fs::remove_dir_all(scratch_dir());
    result
}

/// Where the embedded stores of this server process keep their files.
fn scratch_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("sessio-compare-{}", std::process::id()))
}

/// sessio's Redis store as the library's users get it (`RedisStore::connect`: default
/// pool of connections, default timeouts).
pub(crate) async fn sessio_redis_store(url: &str) -> Result<Arc<dyn Store>, String> {
    sessio_redis::RedisStore::connect(url)
        .await
        .map(|store| Arc::new(store) as Arc<dyn Store>)
        .map_err(|e| format!("sessio-redis: cannot connect to {url}: {e}"))
}

/// sessio's Redis store behind a `sessio-tiered` cache kept coherent by Redis client
/// tracking (room for 100,000 sessions).
async fn cached_redis_store(url: &str) -> Result<Arc<dyn Store>, String> {
    let redis = sessio_redis::RedisStore::builder(url)
        .map_err(|e| format!("sessio-redis: bad URL {url}: {e}"))?
        .tracking()
        .connect()
        .await
        .map_err(|e| format!("sessio-redis: cannot connect to {url}: {e}"))?;
    let cache = sessio_tiered::TieredStore::builder(redis.clone())
        .max_entries(100_000)
        .build();
    let invalidator = cache.invalidator();
    let tracker = redis
        .track_changes(move |change| invalidator.apply(change))
        .await
        .map_err(|e| format!("sessio-redis: cannot track changes on {url}: {e}"))?;
    // Tracking lasts as long as the server process.
    std::mem::forget(tracker);
    Ok(Arc::new(cache))
}

/// The persistent stores, each fresh per server start: redb, filesystem and SQLite in a
/// new temporary directory; PostgreSQL and MariaDB in their `test` databases (the
/// tables are emptied first), at `COMPARE_POSTGRES` / `COMPARE_MYSQL` if set.
async fn persistent_store(variant: &str) -> Result<Arc<dyn Store>, String> {
    let dir = scratch_dir();
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let env_or = |var: &str, default: &str| std::env::var(var).unwrap_or_else(|_| default.into());
    let spec = match variant {
        "sessio-axum-redb" => format!("redb:{}", dir.join("sessions.redb").display()),
        "sessio-axum-fs" => format!("fs:{}", dir.join("sessions").display()),
        "sessio-axum-sqlite" => format!("sqlite:{}", dir.join("sessions.db").display()),
        "sessio-axum-postgres" => env_or(
            "COMPARE_POSTGRES",
            "postgres://postgres@127.0.0.1:5432/test",
        ),
        _ => env_or("COMPARE_MYSQL", "mysql://root@127.0.0.1:3306/test"),
    };
    let opened = sessio_spec::open(&spec, sessio_spec::Mode::Serve)
        .await
        .map_err(|e| e.to_string())?;
    let store = opened.into_store();
    store.destroy_all().await.map_err(|e| e.to_string())?;
    Ok(store)
}

/// A sessio manager with the library's defaults on `store` (30-minute sliding idle
/// timeout, `Secure` only over TLS).
pub(crate) fn sessio_sessions(store: Arc<dyn Store>) -> Result<Sessions, String> {
    Sessions::builder()
        .shared_store(store)
        .build()
        .map_err(|e| e.to_string())
}

fn sessio_router(store: Arc<dyn Store>) -> Result<Router, String> {
    Ok(with_sessio::router().layer(SessionLayer::new(sessio_sessions(store)?)))
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// No sessions: the ceiling.
mod bare {
    use super::*;

    async fn count() -> String {
        bare_next().to_string()
    }

    pub(super) fn router() -> Router {
        Router::new()
            .route("/hit", get(count))
            .route("/load", get(count))
            .route("/set", get(count))
            .route("/incr", get(count))
            .route("/mostly", get(count))
    }

    /// The bare counter, stored in Redis when `always` or on one `/mostly` in ten.
    async fn write(
        client: tower_sessions_redis_store::fred::prelude::Client,
        always: bool,
    ) -> Result<String, (StatusCode, String)> {
        use tower_sessions_redis_store::fred::prelude::KeysInterface;

        let n = bare_next();
        if always || crate::mostly_writes() {
            // 32 keys, like the harness's 32 sessions.
            let key = format!("axum-bare-redis:{}", n % 32);
            let set: Result<(), _> = client.set(key, n, None, None, false).await;
            set.map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        }
        Ok(n.to_string())
    }

    /// Bare axum plus one Redis `SET` on every request that would write a session
    /// (`/hit`, `/set`, `/incr`, one `/mostly` in ten), on one fred client as
    /// tower-sessions-redis-store sets it up. No session library that writes through to
    /// Redis can beat it: it is the ceiling for the Redis variants on this machine,
    /// where Redis shares a core with wrk or with the server.
    pub(super) async fn with_redis_writes(url: &str) -> Result<Router, String> {
        let client = super::tower::fred_client(url, "axum-bare-redis").await?;
        let route = |always: bool| {
            let client = client.clone();
            get(move || write(client.clone(), always))
        };
        Ok(Router::new()
            .route("/hit", route(true))
            .route("/load", get(count))
            .route("/set", route(true))
            .route("/incr", route(true))
            .route("/mostly", route(false)))
    }
}

/// tower-sessions 0.14 (`with_secure(false)`: plain HTTP on loopback).
mod tower {
    use super::*;
    use tower_sessions::{session::Error, Session, SessionManagerLayer, SessionStore};
    use tower_sessions_redis_store::fred::prelude::{Client, ClientLike, Config};

    type Result<T> = std::result::Result<T, (StatusCode, String)>;

    fn internal(e: Error) -> (StatusCode, String) {
        (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }

    async fn hit(session: Session) -> Result<String> {
        let n: u64 = session.get("counter").await.map_err(internal)?.unwrap_or(0) + 1;
        session.insert("counter", n).await.map_err(internal)?;
        Ok(n.to_string())
    }

    async fn load(session: Session) -> Result<String> {
        let n: u64 = session.get("counter").await.map_err(internal)?.unwrap_or(0);
        Ok(n.to_string())
    }

    async fn set(session: Session) -> Result<String> {
        let v = set_value();
        session.insert("last", v).await.map_err(internal)?;
        Ok(v.to_string())
    }

    /// Read-mostly: nine requests in ten only read, the tenth is a `/hit`.
    async fn mostly(session: Session) -> Result<String> {
        if crate::mostly_writes() {
            hit(session).await
        } else {
            load(session).await
        }
    }

    pub(super) fn router<S: SessionStore + Clone>(store: S) -> Router {
        Router::new()
            .route("/hit", get(hit))
            .route("/load", get(load))
            .route("/set", get(set))
            // No increment in tower-sessions: get + insert, the same as /hit.
            .route("/incr", get(hit))
            .route("/mostly", get(mostly))
            .layer(SessionManagerLayer::new(store).with_secure(false))
    }

    /// tower-sessions-redis-store 0.16 on one fred client (one multiplexed connection,
    /// as its README sets it up).
    pub(super) async fn redis_store(
        url: &str,
    ) -> std::result::Result<tower_sessions_redis_store::RedisStore<Client>, String> {
        let client = fred_client(url, "tower-sessions-redis-store").await?;
        Ok(tower_sessions_redis_store::RedisStore::new(client))
    }

    /// One connected fred client (one multiplexed connection); `who` names the
    /// variant in the error.
    pub(super) async fn fred_client(url: &str, who: &str) -> std::result::Result<Client, String> {
        let config = Config::from_url(url).map_err(|e| format!("{url}: {e}"))?;
        let client = Client::new(config, None, None, None);
        client
            .init()
            .await
            .map_err(|e| format!("{who}: cannot connect to {url}: {e}"))?;
        Ok(client)
    }
}

/// sessio's routes (the layer is added by the caller).
mod with_sessio {
    use super::*;
    use ::sessio::{Error, Session};

    async fn hit(session: Session) -> Result<String, Error> {
        let n: u64 = session.get_or("counter", 0)? + 1;
        session.set("counter", &n)?;
        Ok(n.to_string())
    }

    async fn load(session: Session) -> Result<String, Error> {
        Ok(session.get_or::<u64>("counter", 0)?.to_string())
    }

    async fn set(session: Session) -> Result<String, Error> {
        let v = set_value();
        session.set("last", &v)?;
        Ok(v.to_string())
    }

    async fn incr(session: Session) -> Result<String, Error> {
        Ok(session.increment("counter", 1).await?.to_string())
    }

    /// Read-mostly: nine requests in ten only read, the tenth is a `/hit`.
    async fn mostly(session: Session) -> Result<String, Error> {
        if crate::mostly_writes() {
            hit(session).await
        } else {
            load(session).await
        }
    }

    pub(super) fn router() -> Router {
        Router::new()
            .route("/hit", get(hit))
            .route("/load", get(load))
            .route("/set", get(set))
            .route("/incr", get(incr))
            .route("/mostly", get(mostly))
    }
}
