//! Helpers shared by the integration tests: unique namespaces on the real servers.

#![allow(dead_code, unreachable_pub)]

use std::{
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc, Mutex,
    },
    time::{SystemTime, UNIX_EPOCH},
};

pub const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const PG_BASE: &str = "postgres://postgres@127.0.0.1:5432";
pub const MARIA_ADMIN: &str = "mysql://root@127.0.0.1:3306";

/// A name no other test (in this or a concurrent run) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "sessio_t_{prefix}_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Names created by a test, dropped at its end.
pub type Created = Arc<Mutex<Vec<String>>>;
