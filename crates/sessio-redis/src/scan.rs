//! `count`, `destroy_all` and `keys`: `SCAN MATCH {prefix}{*}` on every primary node
//! (`{prefix}*` for `destroy_all`, which also deletes the user indexes).

use fred::{
    interfaces::{ClientLike, ClusterInterface, KeysInterface},
    types::{
        config::{Options, Server},
        Value,
    },
};
use sessio::store::{KeyPage, StoreError, StoreKey, StoreOp};

use crate::{
    store::{into_bytes, RedisStore, NAME},
    users::is_user_key,
};

/// The `COUNT` hint of every `SCAN` step. Fixed, so that re-reading a step (to resume
/// a `keys` page in its middle) sees the same keys.
const SCAN_COUNT: u32 = 500;

/// The nodes to scan: the primaries of a cluster (sorted, so that an index in a `keys`
/// cursor names the same node on the next call), or `None` for the one server.
fn nodes(store: &RedisStore, op: StoreOp) -> Result<Vec<Option<Server>>, StoreError> {
    if !store.inner.clustered {
        return Ok(vec![None]);
    }
    let state =
        store.inner.pool.cached_cluster_state().ok_or_else(|| {
            StoreError::unavailable(NAME, op, "the cluster state is not known yet")
        })?;
    let mut primaries = state.unique_primary_nodes();
    primaries.sort_by(|a, b| (&*a.host, a.port).cmp(&(&*b.host, b.port)));
    Ok(primaries.into_iter().map(Some).collect())
}

/// `prefix` escaped for `MATCH`, then `rest`: `{*}` for sessions, `*` for everything
/// this store writes.
fn pattern(prefix: &str, rest: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + rest.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push_str(rest);
    out
}

/// The `MATCH` pattern of session keys.
fn sessions(store: &RedisStore) -> String {
    pattern(&store.inner.prefix, "{*}")
}

/// One `SCAN` step on `node`: the next cursor and the session keys found.
async fn step(
    store: &RedisStore,
    op: StoreOp,
    node: &Option<Server>,
    cursor: &str,
    pattern: &str,
) -> Result<(String, Vec<String>), StoreError> {
    let options = Options {
        cluster_node: node.clone(),
        ..Options::default()
    };
    let client = store.inner.pool.next().with_options(&options);
    let reply: Value = store
        .bounded(
            op,
            client.scan_page(
                cursor.to_owned(),
                pattern.to_owned(),
                Some(SCAN_COUNT),
                None,
            ),
        )
        .await?;
    let bad = || StoreError::corrupt(NAME, op, "unexpected SCAN reply");
    let Value::Array(mut parts) = reply else {
        return Err(bad());
    };
    if parts.len() != 2 {
        return Err(bad());
    }
    let keys = parts.pop().ok_or_else(bad)?;
    let next = parts.pop().and_then(into_bytes).ok_or_else(bad)?;
    let next = String::from_utf8(next.to_vec()).map_err(|_| bad())?;
    let Value::Array(keys) = keys else {
        return Err(bad());
    };
    let keys = keys
        .into_iter()
        .filter_map(into_bytes)
        .filter_map(|k| String::from_utf8(k.to_vec()).ok())
        .collect();
    Ok((next, keys))
}

/// The store key inside `{prefix}{<key>}`, or `None` for a key this store did not write.
fn store_key(prefix: &str, redis_key: &str) -> Option<StoreKey> {
    let inner = redis_key
        .strip_prefix(prefix)?
        .strip_prefix('{')?
        .strip_suffix('}')?;
    (!inner.is_empty() && !inner.contains(['{', '}'])).then(|| StoreKey::from_stored(inner))
}

pub(crate) async fn count(store: &RedisStore) -> Result<u64, StoreError> {
    let mut total = 0;
    for node in nodes(store, StoreOp::Count)? {
        let mut cursor = String::from("0");
        loop {
            let (next, keys) =
                step(store, StoreOp::Count, &node, &cursor, &sessions(store)).await?;
            total += keys
                .iter()
                .filter(|k| store_key(&store.inner.prefix, k).is_some())
                .count() as u64;
            if next == "0" {
                break;
            }
            cursor = next;
        }
    }
    Ok(total)
}

/// Deletes every session and every user index (counting only sessions): one `SCAN`
/// over everything under the prefix, so no more keyspace walking than sessions alone.
pub(crate) async fn destroy_all(store: &RedisStore) -> Result<u64, StoreError> {
    let op = StoreOp::DestroyAll;
    let prefix = &store.inner.prefix;
    let everything = pattern(prefix, "*");
    let mut total = 0;
    for node in nodes(store, op)? {
        let mut cursor = String::from("0");
        loop {
            let (next, keys) = step(store, op, &node, &cursor, &everything).await?;
            let keys: Vec<(String, bool)> = keys
                .into_iter()
                .filter_map(|k| {
                    let session = store_key(prefix, &k).is_some();
                    (session || is_user_key(prefix, &k)).then_some((k, session))
                })
                .collect();
            if !keys.is_empty() {
                // One DEL per key (each session is its own cluster slot), pipelined:
                // one round trip per SCAN step.
                let pipeline = store.inner.pool.next().pipeline();
                for (key, _) in &keys {
                    let _: () = pipeline
                        .del(key.as_str())
                        .await
                        .map_err(|e| crate::store::backend_error(op, e))?;
                }
                let removed: Vec<i64> = store.bounded(op, pipeline.all()).await?;
                total += keys
                    .iter()
                    .zip(removed)
                    .filter(|((_, session), n)| *session && *n > 0)
                    .count() as u64;
            }
            if next == "0" {
                break;
            }
            cursor = next;
        }
    }
    Ok(total)
}

/// Where a `keys` page resumes: node index, `SCAN` cursor, and, when the previous page
/// ended inside that `SCAN` step, the position reached in it. Encoded as
/// `node.cursor` or `node.cursor.position` (hex).
///
/// A step's keys are listed in [`position`] order, and a page that ends inside a step
/// records the position of its last key; the next page re-reads the same step and lists
/// the keys after it. Re-reading can return the keys in another order (Redis rehashes
/// its tables incrementally) or without a key deleted meanwhile; ordering by position,
/// not counting, keeps both from listing a key twice or skipping one. The position is a
/// hash, so the cursor does not reveal the session key (a secret, like the id).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    node: usize,
    scan: String,
    after: Option<u64>,
}

impl Cursor {
    fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split('.');
        let node = parts.next()?.parse().ok()?;
        let scan = parts.next()?;
        let after = match parts.next() {
            None => None,
            Some(hex) => Some(u64::from_str_radix(hex, 16).ok()?),
        };
        if parts.next().is_some() || scan.is_empty() || !scan.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Cursor {
            node,
            scan: scan.to_owned(),
            after,
        })
    }

    fn encode(&self) -> String {
        match self.after {
            None => format!("{}.{}", self.node, self.scan),
            Some(after) => format!("{}.{}.{after:x}", self.node, self.scan),
        }
    }
}

/// A stable order of keys within one `SCAN` step: 64-bit FNV-1a of the store key
/// (fixed forever, unlike std's hasher, so cursors survive upgrades).
fn position(key: &StoreKey) -> u64 {
    key.as_str().bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub(crate) async fn keys(
    store: &RedisStore,
    cursor: Option<&str>,
    limit: usize,
) -> Result<KeyPage, StoreError> {
    let op = StoreOp::Keys;
    let limit = limit.max(1);
    let nodes = nodes(store, op)?;
    let mut at = match cursor {
        None => Cursor {
            node: 0,
            scan: "0".into(),
            after: None,
        },
        Some(s) => Cursor::parse(s)
            .ok_or_else(|| StoreError::corrupt(NAME, op, "not a cursor of this store"))?,
    };
    let mut out = Vec::new();
    while let Some(node) = nodes.get(at.node) {
        let (next, found) = step(store, op, node, &at.scan, &sessions(store)).await?;
        let mut found: Vec<(u64, StoreKey)> = found
            .iter()
            .filter_map(|k| store_key(&store.inner.prefix, k))
            .map(|k| (position(&k), k))
            .filter(|(p, _)| !matches!(at.after, Some(after) if *p <= after))
            .collect();
        found.sort_unstable_by_key(|a| a.0);
        found.dedup_by(|a, b| a.1 == b.1);
        let room = limit - out.len();
        if found.len() > room {
            // The page is full in the middle of this step: resume inside it.
            found.truncate(room);
            at.after = found.last().map(|(p, _)| *p);
            out.extend(found.into_iter().map(|(_, k)| k));
            return Ok(KeyPage {
                keys: out,
                next: Some(at.encode()),
            });
        }
        out.extend(found.into_iter().map(|(_, k)| k));
        at.after = None;
        if next == "0" {
            at.node += 1;
            at.scan = "0".into();
        } else {
            at.scan = next;
        }
        if out.len() == limit {
            break;
        }
    }
    let next = (at.node < nodes.len()).then(|| at.encode());
    Ok(KeyPage { keys: out, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_escape_glob_characters() {
        assert_eq!(pattern("sessio:", "{*}"), "sessio:{*}");
        assert_eq!(pattern("a*b?[c]\\", "*"), "a\\*b\\?\\[c\\]\\\\*");
    }

    #[test]
    fn store_keys_are_extracted_strictly() {
        let k = store_key("p:", "p:{abc}").expect("a session key");
        assert_eq!(k.as_str(), "abc");
        assert!(store_key("p:", "p:abc").is_none());
        assert!(store_key("p:", "q:{abc}").is_none());
        assert!(store_key("p:", "p:{}").is_none());
        assert!(store_key("p:", "p:{a}b}").is_none());
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        for c in [
            Cursor {
                node: 2,
                scan: "12345".into(),
                after: Some(u64::MAX),
            },
            Cursor {
                node: 0,
                scan: "0".into(),
                after: None,
            },
        ] {
            assert_eq!(Cursor::parse(&c.encode()), Some(c));
        }
        for bad in [
            "", "1", "1.x", "1.2.x", "a.1.1", "1.1.1.1", "1..1", "1.2.", "-1.2",
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
    }
}
