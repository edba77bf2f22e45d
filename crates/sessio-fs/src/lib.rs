#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
pub mod format;
mod gc;
mod names;
mod store;

pub use crate::{
    error::{CorruptFile, FileError},
    store::{FileStore, FileStoreBuilder},
};
pub use sessio;
