//! The subcommands, each printing a table or one JSON document.

use std::{sync::Arc, time::Duration};

use base64::Engine as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Map, Value};
use sessio::{
    secure::Key,
    store::{Record, Store, StoreKey},
    KeysAtRest,
};
use sessio_spec::{Mode, SpecError};

use crate::{
    failure::{chain, Failure},
    idhash::{looks_short, short_id},
    output::{table, unix_secs, utc},
    Args, Command,
};

/// What every command needs: the store, its printable name and the output options.
struct Ctx {
    opened: sessio_spec::Opened,
    /// The spec with its password hidden, for messages.
    name: String,
    json: bool,
    hash_key: String,
    /// How the application turns full ids into store keys.
    keys_at_rest: KeysAtRest,
}

impl Ctx {
    fn store(&self) -> &Arc<dyn Store> {
        self.opened.store()
    }

    fn fail(&self, e: &sessio::StoreError) -> Failure {
        Failure::store(&self.name, e)
    }

    fn short(&self, key: &StoreKey) -> String {
        short_id(&self.hash_key, key.as_str())
    }
}

/// Opens the store and runs the command.
pub(crate) async fn run(args: Args) -> Result<(), Failure> {
    let spec = args.store.ok_or_else(|| {
        Failure::Usage("no store given: pass --store SPEC or set SESSIO_STORE".into())
    })?;
    let name = sessio_spec::redact(&spec);
    let keys_at_rest = match args.id_key.as_deref() {
        None => KeysAtRest::hashed(),
        Some(key) => KeysAtRest::hashed_with(
            &Key::from_base64(key)
                .map_err(|e| Failure::Usage(format!("--id-key / SESSIO_ID_KEY: {e}")))?,
        ),
    };
    if spec == "memory" || spec == "cookie" {
        return Err(Failure::Usage(format!(
            "store {spec:?} cannot be reached from another process (its sessions live in the \
             application's memory or in browser cookies); pick a shared store: {}",
            shared_specs()
        )));
    }
    let opened = sessio_spec::open(&spec, Mode::Admin)
        .await
        .map_err(|e| match &e {
            SpecError::Unknown { .. } => Failure::Usage(e.to_string()),
            _ => Failure::Usage(format!("cannot open store {name}: {}", chain(&e))),
        })?;
    let ctx = Ctx {
        opened,
        name,
        json: args.json,
        hash_key: args.hash_key,
        keys_at_rest,
    };
    match args.command {
        Command::Count => count(&ctx).await,
        Command::List { limit, cursor } => list(&ctx, limit, cursor.as_deref()).await,
        Command::Show { id } => show(&ctx, &id).await,
        Command::Destroy { id } => destroy(&ctx, &id).await,
        Command::DestroyAll { yes } => destroy_all(&ctx, yes).await,
        Command::PurgeExpired => purge_expired(&ctx).await,
        Command::Migrate => migrate(&ctx).await,
    }
}

/// The specs this build knows, minus the ones that live inside one process.
fn shared_specs() -> String {
    sessio_spec::known()
        .split(", ")
        .filter(|s| !matches!(*s, "memory" | "cookie"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_json(value: &Value) {
    println!("{value}");
}

async fn count(ctx: &Ctx) -> Result<(), Failure> {
    let n = ctx.store().count().await.map_err(|e| ctx.fail(&e))?;
    if ctx.json {
        print_json(&json!({ "store": ctx.store().name(), "count": n }));
    } else {
        println!("{n}");
    }
    Ok(())
}

/// Bytes a record holds: every key and value (reserved keys included).
fn size(record: &Record) -> usize {
    record.values.iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// Key names, sorted, for listings.
fn key_names(record: &Record) -> Vec<&str> {
    let mut names: Vec<&str> = record.values.keys().collect();
    names.sort_unstable();
    names
}

fn expires_json(record: &Record) -> Value {
    record
        .expires_at
        .map_or(Value::Null, |t| json!(unix_secs(t)))
}

fn expires_text(record: &Record) -> String {
    record
        .expires_at
        .map_or_else(|| "never".to_owned(), |t| utc(unix_secs(t)))
}

async fn list(ctx: &Ctx, limit: usize, cursor: Option<&str>) -> Result<(), Failure> {
    if limit == 0 {
        return Err(Failure::Usage("--limit must be at least 1".into()));
    }
    let page = ctx
        .store()
        .keys(cursor, limit)
        .await
        .map_err(|e| ctx.fail(&e))?;
    let mut sessions = Vec::with_capacity(page.keys.len());
    for key in &page.keys {
        // A session listed a moment ago may expire or be destroyed before we load it.
        if let Some(record) = ctx.store().load(key).await.map_err(|e| ctx.fail(&e))? {
            sessions.push((ctx.short(key), record));
        }
    }
    if ctx.json {
        let list: Vec<Value> = sessions
            .iter()
            .map(|(id, r)| {
                json!({
                    "id": id,
                    "expires_at": expires_json(r),
                    "size": size(r),
                    "keys": key_names(r),
                })
            })
            .collect();
        print_json(&json!({ "sessions": list, "next": page.next }));
    } else {
        let rows: Vec<Vec<String>> = sessions
            .iter()
            .map(|(id, r)| {
                vec![
                    id.clone(),
                    expires_text(r),
                    size(r).to_string(),
                    key_names(r).join(","),
                ]
            })
            .collect();
        table(&["ID", "EXPIRES", "BYTES", "KEYS"], &rows);
        if let Some(next) = &page.next {
            println!("more: --cursor {next}");
        }
    }
    Ok(())
}

/// Finds a session by its store key, by its cookie id (stored under the keyed hash of
/// `--id-key`, or the default one, see `sessio::KeysAtRest`), or by the short id `list`
/// shows (a scan of every key).
async fn find(ctx: &Ctx, id: &str) -> Result<Option<(StoreKey, Record)>, Failure> {
    let hashed = sessio::SessionId::parse(id).map(|sid| StoreKey::derive(&sid, &ctx.keys_at_rest));
    for key in std::iter::once(StoreKey::from_stored(id)).chain(hashed) {
        if let Some(record) = ctx.store().load(&key).await.map_err(|e| ctx.fail(&e))? {
            return Ok(Some((key, record)));
        }
    }
    if !looks_short(id) {
        return Ok(None);
    }
    let mut cursor: Option<String> = None;
    loop {
        let page = ctx
            .store()
            .keys(cursor.as_deref(), 1000)
            .await
            .map_err(|e| ctx.fail(&e))?;
        for key in page.keys {
            if ctx.short(&key) == id {
                let record = ctx.store().load(&key).await.map_err(|e| ctx.fail(&e))?;
                return Ok(record.map(|r| (key, r)));
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(None),
        }
    }
}

fn not_found(ctx: &Ctx, id: &str) -> Failure {
    let shown = if looks_short(id) {
        id.to_owned()
    } else {
        // Never echo a full session id.
        short_id(&ctx.hash_key, id)
    };
    Failure::Failed(format!("{}: no live session {shown}", ctx.name))
}

/// A value as JSON when it parses as JSON, else as base64.
fn decode(bytes: &[u8]) -> (&'static str, Value) {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => ("json", v),
        Err(_) => (
            "base64",
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
        ),
    }
}

async fn show(ctx: &Ctx, id: &str) -> Result<(), Failure> {
    let Some((key, record)) = find(ctx, id).await? else {
        return Err(not_found(ctx, id));
    };
    let names = key_names(&record);
    if ctx.json {
        let mut values = Map::new();
        for name in &names {
            let (kind, v) = decode(record.values.get(name).unwrap_or_default());
            values.insert((*name).to_owned(), json!({ kind: v }));
        }
        print_json(&json!({
            "id": ctx.short(&key),
            "expires_at": expires_json(&record),
            "size": size(&record),
            "values": values,
        }));
    } else {
        println!("id:      {}", ctx.short(&key));
        println!("expires: {}", expires_text(&record));
        println!("bytes:   {}", size(&record));
        let rows: Vec<Vec<String>> = names
            .iter()
            .map(|name| {
                let (kind, v) = decode(record.values.get(name).unwrap_or_default());
                let text = match v {
                    Value::String(s) if kind == "base64" => s,
                    other => other.to_string(),
                };
                vec![(*name).to_owned(), kind.to_owned(), text]
            })
            .collect();
        table(&["KEY", "AS", "VALUE"], &rows);
    }
    Ok(())
}

async fn destroy(ctx: &Ctx, id: &str) -> Result<(), Failure> {
    let Some((key, _)) = find(ctx, id).await? else {
        return Err(not_found(ctx, id));
    };
    let existed = ctx.store().destroy(&key).await.map_err(|e| ctx.fail(&e))?;
    if !existed {
        return Err(not_found(ctx, id));
    }
    if ctx.json {
        print_json(&json!({ "id": ctx.short(&key), "destroyed": true }));
    } else {
        println!("destroyed {}", ctx.short(&key));
    }
    Ok(())
}

async fn destroy_all(ctx: &Ctx, yes: bool) -> Result<(), Failure> {
    if !yes {
        return Err(Failure::Usage(format!(
            "refusing to destroy every session of {} without --yes",
            ctx.name
        )));
    }
    let n = ctx.store().destroy_all().await.map_err(|e| ctx.fail(&e))?;
    if ctx.json {
        print_json(&json!({ "destroyed": n }));
    } else {
        println!("destroyed {n} sessions");
    }
    Ok(())
}

async fn purge_expired(ctx: &Ctx) -> Result<(), Failure> {
    // The store purges in batches inside one call, so the bar is a spinner with the
    // elapsed time; indicatif draws nothing when stderr is not a terminal.
    let bar = (!ctx.json).then(|| {
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
            bar.set_style(style);
        }
        bar.set_message(format!("purging expired sessions of {}", ctx.name));
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let purged = ctx.store().purge_expired().await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let purged = purged.map_err(|e| ctx.fail(&e))?;
    let native = purged.is_none();
    let n = purged.unwrap_or(0);
    if ctx.json {
        print_json(&json!({ "purged": n, "native_expiry": native }));
    } else if native {
        println!(
            "{} expires sessions by itself: nothing to purge (0)",
            ctx.store().name()
        );
    } else {
        println!("purged {n} expired sessions");
    }
    Ok(())
}

async fn migrate(ctx: &Ctx) -> Result<(), Failure> {
    let migrated = ctx.opened.migrate().await.map_err(|e| ctx.fail(&e))?;
    if ctx.json {
        print_json(&json!({ "store": ctx.store().name(), "migrated": migrated }));
    } else if migrated {
        println!("{}: tables are up to date", ctx.name);
    } else {
        println!(
            "{} has no schema to migrate (only the SQL stores do)",
            ctx.store().name()
        );
    }
    Ok(())
}
