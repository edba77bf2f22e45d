//! Latency percentiles (p50/p99) and sustained commits/s of the embedded stores, per
//! durability mode, at a given number of stored sessions (criterion reports means and
//! medians only; this reports the tail).
//!
//! `cargo run --release -p sessio-redb --example latency -- [SESSIONS] [redb]`
//! (default 10000 sessions; `redb` skips the file store)

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant, SystemTime},
};

use bytes::Bytes;
use sessio::{
    store::{Change, Patch, Store},
    StoreKey,
};
use sessio_fs::FileStore;
use sessio_redb::{Durability, RedbStore};

/// Concurrent tasks that fill the stores before measuring.
const FILLERS: usize = 64;

fn key(i: usize) -> StoreKey {
    StoreKey::from_stored(format!("bench-session-{i:08}-xxxxxxxx"))
}

fn patch(create: bool, keys: usize, round: usize) -> Patch {
    Patch {
        create,
        clear: false,
        changes: (0..keys)
            .map(|k| {
                Change::Set(
                    format!("key{k}"),
                    Bytes::from(format!("\"value-{round:08}\"")),
                )
            })
            .collect(),
        expires_at: Some(SystemTime::now() + Duration::from_secs(3600)),
    }
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

fn pct(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

async fn measure(name: &str, store: Arc<dyn Store>, sessions: usize, ops: usize) {
    let mut rng = Rng(7);
    let mut loads = Vec::with_capacity(ops);
    for _ in 0..ops {
        let k = key(rng.below(sessions));
        let t = Instant::now();
        store.load(&k).await.expect("load").expect("present");
        loads.push(t.elapsed());
    }
    let mut row = format!(
        "| {name} | {} / {} ",
        us(pct(loads.clone(), 0.5)),
        us(pct(loads, 0.99))
    );
    for keys in [1, 20] {
        let mut lat = Vec::with_capacity(ops);
        let started = Instant::now();
        for round in 0..ops {
            let k = key(rng.below(sessions));
            let t = Instant::now();
            store
                .commit(&k, &patch(false, keys, round))
                .await
                .expect("commit");
            lat.push(t.elapsed());
        }
        let rate = ops as f64 / started.elapsed().as_secs_f64();
        row += &format!(
            "| {} / {} | {rate:.0} ",
            us(pct(lat.clone(), 0.5)),
            us(pct(lat, 0.99))
        );
    }
    // Sustained: 16 concurrent writers for 2 s.
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..16u64)
        .map(|w| {
            let (store, done, stop) = (store.clone(), done.clone(), stop.clone());
            tokio::spawn(async move {
                let mut rng = Rng(w + 100);
                let mut round = 0;
                while !stop.load(Ordering::Relaxed) {
                    round += 1;
                    let k = key(rng.below(sessions));
                    store
                        .commit(&k, &patch(false, 1, round))
                        .await
                        .expect("commit");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }
    row += &format!("| {:.0} |", done.load(Ordering::Relaxed) as f64 / 2.0);
    println!("{row}");
}

#[tokio::main]
async fn main() {
    let sessions: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let with_fs = std::env::args().nth(2).as_deref() != Some("redb");
    let ops = 1000;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("latency.redb");
    let files = dir.path().join("files");
    let t = Instant::now();
    {
        let redb = RedbStore::builder()
            .durability(Durability::Batched {
                flush_every: Duration::from_secs(60),
            })
            .gc_interval(None)
            .open(&db)
            .await
            .expect("open");
        let fill_fs = FileStore::builder()
            .fsync(false)
            .gc_interval(None)
            .open(&files)
            .await
            .expect("open");
        // Concurrent writers, so that redb's group commit and the file store's lock
        // stripes fill 1M sessions in minutes rather than one commit at a time.
        let fill_db: Arc<dyn Store> = Arc::new(redb.clone());
        let fill_fs: Arc<dyn Store> = Arc::new(fill_fs);
        let fillers: Vec<_> = (0..FILLERS)
            .map(|w| {
                let (db, fs) = (fill_db.clone(), fill_fs.clone());
                tokio::spawn(async move {
                    for i in (w..sessions).step_by(FILLERS) {
                        db.commit(&key(i), &patch(true, 20, 0)).await.expect("fill");
                        if with_fs {
                            fs.commit(&key(i), &patch(true, 20, 0)).await.expect("fill");
                        }
                    }
                })
            })
            .collect();
        for filler in fillers {
            filler.await.expect("filler");
        }
        redb.shutdown().await.expect("flush");
    }
    eprintln!(
        "filled {sessions} sessions (20 keys each) in {:.1?}",
        t.elapsed()
    );
    println!("{sessions} stored sessions, {ops} sequential ops per column, then 16 concurrent writers for 2 s\n");
    println!("| store, mode | load p50 / p99 | commit 1 key p50 / p99 | commits/s | commit 20 keys p50 / p99 | commits/s | 16 writers, commits/s |");
    println!("|---|---|---|---|---|---|---|");
    for (name, durability) in [
        ("redb, Immediate", Durability::Immediate),
        (
            "redb, Batched 100 ms",
            Durability::Batched {
                flush_every: Duration::from_millis(100),
            },
        ),
    ] {
        let store = RedbStore::builder()
            .durability(durability)
            .gc_interval(None)
            .open(&db)
            .await
            .expect("open");
        measure(name, Arc::new(store.clone()), sessions, ops).await;
        store.shutdown().await.expect("shutdown");
    }
    let fs_modes: &[(&str, bool)] = if with_fs {
        &[("fs, fsync", true), ("fs, no fsync", false)]
    } else {
        &[]
    };
    for &(name, fsync) in fs_modes {
        let store = FileStore::builder()
            .fsync(fsync)
            .gc_interval(None)
            .open(&files)
            .await
            .expect("open");
        measure(name, Arc::new(store), sessions, ops).await;
    }
}
