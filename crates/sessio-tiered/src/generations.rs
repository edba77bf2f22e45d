//! Generation counters that tell a load or commit whether its key was invalidated
//! while it was in flight.

use std::sync::atomic::{AtomicU64, Ordering};

use sessio::StoreKey;

/// Counters per stripe of keys: enough stripes that unrelated keys rarely share one
/// (a shared stripe only costs a skipped cache insert, never a stale read).
const STRIPES: usize = 1024;

#[derive(Debug)]
pub(crate) struct Generations {
    stripes: Box<[AtomicU64]>,
}

impl Generations {
    pub(crate) fn new() -> Self {
        Generations {
            stripes: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn stripe(&self, key: &StoreKey) -> &AtomicU64 {
        &self.stripes[(key.hash_value() >> 20) as usize % STRIPES]
    }

    /// The generation of `key` now; compare with [`Generations::unchanged`] later.
    pub(crate) fn current(&self, key: &StoreKey) -> u64 {
        self.stripe(key).load(Ordering::Acquire)
    }

    /// Whether `key` saw no invalidation since `seen` was read.
    pub(crate) fn unchanged(&self, key: &StoreKey, seen: u64) -> bool {
        self.current(key) == seen
    }

    /// Marks `key` invalidated.
    pub(crate) fn bump(&self, key: &StoreKey) {
        self.stripe(key).fetch_add(1, Ordering::AcqRel);
    }

    /// Marks every key invalidated.
    pub(crate) fn bump_all(&self) {
        for stripe in self.stripes.iter() {
            stripe.fetch_add(1, Ordering::AcqRel);
        }
    }
}
