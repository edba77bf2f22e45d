//! Two sessions per request (gorilla/sessions' "multiple sessions per request, even
//! using different backends"): a short-lived login session, managed by the axum layer,
//! and a long-lived preferences session with its own cookie and its own store, started
//! by hand in the handlers that need it.
//!
//! Why by hand: the session layer keeps one session per request (the extractor finds it
//! by type), so two `SessionLayer`s on one router would shadow each other. A second
//! manager is used through the framework-neutral API instead: `start(&headers)` and,
//! after the handler, `finish()` for its `Set-Cookie` headers.
//!
//! ```sh
//! cargo run -p sessio-examples --example multiple-sessions
//! # /set?user=kataras&theme=dark, /get, /logout (the theme survives), /get
//! ```

use std::time::Duration;

use axum::{
    extract::{Query, State},
    http::{header::SET_COOKIE, HeaderMap},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use serde::Deserialize;
use sessio::{MemoryStore, Session, Sessions};
use sessio_axum::SessionsExt;

/// The two managers: `user` (cookie `user_session`, 30 minutes idle) and `prefs`
/// (cookie `prefs`, a year, another store).
pub(crate) fn managers() -> Result<(Sessions, Sessions), sessio::Error> {
    let user = Sessions::builder()
        .cookie_name("user_session")
        .idle_timeout(Duration::from_secs(30 * 60))
        .build()?;
    let prefs = Sessions::builder()
        .cookie_name("prefs")
        .idle_timeout(Duration::from_secs(365 * 24 * 3600))
        .store(MemoryStore::new())
        .build()?;
    Ok((user, prefs))
}

pub(crate) fn app(user: &Sessions, prefs: Sessions) -> Router {
    Router::new()
        .route("/set", get(set))
        .route("/get", get(show))
        .route("/logout", get(logout))
        .layer(user.layer())
        .with_state(prefs)
}

#[derive(Deserialize)]
struct SetQuery {
    user: String,
    theme: String,
}

/// Commits the hand-started session and adds its cookie to the response.
async fn with_cookies(
    session: &Session,
    response: impl IntoResponse,
) -> Result<Response, sessio::Error> {
    let cookies = session.finish().await?;
    let mut response = response.into_response();
    for cookie in cookies {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    Ok(response)
}

async fn set(
    user: Session,
    State(prefs): State<Sessions>,
    headers: HeaderMap,
    Query(q): Query<SetQuery>,
) -> Result<Response, sessio::Error> {
    let prefs = prefs.start(&headers).await?;
    user.regenerate();
    user.set("name", &q.user)?;
    prefs.set("theme", &q.theme)?;
    with_cookies(&prefs, "saved").await
}

async fn show(
    user: Session,
    State(prefs): State<Sessions>,
    headers: HeaderMap,
) -> Result<Response, sessio::Error> {
    let prefs = prefs.start(&headers).await?;
    let name: Option<String> = user.get("name")?;
    let theme: Option<String> = prefs.get("theme")?;
    let body = format!(
        "user: {}, theme: {}",
        name.as_deref().unwrap_or("-"),
        theme.as_deref().unwrap_or("-")
    );
    with_cookies(&prefs, body).await
}

async fn logout(user: Session) -> &'static str {
    user.destroy();
    "logged out"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (user, prefs) = managers()?;
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(&user, prefs)).await?;
    Ok(())
}
