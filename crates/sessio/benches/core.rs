//! Micro-benchmarks of the core with the memory store: start a session from a cookie,
//! get, set + commit, increment, regenerate.

#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use http::{header::COOKIE, HeaderMap, HeaderValue};
use sessio::Sessions;

fn setup(rt: &tokio::runtime::Runtime) -> (Sessions, HeaderMap) {
    let sessions = Sessions::builder().build().unwrap();
    let headers = rt.block_on(async {
        let session = sessions.start(&HeaderMap::new()).await.unwrap();
        session.set("counter", &1u64).unwrap();
        session.set("user", "kataras").unwrap();
        session.set("role", "admin").unwrap();
        let cookie = session.finish().await.unwrap();
        let pair = cookie[0]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_str(&format!("theme=dark; {pair}; lang=en")).unwrap(),
        );
        headers
    });
    (sessions, headers)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (sessions, headers) = setup(&rt);

    c.bench_function("cookie parse only (lazy)", |b| {
        b.iter(|| sessions.lazy(&headers, false));
    });
    c.bench_function("start: cookie -> id -> store load", |b| {
        b.iter(|| rt.block_on(sessions.start(&headers)).unwrap());
    });
    let session = rt.block_on(sessions.start(&headers)).unwrap();
    c.bench_function("get::<u64>", |b| {
        b.iter(|| session.get::<u64>("counter").unwrap());
    });
    c.bench_function("get::<String>", |b| {
        b.iter(|| session.get::<String>("user").unwrap());
    });
    c.bench_function("start + get + set + commit (a /hit without HTTP)", |b| {
        b.iter(|| {
            rt.block_on(async {
                let s = sessions.start(&headers).await.unwrap();
                let n: u64 = s.get_or("counter", 0).unwrap();
                s.set("counter", &(n + 1)).unwrap();
                s.finish().await.unwrap()
            })
        });
    });
    c.bench_function("start + increment", |b| {
        b.iter(|| {
            rt.block_on(async {
                let s = sessions.start(&headers).await.unwrap();
                s.increment("visits", 1).await.unwrap()
            })
        });
    });
    c.bench_function("new session: set + commit + Set-Cookie", |b| {
        let empty = HeaderMap::new();
        b.iter(|| {
            rt.block_on(async {
                let s = sessions.start(&empty).await.unwrap();
                s.set("counter", &1u64).unwrap();
                s.finish().await.unwrap()
            })
        });
    });
}

fn secure(c: &mut Criterion) {
    use sessio::{
        secure::{IdCookie, Key, Keys},
        store::CookieStore,
        IdGenerator, RandomIds,
    };
    let keys = Keys::new(Key::generate());
    let id = RandomIds.generate();
    for (name, mode) in [
        ("signed", IdCookie::Signed(keys.clone())),
        ("encrypted", IdCookie::Encrypted(keys.clone())),
    ] {
        let value = mode.encode("sessio", &id);
        c.bench_function(&format!("id cookie {name}: encode"), |b| {
            b.iter(|| mode.encode("sessio", &id));
        });
        c.bench_function(&format!("id cookie {name}: decode + verify"), |b| {
            b.iter(|| mode.decode("sessio", &value).unwrap());
        });
    }
    // A client-side session holding 256 bytes of values: seal (encrypt) and open.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let sessions = Sessions::builder()
        .cookie_store(CookieStore::new(keys))
        .build()
        .unwrap();
    let payload = "x".repeat(240);
    let cookie = rt.block_on(async {
        let s = sessions.start(&HeaderMap::new()).await.unwrap();
        s.set("data", &payload).unwrap();
        let set = s.finish().await.unwrap();
        set[0]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    });
    c.bench_function("cookie store 256 B: open (decrypt + decode)", |b| {
        b.iter(|| {
            let lazy = sessions.lazy_from_cookie_headers([cookie.as_bytes()], false);
            rt.block_on(lazy.load()).unwrap()
        });
    });
    let session = rt
        .block_on(
            sessions
                .lazy_from_cookie_headers([cookie.as_bytes()], false)
                .load(),
        )
        .unwrap();
    c.bench_function("cookie store 256 B: seal (encode + encrypt)", |b| {
        b.iter(|| {
            session.set("data", &payload).unwrap();
            rt.block_on(session.finish()).unwrap()
        });
    });
}

criterion_group!(benches, bench, secure);
criterion_main!(benches);
