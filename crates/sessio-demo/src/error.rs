//! How the demo answers errors: a status and a one-line message, never a panic.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use sessio::{Error, StoreErrorKind};

/// A handler error.
#[derive(Debug)]
pub(crate) struct AppError(pub(crate) Error);

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError(e)
    }
}

impl AppError {
    /// The demo's own status for this error; `None` leaves it to the core mapping
    /// (`503` for a store that is down, `500` otherwise).
    pub(crate) fn demo_status(&self) -> Option<StatusCode> {
        Some(match &self.0 {
            Error::ReservedKey { .. } => StatusCode::BAD_REQUEST,
            Error::Immutable { .. } | Error::Decode { .. } => StatusCode::CONFLICT,
            Error::Store(e)
                if matches!(
                    e.kind(),
                    StoreErrorKind::NotAnInteger { .. } | StoreErrorKind::Overflow { .. }
                ) =>
            {
                StatusCode::CONFLICT
            }
            Error::Store(e) if *e.kind() == StoreErrorKind::Unsupported => {
                StatusCode::NOT_IMPLEMENTED
            }
            Error::CookieTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => return None,
        })
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self.demo_status() {
            Some(status) => (status, format!("{}\n", self.0)).into_response(),
            None => self.0.into_response(),
        }
    }
}
