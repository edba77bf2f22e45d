//! [`SessionLayer`].

use http::StatusCode;
use sessio::Sessions;
use tower_layer::Layer;

use crate::service::SessionService;

/// A tower layer that gives every request the session of a [`Sessions`] manager.
///
/// It parses the cookie, inserts a [`LazySession`](sessio::LazySession) into the request
/// extensions (loaded by the first extraction), and after the inner service answers
/// commits a session that was used and appends its `Set-Cookie` headers.
#[derive(Debug, Clone)]
pub struct SessionLayer {
    pub(crate) sessions: Sessions,
    pub(crate) error_status: StatusCode,
}

impl SessionLayer {
    /// A layer for `sessions`.
    pub fn new(sessions: Sessions) -> Self {
        SessionLayer {
            sessions,
            error_status: StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The status of the response when the store is unavailable while committing the
    /// session after the handler ran (default `503 Service Unavailable`). Other commit
    /// failures answer [`sessio::Error::status`]. The handler's response is dropped then:
    /// the client must not believe a write succeeded that was not stored.
    #[must_use]
    pub fn error_status(mut self, status: StatusCode) -> Self {
        self.error_status = status;
        self
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            layer: self.clone(),
        }
    }
}
