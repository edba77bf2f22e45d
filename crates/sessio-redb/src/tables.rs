//! The tables of a sessio redb database.
//!
//! Every table is created when the store opens, so a database written by an earlier
//! version (without the user index tables) opens as it is and gains them then.

use redb::{MultimapTableDefinition, TableDefinition};

/// Session key → encoded record ([`sessio_fs::format`]).
pub(crate) const SESSIONS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("sessio_sessions_v1");
/// (deadline in ms since the Unix epoch, session key) for every session with a
/// deadline: the expiry index, read in deadline order by the purge and by `count`.
pub(crate) const EXPIRY: TableDefinition<(u64, &str), ()> =
    TableDefinition::new("sessio_expiry_v1");
/// User → keys of their sessions: the user index that `destroy_user` reads.
pub(crate) const USER_SESSIONS: MultimapTableDefinition<&str, &str> =
    MultimapTableDefinition::new("sessio_user_sessions_v1");
/// Session key → users it is indexed under: the reverse of [`USER_SESSIONS`], so that
/// destroying or purging a session removes its index rows without a scan.
pub(crate) const SESSION_USERS: MultimapTableDefinition<&str, &str> =
    MultimapTableDefinition::new("sessio_session_users_v1");
