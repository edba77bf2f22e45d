//! `--store SPEC` (and `--cache N`): which store the demo runs on. The specs are
//! parsed by `sessio-spec`, shared with the `sessio` admin CLI.

use std::sync::Arc;

use sessio::store::Store;

/// Opens the store named by `spec` (`cookie` is handled by the caller: it is not a
/// server-side store), behind a cache of `cache` sessions if asked.
pub(crate) async fn open(spec: &str, cache: Option<usize>) -> Result<Arc<dyn Store>, String> {
    let opened = sessio_spec::open(spec, sessio_spec::Mode::Serve)
        .await
        .map_err(|e| e.to_string())?;
    let Some(entries) = cache else {
        return Ok(opened.into_store());
    };
    let cached = opened.cached(entries).await.map_err(|e| e.to_string())?;
    // The change channel lives as long as the demo.
    std::mem::forget(cached.channel);
    Ok(Arc::new(cached.store))
}
