//! Iris's database examples (BoltDB, Badger) with redb: sessions in one file on local
//! disk, no server to run; they survive a restart.
//!
//! ```sh
//! DB_PATH=/tmp/sessions.redb cargo run -p sessio-examples --example database-redb
//! # /set?key=name&value=iris, /get?key=name, /incr, /destroy; restart, /get?key=name
//! ```

use axum::{extract::Query, http::StatusCode, response::IntoResponse, routing::get, Router};
use serde::Deserialize;
use sessio::{Session, Sessions};
use sessio_axum::SessionsExt;

/// Opens (or creates) the database file.
pub(crate) async fn open(path: &str) -> Result<sessio_redb::RedbStore, sessio::StoreError> {
    sessio_redb::RedbStore::open(path).await
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
    let path = std::env::var("DB_PATH").unwrap_or_else(|_| "sessions.redb".into());
    let store = open(&path).await?;
    let sessions = Sessions::builder().store(store).build()?;
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(&sessions)).await?;
    Ok(())
}
