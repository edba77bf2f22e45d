//! `sessio-demo`: a small web app that shows every sessio feature and that the tests
//! drive over real HTTP. `sessio-demo --help` lists the flags; the routes are listed on
//! its home page and in the README.

mod actix_app;
mod app;
mod error;
mod hyper_app;
mod metrics;
mod stores;

use std::{net::SocketAddr, time::Duration};

use clap::{Parser, ValueEnum};
use sessio::{
    secure::{Key, Keys},
    store::CookieStore,
    Sessions,
};
use tracing_subscriber::EnvFilter;

/// Command-line flags. These are a contract: scripts and tests rely on them.
#[derive(Debug, Parser)]
#[command(name = "sessio-demo", version, about = "The sessio demo web app")]
struct Args {
    /// Address to listen on; port 0 picks a free port (printed at start-up).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Session store: `memory` (default), or `cookie` (client-side sessions, encrypted
    /// with the keys from --key-file / SESSIO_KEYS, or a random key per run).
    #[arg(long, default_value = "memory")]
    store: String,
    /// File with one base64 key (>= 32 bytes) per line, newest first: signs the id
    /// cookie of server-side stores and seals `--store cookie`. Overrides SESSIO_KEYS.
    #[arg(long)]
    key_file: Option<std::path::PathBuf>,
    /// Idle timeout in seconds (sliding); 0 disables it.
    #[arg(long, default_value_t = 1800)]
    idle: u64,
    /// Absolute session lifetime in seconds; 0 (default) disables it.
    #[arg(long, default_value_t = 0)]
    absolute: u64,
    /// The session cookie's name.
    #[arg(long, default_value = "sessio")]
    cookie_name: String,
    /// Tokio worker threads (default: one per core); with actix, its worker threads.
    #[arg(long)]
    workers: Option<usize>,
    /// Put an in-process cache with room for N sessions in front of --store (Redis and
    /// PostgreSQL keep it coherent across instances; see `sessio-tiered`).
    #[arg(long, value_name = "N")]
    cache: Option<usize>,
    /// The web framework serving the routes (the same routes on every one).
    #[arg(long, value_enum, default_value_t = Framework::Axum)]
    framework: Framework,
}

/// `--framework`: which adapter serves the demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Framework {
    /// axum with `sessio-axum`.
    Axum,
    /// actix-web with `sessio-actix`.
    Actix,
    /// Plain hyper 1.x with no adapter: `Sessions::start` and `Session::finish` by hand.
    Hyper,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(n) = args.workers {
        runtime.worker_threads(n.max(1));
    }
    let result = runtime
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(run(args)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("sessio-demo: {message}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    // Before `Sessions` is built: sessio resolves its metric handles then.
    metrics::install()?;
    let keys = keys(args.key_file.as_deref())?;
    let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
    let mut builder = Sessions::builder()
        .cookie_name(args.cookie_name)
        .idle_timeout(secs(args.idle))
        .absolute_timeout(secs(args.absolute));
    if args.store == "cookie" {
        let keys = keys.unwrap_or_else(|| {
            tracing::warn!("no --key-file or SESSIO_KEYS: sealing cookies with a random key, sessions end on restart");
            Keys::new(Key::generate())
        });
        builder = builder.cookie_store(CookieStore::new(keys));
    } else {
        let store = stores::open(&args.store, args.cache)
            .await
            .map_err(|e| format!("cannot open store {:?}: {e}", args.store))?;
        builder = builder.shared_store(store);
        if let Some(keys) = keys {
            builder = builder.signed_ids(keys);
        }
    }
    let sessions = builder.build().map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on http://{local}");
    let served = async {
        match args.framework {
            Framework::Axum => axum::serve(listener, app::router(sessions))
                .await
                .map_err(|e| e.to_string()),
            Framework::Actix => actix_app::serve(listener, sessions, args.workers).await,
            Framework::Hyper => hyper_app::serve(listener, sessions).await,
        }
    };
    tokio::select! {
        served = served => served,
        () = shutdown_signal() => Ok(()),
    }
}

/// Keys from `--key-file`, else from `SESSIO_KEYS` (comma-separated base64, newest first).
fn keys(file: Option<&std::path::Path>) -> Result<Option<Keys>, String> {
    if let Some(path) = file {
        return Keys::from_file(path).map(Some).map_err(|e| e.to_string());
    }
    match std::env::var("SESSIO_KEYS") {
        Ok(list) if !list.trim().is_empty() => Keys::from_base64_list(&list)
            .map(Some)
            .map_err(|e| format!("SESSIO_KEYS: {e}")),
        _ => Ok(None),
    }
}

/// SIGINT or SIGTERM: stop at once (benchmarks stop the server with SIGTERM and need a
/// normal exit).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
