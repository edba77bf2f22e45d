//! [`PostgresStore`].

use std::{str::FromStr, sync::Arc};

use sessio::store::{StoreError, StoreKey, StoreOp};
use sqlx::{
    postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow},
    Postgres, Row as _, Transaction,
};

use crate::{
    common::{sql_error, Dialect},
    imp::{sql_store, Inner},
    SqlStoreOptions,
};

const NAME: &str = "postgres";

/// Sessions in PostgreSQL (9.5 or later).
///
/// Schema (created by [`migrate`](Self::migrate)): `<table>(id TEXT PRIMARY KEY,
/// expires_at BIGINT)` with an index on `expires_at`, and `<table>_values(session_id,
/// name, data BYTEA)`, one row per session key, and the user index
/// `<table>_users(session_id TEXT PRIMARY KEY, user_hash BYTEA)` with an index on
/// `user_hash`, both deleted with their session (`ON DELETE CASCADE`).
///
/// - **Atomicity**: a commit is one transaction. Its first statement updates the
///   session row, which row-locks it until commit, so commits on one session run one
///   after the other (increments are exact, patches on different keys both land) and
///   commits on different sessions never wait for each other. A failed increment
///   rolls the whole patch back.
/// - **Durability**: what PostgreSQL gives a committed transaction (with the default
///   `synchronous_commit = on`, it is on disk when `commit` returns).
/// - **Expiry**: deadlines are milliseconds since the epoch by the application's
///   clock; loads, counts and listings skip expired rows; the sweeper deletes them in
///   small batches with `FOR UPDATE SKIP LOCKED`, so it never waits on a session in
///   use and never holds many locks.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use sessio::Sessions;
/// use sessio_sql::PostgresStore;
///
/// let store = PostgresStore::connect("postgres://postgres@127.0.0.1/app").await?;
/// let sessions = Sessions::builder().store(store).build()?;
/// # let _ = sessions; Ok(()) }
/// ```
pub struct PostgresStore {
    inner: Arc<Inner<Postgres>>,
    sweeper: Option<Arc<crate::SweeperHandle>>,
}

sql_store!(PostgresStore, Postgres, "postgres");

/// Holds, until `tx` ends, a transaction-scoped advisory lock keyed by the schema and
/// `table`: schema changes from many processes at once run one after the other
/// (concurrent `CREATE … IF NOT EXISTS` can fail in PostgreSQL).
pub(crate) async fn lock_schema(
    tx: &mut Transaction<'static, Postgres>,
    table: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtext('sessio:' || current_schema() || '.' || $1))",
    )
    .bind(table)
    .execute(&mut **tx)
    .await
    .map(drop)
}

impl PostgresStore {
    /// Connects with the default [`SqlStoreOptions`]: creates the schema if needed and
    /// starts the sweeper.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, SqlStoreOptions::default()).await
    }

    /// Connects to `url` (`postgres://user:pass@host:port/db?...`) with `options`.
    /// Runs [`migrate`](Self::migrate) unless disabled and starts the sweeper if
    /// `options` has an interval (it stops when the last clone of the store is
    /// dropped).
    pub async fn connect_with(url: &str, options: SqlStoreOptions) -> Result<Self, StoreError> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::unavailable(NAME, StoreOp::Connect, e))?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .test_before_acquire(options.test_before_acquire)
            .connect_with(connect)
            .await
            .map_err(|e| sql_error(NAME, StoreOp::Connect, e))?;
        let mut store = Self::from_pool(pool, &options);
        if options.migrate {
            store.migrate().await?;
        }
        if let Some(interval) = options.sweep_interval {
            store.sweeper = Some(Arc::new(store.spawn_sweeper(interval, options.sweep_batch)));
        }
        Ok(store)
    }

    /// A store on your pool. Runs nothing: call [`migrate`](Self::migrate) once and
    /// [`spawn_sweeper`](Self::spawn_sweeper) if you want one.
    pub fn from_pool(pool: PgPool, options: &SqlStoreOptions) -> Self {
        Self::from_parts(pool, options, Dialect::Postgres)
    }

    /// Creates the tables and the index if they do not exist. Safe to run from many
    /// processes at once: it holds a transaction-scoped advisory lock (keyed by the
    /// schema and table) while it runs, because concurrent `CREATE TABLE IF NOT EXISTS`
    /// can fail in PostgreSQL.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let err = |e| sql_error(NAME, StoreOp::Connect, e);
        let t = self.inner.table.as_str();
        let mut tx = Self::begin(&self.inner.pool).await.map_err(err)?;
        lock_schema(&mut tx, t).await.map_err(err)?;
        for ddl in [
            format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                   id TEXT COLLATE \"C\" PRIMARY KEY, \
                   expires_at BIGINT)"
            ),
            format!("CREATE INDEX IF NOT EXISTS {t}_expires_at ON {t} (expires_at)"),
            format!(
                "CREATE TABLE IF NOT EXISTS {t}_values (\
                   session_id TEXT COLLATE \"C\" NOT NULL REFERENCES {t} (id) ON DELETE CASCADE, \
                   name TEXT COLLATE \"C\" NOT NULL, \
                   data BYTEA NOT NULL, \
                   PRIMARY KEY (session_id, name))"
            ),
        ] {
            sqlx::query(&ddl).execute(&mut *tx).await.map_err(err)?;
        }
        // Added after the first release: a table made by an earlier version gets its
        // user index here, filled from the users its sessions hold.
        let had_users: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_tables \
               WHERE schemaname = current_schema() AND tablename = lower($1))",
        )
        .bind(format!("{t}_users"))
        .fetch_one(&mut *tx)
        .await
        .map_err(err)?;
        if !had_users {
            for ddl in [
                format!(
                    "CREATE TABLE IF NOT EXISTS {t}_users (\
                       session_id TEXT COLLATE \"C\" PRIMARY KEY \
                         REFERENCES {t} (id) ON DELETE CASCADE, \
                       user_hash BYTEA NOT NULL)"
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

    async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        crate::common::begin_detached(pool, None).await
    }

    fn param(s: &str) -> &str {
        s
    }

    fn text(
        row: &PgRow,
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
               SELECT session_id FROM {t}_users WHERE user_hash = $1) \
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
               SELECT id FROM {t} WHERE expires_at <= $1 \
               ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
             RETURNING id"
        ))
        .bind(now)
        .bind(i64::from(batch))
        .fetch_all(&self.inner.pool)
        .await?;
        Ok(ids.into_iter().map(StoreKey::from_stored).collect())
    }
}
