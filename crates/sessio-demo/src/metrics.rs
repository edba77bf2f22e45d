//! `/metrics`: sessio's metrics in the Prometheus text format. The demo installs the
//! Prometheus recorder; the library only records through the `metrics` facade.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sessio::Sessions;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder. Must run before `Sessions` is built: sessio
/// resolves its metric handles then.
pub(crate) fn install() -> Result<(), String> {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    let _ = HANDLE.set(handle);
    Ok(())
}

/// The scrape: counts the live sessions first (which sets `sessio_sessions_live`;
/// client-side stores cannot count and are skipped), then renders every metric.
pub(crate) async fn render(sessions: &Sessions) -> String {
    if let Err(e) = sessions.count().await {
        tracing::debug!(error = %e, "no live-session gauge");
    }
    HANDLE
        .get()
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}
