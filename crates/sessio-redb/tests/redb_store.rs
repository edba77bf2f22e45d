//! `RedbStore` against the store conformance suite, plus its own behaviour: damaged
//! files and records, the expiry index and purge task, durability modes, and a SIGKILL
//! restart.

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
use sessio_redb::{redb, Durability, RedbStore};

fn batched() -> Durability {
    Durability::Batched {
        flush_every: Duration::from_millis(20),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redb_store_passes_conformance() {
    let root = tempfile::tempdir().unwrap();
    let mut n = 0;
    conformance::run(|| {
        n += 1;
        let path = root.path().join(format!("case{n}.redb"));
        async move { RedbStore::open(path).await.unwrap() }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batched_redb_store_passes_conformance() {
    let root = tempfile::tempdir().unwrap();
    let mut n = 0;
    conformance::run(|| {
        n += 1;
        let path = root.path().join(format!("case{n}.redb"));
        async move {
            RedbStore::builder()
                .durability(batched())
                .gc_interval(Some(Duration::from_millis(200)))
                .open(path)
                .await
                .unwrap()
        }
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
async fn a_garbage_file_is_a_clear_error_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.redb");
    std::fs::write(
        &path,
        b"this is not a redb database, just some text ".repeat(200),
    )
    .unwrap();
    let err = RedbStore::open(&path)
        .await
        .expect_err("garbage must not open");
    let chain = error_chain(&err);
    eprintln!("garbage file: {chain}");
    assert_eq!(err.kind(), &StoreErrorKind::Corrupt, "{chain}");
    assert!(chain.contains("garbage.redb"), "names the file: {chain}");
    assert!(
        chain.contains("damaged") || chain.contains("not a redb"),
        "{chain}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_file_is_a_clear_error_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.redb");
    let store = RedbStore::builder()
        .gc_interval(None)
        .open(&path)
        .await
        .unwrap();
    for i in 0..2000 {
        let key = StoreKey::from_stored(format!("session-{i:05}"));
        let value = "x".repeat(200);
        store
            .commit(&key, &create(&[("v", &value)], Duration::from_secs(600)))
            .await
            .unwrap();
    }
    store.shutdown().await.unwrap();
    drop(store);
    let full = std::fs::read(&path).unwrap();
    assert!(
        full.len() > 100_000,
        "a real database of {} bytes",
        full.len()
    );
    for keep in [full.len() / 2, 4096, 100, 0] {
        std::fs::write(&path, &full[..keep]).unwrap();
        match RedbStore::open(&path).await {
            Err(err) => {
                let chain = error_chain(&err);
                eprintln!("truncated to {keep} bytes: {chain}");
                assert_eq!(err.kind(), &StoreErrorKind::Corrupt, "{keep}: {chain}");
                assert!(chain.contains("sessions.redb"), "names the file: {chain}");
            }
            // An empty file is a new, empty database (redb's rule for `create`).
            Ok(store) => {
                assert_eq!(keep, 0, "a file truncated to {keep} bytes opened");
                assert_eq!(store.count().await.unwrap(), 0);
                store.shutdown().await.unwrap();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_record_fails_only_its_own_session() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.redb");
    let good = StoreKey::from_stored("good-session-key-0001");
    let bad = StoreKey::from_stored("bad-session-key-00002");
    {
        let store = RedbStore::open(&path).await.unwrap();
        for key in [&good, &bad] {
            store
                .commit(key, &create(&[("a", "1")], Duration::from_secs(60)))
                .await
                .unwrap();
        }
        store.shutdown().await.unwrap();
    }
    {
        // Damage one record behind the store's back.
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<&str, &[u8]> =
                redb::TableDefinition::new("sessio_sessions_v1");
            let mut table = txn.open_table(def).unwrap();
            table.insert(bad.as_str(), &b"\xffgarbage"[..]).unwrap();
        }
        txn.commit().unwrap();
    }
    let store = RedbStore::open(&path).await.unwrap();
    let err = store.load(&bad).await.expect_err("garbage record");
    assert_eq!(err.kind(), &StoreErrorKind::Corrupt);
    let chain = error_chain(&err);
    assert!(
        chain.contains("session `bad-…`"),
        "names the session: {chain}"
    );
    assert!(
        !chain.contains(bad.as_str()),
        "but not the whole secret key: {chain}"
    );
    assert!(chain.contains("bad magic"), "says what is wrong: {chain}");
    let err = store
        .commit(&bad, &create(&[("b", "2")], Duration::from_secs(60)))
        .await
        .expect_err("commit on a damaged record");
    assert_eq!(err.kind(), &StoreErrorKind::Corrupt);
    // The rest keeps working.
    assert!(store.load(&good).await.unwrap().is_some());
    assert_eq!(store.keys(None, 10).await.unwrap().keys, vec![good.clone()]);
    assert!(
        store.destroy(&bad).await.unwrap(),
        "a damaged session can be destroyed"
    );
    assert!(store.load(&bad).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_uses_the_index_and_reports_each_session() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::builder()
        .gc_interval(None)
        .open(dir.path().join("s.redb"))
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    assert!(store.set_expiry_listener(Arc::new(move |k: &StoreKey| {
        sink.lock().unwrap().push(k.clone());
    })));
    let mut short = Vec::new();
    for i in 0..600 {
        // More than one purge batch (512) of short sessions.
        let key = StoreKey::from_stored(format!("short-{i:04}"));
        store
            .commit(&key, &create(&[("a", "1")], Duration::from_millis(50)))
            .await
            .unwrap();
        short.push(key);
    }
    let long = StoreKey::from_stored("long");
    store
        .commit(&long, &create(&[("a", "1")], Duration::from_secs(60)))
        .await
        .unwrap();
    // A session whose deadline moved keeps only its new index entry.
    let moved = StoreKey::from_stored("moved");
    store
        .commit(&moved, &create(&[("a", "1")], Duration::from_millis(50)))
        .await
        .unwrap();
    let extend = Patch {
        create: false,
        ..create(&[], Duration::from_secs(60))
    };
    store.commit(&moved, &extend).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        store.count().await.unwrap(),
        2,
        "count skips expired before any purge"
    );
    assert_eq!(store.purge_expired().await.unwrap(), 600);
    let mut got = seen.lock().unwrap().clone();
    got.sort();
    assert_eq!(got, short);
    assert_eq!(store.purge_expired().await.unwrap(), 0);
    assert!(store.load(&moved).await.unwrap().is_some());
    assert_eq!(store.count().await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_purge_task_runs_and_shuts_down() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let store = RedbStore::builder()
        .gc_interval(Some(Duration::from_millis(50)))
        .durability(batched())
        .open(&path)
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
    tokio::time::timeout(Duration::from_secs(5), store.shutdown())
        .await
        .expect("shutdown returns promptly")
        .unwrap();
    // Still usable; and dropping the last handle releases the file.
    let kept = StoreKey::from_stored("kept");
    store
        .commit(&kept, &create(&[("a", "1")], Duration::from_secs(60)))
        .await
        .unwrap();
    drop(store);
    let store = RedbStore::open(&path)
        .await
        .expect("the file was released on drop");
    assert!(
        store.load(&kept).await.unwrap().is_some(),
        "drop flushed the batched commit"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_store_on_one_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let _first = RedbStore::open(&path).await.unwrap();
    let err = RedbStore::open(&path).await.expect_err("already open");
    assert_eq!(err.kind(), &StoreErrorKind::Unavailable);
    assert!(
        error_chain(&err).contains("already open"),
        "{}",
        error_chain(&err)
    );
}

const CHILD_ENV: &str = "SESSIO_REDB_RESTART_CHILD";
const CHILD_MODE_ENV: &str = "SESSIO_REDB_RESTART_MODE";

/// Not a test on its own: the writer process of the SIGKILL tests.
#[test]
fn restart_child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let durability = match std::env::var(CHILD_MODE_ENV).as_deref() {
        Ok("batched") => Durability::Batched {
            flush_every: Duration::from_secs(3600),
        },
        _ => Durability::Immediate,
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = RedbStore::builder()
            .durability(durability)
            .open(&path)
            .await
            .unwrap();
        let counter = StoreKey::from_stored("counter");
        store
            .commit(&counter, &create(&[("n", "0")], Duration::from_secs(600)))
            .await
            .unwrap();
        store.flush().await.unwrap();
        let mut out = std::io::stdout().lock();
        for i in 0u64.. {
            let key = StoreKey::from_stored(format!("session-{i:06}"));
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
            if i % 50 == 49 {
                store.flush().await.unwrap();
                writeln!(out, "FLUSHED {i}").unwrap();
            }
            out.flush().unwrap();
        }
    });
}

/// Runs the writer until it acknowledged `want` commits, SIGKILLs it, and returns the
/// last acknowledged and the last flushed index.
async fn write_then_kill(path: &std::path::Path, mode: &str, want: u64) -> (u64, Option<u64>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "restart_child_writer",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, path)
        .env(CHILD_MODE_ENV, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let started = Instant::now();
    let reader = tokio::task::spawn_blocking(move || {
        let (mut acked, mut flushed) = (None, None);
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(i) = line.strip_prefix("ACK ") {
                acked = Some(i.parse::<u64>().unwrap());
                if acked >= Some(want) || started.elapsed() > Duration::from_secs(20) {
                    break;
                }
            } else if let Some(i) = line.strip_prefix("FLUSHED ") {
                flushed = Some(i.parse::<u64>().unwrap());
            }
        }
        (acked, flushed)
    });
    let (acked, flushed) = reader.await.unwrap();
    child.kill().unwrap(); // SIGKILL: no destructor, no flush
    child.wait().unwrap();
    (acked.expect("the child acknowledged commits"), flushed)
}

async fn assert_present(store: &RedbStore, upto: u64) {
    for i in 0..=upto {
        let record = store
            .load(&StoreKey::from_stored(format!("session-{i:06}")))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("session {i} (of {upto} durable) lost"));
        assert_eq!(record.values["i"], Bytes::from(i.to_string()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn immediate_commits_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let (acked, _) = write_then_kill(&path, "immediate", 150).await;
    let store = RedbStore::open(&path).await.expect("reopens after SIGKILL");
    assert_present(&store, acked).await;
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

#[tokio::test(flavor = "multi_thread")]
async fn batched_commits_survive_sigkill_up_to_the_last_flush() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let (acked, flushed) = write_then_kill(&path, "batched", 420).await;
    let flushed = flushed.expect("the child flushed");
    let store = RedbStore::open(&path).await.expect("reopens after SIGKILL");
    assert_present(&store, flushed).await;
    // Unflushed commits may or may not be there, but never half of a commit.
    let count = store.count().await.unwrap();
    eprintln!(
        "batched SIGKILL: {acked} acknowledged, {flushed} flushed, {count} sessions after restart"
    );
    assert!(
        count >= flushed + 2 && count <= acked + 3,
        "{count} sessions, {flushed} flushed, {acked} acked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_patch_does_not_disturb_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path().join("s.redb")).await.unwrap();
    let good = StoreKey::from_stored("good");
    let text = StoreKey::from_stored("text");
    store
        .commit(&good, &create(&[], Duration::from_secs(60)))
        .await
        .unwrap();
    store
        .commit(&text, &create(&[("t", "\"abc\"")], Duration::from_secs(60)))
        .await
        .unwrap();
    let update = |key: &str, by: i64| Patch {
        create: false,
        changes: vec![Change::Increment(key.into(), by)],
        ..create(&[], Duration::from_secs(60))
    };
    // Concurrent commits land in shared transactions (group commit); the bad ones
    // must fail alone.
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let store = store.clone();
            let (good, text) = (good.clone(), text.clone());
            let (good_patch, bad_patch) = (update("n", 1), update("t", 1));
            tokio::spawn(async move {
                if i % 2 == 0 {
                    store.commit(&good, &good_patch).await.map(|_| ())
                } else {
                    store.commit(&text, &bad_patch).await.map(|_| ())
                }
            })
        })
        .collect();
    let mut failed = 0;
    for t in tasks {
        if let Err(e) = t.await.unwrap() {
            assert!(
                matches!(e.kind(), StoreErrorKind::NotAnInteger { .. }),
                "{e}"
            );
            failed += 1;
        }
    }
    assert_eq!(failed, 50);
    let n = store.load(&good).await.unwrap().unwrap().values["n"].to_vec();
    assert_eq!(n, b"50");
    let t = store.load(&text).await.unwrap().unwrap().values["t"].to_vec();
    assert_eq!(t, b"\"abc\"");
}
