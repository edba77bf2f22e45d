//! [`SessionMiddleware`] and the service it makes.

use std::{
    fmt,
    future::{ready, Future, Ready},
    pin::Pin,
    task::{self, Context, Poll},
};

use actix_web::{
    body::{EitherBody, MessageBody},
    dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform},
    http::{
        header::{HeaderValue, COOKIE, SET_COOKIE},
        StatusCode,
    },
    HttpMessage, HttpResponse, ResponseError,
};
use pin_project_lite::pin_project;
use sessio::{Finish, LazySession, Sessions};

use crate::error::Error;

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
        ResponseFuture {
            state: State::Inner {
                future: self.inner.call(req),
                lazy,
                error_status: self.config.error_status,
            },
        }
    }
}

/// The commit of a session that changed ([`Finish::Pending`]).
type Write = Pin<Box<dyn Future<Output = Result<Vec<http::HeaderValue>, sessio::Error>> + Send>>;

pin_project! {
    /// The response future of the middleware's service: the handler's response, then
    /// the session's commit if the request changed it (a request that only read its
    /// session, or a cookie session, needs none), then the `Set-Cookie` headers.
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Inner {
            #[pin]
            future: F,
            lazy: LazySession,
            error_status: StatusCode,
        },
        Committing {
            response: Option<ServiceResponse<B>>,
            write: Write,
            error_status: StatusCode,
        },
        Done,
    }
}

impl<F, B> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
    B: MessageBody,
{
    type Output = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Inner {
                    future,
                    lazy,
                    error_status,
                } => {
                    let response = task::ready!(future.poll(cx))?;
                    let error_status = *error_status;
                    match lazy.finish_now() {
                        Finish::Ready(cookies) => {
                            state.set(State::Done);
                            return Poll::Ready(Ok(respond(response, cookies, error_status)));
                        }
                        Finish::Pending(write) => state.set(State::Committing {
                            response: Some(response),
                            write,
                            error_status,
                        }),
                    }
                }
                StateProj::Committing {
                    response,
                    write,
                    error_status,
                } => {
                    let cookies = task::ready!(write.as_mut().poll(cx));
                    let error_status = *error_status;
                    let Some(response) = response.take() else {
                        panic!("ResponseFuture polled after it completed");
                    };
                    state.set(State::Done);
                    return Poll::Ready(Ok(respond(response, cookies, error_status)));
                }
                StateProj::Done => panic!("ResponseFuture polled after it completed"),
            }
        }
    }
}

/// The handler's response with the session's cookies, or, when the session could not
/// be saved, an error response in its place (the client must not believe a write
/// succeeded that was not stored).
fn respond<B: MessageBody>(
    mut res: ServiceResponse<B>,
    cookies: Result<Vec<http::HeaderValue>, sessio::Error>,
    error_status: StatusCode,
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
            let unavailable = error.is_unavailable();
            let error = Error(error);
            let status = if unavailable {
                error_status
            } else {
                error.status_code()
            };
            tracing::error!(%error, "committing the session failed; answering {status}");
            let response = HttpResponse::build(status).body(if unavailable {
                "the session store is unavailable, please retry"
            } else {
                "the session could not be saved"
            });
            res.into_response(response).map_into_right_body()
        }
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Inner { .. } => "waiting for the response",
            State::Committing { .. } => "committing the session",
            State::Done => "done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
