//! Client-side sessions: the sealed payload and its chunked cookies, through the
//! public entry point that adapters use. Nothing panics; garbage gives a fresh session.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessio::{
    secure::{Key, Keys},
    store::CookieStore,
    Sessions,
};

fuzz_target!(|data: &[u8]| {
    let sessions = Sessions::builder()
        .cookie_store(CookieStore::new(Keys::new(Key::from_bytes(&[3; 32]).unwrap())).max_cookies(3))
        .build()
        .unwrap();
    // The input is a whole Cookie header, and also the value of `sessio` alone.
    let mut as_value = b"sessio=".to_vec();
    as_value.extend_from_slice(data);
    for header in [data, &as_value[..]] {
        let lazy = sessions.lazy_from_cookie_headers([header], false);
        let session = poll_once(lazy.load()).expect("loading a client-side session never fails");
        assert!(session.is_new(), "random bytes never open a sealed session");
    }
});

/// The load of a client-side session completes without waiting on anything.
fn poll_once<F: std::future::Future>(fut: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut fut = std::pin::pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a client-side load must not wait"),
    }
}
