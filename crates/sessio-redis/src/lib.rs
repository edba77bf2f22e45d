//! A Redis store for [`sessio`] sessions, on the [`fred`] client: one Redis,
//! Redis Cluster, or a primary found through Sentinel. Use it when several app
//! servers must share sessions.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use sessio::Sessions;
//! use sessio_redis::RedisStore;
//!
//! let store = RedisStore::builder("redis://127.0.0.1:6379/0")?
//!     .key_prefix("myapp:")
//!     .command_timeout(Duration::from_secs(1))
//!     .connect()
//!     .await?;
//! let sessions = Sessions::builder()
//!     .idle_timeout(Duration::from_secs(30 * 60))
//!     .store(store)
//!     .build()?;
//! # let _ = sessions; Ok(()) }
//! ```
//!
//! [`RedisStore::builder`] lists the URL forms (`redis://`, `rediss://`,
//! `redis-cluster://h:p,h:p`, `redis-sentinel://h:p,h:p/service/db`).
//!
//! # Data layout
//!
//! Each session is one Redis hash at `{prefix}{<store key>}` (prefix `sessio:` by
//! default): one field per session key holding the value's bytes as they are, plus a
//! marker field `"\0"` (session keys never hold NUL) that keeps a session with no keys
//! alive and names the layout version. The braces make the store key the hash tag, so
//! in a cluster everything about one session lives on one slot, and sessions spread
//! over all slots. The session's deadline is the key's Redis TTL.
//!
//! Each user with sessions (see [`Session::set_user`](sessio::Session::set_user)) has
//! one sorted set at `{prefix}user:<user>` (see [`RedisStore::user_key`]): the store
//! keys of the user's sessions, each scored by its deadline in milliseconds since the
//! epoch on Redis's clock (`inf` for a session without one). The user is
//! percent-encoded, so the key never holds `{` or `}`: no user name, however odd, can
//! name a session key or pick a cluster hash tag. The set expires a minute after its
//! latest deadline (no TTL while a session has none), so it goes away with the user's
//! last session.
//!
//! # Round trips and atomicity
//!
//! - **load**: one round trip: a read-only Lua script returns `PTTL` and `HGETALL`
//!   together, so values and deadline are one consistent snapshot.
//! - **commit**: one round trip: a Lua script checks that the session exists (unless
//!   the patch may create it), clears it if asked, applies every set, remove and
//!   increment in order, then sets the TTL (`PEXPIRE`, or `PERSIST` for no deadline).
//!   Redis runs a script without interleaving other commands, so a commit is atomic
//!   against every other client, and it touches only the fields it names: two requests
//!   writing different keys of one session both keep their writes, and concurrent
//!   increments are exact. Increments follow [`sessio::store::apply_changes`] to the
//!   byte (Rust's `i64` parsing, overflow detection); the script computes them all
//!   before writing anything, so a patch whose increment fails changes nothing.
//! - The scripts are loaded on every primary when the store connects, then sent by SHA
//!   (`EVALSHA`); a node that has lost them (a restart, a failover, `SCRIPT FLUSH`)
//!   gets the script body once (`EVAL`), in one extra round trip.
//! - **destroy**: one `DEL`.
//! - **index_user** (after a commit that set the user, created the session or moved
//!   its deadline): one round trip, a script on the user's set alone: drop the members
//!   whose deadline passed (a minute's grace covers the latency between the commit and
//!   this call), add the session or raise its score (a score never goes down, so two
//!   requests racing cannot leave a live session scored as dead), set the set's TTL.
//!   Members without a deadline never age out; once a user has more than 32 of them,
//!   each call also checks those for existence (`EXISTS`, pipelined) and drops the
//!   sessions that are gone, so logouts do not pile up.
//! - **destroy_user** ("log out everywhere"): three round trips: `ZRANGE` the set, one
//!   pipelined `DEL` per session, then `ZREM` exactly the members read. Not atomic (the
//!   set and the sessions live on different cluster slots), and it does not need to be:
//!   if the deletes fail, the set is untouched and a retry finds every session; a
//!   session indexed meanwhile (a login during the logout) stays indexed. Only
//!   sessions that were live count (`DEL` answers 0 for an expired key). A session
//!   whose user is later changed stays in its first user's set too, until it ends.
//! - The TTL is sent relative (milliseconds left, rounded up) and read back relative
//!   (`PTTL`), so clock skew between app servers and Redis does not move deadlines;
//!   network latency does, by a few milliseconds.
//!
//! # Expiry and `on_destroy`
//!
//! Redis removes expired sessions itself: an expired key is never returned by a read,
//! a `SCAN`, or an `EXISTS`, whether or not Redis has reclaimed its memory yet. So
//! [`Store::load`](sessio::store::Store::load) never serves an expired session and
//! a commit without `create` never resurrects one.
//!
//! This store does **not** report expiry to `on_destroy` callbacks
//! ([`set_expiry_listener`](sessio::store::Store::set_expiry_listener) returns
//! `false`): Redis cannot report it reliably. Keyspace notifications (`expired`
//! events) are off unless the server's `notify-keyspace-events` is set (managed
//! services often forbid it); they are fire-and-forget Pub/Sub, so events published
//! while no subscriber is connected (a reconnect, a deploy) are lost for good; in a
//! cluster each node publishes only to clients subscribed on that node; and an event
//! fires when Redis gets round to deleting the key (on access or by its sampling
//! sweep), which can be long after the deadline. Callbacks that must see every end of
//! a session should keep their own index with deadlines. Explicit destroys reach
//! `on_destroy` as usual (sessio fires those itself).
//!
//! # `count`, `destroy_all`, `keys`
//!
//! They walk the keyspace with `SCAN MATCH {prefix}{*}` (never `KEYS`), on every
//! primary node of a cluster in turn, so they are O(all keys in the database) and meant
//! for administration, not for requests. Because `SCAN` is incremental:
//!
//! - `count` is exact on a quiet store; sessions created or expiring during the walk
//!   may or may not be counted.
//! - `destroy_all` deletes with one pipelined batch of `DEL`s per `SCAN` step; it is
//!   not atomic, and a session created during the walk may survive it. It walks
//!   `{prefix}*` and deletes the user sets too.
//! - `keys` cursors are `node.scan-cursor[.position]`, opaque to callers and free of
//!   session keys. A page that ends inside a `SCAN` step re-reads that step on the
//!   next call and lists only the keys after the last one listed (in a fixed hash
//!   order), so incremental rehashing and deletions between pages neither repeat nor
//!   drop keys there. What `SCAN` itself allows remains: a key may be listed twice if
//!   the keyspace table is resized (or a cluster resharded) while paging.
//!
//! # When Redis is down
//!
//! Every call is bounded by the command timeout (default 2 s, see
//! [`RedisStoreBuilder::command_timeout`]) and then fails with
//! [`StoreErrorKind::Unavailable`](sessio::StoreErrorKind::Unavailable), which the
//! axum adapter turns into `503`. Nothing hangs and nothing panics. The store
//! reconnects in the background (100 ms, then backing off to 2 s between attempts,
//! forever) and serves again as soon as Redis is back, without being rebuilt. A
//! connection whose peer vanished without a reset (a network partition, a host that
//! went away) is closed by the kernel and replaced: data unacknowledged for twice the
//! command timeout (`TCP_USER_TIMEOUT`, Linux) or unanswered keepalive probes on an
//! idle connection. A Redis process that hangs while its host stays up fails each
//! call after the command timeout and serves again on the same connection when it
//! resumes.
//!
//! A call that timed out, or whose connection dropped after the command was sent,
//! may still have been applied by Redis (the reply was lost, not the command): a
//! commit that reports `Unavailable` is *unknown*, not *undone*. The store never
//! re-sends such a command by itself, so an increment is never counted twice.
//!
//! # Durability
//!
//! A commit is acknowledged once the primary has run it. What survives a crash is
//! what Redis's persistence keeps: with `appendonly yes` and `appendfsync always`
//! every acknowledged commit survives a restart (this crate's fault test checks it);
//! with the default `everysec`, up to about a second of commits can be lost; with no
//! persistence, a restart loses every session (users log in again, nothing worse).
//! Replication is asynchronous, so a failover can lose the last commits acknowledged
//! by the old primary.
//!
//! # Features
//!
//! | feature | enables |
//! | --- | --- |
//! | `tls` | `rediss://` URLs, with rustls (ring) and the system's root certificates |
//!
//! The crate re-exports [`fred`], so you can build a [`fred::types::config::Config`]
//! by hand ([`RedisStore::from_config`]) or run your own commands on
//! [`RedisStore::pool`] without matching versions.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod error;
mod scan;
mod store;
#[cfg(feature = "tracking")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracking")))]
mod tracking;
mod url;
mod users;

pub use fred;

#[cfg(feature = "tracking")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracking")))]
pub use crate::tracking::ChangeTracker;
pub use crate::{
    builder::{
        RedisStoreBuilder, DEFAULT_COMMAND_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_POOL_SIZE,
        DEFAULT_PREFIX,
    },
    error::Error,
    store::RedisStore,
};
