//! `--store SPEC`: which store the demo runs on. The specs are parsed by
//! `sessio-spec`, shared with the `sessio` admin CLI.

use std::sync::Arc;

use sessio::store::Store;

/// Opens the store named by `spec` (`cookie` is handled by the caller: it is not a
/// server-side store).
pub(crate) async fn open(spec: &str) -> Result<Arc<dyn Store>, String> {
    sessio_spec::open(spec, sessio_spec::Mode::Serve)
        .await
        .map(sessio_spec::Opened::into_store)
        .map_err(|e| e.to_string())
}
