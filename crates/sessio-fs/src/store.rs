//! [`FileStore`] and its builder.

use std::{
    fs::{self, File, OpenOptions},
    hash::{BuildHasher, RandomState},
    io::{self, Read, Write},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, OnceLock,
    },
    time::{Duration, SystemTime},
};

use sessio::store::{
    apply_changes, is_expired, Committed, ExpiryListener, KeyPage, Patch, Record, Store,
    StoreError, StoreErrorKind, StoreFuture, StoreKey, StoreOp, Values,
};
use tokio::{
    sync::{watch, OwnedMutexGuard},
    task::JoinHandle,
};

use crate::{
    error::{CorruptFile, FileError},
    format, gc,
    names::{self, SUFFIX, TMP_PREFIX, USERS_DIR},
};

const NAME: &str = "fs";
const STRIPES: usize = 256;
/// Temporary files older than this are leftovers of a crash and removed by the purge.
const STALE_TMP: Duration = Duration::from_secs(600);

/// A store that keeps one file per session under a directory.
///
/// - **Layout**: the file of a session is named by the lowercase hex of its store key
///   plus `.session` (see [`names`](crate#file-names)); keys longer than 120 bytes are
///   refused with [`StoreErrorKind::Unsupported`] (sessio's default ids have 22).
/// - **Atomic writes**: a commit reads the file, applies the patch, writes the result
///   to a temporary file in the same directory, `fsync`s it, renames it over the old
///   file and `fsync`s the directory. A reader sees the old or the new record, never a
///   mix; a crash leaves the old record (plus a temporary file that the purge removes).
/// - **Concurrency**: commits and destroys of one session are serialized by a lock
///   (256 lock stripes chosen by key hash), so concurrent patches on distinct keys all
///   survive and increments are exact, **within one process**. Several processes
///   sharing one directory can lose updates: run one `FileStore` per directory.
/// - **Durability**: with [`fsync`](FileStoreBuilder::fsync) on (the default), a
///   commit that returned `Ok` survives a power loss. With it off, it survives a
///   process crash (the rename is done) but not an OS crash.
/// - **Expiry**: an expired session is never returned. [`FileStore::purge_expired`]
///   and the background task (every [`gc_interval`](FileStoreBuilder::gc_interval),
///   default 60 s) delete expired files. They read the header of **every** session
///   file, so their cost grows with the number of stored sessions (about 1 µs per file
///   when cached): fine for thousands of sessions, use `sessio-redb` for millions.
/// - **Log out everywhere**: a user index serves
///   [`Sessions::destroy_user`](sessio::Sessions::destroy_user): under `users/`, one
///   directory per user (named by the SHA-256 of the user) holding one empty file per
///   session of that user, named like the session's file. `destroy_user` deletes the
///   sessions first, then the entries. Destroyed and expired sessions leave entries
///   behind until the purge removes them (sessions are gone either way).
/// - **Bad files**: a session file with garbage content makes loads and commits of
///   that one session fail with [`StoreErrorKind::Corrupt`] (the source is a
///   [`CorruptFile`] naming the file); every other session keeps working. `destroy`
///   removes it; `count`, `keys` and the purge read only the header of each file and
///   skip files whose header is bad (with a warning in the log).
///
/// # Errors and logs
///
/// Store keys are session ids, which are secrets, so errors and logs show only the
/// first 8 hex digits of a file name (`3f2a9c1b….session`).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sessio::Error> {
/// use sessio::Sessions;
/// use sessio_fs::FileStore;
///
/// # let dir = tempfile::tempdir().unwrap();
/// let store = FileStore::open(dir.path().join("sessions")).await?;
/// let sessions = Sessions::builder().store(store.clone()).build()?;
/// let session = sessions.start(&http::HeaderMap::new()).await?;
/// assert_eq!(session.increment("visits", 1).await?, 1);
/// store.shutdown().await; // stops the purge task; dropping every handle does too
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.inner.dir)
            .field("fsync", &self.inner.fsync)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    dir: PathBuf,
    fsync: bool,
    stripes: Box<[Arc<tokio::sync::Mutex<()>>]>,
    hasher: RandomState,
    listener: OnceLock<ExpiryListener>,
    tmp_counter: AtomicU64,
    gc: Mutex<Option<JoinHandle<()>>>,
    stop: watch::Sender<bool>,
}

/// Configures a [`FileStore`].
#[derive(Debug, Clone)]
pub struct FileStoreBuilder {
    fsync: bool,
    gc_interval: Option<Duration>,
}

impl Default for FileStoreBuilder {
    fn default() -> Self {
        Self {
            fsync: true,
            gc_interval: Some(Duration::from_secs(60)),
        }
    }
}

impl FileStoreBuilder {
    /// Whether commits `fsync` the file and the directory before returning (default
    /// `true`). See [`FileStore`] for what each setting survives.
    #[must_use]
    pub fn fsync(mut self, on: bool) -> Self {
        self.fsync = on;
        self
    }

    /// How often the background task deletes expired files (default 60 s); `None`
    /// runs no task (call [`FileStore::purge_expired`] yourself).
    #[must_use]
    pub fn gc_interval(mut self, every: Option<Duration>) -> Self {
        self.gc_interval = every.filter(|d| !d.is_zero());
        self
    }

    /// Opens (creating it if needed) the directory and starts the purge task.
    ///
    /// Must be called within a Tokio runtime. Fails with
    /// [`StoreErrorKind::Unavailable`] when the directory cannot be created or read.
    pub async fn open(self, dir: impl AsRef<Path>) -> Result<FileStore, StoreError> {
        let dir = dir.as_ref().to_owned();
        let dir = blocking(StoreOp::Connect, move || {
            fs::create_dir_all(&dir).map_err(|e| io_error(StoreOp::Connect, "create", &dir, e))?;
            fs::read_dir(&dir).map_err(|e| io_error(StoreOp::Connect, "list", &dir, e))?;
            Ok(dir)
        })
        .await?;
        let (stop, stop_rx) = watch::channel(false);
        let inner = Arc::new(Inner {
            dir,
            fsync: self.fsync,
            stripes: (0..STRIPES).map(|_| Arc::default()).collect(),
            hasher: RandomState::new(),
            listener: OnceLock::new(),
            tmp_counter: AtomicU64::new(0),
            gc: Mutex::new(None),
            stop,
        });
        if let Some(every) = self.gc_interval {
            let task = gc::spawn(Arc::downgrade(&inner), every, stop_rx);
            *inner.gc.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        }
        Ok(FileStore { inner })
    }
}

impl FileStore {
    /// Opens a store in `dir` with default settings (fsync on, purge every 60 s).
    pub async fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        FileStoreBuilder::default().open(dir).await
    }

    /// Configures a store.
    pub fn builder() -> FileStoreBuilder {
        FileStoreBuilder::default()
    }

    /// The directory that holds the session files.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Deletes every expired session file (and temporary files left by a crash) now,
    /// calling the expiry listener for each session, then the user index entries of
    /// sessions that are gone; returns how many sessions were deleted.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        let inner = self.inner.clone();
        blocking(StoreOp::PurgeExpired, move || inner.purge_expired()).await
    }

    /// Stops the background purge task and waits for it to finish. The store keeps
    /// working; only the automatic purge stops. Dropping every handle of the store
    /// stops the task as well.
    pub async fn shutdown(&self) {
        let _ = self.inner.stop.send(true);
        let task = self
            .inner
            .gc
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    fn stripe(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let h = self.inner.hasher.hash_one(key) as usize;
        self.inner.stripes[h % STRIPES].clone()
    }
}

/// Runs blocking filesystem work off the async threads.
async fn blocking<T: Send + 'static>(
    op: StoreOp,
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) => Err(StoreError::unavailable(NAME, op, e)),
    }
}

fn io_error(op: StoreOp, action: &'static str, path: &Path, source: io::Error) -> StoreError {
    // Session file names are secrets: never put a whole one in an error.
    let path = match path.file_name().and_then(|n| n.to_str()) {
        Some(name) if name.ends_with(SUFFIX) => path.with_file_name(names::redacted(name)),
        _ => path.to_owned(),
    };
    StoreError::unavailable(
        NAME,
        op,
        FileError {
            action,
            path,
            source,
        },
    )
}

fn too_long(op: StoreOp) -> StoreError {
    StoreError::new(NAME, op, StoreErrorKind::Unsupported)
}

impl Inner {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn corrupt(&self, op: StoreOp, name: &str, source: format::FormatError) -> StoreError {
        StoreError::corrupt(
            NAME,
            op,
            CorruptFile {
                path: self.dir.join(names::redacted(name)),
                source,
            },
        )
    }

    /// Reads the whole file; `None` when there is none.
    fn read(&self, name: &str, op: StoreOp) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path(name);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(op, "read", &path, e)),
        }
    }

    fn read_record(&self, name: &str, op: StoreOp) -> Result<Option<Record>, StoreError> {
        match self.read(name, op)? {
            None => Ok(None),
            Some(bytes) => format::decode(&bytes)
                .map(Some)
                .map_err(|e| self.corrupt(op, name, e)),
        }
    }

    /// Reads only the header: the deadline, `Ok(None)` when the file is gone.
    fn read_deadline(
        &self,
        name: &str,
    ) -> io::Result<Option<Result<Option<SystemTime>, format::FormatError>>> {
        let mut head = Vec::with_capacity(format::HEADER_LEN);
        match File::open(self.path(name)) {
            Ok(file) => {
                file.take(format::HEADER_LEN as u64)
                    .read_to_end(&mut head)?;
                Ok(Some(format::decode_deadline(&head)))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether the session in `name` is live; corrupt files are not, and are logged.
    fn is_live(&self, name: &str, now: SystemTime, op: StoreOp) -> Result<bool, StoreError> {
        match self.read_deadline(name) {
            Ok(None) => Ok(false),
            Ok(Some(Ok(deadline))) => Ok(!is_expired(deadline, now)),
            Ok(Some(Err(e))) => {
                tracing::warn!(file = %names::redacted(name), error = %e, "fs store: skipping a corrupt session file");
                Ok(false)
            }
            Err(e) => Err(io_error(op, "read", &self.path(name), e)),
        }
    }

    fn write_atomically(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let op = StoreOp::Commit;
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        let tmp = self.path(&format!("{TMP_PREFIX}{}-{n}", std::process::id()));
        let result = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(|e| io_error(op, "create", &tmp, e))?;
            file.write_all(bytes)
                .map_err(|e| io_error(op, "write", &tmp, e))?;
            if self.fsync {
                file.sync_all()
                    .map_err(|e| io_error(op, "fsync", &tmp, e))?;
            }
            let path = self.path(name);
            fs::rename(&tmp, &path).map_err(|e| io_error(op, "rename", &path, e))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result?;
        self.sync_dir(op)
    }

    /// Makes a rename or unlink in the directory durable.
    fn sync_dir(&self, op: StoreOp) -> Result<(), StoreError> {
        self.sync_path(&self.dir, op)
    }

    /// Makes a change to the entries of `dir` durable (when fsync is on).
    fn sync_path(&self, dir: &Path, op: StoreOp) -> Result<(), StoreError> {
        if self.fsync {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_error(op, "fsync", dir, e))?;
        }
        Ok(())
    }

    fn remove(&self, name: &str, op: StoreOp) -> Result<bool, StoreError> {
        let path = self.path(name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error(op, "remove", &path, e)),
        }
    }

    fn commit(&self, name: &str, patch: &Patch) -> Result<Committed, StoreError> {
        let now = SystemTime::now();
        let live = self
            .read_record(name, StoreOp::Commit)?
            .filter(|r| !is_expired(r.expires_at, now));
        let mut values = match live {
            Some(record) => Arc::unwrap_or_clone(record.values),
            None if patch.create => Values::default(),
            None => return Ok(Committed::Missing),
        };
        // Works on an owned copy: an increment that fails leaves the file untouched.
        let counters = apply_changes(&mut values, patch, NAME)?;
        self.write_atomically(name, &format::encode(&values, patch.expires_at))?;
        Ok(Committed::Applied { counters })
    }

    fn destroy(&self, name: &str) -> Result<bool, StoreError> {
        let live = self.remove_session(name, SystemTime::now(), StoreOp::Destroy)?;
        self.sync_dir(StoreOp::Destroy)?;
        Ok(live)
    }

    /// Removes a session file (without syncing the directory); returns whether it
    /// existed and was live. The caller holds the session's lock.
    fn remove_session(&self, name: &str, now: SystemTime, op: StoreOp) -> Result<bool, StoreError> {
        let live = match self.read_deadline(name) {
            Ok(None) => return Ok(false),
            Ok(Some(Ok(deadline))) => !is_expired(deadline, now),
            // A corrupt session is removed like any other and counts as existing.
            Ok(Some(Err(_))) => true,
            Err(e) => return Err(io_error(op, "read", &self.path(name), e)),
        };
        Ok(self.remove(name, op)? && live)
    }

    /// The session file names in the directory, and the temporary files.
    fn list(&self, op: StoreOp) -> Result<(Vec<String>, Vec<PathBuf>), StoreError> {
        let mut sessions = Vec::new();
        let mut temps = Vec::new();
        let entries = fs::read_dir(&self.dir).map_err(|e| io_error(op, "list", &self.dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error(op, "list", &self.dir, e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.starts_with(TMP_PREFIX) {
                temps.push(entry.path());
            } else if name.ends_with(SUFFIX) && names::key_of(&name).is_some() {
                sessions.push(name);
            }
        }
        Ok((sessions, temps))
    }

    fn lock_blocking(&self, name: &str) -> Option<OwnedMutexGuard<()>> {
        let key = names::key_of(name)?;
        let h = self.hasher.hash_one(key.as_str()) as usize;
        Some(self.stripes[h % STRIPES].clone().blocking_lock_owned())
    }

    fn destroy_all(&self) -> Result<u64, StoreError> {
        let op = StoreOp::DestroyAll;
        let now = SystemTime::now();
        let (sessions, _) = self.list(op)?;
        let mut live = 0;
        for name in sessions {
            let _guard = self.lock_blocking(&name);
            let was_live = self.is_live(&name, now, op)?;
            if self.remove(&name, op)? && was_live {
                live += 1;
            }
        }
        self.sync_dir(op)?;
        self.sweep_index(op)?;
        Ok(live)
    }

    fn count(&self) -> Result<u64, StoreError> {
        let now = SystemTime::now();
        let (sessions, _) = self.list(StoreOp::Count)?;
        let mut n = 0;
        for name in sessions {
            if self.is_live(&name, now, StoreOp::Count)? {
                n += 1;
            }
        }
        Ok(n)
    }

    fn keys(&self, cursor: Option<&str>, limit: usize) -> Result<KeyPage, StoreError> {
        let now = SystemTime::now();
        let (sessions, _) = self.list(StoreOp::Keys)?;
        let mut keys: Vec<String> = sessions
            .iter()
            .filter_map(|name| names::key_of(name))
            .filter(|k| cursor.is_none_or(|c| k.as_str() > c))
            .collect();
        keys.sort_unstable();
        let limit = limit.max(1);
        let mut page = KeyPage::default();
        let mut rest = keys.into_iter();
        for key in rest.by_ref() {
            let Some(name) = names::file_name(&key) else {
                continue;
            };
            if self.is_live(&name, now, StoreOp::Keys)? {
                page.keys.push(StoreKey::from_stored(key));
                if page.keys.len() == limit {
                    break;
                }
            }
        }
        if rest.next().is_some() {
            page.next = page.keys.last().map(|k| k.as_str().to_owned());
        }
        Ok(page)
    }

    pub(crate) fn purge_expired(&self) -> Result<u64, StoreError> {
        let op = StoreOp::PurgeExpired;
        let now = SystemTime::now();
        let (sessions, temps) = self.list(op)?;
        let mut expired = Vec::new();
        for name in sessions {
            if self.is_live(&name, now, op)? {
                continue;
            }
            let Some(guard) = self.lock_blocking(&name) else {
                continue;
            };
            // Re-check under the lock: a commit may have revived it meanwhile, and a
            // corrupt file (not live, but no deadline) is kept for the operator.
            match self.read_deadline(&name) {
                Ok(Some(Ok(deadline))) if is_expired(deadline, now) => {
                    let key = names::key_of(&name);
                    if let (true, Some(key)) = (self.remove(&name, op)?, key) {
                        expired.push(StoreKey::from_stored(key));
                    }
                }
                _ => {}
            }
            drop(guard);
        }
        for tmp in temps {
            let stale = fs::metadata(&tmp)
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age > STALE_TMP));
            if stale {
                let _ = fs::remove_file(&tmp);
            }
        }
        if !expired.is_empty() {
            self.sync_dir(op)?;
            if let Some(listener) = self.listener.get() {
                for key in &expired {
                    listener(key);
                }
            }
        }
        // After the sessions: the index entries of those just purged go now, too.
        self.sweep_index(op)?;
        Ok(expired.len() as u64)
    }
}

// The user index (log out everywhere): `users/<user_dir>/<session file name>`. An
// entry is an empty file, created after the session's commit and removed only after
// its session is gone, so a crash can leave an entry without a session (the purge
// removes it) but never a session of the user without its entry.
impl Inner {
    fn users(&self) -> PathBuf {
        self.dir.join(USERS_DIR)
    }

    /// Adds the entry of session `name` to the directory of a user, if the session
    /// is stored. The caller holds the session's lock, so a concurrent destroy cannot
    /// slip in between the check and the entry.
    fn index_user(&self, user_dir: &str, name: &str) -> Result<(), StoreError> {
        let op = StoreOp::IndexUser;
        match fs::symlink_metadata(self.path(name)) {
            Ok(_) => {}
            // Destroyed since its commit: an entry would only be garbage.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_error(op, "read", &self.path(name), e)),
        }
        let users = self.users();
        let dir = users.join(user_dir);
        let entry = dir.join(name);
        // The purge and `destroy_user` remove a user's directory once it is empty; if
        // that happens between creating the directory and the entry, go again.
        for _ in 0..4 {
            match fs::create_dir(&dir) {
                Ok(()) => self.sync_path(&users, op)?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // The first user ever (`users/` is made on demand, so a directory
                    // of an earlier version, or without users, has none).
                    fs::create_dir_all(&users).map_err(|e| io_error(op, "create", &users, e))?;
                    self.sync_dir(op)?;
                    continue;
                }
                Err(e) => return Err(io_error(op, "create", &dir, e)),
            }
            match OpenOptions::new().write(true).create_new(true).open(&entry) {
                // Empty: only the name matters, so only the directory needs syncing.
                Ok(_) => return self.sync_path(&dir, op),
                // Re-indexing (the core does it whenever a deadline moves) costs a stat.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(op, "create", &entry, e)),
            }
        }
        Err(io_error(
            op,
            "create",
            &entry,
            io::Error::other("the user's index directory kept being removed"),
        ))
    }

    /// Destroys every session with an entry in the user's directory, then the
    /// entries; returns the keys of the sessions that were live.
    fn destroy_user(&self, user_dir: &str) -> Result<Vec<StoreKey>, StoreError> {
        let op = StoreOp::DestroyUser;
        let now = SystemTime::now();
        let dir = self.users().join(user_dir);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(op, "list", &dir, e)),
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error(op, "list", &dir, e))?;
            if let Ok(name) = entry.file_name().into_string() {
                if let Some(key) = names::key_of(&name) {
                    found.push((name, key));
                }
            }
        }
        let mut ended = Vec::new();
        for (name, key) in &found {
            let _guard = self.lock_blocking(name);
            if self.remove_session(name, now, op)? {
                ended.push(StoreKey::from_stored(key.as_str()));
            }
        }
        // The sessions are gone for good before their entries go: a crash in between
        // leaves entries for the purge, never a session the user cannot log out.
        self.sync_dir(op)?;
        for (name, _) in &found {
            let path = dir.join(name);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(op, "remove", &path, e)),
            }
        }
        // Fails when a session was indexed meanwhile: then the directory stays.
        let _ = fs::remove_dir(&dir);
        Ok(ended)
    }

    /// Removes the entries of sessions that no longer exist, and the directories of
    /// users left without entries; returns how many entries it removed.
    fn sweep_index(&self, op: StoreOp) -> Result<u64, StoreError> {
        let users = self.users();
        let dirs = match fs::read_dir(&users) {
            Ok(dirs) => dirs,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_error(op, "list", &users, e)),
        };
        let mut removed = 0;
        for dir in dirs {
            let dir = dir.map_err(|e| io_error(op, "list", &users, e))?.path();
            let Ok(entries) = fs::read_dir(&dir) else {
                continue; // not a directory, or removed meanwhile
            };
            for entry in entries {
                let entry = entry.map_err(|e| io_error(op, "list", &dir, e))?;
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                if names::key_of(&name).is_none() {
                    continue;
                }
                // Sessions are never recreated under a key that is gone (ids are
                // fresh), so an entry without its session is garbage for good.
                match fs::symlink_metadata(self.path(&name)) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        match fs::remove_file(entry.path()) {
                            Ok(()) => removed += 1,
                            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                            Err(e) => return Err(io_error(op, "remove", &entry.path(), e)),
                        }
                    }
                    Ok(_) => {}
                    Err(e) => return Err(io_error(op, "read", &self.path(&name), e)),
                }
            }
            // Fails (and the directory stays) unless it is empty.
            let _ = fs::remove_dir(&dir);
        }
        Ok(removed)
    }
}

impl Store for FileStore {
    fn name(&self) -> &'static str {
        NAME
    }

    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Record>> {
        let Some(name) = names::file_name(key.as_str()) else {
            // Such a key can never have been stored.
            return StoreFuture::ready(Ok(None));
        };
        let inner = self.inner.clone();
        StoreFuture::new(blocking(StoreOp::Load, move || {
            let now = SystemTime::now();
            Ok(inner
                .read_record(&name, StoreOp::Load)?
                .filter(|r| !is_expired(r.expires_at, now)))
        }))
    }

    fn commit<'a>(&'a self, key: &'a StoreKey, patch: &'a Patch) -> StoreFuture<'a, Committed> {
        let Some(name) = names::file_name(key.as_str()) else {
            return StoreFuture::ready(Err(too_long(StoreOp::Commit)));
        };
        let inner = self.inner.clone();
        let stripe = self.stripe(key.as_str());
        let patch = patch.clone();
        StoreFuture::new(async move {
            // The owned guard moves into the blocking task, so the lock is held until
            // the write is done even if this future is dropped half-way.
            let guard = stripe.lock_owned().await;
            blocking(StoreOp::Commit, move || {
                let _guard = guard;
                inner.commit(&name, &patch)
            })
            .await
        })
    }

    fn destroy<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, bool> {
        let Some(name) = names::file_name(key.as_str()) else {
            return StoreFuture::ready(Ok(false));
        };
        let inner = self.inner.clone();
        let stripe = self.stripe(key.as_str());
        StoreFuture::new(async move {
            let guard = stripe.lock_owned().await;
            blocking(StoreOp::Destroy, move || {
                let _guard = guard;
                inner.destroy(&name)
            })
            .await
        })
    }

    fn destroy_all(&self) -> StoreFuture<'_, u64> {
        let inner = self.inner.clone();
        StoreFuture::new(blocking(StoreOp::DestroyAll, move || inner.destroy_all()))
    }

    fn count(&self) -> StoreFuture<'_, u64> {
        let inner = self.inner.clone();
        StoreFuture::new(blocking(StoreOp::Count, move || inner.count()))
    }

    fn keys<'a>(&'a self, cursor: Option<&'a str>, limit: usize) -> StoreFuture<'a, KeyPage> {
        let inner = self.inner.clone();
        let cursor = cursor.map(str::to_owned);
        StoreFuture::new(blocking(StoreOp::Keys, move || {
            inner.keys(cursor.as_deref(), limit)
        }))
    }

    fn set_expiry_listener(&self, listener: ExpiryListener) -> bool {
        // The first registration wins, as in the memory store.
        let _ = self.inner.listener.set(listener);
        true
    }

    fn purge_expired(&self) -> StoreFuture<'_, Option<u64>> {
        StoreFuture::new(async move { FileStore::purge_expired(self).await.map(Some) })
    }

    fn index_user<'a>(
        &'a self,
        user: &'a str,
        key: &'a StoreKey,
        _expires_at: Option<SystemTime>,
    ) -> StoreFuture<'a, ()> {
        // The entry lives as long as its session file: the purge removes it after.
        let Some(name) = names::file_name(key.as_str()) else {
            return StoreFuture::ready(Err(too_long(StoreOp::IndexUser)));
        };
        let inner = self.inner.clone();
        let stripe = self.stripe(key.as_str());
        let user_dir = names::user_dir(user);
        StoreFuture::new(async move {
            let guard = stripe.lock_owned().await;
            blocking(StoreOp::IndexUser, move || {
                let _guard = guard;
                inner.index_user(&user_dir, &name)
            })
            .await
        })
    }

    fn destroy_user<'a>(&'a self, user: &'a str) -> StoreFuture<'a, Vec<StoreKey>> {
        let inner = self.inner.clone();
        let user_dir = names::user_dir(user);
        StoreFuture::new(blocking(StoreOp::DestroyUser, move || {
            inner.destroy_user(&user_dir)
        }))
    }
}
