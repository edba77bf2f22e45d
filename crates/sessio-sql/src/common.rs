//! What the three stores share: SQL text, time encoding, error mapping.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sessio::store::{StoreError, StoreOp};

use crate::options::TableName;

/// Deadlines are stored as milliseconds since the Unix epoch (`BIGINT`), compared
/// with the application's clock: one encoding for three databases, no time zones.
pub(crate) fn to_millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |m| -m),
    }
}

pub(crate) fn from_millis(ms: i64) -> Option<SystemTime> {
    let d = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        UNIX_EPOCH.checked_add(d)
    } else {
        UNIX_EPOCH.checked_sub(d)
    }
}

pub(crate) fn now_millis() -> i64 {
    to_millis(SystemTime::now())
}

/// Maps a driver error: a column that does not decode is corrupt data, everything
/// else (I/O, pool timeout, a server error) is the backend being unavailable.
pub(crate) fn sql_error(store: &'static str, op: StoreOp, e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            StoreError::corrupt(store, op, e)
        }
        _ => {
            tracing::debug!(store, %op, error = %e, "sql store call failed");
            StoreError::unavailable(store, op, e)
        }
    }
}

/// Whether `e` says the connection is gone (closed socket, server shutting down or
/// killing the session) rather than anything about the statement.
pub(crate) fn is_connection_error(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) => true,
        // SQLSTATE class 08 (connection exception); PostgreSQL 57P01-57P03
        // (terminated by an administrator, crash shutdown, cannot connect now);
        // MariaDB 70100 (connection killed).
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "70100")
        }),
        _ => false,
    }
}

/// Starts a transaction on a pooled connection with `statement` (`None`: the
/// driver's own `BEGIN`) in a task of its own, so that dropping the caller's future
/// (a client that hung up, a call timeout) cannot cut it short.
///
/// sqlx 0.8's `begin` is not cancel-safe: it sends `BEGIN` and counts the transaction
/// only once the answer is in, so a future dropped in between returns the connection
/// to the pool inside a transaction that nothing will end. Every later call on it then
/// runs in that transaction, and on SQLite its write lock starves every other
/// connection until the pool times out (see docs/decisions.md). Once `begin` has
/// returned, the transaction's own drop guard rolls it back, so the task only has to
/// cover `begin` itself.
pub(crate) async fn begin_detached<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
    statement: Option<&'static str>,
) -> Result<sqlx::Transaction<'static, DB>, sqlx::Error> {
    let pool = pool.clone();
    tokio::spawn(async move {
        match statement {
            Some(statement) => pool.begin_with(statement).await,
            None => pool.begin().await,
        }
    })
    .await
    .map_err(|_| sqlx::Error::WorkerCrashed)?
}

/// Runs `attempt` again, up to `budget` times, while it fails because its pooled
/// connection was dead. Only for calls that changed nothing when they failed that
/// way: reads, `BEGIN`, single-statement deletes. Each failed attempt drops its
/// connection from the pool, so the retries reach a fresh one.
pub(crate) async fn with_retry<T, F, Fut>(
    store: &'static str,
    budget: u32,
    mut attempt: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut left = budget;
    loop {
        match attempt().await {
            Err(e) if left > 0 && lost_connection(&e) => {
                left -= 1;
                tracing::debug!(store, error = %e, "retrying on another connection");
            }
            result => return result,
        }
    }
}

/// The error of a call that outlived [`SqlStoreOptions::call_timeout`](crate::SqlStoreOptions::call_timeout).
#[derive(Debug, thiserror::Error)]
#[error("no answer from the database within {0:?}")]
pub(crate) struct CallTimedOut(std::time::Duration);

/// Runs `call`, failing with `Unavailable` once `limit` has passed (dropping the
/// call's future, which returns or discards its connection).
pub(crate) async fn with_deadline<T>(
    store: &'static str,
    op: StoreOp,
    limit: Option<std::time::Duration>,
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let Some(limit) = limit else {
        return call.await;
    };
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result,
        Err(_) => {
            tracing::debug!(store, %op, ?limit, "sql store call timed out");
            Err(StoreError::unavailable(store, op, CallTimedOut(limit)))
        }
    }
}

fn lost_connection(e: &StoreError) -> bool {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<sqlx::Error>())
        .is_some_and(is_connection_error)
}

#[cfg(feature = "mysql")]
/// A column that decoded as bytes but is not the UTF-8 the store wrote.
#[derive(Debug, thiserror::Error)]
#[error("column `{column}` holds bytes that are not UTF-8")]
pub(crate) struct NotUtf8 {
    pub(crate) column: &'static str,
    #[source]
    pub(crate) source: std::string::FromUtf8Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    #[cfg(feature = "postgres")]
    Postgres,
    #[cfg(feature = "mysql")]
    MySql,
    #[cfg(feature = "sqlite")]
    Sqlite,
}

/// Every statement a store runs, built once from the table name.
#[derive(Debug)]
pub(crate) struct Sql {
    pub(crate) dialect: Dialect,
    pub(crate) load: String,
    pub(crate) touch: String,
    pub(crate) delete_session: String,
    pub(crate) insert_session: String,
    pub(crate) clear_values: String,
    pub(crate) upsert_value: String,
    pub(crate) delete_value: String,
    pub(crate) select_value: String,
    pub(crate) destroy: String,
    pub(crate) destroy_live: String,
    pub(crate) destroy_rest: String,
    pub(crate) count: String,
    pub(crate) keys: String,
    pub(crate) index_user: String,
    pub(crate) backfill_page: String,
}

impl Sql {
    pub(crate) fn new(dialect: Dialect, table: &TableName) -> Self {
        let t = table.as_str();
        let p = |n: usize| placeholder(dialect, n);
        let live = |col: &str, n: usize| format!("({col} IS NULL OR {col} > {})", p(n));
        let upsert_tail = match dialect {
            #[cfg(feature = "mysql")]
            Dialect::MySql => "ON DUPLICATE KEY UPDATE data = VALUES(data)",
            #[allow(unreachable_patterns)]
            _ => "ON CONFLICT (session_id, name) DO UPDATE SET data = excluded.data",
        };
        let index_tail = users_upsert_tail(dialect, table);
        let lock_value = match dialect {
            #[cfg(feature = "postgres")]
            Dialect::Postgres => " FOR UPDATE",
            #[allow(unreachable_patterns)]
            _ => "",
        };
        Self {
            dialect,
            load: format!(
                "SELECT s.expires_at, v.name, v.data FROM {t} s \
                 LEFT JOIN {t}_values v ON v.session_id = s.id \
                 WHERE s.id = {} AND {}",
                p(1),
                live("s.expires_at", 2)
            ),
            touch: format!(
                "UPDATE {t} SET expires_at = {} WHERE id = {} AND {}",
                p(1),
                p(2),
                live("expires_at", 3)
            ),
            delete_session: format!("DELETE FROM {t} WHERE id = {}", p(1)),
            insert_session: format!(
                "INSERT INTO {t} (id, expires_at) VALUES ({}, {})",
                p(1),
                p(2)
            ),
            clear_values: format!("DELETE FROM {t}_values WHERE session_id = {}", p(1)),
            upsert_value: format!(
                "INSERT INTO {t}_values (session_id, name, data) VALUES ({}, {}, {}) {upsert_tail}",
                p(1),
                p(2),
                p(3)
            ),
            delete_value: format!(
                "DELETE FROM {t}_values WHERE session_id = {} AND name = {}",
                p(1),
                p(2)
            ),
            select_value: format!(
                "SELECT data FROM {t}_values WHERE session_id = {} AND name = {}{lock_value}",
                p(1),
                p(2)
            ),
            destroy: format!(
                "DELETE FROM {t} WHERE id = {} AND {}",
                p(1),
                live("expires_at", 2)
            ),
            destroy_live: format!("DELETE FROM {t} WHERE {}", live("expires_at", 1)),
            destroy_rest: format!("DELETE FROM {t}"),
            count: format!("SELECT COUNT(*) FROM {t} WHERE {}", live("expires_at", 1)),
            keys: format!(
                "SELECT id FROM {t} WHERE id > {} AND {} ORDER BY id LIMIT {}",
                p(1),
                live("expires_at", 2),
                p(3)
            ),
            // Indexes only a session that is still there and live: one that ended
            // since its commit has nothing left to log out.
            index_user: format!(
                "INSERT INTO {t}_users (session_id, user_hash) \
                 SELECT id, {} FROM {t} WHERE id = {} AND {} {index_tail}",
                p(1),
                p(2),
                live("expires_at", 3)
            ),
            backfill_page: format!(
                "SELECT v.session_id, v.data FROM {t}_values v \
                 JOIN {t} s ON s.id = v.session_id \
                 WHERE v.name = {} AND v.session_id > {} AND {} \
                 ORDER BY v.session_id LIMIT {}",
                p(1),
                p(2),
                live("s.expires_at", 3),
                p(4)
            ),
        }
    }

    /// A multi-row insert of `rows` index rows (for the backfill of a new index).
    pub(crate) fn insert_users(dialect: Dialect, table: &TableName, rows: usize) -> String {
        let t = table.as_str();
        let tail = users_upsert_tail(dialect, table);
        let marks: Vec<String> = (0..rows)
            .map(|i| {
                format!(
                    "({}, {})",
                    placeholder(dialect, 2 * i + 1),
                    placeholder(dialect, 2 * i + 2)
                )
            })
            .collect();
        format!(
            "INSERT INTO {t}_users (session_id, user_hash) VALUES {} {tail}",
            marks.join(", ")
        )
    }
}

/// Parameter `n` (from 1): `$n` for PostgreSQL, `?` (positional, in order) for the
/// others.
fn placeholder(dialect: Dialect, n: usize) -> String {
    match dialect {
        #[cfg(feature = "postgres")]
        Dialect::Postgres => format!("${n}"),
        #[allow(unreachable_patterns)]
        _ => {
            let _ = n;
            "?".to_owned()
        }
    }
}

/// A session has one user: indexing it under another moves its index row. Indexing
/// it again under the same user (every refresh does) writes nothing: MySQL skips an
/// update to the same value by itself, the others are told to.
fn users_upsert_tail(dialect: Dialect, table: &TableName) -> String {
    match dialect {
        #[cfg(feature = "mysql")]
        Dialect::MySql => "ON DUPLICATE KEY UPDATE user_hash = VALUES(user_hash)".to_owned(),
        #[allow(unreachable_patterns)]
        _ => format!(
            "ON CONFLICT (session_id) DO UPDATE SET user_hash = excluded.user_hash \
             WHERE {t}_users.user_hash <> excluded.user_hash",
            t = table.as_str()
        ),
    }
}

/// The value under which the core keeps a session's user (`Session::set_user`), as
/// raw UTF-8: the backfill of a new user index reads it.
pub(crate) const USER_VALUE: &str = sessio::store::USER_KEY;

/// How a user id is kept in the index: its SHA-256. Fixed-size, so any user id fits
/// every database's index key limit (MySQL's 3072 bytes, PostgreSQL's ~2700), and
/// the index holds no user ids in clear.
pub(crate) fn user_hash(user: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(user).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_trip() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(to_millis(t), 1_700_000_000_123);
        assert_eq!(from_millis(1_700_000_000_123), Some(t));
        let before = UNIX_EPOCH - Duration::from_millis(5);
        assert_eq!(to_millis(before), -5);
        assert_eq!(from_millis(-5), Some(before));
    }
}
