//! [`IdCookie`]: how the session id is written into its cookie.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use chacha20poly1305::{
    aead::{Aead, Payload},
    KeyInit, XChaCha20Poly1305, XNonce,
};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Keys;
use crate::id::{SessionId, MAX_ID_LEN};

/// How the id cookie protects the session id.
///
/// - `Plain`: the id itself. Ids are 128-bit random values, so this is already
///   unguessable; the store rejects unknown ids.
/// - `Signed`: `id.tag`, where `tag` is HMAC-SHA256 over the cookie name and the id.
///   A forged or altered id is rejected before any store access, and an id is bound to
///   its cookie name (no swapping between cookies).
/// - `Encrypted`: XChaCha20-Poly1305 with a random 192-bit nonce and the cookie name as
///   associated data: the id is hidden from the client as well as authenticated.
///
/// A value that fails verification is treated exactly like no cookie; nothing tells the
/// client why.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum IdCookie {
    /// The id as it is (the default).
    #[default]
    Plain,
    /// Signed with HMAC-SHA256.
    Signed(Keys),
    /// Encrypted and authenticated with XChaCha20-Poly1305.
    Encrypted(Keys),
}

type HmacSha256 = Hmac<Sha256>;

const TAG_LEN: usize = 32;
const NONCE_LEN: usize = 24;
/// Longest cookie value accepted for decoding: anything longer is not ours.
const MAX_VALUE_LEN: usize = 2 * MAX_ID_LEN + 128;

impl IdCookie {
    /// The cookie value for `id` under cookie `name`.
    pub fn encode(&self, name: &str, id: &SessionId) -> String {
        match self {
            IdCookie::Plain => id.as_str().to_owned(),
            IdCookie::Signed(keys) => {
                let tag = sign(keys.current().signing.as_slice(), name, id.as_str());
                format!("{}.{}", id.as_str(), URL_SAFE_NO_PAD.encode(tag))
            }
            IdCookie::Encrypted(keys) => {
                let cipher = XChaCha20Poly1305::new(keys.current().encryption.as_slice().into());
                let mut nonce = [0u8; NONCE_LEN];
                // No OS CSPRNG: nothing safe to do (a fixed nonce would break the AEAD).
                #[allow(clippy::expect_used)]
                getrandom::fill(&mut nonce)
                    .expect("the operating system's random number generator failed");
                let payload = Payload {
                    msg: id.as_str().as_bytes(),
                    aad: name.as_bytes(),
                };
                // Encryption of a short in-memory message cannot fail.
                let sealed = cipher
                    .encrypt(XNonce::from_slice(&nonce), payload)
                    .unwrap_or_default();
                let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&sealed);
                URL_SAFE_NO_PAD.encode(out)
            }
        }
    }

    /// Verifies a cookie value from cookie `name`. Returns the id and whether it was
    /// opened with a previous key (so it should be re-issued), or `None` for anything
    /// that is not a valid, authentic value.
    pub fn decode(&self, name: &str, value: &str) -> Option<(SessionId, bool)> {
        if value.len() > MAX_VALUE_LEN {
            return None;
        }
        match self {
            IdCookie::Plain => SessionId::parse(value).map(|id| (id, false)),
            IdCookie::Signed(keys) => {
                let (id, tag) = value.rsplit_once('.')?;
                let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
                if tag.len() != TAG_LEN {
                    return None;
                }
                let id = SessionId::parse(id)?;
                keys.all()
                    .find(|(_, key)| verify(key.signing.as_slice(), name, id.as_str(), &tag))
                    .map(|(current, _)| (id, !current))
            }
            IdCookie::Encrypted(keys) => {
                let raw = URL_SAFE_NO_PAD.decode(value).ok()?;
                if raw.len() < NONCE_LEN + 16 {
                    return None;
                }
                let (nonce, sealed) = raw.split_at(NONCE_LEN);
                keys.all().find_map(|(current, key)| {
                    let cipher = XChaCha20Poly1305::new(key.encryption.as_slice().into());
                    let payload = Payload {
                        msg: sealed,
                        aad: name.as_bytes(),
                    };
                    let plain = cipher.decrypt(XNonce::from_slice(nonce), payload).ok()?;
                    let id = SessionId::parse(std::str::from_utf8(&plain).ok()?)?;
                    Some((id, !current))
                })
            }
        }
    }
}

fn mac(key: &[u8], name: &str, id: &str) -> HmacSha256 {
    // HMAC accepts keys of any length; 32 bytes is the recommended size.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    // Length-prefix the name so that ("ab", "c") and ("a", "bc") differ.
    mac.update(&(name.len() as u64).to_be_bytes());
    mac.update(name.as_bytes());
    mac.update(id.as_bytes());
    mac
}

fn sign(key: &[u8], name: &str, id: &str) -> [u8; TAG_LEN] {
    mac(key, name, id).finalize().into_bytes().into()
}

/// Constant-time comparison (`verify_slice`): no timing oracle on the tag.
fn verify(key: &[u8], name: &str, id: &str, tag: &[u8]) -> bool {
    mac(key, name, id).verify_slice(tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{secure::Key, IdGenerator, RandomIds};
    use proptest::prelude::*;

    fn keys(seed: u8) -> Keys {
        Keys::new(Key::from_bytes(&[seed; 32]).unwrap())
    }

    fn modes() -> Vec<IdCookie> {
        vec![IdCookie::Signed(keys(1)), IdCookie::Encrypted(keys(1))]
    }

    #[test]
    fn round_trip_and_name_binding() {
        let id = RandomIds.generate();
        for mode in modes() {
            let value = mode.encode("sessio", &id);
            assert_eq!(mode.decode("sessio", &value), Some((id.clone(), false)));
            assert_eq!(
                mode.decode("other", &value),
                None,
                "bound to the cookie name"
            );
            assert_eq!(
                mode.decode("sessio", id.as_str()),
                None,
                "a bare id is refused"
            );
        }
    }

    #[test]
    fn rotation() {
        let id = RandomIds.generate();
        for (old, rotated, later) in [
            (
                IdCookie::Signed(keys(1)),
                IdCookie::Signed(keys(2).with_previous(Key::from_bytes(&[1; 32]).unwrap())),
                IdCookie::Signed(keys(3).with_previous(Key::from_bytes(&[2; 32]).unwrap())),
            ),
            (
                IdCookie::Encrypted(keys(1)),
                IdCookie::Encrypted(keys(2).with_previous(Key::from_bytes(&[1; 32]).unwrap())),
                IdCookie::Encrypted(keys(3).with_previous(Key::from_bytes(&[2; 32]).unwrap())),
            ),
        ] {
            let value = old.encode("sessio", &id);
            assert_eq!(rotated.decode("sessio", &value), Some((id.clone(), true)));
            let reissued = rotated.encode("sessio", &id);
            assert_eq!(
                rotated.decode("sessio", &reissued),
                Some((id.clone(), false))
            );
            assert_eq!(later.decode("sessio", &value), None, "key A is gone");
            assert_eq!(later.decode("sessio", &reissued), Some((id.clone(), true)));
        }
    }

    proptest! {
        #[test]
        fn any_single_bit_flip_is_rejected(bit in 0usize..2048, mode_ix in 0usize..2) {
            let mode = &modes()[mode_ix];
            let id = RandomIds.generate();
            let value = mode.encode("sessio", &id);
            let mut bytes = value.clone().into_bytes();
            let bit = bit % (bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            if let Ok(tampered) = String::from_utf8(bytes) {
                // Base64 has spare bits in its last character: a flip there can decode
                // to the same bytes, which is the same, authentic cookie.
                match mode.decode("sessio", &tampered) {
                    None => {}
                    Some((got, _)) => prop_assert!(got == id && canonical_same(&tampered, &value)),
                }
            }
        }

        #[test]
        fn any_string_is_rejected_or_decoded_without_panic(s in "\\PC{0,400}", mode_ix in 0usize..3) {
            let mode = [IdCookie::Plain, IdCookie::Signed(keys(1)), IdCookie::Encrypted(keys(1))];
            let _ = mode[mode_ix].decode("sessio", &s);
        }
    }

    /// Whether two base64url strings decode to the same bytes.
    fn canonical_same(a: &str, b: &str) -> bool {
        let dec = |s: &str| {
            s.split('.')
                .map(|p| {
                    URL_SAFE_NO_PAD
                        .decode(p)
                        .unwrap_or_else(|_| p.as_bytes().to_vec())
                })
                .collect::<Vec<_>>()
        };
        dec(a) == dec(b)
    }
}
