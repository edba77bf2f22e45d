//! Reading the session cookie from a request and writing `Set-Cookie` headers.

use std::time::Duration;

use cookie::Cookie;
use http::{HeaderMap, HeaderValue};

use crate::{
    config::{CookieConfig, Secure},
    id::SessionId,
};

/// The first well-formed id in any `Cookie` header under `name`.
///
/// Cookie headers are attacker controlled: non-UTF-8 headers and malformed pairs are
/// skipped, values that are not a possible id are ignored, and nothing here panics or
/// allocates per pair. If a name is repeated, the first acceptable value wins (browsers
/// send the most specific path first).
pub(crate) fn find_id<'a>(
    headers: impl IntoIterator<Item = &'a [u8]>,
    name: &str,
) -> Option<SessionId> {
    headers.into_iter().find_map(|raw| {
        let text = std::str::from_utf8(raw).ok()?;
        Cookie::split_parse(text)
            .filter_map(Result::ok)
            .filter(|c| c.name() == name)
            .find_map(|c| SessionId::parse(c.value()))
    })
}

/// Whether cookies for this request get `Secure`.
pub(crate) fn is_secure(mode: Secure, headers: &HeaderMap, tls: bool) -> bool {
    match mode {
        Secure::Always => true,
        Secure::Never => false,
        Secure::AutoTlsOnly => tls,
        Secure::Auto {
            trust_forwarded_proto,
        } => {
            tls || (trust_forwarded_proto
                && headers
                    .get("x-forwarded-proto")
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https")))
        }
    }
}

/// `Set-Cookie` for `id`; `max_age: None` makes a browser-session cookie.
pub(crate) fn set_cookie(
    config: &CookieConfig,
    id: &SessionId,
    max_age: Option<Duration>,
    secure: bool,
) -> Option<HeaderValue> {
    let mut cookie = base(config, id.as_str(), secure);
    if let Some(age) = max_age {
        // Round up: a cookie must not expire before the server-side session does.
        let secs = age.as_millis().div_ceil(1000);
        let secs = i64::try_from(secs).unwrap_or(i64::MAX).max(1);
        cookie.set_max_age(cookie::time::Duration::seconds(secs));
    }
    to_header(&cookie)
}

/// `Set-Cookie` that makes the browser drop the session cookie.
pub(crate) fn removal_cookie(config: &CookieConfig, secure: bool) -> Option<HeaderValue> {
    let mut cookie = base(config, "", secure);
    cookie.make_removal();
    to_header(&cookie)
}

fn base<'a>(config: &'a CookieConfig, value: &'a str, secure: bool) -> Cookie<'a> {
    let mut cookie = Cookie::new(config.name.as_str(), value);
    cookie.set_path(config.path.as_str());
    if let Some(domain) = &config.domain {
        cookie.set_domain(domain.as_str());
    }
    cookie.set_http_only(config.http_only);
    cookie.set_same_site(config.same_site);
    cookie.set_secure(secure);
    cookie
}

fn to_header(cookie: &Cookie<'_>) -> Option<HeaderValue> {
    // Names and ids are validated; only a hostile domain or path could fail here, and
    // `SessionsBuilder::build` checks those once.
    HeaderValue::try_from(cookie.to_string()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn find(header: &[u8]) -> Option<String> {
        find_id([header], "sessio").map(|id| id.as_str().to_owned())
    }

    #[test]
    fn finds_the_named_cookie() {
        assert_eq!(
            find(b"a=1; sessio=abcDEF_-123; b=2"),
            Some("abcDEF_-123".into())
        );
        assert_eq!(find(b"sessio="), None);
        assert_eq!(find(b""), None);
        assert_eq!(find(b"sessio=\"quoted\""), None);
        assert_eq!(find(b"sessio=bad;id; sessio=good"), Some("bad".into()));
        assert_eq!(find(b"sessio=a%20b; sessio=second"), Some("second".into()));
        assert_eq!(find(&[b's', 0xff, 0xfe]), None);
        assert_eq!(find(&vec![b'a'; 8192]), None);
    }

    #[test]
    fn oversized_ids_are_ignored() {
        let long = format!("sessio={}", "a".repeat(8000));
        assert_eq!(find(long.as_bytes()), None);
    }

    proptest! {
        #[test]
        fn any_header_parses_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            if let Some(id) = find(&bytes) {
                prop_assert!(SessionId::parse(&id).is_some());
            }
        }

        #[test]
        fn a_valid_id_is_found_among_noise(
            pre in "[a-z]{1,8}=[a-z0-9]{0,8}",
            id in "[A-Za-z0-9_-]{1,64}",
        ) {
            let header = format!("{pre}; sessio={id}; z=1");
            prop_assert_eq!(find(header.as_bytes()), Some(id));
        }
    }
}
