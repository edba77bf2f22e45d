//! Store calls run in a `sessio.store` span when a subscriber wants `DEBUG` spans, and
//! make no span at all otherwise (the fast path of the telemetry wrapper).

use std::sync::{Arc, Mutex};

use tracing::{
    span::{Attributes, Id, Record},
    Event, Level, Metadata, Subscriber,
};

/// Records the names of the spans it is asked to make, up to level `max`.
struct Spans {
    max: Level,
    made: Arc<Mutex<Vec<String>>>,
}

impl Subscriber for Spans {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.max
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let mut made = self.made.lock().expect("not poisoned");
        made.push(attrs.metadata().name().to_owned());
        Id::from_u64(made.len() as u64)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// The spans made while a session is loaded, written and committed.
fn spans_made_at(max: Level) -> Vec<String> {
    let made = Arc::new(Mutex::new(Vec::new()));
    let subscriber = Spans {
        max,
        made: made.clone(),
    };
    tracing::subscriber::with_default(subscriber, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let sessions = sessio::Sessions::builder().build().expect("builds");
            let session = sessions
                .start(&http::HeaderMap::new())
                .await
                .expect("starts");
            session.set("k", &1).expect("sets");
            session.save().await.expect("saves");
        });
    });
    let made = made.lock().expect("not poisoned").clone();
    made
}

#[test]
fn store_calls_are_spanned_only_when_debug_spans_are_wanted() {
    let debug = spans_made_at(Level::DEBUG);
    assert!(
        debug.iter().any(|name| name == "sessio.store"),
        "no sessio.store span at DEBUG: {debug:?}"
    );
    let info = spans_made_at(Level::INFO);
    assert!(
        !info.iter().any(|name| name == "sessio.store"),
        "a sessio.store span at INFO: {info:?}"
    );
}
