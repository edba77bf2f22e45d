//! `FileStore` against the store conformance suite, plus its own file handling:
//! corrupt files, expiry purge, the purge task, and a SIGKILL restart.

// Helpers outside `#[test]` functions are test code too.
#![allow(clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use bytes::Bytes;
use sessio::{
    store::{conformance, Change, Committed, Patch, Store, StoreErrorKind},
    StoreKey,
};
use sessio_fs::FileStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_store_passes_conformance() {
    let root = tempfile::tempdir().unwrap();
    let mut n = 0;
    conformance::run(|| {
        n += 1;
        let dir = root.path().join(format!("case{n}"));
        async move { FileStore::open(dir).await.unwrap() }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn file_store_without_fsync_passes_conformance() {
    let root = tempfile::tempdir().unwrap();
    let mut n = 0;
    conformance::run(|| {
        n += 1;
        let dir = root.path().join(format!("case{n}"));
        async move { FileStore::builder().fsync(false).open(dir).await.unwrap() }
    })
    .await;
}

fn create(pairs: &[(&str, &str)], ttl: Duration) -> Patch {
    Patch {
        create: true,
        clear: false,
        changes: pairs
            .iter()
            .map(|(k, v)| Change::Set((*k).into(), Bytes::copy_from_slice(v.as_bytes())))
            .collect(),
        expires_at: Some(SystemTime::now() + ttl),
    }
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_garbage_file_fails_only_its_own_session() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).await.unwrap();
    let good = StoreKey::from_stored("good-session-key-0001");
    let bad = StoreKey::from_stored("bad-session-key-00002");
    let minute = Duration::from_secs(60);
    store
        .commit(&good, &create(&[("a", "1")], minute))
        .await
        .unwrap();
    store
        .commit(&bad, &create(&[("a", "1")], minute))
        .await
        .unwrap();

    let bad_file = dir.path().join(format!("{}.session", hex(bad.as_str())));
    assert!(bad_file.exists(), "file named by the hex of the key");
    std::fs::write(&bad_file, b"\x00garbage, not a record").unwrap();

    let err = store.load(&bad).await.expect_err("garbage must not load");
    assert_eq!(err.kind(), &StoreErrorKind::Corrupt);
    let chain = error_chain(&err);
    assert!(
        chain.contains("does not hold a valid session record"),
        "{chain}"
    );
    assert!(chain.contains("bad magic"), "says what is wrong: {chain}");
    assert!(
        chain.contains(&hex(bad.as_str())[..8]),
        "names the file: {chain}"
    );
    assert!(
        !chain.contains(&hex(bad.as_str())),
        "but not the whole secret key: {chain}"
    );
    let err = store
        .commit(&bad, &create(&[("b", "2")], minute))
        .await
        .expect_err("commit on a corrupt session");
    assert_eq!(err.kind(), &StoreErrorKind::Corrupt);

    // A truncated record is reported the same way.
    let good_file = dir.path().join(format!("{}.session", hex(good.as_str())));
    let bytes = std::fs::read(&good_file).unwrap();
    let other = StoreKey::from_stored("truncated-session-003");
    std::fs::write(
        dir.path().join(format!("{}.session", hex(other.as_str()))),
        &bytes[..bytes.len() - 1],
    )
    .unwrap();
    let err = store.load(&other).await.expect_err("truncated");
    assert!(
        error_chain(&err).contains("truncated"),
        "{}",
        error_chain(&err)
    );
    // `count` and `keys` read only the header, which is intact here: remove it.
    assert!(store.destroy(&other).await.unwrap());

    // Everything else keeps working.
    assert!(store.load(&good).await.unwrap().is_some());
    assert_eq!(
        store.count().await.unwrap(),
        1,
        "corrupt files are not live sessions"
    );
    assert_eq!(store.keys(None, 10).await.unwrap().keys, vec![good.clone()]);
    assert_eq!(
        store.purge_expired().await.unwrap(),
        0,
        "corrupt files are kept for the operator"
    );
    assert!(
        store.destroy(&bad).await.unwrap(),
        "a corrupt session can be destroyed"
    );
    assert!(!bad_file.exists());
    store
        .commit(&bad, &create(&[("a", "fresh")], minute))
        .await
        .unwrap();
    assert!(store.load(&bad).await.unwrap().is_some());
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        out.push_str(" / ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_that_do_not_fit_a_file_name_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).await.unwrap();
    let long = StoreKey::from_stored("x".repeat(121));
    let err = store
        .commit(&long, &create(&[("a", "1")], Duration::from_secs(60)))
        .await
        .expect_err("too long");
    assert_eq!(err.kind(), &StoreErrorKind::Unsupported);
    assert!(store.load(&long).await.unwrap().is_none());
    let escape = StoreKey::from_stored("../../escape");
    store
        .commit(&escape, &create(&[("a", "1")], Duration::from_secs(60)))
        .await
        .unwrap();
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec![format!("{}.session", hex("../../escape"))]);
    assert_eq!(store.keys(None, 10).await.unwrap().keys, vec![escape]);
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_deletes_expired_files_and_reports_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::builder()
        .gc_interval(None)
        .open(dir.path())
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    assert!(store.set_expiry_listener(Arc::new(move |k: &StoreKey| {
        sink.lock().unwrap().push(k.clone());
    })));
    let short = StoreKey::from_stored("short-lived");
    let long = StoreKey::from_stored("long-lived");
    store
        .commit(&short, &create(&[("a", "1")], Duration::from_millis(50)))
        .await
        .unwrap();
    store
        .commit(&long, &create(&[("a", "1")], Duration::from_secs(60)))
        .await
        .unwrap();
    std::fs::write(dir.path().join(".tmp-1-1"), b"left by a crash").unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.purge_expired().await.unwrap(), 1);
    assert_eq!(*seen.lock().unwrap(), vec![short.clone()]);
    assert_eq!(store.purge_expired().await.unwrap(), 0);
    assert_eq!(store.count().await.unwrap(), 1);
    assert!(
        dir.path().join(".tmp-1-1").exists(),
        "a fresh temporary file may be in use"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_purge_task_runs_and_shuts_down() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::builder()
        .gc_interval(Some(Duration::from_millis(50)))
        .open(dir.path())
        .await
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = Mutex::new(tx);
    store.set_expiry_listener(Arc::new(move |k: &StoreKey| {
        let _ = tx.lock().unwrap().send(k.clone());
    }));
    let key = StoreKey::from_stored("expires-soon");
    store
        .commit(&key, &create(&[("a", "1")], Duration::from_millis(100)))
        .await
        .unwrap();
    let got = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(5)))
        .await
        .unwrap()
        .expect("the purge task reports the expired session");
    assert_eq!(got, key);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    tokio::time::timeout(Duration::from_secs(5), store.shutdown())
        .await
        .expect("shutdown returns promptly");
    // The store still works after the task stopped.
    assert!(store.load(&key).await.unwrap().is_none());
}

const CHILD_ENV: &str = "SESSIO_FS_RESTART_CHILD";

/// Not a test on its own: the writer process of `acknowledged_commits_survive_sigkill`.
#[test]
fn restart_child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = FileStore::open(&dir).await.unwrap();
        let counter = StoreKey::from_stored("counter");
        store
            .commit(&counter, &create(&[("n", "0")], Duration::from_secs(600)))
            .await
            .unwrap();
        let mut out = std::io::stdout().lock();
        for i in 0u64.. {
            let key = StoreKey::from_stored(format!("session-{i}"));
            store
                .commit(
                    &key,
                    &create(&[("i", &i.to_string())], Duration::from_secs(600)),
                )
                .await
                .unwrap();
            let patch = Patch {
                create: false,
                changes: vec![Change::Increment("n".into(), 1)],
                ..create(&[], Duration::from_secs(600))
            };
            assert!(matches!(
                store.commit(&counter, &patch).await,
                Ok(Committed::Applied { .. })
            ));
            writeln!(out, "ACK {i}").unwrap();
            out.flush().unwrap();
        }
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_commits_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "restart_child_writer",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let started = Instant::now();
    let acked = tokio::task::spawn_blocking(move || {
        let mut last = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(i) = line.strip_prefix("ACK ") {
                last = Some(i.parse::<u64>().unwrap());
                if last >= Some(200) || started.elapsed() > Duration::from_secs(20) {
                    break;
                }
            }
        }
        last
    });
    let acked = acked
        .await
        .unwrap()
        .expect("the child acknowledged commits");
    child.kill().unwrap(); // SIGKILL: no destructor, no flush
    child.wait().unwrap();

    let store = FileStore::open(dir.path()).await.unwrap();
    for i in 0..=acked {
        let record = store
            .load(&StoreKey::from_stored(format!("session-{i}")))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged session {i} of {acked} lost"));
        assert_eq!(record.values["i"], Bytes::from(i.to_string()));
    }
    let counter = store
        .load(&StoreKey::from_stored("counter"))
        .await
        .unwrap()
        .unwrap();
    let n: u64 = std::str::from_utf8(&counter.values["n"])
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        n > acked && n <= acked + 2,
        "counter {n} after {acked} acknowledged increments"
    );
}
