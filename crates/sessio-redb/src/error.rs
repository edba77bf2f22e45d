//! Error sources that [`RedbStore`](crate::RedbStore) attaches to
//! [`StoreError`](sessio::StoreError)s.

use std::path::PathBuf;

use sessio_fs::format::FormatError;

/// The database file could not be opened: which file, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the session database `{}`: {problem}", .path.display())]
pub struct OpenError {
    /// The database file.
    pub path: PathBuf,
    /// What is wrong, in words.
    pub problem: String,
    /// redb's error, when there is one (not when redb panicked on a damaged file).
    #[source]
    pub source: Option<redb::Error>,
}

/// A session record that does not decode. Only that session fails; every other
/// session keeps working.
#[derive(Debug, thiserror::Error)]
#[error("the record of session `{session}` in `{}` is damaged (destroy the session to remove it)", .path.display())]
pub struct CorruptRecord {
    /// The first 4 characters of the store key (keys are session ids: secrets).
    pub session: String,
    /// The database file.
    pub path: PathBuf,
    /// What is wrong with the record.
    #[source]
    pub source: FormatError,
}

/// The first characters of a store key, for errors and logs.
pub(crate) fn redact(key: &str) -> String {
    let end = key.char_indices().nth(4).map_or(key.len(), |(i, _)| i);
    format!("{}…", &key[..end])
}

/// The source of an error shared by every commit of one failed write transaction
/// (group commit): points at the one underlying failure.
#[derive(Debug)]
pub(crate) struct InBatch(pub(crate) std::sync::Arc<sessio::StoreError>);

impl std::fmt::Display for InBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the write transaction holding this change failed")
    }
}

impl std::error::Error for InBatch {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// The writer thread dropped a change: redb panicked while applying its batch.
#[derive(Debug, thiserror::Error)]
#[error("the change was abandoned: redb panicked while applying it (see the log)")]
pub(crate) struct Abandoned;
