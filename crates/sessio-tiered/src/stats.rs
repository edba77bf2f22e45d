//! The cache's counters: kept locally for [`TieredStore::stats`](crate::TieredStore::stats)
//! and, with feature `metrics`, reported through the `metrics` facade.

use std::sync::atomic::{AtomicU64, Ordering};

/// One counter, local and (feature `metrics`) exported as
/// `sessio_cache_<name>_total{store=...}`.
pub(crate) struct Counter {
    local: AtomicU64,
    #[cfg(feature = "metrics")]
    exported: metrics::Counter,
}

impl Counter {
    /// The exported handle is resolved now: install a recorder before building the
    /// store, as with `sessio`'s own metrics.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    fn new(name: &'static str, store: &'static str) -> Self {
        Counter {
            local: AtomicU64::new(0),
            #[cfg(feature = "metrics")]
            exported: metrics::counter!(name, "store" => store),
        }
    }

    pub(crate) fn add(&self, n: u64) {
        self.local.fetch_add(n, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        self.exported.increment(n);
    }

    pub(crate) fn get(&self) -> u64 {
        self.local.load(Ordering::Relaxed)
    }
}

/// Hits, misses, evictions, invalidations.
pub(crate) struct Counters {
    pub(crate) hits: Counter,
    pub(crate) misses: Counter,
    pub(crate) evictions: Counter,
    pub(crate) invalidations: Counter,
}

impl Counters {
    pub(crate) fn new(store: &'static str) -> Self {
        Counters {
            hits: Counter::new("sessio_cache_hits_total", store),
            misses: Counter::new("sessio_cache_misses_total", store),
            evictions: Counter::new("sessio_cache_evictions_total", store),
            invalidations: Counter::new("sessio_cache_invalidations_total", store),
        }
    }
}
