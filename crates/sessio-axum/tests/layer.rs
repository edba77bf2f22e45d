//! The layer in-process (tower `oneshot`): commit after the handler, cookies, 503s,
//! reclaim, and no cost for handlers that do not use the session.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::{body::Body, routing::get, Router};
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use sessio::{store::FaultyStore, MemoryStore, Secure, Session, Sessions};
use sessio_axum::{SessionLayer, SessionsExt};
use tower::ServiceExt;

fn app(store: Arc<FaultyStore>, secure: Secure) -> Router {
    let sessions = Sessions::builder()
        .shared_store(store)
        .secure(secure)
        .build()
        .unwrap();
    Router::new()
        .route("/plain", get(|| async { "plain" }))
        .route(
            "/write",
            get(|session: Session| async move {
                session.set("a", &1)?;
                Ok::<_, sessio::Error>("written")
            }),
        )
        .route(
            "/read",
            get(|session: Session| async move {
                Ok::<_, sessio::Error>(format!("{:?}", session.get::<i64>("a")?))
            }),
        )
        .route(
            "/twice",
            get(|first: Session, second: Session| async move {
                first.set("a", &41)?;
                // Reclaim: the second extraction is the same session and sees the write.
                let seen: Option<i64> = second.get("a")?;
                Ok::<_, sessio::Error>(format!("{seen:?} {}", first.id() == second.id()))
            }),
        )
        .layer(sessions.layer())
}

async fn call(
    app: &Router,
    uri: &str,
    cookie: Option<&str>,
) -> (StatusCode, Option<String>, String) {
    let mut req = Request::builder().uri(uri);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let cookie = res
        .headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, cookie, String::from_utf8(body.to_vec()).unwrap())
}

fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn handlers_without_session_never_touch_the_store() {
    let store = Arc::new(FaultyStore::new(MemoryStore::new()));
    let app = app(store.clone(), Secure::Never);
    let (status, cookie, _) = call(&app, "/plain", Some("sessio=AAAAAAAAAAAAAAAAAAAAAA")).await;
    assert_eq!((status, cookie), (StatusCode::OK, None));
    assert_eq!(store.calls(), 0);
}

#[tokio::test]
async fn commit_after_handler_sets_cookie_once() {
    let store = Arc::new(FaultyStore::new(MemoryStore::new()));
    let app = app(store.clone(), Secure::Never);
    let (status, cookie, _) = call(&app, "/write", None).await;
    assert_eq!(status, StatusCode::OK);
    let cookie = pair(&cookie.expect("new session cookie"));
    let (_, again, body) = call(&app, "/read", Some(&cookie)).await;
    assert_eq!(body, "Some(1)");
    assert_eq!(again, None, "a read sends no cookie");
    let (_, again, _) = call(&app, "/write", Some(&cookie)).await;
    assert_eq!(again, None, "a write to a known session keeps its cookie");
}

#[tokio::test]
async fn store_down_is_a_503_not_a_panic() {
    let store = Arc::new(FaultyStore::new(MemoryStore::new()));
    let app = app(store.clone(), Secure::Never);
    let (_, cookie, _) = call(&app, "/write", None).await;
    let cookie = pair(&cookie.unwrap());
    store.set_down(true);
    let (status, set, _) = call(&app, "/read", Some(&cookie)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "load failure");
    assert_eq!(set, None);
    let (status, _, _) = call(&app, "/write", None).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "commit failure after the handler"
    );
    let (status, _, _) = call(&app, "/plain", Some(&cookie)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "routes without session keep working"
    );
    store.set_down(false);
    let (status, _, body) = call(&app, "/read", Some(&cookie)).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "Some(1)"),
        "recovers by itself"
    );
}

#[tokio::test]
async fn error_status_is_configurable() {
    let store = Arc::new(FaultyStore::new(MemoryStore::new()));
    store.set_down(true);
    let sessions = Sessions::builder().shared_store(store).build().unwrap();
    let app = Router::new()
        .route(
            "/",
            get(|session: Session| async move {
                let _ = session.set("a", &1);
                "ok"
            }),
        )
        .layer(SessionLayer::new(sessions).error_status(StatusCode::INTERNAL_SERVER_ERROR));
    // The load itself fails only with a cookie; a new session fails at commit.
    let (status, _, _) = call(&app, "/", None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn every_extraction_in_a_request_shares_one_session() {
    let app = app(
        Arc::new(FaultyStore::new(MemoryStore::new())),
        Secure::Never,
    );
    let (status, _, body) = call(&app, "/twice", None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "Some(41) true"));
}

#[tokio::test]
async fn missing_layer_is_a_500_with_a_clear_log() {
    let app: Router = Router::new().route("/", get(|_s: Session| async { "unreachable" }));
    let (status, _, _) = call(&app, "/", None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn secure_attribute_follows_the_mode() {
    let https = |app: Router, proto: Option<&'static str>| async move {
        let mut req = Request::builder().uri("/write");
        if let Some(p) = proto {
            req = req.header("x-forwarded-proto", p);
        }
        let res = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        res.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Secure")
    };
    let store = || Arc::new(FaultyStore::new(MemoryStore::new()));
    assert!(https(app(store(), Secure::Always), None).await);
    assert!(!https(app(store(), Secure::Never), Some("https")).await);
    assert!(
        !https(app(store(), Secure::AutoTlsOnly), Some("https")).await,
        "untrusted proxy header"
    );
    let trusted = Secure::Auto {
        trust_forwarded_proto: true,
    };
    assert!(https(app(store(), trusted), Some("https")).await);
    assert!(!https(app(store(), trusted), Some("http")).await);
    // An absolute https URI means the connection itself was TLS.
    let app = app(store(), Secure::AutoTlsOnly);
    let req = Request::builder()
        .uri("https://example.com/write")
        .body(Body::empty())
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    assert!(res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Secure"));
}

struct Prefs;
impl sessio::SessionName for Prefs {
    const COOKIE_NAME: &'static str = "prefs";
}

#[tokio::test]
async fn two_managers_with_different_cookies_in_one_handler() {
    use sessio::{
        secure::{Key, Keys},
        store::CookieStore,
        SessionOf,
    };
    let users = Sessions::builder().build().unwrap();
    let prefs = Sessions::builder()
        .cookie_name("prefs")
        .cookie_store(CookieStore::new(Keys::new(Key::generate())))
        .build()
        .unwrap();
    let app: Router = Router::new()
        .route(
            "/",
            get(|user: Session, prefs: SessionOf<Prefs>| async move {
                let visits = user.increment("visits", 1).await?;
                let theme: String = prefs.get_or("theme", "light".to_owned())?;
                prefs.set("theme", "dark")?;
                Ok::<_, sessio::Error>(format!("{visits} {theme}"))
            }),
        )
        .layer(users.layer())
        .layer(SessionLayer::new(prefs));
    let res = app
        .clone()
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let cookies: Vec<String> = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| pair(v.to_str().unwrap()))
        .collect();
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(cookies.iter().any(|c| c.starts_with("sessio=")));
    assert!(cookies.iter().any(|c| c.starts_with("prefs=")));
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"1 light");
    let (_, _, body) = call(&app, "/", Some(&cookies.join("; "))).await;
    assert_eq!(body, "2 dark");
}
