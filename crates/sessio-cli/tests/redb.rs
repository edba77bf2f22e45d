//! `sessio` on a redb file holding sessions that the demo wrote over HTTP.
//!
//! Needs the `sessio-demo` binary next to `sessio` (cargo builds both for
//! `cargo test --workspace`, or `cargo test -p sessio-cli -p sessio-demo`).

#![cfg(feature = "redb")]

mod support;

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use support::{json, list_all, sessio, unique};

/// The demo binary, built by cargo next to ours.
fn demo_binary() -> PathBuf {
    let ours = PathBuf::from(env!("CARGO_BIN_EXE_sessio"));
    let demo = ours.with_file_name(format!("sessio-demo{}", std::env::consts::EXE_SUFFIX));
    assert!(
        demo.exists(),
        "{} is missing: run `cargo build -p sessio-demo` (or test both packages together)",
        demo.display()
    );
    demo
}

/// Runs the demo on `spec` at 127.0.0.1:`port`, lets `script` talk to it, then stops
/// it with SIGTERM (a clean shutdown) so that the CLI can open the file.
async fn with_demo<F, Fut>(spec: &str, port: u16, script: F)
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut child = Command::new(demo_binary())
        .args(["--addr", &format!("127.0.0.1:{port}"), "--store", spec])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start sessio-demo");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("start-up line");
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected start-up line {line:?}"))
        .to_owned();
    script(base).await;
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let status = child.wait().expect("wait");
    assert!(
        status.success(),
        "the demo stops cleanly on SIGTERM: {status}"
    );
}

async fn get(client: &reqwest::Client, url: String) -> String {
    let res = client.get(url).send().await.expect("request");
    assert_eq!(res.status(), 200);
    res.text().await.expect("body")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_subcommand_on_a_redb_file_written_by_the_demo() {
    let dir = std::env::temp_dir().join(unique("redb"));
    std::fs::create_dir_all(&dir).expect("dir");
    let spec = format!("redb:{}", dir.join("sessions.redb").display());
    with_demo(&spec, 18_101, |base| async move {
        for user in ["kataras", "iris", "makis"] {
            let browser = reqwest::Client::builder()
                .cookie_store(true)
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client");
            get(&browser, format!("{base}/login?user={user}")).await;
            assert_eq!(
                get(&browser, format!("{base}/incr?key=n&by=41")).await,
                "41"
            );
        }
        // A visitor who only sets a value.
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .expect("client");
        get(&browser, format!("{base}/set?key=colour&value=green")).await;
    })
    .await;

    assert_eq!(json(&spec, &["count"])["count"], 4);
    let (listed, pages) = list_all(&spec, 3);
    assert_eq!((listed.len(), pages), (4, 2));
    let logged_in: Vec<&serde_json::Value> = listed
        .iter()
        .filter(|s| {
            s["keys"]
                .as_array()
                .expect("keys")
                .iter()
                .any(|k| k == "user")
        })
        .collect();
    assert_eq!(logged_in.len(), 3);
    for s in &logged_in {
        let keys = s["keys"].as_array().expect("keys");
        for k in ["authenticated", "n", "user"] {
            assert!(keys.iter().any(|x| x == k), "{s}");
        }
        assert!(s["size"].as_u64().expect("size") > 20, "{s}");
        assert!(s["expires_at"].as_u64().is_some(), "{s}");
    }
    // show: the values the demo wrote, decoded.
    let mut users = Vec::new();
    for s in &logged_in {
        let shown = json(&spec, &["show", s["id"].as_str().expect("id")]);
        assert_eq!(
            shown["values"]["authenticated"],
            serde_json::json!({ "json": true })
        );
        assert_eq!(shown["values"]["n"], serde_json::json!({ "json": 41 }));
        users.push(
            shown["values"]["user"]["json"]
                .as_str()
                .expect("user")
                .to_owned(),
        );
    }
    users.sort();
    assert_eq!(users, ["iris", "kataras", "makis"]);

    // Nothing expired yet; redb keeps expired records until a purge.
    assert_eq!(
        json(&spec, &["purge-expired"]),
        serde_json::json!({ "purged": 0, "native_expiry": false })
    );
    assert_eq!(json(&spec, &["migrate"])["migrated"], false);
    let id = logged_in[0]["id"].as_str().expect("id").to_owned();
    assert_eq!(json(&spec, &["destroy", &id])["destroyed"], true);
    assert_eq!(sessio(&spec, &["show", &id]).code, 1);
    assert_eq!(json(&spec, &["count"])["count"], 3);
    assert_eq!(sessio(&spec, &["destroy-all"]).code, 2);
    assert_eq!(json(&spec, &["destroy-all", "--yes"])["destroyed"], 3);
    assert_eq!(json(&spec, &["count"])["count"], 0);

    // The demo sees what the CLI did: the file is still a good store.
    with_demo(&spec, 18_102, |base| async move {
        let count = get(&reqwest::Client::new(), format!("{base}/admin/count")).await;
        assert_eq!(count.trim(), "0");
    })
    .await;
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
