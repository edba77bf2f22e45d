//! `/metrics` after a scripted set of requests: the counters match what was done.

#![allow(clippy::unwrap_used)]

mod support;

use support::Demo;

/// The value of the sample `name` whose labels include every `labels` pair.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, value)| value.parse().expect("a number"))
}

async fn scripted(framework: &str) {
    let demo = Demo::start(&["--framework", framework]);
    // Three visitors start sessions; one logs in (regenerate), one is destroyed.
    let (a, b, c) = (demo.browser(), demo.browser(), demo.browser());
    for browser in [&a, &b, &c] {
        assert_eq!(
            demo.get(browser, "/set?key=colour&value=green").await.0,
            200
        );
    }
    assert_eq!(demo.get(&a, "/login?user=kataras").await.0, 200);
    assert_eq!(demo.get(&b, "/destroy").await.0, 200);
    assert_eq!(demo.get(&c, "/get?key=colour").await, (200, "green".into()));

    let (status, text) = demo.get(&demo.raw(), "/metrics").await;
    assert_eq!(status, 200);
    let m = |name: &str, labels: &[(&str, &str)]| {
        sample(&text, name, labels)
            .unwrap_or_else(|| panic!("{framework}: no {name} {labels:?} in\n{text}"))
    };
    assert_eq!(m("sessio_sessions_created_total", &[]), 3.0, "{framework}");
    assert_eq!(
        m("sessio_sessions_regenerated_total", &[]),
        1.0,
        "{framework}"
    );
    assert_eq!(
        m("sessio_sessions_destroyed_total", &[]),
        1.0,
        "{framework}"
    );
    assert_eq!(
        m("sessio_sessions_live", &[("store", "memory")]),
        2.0,
        "{framework}"
    );
    // Writes: 3 creations + the login's rewrite under the new id.
    let op = |op: &str| {
        m(
            "sessio_store_op_duration_seconds_count",
            &[("store", "memory"), ("op", op)],
        )
    };
    assert_eq!(op("commit"), 4.0, "{framework}");
    // Destroys: the login's old id and the destroyed session.
    assert_eq!(op("destroy"), 2.0, "{framework}");
    assert_eq!(op("count"), 1.0, "{framework}: the scrape's own count");
    assert!(
        sample(&text, "sessio_store_errors_total", &[]).is_none(),
        "{framework}: no store errors\n{text}"
    );
}

#[tokio::test]
async fn metrics_count_what_axum_did() {
    scripted("axum").await;
}

#[tokio::test]
async fn metrics_count_what_actix_did() {
    scripted("actix").await;
}
