//! Helpers shared by this crate's integration tests.

// Each test binary includes this module as its own `mod support`.
#![allow(unreachable_pub)]

use http::{header::COOKIE, HeaderMap, HeaderValue};

/// The `Cookie` header a browser sends back after this `Set-Cookie`.
pub fn cookie_header(set_cookie: &HeaderValue) -> HeaderMap {
    let pair = set_cookie
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let mut headers = HeaderMap::new();
    headers.insert(COOKIE, HeaderValue::from_str(&pair).expect("valid"));
    headers
}
