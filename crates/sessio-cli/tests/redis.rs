//! `sessio` against the real Redis at 127.0.0.1:6379, under a key prefix of its own.

#![cfg(feature = "redis")]

mod support;

use std::time::Duration;

use support::{check_common, json, put, sessio, unique};

#[tokio::test]
async fn every_subcommand_on_redis() {
    let prefix = format!("{}:", unique("redis"));
    let spec = format!("redis://127.0.0.1:6379/0?key_prefix={prefix}");
    let opened = sessio_spec::open(&spec, sessio_spec::Mode::Admin)
        .await
        .expect("Redis must run on 127.0.0.1:6379");
    let store = opened.store();
    let ids: Vec<String> = (0..5)
        .map(|i| format!("redis-session-{i}-{}", unique("id")))
        .collect();
    for id in &ids {
        put(
            &**store,
            id,
            &[("user", b"\"iris\""), ("blob", &[0xff, 0x00])],
            Duration::from_secs(3600),
            false,
        )
        .await;
    }
    // Redis expires keys itself: nothing to purge, and the CLI says so.
    assert_eq!(
        json(&spec, &["purge-expired"]),
        serde_json::json!({ "purged": 0, "native_expiry": true })
    );
    let text = sessio(&spec, &["purge-expired"]);
    assert!(
        text.stdout.contains("expires sessions by itself"),
        "{text:?}"
    );
    // No schema either.
    assert_eq!(json(&spec, &["migrate"])["migrated"], false);
    check_common(&spec, &ids);
}

#[test]
fn bad_specs_and_unreachable_servers_exit_2_with_one_line() {
    for (spec, needle) in [
        ("nosuch:thing", "unknown store spec"),
        ("memory", "cannot be reached from another process"),
        ("redis://127.0.0.1:1/0", "127.0.0.1:1"),
        ("redis://user:hunter2@127.0.0.1:1/0", "user:***@127.0.0.1:1"),
    ] {
        let run = sessio(spec, &["count"]);
        assert_eq!(run.code, 2, "{spec}: {run:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{spec}: {run:?}");
        assert!(run.stderr.contains(needle), "{spec}: {run:?}");
        assert!(!run.stderr.contains("hunter2"), "{spec}: {run:?}");
        assert!(run.stdout.is_empty(), "{spec}: {run:?}");
    }
}
