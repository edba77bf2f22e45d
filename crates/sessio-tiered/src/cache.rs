//! The cache itself: shards of least-recently-used maps, bounded in entries and in
//! bytes.

use std::{
    num::NonZeroUsize,
    sync::{Arc, Mutex, MutexGuard},
    time::Instant,
};

use lru::LruCache;
use sessio::{
    store::{KeyHasher, Record, Values},
    StoreKey,
};

/// Bytes counted per entry on top of its keys and values: the map entry, the record
/// and the value map's table, roughly.
const ENTRY_OVERHEAD: usize = 256;

/// A cached record and when it was loaded (for the staleness bound).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) record: Record,
    pub(crate) loaded_at: Instant,
    weight: usize,
}

impl Entry {
    pub(crate) fn new(record: Record) -> Self {
        let weight = ENTRY_OVERHEAD
            + record
                .values
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>();
        Entry {
            record,
            loaded_at: Instant::now(),
            weight,
        }
    }
}

struct Shard {
    map: LruCache<StoreKey, Entry, KeyHasher>,
    bytes: usize,
}

pub(crate) struct Cache {
    shards: Box<[Mutex<Shard>]>,
    max_bytes_per_shard: usize,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

/// What an insert pushed out.
pub(crate) struct Evicted(pub(crate) u64);

impl Cache {
    /// Bounds are split evenly over the shards, so a shard may evict slightly before
    /// the cache as a whole is full. Small caches get fewer shards (at least 64
    /// entries and 256 KiB each), so that the split stays fair.
    pub(crate) fn new(max_entries: usize, max_bytes: usize) -> Self {
        let wanted = (max_entries / 64).min(max_bytes / (256 << 10)).clamp(1, 64);
        // The largest power of two not above `wanted`.
        let shards = 1 << wanted.ilog2();
        let per_shard =
            NonZeroUsize::new(max_entries.div_ceil(shards).max(1)).unwrap_or(NonZeroUsize::MIN);
        Cache {
            shards: (0..shards)
                .map(|_| {
                    Mutex::new(Shard {
                        map: LruCache::with_hasher(per_shard, KeyHasher),
                        bytes: 0,
                    })
                })
                .collect(),
            max_bytes_per_shard: (max_bytes / shards).max(1),
        }
    }

    fn shard(&self, key: &StoreKey) -> MutexGuard<'_, Shard> {
        let shard = &self.shards[(key.hash_value() >> 40) as usize & (self.shards.len() - 1)];
        // The maps are never left half-updated by a panic: carry on.
        shard.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The entry for `key`, marked most recently used.
    pub(crate) fn get(&self, key: &StoreKey) -> Option<Entry> {
        self.shard(key).map.get(key).cloned()
    }

    /// Inserts or replaces `key`, then evicts least recently used entries until the
    /// shard fits its bounds again. An entry larger than a shard's byte budget is not
    /// cached at all.
    pub(crate) fn insert(&self, key: StoreKey, entry: Entry) -> Evicted {
        let mut shard = self.shard(&key);
        self.insert_locked(&mut shard, key, entry)
    }

    /// Replaces `key`'s entry with `entry` only if the cached values are still
    /// `expected` (the copy `entry` was derived from); otherwise drops whatever is
    /// cached, since another write of this process changed it in between.
    pub(crate) fn replace_if_current(
        &self,
        key: &StoreKey,
        expected: &Arc<Values>,
        entry: Entry,
    ) -> Evicted {
        let mut shard = self.shard(key);
        let current = shard
            .map
            .peek(key)
            .is_some_and(|e| Arc::ptr_eq(&e.record.values, expected));
        if current {
            self.insert_locked(&mut shard, key.clone(), entry)
        } else {
            if let Some(old) = shard.map.pop(key) {
                shard.bytes -= old.weight;
            }
            Evicted(0)
        }
    }

    fn insert_locked(&self, shard: &mut Shard, key: StoreKey, entry: Entry) -> Evicted {
        if entry.weight > self.max_bytes_per_shard {
            if let Some(old) = shard.map.pop(&key) {
                shard.bytes -= old.weight;
            }
            return Evicted(0);
        }
        let mut evicted = 0;
        shard.bytes += entry.weight;
        if let Some((old_key, old)) = shard.map.push(key.clone(), entry) {
            shard.bytes -= old.weight;
            if old_key != key {
                evicted += 1;
            }
        }
        while shard.bytes > self.max_bytes_per_shard {
            match shard.map.pop_lru() {
                Some((_, old)) => {
                    shard.bytes -= old.weight;
                    evicted += 1;
                }
                None => break,
            }
        }
        Evicted(evicted)
    }

    pub(crate) fn remove(&self, key: &StoreKey) {
        let mut shard = self.shard(key);
        if let Some(old) = shard.map.pop(key) {
            shard.bytes -= old.weight;
        }
    }

    pub(crate) fn clear(&self) {
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            shard.map.clear();
            shard.bytes = 0;
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).map.len())
            .sum()
    }
}
