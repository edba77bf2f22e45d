//! SQL session stores for [`sessio`]: PostgreSQL, MySQL/MariaDB and SQLite,
//! on [`sqlx`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use sessio::Sessions;
//! use sessio_sql::{PostgresStore, SqlStoreOptions, TableName};
//!
//! let options = SqlStoreOptions::new().table(TableName::new("web_sessions")?);
//! let store = PostgresStore::connect_with("postgres://postgres@127.0.0.1/app", options).await?;
//! let sessions = Sessions::builder().store(store).build()?;
//! # let _ = sessions; Ok(()) }
//! ```
//!
//! # Schema: a row per session key
//!
//! Each store keeps two tables: `<table>` with one row per session (`id`,
//! `expires_at` in milliseconds since the epoch, indexed) and `<table>_values` with
//! one row per session key (`session_id`, `name`, `data` as raw bytes), deleted with
//! their session by a foreign key `ON DELETE CASCADE`. A patch touches only the rows
//! of the keys it names, so two requests writing different keys of one session both
//! keep their writes; a load is one `LEFT JOIN` query. `migrate()` creates the
//! tables (`connect` runs it) and is safe to run from several processes at once.
//!
//! # Atomicity and concurrency
//!
//! A commit is one transaction that starts by updating the session row, which locks
//! it (SQLite: locks the database) until the transaction ends. Commits on one session
//! therefore run one after the other: `increment` reads the current value, adds in
//! Rust with overflow checks and writes it back, exactly. A failed increment
//! (`NotAnInteger`, `Overflow`) rolls back the whole patch. A commit that does not
//! create the session and finds it missing or expired writes nothing and returns
//! `Committed::Missing`. Two commits that both *create* the same brand-new id at once
//! (which random ids make practically impossible) fail one of them with a
//! unique-key error.
//!
//! # Expiry
//!
//! Deadlines use the application's clock, to the millisecond. Loads, counts, key
//! listings, updates and destroys ignore expired rows whether or not they were
//! deleted yet. A sweeper task (started by `connect`, or by `spawn_sweeper` on a
//! store built `from_pool`) deletes expired sessions in batches, one short statement
//! each, and reports each to the expiry listener (`on_destroy` with the expiry
//! reason). Run the sweeper in one process or in all: batches skip rows another
//! sweeper or a commit holds.
//!
//! # Failures
//!
//! Every driver error becomes a [`StoreError`](sessio::store::StoreError) that keeps
//! it as its source: a column that does not decode (or a key that is not UTF-8) is
//! `Corrupt`; anything else (connection lost, pool timeout, server error) is
//! `Unavailable`, which the adapters turn into a 503. The pool reconnects by itself,
//! and a call that meets a connection the server dropped before it changed anything
//! (reads, destroys, the `BEGIN` of a commit) is retried on another connection: once
//! the database is back, the next call works. A commit whose connection is lost
//! after `BEGIN` is not retried and fails with `Unavailable`; whether it was applied
//! is then unknown (as with any database client).
//!
//! # Features
//!
//! | feature    | default | store                         |
//! |------------|---------|-------------------------------|
//! | `postgres` | yes     | [`PostgresStore`]             |
//! | `mysql`    | yes     | [`MySqlStore`] (also MariaDB) |
//! | `sqlite`   | yes     | [`SqliteStore`] (bundled)     |

#![cfg_attr(docsrs, feature(doc_cfg))]

mod common;
mod imp;
mod options;
mod sweeper;

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod pg_tracking;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use sqlx;

#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub use self::mysql::MySqlStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use self::sqlite::SqliteStore;
pub use self::{
    options::{InvalidTableName, SqlStoreOptions, TableName},
    sweeper::SweeperHandle,
};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use self::{pg_tracking::ChangeListener, postgres::PostgresStore};
