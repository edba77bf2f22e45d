//! [`ResponseFuture`]: what a framework adapter's service returns, written once for
//! every adapter. Each adapter says, through [`Respond`], how the session's cookies
//! (or the error that replaces its response) reach its framework's response type.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{ready, Context, Poll},
};

use http::{HeaderValue, StatusCode};
use pin_project_lite::pin_project;

use crate::{session::Finish, Error, LazySession};

/// How an adapter turns the handler's response and the outcome of finishing the
/// request's session into its answer.
pub trait Respond {
    /// The handler's response.
    type Response;
    /// What the adapter answers.
    type Output;

    /// The handler's `response` with the session's `Set-Cookie` values, or, when the
    /// session could not be saved (`Err`), an error response in its place: the client
    /// must not believe a write succeeded that was not stored.
    fn respond(
        &self,
        response: Self::Response,
        cookies: Result<Vec<HeaderValue>, Error>,
    ) -> Self::Output;
}

/// What replaces the handler's response when its session could not be saved: the
/// adapter's `unavailable` status for a store that is down (default `503`), the error's
/// own [`status`](Error::status) otherwise, and a short body that says which. Logs the
/// error; the body tells the client nothing more.
///
/// ```
/// use http::StatusCode;
/// use sessio::{respond::save_failed, Error};
///
/// let error = Error::Config("a broken setting".into());
/// let (status, body) = save_failed(&error, StatusCode::SERVICE_UNAVAILABLE);
/// assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
/// assert_eq!(body, "the session could not be saved");
/// ```
pub fn save_failed(error: &Error, unavailable: StatusCode) -> (StatusCode, &'static str) {
    let (status, body) = if error.is_unavailable() {
        (
            unavailable,
            "the session store is unavailable, please retry",
        )
    } else {
        (error.status(), "the session could not be saved")
    };
    tracing::error!(%error, "committing the session failed; answering {status}");
    (status, body)
}

/// The commit of a session that changed ([`Finish::Pending`]).
type Write = Pin<Box<dyn Future<Output = Result<Vec<HeaderValue>, Error>> + Send>>;

pin_project! {
    /// The response future of an adapter's service: the handler's response, then the
    /// session's commit if the request changed it (a request that only read its
    /// session, or a cookie session, needs none: [`LazySession::finish_now`]), then
    /// [`Respond::respond`].
    ///
    /// ```
    /// use http::{HeaderValue, Response};
    /// use sessio::{respond::{Respond, ResponseFuture}, Error, Sessions};
    ///
    /// /// Appends the cookies; answers 503 when the session could not be saved.
    /// struct Cookies;
    ///
    /// impl Respond for Cookies {
    ///     type Response = Response<String>;
    ///     type Output = Response<String>;
    ///     fn respond(&self, mut r: Response<String>, cookies: Result<Vec<HeaderValue>, Error>) -> Response<String> {
    ///         match cookies {
    ///             Ok(cookies) => {
    ///                 for c in cookies {
    ///                     r.headers_mut().append(http::header::SET_COOKIE, c);
    ///                 }
    ///                 r
    ///             }
    ///             Err(_) => {
    ///                 let mut r = Response::new("try again".to_owned());
    ///                 *r.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
    ///                 r
    ///             }
    ///         }
    ///     }
    /// }
    ///
    /// # async fn demo() -> Result<(), sessio::Error> {
    /// let sessions = Sessions::builder().build()?;
    /// let lazy = sessions.lazy(&http::HeaderMap::new(), false);
    /// let handler = async { Ok::<_, std::convert::Infallible>(Response::new("hi".to_owned())) };
    /// let response = ResponseFuture::new(handler, lazy, Cookies).await;
    /// assert_eq!(response.map(|r| r.into_body()).ok().as_deref(), Some("hi"));
    /// # Ok(()) }
    /// ```
    pub struct ResponseFuture<F, R>
    where
        R: Respond,
    {
        #[pin]
        state: State<F, R::Response>,
        respond: R,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, T> {
        Handler {
            #[pin]
            future: F,
            lazy: LazySession,
        },
        Committing {
            response: Option<T>,
            write: Write,
        },
        Done,
    }
}

impl<F, R: Respond> ResponseFuture<F, R> {
    /// Awaits `future` (the handler's response), then finishes `lazy` and hands both to
    /// `respond`.
    pub fn new(future: F, lazy: LazySession, respond: R) -> Self {
        ResponseFuture {
            state: State::Handler { future, lazy },
            respond,
        }
    }
}

impl<F, R, E> Future for ResponseFuture<F, R>
where
    F: Future<Output = Result<R::Response, E>>,
    R: Respond,
{
    type Output = Result<R::Output, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut state = this.state;
        loop {
            match state.as_mut().project() {
                StateProj::Handler { future, lazy } => {
                    let response = ready!(future.poll(cx))?;
                    match lazy.finish_now() {
                        Finish::Ready(cookies) => {
                            state.set(State::Done);
                            return Poll::Ready(Ok(this.respond.respond(response, cookies)));
                        }
                        Finish::Pending(write) => state.set(State::Committing {
                            response: Some(response),
                            write,
                        }),
                    }
                }
                StateProj::Committing { response, write } => {
                    let cookies = ready!(write.as_mut().poll(cx));
                    let Some(response) = response.take() else {
                        panic!("ResponseFuture polled after it completed");
                    };
                    state.set(State::Done);
                    return Poll::Ready(Ok(this.respond.respond(response, cookies)));
                }
                StateProj::Done => panic!("ResponseFuture polled after it completed"),
            }
        }
    }
}

impl<F, R: Respond> fmt::Debug for ResponseFuture<F, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Handler { .. } => "waiting for the handler",
            State::Committing { .. } => "committing the session",
            State::Done => "done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}
