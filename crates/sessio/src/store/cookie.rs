//! [`CookieStore`]: client-side sessions, the whole session in an encrypted cookie.

use super::{Committed, KeyPage, Patch, Record, Store, StoreFuture, StoreKey};
use crate::{
    error::{StoreError, StoreErrorKind, StoreOp},
    secure::Keys,
};

/// Client-side sessions (gorilla's `CookieStore`): the session's values and its
/// deadline travel in the cookie itself, encrypted and authenticated with
/// AES-256-GCM-SIV under [`Keys`] (with rotation; cookies sealed with XChaCha20-Poly1305
/// by earlier versions still open). Nothing is stored on the server.
///
/// Use it with [`SessionsBuilder::cookie_store`](crate::SessionsBuilder::cookie_store).
///
/// # What client-side sessions cannot do
///
/// - **Server-side revocation.** A cookie stays valid until its deadline, which is
///   inside the authenticated payload (a copied cookie stops working when it expires,
///   whatever the browser does). `destroy` expires the browser's cookie, but a copy
///   taken earlier still works until then. `Sessions::destroy_by_id`, `destroy_all`,
///   `count` and `keys` return a [`StoreErrorKind::Unsupported`] error.
/// - **Exact concurrent updates.** Each response carries the whole session; of two
///   concurrent requests, the last response wins. `increment`/`decrement` return an
///   `Unsupported` error rather than pretend to be atomic; use `get` + `set` when an
///   approximate counter is enough.
/// - **Size.** Browsers keep at most 4096 bytes per cookie. A session larger than one
///   cookie is spread over numbered cookies (`name`, `name.1`, ...) up to
///   [`max_cookies`](Self::max_cookies) (default 4); beyond that, committing fails with
///   [`Error::CookieTooLarge`](crate::Error::CookieTooLarge): never a truncated cookie.
///
/// ```
/// use sessio::{secure::{Key, Keys}, store::CookieStore, Sessions};
///
/// let sessions = Sessions::builder()
///     .cookie_store(CookieStore::new(Keys::new(Key::generate())).max_cookies(2))
///     .build()?;
/// # Ok::<(), sessio::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CookieStore {
    pub(crate) keys: Keys,
    pub(crate) max_cookies: usize,
}

impl CookieStore {
    /// Client-side sessions sealed with `keys`.
    pub fn new(keys: Keys) -> Self {
        CookieStore {
            keys,
            max_cookies: 4,
        }
    }

    /// How many cookies one session may span (default 4, at least 1).
    #[must_use]
    pub fn max_cookies(mut self, n: usize) -> Self {
        self.max_cookies = n.clamp(1, 64);
        self
    }
}

/// What [`Sessions::store`](crate::Sessions::store) is for client-side sessions: every
/// server-side operation is unsupported.
#[derive(Debug)]
pub(crate) struct ClientSide;

pub(crate) const CLIENT_SIDE: &str = "cookie";

pub(crate) fn unsupported(op: StoreOp, why: &'static str) -> StoreError {
    StoreError::new(CLIENT_SIDE, op, StoreErrorKind::Unsupported).with_source(why)
}

const SERVER_SIDE_ONLY: &str =
    "client-side cookie sessions are not stored on the server; use a server-side store";

impl Store for ClientSide {
    fn name(&self) -> &'static str {
        CLIENT_SIDE
    }
    fn load<'a>(&'a self, _key: &'a StoreKey) -> StoreFuture<'a, Option<Record>> {
        StoreFuture::ready(Err(unsupported(StoreOp::Load, SERVER_SIDE_ONLY)))
    }
    fn commit<'a>(&'a self, _key: &'a StoreKey, _patch: &'a Patch) -> StoreFuture<'a, Committed> {
        StoreFuture::ready(Err(unsupported(StoreOp::Commit, SERVER_SIDE_ONLY)))
    }
    fn destroy<'a>(&'a self, _key: &'a StoreKey) -> StoreFuture<'a, bool> {
        StoreFuture::ready(Err(unsupported(
            StoreOp::Destroy,
            "a client-side session cannot be revoked from the server: it lives until the deadline in its cookie",
        )))
    }
    fn destroy_all(&self) -> StoreFuture<'_, u64> {
        StoreFuture::ready(Err(unsupported(
            StoreOp::DestroyAll,
            "client-side sessions cannot be revoked from the server; rotate the keys to end them all",
        )))
    }
    fn count(&self) -> StoreFuture<'_, u64> {
        StoreFuture::ready(Err(unsupported(StoreOp::Count, SERVER_SIDE_ONLY)))
    }
    fn keys<'a>(&'a self, _cursor: Option<&'a str>, _limit: usize) -> StoreFuture<'a, KeyPage> {
        StoreFuture::ready(Err(unsupported(StoreOp::Keys, SERVER_SIDE_ONLY)))
    }
}
