//! Opening the database file, and turning every way that fails into a clear error.

use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    path::Path,
};

use redb::{ReadableMultimapTable, ReadableTable};
use sessio::store::{StoreError, StoreOp};

use crate::{
    error::OpenError,
    store::{RedbStoreBuilder, NAME},
    tables::{EXPIRY, SESSIONS, SESSION_USERS, USER_SESSIONS},
};

fn open_failed(
    path: &Path,
    op: StoreOp,
    source: Option<redb::Error>,
    panicked: Option<String>,
) -> StoreError {
    use redb::Error as E;
    let (problem, corrupt) = match &source {
        _ if panicked.is_some() => (
            format!(
                "the file is damaged or truncated (redb panicked reading it: {})",
                panicked.as_deref().unwrap_or_default()
            ),
            true,
        ),
        Some(E::DatabaseAlreadyOpen) => (
            "it is already open (in another process, or another store in this one)".to_owned(),
            false,
        ),
        Some(E::Corrupted(what)) => (
            format!("the file is damaged or not a redb database ({what})"),
            true,
        ),
        Some(E::UpgradeRequired(v)) => (
            format!("it uses redb file format {v}; migrate it with redb 2.6's `Database::upgrade`"),
            true,
        ),
        Some(E::TableTypeMismatch { .. } | E::TableIsMultimap(_) | E::TableIsNotMultimap(_)) => (
            "it holds tables named like sessio's with another layout: not a sessio database"
                .to_owned(),
            true,
        ),
        Some(E::Io(e))
            if e.kind() == std::io::ErrorKind::InvalidData
                || e.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            (
                "the file is truncated or not a redb database".to_owned(),
                true,
            )
        }
        Some(E::Io(_)) => ("an I/O error".to_owned(), false),
        Some(E::RepairAborted) => ("the repair after a crash was aborted".to_owned(), false),
        Some(_) | None => ("an unexpected redb error".to_owned(), false),
    };
    let error = OpenError {
        path: path.to_owned(),
        problem,
        source,
    };
    if corrupt {
        StoreError::corrupt(NAME, op, error)
    } else {
        StoreError::unavailable(NAME, op, error)
    }
}

pub(crate) fn open_db(
    builder: &RedbStoreBuilder,
    path: &Path,
) -> Result<redb::Database, StoreError> {
    let op = StoreOp::Connect;
    let fail = |e: redb::Error| open_failed(path, op, Some(e), None);
    // A damaged file may make redb panic instead of returning an error (it is not
    // hardened against arbitrary files): report that as a damaged file, too.
    let opened = catch_unwind(AssertUnwindSafe(
        || -> Result<redb::Database, StoreError> {
            let mut b = redb::Builder::new();
            if let Some(bytes) = builder.cache_size_bytes() {
                b.set_cache_size(bytes);
            }
            let db = b.create(path).map_err(|e| fail(e.into()))?;
            // Create the tables (so read transactions find them) and check their shape.
            let mut txn = db.begin_write().map_err(|e| fail(e.into()))?;
            txn.set_quick_repair(builder.quick_repair_on());
            {
                let sessions = txn.open_table(SESSIONS).map_err(|e| fail(e.into()))?;
                let expiry = txn.open_table(EXPIRY).map_err(|e| fail(e.into()))?;
                // The user index came later: a database of an earlier version gains
                // its (empty) tables here and needs no other migration.
                let users = txn
                    .open_multimap_table(USER_SESSIONS)
                    .map_err(|e| fail(e.into()))?;
                let owners = txn
                    .open_multimap_table(SESSION_USERS)
                    .map_err(|e| fail(e.into()))?;
                // Touch the trees so that a damaged root page is found now, not on first use.
                let _ = sessions.first().map_err(|e| fail(e.into()))?;
                let _ = expiry.first().map_err(|e| fail(e.into()))?;
                for index in [&users, &owners] {
                    if let Some(Err(e)) = index.iter().map_err(|e| fail(e.into()))?.next() {
                        return Err(fail(e.into()));
                    }
                }
            }
            txn.commit().map_err(|e| fail(e.into()))?;
            Ok(db)
        },
    ));
    match opened {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".to_owned());
            Err(open_failed(path, op, None, Some(message)))
        }
    }
}
