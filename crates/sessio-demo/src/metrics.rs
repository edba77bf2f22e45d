//! `/metrics`: sessio's metrics in the Prometheus text format. The demo installs the
//! Prometheus recorder; the library only records through the `metrics` facade.

use std::{sync::OnceLock, time::Duration};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sessio::Sessions;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// How often histogram samples are folded into their summaries.
const UPKEEP: Duration = Duration::from_secs(5);

/// Installs the Prometheus recorder. Must run before `Sessions` is built: sessio
/// resolves its metric handles then.
///
/// `install_recorder` keeps every histogram sample until upkeep folds it into its
/// summary; nothing does that by itself, so a thread runs upkeep every few seconds.
/// Without it memory grows with every request until someone scrapes `/metrics`
/// (the soak showed 1.2 MB/s at 10k requests/s).
pub(crate) fn install() -> Result<(), String> {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP);
            upkeep.run_upkeep();
        })
        .map_err(|e| format!("cannot start the metrics upkeep thread: {e}"))?;
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
