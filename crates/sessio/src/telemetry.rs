//! Metrics and tracing: the wrapper that [`SessionsBuilder::build`] puts around every
//! server-side store, and the session lifecycle counters.
//!
//! Metrics go through the [`metrics`](https://docs.rs/metrics) facade (feature
//! `metrics`, on by default): sessio records, the application installs an exporter
//! (or none, and recording costs next to nothing). Handles are resolved once, when
//! [`Sessions`](crate::Sessions) is built, so **install the recorder before building
//! `Sessions`**.
//!
//! | metric | kind | labels |
//! |--------|------|--------|
//! | `sessio_sessions_created_total` | counter | |
//! | `sessio_sessions_regenerated_total` | counter | |
//! | `sessio_sessions_destroyed_total` | counter | |
//! | `sessio_sessions_expired_total` | counter (stores that report expiry) | |
//! | `sessio_store_op_duration_seconds` | histogram | `store`, `op` |
//! | `sessio_store_errors_total` | counter | `store`, `op`, `kind` |
//! | `sessio_sessions_live` | gauge, set whenever sessions are counted | `store` |
//!
//! Tracing: every store call runs in a `DEBUG` span `sessio.store` with the fields
//! `store`, `op` and, for calls on one session, `id`: 32 bits of the key's foldhash
//! under a per-process random seed, enough to follow one session through a log and
//! useless for finding its id. The span is only made when a subscriber wants `DEBUG`
//! spans.
//!
//! [`SessionsBuilder::build`]: crate::SessionsBuilder::build

use std::{fmt, sync::Arc};

use tracing::Instrument as _;

#[cfg(feature = "metrics")]
use crate::error::StoreError;
use crate::{
    sessions::DestroyReason,
    store::{Committed, ExpiryListener, KeyPage, Patch, Record, Store, StoreFuture, StoreKey},
};

/// A store operation, as a metric label.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
enum Op {
    Load,
    Commit,
    Destroy,
    DestroyAll,
    Count,
    Keys,
    PurgeExpired,
    IndexUser,
    DestroyUser,
}

#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
impl Op {
    const ALL: [Op; 9] = [
        Op::Load,
        Op::Commit,
        Op::Destroy,
        Op::DestroyAll,
        Op::Count,
        Op::Keys,
        Op::PurgeExpired,
        Op::IndexUser,
        Op::DestroyUser,
    ];

    fn label(self) -> &'static str {
        match self {
            Op::Load => "load",
            Op::Commit => "commit",
            Op::Destroy => "destroy",
            Op::DestroyAll => "destroy_all",
            Op::Count => "count",
            Op::Keys => "keys",
            Op::PurgeExpired => "purge_expired",
            Op::IndexUser => "index_user",
            Op::DestroyUser => "destroy_user",
        }
    }
}

/// The session lifecycle counters.
#[derive(Clone, Default)]
pub(crate) struct Events {
    #[cfg(feature = "metrics")]
    handles: Option<Arc<EventHandles>>,
}

#[cfg(feature = "metrics")]
struct EventHandles {
    created: metrics::Counter,
    regenerated: metrics::Counter,
    destroyed: metrics::Counter,
    expired: metrics::Counter,
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Events {
    /// Resolves the counters with the recorder installed now.
    pub(crate) fn new() -> Self {
        Events {
            #[cfg(feature = "metrics")]
            handles: Some(Arc::new(EventHandles {
                created: metrics::counter!("sessio_sessions_created_total"),
                regenerated: metrics::counter!("sessio_sessions_regenerated_total"),
                destroyed: metrics::counter!("sessio_sessions_destroyed_total"),
                expired: metrics::counter!("sessio_sessions_expired_total"),
            })),
        }
    }

    /// A session was written for the first time.
    pub(crate) fn created(&self) {
        #[cfg(feature = "metrics")]
        if let Some(h) = &self.handles {
            h.created.increment(1);
        }
    }

    /// A session ended.
    pub(crate) fn ended(&self, reason: DestroyReason) {
        #[cfg(feature = "metrics")]
        if let Some(h) = &self.handles {
            match reason {
                DestroyReason::Destroyed => h.destroyed.increment(1),
                DestroyReason::Regenerated => h.regenerated.increment(1),
                DestroyReason::Expired => h.expired.increment(1),
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = reason;
    }
}

/// The short keyed hash that stands for a session id in spans.
struct ShortId(u64);

impl fmt::Display for ShortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0 as u32)
    }
}

/// A store that records a span, a latency and errors for every call, then forwards it.
pub(crate) struct Instrumented {
    inner: Arc<dyn Store>,
    #[cfg(feature = "metrics")]
    latency: [metrics::Histogram; 9],
    #[cfg(feature = "metrics")]
    live: metrics::Gauge,
}

impl fmt::Debug for Instrumented {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Transparent: the wrapper is an implementation detail of `Sessions`.
        self.inner.fmt(f)
    }
}

impl Instrumented {
    /// Wraps `inner`, resolving its metric handles with the recorder installed now.
    pub(crate) fn wrap(inner: Arc<dyn Store>) -> Arc<dyn Store> {
        #[cfg(feature = "metrics")]
        let store = inner.name();
        Arc::new(Instrumented {
            #[cfg(feature = "metrics")]
            latency: Op::ALL.map(|op| {
                metrics::histogram!(
                    "sessio_store_op_duration_seconds",
                    "store" => store,
                    "op" => op.label()
                )
            }),
            #[cfg(feature = "metrics")]
            live: metrics::gauge!("sessio_sessions_live", "store" => store),
            inner,
        })
    }

    /// Runs one store call inside its span and measures it. A call that completes at
    /// once (the memory store) costs no allocation; an asynchronous one is wrapped in
    /// one more boxed future, small next to its network or disk round trip.
    fn observe<'a, T: Send + 'a>(
        &'a self,
        op: Op,
        key: Option<&StoreKey>,
        call: impl FnOnce(&'a dyn Store) -> StoreFuture<'a, T>,
    ) -> StoreFuture<'a, T> {
        // When no subscriber wants the span (the common case in production) none is
        // made: creating, entering and dropping even a disabled span costs a few
        // hundred instructions per call.
        let span = tracing::span_enabled!(tracing::Level::DEBUG).then(|| {
            tracing::debug_span!(
                "sessio.store",
                store = self.inner.name(),
                op = op.label(),
                id = tracing::field::Empty
            )
        });
        if let (Some(span), Some(key)) = (&span, key) {
            if !span.is_disabled() {
                span.record("id", tracing::field::display(ShortId(key.hash_value())));
            }
        }
        #[cfg(feature = "metrics")]
        let start = std::time::Instant::now();
        let fut = match &span {
            Some(span) => span.in_scope(|| call(&*self.inner)),
            None => call(&*self.inner),
        };
        match fut.into_ready() {
            Ok(result) => {
                #[cfg(feature = "metrics")]
                self.record(op, start, &result);
                StoreFuture::ready(result)
            }
            Err(fut) => {
                let fut = async move {
                    let result = fut.await;
                    #[cfg(feature = "metrics")]
                    self.record(op, start, &result);
                    result
                };
                match span {
                    Some(span) => StoreFuture::new(fut.instrument(span)),
                    None => StoreFuture::new(fut),
                }
            }
        }
    }

    #[cfg(feature = "metrics")]
    fn record<T>(&self, op: Op, start: std::time::Instant, result: &Result<T, StoreError>) {
        self.latency[op as usize].record(start.elapsed().as_secs_f64());
        if let Err(e) = result {
            // Errors are rare: resolving this handle each time is fine.
            metrics::counter!(
                "sessio_store_errors_total",
                "store" => self.inner.name(),
                "op" => op.label(),
                "kind" => kind_label(e)
            )
            .increment(1);
        }
    }
}

/// A [`StoreErrorKind`](crate::StoreErrorKind) as a metric label.
#[cfg(feature = "metrics")]
fn kind_label(e: &StoreError) -> &'static str {
    use crate::error::StoreErrorKind as K;
    match e.kind() {
        K::Unavailable => "unavailable",
        K::Corrupt => "corrupt",
        K::NotAnInteger { .. } => "not_an_integer",
        K::Overflow { .. } => "overflow",
        K::Unsupported => "unsupported",
    }
}

impl Store for Instrumented {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Record>> {
        self.observe(Op::Load, Some(key), |s| s.load(key))
    }

    fn commit<'a>(&'a self, key: &'a StoreKey, patch: &'a Patch) -> StoreFuture<'a, Committed> {
        self.observe(Op::Commit, Some(key), |s| s.commit(key, patch))
    }

    fn destroy<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, bool> {
        self.observe(Op::Destroy, Some(key), |s| s.destroy(key))
    }

    fn destroy_all(&self) -> StoreFuture<'_, u64> {
        self.observe(Op::DestroyAll, None, |s| s.destroy_all())
    }

    fn count(&self) -> StoreFuture<'_, u64> {
        let fut = self.observe(Op::Count, None, |s| s.count());
        #[cfg(feature = "metrics")]
        let fut = match fut.into_ready() {
            Ok(result) => {
                if let Ok(n) = &result {
                    self.live.set(*n as f64);
                }
                StoreFuture::ready(result)
            }
            Err(fut) => StoreFuture::new(async move {
                let result = fut.await;
                if let Ok(n) = &result {
                    self.live.set(*n as f64);
                }
                result
            }),
        };
        fut
    }

    fn keys<'a>(&'a self, cursor: Option<&'a str>, limit: usize) -> StoreFuture<'a, KeyPage> {
        self.observe(Op::Keys, None, |s| s.keys(cursor, limit))
    }

    fn set_expiry_listener(&self, listener: ExpiryListener) -> bool {
        self.inner.set_expiry_listener(listener)
    }

    fn purge_expired(&self) -> StoreFuture<'_, Option<u64>> {
        self.observe(Op::PurgeExpired, None, |s| s.purge_expired())
    }

    fn index_user<'a>(
        &'a self,
        user: &'a str,
        key: &'a StoreKey,
        expires_at: Option<std::time::SystemTime>,
    ) -> StoreFuture<'a, ()> {
        self.observe(Op::IndexUser, Some(key), |s| {
            s.index_user(user, key, expires_at)
        })
    }

    fn destroy_user<'a>(&'a self, user: &'a str) -> StoreFuture<'a, Vec<StoreKey>> {
        self.observe(Op::DestroyUser, None, |s| s.destroy_user(user))
    }
}
