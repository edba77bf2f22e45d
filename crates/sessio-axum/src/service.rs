//! [`SessionService`].

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http::{header::SET_COOKIE, uri::Scheme, Request, Response};
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
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<&'static str> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let tls = req.uri().scheme() == Some(&Scheme::HTTPS);
        let lazy = self.layer.sessions.lazy(req.headers(), tls);
        lazy.clone().insert_into(req.extensions_mut());
        let error_status = self.layer.error_status;
        // Called here, on the service that `poll_ready` readied: no clone of it is
        // needed (cloning a boxed axum route allocates).
        let response = self.inner.call(req);
        Box::pin(async move {
            let mut response = response.await?;
            if lazy.get().is_none() {
                return Ok(response);
            }
            match lazy.finish().await {
                Ok(cookies) => {
                    let headers = response.headers_mut();
                    for cookie in cookies {
                        headers.append(SET_COOKIE, cookie);
                    }
                    Ok(response)
                }
                Err(error) => {
                    let status = if error.is_unavailable() {
                        error_status
                    } else {
                        error.status()
                    };
                    tracing::error!(%error, "committing the session failed; answering {status}");
                    let mut response = Response::new(ResBody::from(if error.is_unavailable() {
                        "the session store is unavailable, please retry"
                    } else {
                        "the session could not be saved"
                    }));
                    *response.status_mut() = status;
                    Ok(response)
                }
            }
        })
    }
}
