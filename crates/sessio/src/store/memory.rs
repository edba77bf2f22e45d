//! [`MemoryStore`]: the default, in-process store.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard, OnceLock},
    time::SystemTime,
};

use super::{
    apply_changes, is_expired, Change, Committed, ExpiryListener, KeyHasher, KeyPage, Patch,
    Record, Store, StoreError, StoreFuture, StoreKey, Values,
};

/// Expired sessions removed per write, on the shard being written: GC work stays
/// proportional to what expires and spread over requests, never a stop-the-world scan.
const SWEEP_PER_WRITE: usize = 16;

/// An in-process store: a sharded concurrent map with an expiry index.
///
/// - Every operation locks one shard for a few map operations; loads hand out the
///   stored values without copying (`Arc`).
/// - Each shard keeps its sessions ordered by deadline. Every write first removes up
///   to 16 expired sessions of its shard, and [`MemoryStore::purge_expired`] removes
///   all of them, so the cost of expiry is proportional to what expires, not to what
///   lives. An expired session is never returned, swept or not.
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
    /// Keys carry their hash: no map operation hashes again.
    map: HashMap<StoreKey, Slot, KeyHasher>,
    by_deadline: BTreeSet<(SystemTime, StoreKey)>,
    /// Most sessions this shard holds; 0: unbounded (and no use tracking at all).
    capacity: usize,
    /// Bounded shards only: sessions by last use (a tick of `clock`), oldest first.
    by_use: BTreeMap<u64, StoreKey>,
    clock: u64,
}

/// A stored session and, in a bounded store, when it was last used.
struct Slot {
    record: Record,
    used: u64,
}

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
        let now = SystemTime::now();
        let mut total = 0;
        for shard in self.inner.shards.iter() {
            let expired = lock(shard).sweep(now, usize::MAX);
            total += expired.len() as u64;
            self.notify(expired);
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

    fn is_live(&self, key: &StoreKey, now: SystemTime) -> bool {
        matches!(lock(self.shard(key)).map.get(key), Some(s) if !is_expired(s.record.expires_at, now))
    }

    fn shard(&self, key: &StoreKey) -> &Mutex<Shard> {
        // High bits: the map inside the shard uses the low ones for its buckets.
        let h = (key.hash_value() >> 32) as usize;
        &self.inner.shards[h & (self.inner.shards.len() - 1)]
    }

    fn notify(&self, expired: Vec<StoreKey>) {
        if let Some(listener) = self.inner.listener.get() {
            for key in &expired {
                listener(key);
            }
        }
    }
}

/// A poisoned shard only means a panic elsewhere while it was held; the map itself is
/// never left half-updated (updates are computed first, then swapped in), so go on.
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shard {
    /// Removes up to `budget` expired sessions and returns their keys.
    fn sweep(&mut self, now: SystemTime, budget: usize) -> Vec<StoreKey> {
        let mut expired = Vec::new();
        while expired.len() < budget {
            match self.by_deadline.first() {
                Some((deadline, _)) if *deadline <= now => {}
                _ => break,
            }
            if let Some((_, key)) = self.by_deadline.pop_first() {
                if let Some(slot) = self.map.remove(&key) {
                    self.forget_use(slot.used);
                }
                expired.push(key);
            }
        }
        expired
    }

    fn remove(&mut self, key: &StoreKey) -> Option<Record> {
        let slot = self.map.remove(key)?;
        if let Some(t) = slot.record.expires_at {
            self.by_deadline.remove(&(t, key.clone()));
        }
        self.forget_use(slot.used);
        Some(slot.record)
    }

    fn forget_use(&mut self, used: u64) {
        if self.capacity > 0 {
            self.by_use.remove(&used);
        }
    }

    /// A tick for a session just used (bounded shards; 0 otherwise).
    fn next_use(&mut self, key: &StoreKey) -> u64 {
        if self.capacity == 0 {
            return 0;
        }
        self.clock += 1;
        self.by_use.insert(self.clock, key.clone());
        self.clock
    }

    /// Marks a stored session as just used.
    fn touch(&mut self, key: &StoreKey) {
        if self.capacity == 0 {
            return;
        }
        let Some(old) = self.map.get(key).map(|slot| slot.used) else {
            return;
        };
        self.by_use.remove(&old);
        let used = self.next_use(key);
        if let Some(slot) = self.map.get_mut(key) {
            slot.used = used;
        }
    }

    /// Evicts least recently used sessions until one more fits; returns their keys.
    fn make_room(&mut self, gone: &mut Vec<StoreKey>) {
        while self.capacity > 0 && self.map.len() >= self.capacity {
            let Some((_, key)) = self.by_use.pop_first() else {
                break;
            };
            if let Some(slot) = self.map.remove(&key) {
                if let Some(t) = slot.record.expires_at {
                    self.by_deadline.remove(&(t, key.clone()));
                }
            }
            gone.push(key);
        }
    }

    fn set_deadline(&mut self, key: &StoreKey, old: Option<SystemTime>, new: Option<SystemTime>) {
        if old == new {
            return;
        }
        if let Some(t) = old {
            self.by_deadline.remove(&(t, key.clone()));
        }
        if let Some(t) = new {
            self.by_deadline.insert((t, key.clone()));
        }
    }
}

impl Shard {
    fn commit(
        &mut self,
        key: &StoreKey,
        patch: &Patch,
        now: SystemTime,
        gone: &mut Vec<StoreKey>,
    ) -> Result<Committed, StoreError> {
        let live = matches!(self.map.get(key), Some(s) if !is_expired(s.record.expires_at, now));
        if !live {
            if !patch.create {
                return Ok(Committed::Missing);
            }
            // An expired record under a fresh id: drop it (and its index entry) first.
            self.remove(key);
            let mut values = Values::default();
            let counters = apply_changes(&mut values, patch, "memory")?;
            self.make_room(gone);
            self.set_deadline(key, None, patch.expires_at);
            let used = self.next_use(key);
            self.map.insert(
                key.clone(),
                Slot {
                    record: Record {
                        values: Arc::new(values),
                        expires_at: patch.expires_at,
                    },
                    used,
                },
            );
            return Ok(Committed::Applied { counters });
        }
        self.touch(key);
        let Some(record) = self.map.get_mut(key).map(|slot| &mut slot.record) else {
            return Ok(Committed::Missing);
        };
        let old_deadline = record.expires_at;
        let counters = if patch
            .changes
            .iter()
            .any(|c| matches!(c, Change::Increment(..)))
        {
            // An increment can fail half-way: work on a copy so the patch is all-or-nothing.
            let mut copy = Values::clone(&record.values);
            let counters = apply_changes(&mut copy, patch, "memory")?;
            record.values = Arc::new(copy);
            counters
        } else {
            // Cannot fail. Copy-on-write: a load still holding the old map keeps it intact.
            apply_changes(Arc::make_mut(&mut record.values), patch, "memory")?
        };
        record.expires_at = patch.expires_at;
        self.set_deadline(key, old_deadline, patch.expires_at);
        Ok(Committed::Applied { counters })
    }
}

impl Store for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Record>> {
        let now = SystemTime::now();
        let mut shard = lock(self.shard(key));
        let found = shard
            .map
            .get(key)
            .map(|slot| &slot.record)
            .filter(|r| !is_expired(r.expires_at, now))
            .cloned();
        if found.is_some() {
            shard.touch(key);
        }
        StoreFuture::ready(Ok(found))
    }

    fn commit<'a>(&'a self, key: &'a StoreKey, patch: &'a Patch) -> StoreFuture<'a, Committed> {
        let now = SystemTime::now();
        let mut shard = lock(self.shard(key));
        let mut expired = shard.sweep(now, SWEEP_PER_WRITE);
        let result = shard.commit(key, patch, now, &mut expired);
        drop(shard);
        self.notify(expired);
        StoreFuture::ready(result)
    }

    fn destroy<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, bool> {
        let now = SystemTime::now();
        let removed = lock(self.shard(key)).remove(key);
        StoreFuture::ready(Ok(removed.is_some_and(|r| !is_expired(r.expires_at, now))))
    }

    fn destroy_all(&self) -> StoreFuture<'_, u64> {
        let now = SystemTime::now();
        let mut n = 0;
        for shard in self.inner.shards.iter() {
            let mut shard = lock(shard);
            n += shard
                .map
                .values()
                .filter(|s| !is_expired(s.record.expires_at, now))
                .count() as u64;
            shard.map.clear();
            shard.by_deadline.clear();
            shard.by_use.clear();
        }
        self.users().clear();
        StoreFuture::ready(Ok(n))
    }

    fn count(&self) -> StoreFuture<'_, u64> {
        let now = SystemTime::now();
        let mut n = 0;
        for shard in self.inner.shards.iter() {
            let shard = lock(shard);
            let expired = shard
                .by_deadline
                .iter()
                .take_while(|(t, _)| *t <= now)
                .count();
            n += (shard.map.len() - expired) as u64;
        }
        StoreFuture::ready(Ok(n))
    }

    fn keys<'a>(&'a self, cursor: Option<&'a str>, limit: usize) -> StoreFuture<'a, KeyPage> {
        // Cursor: "<shard>:<last key returned>". Keys are listed per shard in order.
        let (mut shard_ix, mut after) = match cursor.and_then(|c| c.split_once(':')) {
            Some((s, k)) => (s.parse::<usize>().unwrap_or(usize::MAX), Some(k)),
            None => (0, None),
        };
        let now = SystemTime::now();
        let limit = limit.max(1);
        let mut page = KeyPage::default();
        while shard_ix < self.inner.shards.len() && page.keys.len() < limit {
            let shard = lock(&self.inner.shards[shard_ix]);
            let mut keys: Vec<&StoreKey> = shard
                .map
                .iter()
                .filter(|(k, s)| {
                    !is_expired(s.record.expires_at, now) && after.is_none_or(|a| k.as_str() > a)
                })
                .map(|(k, _)| k)
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
        let now = SystemTime::now();
        let mut users = self.users();
        let keys = users.entry(user.to_owned()).or_default();
        // Hygiene: forget sessions that ended, so that the index stays as small as the
        // user's live sessions (lock order: users, then a shard; never the reverse).
        keys.retain(|k| self.is_live(k, now));
        keys.insert(key.clone());
        StoreFuture::ready(Ok(()))
    }

    fn destroy_user<'a>(&'a self, user: &'a str) -> StoreFuture<'a, Vec<StoreKey>> {
        let now = SystemTime::now();
        let mut users = self.users();
        let keys = users.remove(user).unwrap_or_default();
        let mut ended = Vec::new();
        for key in keys {
            let removed = lock(self.shard(&key)).remove(&key);
            if removed.is_some_and(|r| !is_expired(r.expires_at, now)) {
                ended.push(key);
            }
        }
        StoreFuture::ready(Ok(ended))
    }
}
