//! [`SessionsBuilder`]: every setting of a [`Sessions`] manager.

use std::{fmt, sync::Arc, time::Duration};

pub use cookie::SameSite;

use crate::{
    codec::Codec,
    cookies,
    error::Error,
    id::{IdGenerator, KeysAtRest, RandomIds},
    secure::{IdCookie, Key, Keys},
    sessions::{DestroyReason, Sessions},
    store::{ClientSide, CookieStore, MemoryStore, Store, StoreKey},
    telemetry::Instrumented,
};

/// When the session cookie carries the `Secure` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Secure {
    /// Always (the only safe choice in production behind HTTPS).
    Always,
    /// Never (plain-HTTP development).
    Never,
    /// When the request came over TLS, as the adapter reports it, or (if
    /// `trust_forwarded_proto`) when a proxy set `X-Forwarded-Proto: https`. Only trust
    /// that header behind a proxy that overwrites it.
    Auto {
        /// Believe `X-Forwarded-Proto`.
        trust_forwarded_proto: bool,
    },
    /// `Auto` without trusting proxies (the default).
    #[default]
    AutoTlsOnly,
}

pub(crate) type DestroyCallback = Arc<dyn Fn(&StoreKey, DestroyReason) + Send + Sync>;

/// The cookie settings of a [`Sessions`] manager.
#[derive(Debug, Clone)]
pub(crate) struct CookieConfig {
    pub(crate) name: String,
    pub(crate) path: String,
    pub(crate) domain: Option<String>,
    pub(crate) secure: Secure,
    pub(crate) http_only: bool,
    pub(crate) same_site: SameSite,
    pub(crate) id_cookie: IdCookie,
}

/// Everything a [`Sessions`] manager was built with.
pub(crate) struct Config {
    pub(crate) cookie: CookieConfig,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) absolute_timeout: Option<Duration>,
    pub(crate) ids: Box<dyn IdGenerator>,
    pub(crate) keys_at_rest: KeysAtRest,
    pub(crate) store: Arc<dyn Store>,
    /// Session lifecycle counters.
    pub(crate) events: crate::telemetry::Events,
    pub(crate) codec: Codec,
    pub(crate) on_destroy: Vec<DestroyCallback>,
    /// Client-side sessions: the data lives in the cookie, not in `store`.
    pub(crate) client: Option<CookieStore>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("cookie", &self.cookie)
            .field("idle_timeout", &self.idle_timeout)
            .field("absolute_timeout", &self.absolute_timeout)
            .field("keys_at_rest", &self.keys_at_rest)
            .field("store", &self.store)
            .field("codec", &self.codec)
            .field("on_destroy", &self.on_destroy.len())
            .field("client_side", &self.client.is_some())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Sessions`] manager. Start with [`Sessions::builder`].
///
/// | setting | default |
/// | --- | --- |
/// | [`cookie_name`](Self::cookie_name) | `sessio` |
/// | [`path`](Self::path) | `/` |
/// | [`domain`](Self::domain) | unset: host-only cookie |
/// | [`secure`](Self::secure) | [`Secure::AutoTlsOnly`] |
/// | [`http_only`](Self::http_only) | `true` |
/// | [`same_site`](Self::same_site) | `Lax` |
/// | [`idle_timeout`](Self::idle_timeout) | 30 minutes, sliding |
/// | [`absolute_timeout`](Self::absolute_timeout) | none |
/// | [`id_generator`](Self::id_generator) | [`RandomIds`]: 128 bits from the OS CSPRNG |
/// | [`store`](Self::store) | [`MemoryStore`] |
/// | [`keys_at_rest`](Self::keys_at_rest) | [`KeysAtRest::hashed`]: stores hold a keyed BLAKE3 hash of ids, not ids |
/// | [`codec`](Self::codec) | [`Codec::Json`] |
/// | [`id_cookie`](Self::id_cookie) | [`IdCookie::Plain`]; see [`signed_ids`](Self::signed_ids), [`encrypted_ids`](Self::encrypted_ids) |
/// | [`cookie_store`](Self::cookie_store) | none: sessions live in `store` |
///
/// ```
/// use std::time::Duration;
/// use sessio::{SameSite, Secure, Sessions};
///
/// let sessions = Sessions::builder()
///     .cookie_name("app_session")
///     .domain("example.com") // shared with every subdomain
///     .secure(Secure::Always)
///     .same_site(SameSite::Strict)
///     .idle_timeout(Duration::from_secs(15 * 60))
///     .absolute_timeout(Duration::from_secs(8 * 3600))
///     .build()?;
/// # Ok::<(), sessio::Error>(())
/// ```
#[must_use]
pub struct SessionsBuilder {
    cookie: CookieConfig,
    idle_timeout: Option<Duration>,
    absolute_timeout: Option<Duration>,
    ids: Box<dyn IdGenerator>,
    keys_at_rest: KeysAtRest,
    store: Option<Arc<dyn Store>>,
    codec: Codec,
    on_destroy: Vec<DestroyCallback>,
    client: Option<CookieStore>,
}

impl fmt::Debug for SessionsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionsBuilder")
            .field("cookie", &self.cookie)
            .field("idle_timeout", &self.idle_timeout)
            .field("absolute_timeout", &self.absolute_timeout)
            .finish_non_exhaustive()
    }
}

impl Default for SessionsBuilder {
    fn default() -> Self {
        SessionsBuilder {
            cookie: CookieConfig {
                name: "sessio".into(),
                path: "/".into(),
                domain: None,
                secure: Secure::default(),
                http_only: true,
                same_site: SameSite::Lax,
                id_cookie: IdCookie::Plain,
            },
            idle_timeout: Some(Duration::from_secs(30 * 60)),
            absolute_timeout: None,
            ids: Box::new(RandomIds),
            keys_at_rest: KeysAtRest::default(),
            store: None,
            codec: Codec::default(),
            on_destroy: Vec::new(),
            client: None,
        }
    }
}

impl SessionsBuilder {
    /// The cookie's name (default `sessio`).
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie.name = name.into();
        self
    }

    /// The cookie's `Path` (default `/`).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.cookie.path = path.into();
        self
    }

    /// The cookie's `Domain`. Unset (the default), the cookie is host-only; a parent
    /// domain shares the session with all its subdomains (Iris's subdomain persistence).
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.cookie.domain = Some(domain.into());
        self
    }

    /// When to set `Secure` (default [`Secure::AutoTlsOnly`]).
    pub fn secure(mut self, secure: Secure) -> Self {
        self.cookie.secure = secure;
        self
    }

    /// Whether to set `HttpOnly` (default `true`: scripts cannot read the id).
    pub fn http_only(mut self, on: bool) -> Self {
        self.cookie.http_only = on;
        self
    }

    /// The `SameSite` attribute (default `Lax`).
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.cookie.same_site = same_site;
        self
    }

    /// Signs the id cookie with HMAC-SHA256 under `keys` (see [`IdCookie::Signed`]).
    pub fn signed_ids(self, keys: Keys) -> Self {
        self.id_cookie(IdCookie::Signed(keys))
    }

    /// Encrypts the id cookie with XChaCha20-Poly1305 under `keys` (see
    /// [`IdCookie::Encrypted`]).
    pub fn encrypted_ids(self, keys: Keys) -> Self {
        self.id_cookie(IdCookie::Encrypted(keys))
    }

    /// How the id cookie protects the id (default [`IdCookie::Plain`]). A cookie that
    /// fails verification is treated as no cookie; one opened with a previous key is
    /// re-issued under the current key.
    pub fn id_cookie(mut self, id_cookie: IdCookie) -> Self {
        self.cookie.id_cookie = id_cookie;
        self
    }

    /// Client-side sessions: keep the whole session in an encrypted cookie instead of
    /// a server-side store. See [`CookieStore`] for what that cannot do.
    pub fn cookie_store(mut self, store: CookieStore) -> Self {
        self.client = Some(store);
        self
    }

    /// How long a session lives without requests (sliding; default 30 minutes).
    /// `None` means no idle limit: with no absolute limit either, the cookie is a
    /// browser-session cookie and the server keeps the session until destroyed.
    pub fn idle_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.idle_timeout = timeout.into();
        self
    }

    /// The longest a session may live, however active (default: none).
    pub fn absolute_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.absolute_timeout = timeout.into();
        self
    }

    /// A custom id generator (default [`RandomIds`]).
    pub fn id_generator(mut self, ids: impl IdGenerator) -> Self {
        self.ids = Box::new(ids);
        self
    }

    /// How session ids become store keys (default [`KeysAtRest::hashed`]: the store
    /// holds a keyed BLAKE3 hash of each id, so a leaked store yields no usable
    /// cookies).
    /// [`KeysAtRest::Plain`] stores ids as they are. Changing this setting orphans the
    /// sessions already stored.
    pub fn keys_at_rest(mut self, keys: KeysAtRest) -> Self {
        self.keys_at_rest = keys;
        self
    }

    /// Hashes ids at rest under a secret subkey of `key`
    /// ([`KeysAtRest::hashed_with`]): even ids from a weak custom generator cannot
    /// be guessed from a leaked store. Every server sharing the store needs the same
    /// key, and it must not change while sessions live (it is not rotated with the
    /// cookie keys).
    pub fn hash_ids_with(self, key: &Key) -> Self {
        self.keys_at_rest(KeysAtRest::hashed_with(key))
    }

    /// The store (default: a new [`MemoryStore`]).
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// The store, already shared.
    pub fn shared_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The value codec (default [`Codec::Json`]).
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// Calls `callback` whenever a session ends: destroyed, regenerated (the old id) or
    /// expired (when the store reports expiry, see
    /// [`Store::set_expiry_listener`](crate::store::Store::set_expiry_listener)).
    /// Callbacks run inline: keep them short.
    pub fn on_destroy(
        mut self,
        callback: impl Fn(&StoreKey, DestroyReason) + Send + Sync + 'static,
    ) -> Self {
        self.on_destroy.push(Arc::new(callback));
        self
    }

    /// Checks the settings and builds the manager.
    ///
    /// Errors: an empty cookie name or one with characters a cookie name cannot hold,
    /// a path not starting with `/`, a zero timeout, a `__Host-` cookie name without
    /// [`Secure::Always`], with a `Domain` or with a path other than `/`, a
    /// `__Secure-` cookie name without [`Secure::Always`]. Logs a warning (tracing)
    /// for `SameSite=None` without [`Secure::Always`].
    pub fn build(self) -> Result<Sessions, Error> {
        let name = &self.cookie.name;
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
        if !valid_name {
            return Err(Error::Config(format!(
                "cookie name {name:?} is empty or has characters not allowed in a cookie name"
            )));
        }
        if !self.cookie.path.starts_with('/') {
            return Err(Error::Config("cookie path must start with `/`".into()));
        }
        if self.idle_timeout == Some(Duration::ZERO)
            || self.absolute_timeout == Some(Duration::ZERO)
        {
            return Err(Error::Config(
                "timeouts must be longer than zero (use None for no limit)".into(),
            ));
        }
        cookies::check_config(&self.cookie)?;
        check_prefix(&self.cookie)?;
        if self.cookie.same_site == SameSite::None && self.cookie.secure != Secure::Always {
            tracing::warn!(
                "SameSite=None without Secure::Always: browsers reject SameSite=None cookies that are not Secure"
            );
        }
        let store = match (&self.client, self.store) {
            (Some(_), Some(_)) => {
                return Err(Error::Config(
                    "both a store and a cookie store were given; choose one".into(),
                ))
            }
            (Some(_), None) => Arc::new(ClientSide) as Arc<dyn Store>,
            // Server-side stores report spans and metrics (see `telemetry`).
            (None, Some(store)) => Instrumented::wrap(store),
            (None, None) => Instrumented::wrap(Arc::new(MemoryStore::new())),
        };
        Ok(Sessions::from_config(Config {
            cookie: self.cookie,
            idle_timeout: self.idle_timeout,
            absolute_timeout: self.absolute_timeout,
            ids: self.ids,
            keys_at_rest: self.keys_at_rest,
            store,
            codec: self.codec,
            on_destroy: self.on_destroy,
            events: crate::telemetry::Events::new(),
            client: self.client,
        }))
    }
}

/// Enforces the rules browsers apply to cookie-name prefixes, so that a misconfigured
/// cookie fails at startup instead of being silently dropped by every browser.
///
/// - `__Secure-`: the cookie must be `Secure`.
/// - `__Host-`: `Secure`, `Path=/` and no `Domain` (bound to one host).
///
/// Browsers match the prefixes case-insensitively, and so does this check.
fn check_prefix(cookie: &CookieConfig) -> Result<(), Error> {
    let starts = |prefix: &str| {
        cookie
            .name
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    };
    let prefix = if starts("__Host-") {
        "__Host-"
    } else if starts("__Secure-") {
        "__Secure-"
    } else {
        return Ok(());
    };
    if cookie.secure != Secure::Always {
        return Err(Error::Config(format!(
            "a cookie named {prefix}... must be Secure: use .secure(Secure::Always) (browsers drop it otherwise)"
        )));
    }
    if prefix == "__Host-" {
        if let Some(domain) = &cookie.domain {
            return Err(Error::Config(format!(
                "a __Host- cookie cannot have a Domain (got {domain:?}): it is bound to one host"
            )));
        }
        if cookie.path != "/" {
            return Err(Error::Config(format!(
                "a __Host- cookie must have Path=/ (got {:?})",
                cookie.path
            )));
        }
    }
    Ok(())
}
