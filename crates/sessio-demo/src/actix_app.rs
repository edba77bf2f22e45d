//! The demo's routes on actix-web (`--framework actix`): the same routes, status codes
//! and bodies as the axum app in `app.rs`, checked by the one HTTP suite that
//! `tests/http.rs` runs against both.

use std::{
    collections::BTreeMap,
    future::{ready, Ready},
    time::Duration,
};

use actix_web::{
    dev::Payload,
    http::{header::ContentType, StatusCode},
    web::{self, Data},
    App, FromRequest, HttpRequest, HttpResponse, HttpServer, ResponseError,
};
use serde::de::DeserializeOwned;
use sessio::{Error, Sessions, StoreErrorKind};
use sessio_actix::{Session, SessionMiddleware};

use crate::app::{home_page, plain, Expire, Incr, Key, KeyValue, Login};

type Result<T> = std::result::Result<T, AppError>;

/// Serves the demo on `listener` until the future is dropped.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    sessions: Sessions,
    workers: Option<usize>,
) -> std::result::Result<(), String> {
    let listener = listener.into_std().map_err(|e| e.to_string())?;
    let mut server = HttpServer::new(move || App::new().configure(|cfg| routes(cfg, &sessions)))
        .disable_signals()
        .shutdown_timeout(0);
    if let Some(n) = workers {
        server = server.workers(n.max(1));
    }
    server
        .listen(listener)
        .map_err(|e| e.to_string())?
        .run()
        .await
        .map_err(|e| e.to_string())
}

/// Every route, the session ones in a scope with the session middleware (`/healthz` and
/// `/admin/count` never touch it), as in [`crate::app::router`].
pub(crate) fn routes(cfg: &mut web::ServiceConfig, sessions: &Sessions) {
    cfg.app_data(Data::new(sessions.clone()))
        .service(web::resource("/healthz").route(web::get().to(|| async { "ok" })))
        .service(web::resource("/admin/count").route(web::get().to(count)))
        .service(web::resource("/metrics").route(web::get().to(metrics)))
        .service(
            web::scope("")
                .wrap(SessionMiddleware::new(sessions.clone()))
                .service(web::resource("/").route(web::get().to(index)))
                .service(web::resource("/login").route(web::get().to(login)))
                .service(web::resource("/secret").route(web::get().to(secret)))
                .service(web::resource("/logout").route(web::get().to(logout)))
                .service(web::resource("/set").route(web::get().to(set)))
                .service(web::resource("/get").route(web::get().to(get_value)))
                .service(web::resource("/delete").route(web::get().to(delete)))
                .service(web::resource("/clear").route(web::get().to(clear)))
                .service(web::resource("/all").route(web::get().to(all)))
                .service(web::resource("/incr").route(web::get().to(incr)))
                .service(web::resource("/flash").route(web::get().to(flash)))
                .service(web::resource("/flash/get").route(web::get().to(flash_get)))
                .service(web::resource("/flash/peek").route(web::get().to(flash_peek)))
                .service(web::resource("/destroy").route(web::get().to(destroy)))
                .service(web::resource("/expire").route(web::get().to(expire)))
                .service(web::resource("/hit").route(web::get().to(hit))),
        );
}

/// The query string, parsed exactly as axum's `Query` does (same deserializer, same
/// rejection status and body), so that both apps answer a bad query alike.
pub(crate) struct Query<T>(T);

impl<T> std::ops::Deref for Query<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = actix_web::Error;
    type Future = Ready<std::result::Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let parsed = format!("/?{}", req.query_string())
            .parse::<http::Uri>()
            .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))
            .and_then(|uri| {
                axum::extract::Query::<T>::try_from_uri(&uri).map_err(|rejection| {
                    let status = StatusCode::from_u16(rejection.status().as_u16())
                        .unwrap_or(StatusCode::BAD_REQUEST);
                    (status, rejection.body_text())
                })
            });
        ready(match parsed {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err((status, body)) => Err(actix_web::error::InternalError::from_response(
                body.clone(),
                text(status, body),
            )
            .into()),
        })
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(ContentType::plaintext())
        .body(body.into())
}

/// A handler error: the same statuses and bodies as the axum app's `AppError`.
#[derive(Debug)]
pub(crate) struct AppError(sessio_actix::Error);

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError(e.into())
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl AppError {
    /// The demo's own mapping; `None` leaves it to the adapter (503 / 500).
    fn demo_status(&self) -> Option<StatusCode> {
        match &self.0 .0 {
            Error::ReservedKey { .. } => Some(StatusCode::BAD_REQUEST),
            Error::Immutable { .. } | Error::Decode { .. } => Some(StatusCode::CONFLICT),
            Error::Store(e)
                if matches!(
                    e.kind(),
                    StoreErrorKind::NotAnInteger { .. } | StoreErrorKind::Overflow { .. }
                ) =>
            {
                Some(StatusCode::CONFLICT)
            }
            Error::Store(e) if *e.kind() == StoreErrorKind::Unsupported => {
                Some(StatusCode::NOT_IMPLEMENTED)
            }
            Error::CookieTooLarge { .. } => Some(StatusCode::PAYLOAD_TOO_LARGE),
            _ => None,
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.demo_status().unwrap_or_else(|| self.0.status_code())
    }

    fn error_response(&self) -> HttpResponse {
        match self.demo_status() {
            Some(status) => text(status, format!("{}\n", self.0)),
            None => self.0.error_response(),
        }
    }
}

async fn index(session: Session) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok()
        .content_type(ContentType::html())
        .body(home_page(&session)?))
}

/// Logs in and regenerates the id (session fixation).
async fn login(session: Session, q: Query<Login>) -> Result<&'static str> {
    session.set("authenticated", &true)?;
    session.set("user", &q.user)?;
    session.regenerate();
    Ok("logged in\n")
}

async fn secret(session: Session) -> Result<HttpResponse> {
    Ok(if session.get_or("authenticated", false)? {
        text(StatusCode::OK, "The cake is a lie!")
    } else {
        text(StatusCode::FORBIDDEN, "Forbidden\n")
    })
}

async fn logout(session: Session) -> Result<&'static str> {
    session.set("authenticated", &false)?;
    Ok("logged out\n")
}

async fn set(session: Session, q: Query<KeyValue>) -> Result<&'static str> {
    session.set(&q.key, &q.value)?;
    Ok("ok\n")
}

fn found_or_404(value: Option<serde_json::Value>) -> HttpResponse {
    match value {
        Some(v) => text(StatusCode::OK, plain(&v)),
        None => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

async fn get_value(session: Session, q: Query<Key>) -> Result<HttpResponse> {
    Ok(found_or_404(session.get(&q.key)?))
}

async fn delete(session: Session, q: Query<Key>) -> Result<String> {
    Ok(session.delete(&q.key)?.to_string())
}

async fn clear(session: Session) -> &'static str {
    session.clear();
    "ok\n"
}

async fn all(session: Session) -> Result<web::Json<BTreeMap<String, serde_json::Value>>> {
    Ok(web::Json(session.get_all()?))
}

async fn incr(session: Session, q: Query<Incr>) -> Result<String> {
    Ok(session.increment(&q.key, q.by).await?.to_string())
}

async fn flash(session: Session, q: Query<KeyValue>) -> Result<&'static str> {
    session.set_flash(&q.key, &q.value)?;
    Ok("ok\n")
}

async fn flash_get(session: Session, q: Query<Key>) -> Result<HttpResponse> {
    Ok(found_or_404(session.get_flash(&q.key)?))
}

async fn flash_peek(session: Session, q: Query<Key>) -> Result<HttpResponse> {
    Ok(found_or_404(session.peek_flash(&q.key)?))
}

async fn destroy(session: Session) -> &'static str {
    session.destroy();
    "destroyed\n"
}

async fn expire(session: Session, q: Query<Expire>) -> HttpResponse {
    if q.secs == 0 {
        return text(StatusCode::BAD_REQUEST, "secs must be at least 1\n");
    }
    session.update_expiration(Duration::from_secs(q.secs));
    text(StatusCode::OK, "ok\n")
}

/// How many live sessions the store holds (admin; no session of its own).
async fn count(sessions: Data<Sessions>) -> Result<String> {
    Ok(sessions.count().await?.to_string())
}

/// sessio's metrics, Prometheus text format (no session of its own).
async fn metrics(sessions: Data<Sessions>) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::metrics::render(&sessions).await)
}

/// The benchmark route shared with the peers harness: read `counter`, write counter+1.
async fn hit(session: Session) -> Result<String> {
    let n: u64 = session.get_or("counter", 0)? + 1;
    session.set("counter", &n)?;
    Ok(n.to_string())
}
