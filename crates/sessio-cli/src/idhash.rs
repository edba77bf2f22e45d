//! Session ids are secrets: listings show a short keyed hash instead.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Hex digits of the short id (48 bits: unique enough to pick a session out of
/// millions, far too short to be a usable session id).
pub(crate) const LEN: usize = 12;

/// The short id of a store key: the first 48 bits of HMAC-SHA256(key, id), in hex.
pub(crate) fn short_id(hash_key: &str, id: &str) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = match Hmac::<Sha256>::new_from_slice(hash_key.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::from("?"),
    };
    mac.update(id.as_bytes());
    let digest = mac.finalize().into_bytes();
    digest
        .iter()
        .take(LEN / 2)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `s` has the shape of a short id.
pub(crate) fn looks_short(s: &str) -> bool {
    s.len() == LEN
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_are_keyed_and_stable() {
        let a = short_id("k1", "some-session-id");
        assert_eq!(a, short_id("k1", "some-session-id"));
        assert_ne!(a, short_id("k2", "some-session-id"));
        assert!(looks_short(&a), "{a}");
        assert!(!a.contains("some"));
    }
}
