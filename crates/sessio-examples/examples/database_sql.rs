//! gorilla/sessions' SQL stores: sessions in SQLite (a file, the default), PostgreSQL or
//! MySQL/MariaDB, in a table the store creates (`migrate`) and sweeps.
//!
//! ```sh
//! DATABASE_URL=sqlite:/tmp/sessions.db cargo run -p sessio-examples --example database-sql
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo run -p sessio-examples --example database-sql
//! # /set?key=name&value=iris, /get?key=name, /incr, /destroy
//! ```

use std::sync::Arc;

use sessio::{store::Store, Sessions};
use sessio_examples::{database_app, serve};

/// Opens the store a URL names: `sqlite:PATH`, `postgres://…` or `mysql://…`.
pub(crate) async fn open(url: &str) -> Result<Arc<dyn Store>, sessio::StoreError> {
    Ok(if url.starts_with("postgres") {
        Arc::new(sessio_sql::PostgresStore::connect(url).await?)
    } else if url.starts_with("mysql") {
        Arc::new(sessio_sql::MySqlStore::connect(url).await?)
    } else {
        Arc::new(sessio_sql::SqliteStore::connect(url).await?)
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite:sessions.db".into());
    let sessions = Sessions::builder()
        .shared_store(open(&url).await?)
        .build()?;
    serve(database_app(&sessions)).await
}
