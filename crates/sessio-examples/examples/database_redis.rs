//! Iris's Redis database example: sessions in Redis, shared by every instance of the
//! app, with atomic increments done by Redis itself.
//!
//! ```sh
//! REDIS_URL=redis://127.0.0.1:6379 cargo run -p sessio-examples --example database-redis
//! # /set?key=name&value=iris, /get?key=name, /incr, /destroy
//! ```

use sessio::Sessions;
use sessio_examples::{database_app, serve};

/// Connects to Redis; every key this app writes starts with `prefix`.
pub(crate) async fn open(
    url: &str,
    prefix: &str,
) -> Result<sessio_redis::RedisStore, sessio_redis::Error> {
    sessio_redis::RedisStore::builder(url)?
        .key_prefix(prefix)
        .connect()
        .await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let store = open(&url, "sessio-example:").await?;
    let sessions = Sessions::builder().store(store).build()?;
    serve(database_app(&sessions)).await
}
