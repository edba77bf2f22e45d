//! The cache's counters reach the `metrics` facade, labelled with the inner store.

#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used)]

use std::{
    collections::BTreeMap,
    sync::{atomic::AtomicU64, atomic::Ordering, Arc, Mutex},
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use metrics::{
    Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use sessio::{
    store::{Change, Patch, Store},
    IdGenerator, MemoryStore, RandomIds, StoreKey,
};
use sessio_tiered::TieredStore;

/// Counters by name and labels, nothing else.
#[derive(Default)]
struct Counters(Mutex<BTreeMap<String, Arc<AtomicU64>>>);

struct Cell(Arc<AtomicU64>);

impl CounterFn for Cell {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }
}

impl Counters {
    fn get(&self, name: &str) -> u64 {
        self.0
            .lock()
            .unwrap()
            .get(name)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

impl Recorder for Counters {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        let cell = self.0.lock().unwrap().entry(name).or_default().clone();
        Counter::from_arc(Arc::new(Cell(cell)))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[tokio::test]
async fn hits_misses_evictions_and_invalidations_are_exported() {
    let recorder = Counters::default();
    let tiered = metrics::with_local_recorder(&recorder, || {
        TieredStore::builder(MemoryStore::new())
            .max_entries(1)
            .build()
    });
    let patch = Patch {
        create: true,
        clear: false,
        changes: vec![Change::Set("v".into(), Bytes::from_static(b"1"))],
        expires_at: Some(SystemTime::now() + Duration::from_secs(60)),
    };
    let (a, b) = (
        StoreKey::for_id(&RandomIds.generate()),
        StoreKey::for_id(&RandomIds.generate()),
    );
    tiered.commit(&a, &patch).await.unwrap();
    tiered.commit(&b, &patch).await.unwrap();
    tiered.load(&a).await.unwrap(); // miss, cached
    tiered.load(&a).await.unwrap(); // hit
    tiered.load(&b).await.unwrap(); // miss, evicts a (room for one)
    tiered.invalidator().invalidate(&b);

    assert_eq!(recorder.get("sessio_cache_hits_total{store=memory}"), 1);
    assert_eq!(recorder.get("sessio_cache_misses_total{store=memory}"), 2);
    assert_eq!(
        recorder.get("sessio_cache_evictions_total{store=memory}"),
        1
    );
    assert_eq!(
        recorder.get("sessio_cache_invalidations_total{store=memory}"),
        1
    );
    let stats = tiered.stats();
    assert_eq!(
        (
            stats.hits,
            stats.misses,
            stats.evictions,
            stats.invalidations
        ),
        (1, 2, 1, 1)
    );
}
