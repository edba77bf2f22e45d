//! Iris's securecookie example on axum: the session cookie does not carry the bare id
//! but the id encrypted and authenticated (XChaCha20-Poly1305, the cookie name bound
//! in), so a client can neither read nor forge it. Use `signed_ids` instead of
//! `encrypted_ids` to only sign it (HMAC-SHA256).
//!
//! ```sh
//! SESSIO_KEYS=$(head -c 32 /dev/urandom | base64) cargo run -p sessio-examples --example securecookie
//! # in a browser: /set, /get, /delete, /clear, /destroy
//! ```

use axum::{routing::get, Router};
use sessio::{
    secure::{Key, Keys},
    Session, Sessions,
};
use sessio_axum::SessionsExt;

pub(crate) const COOKIE: &str = "mycustomsessionid";

/// Keys from `SESSIO_KEYS` (comma-separated base64, newest first: older keys still open
/// cookies and are rotated out), else a random key for this run.
pub(crate) fn keys() -> Result<Keys, Box<dyn std::error::Error>> {
    match std::env::var("SESSIO_KEYS") {
        Ok(list) if !list.trim().is_empty() => Ok(Keys::from_base64_list(&list)?),
        _ => Ok(Keys::new(Key::generate())),
    }
}

pub(crate) fn app(sessions: &Sessions) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async {
                "You should navigate to the /set, /get, /delete, /clear, /destroy instead"
            }),
        )
        .route("/set", get(set))
        .route("/get", get(get_name))
        .route("/delete", get(delete))
        .route("/clear", get(clear))
        .route("/destroy", get(destroy))
        .layer(sessions.layer())
}

async fn set(session: Session) -> Result<String, sessio::Error> {
    session.set("name", "iris")?;
    let name: Option<String> = session.get("name")?;
    Ok(format!(
        "All ok session set to: {}",
        name.unwrap_or_default()
    ))
}

async fn get_name(session: Session) -> Result<String, sessio::Error> {
    let name: Option<String> = session.get("name")?;
    Ok(format!(
        "The name on the /set was: {}",
        name.unwrap_or_default()
    ))
}

async fn delete(session: Session) -> Result<&'static str, sessio::Error> {
    session.delete("name")?;
    Ok("")
}

async fn clear(session: Session) -> &'static str {
    session.clear();
    ""
}

async fn destroy(session: Session) -> &'static str {
    session.destroy();
    ""
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sessions = Sessions::builder()
        .cookie_name(COOKIE)
        .encrypted_ids(keys()?)
        .build()?;
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(&sessions)).await?;
    Ok(())
}
