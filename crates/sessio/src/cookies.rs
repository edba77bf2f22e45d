//! Reading the session cookie(s) from a request and writing `Set-Cookie` headers.

use std::time::Duration;

use cookie::Cookie;
use http::{HeaderMap, HeaderValue};

use crate::{
    config::{CookieConfig, Secure},
    error::Error,
    id::SessionId,
    secure::sealed::{self, Sealed},
    store::CookieStore,
};

/// The most bytes of sealed payload per cookie: with the name and attributes, each
/// cookie stays under the 4096 bytes browsers keep.
pub(crate) const CHUNK_LEN: usize = 3800;
/// Separates the chunk count from the first chunk: `N~data`. Not in base64url.
const CHUNK_SEP: char = '~';

/// What the request's cookies say about its session.
#[derive(Debug, Default)]
pub(crate) enum RequestCookie {
    /// No usable cookie.
    #[default]
    None,
    /// A server-side session id; `rotated`: opened with a previous key.
    Id { id: SessionId, rotated: bool },
    /// A client-side session; `chunks`: how many numbered cookies the request held.
    Sealed {
        sealed: Box<Sealed>,
        rotated: bool,
        chunks: usize,
    },
    /// Client-side cookies that did not open; `chunks` of them must be cleared.
    Invalid { chunks: usize },
}

/// Reads the session cookie from raw `Cookie` header values.
///
/// Cookie headers are attacker controlled: malformed pairs and values that are not
/// UTF-8 are skipped (one bad cookie of another application does not hide ours),
/// values that do not decode or verify are ignored, and nothing here panics. If a name
/// is repeated, the first acceptable value wins (browsers send the most specific path
/// first).
pub(crate) fn read<'a>(
    headers: impl IntoIterator<Item = &'a [u8]>,
    config: &CookieConfig,
    client: Option<&CookieStore>,
) -> RequestCookie {
    let pairs = pairs(headers);
    let name = config.name.as_str();
    match client {
        None => pairs
            .filter(|(n, _)| *n == name.as_bytes())
            .find_map(|(_, value)| {
                config
                    .id_cookie
                    .decode(name, std::str::from_utf8(value).ok()?)
            })
            .map_or(RequestCookie::None, |(id, rotated)| RequestCookie::Id {
                id,
                rotated,
            }),
        Some(store) => read_sealed(pairs, name, store),
    }
}

/// The `(name, value)` pairs of raw `Cookie` header values, as the `cookie` crate's
/// `Cookie::split_parse` yields them from UTF-8 text (a property test holds the two
/// equal): pieces between `;`, each split at its first `=`, name and value trimmed of
/// whitespace, pairs with no `=` or an empty name skipped.
///
/// Written out on bytes because a request carries many cookies of which only one
/// matters: `split_parse` builds a whole `Cookie` (attributes and all) for every pair
/// and needs the whole header to be UTF-8, while here only the value that is used gets
/// checked. `;` and `=` never occur inside a multi-byte UTF-8 sequence, so splitting
/// bytes splits the text at the same places.
fn pairs<'a>(
    headers: impl IntoIterator<Item = &'a [u8]>,
) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
    headers
        .into_iter()
        .flat_map(|header| header.split(|&b| b == b';'))
        .filter_map(|piece| {
            let eq = piece.iter().position(|&b| b == b'=')?;
            let (name, value) = (&piece[..eq], &piece[eq + 1..]);
            let name = trim(name)?;
            (!name.is_empty()).then_some((name, trim(value)?))
        })
}

/// `str::trim` on bytes: ASCII whitespace directly, and where a non-ASCII byte is left
/// at either end, through `str` (`None` when that part is not UTF-8).
fn trim(bytes: &[u8]) -> Option<&[u8]> {
    // `char::is_whitespace` below 0x80 (`u8::is_ascii_whitespace` lacks the vertical tab).
    let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let start = bytes.iter().position(|b| !space(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !space(b))
        .map_or(start, |i| i + 1);
    let trimmed = &bytes[start..end];
    match (trimmed.first(), trimmed.last()) {
        (Some(first), Some(last)) if !first.is_ascii() || !last.is_ascii() => {
            std::str::from_utf8(trimmed)
                .ok()
                .map(|text| text.trim().as_bytes())
        }
        _ => Some(trimmed),
    }
}

fn read_sealed<'c>(
    pairs: impl Iterator<Item = (&'c [u8], &'c [u8])>,
    name: &str,
    store: &CookieStore,
) -> RequestCookie {
    let text = |value: &[u8]| std::str::from_utf8(value).ok().map(str::to_owned);
    let mut first: Option<String> = None;
    let mut parts: Vec<Option<String>> = vec![None; store.max_cookies];
    let mut chunks = 0;
    for (cookie, value) in pairs {
        if cookie == name.as_bytes() {
            if first.is_none() {
                first = text(value);
            }
        } else if let Some(ix) = cookie
            .strip_prefix(name.as_bytes())
            .and_then(|rest| rest.strip_prefix(b"."))
            .and_then(|n| std::str::from_utf8(n).ok()?.parse::<usize>().ok())
            .filter(|&i| i >= 1 && i < store.max_cookies)
        {
            chunks = chunks.max(ix);
            if parts[ix].is_none() {
                parts[ix] = text(value);
            }
        }
    }
    let Some(first) = first else {
        return if chunks > 0 {
            RequestCookie::Invalid { chunks }
        } else {
            RequestCookie::None
        };
    };
    let joined = match first.split_once(CHUNK_SEP) {
        None => Some(first),
        Some((n, head)) => n
            .parse::<usize>()
            .ok()
            .filter(|&n| (2..=store.max_cookies).contains(&n))
            .and_then(|n| {
                let mut all = head.to_owned();
                for part in &parts[1..n] {
                    all.push_str(part.as_deref()?);
                }
                Some(all)
            }),
    };
    match joined.and_then(|value| sealed::open(&store.keys, name, &value)) {
        Some((sealed, rotated)) => RequestCookie::Sealed {
            sealed: Box::new(sealed),
            rotated,
            chunks,
        },
        None => RequestCookie::Invalid { chunks },
    }
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
pub(crate) fn set_id_cookie(
    config: &CookieConfig,
    id: &SessionId,
    max_age: Option<Duration>,
    secure: bool,
) -> Option<HeaderValue> {
    let value = config.id_cookie.encode(&config.name, id);
    to_header(&with_age(
        base(config, &config.name, &value, secure),
        max_age,
    ))
}

/// `Set-Cookie` headers for a client-side session: one cookie, or `name` plus numbered
/// chunks, and removals for chunks the browser holds but no longer needs.
pub(crate) fn set_sealed_cookies(
    config: &CookieConfig,
    store: &CookieStore,
    sealed: &Sealed,
    max_age: Option<Duration>,
    secure: bool,
    chunks_before: usize,
) -> Result<Vec<HeaderValue>, Error> {
    let name = config.name.as_str();
    let value = sealed::seal(&store.keys, name, sealed)
        .ok_or_else(|| Error::Config("the session could not be sealed".into()))?;
    let count = value.len().div_ceil(CHUNK_LEN).max(1);
    if count > store.max_cookies {
        return Err(Error::CookieTooLarge {
            size: value.len(),
            limit: store.max_cookies * CHUNK_LEN,
        });
    }
    let mut headers = Vec::with_capacity(count + chunks_before);
    // `value` is base64url: ASCII, so byte slicing is safe.
    let pieces: Vec<&str> = (0..count)
        .map(|i| &value[i * CHUNK_LEN..((i + 1) * CHUNK_LEN).min(value.len())])
        .collect();
    for (i, piece) in pieces.iter().enumerate() {
        let (cookie_name, cookie_value) = match (i, count) {
            (0, 1) => (name.to_owned(), (*piece).to_owned()),
            (0, _) => (name.to_owned(), format!("{count}{CHUNK_SEP}{piece}")),
            _ => (format!("{name}.{i}"), (*piece).to_owned()),
        };
        headers.extend(to_header(&with_age(
            base(config, &cookie_name, &cookie_value, secure),
            max_age,
        )));
    }
    headers.extend(removals(config, secure, count..=chunks_before, false));
    Ok(headers)
}

/// `Set-Cookie` headers that make the browser drop the session cookie and, for
/// client-side sessions, its numbered chunks `1..=chunks`.
pub(crate) fn removal_cookies(
    config: &CookieConfig,
    secure: bool,
    chunks: usize,
) -> Vec<HeaderValue> {
    removals(config, secure, 1..=chunks, true)
}

fn removals(
    config: &CookieConfig,
    secure: bool,
    chunks: std::ops::RangeInclusive<usize>,
    main: bool,
) -> Vec<HeaderValue> {
    let name = config.name.as_str();
    let names = main
        .then(|| name.to_owned())
        .into_iter()
        .chain(chunks.filter(|&i| i >= 1).map(|i| format!("{name}.{i}")));
    names
        .filter_map(|n| {
            let mut cookie = base(config, &n, "", secure);
            cookie.make_removal();
            to_header(&cookie)
        })
        .collect()
}

fn with_age(mut cookie: Cookie<'_>, max_age: Option<Duration>) -> Cookie<'_> {
    if let Some(age) = max_age {
        // Round up: a cookie must not expire before the server-side session does.
        let secs = age.as_millis().div_ceil(1000);
        let secs = i64::try_from(secs).unwrap_or(i64::MAX).max(1);
        cookie.set_max_age(cookie::time::Duration::seconds(secs));
    }
    cookie
}

fn base<'a>(config: &'a CookieConfig, name: &'a str, value: &'a str, secure: bool) -> Cookie<'a> {
    let mut cookie = Cookie::new(name, value);
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
    // Names, ids and payloads are validated or base64url; only a hostile domain or path
    // could fail here, and `SessionsBuilder::build` checks those once.
    HeaderValue::try_from(cookie.to_string()).ok()
}

/// Checks at build time that the configured attributes make a valid header.
pub(crate) fn check_config(config: &CookieConfig) -> Result<(), Error> {
    to_header(&base(config, &config.name, "x", true))
        .map(drop)
        .ok_or_else(|| {
            Error::Config("cookie domain or path holds characters not allowed in a header".into())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::SameSite,
        secure::{IdCookie, Key, Keys},
    };
    use proptest::prelude::*;

    fn config(id_cookie: IdCookie) -> CookieConfig {
        CookieConfig {
            name: "sessio".into(),
            path: "/".into(),
            domain: None,
            secure: Secure::Never,
            http_only: true,
            same_site: SameSite::Lax,
            id_cookie,
        }
    }

    proptest! {
        /// `pairs` yields exactly what `cookie::Cookie::split_parse` does.
        #[test]
        fn pairs_match_the_cookie_crate(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just(" "), Just("\t"), Just(";"), Just("; "), Just("="), Just("=="),
                    Just("sessio"), Just("sessio.1"), Just("a"), Just("v4l"), Just("\""),
                    Just("\u{a0}"), Just("\u{2003}"), Just("é"), Just(","), Just("\0"),
                    Just("\u{b}"), Just("\u{85}"), Just("\u{3000}"), Just("\u{1c}"),
                ],
                0..24,
            )
        ) {
            let header = parts.concat();
            let ours: Vec<(&str, &str)> = pairs([header.as_bytes()])
                .map(|(n, v)| (std::str::from_utf8(n).unwrap(), std::str::from_utf8(v).unwrap()))
                .collect();
            let theirs: Vec<(String, String)> = Cookie::split_parse(header.as_str())
                .filter_map(Result::ok)
                .map(|c| (c.name().to_owned(), c.value().to_owned()))
                .collect();
            let theirs: Vec<(&str, &str)> =
                theirs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            prop_assert_eq!(ours, theirs);
        }
    }

    fn find(header: &[u8]) -> Option<String> {
        match read([header], &config(IdCookie::Plain), None) {
            RequestCookie::Id { id, .. } => Some(id.as_str().to_owned()),
            _ => None,
        }
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
        // Whitespace as `str::trim` sees it, ASCII or not.
        assert_eq!(find(b"\x0b sessio =\tabc\x0b"), Some("abc".into()));
        assert_eq!(
            find("\u{a0}sessio\u{3000}=abc\u{85}".as_bytes()),
            Some("abc".into())
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_hide_only_their_own_cookie() {
        assert_eq!(find(b"other=\xff\xfe; sessio=abc"), Some("abc".into()));
        assert_eq!(
            find(b"sessio=ab\xffc; sessio=second"),
            Some("second".into())
        );
        assert_eq!(find(b"\xffsessio=abc"), None);
        assert_eq!(find(b"sessio\xa0=abc"), None);
        assert_eq!(find(&vec![b'a'; 8192]), None);
    }

    #[test]
    fn oversized_ids_are_ignored() {
        let long = format!("sessio={}", "a".repeat(8000));
        assert_eq!(find(long.as_bytes()), None);
    }

    fn store() -> CookieStore {
        CookieStore::new(Keys::new(Key::from_bytes(&[9; 32]).unwrap())).max_cookies(3)
    }

    fn sealed(size: usize) -> Sealed {
        let mut values = crate::store::Values::default();
        // Incompressible-looking data: sealed size grows with it.
        let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        values.insert("blob", data);
        Sealed {
            id: "abc".into(),
            exp: None,
            values,
        }
    }

    fn header_line(set_cookies: &[HeaderValue]) -> String {
        set_cookies
            .iter()
            .map(|h| h.to_str().unwrap().split(';').next().unwrap().to_owned())
            .filter(|pair| !pair.ends_with('='))
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[test]
    fn sealed_sessions_round_trip_in_one_or_several_cookies() {
        let cfg = config(IdCookie::Plain);
        let store = store();
        for size in [10, 3000, 6000] {
            let s = sealed(size);
            let set = set_sealed_cookies(&cfg, &store, &s, None, false, 0).unwrap();
            assert_eq!(
                set.len(),
                if size < 2000 {
                    1
                } else {
                    size * 4 / 3 / CHUNK_LEN + 1
                }
            );
            for h in &set {
                assert!(h.len() < 4096, "each cookie fits a browser's limit");
            }
            let line = header_line(&set);
            match read([line.as_bytes()], &cfg, Some(&store)) {
                RequestCookie::Sealed {
                    sealed, rotated, ..
                } => {
                    assert_eq!(*sealed, s);
                    assert!(!rotated);
                }
                other => panic!("size {size}: {other:?}"),
            }
        }
    }

    #[test]
    fn too_large_is_an_error_not_a_truncated_cookie() {
        let err = set_sealed_cookies(
            &config(IdCookie::Plain),
            &store(),
            &sealed(20_000),
            None,
            false,
            0,
        )
        .unwrap_err();
        assert!(matches!(err, Error::CookieTooLarge { .. }), "{err}");
    }

    #[test]
    fn a_missing_or_altered_chunk_fails_closed() {
        let cfg = config(IdCookie::Plain);
        let store = store();
        let set = set_sealed_cookies(&cfg, &store, &sealed(6000), None, false, 0).unwrap();
        let line = header_line(&set);
        let without_last = line.rsplit_once("; ").unwrap().0;
        assert!(matches!(
            read([without_last.as_bytes()], &cfg, Some(&store)),
            RequestCookie::Invalid { .. }
        ));
        let swapped = line.replacen("sessio.1=", "sessio.1=A", 1);
        assert!(matches!(
            read([swapped.as_bytes()], &cfg, Some(&store)),
            RequestCookie::Invalid { .. }
        ));
    }

    #[test]
    fn shrinking_removes_stale_chunks() {
        let set = set_sealed_cookies(
            &config(IdCookie::Plain),
            &store(),
            &sealed(10),
            None,
            false,
            2,
        )
        .unwrap();
        let text: Vec<&str> = set.iter().map(|h| h.to_str().unwrap()).collect();
        assert_eq!(set.len(), 3, "{text:?}");
        assert!(text[1].starts_with("sessio.1=") && text[1].contains("Max-Age=0"));
        assert!(text[2].starts_with("sessio.2=") && text[2].contains("Max-Age=0"));
    }

    proptest! {
        #[test]
        fn any_header_parses_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            if let Some(id) = find(&bytes) {
                prop_assert!(SessionId::parse(&id).is_some());
            }
            let _ = read([&bytes[..]], &config(IdCookie::Plain), Some(&store()));
        }

        #[test]
        fn a_valid_id_is_found_among_noise(
            pre in "[a-z]{1,8}=[a-z0-9]{0,8}",
            id in "[A-Za-z0-9_-]{1,64}",
        ) {
            let header = format!("{pre}; sessio={id}; z=1");
            prop_assert_eq!(find(header.as_bytes()), Some(id));
        }

        #[test]
        fn any_bit_flip_in_a_sealed_cookie_is_rejected(bit in 0usize..40_000) {
            let cfg = config(IdCookie::Plain);
            let store = store();
            let set = set_sealed_cookies(&cfg, &store, &sealed(3000), None, false, 0).unwrap();
            let line = header_line(&set);
            let mut bytes = line.clone().into_bytes();
            let bit = bit % (bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            if bytes != line.as_bytes() {
                if let RequestCookie::Sealed { sealed: got, .. } = read([&bytes[..]], &cfg, Some(&store)) {
                    // Only a flip outside the session's cookies (e.g. in a separator that
                    // still parses the same) may leave it readable, and then unchanged.
                    prop_assert_eq!(*got, sealed(3000));
                }
            }
        }
    }
}
