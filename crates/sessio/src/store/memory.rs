//! [`MemoryStore`]: the default, in-process store.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard, OnceLock},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use arrayvec::ArrayVec;
use hashbrown::HashTable;

use super::{
    apply_changes, Change, Committed, ExpiryListener, KeyHasher, KeyPage, Patch, Record, Store,
    StoreError, StoreFuture, StoreKey, Values,
};

/// Expired sessions removed per write, on the shard being written: GC work stays
/// proportional to what expires and spread over requests, never a stop-the-world scan.
/// [`MemoryStore::purge_expired`] takes a shard's lock for as many at a time, so a
/// request never waits for a purge longer than for a write's own sweep.
const SWEEP_PER_WRITE: usize = 16;

/// An in-process store: a sharded concurrent map with an expiry index.
///
/// - Every operation locks one shard for a few map operations; loads hand out the
///   stored values without copying (`Arc`).
/// - Each shard keeps its sessions in a hash table found by the key's precomputed hash,
///   and a deadline index of (deadline, key hash) pairs: a session's key is stored
///   once, and its index entry costs 16 bytes (see docs/decisions.md, "Memory store at
///   scale").
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
    /// The sessions, found by the key's precomputed hash (keys are never hashed again).
    table: HashTable<Slot>,
    /// Sessions with a deadline, soonest first, as (deadline, key hash): a session
    /// is found again by its hash, so its key is stored once.
    by_deadline: BTreeSet<(Nanos, u64)>,
    /// Most sessions this shard holds; 0: unbounded (and no use tracking at all).
    capacity: usize,
    /// Bounded shards only: key hashes by last use (a tick of `clock`), oldest first.
    by_use: BTreeMap<u64, u64>,
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

/// A session.
struct Slot {
    key: StoreKey,
    values: Arc<Values>,
    /// Expired once `now >= deadline` ([`NEVER`] is above any `now`).
    deadline: Nanos,
    /// In a bounded store, when it was last used (a tick of the shard's `clock`).
    used: u64,
}

/// Indexes `deadline` for the session whose key hashes to `hash`, and returns the
/// deadline indexed. Entries must be unique for the index to find each session again:
/// should another session of the shard have the same 64-bit key hash and the same
/// deadline to the nanosecond, this one expires a nanosecond earlier.
fn index_deadline(index: &mut BTreeSet<(Nanos, u64)>, mut deadline: Nanos, hash: u64) -> Nanos {
    while deadline != NEVER && !index.insert((deadline, hash)) {
        match deadline.checked_sub(1) {
            Some(d) => deadline = d,
            None => break,
        }
    }
    deadline
}

/// Drops the index entry of a session's `deadline` (sessions without one have none).
fn unindex_deadline(index: &mut BTreeSet<(Nanos, u64)>, deadline: Nanos, hash: u64) {
    if deadline != NEVER {
        index.remove(&(deadline, hash));
    }
}

/// Sessions a shard let go of (expired or evicted) with their values: the listener
/// hears of them, and their values are freed, once the shard's lock is released.
type Gone = Vec<(StoreKey, Arc<Values>)>;

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
                let expired = lock(shard).sweep(now);
                let n = expired.len();
                total += n as u64;
                self.notify(expired);
                if n < SWEEP_PER_WRITE {
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
        warm_up(&gone);
    }
}

/// Reads, level by level for all of `gone` at once, the memory that freeing its values
/// touches (each `Arc` block, then each values buffer), so that the cache misses of the
/// sessions overlap instead of coming one after another.
fn warm_up(gone: &Gone) {
    let blocks: usize = gone.iter().map(|(_, values)| values.encoded_len()).sum();
    let buffers: usize = gone
        .iter()
        .filter_map(|(_, values)| values.raw_iter().next())
        .map(|(k, _)| k.len())
        .sum();
    std::hint::black_box((blocks, buffers));
}

/// A poisoned shard only means a panic elsewhere while it was held; the shard itself
/// is never left half-updated (updates are computed first, then swapped in), so go on.
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shard {
    /// The session of `key`, live or expired.
    fn get(&self, key: &StoreKey) -> Option<&Slot> {
        self.table.find(key.hash_value(), |s| s.key == *key)
    }

    /// The session of `key` if it is live at `now`.
    fn live(&self, key: &StoreKey, now: Nanos) -> Option<&Slot> {
        self.get(key).filter(|s| s.deadline > now)
    }

    /// Sessions not expired at `now`.
    fn live_count(&self, now: Nanos) -> u64 {
        let expired = self.by_deadline.range(..=(now, u64::MAX)).count();
        (self.table.len() - expired) as u64
    }

    /// Removes up to [`SWEEP_PER_WRITE`] expired sessions and returns them.
    fn sweep(&mut self, now: Nanos) -> Gone {
        let mut due = ArrayVec::<(Nanos, u64), SWEEP_PER_WRITE>::new();
        while !due.is_full() {
            match self.by_deadline.first() {
                Some(&(deadline, _)) if deadline <= now => {}
                _ => break,
            }
            if let Some(entry) = self.by_deadline.pop_first() {
                due.push(entry);
            }
        }
        if due.is_empty() {
            return Vec::new();
        }
        // Look them all up first: their cache misses overlap instead of coming one
        // after another, which is most of the cost at a million sessions.
        let warm: usize = due
            .iter()
            .filter_map(|&(deadline, hash)| {
                self.table.find(hash, |s| {
                    s.key.hash_value() == hash && s.deadline == deadline
                })
            })
            .map(|s| s.values.encoded_len())
            .sum();
        std::hint::black_box(warm);
        let mut gone = Vec::with_capacity(due.len());
        for (deadline, hash) in due {
            let is = |s: &Slot| s.key.hash_value() == hash && s.deadline == deadline;
            if let Some(slot) = self.take(hash, is) {
                gone.push((slot.key, slot.values));
            }
        }
        gone
    }

    /// Takes the session that hashes to `hash` and satisfies `is` out of the table and
    /// the use index (the callers deal with the deadline index).
    fn take(&mut self, hash: u64, is: impl FnMut(&Slot) -> bool) -> Option<Slot> {
        let (slot, _) = self.table.find_entry(hash, is).ok()?.remove();
        if self.capacity > 0 {
            self.by_use.remove(&slot.used);
        }
        Some(slot)
    }

    /// Takes the session that hashes to `hash` and satisfies `is` out of every index.
    fn remove_where(&mut self, hash: u64, is: impl FnMut(&Slot) -> bool) -> Option<Slot> {
        let slot = self.take(hash, is)?;
        unindex_deadline(&mut self.by_deadline, slot.deadline, hash);
        Some(slot)
    }

    /// Removes the session of `key` from every index.
    fn remove(&mut self, key: &StoreKey) -> Option<Slot> {
        self.remove_where(key.hash_value(), |s| s.key == *key)
    }

    /// Marks the session of `key` as just used (bounded shards only).
    fn touch(&mut self, key: &StoreKey) {
        if self.capacity == 0 {
            return;
        }
        let hash = key.hash_value();
        let Some(slot) = self.table.find_mut(hash, |s| s.key == *key) else {
            return;
        };
        self.clock += 1;
        let old = std::mem::replace(&mut slot.used, self.clock);
        self.by_use.remove(&old);
        self.by_use.insert(self.clock, hash);
    }

    /// Evicts least recently used sessions until one more fits.
    fn make_room(&mut self, gone: &mut Gone) {
        while self.capacity > 0 && self.table.len() >= self.capacity {
            let Some((used, hash)) = self.by_use.pop_first() else {
                break;
            };
            let is = |s: &Slot| s.key.hash_value() == hash && s.used == used;
            if let Some(slot) = self.remove_where(hash, is) {
                gone.push((slot.key, slot.values));
            }
        }
    }

    fn commit(
        &mut self,
        key: &StoreKey,
        patch: &Patch,
        now: Nanos,
        gone: &mut Gone,
    ) -> Result<Committed, StoreError> {
        let hash = key.hash_value();
        let deadline = to_nanos(patch.expires_at);
        if self.live(key, now).is_none() {
            if !patch.create {
                return Ok(Committed::Missing);
            }
            // An expired record under a fresh id: drop it (and its index entries) first.
            self.remove(key);
            let mut values = Values::default();
            let counters = apply_changes(&mut values, patch, "memory")?;
            self.make_room(gone);
            let used = if self.capacity > 0 {
                self.clock += 1;
                self.by_use.insert(self.clock, hash);
                self.clock
            } else {
                0
            };
            let slot = Slot {
                key: key.clone(),
                values: Arc::new(values),
                deadline: index_deadline(&mut self.by_deadline, deadline, hash),
                used,
            };
            self.table.insert_unique(hash, slot, |s| s.key.hash_value());
            return Ok(Committed::Applied { counters });
        }
        self.touch(key);
        let Some(slot) = self.table.find_mut(hash, |s| s.key == *key) else {
            return Ok(Committed::Missing);
        };
        let counters = if patch
            .changes
            .iter()
            .any(|c| matches!(c, Change::Increment(..)))
        {
            // An increment can fail half-way: work on a copy so the patch is all-or-nothing.
            let mut copy = Values::clone(&slot.values);
            let counters = apply_changes(&mut copy, patch, "memory")?;
            slot.values = Arc::new(copy);
            counters
        } else {
            // Cannot fail. Copy-on-write: a load still holding the old map keeps it intact.
            apply_changes(Arc::make_mut(&mut slot.values), patch, "memory")?
        };
        if slot.deadline != deadline {
            unindex_deadline(&mut self.by_deadline, slot.deadline, hash);
            slot.deadline = index_deadline(&mut self.by_deadline, deadline, hash);
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
        let found = shard.live(key, now).map(|s| Record {
            values: s.values.clone(),
            expires_at: from_nanos(s.deadline),
        });
        if found.is_some() {
            shard.touch(key);
        }
        StoreFuture::ready(Ok(found))
    }

    fn commit<'a>(&'a self, key: &'a StoreKey, patch: &'a Patch) -> StoreFuture<'a, Committed> {
        let now = now();
        let mut shard = lock(self.shard(key));
        let mut gone = shard.sweep(now);
        let result = shard.commit(key, patch, now, &mut gone);
        drop(shard);
        self.notify(gone);
        StoreFuture::ready(result)
    }

    fn destroy<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, bool> {
        let now = now();
        let removed = lock(self.shard(key)).remove(key);
        StoreFuture::ready(Ok(removed.is_some_and(|s| s.deadline > now)))
    }

    fn destroy_all(&self) -> StoreFuture<'_, u64> {
        let now = now();
        let mut n = 0;
        for shard in self.inner.shards.iter() {
            let mut shard = lock(shard);
            n += shard.live_count(now);
            shard.table.clear();
            shard.by_deadline.clear();
            shard.by_use.clear();
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
            let removed = lock(self.shard(&key)).remove(&key);
            if removed.is_some_and(|s| s.deadline > now) {
                ended.push(key);
            }
        }
        StoreFuture::ready(Ok(ended))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_index_entries_stay_unique() {
        let mut index = BTreeSet::new();
        assert_eq!(index_deadline(&mut index, 1_000, 7), 1_000);
        // Same key hash and deadline as another session: a nanosecond earlier.
        assert_eq!(index_deadline(&mut index, 1_000, 7), 999);
        assert_eq!(index_deadline(&mut index, 1_000, 8), 1_000);
        assert_eq!(index_deadline(&mut index, NEVER, 7), NEVER);
        assert_eq!(index.len(), 3);
    }

    #[test]
    fn deadlines_round_trip_through_nanos() {
        let t = SystemTime::now();
        assert_eq!(from_nanos(to_nanos(Some(t))), Some(t));
        assert_eq!(from_nanos(to_nanos(None)), None);
        assert_eq!(to_nanos(Some(UNIX_EPOCH - Duration::from_secs(1))), 0);
    }
}
