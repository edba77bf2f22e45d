//! axum, tower and hyper integration for [sessio](sessio) sessions.
//!
//! Wrap a router (or any tower service) in a [`SessionLayer`]; handlers then take
//! [`Session`] as an extractor. The session is committed after the handler returns and
//! its `Set-Cookie` header added to the response; a store that fails at that point turns
//! the response into a `503` (configurable) and is logged with `tracing`. A handler that
//! does not extract the session costs one cookie parse and nothing else.
//!
//! ```
//! use axum::{routing::get, Router};
//! use sessio_axum::{Session, SessionLayer, Sessions};
//!
//! async fn visits(session: Session) -> Result<String, sessio::Error> {
//!     let n = session.increment("visits", 1).await?; // atomic in the store
//!     Ok(format!("visit number {n}"))
//! }
//!
//! let sessions = Sessions::builder().build()?;
//! let app: Router = Router::new()
//!     .route("/", get(visits))
//!     .layer(SessionLayer::new(sessions));
//! # Ok::<(), sessio::Error>(())
//! ```
//!
//! The same layer serves plain hyper or tower apps: it needs only
//! `http::Request`/`http::Response`, and the handler reaches the session through
//! [`LazySession`] in the request extensions.

mod layer;
mod service;

pub use sessio::{self, Error, LazySession, Session, SessionName, SessionOf, Sessions};

pub use crate::{
    layer::SessionLayer,
    service::{Cookies, ResponseFuture, SessionService},
};

/// `sessions.layer()`: the [`SessionLayer`] for a manager.
pub trait SessionsExt {
    /// A layer that gives every request this manager's session.
    fn layer(&self) -> SessionLayer;
}

impl SessionsExt for Sessions {
    fn layer(&self) -> SessionLayer {
        SessionLayer::new(self.clone())
    }
}
