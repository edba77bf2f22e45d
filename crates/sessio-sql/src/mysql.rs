//! [`MySqlStore`].

use std::{str::FromStr, sync::Arc};

use sessio::store::{StoreError, StoreKey, StoreOp};
use sqlx::{
    mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions, MySqlRow},
    Executor as _, MySql, Row as _, Transaction,
};

use crate::{
    common::{sql_error, Dialect, NotUtf8},
    imp::{sql_store, Inner},
    SqlStoreOptions,
};

const NAME: &str = "mysql";

/// Sessions in MySQL (8.0 or later) or MariaDB (10.6 or later), InnoDB tables.
///
/// Schema (created by [`migrate`](Self::migrate)): `<table>(id VARBINARY(255) PRIMARY
/// KEY, expires_at BIGINT, INDEX (expires_at))` and `<table>_values(session_id,
/// name VARBINARY(2048), data LONGBLOB)`, one row per session key, and the user index
/// `<table>_users(session_id VARBINARY(255) PRIMARY KEY, user_hash BINARY(32),
/// INDEX (user_hash))`, both deleted with their session (`ON DELETE CASCADE`). Binary columns compare bytes exactly (the default
/// text collations would treat `"A"` and `"a"` as one key). Keys longer than 2048
/// bytes are refused by the server (strict mode) with an `Unavailable` error.
///
/// - **Atomicity**: a commit is one transaction whose first statement updates (and so
///   row-locks) the session row: commits on one session run one after another,
///   increments are exact, a failed increment rolls the whole patch back. The pool
///   built by [`connect_with`](Self::connect_with) runs its connections at
///   `READ COMMITTED`, which avoids InnoDB gap locks between unrelated sessions; on
///   your own pool (`REPEATABLE READ` by default) InnoDB may report a deadlock under
///   heavy concurrent writes, which surfaces as `Unavailable`.
/// - **Durability**: what InnoDB gives a committed transaction
///   (`innodb_flush_log_at_trx_commit = 1`: on disk when `commit` returns).
/// - **Expiry**: as for [`PostgresStore`](crate::PostgresStore): millisecond deadlines
///   by the application's clock, expired rows never served, swept in small batches
///   with `FOR UPDATE SKIP LOCKED`.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use sessio::Sessions;
/// use sessio_sql::MySqlStore;
///
/// let store = MySqlStore::connect("mysql://root@127.0.0.1:3306/app").await?;
/// let sessions = Sessions::builder().store(store).build()?;
/// # let _ = sessions; Ok(()) }
/// ```
pub struct MySqlStore {
    inner: Arc<Inner<MySql>>,
    sweeper: Option<Arc<crate::SweeperHandle>>,
}

sql_store!(MySqlStore, MySql, "mysql");

impl MySqlStore {
    /// Connects with the default [`SqlStoreOptions`]: creates the schema if needed and
    /// starts the sweeper.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, SqlStoreOptions::default()).await
    }

    /// Connects to `url` (`mysql://user:pass@host:port/db`; the database must exist)
    /// with `options`. Runs [`migrate`](Self::migrate) unless disabled and starts the
    /// sweeper if `options` has an interval (it stops when the last clone of the store
    /// is dropped).
    pub async fn connect_with(url: &str, options: SqlStoreOptions) -> Result<Self, StoreError> {
        let connect = MySqlConnectOptions::from_str(url)
            .map_err(|e| StoreError::unavailable(NAME, StoreOp::Connect, e))?;
        let pool = MySqlPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .test_before_acquire(options.test_before_acquire)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                        .await
                        .map(drop)
                })
            })
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
    pub fn from_pool(pool: MySqlPool, options: &SqlStoreOptions) -> Self {
        Self::from_parts(pool, options, Dialect::MySql)
    }

    /// Creates the tables if they do not exist. Safe to run from many processes at
    /// once: it holds a named lock (`GET_LOCK`, keyed by database and table, waiting
    /// up to 30 s) while it runs.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let err = |e| sql_error(NAME, StoreOp::Connect, e);
        let t = self.inner.table.as_str();
        let mut conn = self.inner.pool.acquire().await.map_err(err)?;
        let lock_name = "SHA1(CONCAT('sessio:', COALESCE(DATABASE(), ''), '.', ?))";
        let locked: Option<i64> = sqlx::query_scalar(&format!("SELECT GET_LOCK({lock_name}, 30)"))
            .bind(t)
            .fetch_one(&mut *conn)
            .await
            .map_err(err)?;
        if locked != Some(1) {
            return Err(StoreError::unavailable(
                NAME,
                StoreOp::Connect,
                "timed out waiting for the migration lock held by another process",
            ));
        }
        let mut result = Ok(());
        for ddl in [
            format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                   id VARBINARY(255) NOT NULL PRIMARY KEY, \
                   expires_at BIGINT NULL, \
                   INDEX {t}_expires_at (expires_at)) ENGINE=InnoDB"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {t}_values (\
                   session_id VARBINARY(255) NOT NULL, \
                   name VARBINARY(2048) NOT NULL, \
                   data LONGBLOB NOT NULL, \
                   PRIMARY KEY (session_id, name), \
                   CONSTRAINT {t}_values_session FOREIGN KEY (session_id) \
                     REFERENCES {t} (id) ON DELETE CASCADE) ENGINE=InnoDB"
            ),
        ] {
            if let Err(e) = sqlx::query(&ddl).execute(&mut *conn).await {
                result = Err(err(e));
                break;
            }
        }
        if result.is_ok() {
            result = self.migrate_users(&mut conn).await;
        }
        let released = sqlx::query(&format!("DO RELEASE_LOCK({lock_name})"))
            .bind(t)
            .execute(&mut *conn)
            .await;
        if let Err(e) = released {
            // The lock dies with the connection; make sure this one is not reused.
            tracing::warn!(error = %e, "releasing the migration lock failed");
            conn.detach();
        }
        result
    }

    /// Added after the first release: a database made by an earlier version gets its
    /// user index here, filled from the users its sessions hold. MySQL cannot run DDL
    /// in a transaction: if this is interrupted after the `CREATE`, the next run
    /// finds the table and does not fill it again (sessions of that moment are then
    /// indexed on their next refresh).
    async fn migrate_users(&self, conn: &mut sqlx::MySqlConnection) -> Result<(), StoreError> {
        let err = |e| sql_error(NAME, StoreOp::Connect, e);
        let t = self.inner.table.as_str();
        let had_users: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND LOWER(table_name) = LOWER(?)",
        )
        .bind(format!("{t}_users"))
        .fetch_one(&mut *conn)
        .await
        .map_err(err)?;
        if had_users > 0 {
            return Ok(());
        }
        // A fixed-size hash, not the user id: any id fits InnoDB's key limit.
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {t}_users (\
               session_id VARBINARY(255) NOT NULL PRIMARY KEY, \
               user_hash BINARY(32) NOT NULL, \
               INDEX {t}_users_hash (user_hash), \
               CONSTRAINT {t}_users_session FOREIGN KEY (session_id) \
                 REFERENCES {t} (id) ON DELETE CASCADE) ENGINE=InnoDB"
        ))
        .execute(&mut *conn)
        .await
        .map_err(err)?;
        let n = self.backfill_users(conn).await?;
        if n > 0 {
            tracing::info!(store = NAME, indexed = n, "created the user index");
        }
        Ok(())
    }

    async fn begin(pool: &MySqlPool) -> Result<Transaction<'static, MySql>, sqlx::Error> {
        crate::common::begin_detached(pool, None).await
    }

    fn param(s: &str) -> &[u8] {
        s.as_bytes()
    }

    fn text(
        row: &MySqlRow,
        index: usize,
        column: &'static str,
        op: StoreOp,
    ) -> Result<Option<String>, StoreError> {
        let raw: Option<Vec<u8>> = row.try_get(index).map_err(|e| sql_error(NAME, op, e))?;
        raw.map(|raw| {
            String::from_utf8(raw)
                .map_err(|source| StoreError::corrupt(NAME, op, NotUtf8 { column, source }))
        })
        .transpose()
    }

    /// Deletes the sessions indexed under `user_hash` (values and index rows
    /// cascade); returns each with its deadline. MySQL has no `DELETE … RETURNING`:
    /// one transaction locks the rows it reads, then deletes exactly those.
    async fn delete_user_sessions(
        &self,
        user_hash: &[u8],
    ) -> Result<Vec<(StoreKey, Option<i64>)>, StoreError> {
        let err = |e| sql_error(NAME, StoreOp::DestroyUser, e);
        let t = self.inner.table.as_str();
        let mut tx = self.begin_retrying(StoreOp::DestroyUser).await?;
        let rows: Vec<(Vec<u8>, Option<i64>)> = sqlx::query_as(&format!(
            "SELECT s.id, s.expires_at FROM {t} s \
             JOIN {t}_users u ON u.session_id = s.id \
             WHERE u.user_hash = ? FOR UPDATE"
        ))
        .bind(user_hash)
        .fetch_all(&mut *tx)
        .await
        .map_err(err)?;
        // A user has a handful of sessions; chunks bound the statement anyway.
        for chunk in rows.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let delete = format!("DELETE FROM {t} WHERE id IN ({marks})");
            let mut query = sqlx::query(&delete);
            for (id, _) in chunk {
                query = query.bind(&id[..]);
            }
            query.execute(&mut *tx).await.map_err(err)?;
        }
        tx.commit().await.map_err(err)?;
        // Keys are written as UTF-8; a row that is not cannot be named (as in the
        // sweeper).
        Ok(rows
            .into_iter()
            .filter_map(|(id, expires_at)| Some((String::from_utf8(id).ok()?, expires_at)))
            .map(|(id, expires_at)| (StoreKey::from_stored(id), expires_at))
            .collect())
    }

    async fn purge_batch(&self, now: i64, batch: u32) -> Result<Vec<StoreKey>, sqlx::Error> {
        let t = self.inner.table.as_str();
        let mut tx = Self::begin(&self.inner.pool).await?;
        // Lock the batch (skipping sessions being committed right now), then delete
        // exactly those rows: the listener hears of each deleted session once.
        let ids: Vec<Vec<u8>> = sqlx::query_scalar(&format!(
            "SELECT id FROM {t} WHERE expires_at <= ? \
             ORDER BY expires_at LIMIT ? FOR UPDATE SKIP LOCKED"
        ))
        .bind(now)
        .bind(i64::from(batch))
        .fetch_all(&mut *tx)
        .await?;
        if ids.is_empty() {
            tx.rollback().await?;
            return Ok(Vec::new());
        }
        let marks = vec!["?"; ids.len()].join(", ");
        let delete = format!("DELETE FROM {t} WHERE id IN ({marks})");
        let mut query = sqlx::query(&delete);
        for id in &ids {
            query = query.bind(&id[..]);
        }
        query.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(ids
            .into_iter()
            .filter_map(|id| String::from_utf8(id).ok())
            .map(StoreKey::from_stored)
            .collect())
    }
}
