//! axum integration (feature `axum`): [`Session`] is an extractor and [`Error`] a
//! response. The tower layer that makes sessions available lives in `sessio-axum`.

use std::marker::PhantomData;

use axum_core::{
    extract::FromRequestParts,
    response::{IntoResponse, Response},
};
use http::{request::Parts, StatusCode};

use crate::{Error, LazySession, Session, SessionName};

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = Error;

    /// Loads the request's session (once per request; every extraction shares it).
    ///
    /// Fails with [`Error::Config`] (a `500`) when no session layer wraps the route,
    /// and with a store error (a `503`) when the store cannot be read.
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match LazySession::default_in(&parts.extensions) {
            Some(lazy) => lazy.load().await,
            None => Err(Error::Config(
                "no session layer: add `sessio_axum::SessionLayer` around this route".into(),
            )),
        }
    }
}

/// The session of the manager whose cookie is `N::COOKIE_NAME`, when several managers
/// wrap one app (gorilla's multiple sessions per request). Derefs to [`Session`].
pub struct SessionOf<N>(pub Session, PhantomData<N>);

impl<N> std::fmt::Debug for SessionOf<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SessionOf").field(&self.0).finish()
    }
}

impl<N> std::ops::Deref for SessionOf<N> {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.0
    }
}

impl<S: Send + Sync, N: SessionName> FromRequestParts<S> for SessionOf<N> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match LazySession::find(&parts.extensions, N::COOKIE_NAME) {
            Some(lazy) => Ok(SessionOf(lazy.load().await?, PhantomData)),
            None => Err(Error::Config(format!(
                "no session layer with cookie name {:?} wraps this route",
                N::COOKIE_NAME
            ))),
        }
    }
}

impl IntoResponse for Error {
    /// `503 Service Unavailable` for a store that is down, `500` for everything else.
    /// The body says only that much; details go to the log, never to the client.
    fn into_response(self) -> Response {
        let status = self.status();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(error = %self, "session store unavailable");
        } else {
            tracing::error!(error = %self, "session error");
        }
        (status, status.canonical_reason().unwrap_or("session error")).into_response()
    }
}
