//! `--store SPEC` (and `--cache N`): which store the demo runs on. The specs are
//! parsed by `sessio-spec`, shared with the `sessio` admin CLI.

use std::sync::Arc;

use sessio::store::Store;

/// Opens the store named by `spec` (`cookie` is handled by the caller: it is not a
/// server-side store), behind a cache of `cache` sessions if asked.
pub(crate) async fn open(spec: &str, cache: Option<usize>) -> Result<Arc<dyn Store>, String> {
    let Some(entries) = cache else {
        return sessio_spec::open(spec, sessio_spec::Mode::Serve)
            .await
            .map(sessio_spec::Opened::into_store)
            .map_err(|e| e.to_string());
    };
    let cached = sessio_spec::open_cached(spec, entries)
        .await
        .map_err(|e| e.to_string())?;
    // The change channel lives as long as the demo.
    std::mem::forget(cached.channel);
    Ok(Arc::new(cached.store))
}
