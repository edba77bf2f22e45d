//! [`MemoryStore`]: the default, in-process store.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard, OnceLock},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use hashbrown::HashTable;

use super::{
    apply_changes, Change, Committed, ExpiryListener, KeyHasher, KeyPage, Patch, Record, Store,
    StoreError, StoreFuture, StoreKey, Values,
};

/// Expired sessions removed per write, on the shard being written: GC work stays
/// proportional to what expires and spread over requests, never a stop-the-world scan.
const SWEEP_PER_WRITE: usize = 16;

/// Expired sessions removed per lock of a shard by [`MemoryStore::purge_expired`]
/// (about 15 µs of holding it at a million sessions).
const PURGE_BATCH: usize = 32;

/// A shard's slab grows by chunks of this many slots (22 KiB): it never copies the
/// sessions it holds to grow, and wastes at most one partly filled chunk.
const CHUNK_BITS: u32 = 8;
const CHUNK: usize = 1 << CHUNK_BITS;

/// An in-process store: a sharded concurrent map with an expiry index.
///
/// - Every operation locks one shard for a few map operations; loads hand out the
///   stored values without copying (`Arc`).
/// - Each shard keeps its sessions in a slab (fixed-size chunks of slots), a hash table
///   of slot numbers found by the key's precomputed hash, and a deadline index of
///   (deadline, slot number) pairs: a session's key is stored once, and each index
///   entry costs a few bytes (see docs/decisions.md, "memory store at scale").
/// - Every write first removes up to 16 expired sessions of its shard, and
///   [`MemoryStore::purge_expired`] removes all of them, so the cost of expiry is
///   proportional to what expires, not to what lives; the values of removed sessions
///   are freed after the shard's lock is released. An expired session is never
///   returned, swept or not.
/// - Sessions live only as long as the process: use a persistent store to keep them
///   across restarts or to share them between servers.
/// - Optionally bounded ([`MemoryStoreBuilder::capacity`]): when full, creating a
///   session evicts the least recently used one (loaded or written longest ago), so a
///   flood of new sessions cannot exhaust memory. Without a capacity (the default) the
///   store grows with the number of live sessions and pays nothing for bookkeeping.
/// - Keeps a user index for [`Sessions::destroy_user`](crate::Sessions::destroy_user)
///   (log out everywhere), pruned of ended sessions whenever a user is indexed and by
///   [`purge_expired`](MemoryStore::purge_expired).
///
/// ```
/// use sessio::{MemoryStore, Sessions};
///
/// let sessions = Sessions::builder().store(MemoryStore::new()).build().unwrap();
/// # let _ = sessions;
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Box<[Mutex<Shard>]>,
    listener: OnceLock<ExpiryListener>,
    /// The user index (log out everywhere): user → keys of their sessions. Touched
    /// only by `index_user`, `destroy_user` and purges, never on the request path.
    users: Mutex<HashMap<String, HashSet<StoreKey, KeyHasher>>>,
}

#[derive(Default)]
struct Shard {
    /// Slot numbers, found by the key's precomputed hash (keys are never hashed again).
    table: HashTable<u32>,
    slab: Slab,
    /// Sessions with a deadline, soonest first.
    by_deadline: BTreeSet<(Nanos, u32)>,
    /// Most sessions this shard holds; 0: unbounded (and no use tracking at all).
    capacity: usize,
    /// Bounded shards only: slots by last use (a tick of `clock`), oldest first.
    by_use: BTreeMap<u64, u32>,
    clock: u64,
}

/// A deadline in nanoseconds since the Unix epoch, [`NEVER`] for none: half the size
/// of an `Option<SystemTime>`, and exact from 1970 to 2554.
type Nanos = u64;

const NEVER: Nanos = Nanos::MAX;

fn to_nanos(t: Option<SystemTime>) -> Nanos {
    match t {
        None => NEVER,
        // Before 1970: long past, 0 says as much. After 2554: still never reached.
        Some(t) => t.duration_since(UNIX_EPOCH).map_or(0, |d| {
            u64::try_from(d.as_nanos()).map_or(NEVER - 1, |n| n.min(NEVER - 1))
        }),
    }
}

fn from_nanos(n: Nanos) -> Option<SystemTime> {
    (n != NEVER).then(|| UNIX_EPOCH + Duration::from_nanos(n))
}

fn now() -> Nanos {
    to_nanos(Some(SystemTime::now()))
}

/// A session (or, with no values, a free slot).
struct Slot {
    key: StoreKey,
    /// `None`: the slot is free.
    values: Option<Arc<Values>>,
    /// Expired once `now >= deadline` ([`NEVER`] is above any `now`).
    deadline: Nanos,
    /// In a bounded store, when it was last used; in a free slot, the next free slot.
    used: u64,
}

/// Slots in chunks that never move; freed slots are chained through `used` and
/// reused first.
#[derive(Default)]
struct Slab {
    chunks: Vec<Vec<Slot>>,
    /// The first free slot, if any.
    free: Option<u32>,
}

impl Slab {
    fn get(&self, i: u32) -> &Slot {
        let i = i as usize;
        &self.chunks[i >> CHUNK_BITS][i & (CHUNK - 1)]
    }

    fn get_mut(&mut self, i: u32) -> &mut Slot {
        let i = i as usize;
        &mut self.chunks[i >> CHUNK_BITS][i & (CHUNK - 1)]
    }

    fn insert(&mut self, slot: Slot) -> u32 {
        if let Some(i) = self.free {
            let free = std::mem::replace(self.get_mut(i), slot);
            // The chain holds slot numbers, and u64::MAX at its end (see `remove`).
            self.free = u32::try_from(free.used).ok();
            return i;
        }
        if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let n = self.chunks.len() - 1;
        let chunk = &mut self.chunks[n];
        // A shard would need 350 GB of slots to overflow a u32.
        #[allow(clippy::cast_possible_truncation)]
        let i = (n * CHUNK + chunk.len()) as u32;
        chunk.push(slot);
        i
    }

    /// Frees slot `i` and returns its values.
    fn remove(&mut self, i: u32) -> Option<Arc<Values>> {
        let next = self.free.map_or(u64::MAX, u64::from);
        let slot = self.get_mut(i);
        let values = slot.values.take();
        slot.used = next;
        self.free = Some(i);
        values
    }
}

/// Sessions a shard let go of (expired or evicted) with their values: the listener
/// hears of them, and their values are freed, once the shard's lock is released.
type Gone = Vec<(StoreKey, Option<Arc<Values>>)>;

/// Configures a [`MemoryStore`].
#[derive(Debug, Clone, Default)]
pub struct MemoryStoreBuilder {
    shards: Option<usize>,
    capacity: Option<usize>,
}

impl MemoryStoreBuilder {
    /// The number of shards (rounded up to a power of two). Default: 16 per CPU core.
    #[must_use]
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = Some(n.max(1));
        self
    }

    /// The most sessions the store holds (default: unbounded). When it is full,
    /// creating a session first evicts the least recently used one: the session loaded
    /// or written longest ago. Evicted sessions read as new (their cookie starts a
    /// fresh session) and are reported to `on_destroy` like expired ones.
    ///
    /// Least recently used is tracked per shard: the capacity is split evenly over the
    /// shards (a capacity below the shard count lowers the shard count), so the store
    /// never holds more than `capacity` sessions and evicts the least recently used
    /// session of the shard that needs room. Keys spread evenly over shards, so this is
    /// close to a global LRU without a global lock. Bookkeeping costs a few ordered-map
    /// operations per request, paid only when a capacity is set.
    #[must_use]
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = Some(n.max(1));
        self
    }

    /// Builds the store.
    pub fn build(self) -> MemoryStore {
        let mut n = self
            .shards
            .unwrap_or_else(|| {
                16 * std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            })
            .next_power_of_two();
        let mut per_shard = 0;
        if let Some(capacity) = self.capacity {
            // A power of two no larger than the capacity, so each shard holds >= 1.
            while n > capacity {
                n /= 2;
            }
            per_shard = capacity / n;
        }
        MemoryStore {
            inner: Arc::new(Inner {
                shards: (0..n)
                    .map(|_| {
                        Mutex::new(Shard {
                            capacity: per_shard,
                            ..Shard::default()
                        })
                    })
                    .collect(),
                listener: OnceLock::new(),
                users: Mutex::default(),
            }),
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("shards", &self.inner.shards.len())
            .field("capacity_per_shard", &lock(&self.inner.shards[0]).capacity)
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// A store with default settings.
    pub fn new() -> Self {
        MemoryStoreBuilder::default().build()
    }

    /// Configures a store.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder::default()
    }

    /// Removes every expired session now, and drops users with no live session from
    /// the user index; returns how many sessions were removed.
    pub fn purge_expired(&self) -> u64 {
        let now = now();
        let mut total = 0;
        for shard in self.inner.shards.iter() {
            // In batches: requests waiting for this shard wait for one batch at most.
            loop {
                let expired = lock(shard).sweep(now, PURGE_BATCH);
                let n = expired.len();
                total += n as u64;
                self.notify(expired);
                if n < PURGE_BATCH {
                    break;
                }
            }
        }
        let mut users = self.users();
        users.retain(|_, keys| {
            keys.retain(|k| self.is_live(k, now));
            !keys.is_empty()
        });
        total
    }

    fn users(&self) -> MutexGuard<'_, HashMap<String, HashSet<StoreKey, KeyHasher>>> {
        // Every update of the index is a single map operation: a panic cannot tear it.
        self.inner.users.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_live(&self, key: &StoreKey, now: Nanos) -> bool {
        lock(self.shard(key)).live(key, now).is_some()
    }

    fn shard(&self, key: &StoreKey) -> &Mutex<Shard> {
        // High bits: the table inside the shard uses the low ones for its buckets.
        let h = (key.hash_value() >> 32) as usize;
        &self.inner.shards[h & (self.inner.shards.len() - 1)]
    }

    /// Reports sessions that a shard let go of; called without any lock held, so that
    /// freeing their values does not hold up the shard.
    fn notify(&self, gone: Gone) {
        if let Some(listener) = self.inner.listener.get() {
            for (key, _) in &gone {
                listener(key);
            }
        }
    }
}

/// A poisoned shard only means a panic elsewhere while it was held; the shard itself
/// is never left half-updated (updates are computed first, then swapped in), so go on.
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shard {
    /// The slot of `key`, live or expired.
    fn find(&self, key: &StoreKey) -> Option<u32> {
        let slab = &self.slab;
        self.table
            .find(key.hash_value(), |&i| slab.get(i).key == *key)
            .copied()
    }

    /// The slot of `key` if its session is live at `now`.
    fn live(&self, key: &StoreKey, now: Nanos) -> Option<u32> {
        self.find(key).filter(|&i| self.slab.get(i).deadline > now)
    }

    /// The record in (occupied) slot `i`.
    fn record(&self, i: u32) -> Option<Record> {
        let slot = self.slab.get(i);
        slot.values.clone().map(|values| Record {
            values,
            expires_at: from_nanos(slot.deadline),
        })
    }

    /// Removes up to `budget` expired sessions and returns them.
    fn sweep(&mut self, now: Nanos, budget: usize) -> Gone {
        let mut gone = Vec::new();
        while gone.len() < budget {
            match self.by_deadline.first() {
                Some(&(deadline, _)) if deadline <= now => {}
                _ => break,
            }
            if let Some((_, i)) = self.by_deadline.pop_first() {
                let key = self.slab.get(i).key.clone();
                let values = self.unlink(i);
                gone.push((key, values));
            }
        }
        gone
    }

    /// Takes slot `i` out of the table, the use index and the slab (the callers deal
    /// with the deadline index); returns its values.
    fn unlink(&mut self, i: u32) -> Option<Arc<Values>> {
        let slot = self.slab.get(i);
        let (hash, used) = (slot.key.hash_value(), slot.used);
        if let Ok(entry) = self.table.find_entry(hash, |&j| j == i) {
            entry.remove();
        }
        if self.capacity > 0 {
            self.by_use.remove(&used);
        }
        self.slab.remove(i)
    }

    /// Removes slot `i` from every index; returns its record.
    fn remove(&mut self, i: u32) -> Option<Record> {
        let deadline = self.slab.get(i).deadline;
        if deadline != NEVER {
            self.by_deadline.remove(&(deadline, i));
        }
        self.unlink(i).map(|values| Record {
            values,
            expires_at: from_nanos(deadline),
        })
    }

    /// Marks slot `i` as just used (bounded shards only).
    fn touch(&mut self, i: u32) {
        if self.capacity == 0 {
            return;
        }
        self.clock += 1;
        let slot = self.slab.get_mut(i);
        let old = std::mem::replace(&mut slot.used, self.clock);
        self.by_use.remove(&old);
        self.by_use.insert(self.clock, i);
    }

    /// Evicts least recently used sessions until one more fits.
    fn make_room(&mut self, gone: &mut Gone) {
        while self.capacity > 0 && self.table.len() >= self.capacity {
            let Some((_, i)) = self.by_use.pop_first() else {
                break;
            };
            let key = self.slab.get(i).key.clone();
            let values = self.remove(i).map(|r| r.values);
            gone.push((key, values));
        }
    }

    fn commit(
        &mut self,
        key: &StoreKey,
        patch: &Patch,
        now: Nanos,
        gone: &mut Gone,
    ) -> Result<Committed, StoreError> {
        let found = self.find(key);
        let deadline = to_nanos(patch.expires_at);
        let Some(i) = found.filter(|&i| self.slab.get(i).deadline > now) else {
            if !patch.create {
                return Ok(Committed::Missing);
            }
            // An expired record under a fresh id: drop it (and its index entries) first.
            if let Some(i) = found {
                self.remove(i);
            }
            let mut values = Values::default();
            let counters = apply_changes(&mut values, patch, "memory")?;
            self.make_room(gone);
            let used = if self.capacity > 0 {
                self.clock += 1;
                self.clock
            } else {
                0
            };
            let i = self.slab.insert(Slot {
                key: key.clone(),
                values: Some(Arc::new(values)),
                deadline,
                used,
            });
            let slab = &self.slab;
            self.table
                .insert_unique(key.hash_value(), i, |&j| slab.get(j).key.hash_value());
            if deadline != NEVER {
                self.by_deadline.insert((deadline, i));
            }
            if self.capacity > 0 {
                self.by_use.insert(used, i);
            }
            return Ok(Committed::Applied { counters });
        };
        self.touch(i);
        let slot = self.slab.get_mut(i);
        let Some(values) = slot.values.as_mut() else {
            return Ok(Committed::Missing);
        };
        let counters = if patch
            .changes
            .iter()
            .any(|c| matches!(c, Change::Increment(..)))
        {
            // An increment can fail half-way: work on a copy so the patch is all-or-nothing.
            let mut copy = Values::clone(values);
            let counters = apply_changes(&mut copy, patch, "memory")?;
            *values = Arc::new(copy);
            counters
        } else {
            // Cannot fail. Copy-on-write: a load still holding the old map keeps it intact.
            apply_changes(Arc::make_mut(values), patch, "memory")?
        };
        let old = std::mem::replace(&mut slot.deadline, deadline);
        if old != deadline {
            if old != NEVER {
                self.by_deadline.remove(&(old, i));
            }
            if deadline != NEVER {
                self.by_deadline.insert((deadline, i));
            }
        }
        Ok(Committed::Applied { counters })
    }
}

impl Store for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Record>> {
        let now = now();
        let mut shard = lock(self.shard(key));
        let found = shard.live(key, now).and_then(|i| {
            shard.touch(i);
            shard.record(i)
        });
        StoreFuture::ready(Ok(found))
    }

    fn commit<'a>(&'a self, key: &'a StoreKey, patch: &'a Patch) -> StoreFuture<'a, Committed> {
        let now = now();
        let mut shard = lock(self.shard(key));
        let mut gone = shard.sweep(now, SWEEP_PER_WRITE);
        let result = shard.commit(key, patch, now, &mut gone);
        drop(shard);
        self.notify(gone);
        StoreFuture::ready(result)
    }

    fn destroy<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, bool> {
        let now = now();
        let mut shard = lock(self.shard(key));
        let removed = shard.find(key).and_then(|i| shard.remove(i));
        drop(shard);
        StoreFuture::ready(Ok(removed.is_some_and(|r| to_nanos(r.expires_at) > now)))
    }

    fn destroy_all(&self) -> StoreFuture<'_, u64> {
        let now = now();
        let mut n = 0;
        for shard in self.inner.shards.iter() {
            let mut shard = lock(shard);
            n += shard.live_count(now);
            let Shard {
                table,
                slab,
                by_deadline,
                by_use,
                ..
            } = &mut *shard;
            *table = HashTable::new();
            *slab = Slab::default();
            by_deadline.clear();
            by_use.clear();
        }
        self.users().clear();
        StoreFuture::ready(Ok(n))
    }

    fn count(&self) -> StoreFuture<'_, u64> {
        let now = now();
        let n = self
            .inner
            .shards
            .iter()
            .map(|shard| lock(shard).live_count(now))
            .sum();
        StoreFuture::ready(Ok(n))
    }

    fn keys<'a>(&'a self, cursor: Option<&'a str>, limit: usize) -> StoreFuture<'a, KeyPage> {
        // Cursor: "<shard>:<last key returned>". Keys are listed per shard in order.
        let (mut shard_ix, mut after) = match cursor.and_then(|c| c.split_once(':')) {
            Some((s, k)) => (s.parse::<usize>().unwrap_or(usize::MAX), Some(k)),
            None => (0, None),
        };
        let now = now();
        let limit = limit.max(1);
        let mut page = KeyPage::default();
        while shard_ix < self.inner.shards.len() && page.keys.len() < limit {
            let shard = lock(&self.inner.shards[shard_ix]);
            let mut keys: Vec<&StoreKey> = shard
                .table
                .iter()
                .map(|&i| shard.slab.get(i))
                .filter(|s| s.deadline > now && after.is_none_or(|a| s.key.as_str() > a))
                .map(|s| &s.key)
                .collect();
            keys.sort_unstable();
            let room = limit - page.keys.len();
            let full = keys.len() > room;
            page.keys.extend(keys.into_iter().take(room).cloned());
            if full {
                if let Some(last) = page.keys.last() {
                    page.next = Some(format!("{shard_ix}:{}", last.as_str()));
                }
                return StoreFuture::ready(Ok(page));
            }
            shard_ix += 1;
            after = None;
        }
        if shard_ix < self.inner.shards.len() {
            page.next = Some(format!("{shard_ix}:"));
        }
        StoreFuture::ready(Ok(page))
    }

    fn set_expiry_listener(&self, listener: ExpiryListener) -> bool {
        // The first registration wins; a store shared by two managers reports to the first.
        let _ = self.inner.listener.set(listener);
        true
    }

    fn purge_expired(&self) -> StoreFuture<'_, Option<u64>> {
        StoreFuture::ready(Ok(Some(MemoryStore::purge_expired(self))))
    }

    fn index_user<'a>(
        &'a self,
        user: &'a str,
        key: &'a StoreKey,
        _expires_at: Option<SystemTime>,
    ) -> StoreFuture<'a, ()> {
        let now = now();
        let mut users = self.users();
        let keys = users.entry(user.to_owned()).or_default();
        // Hygiene: forget sessions that ended, so that the index stays as small as the
        // user's live sessions (lock order: users, then a shard; never the reverse).
        keys.retain(|k| self.is_live(k, now));
        keys.insert(key.clone());
        StoreFuture::ready(Ok(()))
    }

    fn destroy_user<'a>(&'a self, user: &'a str) -> StoreFuture<'a, Vec<StoreKey>> {
        let now = now();
        let mut users = self.users();
        let keys = users.remove(user).unwrap_or_default();
        let mut ended = Vec::new();
        for key in keys {
            let mut shard = lock(self.shard(&key));
            let removed = shard.find(&key).and_then(|i| shard.remove(i));
            drop(shard);
            if removed.is_some_and(|r| to_nanos(r.expires_at) > now) {
                ended.push(key);
            }
        }
        StoreFuture::ready(Ok(ended))
    }
}

impl Shard {
    /// Sessions not expired at `now`.
    fn live_count(&self, now: Nanos) -> u64 {
        let expired = self.by_deadline.range(..=(now, u32::MAX)).count();
        (self.table.len() - expired) as u64
    }
}
