//! [`RedisStoreBuilder`]: options and connection.

use std::{fmt, sync::Arc, time::Duration};

use fred::{
    clients::Pool,
    interfaces::ClientLike,
    socket2::TcpKeepalive,
    types::{
        config::{Config, ReconnectPolicy, ServerConfig},
        Builder,
    },
};

use crate::{store::Inner, Error, RedisStore};

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "sessio:";
/// The default bound on every store call.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// The default bound on connecting (at startup and on each reconnect attempt).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default number of connections (per Redis node).
pub const DEFAULT_POOL_SIZE: usize = 4;

/// Configures a [`RedisStore`]; made by [`RedisStore::builder`] or
/// [`RedisStore::from_config`].
///
/// ```no_run
/// # async fn demo() -> Result<(), sessio_redis::Error> {
/// use std::time::Duration;
/// use sessio_redis::RedisStore;
///
/// let store = RedisStore::builder("redis://127.0.0.1:6379/0")?
///     .key_prefix("myapp:session:")
///     .pool_size(8)
///     .command_timeout(Duration::from_millis(500))
///     .connect()
///     .await?;
/// # let _ = store; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStoreBuilder {
    config: Config,
    prefix: String,
    pool_size: usize,
    command_timeout: Duration,
    connect_timeout: Duration,
    reconnect_max_delay: Duration,
    /// Speak RESP3, for [`RedisStore::track_changes`](crate::RedisStore::track_changes).
    #[cfg(feature = "tracking")]
    tracking: bool,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the config: it holds the password.
        f.debug_struct("RedisStoreBuilder")
            .field("prefix", &self.prefix)
            .field("pool_size", &self.pool_size)
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStoreBuilder {
    pub(crate) fn new(config: Config) -> Self {
        RedisStoreBuilder {
            config,
            prefix: DEFAULT_PREFIX.to_owned(),
            pool_size: DEFAULT_POOL_SIZE,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            reconnect_max_delay: Duration::from_secs(2),
            #[cfg(feature = "tracking")]
            tracking: false,
        }
    }

    /// The prefix of every Redis key this store writes (default `sessio:`). A session
    /// lives under `{prefix}{<store key>}`; [`RedisStore::destroy_all`](sessio::store::Store::destroy_all),
    /// `count` and `keys` see only keys with this prefix, so several applications can
    /// share one Redis by using different prefixes. It may not contain `{` or `}`.
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How many connections to open (to each node in a cluster), used round-robin.
    /// Default 4. Each connection pipelines many concurrent requests, so a few are
    /// enough; more help when values are large.
    #[must_use]
    pub fn pool_size(mut self, n: usize) -> Self {
        self.pool_size = n.max(1);
        self
    }

    /// The bound on every store call (default 2 s). When Redis is down or unreachable,
    /// calls fail with [`StoreErrorKind::Unavailable`](sessio::StoreErrorKind::Unavailable)
    /// after at most this long instead of waiting for a reconnection. `count`,
    /// `destroy_all` and `keys` apply it to each `SCAN` step, not to the whole walk.
    #[must_use]
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// The bound on connecting, at startup and on each reconnection attempt
    /// (default 5 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Makes the store able to [`track_changes`](crate::RedisStore::track_changes):
    /// its connections speak RESP3, which carries the server's invalidations on the
    /// pool's own connections (Redis 6 or later). Off by default because fred decodes
    /// RESP3 replies at a higher cost: about 5,000 more instructions for a request that
    /// loads and commits a session (docs/benchmarks.md), paid only by stores that
    /// track.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessio_redis::Error> {
    /// use sessio_redis::RedisStore;
    ///
    /// let store = RedisStore::builder("redis://127.0.0.1:6379/0")?
    ///     .tracking()
    ///     .connect()
    ///     .await?;
    /// let tracker = store.track_changes(|change| println!("{change:?}")).await?;
    /// # drop(tracker); Ok(()) }
    /// ```
    #[cfg(feature = "tracking")]
    #[must_use]
    pub fn tracking(mut self) -> Self {
        self.tracking = true;
        self
    }

    /// The longest pause between reconnection attempts after Redis went away
    /// (default 2 s; attempts start after 100 ms and back off exponentially). The
    /// store keeps trying forever, so it recovers by itself when Redis comes back.
    #[must_use]
    pub fn reconnect_max_delay(mut self, delay: Duration) -> Self {
        self.reconnect_max_delay = delay;
        self
    }

    /// Connects, waiting at most the connect timeout for the first connection.
    ///
    /// Fails with [`Error::Connect`] if Redis cannot be reached now; once connected,
    /// later outages surface as store errors and the store reconnects by itself.
    pub async fn connect(self) -> Result<RedisStore, Error> {
        if self.prefix.contains(['{', '}']) {
            return Err(Error::Prefix {
                prefix: self.prefix,
            });
        }
        let clustered = matches!(self.config.server, ServerConfig::Clustered { .. });
        let mut config = self.config;
        // Change tracking runs on the pool's own connections, and RESP3 carries the
        // invalidations on them.
        #[cfg(feature = "tracking")]
        if self.tracking {
            config.version = fred::types::RespVersion::RESP3;
        }
        // Return the first connection error to `connect` instead of retrying forever.
        config.fail_fast = true;
        let mut builder = Builder::from_config(config.clone());
        let max_delay = u32::try_from(self.reconnect_max_delay.as_millis()).unwrap_or(u32::MAX);
        builder
            .set_policy(ReconnectPolicy::new_exponential(
                0,
                100,
                max_delay.max(100),
                2,
            ))
            .with_connection_config(|c| {
                c.connection_timeout = self.connect_timeout;
                c.internal_command_timeout = self.command_timeout;
                // Never re-send a command whose connection dropped after it was
                // written: Redis may have run it, and replaying a commit would count
                // its increments twice. The caller gets `Unavailable` instead.
                c.max_command_attempts = 1;
                // A connection whose peer vanished (a partition, a host gone
                // without a reset) is closed by the kernel and reconnected instead of
                // failing every call until TCP gives up, minutes later: data left
                // unacknowledged for `dead_peer`, or an idle connection whose
                // keepalive probes go unanswered. Not fred's `unresponsive` check,
                // which arms a tokio timer on every pass of the connection's loop
                // (about 1,000 instructions per command). A server process that
                // hangs while its host still acknowledges is bounded per call by the
                // command timeout below, and answers again on the same connection.
                let dead_peer = (self.command_timeout * 2).max(Duration::from_secs(1));
                #[cfg_attr(not(target_os = "linux"), allow(unused_mut))]
                let mut keepalive = TcpKeepalive::new().with_time(dead_peer);
                #[cfg(target_os = "linux")]
                {
                    keepalive =
                        keepalive.with_interval((dead_peer / 4).max(Duration::from_secs(1)));
                    c.tcp.user_timeout = Some(dead_peer);
                }
                c.tcp.keepalive = Some(keepalive);
            })
            .with_performance_config(|p| p.default_command_timeout = self.command_timeout);
        let pool: Pool = builder.build_pool(self.pool_size).map_err(Error::Config)?;
        match tokio::time::timeout(self.connect_timeout, pool.init()).await {
            Ok(Ok(_task)) => {}
            Ok(Err(e)) => return Err(Error::Connect(e.into())),
            Err(elapsed) => {
                // Stop the background connection attempts of a store never handed out.
                pool.quit().await.ok();
                return Err(Error::Connect(elapsed.into()));
            }
        }
        tracing::debug!(
            clustered,
            pool_size = self.pool_size,
            "sessio-redis connected"
        );
        let store = RedisStore {
            inner: Arc::new(Inner::new(
                pool,
                self.prefix,
                self.command_timeout,
                clustered,
            )),
        };
        store.preload_scripts().await;
        Ok(store)
    }
}
