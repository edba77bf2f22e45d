//! Runs every example: each example file is compiled into this test as a module, its
//! app is served on a free port (or, for actix, called in-process) and driven the way
//! its doc comment says a person would.

#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "../examples/overview.rs"]
mod overview;

#[allow(dead_code)]
#[path = "../examples/actix_overview.rs"]
mod actix_overview;

#[allow(dead_code)]
#[path = "../examples/flash_messages.rs"]
mod flash_messages;

#[allow(dead_code)]
#[path = "../examples/multiple_sessions.rs"]
mod multiple_sessions;

#[allow(dead_code)]
#[path = "../examples/standalone.rs"]
mod standalone;

#[allow(dead_code)]
#[path = "../examples/securecookie.rs"]
mod securecookie;

#[allow(dead_code)]
#[path = "../examples/database_redb.rs"]
mod database_redb;

#[allow(dead_code)]
#[path = "../examples/database_redis.rs"]
mod database_redis;

#[allow(dead_code)]
#[path = "../examples/database_sql.rs"]
mod database_sql;

use std::time::Duration;

use sessio::Sessions;

/// Serves an axum router on a free port; returns its base URL.
async fn serve_axum(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// A client with a cookie jar: one browser.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn get(client: &reqwest::Client, url: String) -> (u16, String) {
    let res = client.get(url).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

fn set_cookies(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn overview_login_secret_logout() {
    let sessions = Sessions::builder()
        .cookie_name(overview::COOKIE)
        .build()
        .unwrap();
    let base = serve_axum(overview::app(&sessions)).await;
    let b = browser();
    assert_eq!(
        get(&b, format!("{base}/secret")).await,
        (403, "Forbidden".into())
    );
    let res = b.get(format!("{base}/login")).send().await.unwrap();
    assert!(set_cookies(&res)[0].starts_with("mycookiesessionnameid="));
    assert_eq!(
        get(&b, format!("{base}/secret")).await,
        (200, "The cake is a lie!".into())
    );
    assert_eq!(get(&b, format!("{base}/logout")).await.0, 200);
    assert_eq!(get(&b, format!("{base}/secret")).await.0, 403);
}

#[actix_web::test]
async fn actix_overview_login_secret_logout() {
    use actix_web::test;
    let sessions = Sessions::builder()
        .cookie_name(actix_overview::COOKIE)
        .build()
        .unwrap();
    let app = test::init_service(actix_overview::app(&sessions)).await;
    let req = |path: &str, cookie: Option<&str>| {
        let mut r = test::TestRequest::get().uri(path);
        if let Some(c) = cookie {
            r = r.insert_header(("cookie", c));
        }
        r.to_request()
    };
    let res = test::call_service(&app, req("/secret", None)).await;
    assert_eq!(res.status(), 403);
    assert_eq!(test::read_body(res).await, "Forbidden");
    let res = test::call_service(&app, req("/login", None)).await;
    assert_eq!(res.status(), 200);
    let set = res.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(set.starts_with("mycookiesessionnameid="), "{set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    let res = test::call_service(&app, req("/secret", Some(&cookie))).await;
    assert_eq!(res.status(), 200);
    assert_eq!(test::read_body(res).await, "The cake is a lie!");
    let res = test::call_service(&app, req("/logout", Some(&cookie))).await;
    assert_eq!(res.status(), 200);
    let res = test::call_service(&app, req("/secret", Some(&cookie))).await;
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn flash_messages_live_until_read() {
    let sessions = Sessions::builder().build().unwrap();
    let base = serve_axum(flash_messages::app(&sessions)).await;
    let b = browser();
    assert_eq!(
        get(&b, format!("{base}/get")).await,
        (200, "Empty name!!".into())
    );
    get(&b, format!("{base}/set")).await;
    assert_eq!(
        get(&b, format!("{base}/peek")).await,
        (200, "Hello iris".into())
    );
    assert_eq!(
        get(&b, format!("{base}/get")).await,
        (200, "Hello iris".into())
    );
    assert_eq!(
        get(&b, format!("{base}/get")).await,
        (200, "Empty name!!".into()),
        "read once, gone"
    );
    get(&b, format!("{base}/set")).await;
    let (_, body) = get(&b, format!("{base}/test")).await;
    assert_eq!(
        body,
        "Ok you are coming from /set, the value of the name is iris, and again from the same request: iris"
    );
    assert_eq!(
        get(&b, format!("{base}/test")).await,
        (200, "Empty name!!".into())
    );
}

#[tokio::test]
async fn multiple_sessions_keep_separate_cookies_and_lives() {
    let (user, prefs) = multiple_sessions::managers().unwrap();
    let base = serve_axum(multiple_sessions::app(&user, &prefs)).await;
    let b = browser();
    let res = b
        .get(format!("{base}/set?user=kataras&theme=dark"))
        .send()
        .await
        .unwrap();
    let mut names: Vec<String> = set_cookies(&res)
        .iter()
        .map(|c| c.split('=').next().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["prefs", "user_session"]);
    assert_eq!(
        get(&b, format!("{base}/get")).await,
        (200, "user: kataras, theme: dark".into())
    );
    assert_eq!(user.count().await.unwrap(), 1);
    get(&b, format!("{base}/logout")).await;
    assert_eq!(
        get(&b, format!("{base}/get")).await,
        (200, "user: -, theme: dark".into()),
        "logging out leaves the preferences"
    );
}

#[tokio::test]
async fn standalone_hyper_set_get_clear_destroy() {
    let sessions = Sessions::builder().build().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(standalone::serve(listener, sessions.clone()));
    let b = browser();
    let raw = reqwest::Client::new();
    let res = raw.get(format!("{base}/")).send().await.unwrap();
    assert!(set_cookies(&res).is_empty(), "no session, no cookie");
    assert_eq!(
        res.text().await.unwrap(),
        "Please navigate to /set or /get or /clear or /destroy"
    );
    let res = raw.get(format!("{base}/get")).send().await.unwrap();
    assert!(set_cookies(&res).is_empty(), "a read creates nothing");
    assert_eq!(sessions.count().await.unwrap(), 0);
    assert_eq!(
        get(&b, format!("{base}/set")).await,
        (200, "Session saved, go to /get to view the results".into())
    );
    assert_eq!(
        get(&b, format!("{base}/get")).await.1,
        r#"{"Days": String("1"), "Name": String("go-sessions"), "Secret": String("dsads£2132215£%%Ssdsa")}"#
    );
    get(&b, format!("{base}/clear")).await;
    assert_eq!(get(&b, format!("{base}/get")).await.1, "{}");
    get(&b, format!("{base}/set")).await;
    assert_eq!(sessions.count().await.unwrap(), 1);
    let res = b.get(format!("{base}/destroy")).send().await.unwrap();
    assert!(set_cookies(&res)[0].contains("Max-Age=0"));
    assert_eq!(sessions.count().await.unwrap(), 0);
    assert_eq!(get(&b, format!("{base}/get")).await.1, "{}");
}

#[tokio::test]
async fn securecookie_hides_the_id_and_refuses_forgeries() {
    let sessions = Sessions::builder()
        .cookie_name(securecookie::COOKIE)
        .encrypted_ids(securecookie::keys().unwrap())
        .build()
        .unwrap();
    let base = serve_axum(securecookie::app(&sessions)).await;
    let raw = reqwest::Client::new();
    let res = raw.get(format!("{base}/set")).send().await.unwrap();
    let cookie = set_cookies(&res)[0].split(';').next().unwrap().to_owned();
    assert_eq!(res.text().await.unwrap(), "All ok session set to: iris");
    let value = cookie.strip_prefix("mycustomsessionid=").unwrap();
    assert!(value.len() > 22, "not a bare id: {value}");
    let with = |cookie: String| {
        let raw = raw.clone();
        let url = format!("{base}/get");
        async move {
            raw.get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    assert_eq!(with(cookie.clone()).await, "The name on the /set was: iris");
    // Flip one character: the cookie no longer opens, the request gets a fresh session.
    let mut forged = cookie.into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        with(String::from_utf8(forged).unwrap()).await,
        "The name on the /set was: "
    );
    let b = browser();
    get(&b, format!("{base}/set")).await;
    get(&b, format!("{base}/delete")).await;
    assert_eq!(
        get(&b, format!("{base}/get")).await.1,
        "The name on the /set was: "
    );
}

/// Drives a database example: values, an atomic counter under concurrency, destroy.
async fn database_round(base: &str, sessions: &Sessions) {
    let b = browser();
    assert_eq!(get(&b, format!("{base}/get?key=name")).await.0, 404);
    assert_eq!(
        get(&b, format!("{base}/set?key=name&value=iris")).await,
        (200, "name = iris".into())
    );
    assert_eq!(
        get(&b, format!("{base}/get?key=name")).await,
        (200, "iris".into())
    );
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let b = b.clone();
            let url = format!("{base}/incr");
            tokio::spawn(async move { b.get(url).send().await.unwrap().status().as_u16() })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(get(&b, format!("{base}/incr")).await, (200, "21".into()));
    assert_eq!(sessions.count().await.unwrap(), 1);
    get(&b, format!("{base}/destroy")).await;
    assert_eq!(sessions.count().await.unwrap(), 0);
}

#[tokio::test]
async fn database_redb_on_a_local_file() {
    let path = std::env::temp_dir().join(format!("sessio-example-{}.redb", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let store = database_redb::open(path.to_str().unwrap()).await.unwrap();
    let sessions = Sessions::builder().store(store).build().unwrap();
    let base = serve_axum(sessio_examples::database_app(&sessions)).await;
    database_round(&base, &sessions).await;
    let _ = std::fs::remove_file(&path);
}

/// Needs Redis on 127.0.0.1:6379 (`scripts/services/redis.sh`): fails without it.
#[tokio::test]
async fn database_redis_on_the_local_server() {
    let prefix = format!("sessio-examples-test-{}:", std::process::id());
    let store = database_redis::open("redis://127.0.0.1:6379", &prefix)
        .await
        .expect("Redis on 127.0.0.1:6379 (scripts/services/redis.sh)");
    let sessions = Sessions::builder().store(store).build().unwrap();
    sessions.destroy_all().await.unwrap();
    let base = serve_axum(sessio_examples::database_app(&sessions)).await;
    database_round(&base, &sessions).await;
    sessions.destroy_all().await.unwrap();
}

#[tokio::test]
async fn database_sql_on_sqlite_and_postgres() {
    let path = std::env::temp_dir().join(format!("sessio-example-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    for url in [
        format!("sqlite:{}", path.display()),
        "postgres://postgres@127.0.0.1:5432/postgres".to_owned(),
    ] {
        let store = database_sql::open(&url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e} (scripts/services/postgres.sh)"));
        let sessions = Sessions::builder().shared_store(store).build().unwrap();
        let base = serve_axum(sessio_examples::database_app(&sessions)).await;
        let b = browser();
        assert_eq!(
            get(&b, format!("{base}/set?key=name&value=iris")).await.0,
            200
        );
        assert_eq!(
            get(&b, format!("{base}/get?key=name")).await,
            (200, "iris".into())
        );
        assert_eq!(get(&b, format!("{base}/incr")).await, (200, "1".into()));
        assert_eq!(get(&b, format!("{base}/incr")).await, (200, "2".into()));
        assert_eq!(get(&b, format!("{base}/destroy")).await.0, 200);
        assert_eq!(get(&b, format!("{base}/get?key=name")).await.0, 404);
    }
    let _ = std::fs::remove_file(&path);
}
