//! Errors from configuring and connecting a [`RedisStore`](crate::RedisStore).
//!
//! Once connected, every store call fails with [`sessio::StoreError`] instead.

use sessio::BoxError;

/// Why a [`RedisStore`](crate::RedisStore) could not be set up.
///
/// Messages never repeat the URL, which may hold a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL is not one of the accepted forms (see
    /// [`RedisStore::builder`](crate::RedisStore::builder)).
    #[error("invalid Redis URL: {reason}")]
    Url {
        /// What is wrong with it.
        reason: String,
        /// fred's parse error, when fred refused it.
        #[source]
        source: Option<fred::error::Error>,
    },
    /// The key prefix holds `{` or `}`, which would move the cluster hash tag into the
    /// prefix and put every session on one slot.
    #[error("invalid key prefix {prefix:?}: it may not contain `{{` or `}}`")]
    Prefix {
        /// The refused prefix.
        prefix: String,
    },
    /// fred refused the configuration (for example a pool size of 0).
    #[error("invalid Redis client configuration")]
    Config(#[source] fred::error::Error),
    /// Redis could not be reached within the connect timeout. Check that it runs and
    /// that the URL's host, port and credentials are right.
    #[error("could not connect to Redis")]
    Connect(#[source] BoxError),
    /// [`RedisStore::track_changes`](crate::RedisStore::track_changes) on a store built
    /// without [`RedisStoreBuilder::tracking`](crate::RedisStoreBuilder::tracking),
    /// whose connections speak RESP2 and so cannot receive invalidations.
    #[cfg(feature = "tracking")]
    #[error("change tracking needs a store built with `RedisStoreBuilder::tracking()` (RESP3)")]
    NotTracking,
}

impl Error {
    pub(crate) fn url(reason: &str) -> Self {
        Error::Url {
            reason: reason.to_owned(),
            source: None,
        }
    }
}
