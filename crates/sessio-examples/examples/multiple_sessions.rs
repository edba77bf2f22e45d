//! Two sessions per request (gorilla/sessions' "multiple sessions per request, even
//! using different backends"): a short-lived login session kept server-side, and a
//! long-lived preferences session kept client-side in a sealed cookie, each with its
//! own cookie and its own layer on one router.
//!
//! `Session` extracts the innermost layer's session; `SessionOf<N>` the session of the
//! manager whose cookie is named `N::COOKIE_NAME`.
//!
//! ```sh
//! cargo run -p sessio-examples --example multiple-sessions
//! # /set?user=kataras&theme=dark, /get, /logout (the theme survives), /get
//! ```

use std::time::Duration;

use axum::{extract::Query, routing::get, Router};
use serde::Deserialize;
use sessio::{
    secure::{Key, Keys},
    store::CookieStore,
    Session, SessionName, SessionOf, Sessions,
};
use sessio_axum::SessionsExt;

/// The preferences manager's cookie.
pub(crate) struct Prefs;

impl SessionName for Prefs {
    const COOKIE_NAME: &'static str = "prefs";
}

/// The two managers: `user` (cookie `user_session`, memory store, 30 minutes idle) and
/// `prefs` (cookie `prefs`, client-side, a year).
pub(crate) fn managers() -> Result<(Sessions, Sessions), sessio::Error> {
    let user = Sessions::builder()
        .cookie_name("user_session")
        .idle_timeout(Duration::from_secs(30 * 60))
        .build()?;
    // A real app loads its keys from a file or the environment (`Keys::from_file`), or
    // every restart logs everybody's preferences out.
    let prefs = Sessions::builder()
        .cookie_name(Prefs::COOKIE_NAME)
        .idle_timeout(Duration::from_secs(365 * 24 * 3600))
        .cookie_store(CookieStore::new(Keys::new(Key::generate())))
        .build()?;
    Ok((user, prefs))
}

pub(crate) fn app(user: &Sessions, prefs: &Sessions) -> Router {
    Router::new()
        .route("/set", get(set))
        .route("/get", get(show))
        .route("/logout", get(logout))
        .layer(user.layer())
        .layer(prefs.layer())
}

#[derive(Deserialize)]
struct SetQuery {
    user: String,
    theme: String,
}

async fn set(
    user: Session,
    prefs: SessionOf<Prefs>,
    Query(q): Query<SetQuery>,
) -> Result<&'static str, sessio::Error> {
    user.regenerate();
    user.set("name", &q.user)?;
    prefs.set("theme", &q.theme)?;
    Ok("saved")
}

async fn show(user: Session, prefs: SessionOf<Prefs>) -> Result<String, sessio::Error> {
    let name: Option<String> = user.get("name")?;
    let theme: Option<String> = prefs.get("theme")?;
    Ok(format!(
        "user: {}, theme: {}",
        name.as_deref().unwrap_or("-"),
        theme.as_deref().unwrap_or("-")
    ))
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
    axum::serve(listener, app(&user, &prefs)).await?;
    Ok(())
}
