//! The demo's routes on plain hyper 1.x (`--framework hyper`), with no framework and no
//! session adapter: go-sessions' `Start(w, r)`. Each session route starts the session
//! from the request headers (`Sessions::start`), runs, then commits it
//! (`Session::finish`) and puts the `Set-Cookie` values on the response itself. Routes,
//! status codes, content types and bodies are those of the axum app in `app.rs`, checked
//! by the one HTTP suite that `tests/http.rs` runs against every framework.

use std::{collections::BTreeMap, convert::Infallible, time::Duration};

use http::{
    header::{ALLOW, CONTENT_TYPE, SET_COOKIE},
    HeaderValue, Method, Request, Response, StatusCode, Uri,
};
use http_body_util::Full;
use hyper::{
    body::{Bytes, Incoming},
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use sessio::{Session, Sessions};
use tokio::net::TcpListener;

use crate::{
    app::{home_page, plain, Expire, Incr, Key, KeyValue, Login},
    error::AppError,
};

type Body = Full<Bytes>;

/// A finished answer that ends a handler early (`?` on a session error or a bad query).
struct Reject(Box<Response<Body>>);

impl From<sessio::Error> for Reject {
    fn from(e: sessio::Error) -> Self {
        Reject(Box::new(app_error(AppError(e))))
    }
}

type Result<T> = std::result::Result<T, Reject>;

/// Every path the demo serves; anything else is a `404` with an empty body (as axum's).
const PATHS: [&str; 18] = [
    "/",
    "/login",
    "/secret",
    "/logout",
    "/set",
    "/get",
    "/delete",
    "/clear",
    "/all",
    "/incr",
    "/flash",
    "/flash/get",
    "/flash/peek",
    "/destroy",
    "/expire",
    "/hit",
    "/healthz",
    "/admin/count",
];

/// Serves HTTP/1.1 on `listener`, one task per connection, until the future is dropped.
pub(crate) async fn serve(
    listener: TcpListener,
    sessions: Sessions,
) -> std::result::Result<(), String> {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors under load, a reset before accept: keep serving.
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let sessions = sessions.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let sessions = sessions.clone();
                async move { Ok::<_, Infallible>(handle(&sessions, &req).await) }
            });
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
}

/// One request: routing, then the session around the session routes only (`/healthz`
/// and `/admin/count` never touch it).
async fn handle(sessions: &Sessions, req: &Request<Incoming>) -> Response<Body> {
    let path = req.uri().path();
    if !PATHS.contains(&path) {
        return empty(StatusCode::NOT_FOUND);
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut res = empty(StatusCode::METHOD_NOT_ALLOWED);
        res.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET,HEAD"));
        return res;
    }
    match path {
        "/healthz" => text(StatusCode::OK, "ok"),
        // How many live sessions the store holds (admin; no session of its own).
        "/admin/count" => match sessions.count().await {
            Ok(n) => text(StatusCode::OK, n.to_string()),
            Err(e) => app_error(AppError(e)),
        },
        _ => with_session(sessions, req).await,
    }
}

/// `Start(w, r)`, the route, then the commit: what the axum and actix adapters do
/// around a handler, written out by hand.
async fn with_session(sessions: &Sessions, req: &Request<Incoming>) -> Response<Body> {
    let session = match sessions.start(req.headers()).await {
        Ok(session) => session,
        Err(e) => return core_error(&e),
    };
    let mut response = route(&session, req.uri())
        .await
        .unwrap_or_else(|Reject(res)| *res);
    match session.finish().await {
        Ok(cookies) => {
            for cookie in cookies {
                response.headers_mut().append(SET_COOKIE, cookie);
            }
            response
        }
        // The handler's answer is dropped: the client must not believe a write
        // succeeded that was not stored (as `sessio_axum::SessionLayer` answers).
        Err(error) => {
            let status = error.status();
            tracing::error!(%error, "committing the session failed; answering {status}");
            let mut res = Response::new(Full::new(Bytes::from_static(if error.is_unavailable() {
                b"the session store is unavailable, please retry"
            } else {
                b"the session could not be saved"
            })));
            *res.status_mut() = status;
            res
        }
    }
}

/// The session routes; each arm is the handler of the same name in `app.rs`.
async fn route(session: &Session, uri: &Uri) -> Result<Response<Body>> {
    Ok(match uri.path() {
        "/" => {
            let mut res = text(StatusCode::OK, home_page(session)?);
            res.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            res
        }
        // Logs in and regenerates the id (session fixation).
        "/login" => {
            let q: Login = query(uri)?;
            session.set("authenticated", &true)?;
            session.set("user", &q.user)?;
            session.regenerate();
            text(StatusCode::OK, "logged in\n")
        }
        "/secret" => {
            if session.get_or("authenticated", false)? {
                text(StatusCode::OK, "The cake is a lie!")
            } else {
                text(StatusCode::FORBIDDEN, "Forbidden\n")
            }
        }
        "/logout" => {
            session.set("authenticated", &false)?;
            text(StatusCode::OK, "logged out\n")
        }
        "/set" => {
            let q: KeyValue = query(uri)?;
            session.set(&q.key, &q.value)?;
            text(StatusCode::OK, "ok\n")
        }
        "/get" => {
            let q: Key = query(uri)?;
            found_or_404(session.get(&q.key)?)
        }
        "/delete" => {
            let q: Key = query(uri)?;
            text(StatusCode::OK, session.delete(&q.key)?.to_string())
        }
        "/clear" => {
            session.clear();
            text(StatusCode::OK, "ok\n")
        }
        "/all" => {
            let all: BTreeMap<String, serde_json::Value> = session.get_all()?;
            let mut res = text(
                StatusCode::OK,
                serde_json::to_vec(&all).map_err(|e| Reject(Box::new(internal(&e))))?,
            );
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            res
        }
        "/incr" => {
            let q: Incr = query(uri)?;
            let n = session.increment(&q.key, q.by).await?;
            text(StatusCode::OK, n.to_string())
        }
        "/flash" => {
            let q: KeyValue = query(uri)?;
            session.set_flash(&q.key, &q.value)?;
            text(StatusCode::OK, "ok\n")
        }
        "/flash/get" => {
            let q: Key = query(uri)?;
            found_or_404(session.get_flash(&q.key)?)
        }
        "/flash/peek" => {
            let q: Key = query(uri)?;
            found_or_404(session.peek_flash(&q.key)?)
        }
        "/destroy" => {
            session.destroy();
            text(StatusCode::OK, "destroyed\n")
        }
        "/expire" => {
            let q: Expire = query(uri)?;
            if q.secs == 0 {
                return Ok(text(StatusCode::BAD_REQUEST, "secs must be at least 1\n"));
            }
            session.update_expiration(Duration::from_secs(q.secs));
            text(StatusCode::OK, "ok\n")
        }
        // The benchmark route shared with the peers harness: read `counter`, write
        // counter+1.
        "/hit" => {
            let n: u64 = session.get_or("counter", 0)? + 1;
            session.set("counter", &n)?;
            text(StatusCode::OK, n.to_string())
        }
        _ => empty(StatusCode::NOT_FOUND),
    })
}

/// The query string, parsed exactly as axum's `Query` does (same deserializer, same
/// rejection status and body), so that every app answers a bad query alike.
fn query<T: DeserializeOwned>(uri: &Uri) -> Result<T> {
    axum::extract::Query::<T>::try_from_uri(uri)
        .map(|axum::extract::Query(value)| value)
        .map_err(|rejection| Reject(Box::new(text(rejection.status(), rejection.body_text()))))
}

fn found_or_404(value: Option<serde_json::Value>) -> Response<Body> {
    match value {
        Some(v) => text(StatusCode::OK, plain(&v)),
        None => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// A `text/plain` answer (axum's content type for `&str` and `String`).
fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut res = Response::new(Full::new(body.into()));
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut res = Response::new(Full::default());
    *res.status_mut() = status;
    res
}

/// A handler error: the demo's own status and message, else the core mapping.
fn app_error(e: AppError) -> Response<Body> {
    match e.demo_status() {
        Some(status) => text(status, format!("{}\n", e.0)),
        None => core_error(&e.0),
    }
}

/// `503` for a store that is down, `500` otherwise; the body says only that much and the
/// details go to the log (as `sessio::Error`'s axum response).
fn core_error(error: &sessio::Error) -> Response<Body> {
    let status = error.status();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        tracing::warn!(%error, "session store unavailable");
    } else {
        tracing::error!(%error, "session error");
    }
    text(status, status.canonical_reason().unwrap_or("session error"))
}

fn internal(error: &dyn std::fmt::Display) -> Response<Body> {
    tracing::error!(%error, "cannot encode the answer");
    text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
}
