//! `--store SPEC`: which store the demo runs on.

use std::sync::Arc;

use sessio::{store::Store, MemoryStore};

/// Opens the store named by `spec`.
pub(crate) async fn open(spec: &str) -> Result<Arc<dyn Store>, String> {
    match spec {
        "memory" => Ok(Arc::new(MemoryStore::new())),
        other => Err(format!(
            "unknown store spec {other:?}; this build knows: memory, cookie"
        )),
    }
}
