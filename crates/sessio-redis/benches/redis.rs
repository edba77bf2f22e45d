//! Criterion benchmarks of the Redis store against the Redis on 127.0.0.1:6379:
//! load, set + commit, increment (one at a time, and 64 concurrent loads), plus the
//! Redis commands (round trips) each operation sends, measured with
//! `INFO commandstats`.
//!
//! `cargo bench -p sessio-redis --bench redis -- --warm-up-time 1 --measurement-time 3`

#![allow(missing_docs, unreachable_pub)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::{
    collections::HashMap,
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use sessio::{
    store::{Change, Patch, Store},
    IdGenerator, RandomIds, StoreKey,
};
use sessio_redis::{
    fred::interfaces::{ClientLike, HashesInterface},
    RedisStore,
};

const PORT: u16 = 6379;

fn patch(create: bool, changes: Vec<Change>) -> Patch {
    Patch {
        create,
        clear: false,
        changes,
        expires_at: Some(SystemTime::now() + Duration::from_secs(600)),
    }
}

fn set_patch() -> Patch {
    patch(
        false,
        vec![Change::Set(
            "name".into(),
            Bytes::from_static(b"\"kataras\""),
        )],
    )
}

fn increment_patch() -> Patch {
    patch(false, vec![Change::Increment("visits".into(), 1)])
}

/// Top-level commands the store sends (commands run inside scripts also show up in
/// commandstats, so they are not summed).
fn commands_sent() -> u64 {
    let stats = support::raw_command(PORT, "INFO commandstats").expect("INFO");
    ["evalsha", "eval", "del", "scan", "script|load"]
        .iter()
        .map(|c| support::command_calls(&stats, c))
        .sum()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let store = rt.block_on(async {
        RedisStore::builder(&format!("redis://127.0.0.1:{PORT}"))
            .expect("url")
            .key_prefix(support::random_prefix())
            .connect()
            .await
            .expect("Redis must run on 127.0.0.1:6379")
    });
    let key = StoreKey::for_id(&RandomIds.generate());
    let seed = patch(
        true,
        vec![
            Change::Set("user".into(), Bytes::from_static(b"\"kataras\"")),
            Change::Set("roles".into(), Bytes::from_static(b"[\"admin\",\"dev\"]")),
            Change::Set("visits".into(), Bytes::from_static(b"1")),
            Change::Set("__sessio:created".into(), Bytes::from_static(b"1763790000")),
        ],
    );
    rt.block_on(store.commit(&key, &seed)).expect("seed");

    // Round trips per operation, by the server's own count (other clients of the
    // shared Redis could only make this larger).
    const N: u64 = 1000;
    let mut round_trips = Vec::new();
    for (name, op) in [("load", 0), ("set+commit", 1), ("increment", 2)] {
        let before = commands_sent();
        rt.block_on(async {
            for _ in 0..N {
                match op {
                    0 => drop(store.load(&key).await.expect("load")),
                    1 => drop(store.commit(&key, &set_patch()).await.expect("commit")),
                    _ => drop(
                        store
                            .commit(&key, &increment_patch())
                            .await
                            .expect("commit"),
                    ),
                }
            }
        });
        round_trips.push((name, (commands_sent() - before) as f64 / N as f64));
    }
    for (name, rt) in &round_trips {
        eprintln!("round trips per {name}: {rt:.3}");
    }

    let mut group = c.benchmark_group("redis");
    group.bench_function("load", |b| {
        b.to_async(&rt)
            .iter(|| async { store.load(&key).await.expect("load") });
    });
    group.bench_function("set+commit", |b| {
        b.to_async(&rt)
            .iter(|| async { store.commit(&key, &set_patch()).await.expect("commit") });
    });
    group.bench_function("increment", |b| {
        b.to_async(&rt).iter(|| async {
            store
                .commit(&key, &increment_patch())
                .await
                .expect("commit")
        });
    });
    // Baselines: the same hash read with a bare HGETALL (no TTL, no script), and PING.
    let redis_key = store.redis_key(&key);
    group.bench_function("baseline_hgetall", |b| {
        b.to_async(&rt).iter(|| async {
            let _: HashMap<String, Bytes> =
                store.pool().hgetall(&redis_key).await.expect("hgetall");
        });
    });
    group.bench_function("baseline_ping", |b| {
        b.to_async(&rt).iter(|| async {
            let _: String = store.pool().ping(None).await.expect("ping");
        });
    });
    group.bench_function("load_x64_concurrent", |b| {
        b.to_async(&rt).iter(|| async {
            let loads = (0..64).map(|_| store.load(&key));
            for r in futures::future::join_all(loads).await {
                r.expect("load");
            }
        });
    });
    group.finish();
    rt.block_on(store.destroy_all()).expect("clean up");
}

criterion_group!(benches, bench);
criterion_main!(benches);
