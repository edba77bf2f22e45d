//! The middleware in-process (`actix_web::test`): commit after the handler, cookies,
//! 503s, reclaim, and no cost for handlers that do not use the session. The same cases
//! as `sessio-axum/tests/layer.rs`; the HTTP-level suite shared by both adapters is
//! `sessio-demo/tests/http.rs`.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use actix_web::{
    body::MessageBody,
    dev::{Service, ServiceResponse},
    http::{header, StatusCode},
    test, web, App,
};
use sessio::{store::FaultyStore, MemoryStore, Secure, Sessions, StoreError, StoreOp};
use sessio_actix::{Error, Session, SessionMiddleware, SessionsExt};

async fn write(session: Session) -> Result<&'static str, Error> {
    session.set("a", &1)?;
    Ok("written")
}

async fn read(session: Session) -> Result<String, Error> {
    Ok(format!("{:?}", session.get::<i64>("a")?))
}

async fn twice(first: Session, second: Session) -> Result<String, Error> {
    first.set("a", &41)?;
    // Reclaim: the second extraction is the same session and sees the write.
    let seen: Option<i64> = second.get("a")?;
    Ok(format!("{seen:?} {}", first.id() == second.id()))
}

fn sessions(store: Arc<FaultyStore>, secure: Secure) -> Sessions {
    Sessions::builder()
        .shared_store(store)
        .secure(secure)
        .build()
        .unwrap()
}

async fn app(
    store: Arc<FaultyStore>,
    secure: Secure,
) -> impl Service<
    actix_http::Request,
    Response = ServiceResponse<impl MessageBody>,
    Error = actix_web::Error,
> {
    test::init_service(
        App::new()
            .wrap(sessions(store, secure).middleware())
            .route("/plain", web::get().to(|| async { "plain" }))
            .route("/write", web::get().to(write))
            .route("/read", web::get().to(read))
            .route("/twice", web::get().to(twice)),
    )
    .await
}

async fn call<S, B>(
    app: &S,
    uri: &str,
    cookie: Option<&str>,
) -> (StatusCode, Option<String>, String)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut req = test::TestRequest::get().uri(uri);
    if let Some(c) = cookie {
        req = req.insert_header((header::COOKIE, c));
    }
    let res = test::call_service(app, req.to_request()).await;
    let status = res.status();
    let cookie = res
        .headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = test::read_body(res).await;
    (status, cookie, String::from_utf8(body.to_vec()).unwrap())
}

fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

#[actix_web::test]
async fn handlers_without_session_never_touch_the_store() {
    let store = Arc::new(FaultyStore::new(MemoryStore::new()));
    let app = app(store.clone(), Secure::Never).await;
    let (status, cookie, _) = call(&app, "/plain", Some("sessio=AAAAAAAAAAAAAAAAAAAAAA")).await;
    assert_eq!((status, cookie), (StatusCode::OK, None));
    assert_eq!(store.calls(), 0);
}

#[actix_web::test]
async fn commit_after_handler_sets_cookie_once() {
    let store = Arc::new(FaultyStore::new(MemoryStore::new()));
    let app = app(store.clone(), Secure::Never).await;
    let (status, cookie, _) = call(&app, "/write", None).await;
    assert_eq!(status, StatusCode::OK);
    let cookie = pair(&cookie.expect("new session cookie"));
    let (_, again, body) = call(&app, "/read", Some(&cookie)).await;
    assert_eq!(body, "Some(1)");
    assert_eq!(again, None, "a read sends no cookie");
    let (_, again, _) = call(&app, "/write", Some(&cookie)).await;
    assert_eq!(again, None, "a write to a known session keeps its cookie");
}

#[actix_web::test]
async fn store_down_is_a_503_not_a_panic() {
    let store = Arc::new(FaultyStore::new(MemoryStore::new()));
    let app = app(store.clone(), Secure::Never).await;
    let (_, cookie, _) = call(&app, "/write", None).await;
    let cookie = pair(&cookie.unwrap());
    store.set_down(true);
    let (status, set, body) = call(&app, "/read", Some(&cookie)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "load failure");
    assert_eq!(set, None);
    assert_eq!(body, "Service Unavailable", "no details for the client");
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

#[actix_web::test]
async fn error_status_is_configurable() {
    let store = Arc::new(FaultyStore::new(MemoryStore::new()));
    store.set_down(true);
    let app = test::init_service(
        App::new()
            .wrap(
                SessionMiddleware::new(sessions(store, Secure::Never))
                    .error_status(StatusCode::INTERNAL_SERVER_ERROR),
            )
            .route(
                "/",
                web::get().to(|session: Session| async move {
                    let _ = session.set("a", &1);
                    "ok"
                }),
            ),
    )
    .await;
    // The load itself fails only with a cookie; a new session fails at commit.
    let (status, set, _) = call(&app, "/", None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(set, None, "no cookie for a session that was not stored");
}

#[actix_web::test]
async fn every_extraction_in_a_request_shares_one_session() {
    let app = app(
        Arc::new(FaultyStore::new(MemoryStore::new())),
        Secure::Never,
    )
    .await;
    let (status, _, body) = call(&app, "/twice", None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "Some(41) true"));
}

#[actix_web::test]
async fn missing_middleware_is_a_500() {
    let app = test::init_service(
        App::new().route("/", web::get().to(|_s: Session| async { "unreachable" })),
    )
    .await;
    let (status, _, _) = call(&app, "/", None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[actix_web::test]
async fn secure_attribute_follows_the_mode() {
    async fn secure(mode: Secure, uri: &str, proto: Option<&str>) -> bool {
        let app = app(Arc::new(FaultyStore::new(MemoryStore::new())), mode).await;
        let mut req = test::TestRequest::get().uri(uri);
        if let Some(p) = proto {
            req = req.insert_header(("x-forwarded-proto", p));
        }
        let res = test::call_service(&app, req.to_request()).await;
        res.headers()
            .get(header::SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("Secure")
    }
    assert!(secure(Secure::Always, "/write", None).await);
    assert!(!secure(Secure::Never, "/write", Some("https")).await);
    assert!(
        !secure(Secure::AutoTlsOnly, "/write", Some("https")).await,
        "untrusted proxy header"
    );
    let trusted = Secure::Auto {
        trust_forwarded_proto: true,
    };
    assert!(secure(trusted, "/write", Some("https")).await);
    assert!(!secure(trusted, "/write", Some("http")).await);
    // An absolute https URI means the connection itself was TLS.
    assert!(secure(Secure::AutoTlsOnly, "https://example.com/write", None).await);
}

#[actix_web::test]
async fn store_errors_in_handlers_map_to_503_and_others_to_500() {
    use actix_web::ResponseError;
    let unavailable = Error::from(sessio::Error::from(StoreError::unavailable(
        "flaky",
        StoreOp::Load,
        "down",
    )));
    assert_eq!(unavailable.status_code(), StatusCode::SERVICE_UNAVAILABLE);
    let immutable = Error::from(sessio::Error::Immutable { key: "k".into() });
    assert_eq!(immutable.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(std::error::Error::source(&unavailable).is_some());
}

struct Prefs;
impl sessio_actix::SessionName for Prefs {
    const COOKIE_NAME: &'static str = "prefs";
}

fn prefs_manager() -> Sessions {
    use sessio::{
        secure::{Key, Keys},
        store::CookieStore,
    };
    Sessions::builder()
        .cookie_name("prefs")
        .cookie_store(CookieStore::new(Keys::new(Key::generate())))
        .build()
        .unwrap()
}

#[actix_web::test]
async fn two_managers_with_different_cookies_in_one_handler() {
    use sessio_actix::SessionOf;
    let users = Sessions::builder().build().unwrap();
    let app = test::init_service(
        App::new()
            .wrap(users.middleware())
            .wrap(prefs_manager().middleware())
            .route(
                "/",
                web::get().to(|user: Session, prefs: SessionOf<Prefs>| async move {
                    let visits = user.increment("visits", 1).await?;
                    let theme: String = prefs.get_or("theme", "light".to_owned())?;
                    prefs.set("theme", "dark")?;
                    Ok::<_, Error>(format!("{visits} {theme}"))
                }),
            ),
    )
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    let cookies: Vec<String> = res
        .headers()
        .get_all(header::SET_COOKIE)
        .map(|v| pair(v.to_str().unwrap()))
        .collect();
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(cookies.iter().any(|c| c.starts_with("sessio=")));
    assert!(cookies.iter().any(|c| c.starts_with("prefs=")));
    assert_eq!(test::read_body(res).await, "1 light");
    let (_, _, body) = call(&app, "/", Some(&cookies.join("; "))).await;
    assert_eq!(body, "2 dark");
}

#[actix_web::test]
async fn missing_named_middleware_is_a_500() {
    use sessio_actix::SessionOf;
    let app = test::init_service(
        App::new()
            .wrap(Sessions::builder().build().unwrap().middleware())
            .route(
                "/",
                web::get().to(|_s: SessionOf<Prefs>| async { "unreachable" }),
            ),
    )
    .await;
    let (status, _, _) = call(&app, "/", None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[actix_web::test]
async fn a_session_too_large_for_its_cookies_is_a_413_at_commit() {
    let app = test::init_service(App::new().wrap(prefs_manager().middleware()).route(
        "/",
        web::get().to(|s: Session| async move {
            s.set("big", &"x".repeat(64 * 1024))?;
            Ok::<_, Error>("handler said ok")
        }),
    ))
    .await;
    let (status, set, body) = call(&app, "/", None).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(set, None);
    assert_eq!(body, "the session could not be saved");
}
