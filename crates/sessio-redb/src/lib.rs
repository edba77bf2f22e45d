#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod open;
mod ops;
mod store;
mod tables;
mod writer;

pub use crate::{
    error::{CorruptRecord, OpenError},
    store::{Durability, RedbStore, RedbStoreBuilder},
};
pub use redb;
pub use sessio;
