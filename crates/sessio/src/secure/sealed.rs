//! Sealed payloads: a whole session encrypted into a cookie value (client-side sessions).

use std::{
    collections::HashMap,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use bytes::Bytes;
use chacha20poly1305::{
    aead::{Aead, Payload},
    KeyInit, XChaCha20Poly1305, XNonce,
};
use serde::{Deserialize, Serialize};

use super::Keys;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

/// What a sealed cookie holds. The deadline is inside the authenticated payload, so a
/// copied cookie stops working when it expires, whatever the browser does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Sealed {
    /// A stable id for `Session::id` (not a store key: nothing is stored server-side).
    pub(crate) id: String,
    /// Unix milliseconds; `None`: no deadline.
    pub(crate) exp: Option<u64>,
    /// The session's values.
    pub(crate) values: HashMap<String, Bytes>,
}

pub(crate) fn to_millis(t: SystemTime) -> u64 {
    u64::try_from(t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn from_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// Encrypts `sealed` for cookie `name` under the current key:
/// base64url(version ‖ nonce ‖ XChaCha20-Poly1305(msgpack(sealed), aad = version ‖ name)).
pub(crate) fn seal(keys: &Keys, name: &str, sealed: &Sealed) -> Option<String> {
    let plain = rmp_serde::to_vec(sealed).ok()?;
    let cipher = XChaCha20Poly1305::new(keys.current().encryption.as_slice().into());
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).ok()?;
    let aad = aad(name);
    let ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
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

/// Opens a sealed value from cookie `name`: the payload and whether a previous key
/// opened it. `None` for anything not sealed by one of `keys` for this cookie name, or
/// not decodable; never a panic.
pub(crate) fn open(keys: &Keys, name: &str, value: &str) -> Option<(Sealed, bool)> {
    let raw = URL_SAFE_NO_PAD.decode(value).ok()?;
    let (&version, rest) = raw.split_first()?;
    if version != VERSION || rest.len() < NONCE_LEN + 16 {
        return None;
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let aad = aad(name);
    keys.all().find_map(|(current, key)| {
        let cipher = XChaCha20Poly1305::new(key.encryption.as_slice().into());
        let plain = cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .ok()?;
        // Authentic but undecodable means a format this version does not know.
        let sealed: Sealed = rmp_serde::from_slice(&plain).ok()?;
        Some((sealed, !current))
    })
}

fn aad(name: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(1 + name.len());
    aad.push(VERSION);
    aad.extend_from_slice(name.as_bytes());
    aad
}
