//! Errors returned by sessions and stores.

use std::fmt;

use crate::codec::CodecError;

/// A boxed error from a store's backend (a driver, an I/O call, a decoder).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong while using a session.
///
/// Store failures keep their source; handlers usually map them to `503 Service
/// Unavailable` (the axum adapter does so), everything else is a programming error
/// or bad data and maps to `500`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The session store failed; see [`StoreError`] for which store and operation.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A value could not be serialized with the configured codec.
    #[error("could not encode the value for session key `{key}`")]
    Encode {
        /// The session key.
        key: String,
        /// Why the codec refused it.
        #[source]
        source: CodecError,
    },
    /// A stored value does not decode as the requested type (or is garbage).
    #[error("the value of session key `{key}` does not decode as the requested type")]
    Decode {
        /// The session key.
        key: String,
        /// Why the codec refused it.
        #[source]
        source: CodecError,
    },
    /// `set` was called on a key stored with `set_immutable`.
    #[error(
        "session key `{key}` is immutable; replace it with `set_immutable` or delete it first"
    )]
    Immutable {
        /// The session key.
        key: String,
    },
    /// Keys that start with `__sessio:` are reserved for sessio's own bookkeeping, and
    /// keys may not contain NUL.
    #[error("session key {key:?} is reserved: keys starting with `__sessio:` or holding NUL are not allowed")]
    ReservedKey {
        /// The refused key.
        key: String,
    },
    /// A client-side session does not fit in the cookies allowed for it.
    #[error("the session needs {size} bytes of cookie data, more than the {limit} allowed; store less or allow more cookies")]
    CookieTooLarge {
        /// Bytes needed.
        size: usize,
        /// Bytes allowed (`max_cookies` × per-cookie room).
        limit: usize,
    },
    /// The configuration given to [`SessionsBuilder`](crate::SessionsBuilder) is invalid.
    #[error("invalid sessio configuration: {0}")]
    Config(String),
}

/// The store operation that failed, named in [`StoreError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreOp {
    /// Loading a session.
    Load,
    /// Applying a patch.
    Commit,
    /// Destroying one session.
    Destroy,
    /// Destroying every session.
    DestroyAll,
    /// Counting sessions.
    Count,
    /// Listing session keys.
    Keys,
    /// Removing expired sessions.
    PurgeExpired,
    /// Connecting or preparing the store.
    Connect,
    /// Adding a session to its user's index.
    IndexUser,
    /// Destroying every session of a user.
    DestroyUser,
}

impl fmt::Display for StoreOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreOp::Load => "load a session",
            StoreOp::Commit => "commit a session",
            StoreOp::Destroy => "destroy a session",
            StoreOp::DestroyAll => "destroy all sessions",
            StoreOp::Count => "count sessions",
            StoreOp::Keys => "list sessions",
            StoreOp::PurgeExpired => "purge expired sessions",
            StoreOp::Connect => "connect",
            StoreOp::IndexUser => "index a session under its user",
            StoreOp::DestroyUser => "destroy the sessions of a user",
        })
    }
}

/// What kind of failure a [`StoreError`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The backend is unreachable, timed out or answered with an error: usually transient.
    Unavailable,
    /// Stored data is corrupt or in a format this version cannot read.
    Corrupt,
    /// `increment` hit a value that is not an integer.
    NotAnInteger {
        /// The session key.
        key: String,
    },
    /// `increment` would overflow an `i64`.
    Overflow {
        /// The session key.
        key: String,
    },
    /// The store cannot do this operation at all (for example `destroy_by_id` on
    /// client-side cookie sessions).
    Unsupported,
}

/// A failure of a [`Store`](crate::store::Store), naming the store and the operation.
#[derive(Debug, thiserror::Error)]
#[error("session store `{store}` failed to {op}: {}", describe(.kind))]
pub struct StoreError {
    store: &'static str,
    op: StoreOp,
    kind: StoreErrorKind,
    #[source]
    source: Option<BoxError>,
}

fn describe(kind: &StoreErrorKind) -> String {
    match kind {
        StoreErrorKind::Unavailable => "the backend is unavailable".into(),
        StoreErrorKind::Corrupt => "stored data is corrupt".into(),
        StoreErrorKind::NotAnInteger { key } => format!("key `{key}` does not hold an integer"),
        StoreErrorKind::Overflow { key } => format!("incrementing key `{key}` overflows i64"),
        StoreErrorKind::Unsupported => "this store does not support the operation".into(),
    }
}

impl StoreError {
    /// A new error of `kind` from the store named `store` during `op`.
    pub fn new(store: &'static str, op: StoreOp, kind: StoreErrorKind) -> Self {
        Self {
            store,
            op,
            kind,
            source: None,
        }
    }

    /// A backend failure (kind [`StoreErrorKind::Unavailable`]) that keeps its cause.
    pub fn unavailable(store: &'static str, op: StoreOp, source: impl Into<BoxError>) -> Self {
        Self::new(store, op, StoreErrorKind::Unavailable).with_source(source)
    }

    /// Corrupt stored data (kind [`StoreErrorKind::Corrupt`]) that keeps its cause.
    pub fn corrupt(store: &'static str, op: StoreOp, source: impl Into<BoxError>) -> Self {
        Self::new(store, op, StoreErrorKind::Corrupt).with_source(source)
    }

    /// Attaches the underlying cause.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The name of the store that failed.
    pub fn store(&self) -> &'static str {
        self.store
    }

    /// The operation that failed.
    pub fn op(&self) -> StoreOp {
        self.op
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> &StoreErrorKind {
        &self.kind
    }

    /// Whether retrying later may succeed (the backend was unavailable).
    pub fn is_transient(&self) -> bool {
        self.kind == StoreErrorKind::Unavailable
    }
}

impl Error {
    /// Whether this error is a store failure that may pass (maps to `503`).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Store(e) if e.is_transient())
    }
}

impl Error {
    /// The HTTP status this error maps to: `503` when the store is unavailable, `413`
    /// when a client-side session outgrew its cookies, `500` otherwise.
    pub fn status(&self) -> http::StatusCode {
        match self {
            _ if self.is_unavailable() => http::StatusCode::SERVICE_UNAVAILABLE,
            Error::CookieTooLarge { .. } => http::StatusCode::PAYLOAD_TOO_LARGE,
            _ => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}
