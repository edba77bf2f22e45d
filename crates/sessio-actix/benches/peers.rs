//! `/hit` (read `counter`, write `counter + 1`) through actix in-process
//! (`actix_web::test`), sessio's middleware next to actix-session's cookie store and
//! Redis store, in one run. Needs Redis on 127.0.0.1:6379 (`scripts/services/redis.sh`);
//! it fails, not skips, without it.

#![allow(missing_docs, clippy::unwrap_used)]

use actix_session::{
    storage::{CookieSessionStore, RedisSessionStore},
    SessionMiddleware as PeerMiddleware,
};
use actix_web::{cookie::Key, http::header, test, web, App};
use criterion::{criterion_group, criterion_main, Criterion};
use sessio::Sessions;
use sessio_actix::{Error, Session, SessionsExt};

async fn hit(s: Session) -> Result<String, Error> {
    let n: u64 = s.get_or("counter", 0)? + 1;
    s.set("counter", &n)?;
    Ok(n.to_string())
}

async fn peer_hit(s: actix_session::Session) -> Result<String, actix_web::Error> {
    let n: u64 = s.get::<u64>("counter")?.unwrap_or(0) + 1;
    s.insert("counter", n)?;
    Ok(n.to_string())
}

/// The `name=value` pair of the first `Set-Cookie`.
fn first_cookie<B>(res: &actix_web::dev::ServiceResponse<B>) -> String {
    let set = res
        .headers()
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap();
    set.split(';').next().unwrap().to_owned()
}

fn bench(c: &mut Criterion) {
    let rt = actix_web::rt::System::new();
    let key = Key::from(&[7; 64]);
    let (sessio_app, cookie_app, redis_app) = rt.block_on(async {
        let sessions = Sessions::builder().build().unwrap();
        let sessio_app = test::init_service(
            App::new()
                .wrap(sessions.middleware())
                .route("/hit", web::get().to(hit)),
        )
        .await;
        let cookie_app = test::init_service(
            App::new()
                .wrap(
                    PeerMiddleware::builder(CookieSessionStore::default(), key.clone())
                        .cookie_secure(false)
                        .build(),
                )
                .route("/hit", web::get().to(peer_hit)),
        )
        .await;
        let redis = RedisSessionStore::new("redis://127.0.0.1:6379")
            .await
            .expect("Redis on 127.0.0.1:6379 (scripts/services/redis.sh)");
        let redis_app = test::init_service(
            App::new()
                .wrap(
                    PeerMiddleware::builder(redis, key.clone())
                        .cookie_secure(false)
                        .build(),
                )
                .route("/hit", web::get().to(peer_hit)),
        )
        .await;
        (sessio_app, cookie_app, redis_app)
    });
    let cookie_of = |app_cookie: &str| {
        let app_cookie = app_cookie.to_owned();
        move || {
            test::TestRequest::get()
                .uri("/hit")
                .insert_header((header::COOKIE, app_cookie.as_str()))
                .to_request()
        }
    };
    let first = test::TestRequest::get().uri("/hit");
    let sessio_req = cookie_of(&first_cookie(
        &rt.block_on(test::call_service(&sessio_app, first.to_request())),
    ));
    let cookie_req = cookie_of(&first_cookie(&rt.block_on(test::call_service(
        &cookie_app,
        test::TestRequest::get().uri("/hit").to_request(),
    ))));
    let redis_req = cookie_of(&first_cookie(&rt.block_on(test::call_service(
        &redis_app,
        test::TestRequest::get().uri("/hit").to_request(),
    ))));
    let mut g = c.benchmark_group("actix /hit");
    g.bench_function("sessio-actix, memory store", |b| {
        b.iter(|| rt.block_on(test::call_service(&sessio_app, sessio_req())));
    });
    g.bench_function("actix-session, cookie store", |b| {
        b.iter(|| rt.block_on(test::call_service(&cookie_app, cookie_req())));
    });
    g.bench_function("actix-session, Redis store", |b| {
        b.iter(|| rt.block_on(test::call_service(&redis_app, redis_req())));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
