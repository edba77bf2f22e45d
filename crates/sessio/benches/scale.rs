//! The memory store at scale, and allocations per request (issue #8's scale targets:
//! at most 250 bytes of overhead per session at 1,000,000 sessions; expiring 10,000
//! sessions costs at most 5 ms of work and moves p99 latency by at most 10%).
//!
//! `cargo bench -p sessio --bench scale` (`SESSIONS=100000` for a quicker run).
//!
//! Bytes are counted by a counting global allocator (`allocation-counter`): bytes the
//! program asked for, without the allocator's own per-block overhead, which the RSS
//! column includes.

#![allow(missing_docs, clippy::unwrap_used)]

use std::{
    sync::atomic::{AtomicU64, Ordering},
    thread,
    time::{Duration, Instant},
};

use cpu_time::ThreadTime;
use http::{header::COOKIE, HeaderMap, HeaderValue};
use sessio::{MemoryStore, SessionId, Sessions};

/// Ids are a counter, padded to the 22 characters of the default generator, so that
/// any session can be addressed again without keeping a million cookies around.
fn id(i: u64) -> String {
    format!("{i:022}")
}

/// The next id any manager below hands out: sessions made between two reads of it
/// have the ids in between.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn sessions(store: &MemoryStore, idle: Duration) -> Sessions {
    Sessions::builder()
        .store(store.clone())
        .idle_timeout(idle)
        .id_generator(|| SessionId::parse(&id(NEXT_ID.fetch_add(1, Ordering::Relaxed))).unwrap())
        .build()
        .unwrap()
}

fn cookie(i: u64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        COOKIE,
        HeaderValue::from_str(&format!("sessio={}", id(i))).unwrap(),
    );
    headers
}

/// A new session with the three small keys of the issue.
async fn create(sessions: &Sessions, i: u64) {
    let s = sessions.start(&HeaderMap::new()).await.unwrap();
    s.set("counter", &i).unwrap();
    s.set("user", "kataras").unwrap();
    s.set("role", "admin").unwrap();
    s.finish().await.unwrap();
}

/// The issue's `/hit`: read `counter`, write counter + 1, commit.
async fn hit(sessions: &Sessions, headers: &HeaderMap) {
    let s = sessions.start(headers).await.unwrap();
    let n: u64 = s.get_or("counter", 0).unwrap();
    s.set("counter", &(n + 1)).unwrap();
    s.finish().await.unwrap();
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// A read-only request: load + get.
async fn read(sessions: &Sessions, headers: &HeaderMap) {
    let s = sessions.start(headers).await.unwrap();
    let _: Option<u64> = s.get("counter").unwrap();
    s.finish().await.unwrap();
}

/// `ops` requests on random live sessions (`/hit`s, or reads when `write` is false);
/// each latency with its start time.
fn run_requests(
    rt: &tokio::runtime::Runtime,
    sessions: &Sessions,
    live: std::ops::Range<u64>,
    ops: usize,
    write: bool,
) -> Vec<(Instant, Duration)> {
    let mut rng = Rng(ops as u64 + u64::from(write));
    rt.block_on(async {
        let mut lat = Vec::with_capacity(ops);
        for _ in 0..ops {
            let headers = cookie(live.start + rng.below(live.end - live.start));
            let t = Instant::now();
            if write {
                hit(sessions, &headers).await;
            } else {
                read(sessions, &headers).await;
            }
            lat.push((t, t.elapsed()));
        }
        lat
    })
}

fn summary(lat: impl Iterator<Item = Duration>) -> (usize, Duration, Duration, Duration) {
    let mut v: Vec<_> = lat.collect();
    v.sort_unstable();
    if v.is_empty() {
        return (0, Duration::ZERO, Duration::ZERO, Duration::ZERO);
    }
    (v.len(), pct(&v, 0.5), pct(&v, 0.99), v[v.len() - 1])
}

fn main() {
    let n: u64 = std::env::var("SESSIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = MemoryStore::new();
    let long = sessions(&store, Duration::from_secs(3600));

    // Allocations per request, on a small store first.
    rt.block_on(async {
        for i in 0..1000 {
            create(&long, i).await;
        }
    });
    assert_eq!(
        NEXT_ID.load(Ordering::Relaxed),
        1000,
        "ids 0..1000 are live"
    );
    println!("## Allocations per request (counting allocator, 10,000 requests each)\n");
    println!("| request | allocations | bytes allocated |\n|---|---|---|");
    let per_request = |name: &str, f: &dyn Fn(u64)| {
        let info = allocation_counter::measure(|| (0..10_000).for_each(f));
        println!(
            "| {name} | {:.1} | {:.0} |",
            info.count_total as f64 / 1e4,
            info.bytes_total as f64 / 1e4
        );
    };
    per_request("cookieless read (no session created)", &|_| {
        rt.block_on(async {
            let s = long.start(&HeaderMap::new()).await.unwrap();
            let _: Option<u64> = s.get("counter").unwrap();
            s.finish().await.unwrap();
        });
    });
    per_request("load + get (read only)", &|i| {
        let headers = cookie(i % 1000);
        rt.block_on(async {
            let s = long.start(&headers).await.unwrap();
            let _: Option<u64> = s.get("counter").unwrap();
            s.finish().await.unwrap();
        });
    });
    per_request("/hit: load + get + set + commit", &|i| {
        let headers = cookie(i % 1000);
        rt.block_on(hit(&long, &headers));
    });
    per_request("new session: 3 sets + commit + Set-Cookie", &|i| {
        rt.block_on(create(&long, 1000 + i));
    });
    rt.block_on(long.destroy_all()).unwrap();
    let made = NEXT_ID.load(Ordering::Relaxed);

    // Bytes per session at `n` sessions.
    let rss_before = rss_bytes();
    let info = allocation_counter::measure(|| {
        rt.block_on(async {
            for i in made..made + n {
                create(&long, i).await;
            }
        });
    });
    let rss_after = rss_bytes();
    assert_eq!(
        NEXT_ID.load(Ordering::Relaxed),
        made + n,
        "one id per session"
    );
    let record = rt
        .block_on(long.start(&cookie(made)))
        .unwrap()
        .get::<u64>("counter")
        .unwrap();
    assert_eq!(record, Some(made), "sessions are there");
    // Payload: the id plus each user key and its encoded value.
    let payload = rt.block_on(async {
        let key = long.store_key(&SessionId::parse(&id(made)).unwrap());
        let rec = long.store().load(&key).await.unwrap().unwrap();
        let user: usize = rec
            .values
            .iter()
            .filter(|(k, _)| !k.starts_with("__sessio:"))
            .map(|(k, v)| k.len() + v.len())
            .sum();
        id(made).len() + user
    }) as f64;
    let per_session = info.bytes_current as f64 / n as f64;
    println!("\n## {n} live sessions of 3 small keys\n");
    println!("| payload (id + keys + values) | allocated per session | overhead per session | allocator blocks per session | RSS per session |");
    println!("|---|---|---|---|---|");
    println!(
        "| {payload:.0} B | {per_session:.0} B | {:.0} B | {:.1} | {:.0} B |",
        per_session - payload,
        info.count_current as f64 / n as f64,
        rss_after.saturating_sub(rss_before) as f64 / n as f64
    );

    // Expiry of 10,000 sessions among the `n` live ones.
    let expiring = 10_000u64;
    let short_idle = Duration::from_millis(300);
    let expire_batch = |rt: &tokio::runtime::Runtime| {
        let short = sessions(&store, short_idle);
        rt.block_on(async {
            for i in 0..expiring {
                create(&short, i).await;
            }
        });
        thread::sleep(short_idle + Duration::from_millis(100));
    };
    let live = made..made + n;
    let ops = 200_000;
    let row = |name: &str, lat: &[(Instant, Duration)], base: Duration| {
        let (count, p50, p99, max) = summary(lat.iter().map(|l| l.1));
        println!(
            "| {name} | {count} | {} | {} | {} | {:.2}× |",
            us(p50),
            us(p99),
            us(max),
            p99.as_secs_f64() / base.as_secs_f64()
        );
    };

    // The total work: CPU time of one purge of 10,000 expired sessions, nothing else running.
    expire_batch(&rt);
    let (cpu, wall) = (ThreadTime::now(), Instant::now());
    let purged = store.purge_expired();
    let (purge_cpu, purge_wall) = (cpu.elapsed(), wall.elapsed());
    assert_eq!(purged, expiring);
    println!("\n## Expiring {expiring} of {n} sessions\n");
    println!(
        "`purge_expired()` alone: {:.2} ms of CPU ({:.2} ms wall) for {purged} sessions, {:.0} ns each.\n",
        purge_cpu.as_secs_f64() * 1e3,
        purge_wall.as_secs_f64() * 1e3,
        purge_cpu.as_secs_f64() * 1e9 / purged as f64
    );
    println!("| requests on random live sessions | requests | p50 | p99 | max | p99 vs baseline |");
    println!("|---|---|---|---|---|---|");

    // Writes: the expired sessions are swept by the writes themselves (16 per write).
    let base_hits = run_requests(&rt, &long, live.clone(), ops, true);
    let base99 = summary(base_hits.iter().map(|l| l.1)).2;
    row("`/hit`, nothing expiring (baseline)", &base_hits, base99);
    expire_batch(&rt);
    let swept = run_requests(&rt, &long, live.clone(), ops, true);
    let left = store.purge_expired();
    row(
        &format!("`/hit` while the writes sweep {} expired", expiring - left),
        &swept,
        base99,
    );

    // Reads do not sweep: a purge on another thread takes each shard's lock in turn.
    let base_reads = run_requests(&rt, &long, live.clone(), ops, false);
    let read99 = summary(base_reads.iter().map(|l| l.1)).2;
    row(
        "read only, nothing expiring (baseline)",
        &base_reads,
        read99,
    );
    expire_batch(&rt);
    let gc_store = store.clone();
    let gc = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        let start = Instant::now();
        let purged = gc_store.purge_expired();
        (start, start.elapsed(), purged)
    });
    let during = run_requests(&rt, &long, live, ops, false);
    let (gc_start, gc_took, gc_purged) = gc.join().unwrap();
    assert!(gc_purged > 0, "the purge ran while reads were running");
    row(
        &format!(
            "read only, purge of {gc_purged} on another thread ({:.2} ms wall)",
            gc_took.as_secs_f64() * 1e3
        ),
        &during,
        read99,
    );
    let overlapping: Vec<_> = during
        .into_iter()
        .filter(|(s, l)| *s < gc_start + gc_took && *s + *l > gc_start)
        .collect();
    row(
        "… only the reads overlapping the purge",
        &overlapping,
        read99,
    );
}
