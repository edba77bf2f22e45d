//! The demo on the embedded stores: sessions survive a restart of the app (SIGKILL).

#![cfg(all(feature = "redb", feature = "fs"))]
#![allow(clippy::unwrap_used)]

mod support;

use support::{pair, session_cookie, Demo};

async fn survives_restart(spec: &str) {
    let cookie = {
        let demo = Demo::start(&["--store", spec]);
        let raw = demo.raw();
        let res = raw
            .get(demo.url("/login?user=kataras"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let cookie = pair(&session_cookie(&res).unwrap());
        let res = raw
            .get(demo.url("/incr?key=n&by=41"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(res.text().await.unwrap(), "41");
        cookie
        // Dropping `demo` kills the process (SIGKILL): no clean shutdown.
    };
    let demo = Demo::start(&["--store", spec]);
    let raw = demo.raw();
    let res = raw
        .get(demo.url("/secret"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        200,
        "{spec}: the session survived the restart"
    );
    let res = raw
        .get(demo.url("/incr?key=n"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "42");
    assert_eq!(demo.count().await, 1);
}

#[tokio::test]
async fn redb_sessions_survive_a_killed_app() {
    let dir = std::env::temp_dir().join(format!("sessio-demo-redb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    survives_restart(&format!("redb:{}", dir.join("sessions.redb").display())).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn file_sessions_survive_a_killed_app() {
    let dir = std::env::temp_dir().join(format!("sessio-demo-fs-{}", std::process::id()));
    survives_restart(&format!("fs:{}", dir.display())).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_corrupt_database_file_is_a_clear_start_up_error() {
    let path =
        std::env::temp_dir().join(format!("sessio-demo-garbage-{}.redb", std::process::id()));
    std::fs::write(
        &path,
        b"this is not a redb file, just garbage bytes .............",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sessio-demo"))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--store",
            &format!("redb:{}", path.display()),
        ])
        .output()
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(path.to_str().unwrap()),
        "names the file: {err}"
    );
}
