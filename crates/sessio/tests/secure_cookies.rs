//! Signed and encrypted id cookies, key rotation end to end, and client-side sessions.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use http::{header::COOKIE, HeaderMap, HeaderValue};
use sessio::{
    secure::{IdCookie, Key, Keys},
    store::CookieStore,
    Error, MemoryStore, Sessions, StoreErrorKind,
};

fn key(seed: u8) -> Key {
    Key::from_bytes(&[seed; 32]).unwrap()
}

/// The `Cookie` header a browser would send after these `Set-Cookie`s.
fn jar(set_cookies: &[HeaderValue]) -> HeaderMap {
    let pairs: Vec<String> = set_cookies
        .iter()
        .map(|h| h.to_str().unwrap().split(';').next().unwrap().to_owned())
        .filter(|p| !p.ends_with('='))
        .collect();
    let mut headers = HeaderMap::new();
    if !pairs.is_empty() {
        headers.insert(COOKIE, HeaderValue::from_str(&pairs.join("; ")).unwrap());
    }
    headers
}

async fn new_session_cookie(sessions: &Sessions) -> HeaderMap {
    let s = sessions.start(&HeaderMap::new()).await.unwrap();
    s.set("user", "kataras").unwrap();
    jar(&s.finish().await.unwrap())
}

async fn user(sessions: &Sessions, cookie: &HeaderMap) -> Option<String> {
    sessions.start(cookie).await.unwrap().get("user").unwrap()
}

#[test]
fn short_keys_are_refused_at_build_time() {
    let err = Key::from_bytes(&[1; 31]).unwrap_err();
    assert!(err.to_string().contains("at least 32 bytes"), "{err}");
    assert!(Key::from_base64("c2hvcnQ=").is_err());
    assert!(Keys::from_base64_list("").is_err());
    assert!(Keys::from_base64_list("not base64!!").is_err());
    let b64 = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=";
    assert_eq!(
        Keys::from_base64_list(&format!("{b64},{b64}"))
            .unwrap()
            .len(),
        2
    );
    let dir = std::env::temp_dir().join(format!("sessio-keys-{}", std::process::id()));
    std::fs::write(&dir, format!("{b64}\n{b64}\n")).unwrap();
    assert_eq!(Keys::from_file(&dir).unwrap().len(), 2);
    std::fs::remove_file(&dir).unwrap();
    assert!(Keys::from_file("/nonexistent/keys").is_err());
}

#[tokio::test]
async fn signed_and_encrypted_ids_reject_tampering() {
    for protect in [
        IdCookie::Signed(Keys::new(key(1))),
        IdCookie::Encrypted(Keys::new(key(1))),
    ] {
        let sessions = Sessions::builder().id_cookie(protect).build().unwrap();
        let cookie = new_session_cookie(&sessions).await;
        assert_eq!(user(&sessions, &cookie).await.as_deref(), Some("kataras"));
        let text = cookie[COOKIE].to_str().unwrap().to_owned();
        // Flip one character of the value, anywhere.
        let start = "sessio=".len();
        for i in start..text.len() {
            let mut bytes = text.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let mut forged = HeaderMap::new();
            forged.insert(COOKIE, HeaderValue::from_bytes(&bytes).unwrap());
            let s = sessions.start(&forged).await.unwrap();
            assert!(s.is_new(), "tampered byte {i} was accepted");
        }
        // A plain id of a live session is refused too: the id alone is not enough.
        let store_key = sessions.keys(None, 10).await.unwrap().keys[0].clone();
        let mut bare = HeaderMap::new();
        bare.insert(
            COOKIE,
            HeaderValue::from_str(&format!("sessio={}", store_key.as_str())).unwrap(),
        );
        assert!(sessions.start(&bare).await.unwrap().is_new());
    }
}

#[tokio::test]
async fn rotation_end_to_end() {
    for encrypted in [false, true] {
        let store = MemoryStore::new();
        let with = |keys: Keys| {
            let b = Sessions::builder().store(store.clone());
            if encrypted {
                b.encrypted_ids(keys)
            } else {
                b.signed_ids(keys)
            }
            .build()
            .unwrap()
        };
        let a = with(Keys::new(key(b'A')));
        let ba = with(Keys::new(key(b'B')).with_previous(key(b'A')));
        let cb = with(Keys::new(key(b'C')).with_previous(key(b'B')));

        let under_a = new_session_cookie(&a).await;
        // Rotated to [B, A]: still works, and is re-issued under B even on a read.
        let s = ba.start(&under_a).await.unwrap();
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("kataras"));
        let reissued = s.finish().await.unwrap();
        assert_eq!(reissued.len(), 1, "a cookie under an old key is re-issued");
        let under_b = jar(&reissued);
        assert_ne!(under_a, under_b);
        // Re-issued under B: not re-issued again.
        let s = ba.start(&under_b).await.unwrap();
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("kataras"));
        assert!(s.finish().await.unwrap().is_empty());
        // Rotated to [C, B]: the A cookie is dead, the B cookie lives.
        assert!(cb.start(&under_a).await.unwrap().is_new());
        assert_eq!(user(&cb, &under_b).await.as_deref(), Some("kataras"));
    }
}

fn client_side(idle: Option<Duration>, max_cookies: usize) -> Sessions {
    Sessions::builder()
        .cookie_store(CookieStore::new(Keys::new(key(7))).max_cookies(max_cookies))
        .idle_timeout(idle)
        .build()
        .unwrap()
}

#[tokio::test]
async fn cookie_store_keeps_the_session_in_the_cookie() {
    let sessions = client_side(Some(Duration::from_secs(60)), 4);
    let s = sessions.start(&HeaderMap::new()).await.unwrap();
    assert!(s.is_new());
    s.get::<String>("x").unwrap();
    assert!(s.finish().await.unwrap().is_empty(), "reads set no cookie");
    let s = sessions.start(&HeaderMap::new()).await.unwrap();
    s.set("user", "kataras").unwrap();
    s.set_immutable("role", "admin").unwrap();
    s.set_flash("notice", "hi").unwrap();
    let id = s.id();
    let set = s.finish().await.unwrap();
    assert_eq!(set.len(), 1);
    assert!(set[0].to_str().unwrap().contains("HttpOnly"));
    let cookie = jar(&set);
    let s = sessions.start(&cookie).await.unwrap();
    assert!(!s.is_new());
    assert_eq!(s.id(), id, "the id is stable across requests");
    assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("kataras"));
    assert!(matches!(
        s.set("role", "user"),
        Err(Error::Immutable { .. })
    ));
    assert_eq!(
        s.get_flash::<String>("notice").unwrap().as_deref(),
        Some("hi")
    );
    let cookie = jar(&s.finish().await.unwrap());
    let s = sessions.start(&cookie).await.unwrap();
    assert_eq!(
        s.get_flash::<String>("notice").unwrap(),
        None,
        "flash consumed"
    );
    // Destroy expires the cookie.
    s.destroy();
    let set = s.finish().await.unwrap();
    assert!(set[0].to_str().unwrap().contains("Max-Age=0"));
}

#[tokio::test]
async fn cookie_store_refuses_what_it_cannot_do() {
    let sessions = client_side(None, 4);
    let unsupported =
        |e: Error| matches!(e, Error::Store(ref s) if *s.kind() == StoreErrorKind::Unsupported);
    let s = sessions.start(&HeaderMap::new()).await.unwrap();
    let err = s.increment("n", 1).await.unwrap_err();
    assert!(err.to_string().contains("does not support"), "{err}");
    assert!(unsupported(err));
    assert!(unsupported(s.decrement("n", 1).await.unwrap_err()));
    assert!(unsupported(
        sessions.destroy_by_id(s.id().as_str()).await.unwrap_err()
    ));
    assert!(unsupported(sessions.destroy_all().await.unwrap_err()));
    assert!(unsupported(sessions.count().await.unwrap_err()));
    assert!(unsupported(sessions.keys(None, 10).await.unwrap_err()));
}

#[tokio::test]
async fn cookie_store_expiry_is_inside_the_payload() {
    let sessions = client_side(Some(Duration::from_secs(1)), 4);
    let copy = new_session_cookie(&sessions).await;
    assert_eq!(user(&sessions, &copy).await.as_deref(), Some("kataras"));
    tokio::time::sleep(Duration::from_millis(1300)).await;
    // The browser would have dropped it; a copied cookie replayed later opens nothing.
    assert!(sessions.start(&copy).await.unwrap().is_new());
}

#[tokio::test]
async fn cookie_store_chunks_and_refuses_oversized_sessions() {
    let sessions = client_side(None, 3);
    let s = sessions.start(&HeaderMap::new()).await.unwrap();
    let big: String = (0..6000)
        .map(|i| char::from(b'a' + (i * 7 % 26) as u8))
        .collect();
    s.set("big", &big).unwrap();
    let set = s.finish().await.unwrap();
    assert!(set.len() >= 2, "spread over numbered cookies");
    assert!(set.iter().all(|h| h.len() < 4096));
    let cookie = jar(&set);
    let s = sessions.start(&cookie).await.unwrap();
    assert_eq!(
        s.get::<String>("big").unwrap().as_deref(),
        Some(big.as_str())
    );
    // Shrinking clears the chunk cookies the browser no longer needs.
    s.delete("big").unwrap();
    let set = s.finish().await.unwrap();
    let text: Vec<&str> = set.iter().map(|h| h.to_str().unwrap()).collect();
    assert!(
        text[1..].iter().all(|c| c.contains("Max-Age=0")),
        "{text:?}"
    );
    // Too large for three cookies: a clear error, no truncated cookie.
    let s = sessions.start(&HeaderMap::new()).await.unwrap();
    s.set("huge", &big.repeat(3)).unwrap();
    assert!(matches!(
        s.finish().await,
        Err(Error::CookieTooLarge { .. })
    ));
}

#[tokio::test]
async fn cookie_store_rotation() {
    let a = Sessions::builder()
        .cookie_store(CookieStore::new(Keys::new(key(1))))
        .build()
        .unwrap();
    let ba = Sessions::builder()
        .cookie_store(CookieStore::new(Keys::new(key(2)).with_previous(key(1))))
        .build()
        .unwrap();
    let cb = Sessions::builder()
        .cookie_store(CookieStore::new(Keys::new(key(3)).with_previous(key(2))))
        .build()
        .unwrap();
    let under_a = new_session_cookie(&a).await;
    let s = ba.start(&under_a).await.unwrap();
    assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("kataras"));
    let under_b = jar(&s.finish().await.unwrap());
    assert!(cb.start(&under_a).await.unwrap().is_new());
    assert_eq!(user(&cb, &under_b).await.as_deref(), Some("kataras"));
}

#[tokio::test]
async fn message_pack_codec_round_trips_through_a_store() {
    let sessions = Sessions::builder()
        .codec(sessio::Codec::MessagePack)
        .build()
        .unwrap();
    let s = sessions.start(&HeaderMap::new()).await.unwrap();
    s.set("list", &vec![1, 2, 3]).unwrap();
    assert_eq!(s.increment("n", 2).await.unwrap(), 2);
    let cookie = jar(&s.finish().await.unwrap());
    let s = sessions.start(&cookie).await.unwrap();
    assert_eq!(s.get::<Vec<i32>>("list").unwrap(), Some(vec![1, 2, 3]));
    assert_eq!(s.get::<i64>("n").unwrap(), Some(2));
    assert_eq!(s.get_all().unwrap()["list"], serde_json::json!([1, 2, 3]));
}
