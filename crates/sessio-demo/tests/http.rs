//! The demo over real HTTP: every route and every session rule of the core issue.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::{pair, session_cookie, Demo};

/// Every test below runs once per framework (`--framework axum`, `--framework actix`
/// and `--framework hyper`, plain hyper with no adapter): one suite, three apps, so they
/// cannot drift apart. A test written but not listed here is dead code, which clippy
/// rejects.
macro_rules! on_every_framework {
    ($($name:ident),* $(,)?) => {
        mod axum {
            $(#[tokio::test]
            async fn $name() {
                super::$name("axum").await;
            })*
        }
        mod actix {
            $(#[tokio::test]
            async fn $name() {
                super::$name("actix").await;
            })*
        }
        mod hyper {
            $(#[tokio::test]
            async fn $name() {
                super::$name("hyper").await;
            })*
        }
    };
}

on_every_framework!(
    login_secret_logout,
    login_regenerates_the_id_and_kills_the_old_one,
    values_set_get_delete_clear_all,
    incr_counts_and_rejects_non_integers,
    two_hundred_concurrent_increments_are_exact,
    sixty_four_concurrent_sets_of_distinct_keys_are_all_kept,
    flash_messages_live_until_read_once,
    destroy_removes_server_data_and_expires_the_cookie,
    reads_create_nothing_and_set_no_cookie,
    hostile_cookies_get_a_fresh_session_never_an_error,
    idle_sessions_expire_and_update_expiration_extends_one,
    sliding_expiry_keeps_active_sessions_alive,
    absolute_lifetime_ends_even_active_sessions,
    cookie_attributes_and_name,
    healthz_and_home_page,
    hit_counts_per_session,
    cookie_store_demo_keeps_sessions_client_side,
    key_file_signs_ids_and_tampering_gets_a_fresh_session,
);

/// The demo served by `framework`, with `args`.
fn demo(framework: &str, args: &[&str]) -> Demo {
    let mut all = vec!["--framework", framework];
    all.extend_from_slice(args);
    Demo::start(&all)
}

async fn login_secret_logout(fw: &'static str) {
    let demo = demo(fw, &[]);
    let b = demo.browser();
    assert_eq!(demo.get(&b, "/secret").await.0, 403);
    let res = b.get(demo.url("/login?user=kataras")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(session_cookie(&res).is_some());
    assert_eq!(
        demo.get(&b, "/secret").await,
        (200, "The cake is a lie!".into())
    );
    assert_eq!(demo.get(&b, "/logout").await.0, 200);
    assert_eq!(demo.get(&b, "/secret").await.0, 403);
}

async fn login_regenerates_the_id_and_kills_the_old_one(fw: &'static str) {
    let demo = demo(fw, &[]);
    let raw = demo.raw();
    let res = raw
        .get(demo.url("/set?key=a&value=1"))
        .send()
        .await
        .unwrap();
    let before = pair(&session_cookie(&res).unwrap());
    let res = raw
        .get(demo.url("/login?user=u"))
        .header("cookie", &before)
        .send()
        .await
        .unwrap();
    let after = pair(&session_cookie(&res).expect("login sets a new cookie"));
    assert_ne!(before, after);
    let secret = |cookie: String| {
        let raw = raw.clone();
        let url = demo.url("/secret");
        async move {
            raw.get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(secret(after.clone()).await, 200);
    assert_eq!(secret(before).await, 403, "the pre-login id is dead");
    // The data moved with the session.
    let res = raw
        .get(demo.url("/get?key=a"))
        .header("cookie", &after)
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "1");
}

async fn values_set_get_delete_clear_all(fw: &'static str) {
    let demo = demo(fw, &[]);
    let b = demo.browser();
    assert_eq!(demo.get(&b, "/get?key=color").await.0, 404);
    assert_eq!(demo.get(&b, "/set?key=color&value=blue").await.0, 200);
    assert_eq!(demo.get(&b, "/get?key=color").await, (200, "blue".into()));
    assert_eq!(demo.get(&b, "/set?key=size&value=XL").await.0, 200);
    assert_eq!(
        demo.get(&b, "/all").await,
        (200, r#"{"color":"blue","size":"XL"}"#.into())
    );
    assert_eq!(
        demo.get(&b, "/delete?key=color").await,
        (200, "true".into())
    );
    assert_eq!(
        demo.get(&b, "/delete?key=color").await,
        (200, "false".into())
    );
    assert_eq!(demo.get(&b, "/clear").await.0, 200);
    assert_eq!(demo.get(&b, "/all").await, (200, "{}".into()));
    assert_eq!(
        demo.get(&b, "/set?key=__sessio:flash:x&value=1").await.0,
        400
    );
    assert_eq!(demo.get(&b, "/set").await.0, 400, "missing parameters");
}

async fn incr_counts_and_rejects_non_integers(fw: &'static str) {
    let demo = demo(fw, &[]);
    let b = demo.browser();
    assert_eq!(demo.get(&b, "/incr?key=n").await, (200, "1".into()));
    assert_eq!(demo.get(&b, "/incr?key=n&by=10").await, (200, "11".into()));
    assert_eq!(demo.get(&b, "/incr?key=n&by=-12").await, (200, "-1".into()));
    assert_eq!(demo.get(&b, "/get?key=n").await, (200, "-1".into()));
    assert_eq!(demo.get(&b, "/incr?key=n&by=abc").await.0, 400);
    demo.get(&b, "/set?key=s&value=text").await;
    assert_eq!(demo.get(&b, "/incr?key=s").await.0, 409);
    assert_eq!(demo.get(&b, "/get?key=s").await, (200, "text".into()));
}

async fn two_hundred_concurrent_increments_are_exact(fw: &'static str) {
    let demo = demo(fw, &[]);
    let b = demo.browser();
    assert_eq!(demo.get(&b, "/incr?key=n&by=0").await, (200, "0".into()));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let b = b.clone();
            let url = demo.url("/incr?key=n");
            tokio::spawn(async move { b.get(url).send().await.unwrap().status().as_u16() })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(demo.get(&b, "/get?key=n").await, (200, "200".into()));
    assert_eq!(demo.count().await, 1);
}

async fn sixty_four_concurrent_sets_of_distinct_keys_are_all_kept(fw: &'static str) {
    let demo = demo(fw, &[]);
    let b = demo.browser();
    demo.get(&b, "/set?key=base&value=0").await;
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let b = b.clone();
            let url = demo.url(&format!("/set?key=k{i}&value={i}"));
            tokio::spawn(async move { b.get(url).send().await.unwrap().status().as_u16() })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let (_, body) = demo.get(&b, "/all").await;
    let all: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(all.len(), 65, "{body}");
    for i in 0..64 {
        assert_eq!(all[&format!("k{i}")], serde_json::json!(i.to_string()));
    }
}

async fn flash_messages_live_until_read_once(fw: &'static str) {
    let demo = demo(fw, &[]);
    let b = demo.browser();
    assert_eq!(demo.get(&b, "/flash?key=notice&value=saved").await.0, 200);
    assert_eq!(
        demo.get(&b, "/flash/peek?key=notice").await,
        (200, "saved".into())
    );
    assert_eq!(
        demo.get(&b, "/flash/peek?key=notice").await,
        (200, "saved".into())
    );
    assert_eq!(
        demo.get(&b, "/flash/get?key=notice").await,
        (200, "saved".into())
    );
    assert_eq!(demo.get(&b, "/flash/get?key=notice").await.0, 404);
    // The home page shows pending flashes once.
    demo.get(&b, "/flash?key=notice&value=hello%20world").await;
    let (status, page) = demo.get(&b, "/").await;
    assert_eq!(status, 200);
    assert!(page.contains("hello world"), "{page}");
    assert!(!demo.get(&b, "/").await.1.contains("hello world"));
}

async fn destroy_removes_server_data_and_expires_the_cookie(fw: &'static str) {
    let demo = demo(fw, &[]);
    let raw = demo.raw();
    let res = raw
        .get(demo.url("/set?key=a&value=1"))
        .send()
        .await
        .unwrap();
    let cookie = pair(&session_cookie(&res).unwrap());
    assert_eq!(demo.count().await, 1);
    let res = raw
        .get(demo.url("/destroy"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let removal = session_cookie(&res).expect("a removal cookie");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    assert_eq!(demo.count().await, 0);
    let res = raw
        .get(demo.url("/get?key=a"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "the old cookie no longer works");
}

async fn reads_create_nothing_and_set_no_cookie(fw: &'static str) {
    let demo = demo(fw, &[]);
    let raw = demo.raw();
    for path in [
        "/",
        "/get?key=a",
        "/all",
        "/secret",
        "/flash/get?key=x",
        "/healthz",
    ] {
        let res = raw.get(demo.url(path)).send().await.unwrap();
        assert!(res.status().as_u16() < 500, "{path}");
        assert_eq!(session_cookie(&res), None, "{path} set a cookie");
    }
    assert_eq!(demo.count().await, 0);
    // A read on an existing session sends no cookie either.
    let res = raw
        .get(demo.url("/set?key=a&value=1"))
        .send()
        .await
        .unwrap();
    let cookie = pair(&session_cookie(&res).unwrap());
    let res = raw
        .get(demo.url("/get?key=a"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(session_cookie(&res), None);
}

async fn hostile_cookies_get_a_fresh_session_never_an_error(fw: &'static str) {
    let demo = demo(fw, &[]);
    let raw = demo.raw();
    let long = format!("sessio={}", "A".repeat(8192));
    let bad: Vec<reqwest::header::HeaderValue> = vec![
        reqwest::header::HeaderValue::from_static(""),
        reqwest::header::HeaderValue::from_str(&long).unwrap(),
        reqwest::header::HeaderValue::from_bytes(b"sessio=\xff\xfe\xfd; a=\x80").unwrap(),
        reqwest::header::HeaderValue::from_static("sessio=\"quoted-value\""),
        reqwest::header::HeaderValue::from_static("sessio=forged0000000000000000; sessio=another"),
        reqwest::header::HeaderValue::from_static("sessio=AAAAAAAAAAAAAAAAAAAAAA"),
        reqwest::header::HeaderValue::from_static(";;;=;=sessio;sessio=="),
        reqwest::header::HeaderValue::from_static("sessio=../../etc/passwd"),
    ];
    for cookie in bad {
        let res = raw
            .get(demo.url("/set?key=a&value=1"))
            .header("cookie", cookie.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{cookie:?}");
        let fresh = pair(&session_cookie(&res).expect("a fresh session"));
        assert!(!fresh.contains("forged") && !fresh.contains("AAAAAAAAAAAAAAAAAAAAAA"));
        assert_eq!(fresh.len(), "sessio=".len() + 22);
        let res = raw
            .get(demo.url("/get?key=a"))
            .header("cookie", cookie.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{cookie:?} must not reach a session");
    }
    // A tampered copy of a real id is just as unknown.
    let res = raw
        .get(demo.url("/set?key=a&value=1"))
        .send()
        .await
        .unwrap();
    let real = pair(&session_cookie(&res).unwrap());
    let mut tampered = real.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let res = raw
        .get(demo.url("/get?key=a"))
        .header("cookie", String::from_utf8(tampered).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

async fn idle_sessions_expire_and_update_expiration_extends_one(fw: &'static str) {
    let demo = demo(fw, &["--idle", "1"]);
    let b = demo.browser();
    let remembered = demo.browser();
    demo.get(&b, "/set?key=a&value=1").await;
    demo.get(&remembered, "/set?key=a&value=1").await;
    assert_eq!(demo.get(&remembered, "/expire?secs=60").await.0, 200);
    assert_eq!(demo.get(&remembered, "/expire?secs=0").await.0, 400);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(
        demo.get(&b, "/get?key=a").await.0,
        404,
        "idle session must expire"
    );
    assert_eq!(demo.get(&remembered, "/get?key=a").await, (200, "1".into()));
}

async fn sliding_expiry_keeps_active_sessions_alive(fw: &'static str) {
    let demo = demo(fw, &["--idle", "2"]);
    let b = demo.browser();
    demo.get(&b, "/set?key=a&value=1").await;
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(demo.get(&b, "/get?key=a").await.0, 200);
    }
}

async fn absolute_lifetime_ends_even_active_sessions(fw: &'static str) {
    let demo = demo(fw, &["--idle", "60", "--absolute", "2"]);
    let b = demo.browser();
    demo.get(&b, "/set?key=a&value=1").await;
    let mut alive_until = Duration::ZERO;
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(4) {
        if demo.get(&b, "/get?key=a").await.0 == 200 {
            alive_until = start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        alive_until >= Duration::from_millis(1500),
        "{alive_until:?}"
    );
    assert!(
        alive_until <= Duration::from_millis(2300),
        "{alive_until:?}"
    );
}

async fn cookie_attributes_and_name(fw: &'static str) {
    let demo = demo(fw, &["--cookie-name", "app_sid", "--idle", "600"]);
    let res = demo
        .raw()
        .get(demo.url("/set?key=a&value=1"))
        .send()
        .await
        .unwrap();
    let cookie = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("app_sid="), "{cookie}");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=600"] {
        assert!(cookie.contains(attr), "{attr} missing in {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP without a proxy: not Secure"
    );
}

async fn healthz_and_home_page(fw: &'static str) {
    let demo = demo(fw, &[]);
    let raw = demo.raw();
    assert_eq!(demo.get(&raw, "/healthz").await, (200, "ok".into()));
    let (status, page) = demo.get(&raw, "/").await;
    assert_eq!(status, 200);
    assert!(page.contains("<form id=\"login\""));
    let b = demo.browser();
    demo.get(&b, "/login?user=%3Cscript%3E").await;
    let (_, page) = demo.get(&b, "/").await;
    assert!(page.contains("&lt;script&gt;") && !page.contains("<script>"));
}

async fn hit_counts_per_session(fw: &'static str) {
    let demo = demo(fw, &[]);
    let b = demo.browser();
    for n in 1..=3 {
        assert_eq!(demo.get(&b, "/hit").await, (200, n.to_string()));
    }
    assert_eq!(demo.get(&demo.browser(), "/hit").await, (200, "1".into()));
}

#[test]
fn bad_flags_and_store_specs_fail_clearly() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sessio-demo"))
        .args(["--addr", "127.0.0.1:0", "--store", "nosuch://x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown store spec"), "{err}");
}

async fn cookie_store_demo_keeps_sessions_client_side(fw: &'static str) {
    let demo = demo(fw, &["--store", "cookie"]);
    let b = demo.browser();
    assert_eq!(demo.get(&b, "/secret").await.0, 403);
    assert_eq!(demo.get(&b, "/login?user=kataras").await.0, 200);
    assert_eq!(
        demo.get(&b, "/secret").await,
        (200, "The cake is a lie!".into())
    );
    assert_eq!(demo.get(&b, "/set?key=color&value=blue").await.0, 200);
    assert_eq!(demo.get(&b, "/get?key=color").await, (200, "blue".into()));
    assert_eq!(
        demo.get(&b, "/incr?key=n").await.0,
        501,
        "no atomic increments client-side"
    );
    assert_eq!(demo.get(&b, "/admin/count").await.0, 501);
    assert_eq!(demo.get(&b, "/hit").await, (200, "1".into()));
    assert_eq!(demo.get(&b, "/hit").await, (200, "2".into()));
    assert_eq!(demo.get(&b, "/logout").await.0, 200);
    assert_eq!(demo.get(&b, "/secret").await.0, 403);
    let big = "x".repeat(20_000);
    assert_eq!(
        demo.get(&b, &format!("/set?key=big&value={big}")).await.0,
        413
    );
}

async fn key_file_signs_ids_and_tampering_gets_a_fresh_session(fw: &'static str) {
    let path = std::env::temp_dir().join(format!("sessio-demo-keys-{fw}-{}", std::process::id()));
    std::fs::write(&path, "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=\n").unwrap();
    let demo = demo(fw, &["--key-file", path.to_str().unwrap()]);
    let raw = demo.raw();
    let res = raw
        .get(demo.url("/set?key=a&value=1"))
        .send()
        .await
        .unwrap();
    let cookie = pair(&session_cookie(&res).unwrap());
    let (id, tag) = cookie
        .trim_start_matches("sessio=")
        .split_once('.')
        .expect("id.tag");
    assert_eq!((id.len(), tag.len()), (22, 43));
    let ok = raw
        .get(demo.url("/get?key=a"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let unsigned = format!("sessio={id}");
    let res = raw
        .get(demo.url("/get?key=a"))
        .header("cookie", unsigned)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "the bare id is not enough");
    std::fs::remove_file(&path).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sessio-demo"))
        .args(["--addr", "127.0.0.1:0", "--key-file", "/nonexistent/keys"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Every app answers a script of requests with the same statuses, content types and
/// bodies, including rejections (bad query strings, wrong types, reserved keys), 404s
/// and 405s that the suite above only checks by status.
#[tokio::test]
async fn every_framework_gives_identical_answers() {
    let script = [
        "/",
        "/nosuch",
        "/healthz",
        "/secret",
        "/login?user=a%3Cb",
        "/",
        "/secret",
        "/set",
        "/set?key=__sessio:x&value=1",
        "/set?key=s&value=text",
        "/incr?key=s",
        "/incr?key=n&by=abc",
        "/incr?key=n&by=2",
        "/get?key=n",
        "/get?key=missing",
        "/all",
        "/flash?key=f&value=v",
        "/flash/peek?key=f",
        "/",
        "/flash/get?key=f",
        "/expire?secs=0",
        "/expire?secs=abc",
        "/delete?key=s",
        "/hit",
        "/logout",
        "/destroy",
        "/admin/count",
    ];
    async fn answers(framework: &str, script: &[&str]) -> Vec<(String, u16, String, String)> {
        let demo = demo(framework, &[]);
        let b = demo.browser();
        let mut out = Vec::new();
        for path in script {
            let res = b.get(demo.url(path)).send().await.unwrap();
            let status = res.status().as_u16();
            let content_type = res
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            out.push((
                (*path).to_owned(),
                status,
                content_type,
                res.text().await.unwrap(),
            ));
        }
        let res = b.post(demo.url("/hit")).send().await.unwrap();
        out.push((
            "POST /hit".into(),
            res.status().as_u16(),
            String::new(),
            String::new(),
        ));
        out
    }
    let axum = answers("axum", &script).await;
    for other in ["actix", "hyper"] {
        let answers = answers(other, &script).await;
        assert_eq!(axum.len(), answers.len());
        for (a, b) in axum.iter().zip(&answers) {
            assert_eq!(a, b, "axum (left) and {other} (right) differ");
        }
    }
}

#[test]
fn unknown_framework_fails_clearly() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sessio-demo"))
        .args(["--addr", "127.0.0.1:0", "--framework", "rocket"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("axum") && err.contains("actix") && err.contains("hyper"),
        "{err}"
    );
}
