//! The demo in a real browser: headless Chromium driven over WebDriver (`fantoccini`
//! talking to `/usr/bin/chromedriver`). Logs in through the form, reads the secret, sees
//! a flash message once, logs out; checks that scripts cannot read the HttpOnly session
//! cookie and that an idle session sends the browser back to the login form.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`scripts/services/chromium.sh`
//! installs them; `scripts/test.sh` runs it). Without them these tests fail, never skip.

#![allow(clippy::unwrap_used)]

mod support;

use std::{
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator};
use support::Demo;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// Ports this suite may give chromedriver (the project's range for it).
const PORTS: std::ops::RangeInclusive<u16> = 18300..=18319;
/// A scenario that takes longer than this has hung (a browser waiting for a page).
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(90);

/// A chromedriver process on a free port of [`PORTS`]; killed (by its PID) on drop.
struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    fn start() -> ChromeDriver {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists(),
            "{CHROMEDRIVER} or {CHROMIUM} is missing: run scripts/services/chromium.sh \
             (apt-get install chromium chromium-driver)"
        );
        // Free now; a race with another process taking it in between shows as a failed
        // start below, which the next port retries.
        for port in PORTS {
            if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_err() {
                continue;
            }
            let mut child = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver");
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // exited: port taken after all
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return ChromeDriver {
                        child,
                        url: format!("http://{addr}"),
                    };
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("chromedriver did not start on any port of {PORTS:?}");
    }

    /// A new headless Chromium session.
    async fn browser(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1024,768"],
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a WebDriver session in headless Chromium")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser at a time: Chromium is heavy, and it keeps two tests from picking the
/// same free port.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `scenario` in a browser and always closes the browser afterwards (a failed
/// assertion included), so that no Chromium outlives the test.
async fn in_browser<F, Fut>(demo: &Demo, scenario: F)
where
    F: FnOnce(Client, String) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let _one = ONE_BROWSER.lock().await;
    let driver = ChromeDriver::start();
    let client = driver.browser().await;
    let run = tokio::spawn(tokio::time::timeout(
        SCENARIO_TIMEOUT,
        scenario(client.clone(), demo.base.clone()),
    ))
    .await;
    let _ = client.close().await;
    drop(driver);
    match run {
        Ok(Ok(())) => {}
        Ok(Err(_)) => panic!("the browser scenario took more than {SCENARIO_TIMEOUT:?}"),
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The page's visible text.
async fn body_text(b: &Client) -> String {
    b.find(Locator::Css("body"))
        .await
        .expect("a body")
        .text()
        .await
        .expect("its text")
}

/// The texts of the flash messages on the page.
async fn flashes(b: &Client) -> Vec<String> {
    let mut out = Vec::new();
    for el in b.find_all(Locator::Css("p.flash")).await.expect("find") {
        out.push(el.text().await.expect("text"));
    }
    out
}

/// Logs in as `user` through the home page's form.
async fn log_in_with_the_form(b: &Client, base: &str, user: &str) {
    b.goto(&format!("{base}/")).await.expect("home page");
    assert_eq!(
        b.find(Locator::Id("status"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "Not logged in."
    );
    let form = b.find(Locator::Id("login")).await.expect("the login form");
    form.find(Locator::Css("input[name=user]"))
        .await
        .expect("the name field")
        .send_keys(user)
        .await
        .expect("type the name");
    form.find(Locator::Css("button[type=submit]"))
        .await
        .expect("the button")
        .click()
        .await
        .expect("submit");
    let target = format!("{base}/login?user={user}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.current_url().await.unwrap().as_str() != target {
        assert!(
            Instant::now() < deadline,
            "the form did not land on {target}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(body_text(b).await, "logged in");
}

async fn login_secret_flash_logout(framework: &str) {
    let demo = Demo::start(&["--framework", framework]);
    in_browser(&demo, |b, base| async move {
        b.goto(&format!("{base}/secret")).await.unwrap();
        assert_eq!(body_text(&b).await, "Forbidden");

        log_in_with_the_form(&b, &base, "alice").await;
        b.goto(&format!("{base}/")).await.unwrap();
        let status = b.find(Locator::Id("status")).await.unwrap();
        assert!(
            status
                .text()
                .await
                .unwrap()
                .starts_with("Logged in as alice."),
            "{}",
            status.text().await.unwrap()
        );
        b.find(Locator::LinkText("Secret"))
            .await
            .expect("the Secret link")
            .click()
            .await
            .unwrap();
        assert_eq!(body_text(&b).await, "The cake is a lie!");

        // The browser holds the session cookie, HttpOnly, and scripts cannot see it
        // (while they do see an ordinary cookie, so the check can fail).
        let cookies = b.get_all_cookies().await.unwrap();
        let session = cookies
            .iter()
            .find(|c| c.name() == "sessio")
            .expect("a session cookie in the browser");
        assert_eq!(session.http_only(), Some(true));
        b.execute("document.cookie = 'visible=1; path=/'", vec![])
            .await
            .unwrap();
        let seen = b.execute("return document.cookie", vec![]).await.unwrap();
        let seen = seen.as_str().expect("a string");
        assert!(seen.contains("visible=1"), "{seen:?}");
        assert!(
            !seen.contains("sessio"),
            "script sees the session: {seen:?}"
        );

        // A flash message shows once, and not after a reload.
        b.goto(&format!("{base}/flash?key=notice&value=Saved%21"))
            .await
            .unwrap();
        b.goto(&format!("{base}/")).await.unwrap();
        assert_eq!(flashes(&b).await, ["Saved!"]);
        b.refresh().await.unwrap();
        assert_eq!(flashes(&b).await, Vec::<String>::new());
        assert!(body_text(&b).await.contains("Logged in as alice."));

        // Log out through the link: the secret is closed again.
        b.find(Locator::LinkText("Log out"))
            .await
            .expect("the Log out link")
            .click()
            .await
            .unwrap();
        assert_eq!(body_text(&b).await, "logged out");
        b.goto(&format!("{base}/secret")).await.unwrap();
        assert_eq!(body_text(&b).await, "Forbidden");
        b.goto(&format!("{base}/")).await.unwrap();
        b.find(Locator::Id("login"))
            .await
            .expect("the login form again");
    })
    .await;
}

async fn idle_session_sends_the_browser_back_to_the_login_form(framework: &str) {
    let demo = Demo::start(&["--framework", framework, "--idle", "2"]);
    in_browser(&demo, |b, base| async move {
        log_in_with_the_form(&b, &base, "bob").await;
        b.goto(&format!("{base}/secret")).await.unwrap();
        assert_eq!(body_text(&b).await, "The cake is a lie!");
        tokio::time::sleep(Duration::from_millis(3500)).await;
        b.goto(&format!("{base}/")).await.unwrap();
        assert_eq!(
            b.find(Locator::Id("status"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
            "Not logged in."
        );
        b.find(Locator::Id("login"))
            .await
            .expect("the login form after expiry");
        b.goto(&format!("{base}/secret")).await.unwrap();
        assert_eq!(body_text(&b).await, "Forbidden");
    })
    .await;
}

#[tokio::test]
async fn browser_login_secret_flash_logout_axum() {
    login_secret_flash_logout("axum").await;
}

#[tokio::test]
async fn browser_login_secret_flash_logout_actix() {
    login_secret_flash_logout("actix").await;
}

#[tokio::test]
async fn browser_login_secret_flash_logout_hyper() {
    login_secret_flash_logout("hyper").await;
}

#[tokio::test]
async fn browser_idle_session_returns_to_the_login_form() {
    idle_session_sends_the_browser_back_to_the_login_form("axum").await;
}
