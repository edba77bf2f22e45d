//! The two tables of a sessio redb database.

use redb::TableDefinition;

/// Session key → encoded record ([`sessio_fs::format`]).
pub(crate) const SESSIONS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("sessio_sessions_v1");
/// (deadline in ms since the Unix epoch, session key) for every session with a
/// deadline: the expiry index, read in deadline order by the purge and by `count`.
pub(crate) const EXPIRY: TableDefinition<(u64, &str), ()> =
    TableDefinition::new("sessio_expiry_v1");
