//! Runnable examples for sessio, one per example of Iris sessions and go-sessions
//! (`cargo run -p sessio-examples --example NAME`); each listens on `$ADDR` (default
//! `127.0.0.1:8080`) and prints `listening on http://ADDR`.
//!
//! | example | mirrors | shows |
//! | --- | --- | --- |
//! | `overview` | Iris `sessions/overview` | login / secret / logout on axum |
//! | `actix-overview` | the same | the same on actix-web |
//! | `standalone` | go-sessions `Start(w, r)` | plain hyper 1.x, no adapter |
//! | `securecookie` | Iris `sessions/securecookie` | an encrypted, authenticated id cookie |
//! | `database-redb` | Iris `sessions/database` (BoltDB, Badger) | sessions in a local file, no server |
//! | `database-redis` | Iris `sessions/database/redis` | sessions in Redis |
//! | `database-sql` | gorilla's SQL stores | sessions in SQLite, PostgreSQL or MySQL/MariaDB |
//! | `flash-messages` | Iris `sessions/flash-messages` | values that live until read once |
//! | `multiple-sessions` | gorilla `sessions` | two managers (server- and client-side), two layers, one request |
//!
//! `database-redis` and its test need Redis on `127.0.0.1:6379`
//! (`scripts/services/redis.sh`); `database-sql`'s test also uses the local PostgreSQL.
//!
//! The library holds what the database examples share: they differ only in the store.

use axum::{extract::Query, http::StatusCode, response::IntoResponse, routing::get, Router};
use serde::Deserialize;
use sessio::{Session, Sessions};
use sessio_axum::SessionsExt;

/// The app of every database example: `/set?key=K&value=V`, `/get?key=K`, `/incr`
/// (atomic in the store), `/destroy`. Only the store behind `sessions` differs.
pub fn database_app(sessions: &Sessions) -> Router {
    Router::new()
        .route("/set", get(set))
        .route("/get", get(get_value))
        .route("/incr", get(incr))
        .route("/destroy", get(destroy))
        .layer(sessions.layer())
}

/// Serves `app` on `$ADDR` (default `127.0.0.1:8080`) and prints the start-up line.
pub async fn serve(app: Router) -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

#[derive(Deserialize)]
struct KeyValue {
    key: String,
    value: Option<String>,
}

async fn set(session: Session, Query(q): Query<KeyValue>) -> Result<String, sessio::Error> {
    let value = q.value.unwrap_or_default();
    session.set(&q.key, &value)?;
    Ok(format!("{} = {value}", q.key))
}

async fn get_value(
    session: Session,
    Query(q): Query<KeyValue>,
) -> Result<impl IntoResponse, sessio::Error> {
    Ok(match session.get::<String>(&q.key)? {
        Some(value) => (StatusCode::OK, value),
        None => (StatusCode::NOT_FOUND, "not found".to_owned()),
    })
}

/// Atomic in the store: concurrent requests never lose a count.
async fn incr(session: Session) -> Result<String, sessio::Error> {
    Ok(session.increment("visits", 1).await?.to_string())
}

async fn destroy(session: Session) -> &'static str {
    session.destroy();
    "destroyed"
}
