//! [`SessionMiddleware`] and the service it makes.

use std::{
    future::{ready, Ready},
    marker::PhantomData,
};

use actix_web::{
    body::{EitherBody, MessageBody},
    dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform},
    http::{
        header::{HeaderValue, COOKIE, SET_COOKIE},
        StatusCode,
    },
    HttpMessage, HttpResponse,
};
use sessio::{
    respond::{save_failed, Respond},
    LazySession, Sessions,
};

/// actix-web middleware that gives every request the session of a [`Sessions`]
/// manager.
///
/// For each request it parses the cookie (no store access) and inserts a
/// [`LazySession`](sessio::LazySession) into the request extensions, which the
/// [`Session`](crate::Session) extractor loads on first use. After the handler, a
/// session that was used is committed and its `Set-Cookie` headers appended.
///
/// ```
/// use actix_web::{http::StatusCode, web, App};
/// use sessio_actix::{SessionMiddleware, Sessions};
///
/// let sessions = Sessions::builder().build()?;
/// let app = App::new()
///     .wrap(SessionMiddleware::new(sessions).error_status(StatusCode::INTERNAL_SERVER_ERROR))
///     .route("/", web::get().to(|| async { "no session here: costs one cookie parse" }));
/// # Ok::<(), sessio::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SessionMiddleware {
    sessions: Sessions,
    error_status: StatusCode,
}

impl SessionMiddleware {
    /// A middleware for `sessions`.
    pub fn new(sessions: Sessions) -> Self {
        SessionMiddleware {
            sessions,
            error_status: StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The status of the response when committing the session fails after the handler
    /// ran (default `503 Service Unavailable`). The handler's response is dropped then:
    /// the client must not believe a write succeeded that was not stored.
    #[must_use]
    pub fn error_status(mut self, status: StatusCode) -> Self {
        self.error_status = status;
        self
    }
}

impl<S, B> Transform<S, ServiceRequest> for SessionMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = SessionService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SessionService {
            inner: service,
            config: self.clone(),
        }))
    }
}

/// The service made by [`SessionMiddleware`].
#[derive(Debug)]
pub struct SessionService<S> {
    inner: S,
    config: SessionMiddleware,
}

/// Whether the connection itself is TLS (not what a client claims in headers).
fn is_tls(req: &ServiceRequest) -> bool {
    req.app_config().secure() || req.uri().scheme_str() == Some("https")
}

/// The request's `Cookie` and `X-Forwarded-Proto` headers as an `http` 1.x map, the
/// only headers the core reads. actix 4 uses `http` 0.2 types, so they are copied.
fn session_headers(req: &ServiceRequest) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for value in req.headers().get_all(COOKIE) {
        if let Ok(v) = http::HeaderValue::from_bytes(value.as_bytes()) {
            map.append(http::header::COOKIE, v);
        }
    }
    if let Some(value) = req.headers().get("x-forwarded-proto") {
        if let Ok(v) = http::HeaderValue::from_bytes(value.as_bytes()) {
            map.insert("x-forwarded-proto", v);
        }
    }
    map
}

/// The sessions of a request beyond the default one, when several middlewares (with
/// different cookie names) wrap one app. Kept in the request extensions.
#[derive(Default)]
pub(crate) struct MoreSessions(pub(crate) Vec<LazySession>);

/// Makes `lazy` the request's default session (what [`Session`](crate::Session)
/// extracts), keeping a session already there for [`SessionOf`](crate::SessionOf).
/// With `.wrap(a).wrap(b)`, `b` is outermost and runs first, so `a` (the innermost,
/// closest to the handler) ends up the default, as with tower layers.
fn insert(extensions: &mut actix_web::dev::Extensions, lazy: LazySession) {
    if let Some(previous) = extensions.insert(lazy) {
        extensions
            .get_or_insert_with(MoreSessions::default)
            .0
            .push(previous);
    }
}

/// The response future of the middleware's service: the handler's response, then the
/// session's commit if the request changed it, then the `Set-Cookie` headers.
pub type ResponseFuture<F, B> = sessio::respond::ResponseFuture<F, Cookies<B>>;

impl<S, B> Service<ServiceRequest> for SessionService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = ResponseFuture<S::Future, B>;

    forward_ready!(inner);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let lazy = self
            .config
            .sessions
            .lazy(&session_headers(&req), is_tls(&req));
        insert(&mut req.extensions_mut(), lazy.clone());
        let cookies = Cookies {
            error_status: self.config.error_status,
            body: PhantomData,
        };
        ResponseFuture::new(self.inner.call(req), lazy, cookies)
    }
}

/// How the middleware answers: the handler's response with the session's cookies, or,
/// when the session could not be saved, `error_status` (store unavailable) or the
/// error's own status, with a short body.
#[derive(Debug)]
pub struct Cookies<B> {
    error_status: StatusCode,
    body: PhantomData<fn() -> B>,
}

impl<B: MessageBody> Respond for Cookies<B> {
    type Response = ServiceResponse<B>;
    type Output = ServiceResponse<EitherBody<B>>;

    fn respond(
        &self,
        mut res: ServiceResponse<B>,
        cookies: Result<Vec<http::HeaderValue>, sessio::Error>,
    ) -> ServiceResponse<EitherBody<B>> {
        match cookies {
            Ok(cookies) => {
                let headers = res.headers_mut();
                for cookie in cookies {
                    // Values made by the core are valid header bytes.
                    if let Ok(v) = HeaderValue::from_bytes(cookie.as_bytes()) {
                        headers.append(SET_COOKIE, v);
                    }
                }
                res.map_into_left_body()
            }
            Err(error) => {
                // The core speaks `http` 1, actix `http` 0.2: statuses cross as numbers.
                let unavailable = http::StatusCode::from_u16(self.error_status.as_u16())
                    .unwrap_or(http::StatusCode::SERVICE_UNAVAILABLE);
                let (status, body) = save_failed(&error, unavailable);
                let status = StatusCode::from_u16(status.as_u16())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                res.into_response(HttpResponse::build(status).body(body))
                    .map_into_right_body()
            }
        }
    }
}
