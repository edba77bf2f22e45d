//! `sessio`: the admin CLI for sessio stores. Counts, lists, shows, destroys and
//! purges sessions in any store the demo accepts (`redis://…`, `postgres://…`,
//! `redb:PATH`, …), and creates the SQL tables. `sessio --help` lists the commands.
//!
//! Exit codes: 0 done, 1 the operation failed or found nothing (no such session),
//! 2 bad usage, bad store spec or unreachable store (one line on stderr saying what
//! and where).

mod commands;
mod failure;
mod idhash;
mod output;

use clap::{Parser, Subcommand};

use crate::failure::Failure;

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(
    name = "sessio",
    version,
    about = "Inspect and manage the sessions of a sessio store"
)]
struct Args {
    /// The store: `redis://HOST[:PORT][/DB][?key_prefix=P]`, `redis-cluster://…`,
    /// `postgres://…`, `mysql://…`, `sqlite:PATH`, `redb:PATH` or `fs:DIR` (the specs
    /// of `sessio-demo --store`; `memory` lives inside one process and cannot be
    /// reached from here).
    #[arg(long, env = "SESSIO_STORE", global = true)]
    store: Option<String>,
    /// Print JSON (one document on stdout) instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// Key of the hash that stands for session ids in listings: listings made with
    /// the same key show the same short ids. Keep it secret when the listings leave
    /// your hands.
    #[arg(
        long,
        env = "SESSIO_HASH_KEY",
        default_value = "sessio-cli",
        hide_env_values = true,
        global = true
    )]
    hash_key: String,
    /// The key the application hashes session ids with at rest, in base64, if it
    /// sets one (`SessionsBuilder::hash_ids_with`): `show` and `destroy` then find
    /// sessions by their full id. Without it, full ids are hashed the default way
    /// (`KeysAtRest::hashed`).
    #[arg(long, env = "SESSIO_ID_KEY", hide_env_values = true, global = true)]
    id_key: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// How many live sessions the store holds.
    Count,
    /// Lists live sessions: short id, expiry, size and key names, a page at a time.
    List {
        /// Sessions per page.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Where to continue: the `next` cursor printed by the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Shows one session's values (JSON when they are JSON, else base64).
    Show {
        /// The session: its short id from `list`, or its full id.
        id: String,
    },
    /// Destroys one session.
    Destroy {
        /// The session: its short id from `list`, or its full id.
        id: String,
    },
    /// Destroys every session of the store (asks for --yes).
    DestroyAll {
        /// Really destroy every session.
        #[arg(long)]
        yes: bool,
    },
    /// Deletes expired sessions now (stores with native expiry, like Redis, have none).
    PurgeExpired,
    /// Creates or upgrades the tables of a SQL store.
    Migrate,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return Failure::Usage(format!("cannot start the runtime: {e}")).exit(),
    };
    match runtime.block_on(commands::run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(failure) => failure.exit(),
    }
}
