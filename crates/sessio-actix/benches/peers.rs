//! `/hit` (read `counter`, write `counter + 1`) through actix in-process
//! (`actix_web::test`): sessio's middleware (memory, sealed-cookie and Redis stores) next
//! to actix-session's (cookie and Redis stores), in one run. Needs Redis on 127.0.0.1:6379 (`scripts/services/redis.sh`);
//! it fails, not skips, without it.

#![allow(missing_docs, clippy::unwrap_used)]

use actix_session::{
    storage::{CookieSessionStore, RedisSessionStore},
    SessionMiddleware as PeerMiddleware,
};
use actix_web::{cookie::Key, http::header, test, web, App};
use criterion::{criterion_group, criterion_main, Criterion};
use sessio::{
    secure::{Key as SealKey, Keys},
    store::CookieStore,
    Sessions,
};
use sessio_actix::{Error, Session, SessionsExt};
use sessio_redis::RedisStore;

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
    let (sessio_app, sessio_cookie_app, sessio_redis_app, cookie_app, redis_app) =
        rt.block_on(async {
            let sessions = Sessions::builder().build().unwrap();
            let sessio_app = test::init_service(
                App::new()
                    .wrap(sessions.middleware())
                    .route("/hit", web::get().to(hit)),
            )
            .await;
            let sealed = Sessions::builder()
                .cookie_store(CookieStore::new(Keys::new(SealKey::generate())))
                .build()
                .unwrap();
            let sessio_cookie_app = test::init_service(
                App::new()
                    .wrap(sealed.middleware())
                    .route("/hit", web::get().to(hit)),
            )
            .await;
            let redis_store = RedisStore::builder("redis://127.0.0.1:6379")
                .unwrap()
                .key_prefix(format!("sessio-bench-{}:", std::process::id()))
                .connect()
                .await
                .expect("Redis on 127.0.0.1:6379 (scripts/services/redis.sh)");
            let in_redis = Sessions::builder().store(redis_store).build().unwrap();
            let sessio_redis_app = test::init_service(
                App::new()
                    .wrap(in_redis.middleware())
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
            (
                sessio_app,
                sessio_cookie_app,
                sessio_redis_app,
                cookie_app,
                redis_app,
            )
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
    let sessio_cookie_req = cookie_of(&first_cookie(&rt.block_on(test::call_service(
        &sessio_cookie_app,
        test::TestRequest::get().uri("/hit").to_request(),
    ))));
    let sessio_redis_req = cookie_of(&first_cookie(&rt.block_on(test::call_service(
        &sessio_redis_app,
        test::TestRequest::get().uri("/hit").to_request(),
    ))));
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
    g.bench_function("sessio-actix, sealed cookie store", |b| {
        b.iter(|| rt.block_on(test::call_service(&sessio_cookie_app, sessio_cookie_req())));
    });
    g.bench_function("sessio-actix, Redis store", |b| {
        b.iter(|| rt.block_on(test::call_service(&sessio_redis_app, sessio_redis_req())));
    });
    g.bench_function("actix-session, cookie store", |b| {
        b.iter(|| rt.block_on(test::call_service(&cookie_app, cookie_req())));
    });
    g.bench_function("actix-session, Redis store", |b| {
        b.iter(|| rt.block_on(test::call_service(&redis_app, redis_req())));
    });
    g.finish();
    rt.block_on(in_redis_cleanup());
}

/// Removes the bench's keys from Redis.
async fn in_redis_cleanup() {
    let store = RedisStore::builder("redis://127.0.0.1:6379")
        .unwrap()
        .key_prefix(format!("sessio-bench-{}:", std::process::id()))
        .connect()
        .await
        .unwrap();
    let sessions = Sessions::builder().store(store).build().unwrap();
    sessions.destroy_all().await.unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
