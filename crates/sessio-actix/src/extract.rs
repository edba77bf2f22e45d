//! [`Session`]: the extractor.

use std::{future::Future, ops::Deref, pin::Pin};

use actix_web::{dev::Payload, FromRequest, HttpMessage, HttpRequest};
use sessio::LazySession;

use crate::error::Error;

/// The session of the request, as an actix extractor; dereferences to
/// [`sessio::Session`].
///
/// The first extraction in a request loads the session from the store (once); every
/// later extraction in the same request is the same session and sees its writes. Fails
/// with a `503` when the store cannot be read and with a `500` when no
/// [`SessionMiddleware`](crate::SessionMiddleware) wraps the route.
///
/// ```
/// async fn handler(session: sessio_actix::Session) -> Result<String, sessio_actix::Error> {
///     session.set("name", "iris")?;                  // methods of sessio::Session
///     let name: Option<String> = session.get("name")?;
///     Ok(format!("{name:?}"))
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Session(pub sessio::Session);

impl Session {
    /// The framework-neutral handle.
    pub fn into_inner(self) -> sessio::Session {
        self.0
    }
}

impl Deref for Session {
    type Target = sessio::Session;

    fn deref(&self) -> &sessio::Session {
        &self.0
    }
}

impl From<Session> for sessio::Session {
    fn from(s: Session) -> Self {
        s.0
    }
}

impl FromRequest for Session {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Error>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let lazy = req.extensions().get::<LazySession>().cloned();
        Box::pin(async move {
            match lazy {
                Some(lazy) => Ok(Session(lazy.load().await?)),
                None => Err(Error(sessio::Error::Config(
                    "no session middleware: wrap this route in `sessio_actix::SessionMiddleware`"
                        .into(),
                ))),
            }
        })
    }
}
