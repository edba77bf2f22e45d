//! Error sources that [`FileStore`](crate::FileStore) attaches to
//! [`StoreError`](sessio::StoreError)s.

use std::{io, path::PathBuf};

use crate::format::FormatError;

/// A session file whose content is not a valid record. Only that session fails;
/// every other session keeps working. The path is redacted (see
/// [`FileStore`](crate::FileStore#errors-and-logs)).
#[derive(Debug, thiserror::Error)]
#[error("session file `{}` does not hold a valid session record (delete it, or restore it from a backup)", .path.display())]
pub struct CorruptFile {
    /// The file, with its name shortened to the first 8 hex digits.
    pub path: PathBuf,
    /// What is wrong with its content.
    #[source]
    pub source: FormatError,
}

/// A filesystem call that failed.
#[derive(Debug, thiserror::Error)]
#[error("could not {action} `{}`", .path.display())]
pub struct FileError {
    /// What the store was doing (`"read"`, `"rename"`, ...).
    pub action: &'static str,
    /// The file or directory, with session file names shortened.
    pub path: PathBuf,
    /// The I/O error.
    #[source]
    pub source: io::Error,
}
