//! The actix-web variants: bare, actix-session 0.11 (cookie, Redis) and sessio-actix
//! (cookie, memory, Redis), all on actix-web 4 with the same routes. The session
//! middleware wraps a scope holding the session routes; `/healthz` stays outside it.

use std::sync::Arc;

use actix_web::{web, App, HttpServer};
use sessio::{
    secure::{Key, Keys},
    store::CookieStore,
    MemoryStore, Sessions,
};

use crate::{
    announce,
    axum_variants::{sessio_redis_store, sessio_sessions},
    bare_next, set_value, Opts,
};

/// Fixed key material so that runs do not depend on key generation (64 bytes, as
/// actix-session requires).
const KEY: [u8; 64] = [7; 64];

/// Serves `$app` (an `App` factory) on `$opts` until actix's signal handling stops it.
macro_rules! serve_app {
    ($opts:expr, $factory:expr) => {{
        let server = HttpServer::new($factory)
            .workers($opts.workers)
            .shutdown_timeout(0)
            .bind($opts.addr)
            .map_err(|e| format!("cannot listen on {}: {e}", $opts.addr))?;
        let local = server
            .addrs()
            .first()
            .copied()
            .ok_or_else(|| "bound to no address".to_owned())?;
        announce(&$opts, local);
        server.run().await.map_err(|e| e.to_string())
    }};
}

/// Builds the variant and serves it.
pub(crate) async fn serve(opts: Opts) -> Result<(), String> {
    match opts.variant.as_str() {
        "actix-bare" => serve_app!(opts, || App::new()
            .route("/healthz", web::get().to(healthz))
            .service(bare::routes(web::scope("")))),
        "actix-session-cookie" => {
            let key = actix_web::cookie::Key::from(&KEY);
            serve_app!(opts, move || App::new()
                .route("/healthz", web::get().to(healthz))
                .service(
                    actix_session_routes::routes(web::scope("")).wrap(
                        actix_session::SessionMiddleware::builder(
                            actix_session::storage::CookieSessionStore::default(),
                            key.clone(),
                        )
                        .cookie_secure(false)
                        .build(),
                    )
                ))
        }
        "actix-session-redis" => {
            let key = actix_web::cookie::Key::from(&KEY);
            // One ConnectionManager (a multiplexed connection) shared by all workers.
            let store = actix_session::storage::RedisSessionStore::new(opts.redis.clone())
                .await
                .map_err(|e| format!("actix-session: cannot connect to {}: {e}", opts.redis))?;
            serve_app!(opts, move || App::new()
                .route("/healthz", web::get().to(healthz))
                .service(
                    actix_session_routes::routes(web::scope("")).wrap(
                        actix_session::SessionMiddleware::builder(store.clone(), key.clone())
                            .cookie_secure(false)
                            .build(),
                    )
                ))
        }
        "sessio-actix-cookie" => {
            let key = Key::from_bytes(&KEY).map_err(|e| e.to_string())?;
            let sessions = Sessions::builder()
                .cookie_store(CookieStore::new(Keys::new(key)))
                .build()
                .map_err(|e| e.to_string())?;
            serve_sessio(opts, sessions).await
        }
        "sessio-actix-memory" => {
            let sessions = sessio_sessions(Arc::new(MemoryStore::new()))?;
            serve_sessio(opts, sessions).await
        }
        "sessio-actix-redis" => {
            let sessions = sessio_sessions(sessio_redis_store(&opts.redis).await?)?;
            serve_sessio(opts, sessions).await
        }
        other => Err(format!("{other} is not an actix variant")),
    }
}

async fn serve_sessio(opts: Opts, sessions: Sessions) -> Result<(), String> {
    serve_app!(opts, move || App::new()
        .route("/healthz", web::get().to(healthz))
        .service(
            with_sessio::routes(web::scope(""))
                .wrap(sessio_actix::SessionMiddleware::new(sessions.clone()))
        ))
}

async fn healthz() -> &'static str {
    "ok"
}

/// No sessions: the ceiling.
mod bare {
    use super::*;

    async fn count() -> String {
        bare_next().to_string()
    }

    pub(super) fn routes(scope: actix_web::Scope) -> actix_web::Scope {
        scope
            .route("/hit", web::get().to(count))
            .route("/load", web::get().to(count))
            .route("/set", web::get().to(count))
            .route("/incr", web::get().to(count))
    }
}

/// actix-session 0.11 handlers.
mod actix_session_routes {
    use super::*;
    use actix_session::Session;

    async fn hit(session: Session) -> actix_web::Result<String> {
        let n = session.get::<u64>("counter")?.unwrap_or(0) + 1;
        session.insert("counter", n)?;
        Ok(n.to_string())
    }

    async fn load(session: Session) -> actix_web::Result<String> {
        Ok(session.get::<u64>("counter")?.unwrap_or(0).to_string())
    }

    async fn set(session: Session) -> actix_web::Result<String> {
        let v = set_value();
        session.insert("last", v)?;
        Ok(v.to_string())
    }

    pub(super) fn routes(scope: actix_web::Scope) -> actix_web::Scope {
        scope
            .route("/hit", web::get().to(hit))
            .route("/load", web::get().to(load))
            .route("/set", web::get().to(set))
            // No increment in actix-session: get + insert, the same as /hit.
            .route("/incr", web::get().to(hit))
    }
}

/// sessio-actix handlers.
mod with_sessio {
    use super::*;
    use sessio_actix::{Error, Session};

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

    pub(super) fn routes(scope: actix_web::Scope) -> actix_web::Scope {
        scope
            .route("/hit", web::get().to(hit))
            .route("/load", web::get().to(load))
            .route("/set", web::get().to(set))
            .route("/incr", web::get().to(incr))
    }
}
