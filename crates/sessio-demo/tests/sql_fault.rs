//! The demo on PostgreSQL through a TCP proxy that is cut mid-session (a network
//! partition: connections stay open, nothing gets through): requests that need the
//! store answer 503 within the store's call timeout (10 s by default), `/healthz` keeps
//! answering, and after the link is restored the same demo serves the session again
//! with every acknowledged increment kept. (`sessio-sql/tests/fault.rs` covers the
//! store level, on PostgreSQL and MariaDB, under concurrent load.)

#![cfg(feature = "sql")]
#![allow(clippy::unwrap_used)]

mod support;

#[path = "../../sessio-sql/tests/support/proxy.rs"]
#[allow(dead_code, unreachable_pub)]
mod proxy;

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use proxy::Proxy;
use support::Demo;

/// `SqlStoreOptions`' default call timeout, which the demo uses.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const SLACK: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread")]
async fn postgres_cut_answers_503_in_bounded_time_and_recovers() {
    let proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], 5432))).await;
    let spec = format!("postgres://postgres@127.0.0.1:{}/postgres", proxy.port);
    let demo = Demo::start(&["--store", &spec]);
    let b = reqwest::Client::builder()
        .cookie_store(true)
        .timeout(CALL_TIMEOUT * 3)
        .build()
        .unwrap();
    let get = |path: &str| {
        let req = b.get(demo.url(path));
        async move {
            let res = req.send().await.expect("an answer");
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    assert_eq!(get("/login?user=kataras").await.0, 200);
    let mut acked = 0;
    for _ in 0..5 {
        let (status, body) = get("/incr?key=n").await;
        assert_eq!(status, 200);
        acked = body.parse().unwrap();
    }

    proxy.cut();
    for path in ["/incr?key=n", "/get?key=n"] {
        let started = Instant::now();
        let (status, _) = get(path).await;
        let took = started.elapsed();
        assert_eq!(status, 503, "{path} while the database is cut off");
        assert!(took <= CALL_TIMEOUT + SLACK, "{path} took {took:?}");
    }
    let started = Instant::now();
    assert_eq!(get("/healthz").await, (200, "ok".into()));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "healthz needs no store"
    );

    proxy.restore();
    let restored = Instant::now();
    let n: i64 = loop {
        let (status, body) = get("/get?key=n").await;
        if status == 200 {
            break body.parse().unwrap();
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            restored.elapsed() < Duration::from_secs(15),
            "no recovery within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The increment that got a 503 may or may not have landed; none that got a 200 is lost.
    assert!(n >= acked, "stored {n} < acknowledged {acked}");
    assert_eq!(get("/secret").await, (200, "The cake is a lie!".into()));
    assert_eq!(get("/incr?key=n").await, (200, (n + 1).to_string()));
    eprintln!("recovered {:?} after the restore", restored.elapsed());
}
