//! Iris's flash-messages example on axum: a flash value lives until a request reads it.
//!
//! ```sh
//! cargo run -p sessio-examples --example flash-messages
//! # in a browser: /set, then /get (Hello iris), then /get again (Empty name!!)
//! ```

use axum::{routing::get, Router};
use sessio::{Session, Sessions};
use sessio_axum::SessionsExt;

pub(crate) fn app(sessions: &Sessions) -> Router {
    Router::new()
        .route("/set", get(set))
        .route("/get", get(get_flash))
        .route("/peek", get(peek))
        .route("/test", get(test))
        .layer(sessions.layer())
}

async fn set(session: Session) -> Result<&'static str, sessio::Error> {
    session.set_flash("name", "iris")?;
    Ok("Message set, is available for the next request")
}

/// Reads the flash and consumes it: the next request no longer sees it.
async fn get_flash(session: Session) -> Result<String, sessio::Error> {
    Ok(match session.get_flash::<String>("name")? {
        Some(name) => format!("Hello {name}"),
        None => "Empty name!!".into(),
    })
}

/// Reads the flash without consuming it.
async fn peek(session: Session) -> Result<String, sessio::Error> {
    Ok(match session.peek_flash::<String>("name")? {
        Some(name) => format!("Hello {name}"),
        None => "Empty name!!".into(),
    })
}

/// Within one request a consumed flash can be read again: it is removed when the
/// request ends.
async fn test(session: Session) -> Result<String, sessio::Error> {
    let Some(name) = session.get_flash::<String>("name")? else {
        return Ok("Empty name!!".into());
    };
    let again: Option<String> = session.get_flash("name")?;
    Ok(format!(
        "Ok you are coming from /set, the value of the name is {name}, and again from the same request: {}",
        again.unwrap_or_default()
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sessions = Sessions::builder().build()?;
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(&sessions)).await?;
    Ok(())
}
