//! [`SqliteStore`].

use std::{path::Path, str::FromStr, sync::Arc, time::Duration};

use sessio::store::{StoreError, StoreKey, StoreOp};
use sqlx::{
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
        SqliteSynchronous,
    },
    Row as _, Sqlite, Transaction,
};

use crate::{
    common::{sql_error, Dialect},
    imp::{sql_store, Inner},
    SqlStoreOptions,
};

const NAME: &str = "sqlite";

/// Whether the error is SQLITE_BUSY (or one of its extended codes).
fn is_busy(e: &StoreError) -> bool {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<sqlx::Error>())
        .and_then(|e| match e {
            sqlx::Error::Database(db) => db.code(),
            _ => None,
        })
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| code & 0xff == 5)
}

/// Sessions in an SQLite database file: persistent sessions without a server, for one
/// machine (the file can be shared by several processes on it).
///
/// Schema (created by [`migrate`](Self::migrate)): `<table>(id TEXT PRIMARY KEY,
/// expires_at INTEGER)` with an index on `expires_at`, and `<table>_values(session_id,
/// name, data BLOB)`, one row per session key, and the user index
/// `<table>_users(session_id TEXT PRIMARY KEY, user_hash BLOB)` with an index on
/// `user_hash`, both deleted with their session (foreign keys `ON DELETE CASCADE`).
///
/// - **Atomicity**: a commit is one `BEGIN IMMEDIATE` transaction. SQLite has one
///   writer at a time per file, so commits (to any session) run one after another;
///   waiting writers retry for up to 5 s (`busy_timeout`) before failing with
///   `Unavailable`. Loads read a consistent snapshot and do not wait for writers (WAL).
/// - **Durability**: [`open`](Self::open) and [`connect`](Self::connect) use WAL with
///   `synchronous = NORMAL`: a commit survives the process crashing, but the last
///   commits before a power loss or OS crash may be lost (the file stays
///   consistent). Build the pool yourself with `SqliteSynchronous::Full` and use
///   [`from_pool`](Self::from_pool) if that matters.
/// - **Expiry**: as for the other SQL stores; the sweeper deletes in small batches
///   (each batch holds the write lock only for its own statement).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use sessio::Sessions;
/// use sessio_sql::SqliteStore;
///
/// let store = SqliteStore::open("sessions.db").await?;
/// let sessions = Sessions::builder().store(store).build()?;
/// # let _ = sessions; Ok(()) }
/// ```
pub struct SqliteStore {
    inner: Arc<Inner<Sqlite>>,
    sweeper: Option<Arc<crate::SweeperHandle>>,
}

sql_store!(SqliteStore, Sqlite, "sqlite");

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` with the default
    /// [`SqlStoreOptions`].
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let connect = SqliteConnectOptions::new().filename(path);
        Self::connect_options(connect, SqlStoreOptions::default()).await
    }

    /// Connects with the default [`SqlStoreOptions`]: creates the file and the schema
    /// if needed and starts the sweeper.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, SqlStoreOptions::default()).await
    }

    /// Connects to `url` (`sqlite:PATH` or `sqlite://PATH`, created if missing) with
    /// `options`. Runs [`migrate`](Self::migrate) unless disabled and starts the
    /// sweeper if `options` has an interval (it stops when the last clone of the store
    /// is dropped). In-memory databases (`sqlite::memory:`) are not supported: each
    /// pooled connection would see its own empty database.
    pub async fn connect_with(url: &str, options: SqlStoreOptions) -> Result<Self, StoreError> {
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::unavailable(NAME, StoreOp::Connect, e))?;
        Self::connect_options(connect, options).await
    }

    async fn connect_options(
        connect: SqliteConnectOptions,
        options: SqlStoreOptions,
    ) -> Result<Self, StoreError> {
        let connect = connect
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        // Two processes creating the same file at once: switching a new database to
        // WAL (and the first DDL) can fail with SQLITE_BUSY without waiting for
        // `busy_timeout`, so opening retries for up to about 5 s.
        let mut attempts = 0;
        let mut store = loop {
            match Self::try_open(connect.clone(), &options).await {
                Err(e) if attempts < 50 && is_busy(&e) => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                result => break result?,
            }
        };
        if let Some(interval) = options.sweep_interval {
            store.sweeper = Some(Arc::new(store.spawn_sweeper(interval, options.sweep_batch)));
        }
        Ok(store)
    }

    async fn try_open(
        connect: SqliteConnectOptions,
        options: &SqlStoreOptions,
    ) -> Result<Self, StoreError> {
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .test_before_acquire(options.test_before_acquire)
            .connect_with(connect)
            .await
            .map_err(|e| sql_error(NAME, StoreOp::Connect, e))?;
        let store = Self::from_pool(pool, options);
        if options.migrate {
            if let Err(e) = store.migrate().await {
                store.inner.pool.close().await;
                return Err(e);
            }
        }
        Ok(store)
    }

    /// A store on your pool. Runs nothing: call [`migrate`](Self::migrate) once and
    /// [`spawn_sweeper`](Self::spawn_sweeper) if you want one. The pool's connections
    /// must have foreign keys on (sqlx's default) so that values are deleted with
    /// their session.
    pub fn from_pool(pool: SqlitePool, options: &SqlStoreOptions) -> Self {
        Self::from_parts(pool, options, Dialect::Sqlite)
    }

    /// Creates the tables and the index if they do not exist, in one `BEGIN
    /// IMMEDIATE` transaction (SQLite's write lock makes concurrent runs safe).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let err = |e| sql_error(NAME, StoreOp::Connect, e);
        let t = self.inner.table.as_str();
        let mut tx = Self::begin(&self.inner.pool).await.map_err(err)?;
        for ddl in [
            format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                   id TEXT NOT NULL PRIMARY KEY, \
                   expires_at INTEGER) WITHOUT ROWID"
            ),
            format!("CREATE INDEX IF NOT EXISTS {t}_expires_at ON {t} (expires_at)"),
            format!(
                "CREATE TABLE IF NOT EXISTS {t}_values (\
                   session_id TEXT NOT NULL REFERENCES {t} (id) ON DELETE CASCADE, \
                   name TEXT NOT NULL, \
                   data BLOB NOT NULL, \
                   PRIMARY KEY (session_id, name)) WITHOUT ROWID"
            ),
        ] {
            sqlx::query(&ddl).execute(&mut *tx).await.map_err(err)?;
        }
        // Added after the first release: a file made by an earlier version gets its
        // user index here, filled from the users its sessions hold.
        let had_users: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master \
               WHERE type = 'table' AND name = ? COLLATE NOCASE)",
        )
        .bind(format!("{t}_users"))
        .fetch_one(&mut *tx)
        .await
        .map_err(err)?;
        if !had_users {
            for ddl in [
                format!(
                    "CREATE TABLE IF NOT EXISTS {t}_users (\
                       session_id TEXT NOT NULL PRIMARY KEY \
                         REFERENCES {t} (id) ON DELETE CASCADE, \
                       user_hash BLOB NOT NULL) WITHOUT ROWID"
                ),
                format!("CREATE INDEX IF NOT EXISTS {t}_users_hash ON {t}_users (user_hash)"),
            ] {
                sqlx::query(&ddl).execute(&mut *tx).await.map_err(err)?;
            }
            let n = self.backfill_users(&mut tx).await?;
            if n > 0 {
                tracing::info!(store = NAME, indexed = n, "created the user index");
            }
        }
        tx.commit().await.map_err(err)
    }

    /// `BEGIN IMMEDIATE`: take the write lock up front, so a transaction never has to
    /// upgrade a read snapshot (which fails with `SQLITE_BUSY` without waiting).
    async fn begin(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        crate::common::begin_detached(pool, Some("BEGIN IMMEDIATE")).await
    }

    fn param(s: &str) -> &str {
        s
    }

    fn text(
        row: &SqliteRow,
        index: usize,
        _column: &'static str,
        op: StoreOp,
    ) -> Result<Option<String>, StoreError> {
        row.try_get(index).map_err(|e| sql_error(NAME, op, e))
    }

    /// Deletes the sessions indexed under `user_hash` (values and index rows
    /// cascade) in one statement; returns each with its deadline.
    async fn delete_user_sessions(
        &self,
        user_hash: &[u8],
    ) -> Result<Vec<(StoreKey, Option<i64>)>, StoreError> {
        let t = self.inner.table.as_str();
        let rows: Vec<(String, Option<i64>)> = sqlx::query_as(&format!(
            "DELETE FROM {t} WHERE id IN (\
               SELECT session_id FROM {t}_users WHERE user_hash = ?) \
             RETURNING id, expires_at"
        ))
        .bind(user_hash)
        .fetch_all(&self.inner.pool)
        .await
        .map_err(|e| sql_error(NAME, StoreOp::DestroyUser, e))?;
        Ok(rows
            .into_iter()
            .map(|(id, expires_at)| (StoreKey::from_stored(id), expires_at))
            .collect())
    }

    async fn purge_batch(&self, now: i64, batch: u32) -> Result<Vec<StoreKey>, sqlx::Error> {
        let t = self.inner.table.as_str();
        let ids: Vec<String> = sqlx::query_scalar(&format!(
            "DELETE FROM {t} WHERE id IN (\
               SELECT id FROM {t} WHERE expires_at <= ? ORDER BY expires_at LIMIT ?) \
             RETURNING id"
        ))
        .bind(now)
        .bind(i64::from(batch))
        .fetch_all(&self.inner.pool)
        .await?;
        Ok(ids.into_iter().map(StoreKey::from_stored).collect())
    }
}
