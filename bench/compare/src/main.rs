//! `compare-server`: one binary, one variant per session library, identical routes, so
//! that `run.sh` (wrk) and `instr.sh` (callgrind) can compare sessio with tower-sessions
//! and actix-session on the same machine in the same run.
//!
//! ```text
//! compare-server --variant V --addr 127.0.0.1:18000 [--workers N] [--redis URL]
//! compare-server --list
//! ```
//!
//! Routes (every variant):
//!
//! - `GET /hit`: read `counter` from the session (0 if absent), write counter+1, answer
//!   the new number. Bare variants use a global atomic instead of a session.
//! - `GET /load`: read `counter` only (no write; nothing to commit).
//! - `GET /set`: set the key `last` to a new number (no read) and commit.
//! - `GET /incr`: increment `counter` by one and answer it. sessio uses
//!   `Session::increment` (atomic in the store); tower-sessions and actix-session have no
//!   increment, so theirs is a get + insert, the same work as `/hit`.
//! - `GET /healthz`: `ok`, outside the session layer (start-up probe).
//!
//! The sessio-axum variants run on every store: memory, Redis (with and without the
//! tiered cache), and the persistent ones, each fresh per start: redb, filesystem and
//! SQLite in a temporary directory (removed at exit), PostgreSQL and MariaDB in the
//! `test` databases at `COMPARE_POSTGRES` / `COMPARE_MYSQL` (defaults: the local
//! servers), emptied first.
//!
//! Once listening, the server prints `compare-server VARIANT listening on http://ADDR`
//! on stdout; SIGTERM or SIGINT stops it with a normal exit (callgrind needs one to
//! write its totals).

mod actix_variants;
mod axum_variants;

use std::{
    io::Write,
    net::SocketAddr,
    process::ExitCode,
    sync::atomic::{AtomicU64, Ordering},
};

/// Every variant, in the order `--list` prints them (run.sh's default order).
const VARIANTS: &[&str] = &[
    "axum-bare",
    "axum-bare-redis",
    "tower-memory",
    "sessio-axum-memory",
    "tower-redis",
    "sessio-axum-redis",
    "sessio-axum-redis-cached",
    "sessio-axum-redb",
    "sessio-axum-fs",
    "sessio-axum-sqlite",
    "sessio-axum-postgres",
    "sessio-axum-mysql",
    "actix-bare",
    "actix-session-cookie",
    "sessio-actix-cookie",
    "sessio-actix-memory",
    "actix-session-redis",
    "sessio-actix-redis",
];

/// The bare variants' stand-in for a session counter.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Next value of the bare counter.
fn bare_next() -> u64 {
    COUNTER.fetch_add(1, Ordering::Relaxed) + 1
}

/// Requests seen by `/mostly`.
static MOSTLY: AtomicU64 = AtomicU64::new(0);

/// Whether this `/mostly` request writes: one in ten (the issue's read-mostly mix).
fn mostly_writes() -> bool {
    MOSTLY.fetch_add(1, Ordering::Relaxed) % 10 == 9
}

/// A fresh value for `/set`, so that every `/set` really changes the session.
static SET_VALUE: AtomicU64 = AtomicU64::new(0);

/// Next value written by `/set`.
fn set_value() -> u64 {
    SET_VALUE.fetch_add(1, Ordering::Relaxed) + 1
}

/// Command-line options.
#[derive(Debug)]
struct Opts {
    variant: String,
    addr: SocketAddr,
    workers: usize,
    redis: String,
}

const USAGE: &str =
    "usage: compare-server --variant V --addr A [--workers N] [--redis URL] | --list";

/// What the command line asks for.
#[derive(Debug)]
enum Command {
    /// `--list`: print the variants.
    List,
    /// Serve one variant.
    Serve(Opts),
}

/// Parses the command line; `Err` carries the message for stderr.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut variant = None;
    let mut addr = None;
    let mut workers = 1;
    let mut redis = "redis://127.0.0.1:6379".to_owned();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            None => (arg, None),
        };
        if key == "--list" {
            return Ok(Command::List);
        }
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("{key} needs a value\n{USAGE}"))?;
        match key.as_str() {
            "--variant" => variant = Some(value),
            "--addr" => addr = Some(value.parse().map_err(|e| format!("--addr {value}: {e}"))?),
            "--workers" => {
                workers = value
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("--workers {value}: a positive number"))?
            }
            "--redis" => redis = value,
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    let variant = variant.ok_or_else(|| format!("--variant is required\n{USAGE}"))?;
    if !VARIANTS.contains(&variant.as_str()) {
        return Err(format!(
            "unknown variant {variant}; known: {}",
            VARIANTS.join(", ")
        ));
    }
    let addr = addr.ok_or_else(|| format!("--addr is required\n{USAGE}"))?;
    Ok(Command::Serve(Opts {
        variant,
        addr,
        workers,
        redis,
    }))
}

/// The start-up line scripts wait for.
fn announce(opts: &Opts, local: SocketAddr) {
    let mut out = std::io::stdout().lock();
    // A failed write to stdout only costs the scripts their probe; nothing to recover.
    let _ = writeln!(
        out,
        "compare-server {} listening on http://{local}",
        opts.variant
    );
    let _ = out.flush();
}

fn main() -> ExitCode {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Serve(opts)) => opts,
        Ok(Command::List) => {
            println!("{}", VARIANTS.join("\n"));
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("compare-server: {message}");
            return ExitCode::from(2);
        }
    };
    let result = if opts.variant.starts_with("actix") || opts.variant.starts_with("sessio-actix") {
        actix_web::rt::System::new().block_on(actix_variants::serve(opts))
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(opts.workers)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| rt.block_on(axum_variants::serve(opts)))
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("compare-server: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_every_option() {
        let Ok(Command::Serve(o)) = parse_args(args(&[
            "--variant",
            "tower-redis",
            "--addr=127.0.0.1:18001",
            "--workers",
            "2",
            "--redis",
            "redis://127.0.0.1:18079",
        ])) else {
            panic!("valid arguments rejected");
        };
        assert_eq!(o.variant, "tower-redis");
        assert_eq!(o.addr.port(), 18001);
        assert_eq!(o.workers, 2);
        assert_eq!(o.redis, "redis://127.0.0.1:18079");
    }

    #[test]
    fn rejects_unknown_variant_and_zero_workers() {
        assert!(parse_args(args(&["--variant", "nope", "--addr", "127.0.0.1:1"])).is_err());
        assert!(parse_args(args(&[
            "--variant",
            "axum-bare",
            "--addr",
            "127.0.0.1:1",
            "--workers",
            "0"
        ]))
        .is_err());
    }
}
