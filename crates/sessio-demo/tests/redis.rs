//! The demo on Redis: several app servers share sessions through one Redis, and a Redis
//! outage is a fast 503 that heals by itself.

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

mod support;

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use support::Demo;

#[tokio::test]
async fn two_instances_share_one_redis() {
    let a = Demo::start(&["--store", "redis://127.0.0.1:6379/0"]);
    let b = Demo::start(&["--store", "redis://127.0.0.1:6379/0"]);
    // One browser, whose requests a load balancer sends to either server.
    let browser = a.browser();
    assert_eq!(a.get(&browser, "/login?user=kataras").await.0, 200);
    assert_eq!(
        b.get(&browser, "/secret").await,
        (200, "The cake is a lie!".into())
    );
    assert_eq!(b.get(&browser, "/incr?key=n").await, (200, "1".into()));
    assert_eq!(a.get(&browser, "/incr?key=n").await, (200, "2".into()));
    assert_eq!(b.get(&browser, "/logout").await.0, 200);
    assert_eq!(
        a.get(&browser, "/secret").await.0,
        403,
        "the logout on B is seen by A"
    );
    // Concurrent increments spread over both servers are exact.
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let browser = browser.clone();
            let url = if i % 2 == 0 {
                a.url("/incr?key=m")
            } else {
                b.url("/incr?key=m")
            };
            tokio::spawn(async move { browser.get(url).send().await.unwrap().status().as_u16() })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(a.get(&browser, "/get?key=m").await, (200, "100".into()));
}

/// Both instances with `--cache`: reads come from each one's memory, and a write on
/// one reaches the other's cache (Redis client tracking) within 100 ms.
#[tokio::test]
async fn two_cached_instances_stay_coherent() {
    let a = Demo::start(&["--store", "redis://127.0.0.1:6379/0", "--cache", "1000"]);
    let b = Demo::start(&["--store", "redis://127.0.0.1:6379/0", "--cache", "1000"]);
    let browser = a.browser();
    assert_eq!(a.get(&browser, "/login?user=kataras").await.0, 200);
    for _ in 0..3 {
        // Cached on both after the first read.
        assert_eq!(a.get(&browser, "/secret").await.0, 200);
        assert_eq!(b.get(&browser, "/secret").await.0, 200);
    }
    for i in 1..=20 {
        let writer = if i % 2 == 0 { &a } else { &b };
        let reader = if i % 2 == 0 { &b } else { &a };
        assert_eq!(
            writer
                .get(&browser, &format!("/set?key=v&value={i}"))
                .await
                .0,
            200
        );
        let acked = Instant::now();
        while reader.get(&browser, "/get?key=v").await != (200, i.to_string()) {
            assert!(
                acked.elapsed() < Duration::from_millis(100),
                "the other instance still serves its old copy after 100 ms"
            );
        }
    }
    assert_eq!(b.get(&browser, "/logout").await.0, 200);
    let acked = Instant::now();
    while a.get(&browser, "/secret").await.0 != 403 {
        assert!(
            acked.elapsed() < Duration::from_millis(100),
            "logout not seen by A"
        );
    }
}

/// A redis-server of this test's own, on a free port, persisting every write.
struct OwnRedis {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl OwnRedis {
    fn start(port: u16, dir: &std::path::Path) -> OwnRedis {
        std::fs::create_dir_all(dir).unwrap();
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/services/redis.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        OwnRedis {
            child,
            port,
            dir: dir.to_owned(),
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn redis_outage_is_a_fast_503_and_recovers_without_restart() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("sessio-demo-redis-{port}"));
    let mut redis = OwnRedis::start(port, &dir);
    let demo = Demo::start(&["--store", &format!("redis://127.0.0.1:{}/0", redis.port)]);
    let browser = demo.browser();
    assert_eq!(demo.get(&browser, "/incr?key=n").await, (200, "1".into()));
    assert_eq!(demo.get(&browser, "/incr?key=n").await, (200, "2".into()));

    redis.stop();
    for _ in 0..3 {
        let started = Instant::now();
        let (status, _) = demo.get(&browser, "/incr?key=n").await;
        assert_eq!(status, 503);
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
    }
    assert_eq!(
        demo.get(&demo.raw(), "/healthz").await.0,
        200,
        "the app itself stays up"
    );

    let _redis = OwnRedis::start(port, &dir);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = demo.get(&browser, "/get?key=n").await;
        if status == 200 {
            assert_eq!(body, "2", "acknowledged writes survive the restart");
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(demo.get(&browser, "/incr?key=n").await, (200, "3".into()));
}
