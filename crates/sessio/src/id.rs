//! Session ids, how they are generated, and the store key derived from them.

use std::{
    cmp::Ordering,
    fmt,
    hash::{BuildHasher, Hash, Hasher},
    sync::{Arc, OnceLock},
};

use arrayvec::ArrayString;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use zeroize::Zeroizing;

use crate::secure::Key;

/// The longest id accepted from a cookie; longer values are treated as no cookie.
pub const MAX_ID_LEN: usize = 256;

/// The text of an id or a store key: inline up to [`Text::INLINE`] bytes (every id
/// that [`RandomIds`] makes and every hashed store key), shared beyond. Ids and keys are
/// made on every request with a session: inline, they cost no allocation.
#[derive(Clone)]
enum Text {
    Inline(ArrayString<{ Text::INLINE }>),
    Shared(Arc<str>),
}

impl Text {
    /// Every hashed store key (43 characters) and default id (22) fits; `Text` is 56
    /// bytes either way (the memory store keeps a session's key in several places).
    const INLINE: usize = 48;

    fn new(s: &str) -> Self {
        ArrayString::from(s).map_or_else(|_| Text::Shared(Arc::from(s)), Text::Inline)
    }

    fn as_str(&self) -> &str {
        match self {
            Text::Inline(s) => s.as_str(),
            Text::Shared(s) => s,
        }
    }
}

/// Which bytes an id may hold: `A-Z a-z 0-9 - _ . ~` (a table: ids are checked on every
/// request that carries a cookie).
static ID_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~');
        b += 1;
    }
    table
};

/// A session id: the secret that the cookie carries.
///
/// Its `Debug` output is redacted so that ids do not end up in logs.
#[derive(Clone)]
pub struct SessionId(Text);

impl PartialEq for SessionId {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SessionId {}

impl Hash for SessionId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl SessionId {
    /// Wraps an id given by a custom generator or taken from a cookie.
    ///
    /// Returns `None` for anything that cannot be a session id: empty, longer than
    /// [`MAX_ID_LEN`], or containing characters outside `A-Z a-z 0-9 - _ . ~`.
    /// Such values are treated exactly like a missing cookie.
    pub fn parse(s: &str) -> Option<Self> {
        let ok =
            !s.is_empty() && s.len() <= MAX_ID_LEN && s.bytes().all(|b| ID_BYTES[usize::from(b)]);
        ok.then(|| SessionId(Text::new(s)))
    }

    /// The id as it appears in the cookie.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(<redacted>)")
    }
}

/// The key under which a store keeps a session, derived from its [`SessionId`].
///
/// A [`Sessions`](crate::Sessions) manager derives keys with its [`KeysAtRest`]
/// setting: by default a keyed hash of the id (keyed BLAKE3), so that a leaked store
/// holds no usable cookies ([`Sessions::store_key`](crate::Sessions::store_key) gives
/// the key of an id). [`StoreKey::for_id`] is the plain key (the id itself).
///
/// A key carries its own hash (foldhash with a per-process random seed, computed once
/// when the key is made), and [`Hash`] feeds only that: in-process stores hash a key
/// once per request instead of once per map operation (see [`KeyHasher`]). A fast
/// rather than a flood-resistant hash is enough here: the maps it serves only ever
/// hold keys of generated ids, which a client cannot choose.
#[derive(Clone)]
pub struct StoreKey {
    key: Text,
    hash: u64,
}

impl StoreKey {
    fn new(key: Text) -> Self {
        static SEED: OnceLock<foldhash::fast::RandomState> = OnceLock::new();
        let hash = SEED.get_or_init(Default::default).hash_one(key.as_str());
        StoreKey { key, hash }
    }

    /// The plain key for `id`: the id itself, as a manager built with
    /// [`KeysAtRest::Plain`] uses it (store tests use it to make keys).
    pub fn for_id(id: &SessionId) -> Self {
        StoreKey::derive(id, &KeysAtRest::Plain)
    }

    /// The key for `id` under `keys`. The single place where ids become store keys.
    pub fn derive(id: &SessionId, keys: &KeysAtRest) -> Self {
        match keys {
            KeysAtRest::Plain => StoreKey::new(id.0.clone()),
            KeysAtRest::Hashed(hasher) => StoreKey::new(hasher.hash(id)),
        }
    }

    /// Rebuilds a key that a store listed (for example when paging through keys).
    pub fn from_stored(s: impl AsRef<str>) -> Self {
        StoreKey::new(Text::new(s.as_ref()))
    }

    /// The key as stores write it.
    pub fn as_str(&self) -> &str {
        self.key.as_str()
    }

    /// The key's precomputed hash (random per process: never persist it).
    pub fn hash_value(&self) -> u64 {
        self.hash
    }
}

impl PartialEq for StoreKey {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.as_str() == other.as_str()
    }
}

impl Eq for StoreKey {}

impl Hash for StoreKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl PartialOrd for StoreKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for StoreKey {
    /// By the key's text, so that listings page in a stable order.
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

/// A [`BuildHasher`] for maps keyed by [`StoreKey`]: it passes the key's precomputed
/// hash through instead of hashing again.
///
/// ```
/// use std::collections::HashMap;
/// use sessio::store::{KeyHasher, StoreKey};
///
/// let mut map: HashMap<StoreKey, u32, KeyHasher> = HashMap::default();
/// map.insert(StoreKey::from_stored("abc"), 1);
/// assert_eq!(map.get(&StoreKey::from_stored("abc")), Some(&1));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyHasher;

impl BuildHasher for KeyHasher {
    type Hasher = PassThrough;

    fn build_hasher(&self) -> PassThrough {
        PassThrough(0)
    }
}

/// The [`Hasher`] of [`KeyHasher`]: keeps the last `u64` written. Other input (which a
/// `StoreKey` never writes) is folded in with FNV-1a so that it still works.
#[derive(Debug, Clone, Copy, Default)]
pub struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A plain key is the session id itself, so a secret as well.
        f.write_str("StoreKey(<redacted>)")
    }
}

/// How a manager turns session ids into [`StoreKey`]s: what a store (and so a leaked
/// database or Redis dump) holds instead of the cookie's value.
///
/// Set with [`SessionsBuilder::keys_at_rest`](crate::SessionsBuilder::keys_at_rest)
/// or [`SessionsBuilder::hash_ids_with`](crate::SessionsBuilder::hash_ids_with); the
/// default is [`KeysAtRest::hashed`]. Changing it (or its key) orphans every stored
/// session: their keys no longer match their cookies.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum KeysAtRest {
    /// The store key is the session id itself.
    Plain,
    /// The store key is a keyed BLAKE3 hash of the id, URL-safe base64 (43
    /// characters).
    Hashed(IdHasher),
}

impl KeysAtRest {
    /// Keyed BLAKE3 under a fixed, public key: deterministic across restarts and
    /// servers with no configuration. Random 128-bit ids cannot be recovered from
    /// their hash, so this already makes a leaked store useless for hijacking; a
    /// secret key ([`KeysAtRest::hashed_with`]) also protects weak custom ids.
    pub fn hashed() -> Self {
        KeysAtRest::Hashed(IdHasher::new(blake3::derive_key(
            "sessio 2026-12-03 store keys at rest v2",
            b"",
        )))
    }

    /// Keyed BLAKE3 under a subkey derived from `key` (HKDF, separate from the cookie
    /// signing and encryption subkeys). Keep `key` for as long as sessions live: a
    /// different key finds none of them.
    pub fn hashed_with(key: &Key) -> Self {
        KeysAtRest::Hashed(IdHasher::new(**key.at_rest))
    }
}

impl Default for KeysAtRest {
    fn default() -> Self {
        KeysAtRest::hashed()
    }
}

/// A keyed hash of session ids: BLAKE3 in keyed mode (a PRF), 256 bits.
///
/// BLAKE3 rather than HMAC-SHA256 because it is hashed on every request: one
/// compression of a short id, about 900 instructions, against HMAC-SHA256's two
/// SHA-256 compressions, about 7,000 instructions on CPUs without SHA extensions
/// (see docs/decisions.md).
#[derive(Clone)]
pub struct IdHasher {
    key: Arc<Zeroizing<[u8; 32]>>,
}

impl fmt::Debug for IdHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdHasher(BLAKE3 keyed, <redacted>)")
    }
}

impl IdHasher {
    fn new(key: [u8; 32]) -> Self {
        IdHasher {
            key: Arc::new(Zeroizing::new(key)),
        }
    }

    /// The hash in URL-safe base64 (43 characters), encoded on the stack and kept
    /// inline: no allocation (this runs on every request with a session).
    fn hash(&self, id: &SessionId) -> Text {
        let digest = blake3::keyed_hash(&self.key, id.as_str().as_bytes());
        let mut buf = [0u8; 43];
        let n = URL_SAFE_NO_PAD
            .encode_slice(digest.as_bytes(), &mut buf)
            .unwrap_or_default();
        Text::new(std::str::from_utf8(&buf[..n]).unwrap_or_default())
    }
}

/// Generates new session ids.
///
/// The default, [`RandomIds`], draws 128 bits from the operating system's CSPRNG.
/// A custom generator must produce unguessable ids that [`SessionId::parse`] accepts.
pub trait IdGenerator: Send + Sync + 'static {
    /// A fresh, unguessable id.
    fn generate(&self) -> SessionId;
}

impl<F> IdGenerator for F
where
    F: Fn() -> SessionId + Send + Sync + 'static,
{
    fn generate(&self) -> SessionId {
        self()
    }
}

/// The default generator: 128 bits from the OS CSPRNG (`getrandom`), URL-safe base64
/// without padding (22 characters).
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomIds;

impl IdGenerator for RandomIds {
    fn generate(&self) -> SessionId {
        let mut raw = [0u8; 16];
        // The OS CSPRNG failing is not recoverable and never caused by input; serving a
        // predictable id instead would be worse than stopping.
        #[allow(clippy::expect_used)]
        getrandom::fill(&mut raw).expect("the operating system's random number generator failed");
        let mut buf = [0u8; 22];
        let n = URL_SAFE_NO_PAD
            .encode_slice(raw, &mut buf)
            .unwrap_or_default();
        let s = std::str::from_utf8(&buf[..n]).unwrap_or_default();
        SessionId(Text::new(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn random_ids_are_22_urlsafe_chars_and_distinct() {
        let a = RandomIds.generate();
        let b = RandomIds.generate();
        assert_eq!(a.as_str().len(), 22);
        assert_ne!(a, b);
        assert!(SessionId::parse(a.as_str()).is_some());
    }

    #[test]
    fn hashed_keys_are_deterministic_keyed_and_hide_the_id() {
        let id = RandomIds.generate();
        let default = StoreKey::derive(&id, &KeysAtRest::default());
        assert_eq!(default, StoreKey::derive(&id, &KeysAtRest::hashed()));
        assert_eq!(default.as_str().len(), 43);
        assert!(!default.as_str().contains(id.as_str()));
        assert_eq!(
            StoreKey::derive(&id, &KeysAtRest::Plain).as_str(),
            id.as_str()
        );
        let key = Key::generate();
        let keyed = StoreKey::derive(&id, &KeysAtRest::hashed_with(&key));
        assert_ne!(keyed, default);
        assert_eq!(keyed, StoreKey::derive(&id, &KeysAtRest::hashed_with(&key)));
        assert_ne!(
            keyed,
            StoreKey::derive(&id, &KeysAtRest::hashed_with(&Key::generate()))
        );
    }

    #[test]
    fn ids_and_keys_compare_by_text_inline_or_shared() {
        assert_eq!(std::mem::size_of::<StoreKey>(), 64);
        for len in [1, 22, Text::INLINE, Text::INLINE + 1, MAX_ID_LEN] {
            let text = "a".repeat(len);
            let id = SessionId::parse(&text).expect("a valid id");
            assert_eq!(id.as_str(), text);
            assert_eq!(id, SessionId::parse(&text).expect("a valid id"));
            let plain = StoreKey::for_id(&id);
            assert_eq!(plain.as_str(), text);
            // A key rebuilt from its text (a store's listing) is the same key.
            assert_eq!(plain, StoreKey::from_stored(&text));
            assert_eq!(
                plain.hash_value(),
                StoreKey::from_stored(&text).hash_value()
            );
            let hashed = StoreKey::derive(&id, &KeysAtRest::default());
            assert_eq!(hashed, StoreKey::from_stored(hashed.as_str()));
            assert_ne!(hashed, plain);
        }
        assert_ne!(
            SessionId::parse(&"a".repeat(Text::INLINE + 1)),
            SessionId::parse(&"a".repeat(Text::INLINE))
        );
    }

    #[test]
    fn debug_is_redacted() {
        let id = RandomIds.generate();
        assert!(!format!("{id:?}").contains(id.as_str()));
        assert!(!format!("{:?}", StoreKey::for_id(&id)).contains(id.as_str()));
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_accepts_only_safe_chars(s in "\\PC{0,300}") {
            if let Some(id) = SessionId::parse(&s) {
                prop_assert!(id.as_str().len() <= MAX_ID_LEN);
                prop_assert!(!id.as_str().contains([';', ',', ' ', '"', '=']));
            }
        }
    }
}
