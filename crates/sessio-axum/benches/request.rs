//! A whole `/incr` and `/hit` request through an axum router with the session layer,
//! in-process (no sockets), next to the same router without sessions.

#![allow(missing_docs, clippy::unwrap_used)]

use axum::{body::Body, routing::get, Router};
use criterion::{criterion_group, criterion_main, Criterion};
use http::{header, Request};
use sessio::{Session, Sessions};
use sessio_axum::SessionsExt;
use tower::ServiceExt;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let sessions = Sessions::builder().build().unwrap();
    let app = Router::new()
        .route(
            "/incr",
            get(|s: Session| async move {
                Ok::<_, sessio::Error>(s.increment("n", 1).await?.to_string())
            }),
        )
        .route(
            "/hit",
            get(|s: Session| async move {
                let n: u64 = s.get_or("counter", 0)? + 1;
                s.set("counter", &n)?;
                Ok::<_, sessio::Error>(n.to_string())
            }),
        )
        .route("/plain", get(|| async { "ok" }))
        .layer(sessions.layer());
    let bare = Router::new().route("/plain", get(|| async { "ok" }));
    let cookie = rt.block_on(async {
        let res = app
            .clone()
            .oneshot(Request::get("/incr").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let set = res.headers()[header::SET_COOKIE].to_str().unwrap();
        set.split(';').next().unwrap().to_owned()
    });
    let request = |path: &str| {
        Request::get(path)
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap()
    };
    c.bench_function("request: bare router /plain", |b| {
        b.iter(|| {
            rt.block_on(bare.clone().oneshot(request("/plain")))
                .unwrap()
        });
    });
    c.bench_function("request: session layer, /plain (no extraction)", |b| {
        b.iter(|| rt.block_on(app.clone().oneshot(request("/plain"))).unwrap());
    });
    c.bench_function("request: /hit (get + set + commit)", |b| {
        b.iter(|| rt.block_on(app.clone().oneshot(request("/hit"))).unwrap());
    });
    c.bench_function("request: /incr (atomic increment)", |b| {
        b.iter(|| rt.block_on(app.clone().oneshot(request("/incr"))).unwrap());
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
