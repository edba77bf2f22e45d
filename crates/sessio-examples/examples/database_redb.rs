//! Iris's database examples (BoltDB, Badger) with redb: sessions in one file on local
//! disk, no server to run; they survive a restart.
//!
//! ```sh
//! DB_PATH=/tmp/sessions.redb cargo run -p sessio-examples --example database-redb
//! # /set?key=name&value=iris, /get?key=name, /incr, /destroy; restart, /get?key=name
//! ```

use sessio::Sessions;
use sessio_examples::{database_app, serve};

/// Opens (or creates) the database file.
pub(crate) async fn open(path: &str) -> Result<sessio_redb::RedbStore, sessio::StoreError> {
    sessio_redb::RedbStore::open(path).await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::var("DB_PATH").unwrap_or_else(|_| "sessions.redb".into());
    let store = open(&path).await?;
    let sessions = Sessions::builder().store(store).build()?;
    serve(database_app(&sessions)).await
}
