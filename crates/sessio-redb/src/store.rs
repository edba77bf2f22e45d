//! [`RedbStore`] and its builder.

use std::{
    ops::Bound,
    panic::{catch_unwind, AssertUnwindSafe},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, OnceLock, Weak,
    },
    time::{Duration, SystemTime},
};

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use sessio::store::{
    apply_changes, is_expired, Committed, ExpiryListener, KeyPage, Patch, Record, Store,
    StoreError, StoreFuture, StoreKey, StoreOp, Values,
};
use sessio_fs::format::{self, deadline_millis};
use tokio::{
    sync::{watch, OwnedSemaphorePermit, Semaphore},
    task::JoinHandle,
};

use crate::error::{redact, CorruptRecord, OpenError};

const NAME: &str = "redb";
/// Session key → encoded record (`sessio_fs::format`).
const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessio_sessions_v1");
/// (deadline in ms since the epoch, session key) for every session with a deadline.
const EXPIRY: TableDefinition<(u64, &str), ()> = TableDefinition::new("sessio_expiry_v1");
/// Sessions removed per purge transaction: bounds how long the purge holds the writer.
const PURGE_BATCH: usize = 512;

/// When a commit is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Every commit `fsync`s before it returns: a commit that returned `Ok` survives a
    /// crash of the process or of the machine. Costs one `fsync` per commit (about
    /// 1–5 ms on SSDs, far more on network disks).
    Immediate,
    /// Commits return without `fsync` (redb `Durability::None`) and a background task
    /// makes them durable with one `fsync` every `flush_every`. A crash of the process
    /// or of the machine loses at most the commits of the last `flush_every` (plus the
    /// time of one `fsync`); the database is never left half-written. Dropping the store
    /// or calling [`RedbStore::shutdown`] flushes.
    Batched {
        /// How often pending commits are made durable.
        flush_every: Duration,
    },
}

/// A session store in one [redb](https://docs.rs/redb) database file.
///
/// - **Atomic patches**: every commit is one redb write transaction that reads the
///   session, applies the patch and writes it back. redb runs one write transaction at
///   a time, so concurrent patches on distinct keys all survive and increments are
///   exact. A failed patch (an increment of a non-integer) aborts its transaction and
///   changes nothing. Loads are read transactions (MVCC snapshots) and never wait for
///   writers.
/// - **Durability**: see [`Durability`]; the default is [`Durability::Immediate`].
///   Either way a crash never leaves a torn record: redb commits are atomic and
///   checksummed. After a crash redb repairs the file when it is next opened, which
///   walks the whole database (seconds for millions of sessions) unless
///   [`quick_repair`](RedbStoreBuilder::quick_repair) is on.
/// - **Expiry**: an expired session is never returned. An index table ordered by
///   deadline lets [`RedbStore::purge_expired`] and the background task (every
///   [`gc_interval`](RedbStoreBuilder::gc_interval), default 60 s) delete expired
///   sessions at a cost proportional to how many expired, not to how many live.
///   They call the expiry listener for each.
/// - **One process**: redb locks the file; a second process (or a second
///   `RedbStore` on the same path) gets an error at open. Share the store between
///   tasks by cloning it (cheap, an `Arc`).
/// - **Blocking work**: redb is synchronous; every call runs on Tokio's blocking pool.
///   Writers queue on an async semaphore first, so waiting writers hold no thread.
///
/// # Errors and logs
///
/// A file that is not a redb database, is damaged or truncated fails
/// [`open`](RedbStoreBuilder::open) with [`StoreErrorKind::Corrupt`](sessio::StoreErrorKind::Corrupt)
/// and an [`OpenError`] naming the file and the problem. A damaged record fails only
/// that session, with a [`CorruptRecord`] that names the session by its first 4
/// characters (store keys are session ids: secrets).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sessio::Error> {
/// use std::time::Duration;
/// use sessio::Sessions;
/// use sessio_redb::{Durability, RedbStore};
///
/// # let dir = tempfile::tempdir().unwrap();
/// let store = RedbStore::builder()
///     .durability(Durability::Batched { flush_every: Duration::from_millis(100) })
///     .gc_interval(Some(Duration::from_secs(60)))
///     .open(dir.path().join("sessions.redb"))
///     .await?;
/// let sessions = Sessions::builder().store(store.clone()).build()?;
/// let session = sessions.start(&http::HeaderMap::new()).await?;
/// assert_eq!(session.increment("visits", 1).await?, 1);
/// store.shutdown().await?; // stops the tasks and flushes
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedbStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.inner.path)
            .field("durability", &self.inner.durability)
            .finish_non_exhaustive()
    }
}

struct Inner {
    db: redb::Database,
    path: PathBuf,
    durability: Durability,
    quick_repair: bool,
    /// One permit: the async queue in front of redb's single writer.
    writer: Arc<Semaphore>,
    /// Batched mode: commits since the last flush.
    dirty: AtomicBool,
    listener: OnceLock<ExpiryListener>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    stop: watch::Sender<bool>,
}

/// Configures a [`RedbStore`].
#[derive(Debug, Clone)]
pub struct RedbStoreBuilder {
    durability: Durability,
    gc_interval: Option<Duration>,
    cache_size: Option<usize>,
    quick_repair: bool,
}

impl Default for RedbStoreBuilder {
    fn default() -> Self {
        Self {
            durability: Durability::Immediate,
            gc_interval: Some(Duration::from_secs(60)),
            cache_size: None,
            quick_repair: false,
        }
    }
}

impl RedbStoreBuilder {
    /// When commits are durable (default [`Durability::Immediate`]).
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// How often the background task deletes expired sessions (default 60 s); `None`
    /// runs no task (call [`RedbStore::purge_expired`] yourself).
    #[must_use]
    pub fn gc_interval(mut self, every: Option<Duration>) -> Self {
        self.gc_interval = every.filter(|d| !d.is_zero());
        self
    }

    /// redb's page cache in bytes (redb's default: 1 GiB, allocated as it fills).
    #[must_use]
    pub fn cache_size(mut self, bytes: usize) -> Self {
        self.cache_size = Some(bytes);
        self
    }

    /// redb quick-repair: commits also save the allocator state (slower commits) so
    /// that reopening after a crash is instant instead of a walk of the whole file.
    #[must_use]
    pub fn quick_repair(mut self, on: bool) -> Self {
        self.quick_repair = on;
        self
    }

    /// Opens (or creates) the database file and starts the background tasks.
    ///
    /// Must be called within a Tokio runtime. Fails with
    /// [`StoreErrorKind::Corrupt`](sessio::StoreErrorKind::Corrupt) when the file is not
    /// a redb database, is damaged or holds tables of another shape, and with
    /// [`StoreErrorKind::Unavailable`](sessio::StoreErrorKind::Unavailable) on I/O errors
    /// or when another process has it open. The source is an [`OpenError`].
    pub async fn open(self, path: impl AsRef<Path>) -> Result<RedbStore, StoreError> {
        let path = path.as_ref().to_owned();
        let builder = self.clone();
        let (db, path) = blocking(StoreOp::Connect, move || {
            let db = open_db(&builder, &path)?;
            Ok((db, path))
        })
        .await?;
        let (stop, stop_rx) = watch::channel(false);
        let inner = Arc::new(Inner {
            db,
            path,
            durability: self.durability,
            quick_repair: self.quick_repair,
            writer: Arc::new(Semaphore::new(1)),
            dirty: AtomicBool::new(false),
            listener: OnceLock::new(),
            tasks: Mutex::new(Vec::new()),
            stop,
        });
        let mut tasks = Vec::new();
        if let Some(every) = self.gc_interval {
            tasks.push(spawn_periodic(
                "purge",
                Arc::downgrade(&inner),
                every,
                stop_rx.clone(),
                Inner::purge_expired,
            ));
        }
        if let Durability::Batched { flush_every } = self.durability {
            tasks.push(spawn_periodic(
                "flush",
                Arc::downgrade(&inner),
                flush_every.max(Duration::from_millis(1)),
                stop_rx,
                |inner| inner.flush().map(|()| 0),
            ));
        }
        *lock(&inner.tasks) = tasks;
        Ok(RedbStore { inner })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn open_failed(
    path: &Path,
    op: StoreOp,
    source: Option<redb::Error>,
    panicked: Option<String>,
) -> StoreError {
    use redb::Error as E;
    let (problem, corrupt) = match &source {
        _ if panicked.is_some() => (
            format!(
                "the file is damaged or truncated (redb panicked reading it: {})",
                panicked.as_deref().unwrap_or_default()
            ),
            true,
        ),
        Some(E::DatabaseAlreadyOpen) => (
            "it is already open (in another process, or another store in this one)".to_owned(),
            false,
        ),
        Some(E::Corrupted(what)) => (
            format!("the file is damaged or not a redb database ({what})"),
            true,
        ),
        Some(E::UpgradeRequired(v)) => (
            format!("it uses redb file format {v}; migrate it with redb 2.6's `Database::upgrade`"),
            true,
        ),
        Some(E::TableTypeMismatch { .. } | E::TableIsMultimap(_) | E::TableIsNotMultimap(_)) => (
            "it holds tables named like sessio's with another layout: not a sessio database"
                .to_owned(),
            true,
        ),
        Some(E::Io(e))
            if e.kind() == std::io::ErrorKind::InvalidData
                || e.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            (
                "the file is truncated or not a redb database".to_owned(),
                true,
            )
        }
        Some(E::Io(_)) => ("an I/O error".to_owned(), false),
        Some(E::RepairAborted) => ("the repair after a crash was aborted".to_owned(), false),
        Some(_) | None => ("an unexpected redb error".to_owned(), false),
    };
    let error = OpenError {
        path: path.to_owned(),
        problem,
        source,
    };
    if corrupt {
        StoreError::corrupt(NAME, op, error)
    } else {
        StoreError::unavailable(NAME, op, error)
    }
}

fn open_db(builder: &RedbStoreBuilder, path: &Path) -> Result<redb::Database, StoreError> {
    let op = StoreOp::Connect;
    let fail = |e: redb::Error| open_failed(path, op, Some(e), None);
    // A damaged file may make redb panic instead of returning an error (it is not
    // hardened against arbitrary files): report that as a damaged file, too.
    let opened = catch_unwind(AssertUnwindSafe(
        || -> Result<redb::Database, StoreError> {
            let mut b = redb::Builder::new();
            if let Some(bytes) = builder.cache_size {
                b.set_cache_size(bytes);
            }
            let db = b.create(path).map_err(|e| fail(e.into()))?;
            // Create the tables (so read transactions find them) and check their shape.
            let mut txn = db.begin_write().map_err(|e| fail(e.into()))?;
            txn.set_quick_repair(builder.quick_repair);
            {
                let sessions = txn.open_table(SESSIONS).map_err(|e| fail(e.into()))?;
                let expiry = txn.open_table(EXPIRY).map_err(|e| fail(e.into()))?;
                // Touch the trees so that a damaged root page is found now, not on first use.
                let _ = sessions.first().map_err(|e| fail(e.into()))?;
                let _ = expiry.first().map_err(|e| fail(e.into()))?;
            }
            txn.commit().map_err(|e| fail(e.into()))?;
            Ok(db)
        },
    ));
    match opened {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".to_owned());
            Err(open_failed(path, op, None, Some(message)))
        }
    }
}

/// Runs blocking redb work off the async threads. A panic inside redb (a bug, or a
/// damaged file it did not detect) becomes an error, never a crash of the server.
async fn blocking<T: Send + 'static>(
    op: StoreOp,
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) => Err(StoreError::unavailable(NAME, op, e)),
    }
}

/// Maps a redb error: corruption is [`StoreErrorKind::Corrupt`], the rest unavailable.
fn db_error(op: StoreOp, e: impl Into<redb::Error>) -> StoreError {
    let e = e.into();
    if matches!(e, redb::Error::Corrupted(_)) {
        StoreError::corrupt(NAME, op, e)
    } else {
        StoreError::unavailable(NAME, op, e)
    }
}

fn spawn_periodic(
    what: &'static str,
    inner: Weak<Inner>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
    job: fn(&Inner) -> Result<u64, StoreError>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            // Returns on shutdown (Ok) or when every store handle is gone (Err).
            if tokio::time::timeout(every, stop.changed()).await.is_ok() {
                break;
            }
            let Some(inner) = inner.upgrade() else { break };
            let permit = inner.writer.clone().acquire_owned().await;
            let result = blocking(StoreOp::PurgeExpired, move || {
                let _permit = permit;
                job(&inner)
            })
            .await;
            match result {
                Ok(0) => {}
                Ok(n) => tracing::debug!(task = what, removed = n, "redb store: task ran"),
                Err(e) => {
                    tracing::warn!(task = what, error = %e, "redb store: background task failed")
                }
            }
        }
        tracing::debug!(task = what, "redb store: task stopped");
    })
}

impl RedbStore {
    /// Opens (or creates) a database file with default settings: immediate
    /// durability, purge every 60 s.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        RedbStoreBuilder::default().open(path).await
    }

    /// Configures a store.
    pub fn builder() -> RedbStoreBuilder {
        RedbStoreBuilder::default()
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The durability mode.
    pub fn durability(&self) -> Durability {
        self.inner.durability
    }

    /// Deletes every expired session now, calling the expiry listener for each;
    /// returns how many were deleted.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        let inner = self.inner.clone();
        let permit = self.writer().await?;
        blocking(StoreOp::PurgeExpired, move || {
            let _permit = permit;
            inner.purge_expired()
        })
        .await
    }

    /// Makes every commit so far durable (one `fsync`). A no-op with
    /// [`Durability::Immediate`], where every commit already is.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        let permit = self.writer().await?;
        blocking(StoreOp::Commit, move || {
            let _permit = permit;
            inner.flush()
        })
        .await
    }

    /// Stops the background tasks, waits for them, and flushes. The store keeps
    /// working (without automatic purge or flush). Dropping every handle of the store
    /// stops the tasks and flushes too, but cannot report a failed flush.
    pub async fn shutdown(&self) -> Result<(), StoreError> {
        let _ = self.inner.stop.send(true);
        let tasks = std::mem::take(&mut *lock(&self.inner.tasks));
        for task in tasks {
            let _ = task.await;
        }
        self.flush().await
    }

    async fn writer(&self) -> Result<OwnedSemaphorePermit, StoreError> {
        // The semaphore is never closed; this cannot fail in practice.
        self.inner
            .writer
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| StoreError::unavailable(NAME, StoreOp::Commit, e))
    }

    fn write<'a, T: Send + 'static>(
        &'a self,
        op: StoreOp,
        f: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<'a, T> {
        let inner = self.inner.clone();
        StoreFuture::new(async move {
            // The permit moves into the blocking task: the queue stays ordered even if
            // this future is dropped while redb works.
            let permit = self.writer().await?;
            blocking(op, move || {
                let _permit = permit;
                f(&inner)
            })
            .await
        })
    }

    fn read<'a, T: Send + 'static>(
        &'a self,
        op: StoreOp,
        f: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<'a, T> {
        let inner = self.inner.clone();
        StoreFuture::new(blocking(op, move || f(&inner)))
    }
}

impl Inner {
    fn begin_write(&self, op: StoreOp) -> Result<redb::WriteTransaction, StoreError> {
        let mut txn = self.db.begin_write().map_err(|e| db_error(op, e))?;
        if matches!(self.durability, Durability::Batched { .. }) {
            txn.set_durability(redb::Durability::None)
                .map_err(|e| db_error(op, redb::Error::from(e)))?;
        }
        txn.set_quick_repair(self.quick_repair);
        Ok(txn)
    }

    fn finish(&self, txn: redb::WriteTransaction, op: StoreOp) -> Result<(), StoreError> {
        txn.commit().map_err(|e| db_error(op, e))?;
        if matches!(self.durability, Durability::Batched { .. }) {
            self.dirty.store(true, Ordering::Release);
        }
        Ok(())
    }

    fn decode(&self, key: &str, bytes: &[u8], op: StoreOp) -> Result<Record, StoreError> {
        format::decode(bytes).map_err(|source| {
            StoreError::corrupt(
                NAME,
                op,
                CorruptRecord {
                    session: redact(key),
                    path: self.path.clone(),
                    source,
                },
            )
        })
    }

    fn load(&self, key: &str) -> Result<Option<Record>, StoreError> {
        let op = StoreOp::Load;
        let now = SystemTime::now();
        let txn = self.db.begin_read().map_err(|e| db_error(op, e))?;
        let table = txn.open_table(SESSIONS).map_err(|e| db_error(op, e))?;
        let Some(raw) = table.get(key).map_err(|e| db_error(op, e))? else {
            return Ok(None);
        };
        let record = self.decode(key, raw.value(), op)?;
        Ok((!is_expired(record.expires_at, now)).then_some(record))
    }

    fn commit(&self, key: &str, patch: &Patch) -> Result<Committed, StoreError> {
        let op = StoreOp::Commit;
        let now = SystemTime::now();
        let txn = self.begin_write(op)?;
        let counters = {
            let mut sessions = txn.open_table(SESSIONS).map_err(|e| db_error(op, e))?;
            let mut expiry = txn.open_table(EXPIRY).map_err(|e| db_error(op, e))?;
            let old = match sessions.get(key).map_err(|e| db_error(op, e))? {
                Some(raw) => Some(self.decode(key, raw.value(), op)?),
                None => None,
            };
            let old_deadline = old.as_ref().and_then(|r| r.expires_at);
            let mut values = match old.filter(|r| !is_expired(r.expires_at, now)) {
                Some(live) => Arc::unwrap_or_clone(live.values),
                None if patch.create => Values::new(),
                // Dropping the transaction aborts it: nothing written.
                None => return Ok(Committed::Missing),
            };
            // On error the transaction is dropped (aborted): the patch is all-or-nothing.
            let counters = apply_changes(&mut values, patch, NAME)?;
            let bytes = format::encode(&values, patch.expires_at);
            sessions
                .insert(key, bytes.as_slice())
                .map_err(|e| db_error(op, e))?;
            if old_deadline != patch.expires_at {
                if let Some(t) = old_deadline {
                    expiry
                        .remove((deadline_millis(t), key))
                        .map_err(|e| db_error(op, e))?;
                }
                if let Some(t) = patch.expires_at {
                    expiry
                        .insert((deadline_millis(t), key), ())
                        .map_err(|e| db_error(op, e))?;
                }
            }
            counters
        };
        self.finish(txn, op)?;
        Ok(Committed::Applied { counters })
    }

    fn destroy(&self, key: &str) -> Result<bool, StoreError> {
        let op = StoreOp::Destroy;
        let now = SystemTime::now();
        let txn = self.begin_write(op)?;
        let live = {
            let mut sessions = txn.open_table(SESSIONS).map_err(|e| db_error(op, e))?;
            let mut expiry = txn.open_table(EXPIRY).map_err(|e| db_error(op, e))?;
            let Some(raw) = sessions.remove(key).map_err(|e| db_error(op, e))? else {
                return Ok(false);
            };
            match format::decode_deadline(raw.value()) {
                Ok(deadline) => {
                    drop(raw);
                    if let Some(t) = deadline {
                        expiry
                            .remove((deadline_millis(t), key))
                            .map_err(|e| db_error(op, e))?;
                    }
                    !is_expired(deadline, now)
                }
                // A damaged record is removed like any other and counts as existing
                // (its index entry, if any, is dropped by the purge).
                Err(_) => true,
            }
        };
        self.finish(txn, op)?;
        Ok(live)
    }

    /// Live sessions: every record minus those whose deadline has passed (found
    /// through the index, so the cost is proportional to the expired ones).
    fn count_live(
        sessions: &impl ReadableTableMetadata,
        expiry: &impl ReadableTable<(u64, &'static str), ()>,
        now: SystemTime,
        op: StoreOp,
    ) -> Result<u64, StoreError> {
        let total = sessions.len().map_err(|e| db_error(op, e))?;
        let expired = expiry
            .range::<(u64, &str)>(..(deadline_millis(now) + 1, ""))
            .map_err(|e| db_error(op, e))?
            .count() as u64;
        Ok(total.saturating_sub(expired))
    }

    fn count(&self) -> Result<u64, StoreError> {
        let op = StoreOp::Count;
        let txn = self.db.begin_read().map_err(|e| db_error(op, e))?;
        let sessions = txn.open_table(SESSIONS).map_err(|e| db_error(op, e))?;
        let expiry = txn.open_table(EXPIRY).map_err(|e| db_error(op, e))?;
        Self::count_live(&sessions, &expiry, SystemTime::now(), op)
    }

    fn destroy_all(&self) -> Result<u64, StoreError> {
        let op = StoreOp::DestroyAll;
        let txn = self.begin_write(op)?;
        let live = {
            let sessions = txn.open_table(SESSIONS).map_err(|e| db_error(op, e))?;
            let expiry = txn.open_table(EXPIRY).map_err(|e| db_error(op, e))?;
            Self::count_live(&sessions, &expiry, SystemTime::now(), op)?
        };
        txn.delete_table(SESSIONS).map_err(|e| db_error(op, e))?;
        txn.delete_table(EXPIRY).map_err(|e| db_error(op, e))?;
        txn.open_table(SESSIONS).map_err(|e| db_error(op, e))?;
        txn.open_table(EXPIRY).map_err(|e| db_error(op, e))?;
        self.finish(txn, op)?;
        Ok(live)
    }

    fn keys(&self, cursor: Option<&str>, limit: usize) -> Result<KeyPage, StoreError> {
        let op = StoreOp::Keys;
        let now = SystemTime::now();
        let limit = limit.max(1);
        let txn = self.db.begin_read().map_err(|e| db_error(op, e))?;
        let sessions = txn.open_table(SESSIONS).map_err(|e| db_error(op, e))?;
        let start = cursor.map_or(Bound::Unbounded, Bound::Excluded);
        let mut rows = sessions
            .range::<&str>((start, Bound::Unbounded))
            .map_err(|e| db_error(op, e))?;
        let mut page = KeyPage::default();
        for row in rows.by_ref() {
            let (key, value) = row.map_err(|e| db_error(op, e))?;
            // Only the header is read; damaged records are not live sessions.
            if matches!(format::decode_deadline(value.value()), Ok(d) if !is_expired(d, now)) {
                page.keys.push(StoreKey::from_stored(key.value()));
                if page.keys.len() == limit {
                    break;
                }
            }
        }
        if rows.next().is_some() {
            page.next = page.keys.last().map(|k| k.as_str().to_owned());
        }
        Ok(page)
    }

    fn purge_expired(&self) -> Result<u64, StoreError> {
        let op = StoreOp::PurgeExpired;
        let mut total = 0;
        loop {
            let now_ms = deadline_millis(SystemTime::now());
            let txn = self.begin_write(op)?;
            let mut expired = Vec::new();
            {
                let mut sessions = txn.open_table(SESSIONS).map_err(|e| db_error(op, e))?;
                let mut expiry = txn.open_table(EXPIRY).map_err(|e| db_error(op, e))?;
                let mut due = Vec::new();
                for row in expiry
                    .range::<(u64, &str)>(..(now_ms + 1, ""))
                    .map_err(|e| db_error(op, e))?
                    .take(PURGE_BATCH)
                {
                    let (entry, ()) = row.map(|(k, _)| (k, ())).map_err(|e| db_error(op, e))?;
                    let (deadline, key) = entry.value();
                    due.push((deadline, key.to_owned()));
                }
                for (deadline, key) in &due {
                    expiry
                        .remove((*deadline, key.as_str()))
                        .map_err(|e| db_error(op, e))?;
                    // Remove the record only if it still has this deadline (the index
                    // is kept exact by every commit; this is a second check).
                    let matches = match sessions.get(key.as_str()).map_err(|e| db_error(op, e))? {
                        Some(raw) => matches!(
                            format::decode_deadline(raw.value()),
                            Ok(Some(t)) if deadline_millis(t) == *deadline
                        ),
                        None => false,
                    };
                    if matches {
                        sessions.remove(key.as_str()).map_err(|e| db_error(op, e))?;
                        expired.push(StoreKey::from_stored(key.as_str()));
                    }
                }
                if due.is_empty() {
                    drop((sessions, expiry));
                    drop(txn);
                    return Ok(total);
                }
            }
            let full = expired.len() == PURGE_BATCH;
            self.finish(txn, op)?;
            total += expired.len() as u64;
            if let Some(listener) = self.listener.get() {
                for key in &expired {
                    listener(key);
                }
            }
            if !full {
                return Ok(total);
            }
        }
    }

    /// Batched mode: one durable (empty) commit makes every earlier commit durable.
    fn flush(&self) -> Result<(), StoreError> {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let op = StoreOp::Commit;
        let result = self
            .db
            .begin_write()
            .map_err(|e| db_error(op, e))
            .and_then(|txn| txn.commit().map_err(|e| db_error(op, e)));
        if result.is_err() {
            self.dirty.store(true, Ordering::Release);
        }
        result
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::error!(error = %e, "redb store: the final flush failed; the last commits may be lost");
        }
    }
}

impl Store for RedbStore {
    fn name(&self) -> &'static str {
        NAME
    }

    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Record>> {
        let key = key.clone();
        self.read(StoreOp::Load, move |inner| inner.load(key.as_str()))
    }

    fn commit<'a>(&'a self, key: &'a StoreKey, patch: &'a Patch) -> StoreFuture<'a, Committed> {
        let key = key.clone();
        let patch = patch.clone();
        self.write(StoreOp::Commit, move |inner| {
            inner.commit(key.as_str(), &patch)
        })
    }

    fn destroy<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, bool> {
        let key = key.clone();
        self.write(StoreOp::Destroy, move |inner| inner.destroy(key.as_str()))
    }

    fn destroy_all(&self) -> StoreFuture<'_, u64> {
        self.write(StoreOp::DestroyAll, Inner::destroy_all)
    }

    fn count(&self) -> StoreFuture<'_, u64> {
        self.read(StoreOp::Count, Inner::count)
    }

    fn keys<'a>(&'a self, cursor: Option<&'a str>, limit: usize) -> StoreFuture<'a, KeyPage> {
        let cursor = cursor.map(str::to_owned);
        self.read(StoreOp::Keys, move |inner| {
            inner.keys(cursor.as_deref(), limit)
        })
    }

    fn set_expiry_listener(&self, listener: ExpiryListener) -> bool {
        // The first registration wins, as in the memory store.
        let _ = self.inner.listener.set(listener);
        true
    }
}
