//! The user index ("log out everywhere"): one sorted set per user at
//! `{prefix}user:<escaped user>`, holding the store keys of the user's sessions scored
//! by their deadlines.

use std::time::{Duration, SystemTime};

use fred::{
    interfaces::{KeysInterface, SortedSetsInterface},
    types::Value,
};
use sessio::store::{StoreError, StoreKey, StoreOp};

use crate::store::{backend_error, into_bytes, ttl_arg, RedisStore, NAME};

/// What follows the prefix in every user index key.
const USER_TAG: &str = "user:";

/// How long a member outlives its score, and the index its latest score: covers the
/// milliseconds between a commit setting a session's TTL and the `index_user` call, so
/// that no live session is ever dropped from the index.
const GRACE: Duration = Duration::from_secs(60);

/// Above this many members without a deadline (which never age out), `index_user` checks
/// them for existence and drops the ones destroyed one by one (logouts).
const PRUNE_ABOVE: i64 = 32;

/// Bytes written as they are in a user index key; everything else is `%XX`.
fn plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'@')
}

/// `{prefix}user:<user>`, with every byte of `user` outside `[A-Za-z0-9-._@]`
/// percent-encoded. The encoding is injective (every `%` starts an escape), and the
/// result holds no `{` or `}`: no session key of any prefix (those end in `{<key>}`)
/// and no cluster hash tag can come out of a user name.
pub(crate) fn user_key(prefix: &str, user: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(prefix.len() + USER_TAG.len() + user.len());
    out.push_str(prefix);
    out.push_str(USER_TAG);
    for &b in user.as_bytes() {
        if plain(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out
}

/// Whether `redis_key` is a user index key of the store with `prefix` (for
/// `destroy_all`). Strict, so that a store whose prefix extends this one (`p:` and
/// `p:user:`) never claims the other's indexes: theirs hold a `:` after ours.
pub(crate) fn is_user_key(prefix: &str, redis_key: &str) -> bool {
    let Some(rest) = redis_key
        .strip_prefix(prefix)
        .and_then(|k| k.strip_prefix(USER_TAG))
    else {
        return false;
    };
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |j: usize| {
                bytes
                    .get(j)
                    .is_some_and(|b| b"0123456789ABCDEF".contains(b))
            };
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else if plain(bytes[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// A member of an index as a store key; `None` for anything this store never wrote.
fn member_key(v: Value) -> Option<StoreKey> {
    let bytes = into_bytes(v)?;
    let s = std::str::from_utf8(&bytes).ok()?;
    (!s.is_empty() && !s.contains(['{', '}'])).then(|| StoreKey::from_stored(s))
}

fn member_keys(reply: Value) -> Vec<StoreKey> {
    match reply {
        Value::Array(items) => items.into_iter().filter_map(member_key).collect(),
        _ => Vec::new(),
    }
}

pub(crate) async fn index_user(
    store: &RedisStore,
    user: &str,
    key: &StoreKey,
    expires_at: Option<SystemTime>,
) -> Result<(), StoreError> {
    let index = user_key(&store.inner.prefix, user);
    let ttl = ttl_arg(expires_at);
    let reply = store
        .run_script(
            StoreOp::IndexUser,
            &store.inner.index_user,
            index.clone(),
            |args| {
                args.push(Value::from(key.as_str()));
                args.push(ttl.clone());
                args.push(Value::from(GRACE.as_millis().to_string()));
            },
        )
        .await?;
    let Value::Integer(endless) = reply else {
        return Err(StoreError::corrupt(
            NAME,
            StoreOp::IndexUser,
            format!("unexpected reply {reply:?}"),
        ));
    };
    if endless > PRUNE_ABOVE {
        // Hygiene only: the session is indexed already, so a failure here is no
        // reason to fail the request; the next login retries.
        if let Err(e) = prune_endless(store, &index).await {
            tracing::warn!(error = %e, "sessio-redis: could not prune a user index");
        }
    }
    Ok(())
}

/// Drops the members without a deadline whose sessions are gone. One round trip per
/// step (`ZRANGEBYSCORE`, pipelined `EXISTS`, `ZREM`); each `EXISTS` goes to its
/// session's slot, so this works on a cluster, where a script could not reach them.
async fn prune_endless(store: &RedisStore, index: &str) -> Result<(), StoreError> {
    let op = StoreOp::IndexUser;
    let pool = &store.inner.pool;
    let reply: Value = store
        .bounded(op, pool.zrangebyscore(index, "+inf", "+inf", false, None))
        .await?;
    let keys = member_keys(reply);
    if keys.is_empty() {
        return Ok(());
    }
    let pipeline = pool.next().pipeline();
    for key in &keys {
        let _: () = pipeline
            .exists(store.redis_key(key))
            .await
            .map_err(|e| backend_error(op, e))?;
    }
    let exists: Vec<i64> = store.bounded(op, pipeline.all()).await?;
    let gone: Vec<&str> = keys
        .iter()
        .zip(exists)
        .filter(|(_, n)| *n == 0)
        .map(|(k, _)| k.as_str())
        .collect();
    if !gone.is_empty() {
        let _: i64 = store.bounded(op, pool.zrem(index, gone)).await?;
    }
    Ok(())
}

/// Reads the index, deletes every session in it, then removes exactly the members it
/// read: a session indexed meanwhile (a login during the logout) stays indexed, and if
/// the deletes fail the index is untouched, so a retry still finds every session.
pub(crate) async fn destroy_user(
    store: &RedisStore,
    user: &str,
) -> Result<Vec<StoreKey>, StoreError> {
    let op = StoreOp::DestroyUser;
    let pool = &store.inner.pool;
    let index = user_key(&store.inner.prefix, user);
    let reply: Value = store
        .bounded(
            op,
            pool.zrange(&index, 0_i64, -1_i64, None, false, None, false),
        )
        .await?;
    let Value::Array(members) = reply else {
        return Err(StoreError::corrupt(NAME, op, "unexpected ZRANGE reply"));
    };
    if members.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<StoreKey> = members.iter().cloned().filter_map(member_key).collect();
    let mut ended = Vec::new();
    if !keys.is_empty() {
        // One DEL per session (each on its own cluster slot), pipelined: one round trip.
        // DEL answers 0 for a key that has expired, so only live sessions count.
        let pipeline = pool.next().pipeline();
        for key in &keys {
            let _: () = pipeline
                .del(store.redis_key(key))
                .await
                .map_err(|e| backend_error(op, e))?;
        }
        let removed: Vec<i64> = store.bounded(op, pipeline.all()).await?;
        ended = keys
            .into_iter()
            .zip(removed)
            .filter(|(_, n)| *n > 0)
            .map(|(k, _)| k)
            .collect();
    }
    // Every member goes, also any this store did not write; an emptied sorted set is
    // deleted by Redis itself.
    let _: i64 = store.bounded(op, pool.zrem(&index, members)).await?;
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_keys_escape_everything_but_a_safe_set() {
        assert_eq!(user_key("p:", "alice"), "p:user:alice");
        assert_eq!(
            user_key("p:", "Al.ice-1_x@example.com"),
            "p:user:Al.ice-1_x@example.com"
        );
        assert_eq!(user_key("p:", "a:b*{c}%"), "p:user:a%3Ab%2A%7Bc%7D%25");
        assert_eq!(user_key("p:", "é"), "p:user:%C3%A9");
    }

    #[test]
    fn user_keys_are_injective_and_never_session_keys() {
        let users = ["a%41", "aA", "a:", "a%3A", "", "{x}", "%", "%25"];
        let keys: std::collections::HashSet<String> =
            users.iter().map(|u| user_key("p:", u)).collect();
        assert_eq!(keys.len(), users.len());
        for key in &keys {
            assert!(!key.contains(['{', '}']), "{key}");
        }
    }

    #[test]
    fn user_keys_are_recognised_strictly() {
        for user in ["alice", "a:b", "é", "{x}"] {
            assert!(is_user_key("p:", &user_key("p:", user)), "{user}");
        }
        assert!(!is_user_key("p:", "p:{abc}"));
        assert!(is_user_key("p:", "p:user:"));
        assert!(!is_user_key("p:", "p:use"));
        assert!(!is_user_key("p:", "q:user:alice"));
        assert!(!is_user_key("p:", "p:user:a%4"));
        assert!(!is_user_key("p:", "p:user:a%4g"));
        // Another store's index, under the prefix `p:user:`.
        assert!(!is_user_key("p:", &user_key("p:user:", "alice")));
        assert!(!is_user_key("p:user:", &user_key("p:", "alice")));
    }
}
