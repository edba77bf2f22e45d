//! go-sessions' `Start(w, r)` on plain hyper 1.x, with no framework adapter: the
//! handler starts the session from the request headers and, when it is done, commits
//! it and puts the `Set-Cookie` headers on the response itself.
//!
//! ```sh
//! cargo run -p sessio-examples --example standalone
//! # in a browser: /set, /get, /clear, /destroy
//! ```

use std::convert::Infallible;

use http::{header::SET_COOKIE, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::{
    body::{Bytes, Incoming},
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::TokioIo;
use sessio::Sessions;
use tokio::net::TcpListener;

type Body = Full<Bytes>;

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut res = Response::new(Full::new(body.into()));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// A store that is down is a `503`; anything else a `500`. Details stay in the log.
fn failure(error: &sessio::Error) -> Response<Body> {
    eprintln!("session error: {error}");
    if error.is_unavailable() {
        text(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
    } else {
        text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
    }
}

/// One request. Paths that need no session never start one (no store access).
pub(crate) async fn handle(sessions: Sessions, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path();
    if !matches!(path, "/set" | "/get" | "/clear" | "/destroy") {
        return text(
            StatusCode::OK,
            "Please navigate to /set or /get or /clear or /destroy",
        );
    }
    // `sessions.Start(w, r)`. (Behind TLS, use `sessions.lazy(req.headers(), true).load()`
    // so that `Secure::AutoTlsOnly` marks the cookie `Secure`.)
    let session = match sessions.start(req.headers()).await {
        Ok(session) => session,
        Err(e) => return failure(&e),
    };
    let body = match path {
        "/set" => {
            // Fill the session: set each key-value pair.
            for (key, value) in [
                ("Name", "go-sessions"),
                ("Days", "1"),
                ("Secret", "dsads£2132215£%%Ssdsa"),
            ] {
                if let Err(e) = session.set(key, value) {
                    return failure(&e);
                }
            }
            "Session saved, go to /get to view the results".to_owned()
        }
        "/get" => match session.get_all() {
            Ok(values) => format!("{values:?}"),
            Err(e) => return failure(&e),
        },
        "/clear" => {
            session.clear();
            String::new()
        }
        // Removes the server-side entry and expires the cookie.
        _ => {
            session.destroy();
            String::new()
        }
    };
    // After the handler: commit (one store round trip, none if nothing changed) and
    // send the cookie.
    match session.finish().await {
        Ok(cookies) => {
            let mut res = text(StatusCode::OK, body);
            for cookie in cookies {
                res.headers_mut().append(SET_COOKIE, cookie);
            }
            res
        }
        Err(e) => failure(&e),
    }
}

/// Serves HTTP/1.1 on `listener`, one task per connection.
pub(crate) async fn serve(listener: TcpListener, sessions: Sessions) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let sessions = sessions.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let sessions = sessions.clone();
                async move { Ok::<_, Infallible>(handle(sessions, req).await) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("connection error: {e}");
            }
        });
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sessions = Sessions::builder().build()?;
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    println!(
        "Open a browser tab and navigate to http://{}/set",
        listener.local_addr()?
    );
    serve(listener, sessions).await?;
    Ok(())
}
