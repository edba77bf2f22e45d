//! [`SessionService`] and its [`ResponseFuture`].

use std::{
    marker::PhantomData,
    task::{Context, Poll},
};

use http::{header::SET_COOKIE, uri::Scheme, HeaderValue, Request, Response, StatusCode};
use sessio::{
    respond::{save_failed, Respond},
    Error,
};
use tower_service::Service;

use crate::layer::SessionLayer;

/// The service made by [`SessionLayer`].
#[derive(Debug, Clone)]
pub struct SessionService<S> {
    pub(crate) inner: S,
    pub(crate) layer: SessionLayer,
}

/// The response future of [`SessionService`]: the inner service's response, then the
/// session's commit if the request changed it, then the `Set-Cookie` headers.
pub type ResponseFuture<F, B> = sessio::respond::ResponseFuture<F, Cookies<B>>;

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
        let cookies = Cookies {
            error_status: self.layer.error_status,
            body: PhantomData,
        };
        // Called here, on the service that `poll_ready` readied: no clone of it is
        // needed (cloning a boxed axum route allocates).
        ResponseFuture::new(self.inner.call(req), lazy, cookies)
    }
}

/// How [`SessionService`] answers: the handler's response with the session's cookies,
/// or, when the session could not be saved, `error_status` (store unavailable) or the
/// error's own status, with a short body.
#[derive(Debug)]
pub struct Cookies<B> {
    error_status: StatusCode,
    body: PhantomData<fn() -> B>,
}

impl<B: From<&'static str>> Respond for Cookies<B> {
    type Response = Response<B>;
    type Output = Response<B>;

    fn respond(
        &self,
        mut response: Response<B>,
        cookies: Result<Vec<HeaderValue>, Error>,
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
                let (status, body) = save_failed(&error, self.error_status);
                let mut response = Response::new(B::from(body));
                *response.status_mut() = status;
                response
            }
        }
    }
}
