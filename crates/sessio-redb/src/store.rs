//! [`RedbStore`], its builder and its background tasks.

use std::{
    path::Path,
    sync::{mpsc, Arc, Mutex, OnceLock, Weak},
    time::{Duration, SystemTime},
};

use redb::WriteTransaction;
use sessio::store::{
    Committed, ExpiryListener, KeyPage, Patch, Record, Store, StoreError, StoreFuture, StoreKey,
    StoreOp,
};
use tokio::{
    sync::{oneshot, watch},
    task::JoinHandle,
};

use crate::{
    open::open_db,
    ops::{Shared, Written},
    writer::{self, abandoned, Msg},
};

pub(crate) const NAME: &str = "redb";

/// When a commit is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// A commit returns only after the write transaction holding it was `fsync`ed: a
    /// commit that returned `Ok` survives a crash of the process or of the machine.
    /// Concurrent commits share transactions and `fsync`s (group commit), so the cost
    /// is one `fsync` per batch of waiting commits, not per commit.
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
/// - **Atomic patches**: a commit reads the session, applies the patch and writes it
///   back inside one redb write transaction. One thread owns redb's single writer and
///   applies queued writes in order, many per transaction (group commit), so
///   concurrent patches on distinct keys all survive and increments are exact. A
///   failed patch (an increment of a non-integer) writes nothing and does not disturb
///   the others in its transaction; a failure of redb itself fails every write of that
///   transaction. Loads are read transactions (MVCC snapshots) and never wait for
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
/// - **Log out everywhere**: a user index (two tables, user → session keys and back)
///   serves [`Sessions::destroy_user`](sessio::Sessions::destroy_user). Indexing goes
///   through the writer like a commit, with the same durability; `destroy_user`
///   removes the user's sessions and rows in one write transaction. Destroying or
///   purging a session removes its rows too, so the index holds only stored sessions.
/// - **One process**: redb locks the file; a second process (or a second
///   `RedbStore` on the same path) gets an error at open. Share the store between
///   tasks by cloning it (cheap, an `Arc`).
/// - **Blocking work**: redb is synchronous. Writes go to the writer thread through a
///   queue (a waiting request holds no thread); reads run on Tokio's blocking pool.
///   A write whose future is dropped after it was queued may still be applied.
///
/// # Errors and logs
///
/// A file that is not a redb database, is damaged or truncated fails
/// [`open`](RedbStoreBuilder::open) with [`StoreErrorKind::Corrupt`](sessio::StoreErrorKind::Corrupt)
/// and an [`OpenError`](crate::OpenError) naming the file and the problem. A damaged record fails only
/// that session, with a [`CorruptRecord`](crate::CorruptRecord) that names the session by its first 4
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
            .field("path", &self.inner.shared.path)
            .field("durability", &self.inner.shared.durability)
            .finish_non_exhaustive()
    }
}

struct Inner {
    shared: Arc<Shared>,
    /// To the writer thread; `None` only while dropping.
    jobs: Option<mpsc::Sender<Msg>>,
    writer: Option<std::thread::JoinHandle<()>>,
    listener: OnceLock<ExpiryListener>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    stop: watch::Sender<bool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue stops the writer thread, which flushes batched commits.
        // Waiting for it means the file is released (and durable) once the last
        // handle is gone; it blocks for at most one batch and one `fsync`.
        drop(self.jobs.take());
        if let Some(writer) = self.writer.take() {
            if writer.join().is_err() {
                tracing::error!("redb store: the writer thread panicked");
            }
        }
    }
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

    pub(crate) fn cache_size_bytes(&self) -> Option<usize> {
        self.cache_size
    }

    pub(crate) fn quick_repair_on(&self) -> bool {
        self.quick_repair
    }

    /// Opens (or creates) the database file and starts the writer thread and the
    /// background tasks.
    ///
    /// Must be called within a Tokio runtime. Fails with
    /// [`StoreErrorKind::Corrupt`](sessio::StoreErrorKind::Corrupt) when the file is not
    /// a redb database, is damaged or truncated, or holds tables of another shape, and
    /// with [`StoreErrorKind::Unavailable`](sessio::StoreErrorKind::Unavailable) on I/O
    /// errors or when another process has it open. The source is an
    /// [`OpenError`](crate::OpenError) naming the file and the problem.
    pub async fn open(self, path: impl AsRef<Path>) -> Result<RedbStore, StoreError> {
        let path = path.as_ref().to_owned();
        let builder = self.clone();
        let shared = blocking(StoreOp::Connect, move || {
            let db = open_db(&builder, &path)?;
            Ok(Shared {
                db,
                path,
                durability: builder.durability,
                quick_repair: builder.quick_repair,
            })
        })
        .await?;
        let shared = Arc::new(shared);
        let (jobs, queue) = mpsc::channel();
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("sessio-redb-writer".into())
                .spawn(move || writer::run(shared, queue))
                .map_err(|e| StoreError::unavailable(NAME, StoreOp::Connect, e))?
        };
        let (stop, stop_rx) = watch::channel(false);
        let inner = Arc::new(Inner {
            shared,
            jobs: Some(jobs),
            writer: Some(writer),
            listener: OnceLock::new(),
            tasks: Mutex::new(Vec::new()),
            stop,
        });
        let mut tasks = Vec::new();
        if let Some(every) = self.gc_interval {
            tasks.push(spawn_periodic(
                Task::Purge,
                Arc::downgrade(&inner),
                every,
                stop_rx.clone(),
            ));
        }
        if let Durability::Batched { flush_every } = self.durability {
            let every = flush_every.max(Duration::from_millis(1));
            tasks.push(spawn_periodic(
                Task::Flush,
                Arc::downgrade(&inner),
                every,
                stop_rx,
            ));
        }
        *lock(&inner.tasks) = tasks;
        Ok(RedbStore { inner })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs blocking redb reads off the async threads. A panic inside redb (a bug, or a
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

#[derive(Debug, Clone, Copy)]
enum Task {
    Purge,
    Flush,
}

fn spawn_periodic(
    task: Task,
    inner: Weak<Inner>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            // Returns on shutdown (Ok) or when every store handle is gone (Err).
            if tokio::time::timeout(every, stop.changed()).await.is_ok() {
                break;
            }
            let Some(inner) = inner.upgrade() else { break };
            let store = RedbStore { inner };
            let result = match task {
                Task::Purge => store.purge_expired().await,
                Task::Flush => store.flush().await.map(|()| 0),
            };
            match result {
                Ok(0) => {}
                Ok(n) => tracing::debug!(removed = n, "redb store: purged expired sessions"),
                Err(e) => tracing::warn!(?task, error = %e, "redb store: background task failed"),
            }
        }
        tracing::debug!(?task, "redb store: task stopped");
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
        &self.inner.shared.path
    }

    /// The durability mode.
    pub fn durability(&self) -> Durability {
        self.inner.shared.durability
    }

    /// Deletes every expired session now (in transactions of up to 512), calling the
    /// expiry listener for each; returns how many were deleted.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let (expired, more) = self
                .write(StoreOp::PurgeExpired, |shared, txn| shared.purge(txn))
                .await?;
            total += expired.len() as u64;
            if let Some(listener) = self.inner.listener.get() {
                for key in &expired {
                    listener(key);
                }
            }
            if !more {
                return Ok(total);
            }
        }
    }

    /// Makes every commit so far durable (one `fsync`). Cheap with
    /// [`Durability::Immediate`], where every commit already is.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.send(Msg::Flush(tx), StoreOp::Commit)?;
        rx.await.unwrap_or_else(|_| Err(abandoned(StoreOp::Commit)))
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

    fn send(&self, msg: Msg, op: StoreOp) -> Result<(), StoreError> {
        match &self.inner.jobs {
            Some(jobs) if jobs.send(msg).is_ok() => Ok(()),
            _ => Err(abandoned(op)),
        }
    }

    fn write<'a, T: Send + 'static>(
        &'a self,
        op: StoreOp,
        work: impl FnOnce(&Shared, &WriteTransaction) -> Written<T> + Send + 'static,
    ) -> StoreFuture<'a, T> {
        StoreFuture::new(async move {
            let (job, answer) = writer::job(op, work);
            self.send(Msg::Job(job), op)?;
            answer.await.unwrap_or_else(|_| Err(abandoned(op)))
        })
    }

    fn read<'a, T: Send + 'static>(
        &'a self,
        op: StoreOp,
        f: impl FnOnce(&Shared) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<'a, T> {
        let shared = self.inner.shared.clone();
        StoreFuture::new(blocking(op, move || f(&shared)))
    }
}

impl Store for RedbStore {
    fn name(&self) -> &'static str {
        NAME
    }

    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Record>> {
        let key = key.clone();
        self.read(StoreOp::Load, move |shared| shared.load(key.as_str()))
    }

    fn commit<'a>(&'a self, key: &'a StoreKey, patch: &'a Patch) -> StoreFuture<'a, Committed> {
        let key = key.clone();
        let patch = patch.clone();
        self.write(StoreOp::Commit, move |shared, txn| {
            shared.commit(txn, key.as_str(), &patch)
        })
    }

    fn destroy<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, bool> {
        let key = key.clone();
        self.write(StoreOp::Destroy, move |shared, txn| {
            shared.destroy(txn, key.as_str())
        })
    }

    fn destroy_all(&self) -> StoreFuture<'_, u64> {
        self.write(StoreOp::DestroyAll, |shared, txn| shared.destroy_all(txn))
    }

    fn count(&self) -> StoreFuture<'_, u64> {
        self.read(StoreOp::Count, Shared::count)
    }

    fn keys<'a>(&'a self, cursor: Option<&'a str>, limit: usize) -> StoreFuture<'a, KeyPage> {
        let cursor = cursor.map(str::to_owned);
        self.read(StoreOp::Keys, move |shared| {
            shared.keys(cursor.as_deref(), limit)
        })
    }

    fn set_expiry_listener(&self, listener: ExpiryListener) -> bool {
        // The first registration wins, as in the memory store.
        let _ = self.inner.listener.set(listener);
        true
    }

    fn purge_expired(&self) -> StoreFuture<'_, Option<u64>> {
        StoreFuture::new(async move { RedbStore::purge_expired(self).await.map(Some) })
    }

    fn index_user<'a>(
        &'a self,
        user: &'a str,
        key: &'a StoreKey,
        _expires_at: Option<SystemTime>,
    ) -> StoreFuture<'a, ()> {
        // The session's own deadline governs its rows: they go when it is purged.
        StoreFuture::new(async move {
            let op = StoreOp::IndexUser;
            // The core re-indexes whenever a commit moves the deadline: when the row
            // is already there, a read (no write transaction, no fsync) is enough.
            let (u, k) = (user.to_owned(), key.clone());
            if self
                .read(op, move |shared| shared.is_indexed(&u, k.as_str()))
                .await?
            {
                return Ok(());
            }
            let (user, key) = (user.to_owned(), key.clone());
            self.write(op, move |shared, txn| {
                shared.index_user(txn, &user, key.as_str())
            })
            .await
        })
    }

    fn destroy_user<'a>(&'a self, user: &'a str) -> StoreFuture<'a, Vec<StoreKey>> {
        let user = user.to_owned();
        self.write(StoreOp::DestroyUser, move |shared, txn| {
            shared.destroy_user(txn, &user)
        })
    }
}
