//! [`Error`]: `sessio::Error` as an actix response.

use std::fmt;

use actix_web::{
    http::{header::ContentType, StatusCode},
    HttpResponse, ResponseError,
};

/// A [`sessio::Error`] that actix can turn into a response, so that handlers can
/// return `Result<_, sessio_actix::Error>` and use `?` on every session call.
///
/// `503 Service Unavailable` for a store that is down (transient), `413` for a
/// client-side session that outgrew its cookies, `500` for everything else, exactly
/// like `sessio`'s axum integration. The body says only that much;
/// details go to the log (`tracing`), never to the client.
///
/// ```
/// use actix_web::{http::StatusCode, ResponseError};
///
/// let err = sessio_actix::Error::from(sessio::Error::Config("no store".into()));
/// assert_eq!(err.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
/// ```
#[derive(Debug)]
pub struct Error(pub sessio::Error);

impl Error {
    /// The core error.
    pub fn into_inner(self) -> sessio::Error {
        self.0
    }
}

impl From<sessio::Error> for Error {
    fn from(e: sessio::Error) -> Self {
        Error(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        // The core's mapping, shared with the axum adapter (actix is on `http` 0.2).
        StatusCode::from_u16(self.0.status().as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(error = %self.0, "session store unavailable");
        } else {
            tracing::error!(error = %self.0, "session error");
        }
        HttpResponse::build(status)
            .content_type(ContentType::plaintext())
            .body(status.canonical_reason().unwrap_or("session error"))
    }
}
