#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
mod axum;
mod codec;
mod config;
mod cookies;
mod error;
mod id;
mod reserved;
pub mod respond;
pub mod secure;
mod session;
mod sessions;
pub mod store;
mod telemetry;

#[cfg(feature = "axum")]
pub use crate::axum::SessionOf;
pub use crate::{
    codec::{Codec, CodecError},
    config::{SameSite, Secure, SessionsBuilder},
    error::{BoxError, Error, StoreError, StoreErrorKind, StoreOp},
    id::{IdGenerator, IdHasher, KeysAtRest, RandomIds, SessionId, StoreKey, MAX_ID_LEN},
    session::{Finish, Session},
    sessions::{DestroyReason, LazySession, SessionName, Sessions},
    store::MemoryStore,
};
