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
//! Each store keeps three tables: `<table>` with one row per session (`id`,
//! `expires_at` in milliseconds since the epoch, indexed), `<table>_values` with one
//! row per session key (`session_id`, `name`, `data` as raw bytes), and
//! `<table>_users`, the user index (below). The last two are deleted with their
//! session by foreign keys `ON DELETE CASCADE`. A patch touches only the rows of the
//! keys it names, so two requests writing different keys of one session both keep
//! their writes; a load is one `LEFT JOIN` query. `migrate()` creates the tables
//! (`connect` runs it) and is safe to run from several processes at once.
//!
//! # Log out everywhere: the user index
//!
//! A third table, `<table>_users`, maps each session to its user for
//! [`Sessions::destroy_user`](sessio::Sessions::destroy_user): one row per session
//! (`session_id` primary key, `user_hash` indexed), deleted with its session by a
//! foreign key `ON DELETE CASCADE`. So the index never outlives what it points to:
//! `destroy`, `destroy_all`, `regenerate`, the sweeper and `purge_expired` all clean
//! it by deleting sessions, with no extra statement. A session has one user:
//! indexing it under another user moves its row.
//!
//! - `user_hash` is the SHA-256 of the user id (32 bytes), not the id: any user id,
//!   however long, fits every database's index key limit (MySQL's 3072 bytes,
//!   PostgreSQL's ~2700), and the table holds no user ids in clear. To look one up by
//!   hand: `sha256(convert_to('alice', 'UTF8'))` (PostgreSQL 11+),
//!   `UNHEX(SHA2('alice', 256))` (MySQL/MariaDB).
//! - `index_user` is one idempotent upsert that indexes the session only while it
//!   is live (a session that ended meanwhile is not indexed).
//! - `destroy_user` deletes the user's sessions in one statement (PostgreSQL and
//!   SQLite, `DELETE … RETURNING`) or one transaction (MySQL, `SELECT … FOR UPDATE`
//!   then `DELETE`) and reports those that were live. On PostgreSQL each deleted
//!   session fires the [`track_changes`](PostgresStore::track_changes) trigger, as
//!   `destroy` does.
//! - **Upgrading**: a schema created by an earlier version has no `<table>_users`.
//!   `migrate()` (run by `connect`) creates it, and in the same run indexes every
//!   live session that already holds a user (`Session::set_user`), so "log out
//!   everywhere" also reaches sessions that predate the upgrade. This runs once, in
//!   pages of 500, holding the migration lock (100 000 sessions took about 5 s in a
//!   test). On a store built with `from_pool`, call `migrate()` once after
//!   upgrading: until then `index_user` fails (`Unavailable`, the table is missing).
//!   On MySQL, whose DDL is not transactional, an upgrade interrupted between
//!   creating the table and filling it leaves older sessions unindexed until their
//!   next refresh.
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
//! is then unknown (as with any database client). Every call runs under
//! [`SqlStoreOptions::call_timeout`] (default 10 s), so a server that stops answering
//! without closing its connections also yields `Unavailable` in bounded time.
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
