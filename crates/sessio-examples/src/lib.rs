//! Runnable examples for sessio, one per example of Iris sessions and go-sessions
//! (`cargo run -p sessio-examples --example NAME`); each listens on `$ADDR` (default
//! `127.0.0.1:8080`) and prints `listening on http://ADDR`.
//!
//! | example | mirrors | shows |
//! | --- | --- | --- |
//! | `overview` | Iris `sessions/overview` | login / secret / logout on axum |
//! | `actix-overview` | the same | the same on actix-web |
//! | `standalone` | go-sessions `Start(w, r)` | plain hyper 1.x, no adapter |
//! | `securecookie` | Iris `sessions/securecookie` | an encrypted, authenticated id cookie |
//! | `database-redb` | Iris `sessions/database` (BoltDB, Badger) | sessions in a local file, no server |
//! | `database-redis` | Iris `sessions/database/redis` | sessions in Redis |
//! | `flash-messages` | Iris `sessions/flash-messages` | values that live until read once |
//! | `multiple-sessions` | gorilla `sessions` | two managers (server- and client-side), two layers, one request |
//!
//! Pending: a SQL database example (its store crate is being built). `database-redis`
//! and its test need Redis on `127.0.0.1:6379` (`scripts/services/redis.sh`).
//!
//! This library is empty; it exists so that `cargo test -p sessio-examples` runs
//! `tests/examples.rs`.
