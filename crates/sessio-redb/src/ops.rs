//! What each store operation does inside redb. Reads open their own read transaction;
//! writes run inside the write transaction of a batch (see `writer`) and return
//! `Err` only for failures of redb itself (which abort the whole batch), `Ok(Err(_))`
//! for failures of their own, after which they have written nothing.

use std::{ops::Bound, path::PathBuf, sync::Arc, time::SystemTime};

use redb::{
    MultimapTable, ReadableDatabase, ReadableTable, ReadableTableMetadata, Table, WriteTransaction,
};
use sessio::store::{
    apply_changes, is_expired, Committed, KeyPage, Patch, Record, StoreError, StoreKey, StoreOp,
    Values,
};
use sessio_fs::format::{self, deadline_millis};

use crate::{
    error::{redact, CorruptRecord},
    store::{Durability, NAME},
    tables::{EXPIRY, SESSIONS, SESSION_USERS, USER_SESSIONS},
};

/// Sessions removed per purge job: bounds how long one purge holds the writer.
pub(crate) const PURGE_BATCH: usize = 512;

/// A write's result: outer `Err` aborts the batch, inner `Err` fails only this write.
pub(crate) type Written<T> = Result<Result<T, StoreError>, StoreError>;

/// Maps a redb error: corruption is `StoreErrorKind::Corrupt`, the rest unavailable.
pub(crate) fn db_error(op: StoreOp, e: impl Into<redb::Error>) -> StoreError {
    let e = e.into();
    if matches!(e, redb::Error::Corrupted(_)) {
        StoreError::corrupt(NAME, op, e)
    } else {
        StoreError::unavailable(NAME, op, e)
    }
}

/// The database and its settings, shared by the writer thread and the readers.
pub(crate) struct Shared {
    pub(crate) db: redb::Database,
    pub(crate) path: PathBuf,
    pub(crate) durability: Durability,
    pub(crate) quick_repair: bool,
}

impl Shared {
    fn decode(&self, key: &str, bytes: &[u8], op: StoreOp) -> Result<Record, StoreError> {
        format::decode(bytes).map_err(|source| {
            StoreError::corrupt(
                NAME,
                op,
                CorruptRecord {
                    session: redact(key),
                    path: self.path.clone(),
                    source,
                },
            )
        })
    }

    pub(crate) fn load(&self, key: &str) -> Result<Option<Record>, StoreError> {
        let op = StoreOp::Load;
        let now = SystemTime::now();
        let txn = self.db.begin_read().map_err(|e| db_error(op, e))?;
        let table = txn.open_table(SESSIONS).map_err(|e| db_error(op, e))?;
        let Some(raw) = table.get(key).map_err(|e| db_error(op, e))? else {
            return Ok(None);
        };
        let record = self.decode(key, raw.value(), op)?;
        Ok((!is_expired(record.expires_at, now)).then_some(record))
    }

    pub(crate) fn commit(
        &self,
        txn: &WriteTransaction,
        key: &str,
        patch: &Patch,
    ) -> Written<Committed> {
        let op = StoreOp::Commit;
        let now = SystemTime::now();
        let mut sessions = txn.open_table(SESSIONS).map_err(|e| db_error(op, e))?;
        let mut expiry = txn.open_table(EXPIRY).map_err(|e| db_error(op, e))?;
        let old = match sessions.get(key).map_err(|e| db_error(op, e))? {
            Some(raw) => match self.decode(key, raw.value(), op) {
                Ok(record) => Some(record),
                Err(e) => return Ok(Err(e)),
            },
            None => None,
        };
        let old_deadline = old.as_ref().and_then(|r| r.expires_at);
        let mut values = match old.filter(|r| !is_expired(r.expires_at, now)) {
            Some(live) => Arc::unwrap_or_clone(live.values),
            None if patch.create => Values::default(),
            None => return Ok(Ok(Committed::Missing)),
        };
        // Applied to an owned copy before anything is written: a failed increment
        // leaves the database untouched.
        let counters = match apply_changes(&mut values, patch, NAME) {
            Ok(counters) => counters,
            Err(e) => return Ok(Err(e)),
        };
        let bytes = format::encode(&values, patch.expires_at);
        sessions
            .insert(key, bytes.as_slice())
            .map_err(|e| db_error(op, e))?;
        if old_deadline != patch.expires_at {
            if let Some(t) = old_deadline {
                expiry
                    .remove((deadline_millis(t), key))
                    .map_err(|e| db_error(op, e))?;
            }
            if let Some(t) = patch.expires_at {
                expiry
                    .insert((deadline_millis(t), key), ())
                    .map_err(|e| db_error(op, e))?;
            }
        }
        Ok(Ok(Committed::Applied { counters }))
    }

    pub(crate) fn destroy(&self, txn: &WriteTransaction, key: &str) -> Written<bool> {
        let op = StoreOp::Destroy;
        let mut t = Tables::open(txn, op)?;
        let existed = t.remove_session(key, SystemTime::now(), op)?;
        Ok(Ok(existed == Some(true)))
    }

    /// Live sessions: every record minus those whose deadline has passed, found
    /// through the index (so the cost is proportional to the expired ones).
    fn count_live(
        sessions: &impl ReadableTableMetadata,
        expiry: &impl ReadableTable<(u64, &'static str), ()>,
        op: StoreOp,
    ) -> Result<u64, StoreError> {
        let now_ms = deadline_millis(SystemTime::now());
        let total = sessions.len().map_err(|e| db_error(op, e))?;
        let expired = expiry
            .range::<(u64, &str)>(..(now_ms + 1, ""))
            .map_err(|e| db_error(op, e))?
            .count() as u64;
        Ok(total.saturating_sub(expired))
    }

    pub(crate) fn count(&self) -> Result<u64, StoreError> {
        let op = StoreOp::Count;
        let txn = self.db.begin_read().map_err(|e| db_error(op, e))?;
        let sessions = txn.open_table(SESSIONS).map_err(|e| db_error(op, e))?;
        let expiry = txn.open_table(EXPIRY).map_err(|e| db_error(op, e))?;
        Self::count_live(&sessions, &expiry, op)
    }

    pub(crate) fn destroy_all(&self, txn: &WriteTransaction) -> Written<u64> {
        let op = StoreOp::DestroyAll;
        let live = {
            let sessions = txn.open_table(SESSIONS).map_err(|e| db_error(op, e))?;
            let expiry = txn.open_table(EXPIRY).map_err(|e| db_error(op, e))?;
            Self::count_live(&sessions, &expiry, op)?
        };
        txn.delete_table(SESSIONS).map_err(|e| db_error(op, e))?;
        txn.delete_table(EXPIRY).map_err(|e| db_error(op, e))?;
        txn.delete_multimap_table(USER_SESSIONS)
            .map_err(|e| db_error(op, e))?;
        txn.delete_multimap_table(SESSION_USERS)
            .map_err(|e| db_error(op, e))?;
        Tables::open(txn, op)?;
        Ok(Ok(live))
    }

    pub(crate) fn keys(&self, cursor: Option<&str>, limit: usize) -> Result<KeyPage, StoreError> {
        let op = StoreOp::Keys;
        let now = SystemTime::now();
        let limit = limit.max(1);
        let txn = self.db.begin_read().map_err(|e| db_error(op, e))?;
        let sessions = txn.open_table(SESSIONS).map_err(|e| db_error(op, e))?;
        let start = cursor.map_or(Bound::Unbounded, Bound::Excluded);
        let mut rows = sessions
            .range::<&str>((start, Bound::Unbounded))
            .map_err(|e| db_error(op, e))?;
        let mut page = KeyPage::default();
        for row in rows.by_ref() {
            let (key, value) = row.map_err(|e| db_error(op, e))?;
            // Only the header is read; damaged records are not live sessions.
            if matches!(format::decode_deadline(value.value()), Ok(d) if !is_expired(d, now)) {
                page.keys.push(StoreKey::from_stored(key.value()));
                if page.keys.len() == limit {
                    break;
                }
            }
        }
        if rows.next().is_some() {
            page.next = page.keys.last().map(|k| k.as_str().to_owned());
        }
        Ok(page)
    }

    /// Removes up to [`PURGE_BATCH`] expired sessions; returns their keys and whether
    /// more may be due.
    pub(crate) fn purge(&self, txn: &WriteTransaction) -> Written<(Vec<StoreKey>, bool)> {
        let op = StoreOp::PurgeExpired;
        let now_ms = deadline_millis(SystemTime::now());
        let mut t = Tables::open(txn, op)?;
        let mut due = Vec::new();
        for row in t
            .expiry
            .range::<(u64, &str)>(..(now_ms + 1, ""))
            .map_err(|e| db_error(op, e))?
            .take(PURGE_BATCH)
        {
            let (entry, _) = row.map_err(|e| db_error(op, e))?;
            let (deadline, key) = entry.value();
            due.push((deadline, key.to_owned()));
        }
        let mut expired = Vec::new();
        for (deadline, key) in &due {
            t.expiry
                .remove((*deadline, key.as_str()))
                .map_err(|e| db_error(op, e))?;
            // Every commit keeps the index exact; check the record's deadline anyway.
            let same = match t.sessions.get(key.as_str()).map_err(|e| db_error(op, e))? {
                Some(raw) => matches!(
                    format::decode_deadline(raw.value()),
                    Ok(Some(t)) if deadline_millis(t) == *deadline
                ),
                None => false,
            };
            if same {
                t.sessions
                    .remove(key.as_str())
                    .map_err(|e| db_error(op, e))?;
                t.unindex(key, op)?;
                expired.push(StoreKey::from_stored(key.as_str()));
            }
        }
        Ok(Ok((expired, due.len() == PURGE_BATCH)))
    }

    /// Whether the session `key` is indexed under `user` (in the latest commit).
    pub(crate) fn is_indexed(&self, user: &str, key: &str) -> Result<bool, StoreError> {
        let op = StoreOp::IndexUser;
        let txn = self.db.begin_read().map_err(|e| db_error(op, e))?;
        let owners = txn
            .open_multimap_table(SESSION_USERS)
            .map_err(|e| db_error(op, e))?;
        for owner in owners.get(key).map_err(|e| db_error(op, e))? {
            if owner.map_err(|e| db_error(op, e))?.value() == user {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Indexes the session `key` under `user`, if it is stored. A session destroyed
    /// since its commit gets no row: every row belongs to a stored session, and goes
    /// when that session goes.
    pub(crate) fn index_user(&self, txn: &WriteTransaction, user: &str, key: &str) -> Written<()> {
        let op = StoreOp::IndexUser;
        let mut t = Tables::open(txn, op)?;
        if t.sessions.get(key).map_err(|e| db_error(op, e))?.is_none() {
            return Ok(Ok(()));
        }
        t.users.insert(user, key).map_err(|e| db_error(op, e))?;
        t.owners.insert(key, user).map_err(|e| db_error(op, e))?;
        Ok(Ok(()))
    }

    /// Destroys every session indexed under `user` and the user's rows; returns the
    /// keys of the sessions that were live.
    pub(crate) fn destroy_user(
        &self,
        txn: &WriteTransaction,
        user: &str,
    ) -> Written<Vec<StoreKey>> {
        let op = StoreOp::DestroyUser;
        let now = SystemTime::now();
        let mut t = Tables::open(txn, op)?;
        let keys = collect(t.users.remove_all(user), op)?;
        let mut ended = Vec::new();
        for key in keys {
            // Also drops the rows of any other user the session was indexed under.
            if t.remove_session(&key, now, op)? == Some(true) {
                ended.push(StoreKey::from_stored(key));
            }
        }
        Ok(Ok(ended))
    }
}

/// Every table, opened in one write transaction.
struct Tables<'txn> {
    sessions: Table<'txn, &'static str, &'static [u8]>,
    expiry: Table<'txn, (u64, &'static str), ()>,
    users: MultimapTable<'txn, &'static str, &'static str>,
    owners: MultimapTable<'txn, &'static str, &'static str>,
}

impl<'txn> Tables<'txn> {
    fn open(txn: &'txn WriteTransaction, op: StoreOp) -> Result<Self, StoreError> {
        Ok(Self {
            sessions: txn.open_table(SESSIONS).map_err(|e| db_error(op, e))?,
            expiry: txn.open_table(EXPIRY).map_err(|e| db_error(op, e))?,
            users: txn
                .open_multimap_table(USER_SESSIONS)
                .map_err(|e| db_error(op, e))?,
            owners: txn
                .open_multimap_table(SESSION_USERS)
                .map_err(|e| db_error(op, e))?,
        })
    }

    /// Removes a session with its expiry entry and user index rows: `None` when there
    /// was none, else whether it was live.
    fn remove_session(
        &mut self,
        key: &str,
        now: SystemTime,
        op: StoreOp,
    ) -> Result<Option<bool>, StoreError> {
        let deadline = match self.sessions.remove(key).map_err(|e| db_error(op, e))? {
            None => return Ok(None),
            Some(raw) => format::decode_deadline(raw.value()),
        };
        self.unindex(key, op)?;
        Ok(Some(match deadline {
            Ok(deadline) => {
                if let Some(t) = deadline {
                    self.expiry
                        .remove((deadline_millis(t), key))
                        .map_err(|e| db_error(op, e))?;
                }
                !is_expired(deadline, now)
            }
            // A damaged record is removed like any other and counts as existing (an
            // expiry entry it may have is dropped by the purge).
            Err(_) => true,
        }))
    }

    /// Removes the user index rows of a session that is gone.
    fn unindex(&mut self, key: &str, op: StoreOp) -> Result<(), StoreError> {
        for user in collect(self.owners.remove_all(key), op)? {
            self.users
                .remove(user.as_str(), key)
                .map_err(|e| db_error(op, e))?;
        }
        Ok(())
    }
}

/// The strings of a multimap lookup, owned (the table is changed right after).
fn collect(
    values: Result<redb::MultimapValue<'_, &'static str>, redb::StorageError>,
    op: StoreOp,
) -> Result<Vec<String>, StoreError> {
    values
        .map_err(|e| db_error(op, e))?
        .map(|v| v.map(|v| v.value().to_owned()))
        .collect::<Result<_, _>>()
        .map_err(|e| db_error(op, e))
}
