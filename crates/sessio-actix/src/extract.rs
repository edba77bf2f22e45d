//! [`Session`]: the extractor.

use std::{future::Future, marker::PhantomData, ops::Deref, pin::Pin};

use actix_web::{dev::Payload, FromRequest, HttpMessage, HttpRequest};
use sessio::LazySession;

use crate::{error::Error, middleware::MoreSessions};

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

pub use sessio::SessionName;

/// The session of the manager whose cookie is `N::COOKIE_NAME`, when several
/// [`SessionMiddleware`](crate::SessionMiddleware)s wrap one app (gorilla's multiple
/// sessions per request, even on different stores). Dereferences to
/// [`sessio::Session`]; [`Session`] is the innermost middleware's session.
///
/// ```
/// use actix_web::{web, App};
/// use sessio_actix::{Session, SessionName, SessionOf, Sessions, SessionsExt};
///
/// struct Prefs;
/// impl SessionName for Prefs {
///     const COOKIE_NAME: &'static str = "prefs";
/// }
///
/// async fn handler(user: Session, prefs: SessionOf<Prefs>) -> Result<String, sessio_actix::Error> {
///     let theme: String = prefs.get_or("theme", "light".to_owned())?;
///     Ok(format!("{:?} {theme}", user.get::<String>("name")?))
/// }
///
/// let users = Sessions::builder().build()?;
/// let prefs = Sessions::builder().cookie_name("prefs").build()?;
/// let app = App::new()
///     .wrap(users.middleware())
///     .wrap(prefs.middleware())
///     .route("/", web::get().to(handler));
/// # Ok::<(), sessio::Error>(())
/// ```
pub struct SessionOf<N>(pub sessio::Session, PhantomData<N>);

impl<N> std::fmt::Debug for SessionOf<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SessionOf").field(&self.0).finish()
    }
}

impl<N> Deref for SessionOf<N> {
    type Target = sessio::Session;

    fn deref(&self) -> &sessio::Session {
        &self.0
    }
}

impl<N: SessionName> FromRequest for SessionOf<N> {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Error>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let lazy = {
            let extensions = req.extensions();
            let first = extensions.get::<LazySession>().into_iter();
            let more = extensions
                .get::<MoreSessions>()
                .into_iter()
                .flat_map(|m| m.0.iter());
            first
                .chain(more)
                .find(|s| s.cookie_name() == N::COOKIE_NAME)
                .cloned()
        };
        Box::pin(async move {
            match lazy {
                Some(lazy) => Ok(SessionOf(lazy.load().await?, PhantomData)),
                None => Err(Error(sessio::Error::Config(format!(
                    "no session middleware with cookie name {:?} wraps this route",
                    N::COOKIE_NAME
                )))),
            }
        })
    }
}
