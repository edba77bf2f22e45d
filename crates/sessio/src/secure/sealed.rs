//! Sealed payloads: a whole session encrypted into a cookie value (client-side sessions).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aes_gcm_siv::Nonce;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use chacha20poly1305::{
    aead::{Aead, Payload},
    KeyInit, XChaCha20Poly1305, XNonce,
};
use serde::{Deserialize, Serialize};

use super::Keys;

/// The format sealed now: AES-256-GCM-SIV with a random 96-bit nonce.
const VERSION: u8 = 2;
const NONCE_LEN: usize = 12;
/// The first format, still opened: XChaCha20-Poly1305 with a random 192-bit nonce.
const VERSION_XCHACHA: u8 = 1;
const XNONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// What a sealed cookie holds. The deadline is inside the authenticated payload, so a
/// copied cookie stops working when it expires, whatever the browser does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Sealed {
    /// A stable id for `Session::id` (not a store key: nothing is stored server-side).
    pub(crate) id: String,
    /// Unix milliseconds; `None`: no deadline.
    pub(crate) exp: Option<u64>,
    /// The session's values.
    pub(crate) values: crate::store::Values,
}

pub(crate) fn to_millis(t: SystemTime) -> u64 {
    u64::try_from(t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn from_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// Encrypts `sealed` for cookie `name` under the current key:
/// base64url(version ‖ nonce ‖ AES-256-GCM-SIV(msgpack(sealed), aad = version ‖ name)).
///
/// GCM-SIV rather than GCM: a repeated random nonce (likely only after billions of
/// cookies under one key) reveals no more than that two payloads were equal.
pub(crate) fn seal(keys: &Keys, name: &str, sealed: &Sealed) -> Option<String> {
    let plain = rmp_serde::to_vec(sealed).ok()?;
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).ok()?;
    let aad = aad(VERSION, name);
    let ciphertext = keys
        .current()
        .sealing
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &plain,
                aad: &aad,
            },
        )
        .ok()?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Some(URL_SAFE_NO_PAD.encode(out))
}

/// Opens a sealed value from cookie `name`: the payload and whether it must be
/// re-sealed (a previous key or the older format opened it). `None` for anything not
/// sealed by one of `keys` for this cookie name, or not decodable; never a panic.
pub(crate) fn open(keys: &Keys, name: &str, value: &str) -> Option<(Sealed, bool)> {
    let raw = URL_SAFE_NO_PAD.decode(value).ok()?;
    let (&version, rest) = raw.split_first()?;
    let nonce_len = match version {
        VERSION => NONCE_LEN,
        VERSION_XCHACHA => XNONCE_LEN,
        _ => return None,
    };
    if rest.len() < nonce_len + TAG_LEN {
        return None;
    }
    let (nonce, ciphertext) = rest.split_at(nonce_len);
    let aad = aad(version, name);
    let payload = || Payload {
        msg: ciphertext,
        aad: &aad,
    };
    keys.all().find_map(|(current, key)| {
        let plain = if version == VERSION {
            key.sealing.decrypt(Nonce::from_slice(nonce), payload())
        } else {
            XChaCha20Poly1305::new(key.encryption.as_slice().into())
                .decrypt(XNonce::from_slice(nonce), payload())
        }
        .ok()?;
        // Authentic but undecodable means a format this version does not know.
        let sealed: Sealed = rmp_serde::from_slice(&plain).ok()?;
        Some((sealed, !current || version != VERSION))
    })
}

fn aad(version: u8, name: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(1 + name.len());
    aad.push(version);
    aad.extend_from_slice(name.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secure::Key;

    /// A value in the first format, as `seal` wrote it before version 2.
    fn seal_xchacha(keys: &Keys, name: &str, sealed: &Sealed) -> String {
        let plain = rmp_serde::to_vec(sealed).expect("encodes");
        let nonce = [7u8; XNONCE_LEN];
        let aad = aad(VERSION_XCHACHA, name);
        let cipher = XChaCha20Poly1305::new(keys.current().encryption.as_slice().into());
        let ciphertext = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: &aad,
                },
            )
            .expect("encrypts");
        let mut out = vec![VERSION_XCHACHA];
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        URL_SAFE_NO_PAD.encode(out)
    }

    fn sample() -> Sealed {
        let mut values = crate::store::Values::default();
        values.insert("counter", b"41");
        Sealed {
            id: "some-id".into(),
            exp: Some(1_900_000_000_000),
            values,
        }
    }

    #[test]
    fn seals_with_gcm_siv_and_opens_both_formats() {
        let keys = Keys::new(Key::from_bytes(&[3; 32]).expect("key"));
        let sealed = seal(&keys, "sessio", &sample()).expect("seals");
        let raw = URL_SAFE_NO_PAD.decode(&sealed).expect("base64");
        assert_eq!(raw[0], VERSION);
        assert_eq!(open(&keys, "sessio", &sealed), Some((sample(), false)));
        // The old format still opens, and asks to be re-sealed in the new one.
        let old = seal_xchacha(&keys, "sessio", &sample());
        assert_eq!(open(&keys, "sessio", &old), Some((sample(), true)));
        // Bound to the cookie name and the key, in both formats.
        assert_eq!(open(&keys, "other", &sealed), None);
        assert_eq!(open(&keys, "other", &old), None);
        let stranger = Keys::new(Key::from_bytes(&[4; 32]).expect("key"));
        assert_eq!(open(&stranger, "sessio", &sealed), None);
        assert_eq!(open(&stranger, "sessio", &old), None);
    }

    #[test]
    fn a_version_byte_swap_opens_nothing() {
        let keys = Keys::new(Key::from_bytes(&[3; 32]).expect("key"));
        let sealed = seal(&keys, "sessio", &sample()).expect("seals");
        let mut raw = URL_SAFE_NO_PAD.decode(&sealed).expect("base64");
        for version in [0, VERSION_XCHACHA, 3, 255] {
            raw[0] = version;
            assert_eq!(open(&keys, "sessio", &URL_SAFE_NO_PAD.encode(&raw)), None);
        }
    }
}
