//! The demo's routes. All are `GET` so that curl and a browser can drive them.

use std::collections::BTreeMap;

use axum::{
    extract::Query,
    response::{Html, IntoResponse, Response},
    routing::get,
    Extension, Json, Router,
};
use http::StatusCode;
use serde::Deserialize;
use sessio::{Session, Sessions};
use sessio_axum::SessionLayer;

use crate::error::AppError;

type Result<T> = std::result::Result<T, AppError>;

/// Every route, wrapped in the session layer (except `/healthz`, which never touches it).
pub(crate) fn router(sessions: Sessions) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/login", get(login))
        .route("/secret", get(secret))
        .route("/logout", get(logout))
        .route("/set", get(set))
        .route("/get", get(get_value))
        .route("/delete", get(delete))
        .route("/clear", get(clear))
        .route("/all", get(all))
        .route("/incr", get(incr))
        .route("/flash", get(flash))
        .route("/flash/get", get(flash_get))
        .route("/flash/peek", get(flash_peek))
        .route("/destroy", get(destroy))
        .route("/expire", get(expire))
        .route("/hit", get(hit))
        .layer(SessionLayer::new(sessions.clone()))
        .route("/healthz", get(|| async { "ok" }))
        .route("/admin/count", get(count))
        .route("/metrics", get(metrics))
        .layer(Extension(sessions))
}

#[derive(Deserialize)]
pub(crate) struct Login {
    pub(crate) user: String,
}

#[derive(Deserialize)]
pub(crate) struct Key {
    pub(crate) key: String,
}

#[derive(Deserialize)]
pub(crate) struct KeyValue {
    pub(crate) key: String,
    pub(crate) value: String,
}

#[derive(Deserialize)]
pub(crate) struct Incr {
    pub(crate) key: String,
    #[serde(default = "one")]
    pub(crate) by: i64,
}

fn one() -> i64 {
    1
}

#[derive(Deserialize)]
pub(crate) struct Expire {
    pub(crate) secs: u64,
}

/// The home page: who is logged in, pending flash messages (shown once), links.
async fn index(session: Session) -> Result<Html<String>> {
    Ok(Html(home_page(&session)?))
}

/// The home page's HTML (shared with the actix app).
pub(crate) fn home_page(session: &Session) -> std::result::Result<String, sessio::Error> {
    let user: Option<String> = session.get("user")?;
    let authenticated = session.get_or("authenticated", false)?;
    let flashes = session.get_flashes()?;
    let mut page = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>sessio demo</title></head><body>\n<h1>sessio demo</h1>\n",
    );
    for (key, value) in &flashes {
        let text = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned);
        page += &format!(
            "<p class=\"flash\" data-key=\"{}\">{}</p>\n",
            escape(key),
            escape(&text)
        );
    }
    match (authenticated, user) {
        (true, Some(user)) => {
            page += &format!(
                "<p id=\"status\">Logged in as <b>{}</b>. <a href=\"/secret\">Secret</a> · <a href=\"/logout\">Log out</a></p>\n",
                escape(&user)
            );
        }
        _ => {
            page += "<p id=\"status\">Not logged in.</p>\n<form id=\"login\" action=\"/login\" method=\"get\"><input name=\"user\" placeholder=\"name\" required> <button type=\"submit\">Log in</button></form>\n";
        }
    }
    page += "<ul>\n";
    for (href, what) in [
        ("/secret", "the secret (needs a login)"),
        ("/all", "all session values as JSON"),
        ("/set?key=color&value=blue", "set a value"),
        ("/get?key=color", "read it back"),
        ("/incr?key=visits", "increment a counter atomically"),
        (
            "/flash?key=notice&value=hello",
            "set a flash message (shown here once)",
        ),
        ("/flash/peek?key=notice", "peek at it without consuming"),
        ("/expire?secs=604800", "remember me for a week"),
        ("/clear", "clear all values"),
        ("/destroy", "destroy the session"),
        ("/healthz", "health check (no session)"),
    ] {
        page += &format!("<li><a href=\"{href}\">{href}</a>: {what}</li>\n");
    }
    page += "</ul>\n</body></html>\n";
    Ok(page)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Logs in and regenerates the id (session fixation).
async fn login(session: Session, Query(q): Query<Login>) -> Result<&'static str> {
    session.set("authenticated", &true)?;
    session.set("user", &q.user)?;
    session.regenerate();
    Ok("logged in\n")
}

async fn secret(session: Session) -> Result<Response> {
    Ok(if session.get_or("authenticated", false)? {
        "The cake is a lie!".into_response()
    } else {
        (StatusCode::FORBIDDEN, "Forbidden\n").into_response()
    })
}

async fn logout(session: Session) -> Result<&'static str> {
    session.set("authenticated", &false)?;
    Ok("logged out\n")
}

async fn set(session: Session, Query(q): Query<KeyValue>) -> Result<&'static str> {
    session.set(&q.key, &q.value)?;
    Ok("ok\n")
}

/// Strings as they are; anything else (numbers from `/incr`, booleans) as JSON.
pub(crate) fn plain(value: &serde_json::Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

async fn get_value(session: Session, Query(q): Query<Key>) -> Result<Response> {
    Ok(match session.get::<serde_json::Value>(&q.key)? {
        Some(v) => plain(&v).into_response(),
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    })
}

async fn delete(session: Session, Query(q): Query<Key>) -> Result<String> {
    Ok(session.delete(&q.key)?.to_string())
}

async fn clear(session: Session) -> &'static str {
    session.clear();
    "ok\n"
}

async fn all(session: Session) -> Result<Json<BTreeMap<String, serde_json::Value>>> {
    Ok(Json(session.get_all()?))
}

async fn incr(session: Session, Query(q): Query<Incr>) -> Result<String> {
    Ok(session.increment(&q.key, q.by).await?.to_string())
}

async fn flash(session: Session, Query(q): Query<KeyValue>) -> Result<&'static str> {
    session.set_flash(&q.key, &q.value)?;
    Ok("ok\n")
}

async fn flash_get(session: Session, Query(q): Query<Key>) -> Result<Response> {
    Ok(match session.get_flash::<serde_json::Value>(&q.key)? {
        Some(v) => plain(&v).into_response(),
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    })
}

async fn flash_peek(session: Session, Query(q): Query<Key>) -> Result<Response> {
    Ok(match session.peek_flash::<serde_json::Value>(&q.key)? {
        Some(v) => plain(&v).into_response(),
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    })
}

async fn destroy(session: Session) -> &'static str {
    session.destroy();
    "destroyed\n"
}

async fn expire(session: Session, Query(q): Query<Expire>) -> Response {
    if q.secs == 0 {
        return (StatusCode::BAD_REQUEST, "secs must be at least 1\n").into_response();
    }
    session.update_expiration(std::time::Duration::from_secs(q.secs));
    "ok\n".into_response()
}

/// How many live sessions the store holds (admin; no session of its own).
async fn count(Extension(sessions): Extension<Sessions>) -> Result<String> {
    Ok(sessions.count().await?.to_string())
}

/// sessio's metrics, Prometheus text format (no session of its own).
async fn metrics(Extension(sessions): Extension<Sessions>) -> impl IntoResponse {
    (
        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(&sessions).await,
    )
}

/// The benchmark route shared with the peers harness: read `counter`, write counter+1.
async fn hit(session: Session) -> Result<String> {
    let n: u64 = session.get_or("counter", 0)? + 1;
    session.set("counter", &n)?;
    Ok(n.to_string())
}
