//! Iris's Redis database example: sessions in Redis, shared by every instance of the
//! app, with atomic increments done by Redis itself.
//!
//! ```sh
//! REDIS_URL=redis://127.0.0.1:6379 cargo run -p sessio-examples --example database-redis
//! # /set?key=name&value=iris, /get?key=name, /incr, /destroy
//! ```

use axum::{extract::Query, http::StatusCode, response::IntoResponse, routing::get, Router};
use serde::Deserialize;
use sessio::{Session, Sessions};
use sessio_axum::SessionsExt;

/// Connects to Redis; every key this app writes starts with `prefix`.
pub(crate) async fn open(
    url: &str,
    prefix: &str,
) -> Result<sessio_redis::RedisStore, sessio_redis::Error> {
    sessio_redis::RedisStore::builder(url)?
        .key_prefix(prefix)
        .connect()
        .await
}

pub(crate) fn app(sessions: &Sessions) -> Router {
    Router::new()
        .route("/set", get(set))
        .route("/get", get(get_value))
        .route("/incr", get(incr))
        .route("/destroy", get(destroy))
        .layer(sessions.layer())
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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let store = open(&url, "sessio-example:").await?;
    let sessions = Sessions::builder().store(store).build()?;
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(&sessions)).await?;
    Ok(())
}
