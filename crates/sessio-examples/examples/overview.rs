//! Iris's sessions overview on axum: only a logged-in visitor may read `/secret`;
//! `/login` logs in, `/logout` logs out.
//!
//! ```sh
//! cargo run -p sessio-examples --example overview
//! curl -s http://127.0.0.1:8080/secret                        # Forbidden
//! curl -s -I http://127.0.0.1:8080/login                      # Set-Cookie: mycookiesessionnameid=...
//! curl -s --cookie "mycookiesessionnameid=..." http://127.0.0.1:8080/secret   # The cake is a lie!
//! ```

use axum::{http::StatusCode, response::IntoResponse, routing::get, Router};
use sessio::{Session, Sessions};
use sessio_axum::SessionsExt;

pub(crate) const COOKIE: &str = "mycookiesessionnameid";

/// The app. Every `Session` extraction in one request is the same session (Iris's
/// `AllowReclaim`), whichever handler or extractor reaches it.
pub(crate) fn app(sessions: &Sessions) -> Router {
    Router::new()
        .route("/secret", get(secret))
        .route("/login", get(login))
        .route("/logout", get(logout))
        .layer(sessions.layer())
}

async fn secret(session: Session) -> Result<impl IntoResponse, sessio::Error> {
    // Check if the user is authenticated.
    if !session.get_or("authenticated", false)? {
        return Ok((StatusCode::FORBIDDEN, "Forbidden"));
    }
    // Print the secret message.
    Ok((StatusCode::OK, "The cake is a lie!"))
}

async fn login(session: Session) -> Result<&'static str, sessio::Error> {
    // Authentication goes here.
    // ...
    // A new id on every change of privilege (session fixation).
    session.regenerate();
    // Set the user as authenticated.
    session.set("authenticated", &true)?;
    Ok("")
}

async fn logout(session: Session) -> Result<&'static str, sessio::Error> {
    // Revoke the user's authentication.
    session.set("authenticated", &false)?;
    Ok("")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sessions = Sessions::builder().cookie_name(COOKIE).build()?;
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(&sessions)).await?;
    Ok(())
}
