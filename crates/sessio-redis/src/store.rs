//! [`RedisStore`] and its [`Store`] implementation.

use std::{
    fmt::{self, Write as _},
    future::Future,
    hash::BuildHasher,
    pin::Pin,
    sync::Arc,
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use fred::{
    clients::{Client, Pool},
    error::Error as FredError,
    interfaces::{ClientLike, KeysInterface},
    types::{config::Config, scripts::Script, ClusterHash, CustomCommand, Value},
};
use sessio::store::{
    Change, Committed, KeyPage, Patch, Record, Store, StoreError, StoreErrorKind, StoreFuture,
    StoreKey, StoreOp, Values,
};

use crate::{builder::RedisStoreBuilder, scan, users, Error};

pub(crate) const NAME: &str = "redis";

/// The field that marks every session hash (session keys never hold NUL).
const MARKER: &str = "\0";

/// A sessio [`Store`] on Redis: standalone, Redis Cluster or Sentinel-managed.
///
/// See the [crate docs](crate) for the data layout, what is atomic and what happens
/// when Redis is down. Cloning is cheap and shares the connections.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use sessio::Sessions;
/// use sessio_redis::RedisStore;
///
/// let store = RedisStore::connect("redis://127.0.0.1:6379/0").await?;
/// let sessions = Sessions::builder().store(store).build()?;
/// # let _ = sessions; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) pool: Pool,
    pub(crate) prefix: String,
    pub(crate) timeout: Duration,
    pub(crate) clustered: bool,
    commit: Script,
    load: Script,
    pub(crate) index_user: Script,
}

impl Inner {
    pub(crate) fn new(pool: Pool, prefix: String, timeout: Duration, clustered: bool) -> Self {
        Inner {
            pool,
            prefix,
            timeout,
            clustered,
            commit: Script::from_lua(include_str!("commit.lua")),
            load: Script::from_lua(include_str!("load.lua")),
            index_user: Script::from_lua(include_str!("index_user.lua")),
        }
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.prefix)
            .field("clustered", &self.inner.clustered)
            .field("pool_size", &self.inner.pool.size())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects with default options to the Redis named by `url`; see
    /// [`builder`](Self::builder) for the URL forms.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Self::builder(url)?.connect().await
    }

    /// Configures a store from a URL:
    ///
    /// | URL | deployment |
    /// | --- | --- |
    /// | `redis://[user:password@]host[:port][/db]` | one Redis (port 6379 by default) |
    /// | `rediss://…` | the same over TLS (feature `tls`) |
    /// | `redis-cluster://[user:password@]host:port,host:port,…` | Redis Cluster: any reachable nodes; the rest is discovered |
    /// | `redis-sentinel://[user:password@]host[:port],host[:port]/service[/db]` | a primary found through Sentinel (port 26379 by default) |
    ///
    /// `rediss-cluster://` and `rediss-sentinel://` use TLS. fred's own query forms
    /// (`?node=host:port`, `?sentinelServiceName=name`) are accepted too.
    ///
    /// ```
    /// use sessio_redis::RedisStore;
    ///
    /// assert!(RedisStore::builder("redis-cluster://10.0.0.1:7000,10.0.0.2:7000").is_ok());
    /// assert!(RedisStore::builder("redis-sentinel://10.0.0.9:26379/mymaster/0").is_ok());
    /// assert!(RedisStore::builder("memcached://10.0.0.1").is_err());
    /// ```
    pub fn builder(url: &str) -> Result<RedisStoreBuilder, Error> {
        Ok(RedisStoreBuilder::new(crate::url::parse(url)?))
    }

    /// Configures a store from a fred [`Config`] built by hand (TLS settings, custom
    /// credentials providers and the like).
    pub fn from_config(config: Config) -> RedisStoreBuilder {
        RedisStoreBuilder::new(config)
    }

    /// The fred connection pool, for commands of your own.
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// The key prefix.
    pub fn key_prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The Redis key of a session: `{prefix}{<store key>}`. The braces make the store
    /// key the cluster hash tag.
    pub fn redis_key(&self, key: &StoreKey) -> String {
        let mut out = String::with_capacity(self.inner.prefix.len() + key.as_str().len() + 2);
        out.push_str(&self.inner.prefix);
        out.push('{');
        out.push_str(key.as_str());
        out.push('}');
        out
    }

    /// The Redis key of `user`'s index (see [`Store::destroy_user`]):
    /// `{prefix}user:<user>`, every byte of the user outside `[A-Za-z0-9-._@]`
    /// percent-encoded (`%XX`). It never holds `{` or `}`, so it is never a session key,
    /// whatever the user.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use sessio_redis::RedisStore;
    ///
    /// let store = RedisStore::connect("redis://127.0.0.1:6379/0").await?;
    /// assert_eq!(store.user_key("ann@example.com"), "sessio:user:ann@example.com");
    /// assert_eq!(store.user_key("a:b {c}"), "sessio:user:a%3Ab%20%7Bc%7D");
    /// # Ok(()) }
    /// ```
    pub fn user_key(&self, user: &str) -> String {
        users::user_key(&self.inner.prefix, user)
    }

    /// Loads the scripts on every primary (`SCRIPT LOAD`), so that the first calls
    /// need no fallback. Best effort: a failure only costs a fallback later.
    pub(crate) async fn preload_scripts(&self) {
        let client = self.inner.pool.next();
        for script in [&self.inner.load, &self.inner.commit, &self.inner.index_user] {
            let loaded = tokio::time::timeout(self.inner.timeout, script.load(client)).await;
            if !matches!(loaded, Ok(Ok(()))) {
                tracing::debug!(
                    "sessio-redis: could not preload a script; it will be sent on first use"
                );
            }
        }
    }

    /// Runs one command (or a sequence) with the store's timeout over all of it, mapping
    /// failures to [`StoreError`].
    pub(crate) async fn bounded<T>(
        &self,
        op: StoreOp,
        fut: impl Future<Output = Result<T, FredError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.inner.timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(backend_error(op, e)),
            Err(elapsed) => Err(StoreError::unavailable(NAME, op, elapsed)),
        }
    }

    /// `EVALSHA`, falling back to `EVAL` (which also caches the script) when the node
    /// does not know the script yet: after a restart, a failover or `SCRIPT FLUSH`.
    ///
    /// Sent as a custom command: fred refuses to pipeline its own `EVALSHA`, for fear
    /// of a `NOSCRIPT` in the middle of a pipeline; every call here recovers from
    /// `NOSCRIPT` on its own, so pipelining is safe, and it lets many requests share a
    /// connection instead of waiting for each other's replies. `args` pushes the
    /// script's `ARGV`; it runs again only for the fallback.
    pub(crate) async fn run_script(
        &self,
        op: StoreOp,
        script: &Script,
        key: String,
        args: impl Fn(&mut Vec<Value>),
    ) -> Result<Value, StoreError> {
        let (client, slot) = self.route(&key);
        let command = |name: &'static str, first: Value| {
            let mut all = Vec::with_capacity(8);
            all.push(first);
            all.push(Value::from_static_str("1"));
            all.push(Value::from(key.as_str()));
            args(&mut all);
            (CustomCommand::new_static(name, slot.clone(), false), all)
        };
        // Boxed: fred's call future is several kilobytes, and every future that
        // awaited it inline (up to the `StoreFuture` box) would be copied whole.
        let call = |name: &'static str, first: Value| -> FredCall<'_> {
            let (cmd, all) = command(name, first);
            Box::pin(client.custom::<Value, Value>(cmd, all))
        };
        // No timer of our own: fred's `default_command_timeout` (the store's command
        // timeout) bounds each call from queueing to reply, reconnections included.
        match call("EVALSHA", Value::String(script.sha1().clone())).await {
            Err(e) if e.details().starts_with("NOSCRIPT") => {
                tracing::debug!("sessio-redis: script not cached on the node, sending it");
                let lua = script.lua().cloned().unwrap_or_default();
                call("EVAL", Value::String(lua)).await
            }
            other => other,
        }
        .map_err(|e| backend_error(op, e))
    }

    /// The pool connection and cluster hash for every command on one session: always
    /// the same connection for a given key, so that with change tracking (`NOLOOP`) the
    /// store's own writes to a session never invalidate what it read of it. On a
    /// cluster the key's slot picks it (fred honours a custom command's slot only as a
    /// number); on a single node a cheap hash does (the CRC16 costs about 750
    /// instructions per call).
    pub(crate) fn route(&self, key: &str) -> (&Client, ClusterHash) {
        let clients = self.inner.pool.clients();
        let (pick, hash) = if self.inner.clustered {
            let slot = fred::util::redis_keyslot(key.as_bytes());
            (usize::from(slot), ClusterHash::Custom(slot))
        } else {
            let pick = foldhash::fast::FixedState::default().hash_one(key);
            // Truncating is fine: only the remainder matters.
            (pick as usize, ClusterHash::Random)
        };
        // fred refuses a pool of 0 connections, so `clients` is never empty.
        (&clients[pick % clients.len()], hash)
    }

    async fn load_record(&self, key: &StoreKey) -> Result<Option<Record>, StoreError> {
        let reply = self
            .run_script(StoreOp::Load, &self.inner.load, self.redis_key(key), |_| {})
            .await?;
        let now = SystemTime::now();
        let items = match reply {
            Value::Null => return Ok(None),
            Value::Array(items) => items,
            other => {
                return Err(corrupt(
                    StoreOp::Load,
                    format!("unexpected reply {other:?}"),
                ))
            }
        };
        let mut items = items.into_iter();
        let ttl = match items.next() {
            Some(Value::Integer(ms)) => ms,
            _ => return Err(corrupt(StoreOp::Load, "missing PTTL in reply")),
        };
        let expires_at = match u64::try_from(ttl) {
            Ok(ms) => Some(now + Duration::from_millis(ms)),
            Err(_) => None, // -1: no expiry
        };
        let mut values = Values::with_capacity(items.len() * 8);
        while let (Some(field), Some(value)) = (items.next(), items.next()) {
            let field = into_bytes(field).ok_or_else(|| corrupt(StoreOp::Load, "bad field"))?;
            let value = into_bytes(value).ok_or_else(|| corrupt(StoreOp::Load, "bad value"))?;
            if field == MARKER.as_bytes() {
                continue;
            }
            let field = std::str::from_utf8(&field)
                .map_err(|e| StoreError::corrupt(NAME, StoreOp::Load, e))?;
            values.insert(field, value);
        }
        Ok(Some(Record {
            values: Arc::new(values),
            expires_at,
        }))
    }

    async fn commit_patch(&self, key: &StoreKey, patch: &Patch) -> Result<Committed, StoreError> {
        // The op tagged onto the field: one argument less per change (commit.lua).
        let tagged = |op: char, field: &str| {
            let mut arg = String::with_capacity(1 + field.len());
            arg.push(op);
            arg.push_str(field);
            Value::from(arg)
        };
        let args = |args: &mut Vec<Value>| {
            args.reserve(1 + 2 * patch.changes.len());
            args.push(Value::from(commit_header(patch)));
            for change in &patch.changes {
                match change {
                    Change::Set(k, v) => {
                        args.push(tagged('s', k));
                        args.push(Value::Bytes(v.clone()));
                    }
                    Change::Remove(k) => {
                        args.push(tagged('r', k));
                        args.push(Value::from_static_str(""));
                    }
                    Change::Increment(k, by) => {
                        args.push(tagged('i', k));
                        args.push(Value::from(by.to_string()));
                    }
                }
            }
        };
        let reply = self
            .run_script(
                StoreOp::Commit,
                &self.inner.commit,
                self.redis_key(key),
                args,
            )
            .await?;
        let Value::Array(items) = reply else {
            return Err(corrupt(
                StoreOp::Commit,
                format!("unexpected reply {reply:?}"),
            ));
        };
        let mut items = items.into_iter();
        match items.next() {
            Some(Value::Integer(1)) => {
                let counters = items
                    .map(|v| {
                        into_bytes(v)
                            .and_then(|b| sessio::store::parse_counter(&b))
                            .ok_or_else(|| corrupt(StoreOp::Commit, "bad counter in reply"))
                    })
                    .collect::<Result<Vec<i64>, _>>()?;
                Ok(Committed::Applied { counters })
            }
            Some(Value::Integer(0)) => Ok(Committed::Missing),
            Some(Value::Integer(-1)) => {
                let kind = items.next().and_then(into_bytes);
                let field = items
                    .next()
                    .and_then(into_bytes)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let kind = match kind.as_deref() {
                    Some(b"nan") => StoreErrorKind::NotAnInteger { key: field },
                    Some(b"ovf") => StoreErrorKind::Overflow { key: field },
                    _ => return Err(corrupt(StoreOp::Commit, "bad error in reply")),
                };
                Err(StoreError::new(NAME, StoreOp::Commit, kind))
            }
            _ => Err(corrupt(StoreOp::Commit, "bad status in reply")),
        }
    }

    async fn destroy_key(&self, key: &StoreKey) -> Result<bool, StoreError> {
        let redis_key = self.redis_key(key);
        let (client, _) = self.route(&redis_key);
        let removed: i64 = self
            .bounded(StoreOp::Destroy, client.del(redis_key))
            .await?;
        Ok(removed > 0)
    }
}

/// `commit.lua`'s first argument: may-create and clear flags, then the time to live in
/// milliseconds (nothing for no expiry).
fn commit_header(patch: &Patch) -> String {
    let flag = |on: bool| if on { '1' } else { '0' };
    let mut head = String::with_capacity(22);
    head.push(flag(patch.create));
    head.push(flag(patch.clear));
    if let Some(ms) = ttl_millis(patch.expires_at) {
        // Writing to a `String` cannot fail.
        let _ = write!(head, "{ms}");
    }
    head
}

/// Milliseconds left until `deadline`, rounded up (0 once it has passed); `None` for
/// no deadline.
fn ttl_millis(deadline: Option<SystemTime>) -> Option<u128> {
    deadline.map(|deadline| {
        deadline
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
            .as_nanos()
            .div_ceil(1_000_000)
    })
}

/// Milliseconds from now to `deadline`, rounded up (never early), as the scripts take
/// them; `""` for no deadline. Relative, so that clock skew between this host and Redis
/// does not move deadlines.
pub(crate) fn ttl_arg(deadline: Option<SystemTime>) -> Value {
    match ttl_millis(deadline) {
        None => Value::from_static_str(""),
        Some(ms) => Value::from(ms.to_string()),
    }
}

/// Bulk strings come back as `String` when they are UTF-8 and as `Bytes` otherwise.
pub(crate) fn into_bytes(v: Value) -> Option<Bytes> {
    match v {
        Value::Bytes(b) => Some(b),
        Value::String(s) => Some(s.into_inner()),
        _ => None,
    }
}

fn corrupt(op: StoreOp, what: impl Into<String>) -> StoreError {
    StoreError::corrupt(NAME, op, what.into())
}

/// A key that holds something other than a session hash is corrupt data; everything
/// else (connection loss, timeouts, cluster errors, `BUSY`, `OOM`) is unavailability.
/// One fred call in flight, boxed (see [`RedisStore::run_script`]).
type FredCall<'a> = Pin<Box<dyn Future<Output = Result<Value, FredError>> + Send + 'a>>;

pub(crate) fn backend_error(op: StoreOp, e: FredError) -> StoreError {
    if e.details().starts_with("WRONGTYPE") {
        StoreError::corrupt(NAME, op, e)
    } else {
        StoreError::unavailable(NAME, op, e)
    }
}

impl Store for RedisStore {
    fn name(&self) -> &'static str {
        NAME
    }

    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Record>> {
        StoreFuture::new(self.load_record(key))
    }

    fn commit<'a>(&'a self, key: &'a StoreKey, patch: &'a Patch) -> StoreFuture<'a, Committed> {
        StoreFuture::new(self.commit_patch(key, patch))
    }

    fn destroy<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, bool> {
        StoreFuture::new(self.destroy_key(key))
    }

    fn destroy_all(&self) -> StoreFuture<'_, u64> {
        StoreFuture::new(scan::destroy_all(self))
    }

    fn count(&self) -> StoreFuture<'_, u64> {
        StoreFuture::new(scan::count(self))
    }

    fn keys<'a>(&'a self, cursor: Option<&'a str>, limit: usize) -> StoreFuture<'a, KeyPage> {
        StoreFuture::new(scan::keys(self, cursor, limit))
    }

    fn index_user<'a>(
        &'a self,
        user: &'a str,
        key: &'a StoreKey,
        expires_at: Option<SystemTime>,
    ) -> StoreFuture<'a, ()> {
        StoreFuture::new(users::index_user(self, user, key, expires_at))
    }

    fn destroy_user<'a>(&'a self, user: &'a str) -> StoreFuture<'a, Vec<StoreKey>> {
        StoreFuture::new(users::destroy_user(self, user))
    }
}
