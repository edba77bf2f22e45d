//! A whole `/hit` and `/incr` request through an actix app with the session middleware,
//! in-process (`actix_web::test`, no sockets), next to the same app without sessions.

#![allow(missing_docs, clippy::unwrap_used)]

use actix_web::{http::header, test, web, App};
use criterion::{criterion_group, criterion_main, Criterion};
use sessio::Sessions;
use sessio_actix::{Error, Session, SessionsExt};

async fn hit(s: Session) -> Result<String, Error> {
    let n: u64 = s.get_or("counter", 0)? + 1;
    s.set("counter", &n)?;
    Ok(n.to_string())
}

async fn incr(s: Session) -> Result<String, Error> {
    Ok(s.increment("n", 1).await?.to_string())
}

fn bench(c: &mut Criterion) {
    let rt = actix_web::rt::System::new();
    let sessions = Sessions::builder().build().unwrap();
    let (app, bare, cookie) = rt.block_on(async {
        let app = test::init_service(
            App::new()
                .wrap(sessions.middleware())
                .route("/hit", web::get().to(hit))
                .route("/incr", web::get().to(incr))
                .route("/plain", web::get().to(|| async { "ok" })),
        )
        .await;
        let bare = test::init_service(
            App::new()
                .route("/hit", web::get().to(|| async { "1" }))
                .route("/plain", web::get().to(|| async { "ok" })),
        )
        .await;
        let res =
            test::call_service(&app, test::TestRequest::get().uri("/incr").to_request()).await;
        let set = res
            .headers()
            .get(header::SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap();
        let cookie = set.split(';').next().unwrap().to_owned();
        (app, bare, cookie)
    });
    let request = |path: &str| {
        test::TestRequest::get()
            .uri(path)
            .insert_header((header::COOKIE, cookie.as_str()))
            .to_request()
    };
    c.bench_function("actix: bare app /plain", |b| {
        b.iter(|| rt.block_on(test::call_service(&bare, request("/plain"))));
    });
    c.bench_function("actix: session middleware, /plain (no extraction)", |b| {
        b.iter(|| rt.block_on(test::call_service(&app, request("/plain"))));
    });
    c.bench_function("actix: /hit (get + set + commit)", |b| {
        b.iter(|| rt.block_on(test::call_service(&app, request("/hit"))));
    });
    c.bench_function("actix: /incr (atomic increment)", |b| {
        b.iter(|| rt.block_on(test::call_service(&app, request("/incr"))));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
