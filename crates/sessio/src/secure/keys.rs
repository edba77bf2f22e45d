//! [`Key`] and [`Keys`]: server secrets, with rotation.

use std::{fmt, path::Path, sync::Arc};

use aes_gcm_siv::{Aes256GcmSiv, KeyInit};
use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    Engine as _,
};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::Error;

/// The shortest master key accepted, in bytes.
pub const MIN_KEY_LEN: usize = 32;

/// One server secret. Separate subkeys for signing (HMAC-SHA256), encrypted ids
/// (XChaCha20-Poly1305) and sealed client-side sessions (AES-256-GCM-SIV) are derived
/// from it with HKDF-SHA256, so one master key never serves two algorithms.
///
/// Its `Debug` output is redacted and its bytes are zeroed on drop.
#[derive(Clone)]
pub struct Key {
    pub(crate) signing: Arc<Zeroizing<[u8; 32]>>,
    pub(crate) encryption: Arc<Zeroizing<[u8; 32]>>,
    /// The sealing cipher with its key schedule expanded once (zeroed on drop).
    pub(crate) sealing: Arc<Aes256GcmSiv>,
    /// For keyed hashes of session ids at rest (`SessionsBuilder::hash_ids_with`).
    pub(crate) at_rest: Arc<Zeroizing<[u8; 32]>>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl Key {
    /// A key from at least 32 bytes of secret, high-entropy material (for example 32
    /// bytes from a CSPRNG: `openssl rand -base64 32`). Shorter input is refused.
    pub fn from_bytes(master: &[u8]) -> Result<Key, Error> {
        if master.len() < MIN_KEY_LEN {
            return Err(Error::Config(format!(
                "a key must be at least {MIN_KEY_LEN} bytes, this one has {}; generate one with `openssl rand -base64 32`",
                master.len()
            )));
        }
        let hk = Hkdf::<Sha256>::new(Some(b"sessio key derivation v1"), master);
        let mut signing = Zeroizing::new([0u8; 32]);
        let mut encryption = Zeroizing::new([0u8; 32]);
        // 32-byte outputs are far below HKDF's limit of 255 blocks: these cannot fail.
        hk.expand(b"signing", signing.as_mut_slice())
            .map_err(|_| Error::Config("key derivation failed".into()))?;
        hk.expand(b"encryption", encryption.as_mut_slice())
            .map_err(|_| Error::Config("key derivation failed".into()))?;
        let mut at_rest = Zeroizing::new([0u8; 32]);
        hk.expand(b"store keys at rest", at_rest.as_mut_slice())
            .map_err(|_| Error::Config("key derivation failed".into()))?;
        let mut sealing = Zeroizing::new([0u8; 32]);
        hk.expand(b"sealed sessions aes-256-gcm-siv", sealing.as_mut_slice())
            .map_err(|_| Error::Config("key derivation failed".into()))?;
        Ok(Key {
            signing: Arc::new(signing),
            encryption: Arc::new(encryption),
            sealing: Arc::new(Aes256GcmSiv::new(sealing.as_slice().into())),
            at_rest: Arc::new(at_rest),
        })
    }

    /// A key from base64 (standard or URL-safe, padded or not).
    pub fn from_base64(text: &str) -> Result<Key, Error> {
        let text = text.trim();
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text)
                .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
                .map_err(|_| Error::Config("a key is not valid base64".into()))?,
        );
        Key::from_bytes(&bytes)
    }

    /// A fresh random key (32 bytes from the OS CSPRNG), for tests and first set-up.
    pub fn generate() -> Key {
        let mut raw = Zeroizing::new([0u8; 32]);
        // As for session ids: without an OS CSPRNG there is nothing safe to do.
        #[allow(clippy::expect_used)]
        getrandom::fill(raw.as_mut_slice())
            .expect("the operating system's random number generator failed");
        #[allow(clippy::expect_used)]
        Key::from_bytes(raw.as_slice()).expect("32 bytes is long enough")
    }
}

/// The keys of a [`Sessions`](crate::Sessions) manager: one current key, which protects
/// every new cookie, and any number of previous keys, which still open cookies made
/// with them. A cookie opened by a previous key is re-issued under the current one, so
/// rotating is: put the new key first, keep the old one after it until the longest
/// session lifetime has passed, then drop it.
///
/// ```
/// use sessio::secure::{Key, Keys};
///
/// let old = Key::from_bytes(&[7u8; 32])?;
/// let new = Key::generate();
/// let keys = Keys::new(new).with_previous(old);
/// assert_eq!(keys.len(), 2);
/// assert!(Key::from_bytes(b"too short").is_err());
/// # Ok::<(), sessio::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Keys {
    keys: Vec<Key>,
}

impl Keys {
    /// A set with one key.
    pub fn new(current: Key) -> Keys {
        Keys {
            keys: vec![current],
        }
    }

    /// Adds an older key that still opens cookies (newest first).
    #[must_use]
    pub fn with_previous(mut self, key: Key) -> Keys {
        self.keys.push(key);
        self
    }

    /// Keys from comma-separated base64, newest first (the demo's `SESSIO_KEYS`).
    pub fn from_base64_list(list: &str) -> Result<Keys, Error> {
        let keys = list
            .split([',', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Key::from_base64)
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(Error::Config("no keys given".into()));
        }
        Ok(Keys { keys })
    }

    /// Keys from a file holding one base64 key per line, newest first.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Keys, Error> {
        let path = path.as_ref();
        let text =
            Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                Error::Config(format!("cannot read key file {}: {e}", path.display()))
            })?);
        Keys::from_base64_list(&text)
            .map_err(|e| Error::Config(format!("key file {}: {e}", path.display())))
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false: a set has at least its current key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub(crate) fn current(&self) -> &Key {
        &self.keys[0]
    }

    /// Every key, current first, with whether it is the current one.
    pub(crate) fn all(&self) -> impl Iterator<Item = (bool, &Key)> {
        self.keys.iter().enumerate().map(|(i, k)| (i == 0, k))
    }
}
