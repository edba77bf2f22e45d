//! actix-web integration for [sessio] sessions.
//!
//! Wrap an app (or a scope) in [`SessionMiddleware`]; handlers then take [`Session`] as
//! an extractor. The semantics are those of `sessio-axum`, checked by one HTTP test
//! suite run against both adapters:
//!
//! - every request pays one cookie parse and nothing else: the store is not touched
//!   until a handler extracts the session;
//! - the first extraction loads the session, and every extraction in the same request
//!   shares it (one load, one view);
//! - after the handler, a session that was used is committed (one store round trip,
//!   none when nothing changed) and its `Set-Cookie` header appended;
//! - a store that fails at load answers `503 Service Unavailable` (from the extractor's
//!   [`Error`]); a store that fails at commit replaces the handler's response by a
//!   `503` (configurable with [`SessionMiddleware::error_status`]), so that a client
//!   never believes a write succeeded that was not stored. Both are logged with
//!   `tracing`.
//!
//! ```
//! use actix_web::{web, App};
//! use sessio_actix::{Session, SessionMiddleware, Sessions};
//!
//! async fn visits(session: Session) -> Result<String, sessio_actix::Error> {
//!     let n = session.increment("visits", 1).await?; // atomic in the store
//!     Ok(format!("visit number {n}"))
//! }
//!
//! # #[actix_web::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sessions = Sessions::builder().build()?;
//! let app = actix_web::test::init_service(
//!     App::new()
//!         .wrap(SessionMiddleware::new(sessions))
//!         .route("/", web::get().to(visits)),
//! )
//! .await;
//! let res = actix_web::test::call_service(&app, actix_web::test::TestRequest::get().to_request()).await;
//! assert!(res.headers().contains_key("set-cookie"));
//! assert_eq!(actix_web::test::read_body(res).await, "visit number 1");
//! # Ok(())
//! # }
//! ```
//!
//! ## `Secure` cookies
//!
//! [`Secure::AutoTlsOnly`](sessio::Secure::AutoTlsOnly) looks at the connection: a
//! request is TLS when the server was bound with TLS (`bind_rustls`, `bind_openssl`:
//! actix's `AppConfig::secure`) or its URI is absolute `https`. actix's
//! `ConnectionInfo::scheme` is deliberately not used: it believes `Forwarded` and
//! `X-Forwarded-Proto` from any client. Those headers count only with
//! [`Secure::Auto { trust_forwarded_proto: true }`](sessio::Secure::Auto), exactly as in
//! `sessio-axum`.
//!
//! ## Why a newtype
//!
//! actix's `FromRequest` cannot be implemented for `sessio::Session` outside the core
//! crate (Rust's orphan rule), so this crate's [`Session`] wraps it and dereferences
//! to it: every method of [`sessio::Session`] is available on it, and
//! [`Session::into_inner`] gives the core handle to code that is framework-neutral.

mod error;
mod extract;
mod middleware;

pub use sessio::{self, LazySession, Sessions};

pub use crate::{
    error::Error,
    extract::{Session, SessionName, SessionOf},
    middleware::{Cookies, ResponseFuture, SessionMiddleware, SessionService},
};

/// `sessions.middleware()`: the [`SessionMiddleware`] for a manager.
pub trait SessionsExt {
    /// A middleware that gives every request this manager's session.
    fn middleware(&self) -> SessionMiddleware;
}

impl SessionsExt for Sessions {
    fn middleware(&self) -> SessionMiddleware {
        SessionMiddleware::new(self.clone())
    }
}
