//! The demo on the SQL stores: the core routes work, sessions survive the app's
//! restart, and a killed database connection is at worst one 503.

#![cfg(feature = "sql")]
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;

use support::{pair, session_cookie, Demo};

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const MARIADB_DB: &str = "sessio_demo_test";

fn mariadb_url() -> String {
    let out = Command::new("mysql")
        .args(["-h127.0.0.1", "-uroot", "-e"])
        .arg(format!("CREATE DATABASE IF NOT EXISTS {MARIADB_DB}"))
        .output()
        .expect("the mysql client (scripts/services/mariadb.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("mysql://root@127.0.0.1:3306/{MARIADB_DB}")
}

async fn routes_and_restart(spec: &str) {
    let cookie = {
        let demo = Demo::start(&["--store", spec]);
        let raw = demo.raw();
        let res = raw
            .get(demo.url("/login?user=kataras"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{spec}");
        let cookie = pair(&session_cookie(&res).unwrap());
        let get = |path: &'static str| {
            let raw = raw.clone();
            let url = demo.url(path);
            let cookie = cookie.clone();
            async move {
                let res = raw.get(url).header("cookie", cookie).send().await.unwrap();
                (res.status().as_u16(), res.text().await.unwrap())
            }
        };
        assert_eq!(
            get("/secret").await,
            (200, "The cake is a lie!".into()),
            "{spec}"
        );
        assert_eq!(get("/set?key=color&value=blue").await.0, 200);
        assert_eq!(get("/incr?key=n&by=41").await, (200, "41".into()));
        assert_eq!(get("/flash?key=f&value=once").await.0, 200);
        assert_eq!(get("/flash/get?key=f").await, (200, "once".into()));
        assert_eq!(get("/flash/get?key=f").await.0, 404);
        assert_eq!(get("/delete?key=color").await, (200, "true".into()));
        cookie
    };
    // The app was killed (SIGKILL); a new process finds the session in the database.
    let demo = Demo::start(&["--store", spec]);
    let raw = demo.raw();
    let res = raw
        .get(demo.url("/incr?key=n"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.text().await.unwrap(),
        "42",
        "{spec}: survived the restart"
    );
    let res = raw
        .get(demo.url("/destroy"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = raw
        .get(demo.url("/secret"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn postgres_routes_and_restart() {
    routes_and_restart(POSTGRES).await;
}

#[tokio::test]
async fn mariadb_routes_and_restart() {
    routes_and_restart(&mariadb_url()).await;
}

#[tokio::test]
async fn sqlite_routes_and_restart() {
    let dir = std::env::temp_dir().join(format!("sessio-demo-sqlite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    routes_and_restart(&format!("sqlite:{}", dir.join("sessions.db").display())).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

fn psql(sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-tAc",
            sql,
        ])
        .output()
        .expect("psql (scripts/services/postgres.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn killed_postgres_connections_cost_at_most_one_503() {
    // A database of its own, so that killing its connections disturbs no other test.
    let db = format!("sessio_demo_kill_{}", std::process::id());
    psql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
    psql(&format!("CREATE DATABASE {db}"));
    let demo = Demo::start(&[
        "--store",
        &format!("postgres://postgres@127.0.0.1:5432/{db}"),
    ]);
    let browser = demo.browser();
    assert_eq!(demo.get(&browser, "/incr?key=n").await, (200, "1".into()));
    for round in 0..3 {
        // Kill every connection the demo has open.
        let killed = psql(&format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{db}'"
        ));
        assert!(
            killed.trim().parse::<u32>().unwrap() >= 1,
            "round {round}: nothing to kill"
        );
        let (status, _) = demo.get(&browser, "/get?key=n").await;
        assert!(status == 200 || status == 503, "round {round}: {status}");
        assert_eq!(
            demo.get(&browser, "/incr?key=n").await.0,
            200,
            "round {round}: recovered"
        );
    }
    assert_eq!(demo.get(&browser, "/get?key=n").await, (200, "4".into()));
    drop(demo);
    psql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
}
