//! Cookie security: server keys with rotation ([`Keys`]), signed or encrypted id cookies
//! ([`IdCookie`]) and the sealed payloads of client-side sessions.

mod id_cookie;
mod keys;
pub(crate) mod sealed;

pub use self::{
    id_cookie::IdCookie,
    keys::{Key, Keys, MIN_KEY_LEN},
};
