//! `show` and `destroy` by full id when the application hashes ids at rest under a
//! secret key (`SessionsBuilder::hash_ids_with`): the CLI needs that key (`--id-key`).

#![cfg(feature = "fs")]

mod support;

use std::{process::Command, time::Duration};

use base64::Engine as _;
use sessio::{secure::Key, store::StoreKey, IdGenerator, KeysAtRest, RandomIds};
use support::{put, sessio, unique};

#[tokio::test(flavor = "multi_thread")]
async fn full_ids_are_found_under_the_applications_id_key() {
    let dir = std::env::temp_dir().join(unique("id_key"));
    let spec = format!("fs:{}", dir.display());
    let opened = sessio_spec::open(&spec, sessio_spec::Mode::Serve)
        .await
        .expect("open the file store");
    let secret = [7u8; 32];
    let key = Key::from_bytes(&secret).expect("key");
    let encoded = base64::engine::general_purpose::STANDARD.encode(secret);
    let id = RandomIds.generate();
    let stored = StoreKey::derive(&id, &KeysAtRest::hashed_with(&key));
    put(
        opened.store().as_ref(),
        stored.as_str(),
        &[("user", b"\"iris\"")],
        Duration::from_secs(3600),
        false,
    )
    .await;

    // Hashed the default way, the full id finds nothing: exit 1, the id not echoed.
    let without = sessio(&spec, &["show", id.as_str()]);
    assert_eq!(without.code, 1, "{without:?}");
    assert!(!without.stderr.contains(id.as_str()), "{without:?}");

    // With the application's key it is found, by flag or by environment.
    let with = sessio(
        &spec,
        &["--json", "--id-key", &encoded, "show", id.as_str()],
    );
    assert_eq!(with.json()["values"]["user"]["json"], "iris");
    let destroyed = Command::new(env!("CARGO_BIN_EXE_sessio"))
        .args(["--store", &spec, "destroy", id.as_str()])
        .env("SESSIO_ID_KEY", &encoded)
        .env_remove("SESSIO_STORE")
        .output()
        .expect("run sessio");
    assert!(destroyed.status.success(), "{destroyed:?}");
    assert_eq!(
        support::json(&spec, &["count"])["count"],
        0,
        "the session is gone"
    );

    // A key that is not one: a usage error (exit 2) naming the flag, not the value.
    let bad = sessio(&spec, &["--id-key", "not base64!", "count"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("--id-key"), "{bad:?}");
    assert!(!bad.stderr.contains("not base64!"), "{bad:?}");

    drop(opened);
    std::fs::remove_dir_all(&dir).expect("remove the store");
}
