//! [`SessionService`] and its [`ResponseFuture`].

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{ready, Context, Poll},
};

use http::{header::SET_COOKIE, uri::Scheme, HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use sessio::{Error, Finish, LazySession};
use tower_service::Service;

use crate::layer::SessionLayer;

/// The service made by [`SessionLayer`].
#[derive(Debug, Clone)]
pub struct SessionService<S> {
    pub(crate) inner: S,
    pub(crate) layer: SessionLayer,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<&'static str>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let tls = req.uri().scheme() == Some(&Scheme::HTTPS);
        let lazy = self.layer.sessions.lazy(req.headers(), tls);
        lazy.clone().insert_into(req.extensions_mut());
        ResponseFuture {
            // Called here, on the service that `poll_ready` readied: no clone of it is
            // needed (cloning a boxed axum route allocates).
            state: State::Inner {
                future: self.inner.call(req),
                lazy,
                error_status: self.layer.error_status,
            },
        }
    }
}

/// The commit of a session that changed ([`Finish::Pending`]).
type Write = Pin<Box<dyn Future<Output = Result<Vec<HeaderValue>, Error>> + Send>>;

pin_project! {
    /// The response future of [`SessionService`]: the inner service's response, then
    /// the session's commit if the request changed it (a request that only read its
    /// session needs none), then the `Set-Cookie` headers.
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
            response: Option<Response<B>>,
            write: Write,
            error_status: StatusCode,
        },
        Done,
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: From<&'static str>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Inner {
                    future,
                    lazy,
                    error_status,
                } => {
                    let response = ready!(future.poll(cx))?;
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
                    let cookies = ready!(write.as_mut().poll(cx));
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
fn respond<B: From<&'static str>>(
    mut response: Response<B>,
    cookies: Result<Vec<HeaderValue>, Error>,
    error_status: StatusCode,
) -> Response<B> {
    match cookies {
        Ok(cookies) => {
            let headers = response.headers_mut();
            for cookie in cookies {
                headers.append(SET_COOKIE, cookie);
            }
            response
        }
        Err(error) => {
            let status = if error.is_unavailable() {
                error_status
            } else {
                error.status()
            };
            tracing::error!(%error, "committing the session failed; answering {status}");
            let mut response = Response::new(B::from(if error.is_unavailable() {
                "the session store is unavailable, please retry"
            } else {
                "the session could not be saved"
            }));
            *response.status_mut() = status;
            response
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
