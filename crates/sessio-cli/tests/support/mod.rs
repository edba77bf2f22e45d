//! Runs the built `sessio` binary and writes sessions straight into stores.

#![allow(dead_code, unreachable_pub)]

use std::{
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use serde_json::Value;
use sessio::store::{Change, Committed, Patch, Store, StoreKey};

/// What one CLI run gave.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The stdout as JSON, after checking the run succeeded.
    pub fn json(&self) -> Value {
        assert_eq!(self.code, 0, "sessio failed: {self:?}");
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// `sessio --store STORE ARGS...`
pub fn sessio(store: &str, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_sessio"))
        .args(["--store", store])
        .args(args)
        .env_remove("SESSIO_STORE")
        .env_remove("SESSIO_HASH_KEY")
        .env_remove("SESSIO_ID_KEY")
        .output()
        .expect("run sessio");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `sessio --json --store STORE ARGS...`, parsed.
pub fn json(store: &str, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    sessio(store, &all).json()
}

/// A name no other test (in this or a concurrent run) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "sessio_cli_{prefix}_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates a session `id` holding `values`, expiring after `ttl` (or already
/// expired when `expired`).
pub async fn put(
    store: &dyn Store,
    id: &str,
    values: &[(&str, &[u8])],
    ttl: Duration,
    expired: bool,
) {
    let expires_at = if expired {
        SystemTime::now() - ttl
    } else {
        SystemTime::now() + ttl
    };
    let patch = Patch {
        create: true,
        clear: false,
        changes: values
            .iter()
            .map(|(k, v)| Change::Set((*k).to_owned(), Bytes::copy_from_slice(v)))
            .collect(),
        expires_at: Some(expires_at),
    };
    let done = store
        .commit(&StoreKey::from_stored(id), &patch)
        .await
        .expect("commit");
    assert!(matches!(done, Committed::Applied { .. }));
}

/// The ids of a `list --json` page.
pub fn ids(page: &Value) -> Vec<String> {
    page["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Every page of `list`, `limit` at a time: the short ids, and how many pages.
pub fn list_all(store: &str, limit: usize) -> (Vec<Value>, usize) {
    let limit = limit.to_string();
    let mut cursor: Option<String> = None;
    let mut all = Vec::new();
    let mut pages = 0;
    loop {
        let mut args = vec!["list", "--limit", &limit];
        if let Some(c) = &cursor {
            args.extend(["--cursor", c]);
        }
        let page = json(store, &args);
        pages += 1;
        assert!(pages < 100, "paging does not end");
        all.extend(
            page["sessions"]
                .as_array()
                .expect("sessions")
                .iter()
                .cloned(),
        );
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (all, pages),
        }
    }
}

/// Checks the output of the commands shared by every store, on a store holding
/// exactly the sessions `ids` (each with keys `user` = `"iris"` JSON and `blob` =
/// bytes 0xff 0x00), and leaves it empty.
pub fn check_common(store: &str, ids: &[String]) {
    assert_eq!(json(store, &["count"])["count"], ids.len() as u64);
    // Table output for people.
    let table = sessio(store, &["list"]);
    assert_eq!(table.code, 0, "{table:?}");
    assert!(table.stdout.starts_with("ID"), "{table:?}");
    for id in ids {
        assert!(
            !table.stdout.contains(id.as_str()),
            "an id in the clear: {table:?}"
        );
    }
    // Paging: every session once, on more than one page.
    let (listed, pages) = list_all(store, 2);
    assert_eq!(listed.len(), ids.len());
    assert!(pages >= ids.len().div_ceil(2), "{pages} pages");
    let mut short: Vec<String> = listed
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_owned())
        .collect();
    short.sort();
    short.dedup();
    assert_eq!(short.len(), ids.len(), "each session listed once");
    for s in &listed {
        assert_eq!(s["keys"], serde_json::json!(["blob", "user"]), "{s}");
        // "blob" + 2 bytes + "user" + "\"iris\""
        assert_eq!(s["size"], 4 + 2 + 4 + 6, "{s}");
        let expires = s["expires_at"].as_u64().expect("expires_at");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        assert!(expires > now && expires < now + 4000, "{s}");
        let id = s["id"].as_str().expect("id");
        assert!(ids
            .iter()
            .all(|full| !full.contains(id) && !id.contains(full.as_str())));
    }
    // show, by short id and by full id.
    let shown = json(store, &["show", &short[0]]);
    assert_eq!(shown["id"], short[0].as_str());
    assert_eq!(
        shown["values"]["user"],
        serde_json::json!({ "json": "iris" })
    );
    assert_eq!(
        shown["values"]["blob"],
        serde_json::json!({ "base64": "/wA=" })
    );
    let by_full = json(store, &["show", &ids[0]]);
    assert_eq!(by_full["values"]["user"]["json"], "iris");
    let table = sessio(store, &["show", &ids[0]]);
    assert!(
        table.stdout.contains("user") && table.stdout.contains("\"iris\""),
        "{table:?}"
    );
    assert!(!table.stdout.contains(ids[0].as_str()), "{table:?}");
    // A session that does not exist: exit 1, the id not echoed.
    let missing = sessio(store, &["show", "no-such-session-id-at-all"]);
    assert_eq!(missing.code, 1, "{missing:?}");
    assert!(
        !missing.stderr.contains("no-such-session-id-at-all"),
        "{missing:?}"
    );
    // destroy by short id.
    let gone = json(store, &["destroy", &short[0]]);
    assert_eq!(
        gone,
        serde_json::json!({ "id": short[0], "destroyed": true })
    );
    assert_eq!(json(store, &["count"])["count"], ids.len() as u64 - 1);
    assert_eq!(sessio(store, &["destroy", &short[0]]).code, 1);
    // destroy-all refuses without --yes and keeps everything.
    let refused = sessio(store, &["destroy-all"]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("--yes"), "{refused:?}");
    assert_eq!(json(store, &["count"])["count"], ids.len() as u64 - 1);
    let all = json(store, &["destroy-all", "--yes"]);
    assert_eq!(all["destroyed"], ids.len() as u64 - 1);
    assert_eq!(json(store, &["count"])["count"], 0);
    assert_eq!(json(store, &["list"])["sessions"], serde_json::json!([]));
}
