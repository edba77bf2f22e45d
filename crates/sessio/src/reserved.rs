//! Reserved keys: sessio's own bookkeeping inside a session's value map.
//!
//! Stores only see a map of keys to bytes; flash messages, immutable markers and
//! expiry settings live in it under keys that start with `__sessio:`, which user keys
//! may not. (Printable, so that every backend stores it as text: PostgreSQL's `text`
//! and `jsonb` refuse NUL.)

use crate::error::Error;

/// Unix milliseconds at which the session was created (only kept with an absolute timeout).
pub(crate) const CREATED: &str = "__sessio:created";
/// This session's own idle timeout in seconds (`update_expiration`).
pub(crate) const TIMEOUT: &str = "__sessio:timeout";
/// The user the session belongs to (`Session::set_user`), for the user index.
pub(crate) const USER: &str = "__sessio:user";
/// Prefix of flash messages.
pub(crate) const FLASH: &str = "__sessio:flash:";
/// Prefix of immutable markers.
pub(crate) const IMMUTABLE: &str = "__sessio:immutable:";

/// The prefix of every reserved key.
pub(crate) const PREFIX: &str = "__sessio:";

/// Whether a stored key is internal (hidden from `get_all`, `len`, ...).
pub(crate) fn is_reserved(key: &str) -> bool {
    key.starts_with(PREFIX)
}

/// Refuses user keys that would collide with the reserved ones, or hold NUL (which
/// PostgreSQL text cannot store).
pub(crate) fn check_user_key(key: &str) -> Result<(), Error> {
    // A byte loop: keys are short, a `memchr` call costs more than it saves.
    if is_reserved(key) || key.bytes().any(|b| b == 0) {
        Err(Error::ReservedKey {
            key: key.to_owned(),
        })
    } else {
        Ok(())
    }
}

pub(crate) fn flash_key(key: &str) -> String {
    [FLASH, key].concat()
}

pub(crate) fn immutable_key(key: &str) -> String {
    [IMMUTABLE, key].concat()
}
