//! [`Sessions`]: the manager, and [`LazySession`], what adapters keep per request.

use std::{
    fmt,
    sync::{Arc, Mutex},
    time::SystemTime,
};

use http::HeaderMap;
use tokio::sync::OnceCell;

use crate::{
    config::{Config, SessionsBuilder},
    cookies::{self, RequestCookie},
    error::Error,
    id::{SessionId, StoreKey},
    session::{Finish, Session},
    store::{is_expired, KeyPage, Record, Store},
    Codec,
};

/// Why a session ended, passed to [`on_destroy`](SessionsBuilder::on_destroy) callbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DestroyReason {
    /// [`Session::destroy`], [`Sessions::destroy_by_id`] or [`Sessions::destroy_all`].
    Destroyed,
    /// Its deadline passed and the store removed it.
    Expired,
    /// [`Session::regenerate`] gave it a new id; the old id is dead.
    Regenerated,
}

/// The session manager: configuration, store, and the entry points.
///
/// Cheap to clone (one `Arc`), `Send + Sync`. Build it once with [`Sessions::builder`]
/// and share it; framework adapters take it by value.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sessio::Error> {
/// use http::HeaderMap;
/// use sessio::Sessions;
///
/// let sessions = Sessions::builder().build()?;
///
/// // Framework-neutral use (go-sessions' `Start(w, r)`): start from request headers...
/// let session = sessions.start(&HeaderMap::new()).await?;
/// session.set("user", "iris")?;
/// // ...and after the handler, commit and send the cookie.
/// let set_cookie = session.finish().await?;
/// assert_eq!(set_cookie.len(), 1);
///
/// // The next request presents the cookie and sees the data.
/// let mut headers = HeaderMap::new();
/// let pair = set_cookie[0].to_str().unwrap().split(';').next().unwrap().to_owned();
/// headers.insert(http::header::COOKIE, pair.parse().unwrap());
/// let again = sessions.start(&headers).await?;
/// assert_eq!(again.get::<String>("user")?.as_deref(), Some("iris"));
/// assert_eq!(sessions.count().await?, 1);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Sessions {
    pub(crate) config: Arc<Config>,
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Sessions").field(&self.config).finish()
    }
}

impl Sessions {
    /// Starts configuring a manager.
    pub fn builder() -> SessionsBuilder {
        SessionsBuilder::default()
    }

    pub(crate) fn from_config(config: Config) -> Self {
        // Always listen (when the store can report expiry): the expiry counter needs it.
        let callbacks = config.on_destroy.clone();
        let events = config.events.clone();
        config
            .store
            .set_expiry_listener(Arc::new(move |key: &StoreKey| {
                events.ended(DestroyReason::Expired);
                for cb in &callbacks {
                    cb(key, DestroyReason::Expired);
                }
            }));
        Sessions {
            config: Arc::new(config),
        }
    }

    /// The store this manager uses.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.config.store
    }

    /// The value codec.
    pub fn codec(&self) -> Codec {
        self.config.codec
    }

    /// The key under which the store keeps the session with this id (see
    /// [`KeysAtRest`](crate::KeysAtRest)).
    pub fn store_key(&self, id: &SessionId) -> StoreKey {
        StoreKey::derive(id, &self.config.keys_at_rest)
    }

    /// The session cookie's name.
    pub fn cookie_name(&self) -> &str {
        &self.config.cookie.name
    }

    /// Prepares the session of one request without touching the store: only the cookie
    /// is parsed. `tls` says whether the request came over TLS (for
    /// [`Secure::AutoTlsOnly`](crate::Secure::AutoTlsOnly)). The store is read on the
    /// first [`LazySession::load`]; what adapters insert into each request.
    pub fn lazy(&self, headers: &HeaderMap, tls: bool) -> LazySession {
        let secure = cookies::is_secure(self.config.cookie.secure, headers, tls);
        self.lazy_from_cookie_headers(
            headers
                .get_all(http::header::COOKIE)
                .iter()
                .map(|v| v.as_bytes()),
            secure,
        )
    }

    /// Like [`lazy`](Self::lazy), for frameworks whose header types are not `http`'s:
    /// pass the raw `Cookie` header values and whether cookies must be `Secure`.
    pub fn lazy_from_cookie_headers<'a>(
        &self,
        cookie_headers: impl IntoIterator<Item = &'a [u8]>,
        secure: bool,
    ) -> LazySession {
        let cookie = cookies::read(
            cookie_headers,
            &self.config.cookie,
            self.config.client.as_ref(),
        );
        LazySession {
            inner: Arc::new(LazyInner {
                sessions: self.clone(),
                has_cookie: !matches!(cookie, RequestCookie::None),
                cookie: Mutex::new(cookie),
                secure,
                cell: OnceCell::new(),
            }),
        }
    }

    /// Starts (loads) the session of a request from its headers: the framework-neutral
    /// entry point. Call [`Session::finish`] after the handler for the `Set-Cookie`
    /// headers.
    pub async fn start(&self, headers: &HeaderMap) -> Result<Session, Error> {
        self.lazy(headers, false).load().await
    }

    /// Destroys the session with this id, wherever it is in use. Returns whether it
    /// existed. Fires `on_destroy` with [`DestroyReason::Destroyed`].
    pub async fn destroy_by_id(&self, id: &str) -> Result<bool, Error> {
        let Some(id) = SessionId::parse(id) else {
            return Ok(false);
        };
        let key = self.store_key(&id);
        let existed = self.config.store.destroy(&key).await?;
        if existed {
            self.fire_destroy(&key, DestroyReason::Destroyed);
        }
        Ok(existed)
    }

    /// Destroys every session of `user` (see [`Session::set_user`]): "log out
    /// everywhere", for example after a password change. Returns how many live sessions
    /// ended; fires `on_destroy` with [`DestroyReason::Destroyed`] for each. Stores
    /// without a user index return
    /// [`StoreErrorKind::Unsupported`](crate::StoreErrorKind::Unsupported).
    pub async fn destroy_user(&self, user: &str) -> Result<u64, Error> {
        let keys = self.config.store.destroy_user(user).await?;
        for key in &keys {
            self.fire_destroy(key, DestroyReason::Destroyed);
        }
        Ok(keys.len() as u64)
    }

    /// Destroys every session; returns how many there were. When `on_destroy`
    /// callbacks are registered, sessions are listed and destroyed one by one so that
    /// each callback fires.
    pub async fn destroy_all(&self) -> Result<u64, Error> {
        if self.config.on_destroy.is_empty() {
            return Ok(self.config.store.destroy_all().await?);
        }
        let mut n = 0;
        loop {
            // Always restart from the first page: destroyed keys vanish from it.
            let page = self.config.store.keys(None, 1000).await?;
            if page.keys.is_empty() {
                break;
            }
            for key in &page.keys {
                if self.config.store.destroy(key).await? {
                    n += 1;
                    self.fire_destroy(key, DestroyReason::Destroyed);
                }
            }
        }
        Ok(n)
    }

    /// Counts live sessions (for admin views).
    pub async fn count(&self) -> Result<u64, Error> {
        Ok(self.config.store.count().await?)
    }

    /// One page of live session keys; pass the previous page's `next` as `cursor`.
    pub async fn keys(&self, cursor: Option<&str>, limit: usize) -> Result<KeyPage, Error> {
        Ok(self.config.store.keys(cursor, limit).await?)
    }

    /// Calls `visit` with every live session (for admin use): pages through the keys
    /// and loads each; sessions that expire meanwhile are skipped.
    pub async fn visit(&self, mut visit: impl FnMut(&StoreKey, &Record)) -> Result<(), Error> {
        let mut cursor: Option<String> = None;
        loop {
            let page = self.config.store.keys(cursor.as_deref(), 1000).await?;
            for key in &page.keys {
                if let Some(record) = self.config.store.load(key).await? {
                    visit(key, &record);
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(()),
            }
        }
    }

    pub(crate) fn fire_destroy(&self, key: &StoreKey, reason: DestroyReason) {
        self.config.events.ended(reason);
        for cb in &self.config.on_destroy {
            cb(key, reason);
        }
    }
}

/// The session of one request before it is loaded: the cookie has been parsed, the
/// store not touched. Adapters keep one per request; [`load`](Self::load) reads the
/// store once and every later call returns the same [`Session`] (Iris's
/// `AllowReclaim`: every access in one request sees the same state).
#[derive(Clone)]
pub struct LazySession {
    inner: Arc<LazyInner>,
}

struct LazyInner {
    sessions: Sessions,
    /// What the cookies said; taken by the first `load`.
    cookie: Mutex<RequestCookie>,
    has_cookie: bool,
    secure: bool,
    cell: OnceCell<Session>,
}

impl fmt::Debug for LazySession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazySession")
            .field("has_cookie", &self.inner.has_cookie)
            .field("loaded", &self.inner.cell.initialized())
            .finish()
    }
}

/// The sessions of a request beyond the first, when several managers (with different
/// cookie names) wrap one app. Kept in the request extensions.
#[derive(Clone, Debug, Default)]
struct MoreSessions(Vec<LazySession>);

impl LazySession {
    /// Puts this session into a request's extensions, where
    /// [`find`](Self::find) (and the axum extractors) look for it. Several sessions
    /// with different cookie names can live in one request; the last inserted (with
    /// layers: the innermost, closest to the handler) is the request's default session.
    pub fn insert_into(self, extensions: &mut http::Extensions) {
        if let Some(previous) = extensions.insert(self) {
            match extensions.get_mut::<MoreSessions>() {
                Some(more) => more.0.push(previous),
                None => {
                    extensions.insert(MoreSessions(vec![previous]));
                }
            }
        }
    }

    /// The request's default session (the last inserted), if any.
    pub fn default_in(extensions: &http::Extensions) -> Option<&LazySession> {
        extensions.get::<LazySession>()
    }

    /// The request's session whose cookie is named `cookie_name`, if any.
    pub fn find<'e>(
        extensions: &'e http::Extensions,
        cookie_name: &str,
    ) -> Option<&'e LazySession> {
        let first = extensions.get::<LazySession>().into_iter();
        let more = extensions
            .get::<MoreSessions>()
            .into_iter()
            .flat_map(|m| m.0.iter());
        first.chain(more).find(|s| s.cookie_name() == cookie_name)
    }

    /// The name of the cookie this session uses.
    pub fn cookie_name(&self) -> &str {
        self.inner.sessions.cookie_name()
    }

    /// Loads the session (once). An unknown, expired or malformed id yields a fresh
    /// session with a new id: ids are never adopted.
    pub async fn load(&self) -> Result<Session, Error> {
        let inner = &self.inner;
        inner
            .cell
            .get_or_try_init(|| async {
                let sessions = inner.sessions.clone();
                let cookie =
                    std::mem::take(&mut *inner.cookie.lock().unwrap_or_else(|e| e.into_inner()));
                let secure = inner.secure;
                match cookie {
                    RequestCookie::None => Ok(Session::fresh(sessions, secure, 0)),
                    RequestCookie::Invalid { chunks } => {
                        Ok(Session::fresh(sessions, secure, chunks))
                    }
                    RequestCookie::Id { id, rotated } => {
                        let key = sessions.store_key(&id);
                        match sessions.config.store.load(&key).await? {
                            Some(record) => Ok(Session::loaded(
                                sessions,
                                secure,
                                (id, Some(key)),
                                record,
                                rotated,
                                0,
                            )),
                            None => Ok(Session::fresh(sessions, secure, 0)),
                        }
                    }
                    RequestCookie::Sealed {
                        sealed,
                        rotated,
                        chunks,
                    } => {
                        let sealed = *sealed;
                        let record = Record {
                            values: Arc::new(sealed.values),
                            expires_at: sealed.exp.map(crate::secure::sealed::from_millis),
                        };
                        // The deadline is authenticated: an expired copy opens nothing.
                        let live = !is_expired(record.expires_at, SystemTime::now());
                        match SessionId::parse(&sealed.id).filter(|_| live) {
                            Some(id) => {
                                // No store key: a sealed session is keyed by nothing
                                // unless it is destroyed or regenerated.
                                Ok(Session::loaded(
                                    sessions,
                                    secure,
                                    (id, None),
                                    record,
                                    rotated,
                                    chunks,
                                ))
                            }
                            None => Ok(Session::fresh(sessions, secure, chunks)),
                        }
                    }
                }
            })
            .await
            .cloned()
    }

    /// The session, if it was loaded in this request.
    pub fn get(&self) -> Option<&Session> {
        self.inner.cell.get()
    }

    /// Whether the request carried a well-formed session cookie (not whether it is valid).
    pub fn has_cookie(&self) -> bool {
        self.inner.has_cookie
    }

    /// Commits the session if it was loaded and returns the `Set-Cookie` header values
    /// the response needs (none if the session was never touched).
    pub async fn finish(&self) -> Result<Vec<http::HeaderValue>, Error> {
        match self.inner.cell.get() {
            Some(session) => session.finish().await,
            None => Ok(Vec::new()),
        }
    }

    /// [`finish`](Self::finish) for adapters that name their futures: finishes at
    /// once when the store need not be written (the session was not loaded, or the
    /// request changed nothing the store keeps), and hands back the write to await
    /// otherwise.
    ///
    /// ```
    /// # async fn demo(lazy: sessio::LazySession) -> Result<(), sessio::Error> {
    /// use sessio::Finish;
    ///
    /// let set_cookie = match lazy.finish_now() {
    ///     Finish::Ready(result) => result?,
    ///     Finish::Pending(write) => write.await?,
    /// };
    /// # let _ = set_cookie; Ok(()) }
    /// ```
    pub fn finish_now(&self) -> Finish {
        match self.inner.cell.get() {
            Some(session) => session.finish_now(),
            None => Finish::Ready(Ok(Vec::new())),
        }
    }
}

/// Names the cookie of one of several session managers on one app, for the `SessionOf`
/// extractors of the framework adapters.
///
/// ```
/// struct Prefs;
/// impl sessio::SessionName for Prefs {
///     const COOKIE_NAME: &'static str = "prefs";
/// }
/// ```
pub trait SessionName: Send + Sync + 'static {
    /// The cookie name the manager was built with.
    const COOKIE_NAME: &'static str;
}
