//! [`SqlStoreOptions`] and [`TableName`]: settings shared by every SQL store.

use std::{fmt, time::Duration};

/// A validated table name: an ASCII letter or `_`, then up to 47 letters, digits or
/// `_`.
///
/// Table names are spliced into SQL (they cannot be bound as parameters), so only
/// plain identifiers are accepted; that rules out SQL injection through the name.
/// The store also creates `<name>_values`, `<name>_users` and indexes or constraints
/// such as `<name>_expires_at`, `<name>_users_session`, which is why the limit is 48
/// characters (PostgreSQL allows 63 per identifier, MySQL 64).
///
/// ```
/// use sessio_sql::TableName;
///
/// assert!(TableName::new("app_sessions").is_ok());
/// assert!(TableName::new("sessions; DROP TABLE users").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TableName(String);

/// The error of [`TableName::new`].
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "invalid table name {0:?}: use 1 to 48 ASCII letters, digits or `_`, not starting with a digit"
)]
pub struct InvalidTableName(String);

impl TableName {
    /// The longest accepted name.
    pub const MAX_LEN: usize = 48;

    /// Validates `name`.
    pub fn new(name: &str) -> Result<Self, InvalidTableName> {
        let mut chars = name.chars();
        let valid = name.len() <= Self::MAX_LEN
            && chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(InvalidTableName(name.to_owned()))
        }
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TableName {
    /// `sessio_sessions`.
    fn default() -> Self {
        Self("sessio_sessions".to_owned())
    }
}

impl fmt::Debug for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Settings for the SQL stores.
///
/// The pool settings (`max_connections`, `acquire_timeout`, `test_before_acquire`)
/// apply when the store builds its own pool (`connect_with`); with `from_pool` the
/// pool is yours and only the table, the sweep batch and the sweep interval apply
/// (and the sweeper is started only when you call `spawn_sweeper`).
///
/// ```
/// use std::time::Duration;
/// use sessio_sql::{SqlStoreOptions, TableName};
///
/// let options = SqlStoreOptions::new()
///     .table(TableName::new("web_sessions").unwrap())
///     .acquire_timeout(Duration::from_secs(1))
///     .sweep_interval(Some(Duration::from_secs(30)))
///     .sweep_batch(200);
/// assert_eq!(options.table_name().as_str(), "web_sessions");
/// ```
#[derive(Debug, Clone)]
pub struct SqlStoreOptions {
    pub(crate) table: TableName,
    pub(crate) max_connections: u32,
    pub(crate) acquire_timeout: Duration,
    pub(crate) call_timeout: Option<Duration>,
    pub(crate) test_before_acquire: bool,
    pub(crate) migrate: bool,
    pub(crate) sweep_interval: Option<Duration>,
    pub(crate) sweep_batch: u32,
}

impl Default for SqlStoreOptions {
    fn default() -> Self {
        Self {
            table: TableName::default(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(3),
            call_timeout: Some(Duration::from_secs(10)),
            test_before_acquire: false,
            migrate: true,
            sweep_interval: Some(Duration::from_secs(60)),
            sweep_batch: 500,
        }
    }
}

impl SqlStoreOptions {
    /// The defaults: table `sessio_sessions`, 10 connections, 3 s acquire timeout,
    /// 10 s call timeout, no ping before use, `migrate()` on connect, a sweep every 60 s in
    /// batches of 500.
    pub fn new() -> Self {
        Self::default()
    }

    /// The sessions table (default `sessio_sessions`); values go to `<table>_values`,
    /// the user index to `<table>_users`.
    #[must_use]
    pub fn table(mut self, table: TableName) -> Self {
        self.table = table;
        self
    }

    /// The configured table name.
    pub fn table_name(&self) -> &TableName {
        &self.table
    }

    /// Most connections the pool opens (default 10).
    #[must_use]
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// How long a call waits for a connection before failing with
    /// [`StoreErrorKind::Unavailable`](sessio::store::StoreErrorKind::Unavailable)
    /// (default 3 s). Keep it short: while the database is down, every request waits
    /// this long before it gets its 503.
    #[must_use]
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// The longest one store call (a load, a commit with its transaction, a count, …)
    /// may take, connection included, before it fails with
    /// [`StoreErrorKind::Unavailable`](sessio::store::StoreErrorKind::Unavailable)
    /// (default 10 s; `None`: no limit). The acquire timeout bounds waiting for a
    /// connection; this bounds a server that accepted the connection and then stopped
    /// answering (a hung host, a network partition), which TCP alone would wait out
    /// for minutes. A commit cut off by it may or may not have been applied. Applies
    /// with `from_pool` too.
    #[must_use]
    pub fn call_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Whether the pool pings a connection before handing it out (default `false`).
    ///
    /// Not needed for recovery: when a connection the server dropped (restart,
    /// `pg_terminate_backend`, idle timeout) fails a call before anything was applied
    /// (a load, a count, a listing, a destroy, the `BEGIN` of a commit), the store
    /// discards it and retries on another connection, so the first call after an
    /// outage works. A commit whose connection dies *after* `BEGIN` fails with
    /// `Unavailable` and is not retried (it may or may not have been applied).
    /// `true` adds a round trip to every call (about 0.1 ms on loopback, see
    /// `docs/decisions.md`) and narrows that window a little further.
    #[must_use]
    pub fn test_before_acquire(mut self, test: bool) -> Self {
        self.test_before_acquire = test;
        self
    }

    /// Whether `connect_with` runs `migrate()` (default `true`).
    #[must_use]
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// How often `connect_with` sweeps expired sessions (default every 60 s; `None`:
    /// no sweeper, expired rows stay until you call `purge_expired`). Expired rows are
    /// never served either way.
    #[must_use]
    pub fn sweep_interval(mut self, interval: Option<Duration>) -> Self {
        self.sweep_interval = interval;
        self
    }

    /// How many expired sessions one sweep statement deletes (default 500). Each batch
    /// is its own short transaction, so the sweeper never holds locks for long.
    #[must_use]
    pub fn sweep_batch(mut self, batch: u32) -> Self {
        self.sweep_batch = batch.max(1);
        self
    }
}
