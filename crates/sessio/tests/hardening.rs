//! Hardening: ids are hashed at rest, cookie-name prefixes are enforced, risky cookie
//! settings are warned about, and "log out everywhere" ends every session of a user.

mod support;

use std::sync::{Arc, Mutex};

use http::HeaderMap;
use sessio::{
    secure::Key,
    store::{CookieStore, Store, StoreErrorKind},
    Error, KeysAtRest, MemoryStore, SameSite, Secure, Sessions, StoreKey,
};

async fn all_keys(store: &MemoryStore) -> Vec<StoreKey> {
    let mut keys = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.keys(cursor.as_deref(), 100).await.expect("keys");
        keys.extend(page.keys);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return keys,
        }
    }
}

#[tokio::test]
async fn store_holds_no_cookie_ids_by_default() {
    let store = MemoryStore::new();
    let sessions = Sessions::builder()
        .store(store.clone())
        .build()
        .expect("build");
    let mut ids = Vec::new();
    let mut cookies = Vec::new();
    for i in 0..20 {
        let session = sessions.start(&HeaderMap::new()).await.expect("start");
        session.set("n", &i).expect("set");
        let set_cookie = session.finish().await.expect("finish");
        ids.push(session.id().as_str().to_owned());
        cookies.push(set_cookie[0].clone());
    }
    let keys = all_keys(&store).await;
    assert_eq!(keys.len(), 20);
    for key in &keys {
        assert_eq!(key.as_str().len(), 43, "a 256-bit keyed hash, base64");
        for id in &ids {
            assert!(
                !key.as_str().contains(id.as_str()),
                "a store key holds an id"
            );
        }
    }
    // The sessions still work, and destroy-by-id still finds them.
    let again = sessions
        .start(&support::cookie_header(&cookies[3]))
        .await
        .expect("start");
    assert_eq!(again.get::<i32>("n").expect("get"), Some(3));
    assert!(sessions.destroy_by_id(&ids[3]).await.expect("destroy"));
    assert!(!sessions.destroy_by_id(&ids[3]).await.expect("destroy"));
    let gone = sessions
        .start(&support::cookie_header(&cookies[3]))
        .await
        .expect("start");
    assert!(gone.is_new());
    assert_eq!(store.count().await.expect("count"), 19);
}

#[tokio::test]
async fn hashed_keys_survive_a_restart_and_the_opt_out_stores_ids() {
    // Two managers over one store stand for one server before and after a restart
    // (or two servers): with no key configured, both derive the same store keys.
    let store = MemoryStore::new();
    let before = Sessions::builder()
        .store(store.clone())
        .build()
        .expect("build");
    let session = before.start(&HeaderMap::new()).await.expect("start");
    session.set("user", "iris").expect("set");
    let cookie = session.finish().await.expect("finish");
    let after = Sessions::builder()
        .store(store.clone())
        .build()
        .expect("build");
    let again = after
        .start(&support::cookie_header(&cookie[0]))
        .await
        .expect("start");
    assert_eq!(
        again.get::<String>("user").expect("get").as_deref(),
        Some("iris")
    );

    // A configured key: the same key finds the session, another one does not.
    let key = Key::generate();
    let keyed = |k: &Key| {
        Sessions::builder()
            .store(store.clone())
            .hash_ids_with(k)
            .build()
            .expect("build")
    };
    let session = keyed(&key).start(&HeaderMap::new()).await.expect("start");
    session.set("user", "kataras").expect("set");
    let cookie = session.finish().await.expect("finish");
    let headers = support::cookie_header(&cookie[0]);
    assert!(!keyed(&key).start(&headers).await.expect("start").is_new());
    assert!(keyed(&Key::generate())
        .start(&headers)
        .await
        .expect("start")
        .is_new());
    assert!(before.start(&headers).await.expect("start").is_new());
    assert_ne!(
        keyed(&key).store_key(&session.id()),
        before.store_key(&session.id())
    );

    // Opting out keys the store by the id itself.
    let plain_store = MemoryStore::new();
    let plain = Sessions::builder()
        .store(plain_store.clone())
        .keys_at_rest(KeysAtRest::Plain)
        .build()
        .expect("build");
    let session = plain.start(&HeaderMap::new()).await.expect("start");
    session.set("n", &1).expect("set");
    session.finish().await.expect("finish");
    let keys = all_keys(&plain_store).await;
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].as_str(), session.id().as_str());
}

fn config_error(builder: sessio::SessionsBuilder) -> String {
    match builder.build() {
        Err(Error::Config(message)) => message,
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[test]
fn host_prefix_requires_secure_root_path_and_no_domain() {
    let host = || {
        Sessions::builder()
            .cookie_name("__Host-sessio")
            .secure(Secure::Always)
    };
    assert!(host().build().is_ok());
    assert!(host().path("/").build().is_ok());
    assert!(config_error(Sessions::builder().cookie_name("__Host-sessio")).contains("Secure"));
    assert!(config_error(host().secure(Secure::Never)).contains("Secure"));
    assert!(config_error(host().secure(Secure::Auto {
        trust_forwarded_proto: true
    }))
    .contains("Secure"));
    assert!(config_error(host().domain("example.com")).contains("Domain"));
    assert!(config_error(host().path("/app")).contains("Path=/"));
    // Browsers match prefixes case-insensitively.
    assert!(config_error(Sessions::builder().cookie_name("__host-sessio")).contains("Secure"));
}

#[tokio::test]
async fn host_prefixed_cookie_is_secure_host_only_at_root() {
    let sessions = Sessions::builder()
        .cookie_name("__Host-id")
        .secure(Secure::Always)
        .build()
        .expect("build");
    let session = sessions.start(&HeaderMap::new()).await.expect("start");
    session.set("n", &1).expect("set");
    let set_cookie = session.finish().await.expect("finish");
    let header = set_cookie[0].to_str().expect("ascii");
    assert!(header.starts_with("__Host-id="), "{header}");
    assert!(header.contains("; Secure"), "{header}");
    assert!(header.contains("; Path=/"), "{header}");
    assert!(!header.contains("Domain"), "{header}");
}

#[test]
fn secure_prefix_requires_secure() {
    let secure = || Sessions::builder().cookie_name("__Secure-sessio");
    assert!(config_error(secure()).contains("Secure"));
    assert!(config_error(secure().secure(Secure::Never)).contains("Secure"));
    assert!(secure().secure(Secure::Always).build().is_ok());
    // Unlike __Host-, __Secure- allows a Domain and any path.
    assert!(secure()
        .secure(Secure::Always)
        .domain("example.com")
        .path("/app")
        .build()
        .is_ok());
}

/// What a test sees of tracing through [`Recorder`].
#[derive(Default, Clone)]
struct Seen {
    /// The messages of WARN events.
    warnings: Vec<String>,
    /// The names of the spans made.
    spans: Vec<String>,
}

/// A minimal subscriber (no extra dependency) that wants everything up to `max` and
/// records it in [`Seen`].
struct Recorder {
    max: tracing::Level,
    seen: Arc<Mutex<Seen>>,
}

struct Message<'a>(&'a mut String);

impl tracing::field::Visit for Message<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            *self.0 = format!("{value:?}");
        }
    }
}

impl tracing::Subscriber for Recorder {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= self.max
    }
    fn new_span(&self, attrs: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut seen = self.seen.lock().expect("lock");
        seen.spans.push(attrs.metadata().name().to_owned());
        tracing::span::Id::from_u64(seen.spans.len() as u64)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if *event.metadata().level() == tracing::Level::WARN {
            let mut message = String::new();
            event.record(&mut Message(&mut message));
            self.seen.lock().expect("lock").warnings.push(message);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// What tracing saw while `run` ran, with everything up to `max` wanted.
///
/// One recording at a time: tracing keeps the highest level any live subscriber
/// wants, and which callsites are enabled, in process-wide state, so recorders of
/// different levels on parallel test threads could hide each other's spans.
fn recorded_while(max: tracing::Level, run: impl FnOnce()) -> Seen {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let recorder = Recorder {
        max,
        seen: seen.clone(),
    };
    tracing::subscriber::with_default(recorder, run);
    let out = seen.lock().expect("lock").clone();
    out
}

fn warnings_while(build: impl FnOnce()) -> Vec<String> {
    recorded_while(tracing::Level::TRACE, build).warnings
}

/// The spans made while a session is loaded, written and committed.
fn spans_made_at(max: tracing::Level) -> Vec<String> {
    recorded_while(max, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let sessions = Sessions::builder().build().expect("builds");
            let session = sessions.start(&HeaderMap::new()).await.expect("starts");
            session.set("k", &1).expect("sets");
            session.save().await.expect("saves");
        });
    })
    .spans
}

/// Store calls run in a `sessio.store` span when a subscriber wants `DEBUG` spans,
/// and make no span at all otherwise (the fast path of the telemetry wrapper).
#[test]
fn store_calls_are_spanned_only_when_debug_spans_are_wanted() {
    let debug = spans_made_at(tracing::Level::DEBUG);
    assert!(
        debug.iter().any(|name| name == "sessio.store"),
        "no sessio.store span at DEBUG: {debug:?}"
    );
    let info = spans_made_at(tracing::Level::INFO);
    assert!(
        !info.iter().any(|name| name == "sessio.store"),
        "a sessio.store span at INFO: {info:?}"
    );
}

#[test]
fn same_site_none_without_secure_is_warned_about() {
    let warned = warnings_while(|| {
        Sessions::builder()
            .same_site(SameSite::None)
            .secure(Secure::Never)
            .build()
            .expect("build");
    });
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].contains("SameSite=None"), "{warned:?}");
    let quiet = warnings_while(|| {
        Sessions::builder()
            .same_site(SameSite::None)
            .secure(Secure::Always)
            .build()
            .expect("build");
    });
    assert!(quiet.is_empty(), "{quiet:?}");
}

#[tokio::test]
async fn destroy_user_logs_a_user_out_everywhere() {
    let sessions = Sessions::builder().build().expect("build");
    let mut alice = Vec::new();
    for _ in 0..3 {
        let session = sessions.start(&HeaderMap::new()).await.expect("start");
        session.regenerate();
        session.set_user("alice").expect("set_user");
        assert_eq!(session.user().as_deref(), Some("alice"));
        alice.push(support::cookie_header(
            &session.finish().await.expect("finish")[0],
        ));
    }
    let bob = sessions.start(&HeaderMap::new()).await.expect("start");
    bob.set_user("bob").expect("set_user");
    let bob = support::cookie_header(&bob.finish().await.expect("finish")[0]);

    assert_eq!(
        sessions.destroy_user("alice").await.expect("destroy_user"),
        3
    );
    for headers in &alice {
        assert!(sessions.start(headers).await.expect("start").is_new());
    }
    assert!(!sessions.start(&bob).await.expect("start").is_new());
    assert!(sessions
        .start(&HeaderMap::new())
        .await
        .expect("start")
        .set_user("")
        .is_err());
}

#[tokio::test]
async fn the_user_is_stored_under_the_exported_user_key() {
    let sessions = Sessions::builder().build().expect("build");
    let session = sessions.start(&HeaderMap::new()).await.expect("start");
    session.set_user("alice").expect("set_user");
    session.save().await.expect("save");
    let record = sessions
        .store()
        .load(&sessions.store_key(&session.id()))
        .await
        .expect("load")
        .expect("stored");
    assert_eq!(
        record.values.get(sessio::store::USER_KEY),
        Some(&b"alice"[..])
    );
}

#[tokio::test]
async fn destroy_user_without_a_user_index_is_a_clear_error() {
    let sessions = Sessions::builder()
        .cookie_store(CookieStore::new(sessio::secure::Keys::new(Key::generate())))
        .build()
        .expect("build");
    match sessions.destroy_user("alice").await {
        Err(Error::Store(e)) => assert_eq!(*e.kind(), StoreErrorKind::Unsupported),
        other => panic!("expected Unsupported, got {other:?}"),
    }
}
