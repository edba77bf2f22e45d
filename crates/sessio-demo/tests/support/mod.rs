//! Starts the demo binary on a free port and talks to it over real HTTP.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

/// A running demo; killed on drop.
pub struct Demo {
    child: Child,
    pub base: String,
}

impl Demo {
    /// Starts `sessio-demo --addr 127.0.0.1:0 ARGS...` and waits for its start-up line.
    pub fn start(args: &[&str]) -> Demo {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sessio-demo"))
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start sessio-demo");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read start-up line");
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected start-up line {line:?}"))
            .to_owned();
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        Demo { child, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A client with its own cookie jar (one browser).
    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client")
    }

    /// A client without cookies: tests set `Cookie` by hand.
    pub fn raw(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client")
    }

    pub async fn get(&self, client: &reqwest::Client, path: &str) -> (u16, String) {
        let res = client.get(self.url(path)).send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.text().await.expect("body"))
    }

    pub async fn count(&self) -> u64 {
        let (status, body) = self.get(&self.raw(), "/admin/count").await;
        assert_eq!(status, 200);
        body.trim().parse().expect("count")
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `name=value` pair of the session cookie in a response, if it sets one.
pub fn session_cookie(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("sessio="))
        .map(str::to_owned)
}

pub fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or_default().to_owned()
}
