//! Redis servers that tests start themselves: single servers on free loopback ports
//! and a 3-primary Redis Cluster. Every child is killed (by PID, through `Child`) when
//! its guard drops, also when the test panics.

#![allow(dead_code, unreachable_pub)]

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use sessio::{IdGenerator, RandomIds};

/// Calls `call` until it succeeds, pausing `pause` after each failure: every failure
/// must be transient (`Unavailable`), and success must come within `limit`.
pub async fn until_recovered<T, F, Fut>(limit: Duration, pause: Duration, mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, sessio::StoreError>>,
{
    let started = Instant::now();
    loop {
        match call().await {
            Ok(value) => return value,
            Err(e) => {
                assert!(e.is_transient(), "{e}");
                assert!(
                    started.elapsed() < limit,
                    "no recovery within {limit:?}: {e}"
                );
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// A unique key prefix, so that tests sharing one Redis never see each other's keys.
pub fn random_prefix() -> String {
    format!("sessio-test:{}:", RandomIds.generate().as_str())
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .expect("local addr")
        .port()
}

/// A fresh temporary directory, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "sessio-redis-{tag}-{}-{}",
            std::process::id(),
            RandomIds.generate().as_str()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Sends one inline command and returns the raw reply (enough for PING, INFO and
/// CLUSTER INFO in tests).
pub fn raw_command(port: u16, command: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(format!("{command}\r\n").as_bytes())?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut buf)?;
        reply.extend_from_slice(&buf[..n]);
        if n == 0 || is_complete(&reply) {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

/// Whether a RESP reply (simple, error, integer, one bulk string, or an array of bulk
/// strings) is complete.
fn is_complete(reply: &[u8]) -> bool {
    let Some(first_line) = reply.windows(2).position(|w| w == b"\r\n") else {
        return false;
    };
    match reply[0] {
        b'$' => {
            let len: i64 = std::str::from_utf8(&reply[1..first_line])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            len < 0 || reply.len() >= first_line + 2 + len as usize + 2
        }
        b'*' => {
            let n: usize = std::str::from_utf8(&reply[1..first_line])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            reply.ends_with(b"\r\n") && reply.windows(2).filter(|w| w == b"\r\n").count() > 2 * n
        }
        _ => true,
    }
}

fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One `redis-server` child process.
#[derive(Debug)]
pub struct RedisServer {
    pub port: u16,
    args: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts `redis-server --port <free port> <extra>` in `dir` and waits for PONG.
    pub fn start(dir: &Path, extra: &[&str]) -> Self {
        Self::start_on(free_port(), dir, extra)
    }

    pub fn start_on(port: u16, dir: &Path, extra: &[&str]) -> Self {
        let mut args = vec![
            "--port".to_owned(),
            port.to_string(),
            "--bind".to_owned(),
            "127.0.0.1".to_owned(),
            "--dir".to_owned(),
            dir.display().to_string(),
            "--daemonize".to_owned(),
            "no".to_owned(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        Self::from_args(port, args)
    }

    /// Starts `redis-server <args>` that will listen on `port`, and waits for PONG.
    pub fn from_args(port: u16, args: Vec<String>) -> Self {
        let mut server = RedisServer {
            port,
            args,
            child: None,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        self.child = Some(child);
        let port = self.port;
        wait_until(
            "redis-server to answer PING",
            Duration::from_secs(10),
            || raw_command(port, "PING").is_ok_and(|r| r.starts_with("+PONG")),
        );
    }

    /// Kills the server (SIGKILL: no shutdown save) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A frozen (SIGSTOP) server dies from SIGKILL as well.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (`STOP`, `CONT`) to the server process: `STOP` freezes it with
    /// its connections open, like a hung host.
    pub fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("server running");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("kill(1)");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Starts it again on the same port with the same arguments.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn info(&self, section: &str) -> String {
        raw_command(self.port, &format!("INFO {section}")).expect("INFO")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A 3-primary Redis Cluster on free loopback ports, no replicas.
#[derive(Debug)]
pub struct Cluster {
    pub nodes: Vec<RedisServer>,
    _dir: TempDir,
}

impl Cluster {
    pub fn start() -> Self {
        let dir = TempDir::new("cluster");
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                let port = free_port();
                let bus = free_port();
                let conf = dir.path().join(format!("nodes-{port}.conf"));
                let conf = conf.display().to_string();
                let bus = bus.to_string();
                RedisServer::start_on(
                    port,
                    dir.path(),
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        &conf,
                        "--cluster-port",
                        &bus,
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                    ],
                )
            })
            .collect();
        let mut args = vec!["create".to_owned()];
        args.extend(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)));
        args.extend(["--cluster-replicas", "0"].map(str::to_owned));
        let cluster = Cluster { nodes, _dir: dir };
        cluster.redis_cli(&args);
        cluster
    }

    /// `redis-cli --cluster ARGS --cluster-yes`, then waits until every node says the
    /// cluster is ok.
    fn redis_cli(&self, args: &[String]) {
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .args(args)
            .arg("--cluster-yes")
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli must be installed");
        assert!(
            out.status.success(),
            "redis-cli --cluster {} failed: {}{}",
            args[0],
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for node in &self.nodes {
            let port = node.port;
            wait_until("cluster_state:ok", Duration::from_secs(30), || {
                raw_command(port, "CLUSTER INFO").is_ok_and(|r| r.contains("cluster_state:ok"))
            });
        }
    }

    /// Moves every slot of node `from` (with its keys) to node `to`, as an operator's
    /// `redis-cli --cluster reshard` does, and waits until the cluster is stable.
    pub fn move_all_slots(&self, from: usize, to: usize) {
        let id = |i: usize| {
            let reply = raw_command(self.nodes[i].port, "CLUSTER MYID").expect("CLUSTER MYID");
            // A bulk string: `$40\r\n<id>\r\n`.
            reply.lines().nth(1).expect("a node id").trim().to_owned()
        };
        // The slots `from` serves: the ranges that end its own line of CLUSTER NODES.
        let nodes = raw_command(self.nodes[from].port, "CLUSTER NODES").expect("CLUSTER NODES");
        let mine = nodes
            .lines()
            .find(|l| l.contains("myself"))
            .expect("own line");
        let slots: u32 = mine
            .split_whitespace()
            .skip(8)
            .map(|range| match range.split_once('-') {
                Some((a, b)) => {
                    b.parse::<u32>().expect("slot") - a.parse::<u32>().expect("slot") + 1
                }
                None => 1,
            })
            .sum();
        self.redis_cli(&[
            "reshard".to_owned(),
            format!("127.0.0.1:{}", self.nodes[from].port),
            "--cluster-from".to_owned(),
            id(from),
            "--cluster-to".to_owned(),
            id(to),
            "--cluster-slots".to_owned(),
            slots.to_string(),
        ]);
    }

    /// `redis-cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis-cluster://{}", hosts.join(","))
    }
}

/// Calls of `command` in `INFO commandstats` (0 when never called).
pub fn command_calls(commandstats: &str, command: &str) -> u64 {
    let needle = format!("cmdstat_{command}:calls=");
    commandstats
        .lines()
        .find_map(|l| l.strip_prefix(&needle))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// A primary and one Sentinel that monitors it as `mymaster`.
#[derive(Debug)]
pub struct Sentinel {
    pub sentinel: RedisServer,
    pub primary: RedisServer,
    _dir: TempDir,
}

impl Sentinel {
    pub fn start() -> Self {
        let dir = TempDir::new("sentinel");
        let primary = RedisServer::start(dir.path(), &["--save", "", "--appendonly", "no"]);
        let port = free_port();
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {}\n\
                 sentinel monitor mymaster 127.0.0.1 {} 1\n\
                 sentinel down-after-milliseconds mymaster 5000\n",
                dir.path().display(),
                primary.port
            ),
        )
        .expect("write sentinel.conf");
        let sentinel = RedisServer::from_args(
            port,
            vec![conf.display().to_string(), "--sentinel".to_owned()],
        );
        wait_until("sentinel to know mymaster", Duration::from_secs(10), || {
            raw_command(port, "SENTINEL get-master-addr-by-name mymaster")
                .is_ok_and(|r| r.contains(&primary.port.to_string()))
        });
        Sentinel {
            sentinel,
            primary,
            _dir: dir,
        }
    }

    /// `redis-sentinel://127.0.0.1:S/mymaster`
    pub fn url(&self) -> String {
        format!("redis-sentinel://127.0.0.1:{}/mymaster", self.sentinel.port)
    }
}
