//! Load and commit latency of `FileStore` at 10k stored sessions, per durability mode.
//!
//! `cargo bench -p sessio-fs --bench fs_store -- --warm-up-time 1 --measurement-time 3`
//!
//! Each stored session has 20 keys of ~16-byte values. `commit_1key` / `commit_20key`
//! update 1 or 20 keys of a random existing session; `commit_1key_x16` runs 16 such
//! commits concurrently (throughput under load).

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sessio::{
    store::{Change, Patch, Store},
    StoreKey,
};
use sessio_fs::FileStore;

const SESSIONS: usize = 10_000;

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

/// A cheap deterministic spread over the stored sessions.
fn pick(n: &mut usize) -> usize {
    *n = n
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*n >> 33) % SESSIONS
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sessions");
    rt.block_on(async {
        // Fill fast (no fsync), then reopen in each mode.
        let store = FileStore::builder()
            .fsync(false)
            .gc_interval(None)
            .open(&path)
            .await
            .expect("open");
        for i in 0..SESSIONS {
            store
                .commit(&key(i), &patch(true, 20, 0))
                .await
                .expect("fill");
        }
    });
    for (mode, fsync) in [("fsync", true), ("no_fsync", false)] {
        let store = rt.block_on(async {
            FileStore::builder()
                .fsync(fsync)
                .gc_interval(None)
                .open(&path)
                .await
                .expect("reopen")
        });
        let mut g = c.benchmark_group(format!("fs_{mode}_10k"));
        g.throughput(Throughput::Elements(1));
        let mut n = 1;
        g.bench_function("load", |b| {
            b.iter(|| rt.block_on(store.load(&key(pick(&mut n)))).expect("load"))
        });
        for keys in [1, 20] {
            let mut round = 0;
            g.bench_function(BenchmarkId::new("commit", format!("{keys}key")), |b| {
                b.iter(|| {
                    round += 1;
                    rt.block_on(store.commit(&key(pick(&mut n)), &patch(false, keys, round)))
                        .expect("commit")
                })
            });
        }
        g.throughput(Throughput::Elements(16));
        let mut round = 0;
        g.bench_function("commit_1key_x16", |b| {
            b.iter(|| {
                round += 1;
                rt.block_on(async {
                    let tasks: Vec<_> = (0..16)
                        .map(|_| {
                            let store = store.clone();
                            let k = key(pick(&mut n));
                            tokio::spawn(async move {
                                store
                                    .commit(&k, &patch(false, 1, round))
                                    .await
                                    .expect("commit")
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.expect("task");
                    }
                })
            })
        });
        g.finish();
        rt.block_on(store.shutdown());
        drop(store);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
