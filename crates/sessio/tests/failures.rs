//! What a session does when its store fails: nothing is lost, a retry writes it.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use http::HeaderMap;
use sessio::{store::FaultyStore, MemoryStore, Sessions};

#[tokio::test]
async fn a_failed_save_keeps_the_changes_for_a_retry() {
    let store = Arc::new(FaultyStore::new(MemoryStore::new()));
    let sessions = Sessions::builder()
        .shared_store(store.clone())
        .build()
        .unwrap();
    let session = sessions.start(&HeaderMap::new()).await.unwrap();
    session.set("a", &1).unwrap();
    store.set_down(true);
    assert!(session.save().await.unwrap_err().is_unavailable());
    assert!(session
        .increment("n", 1)
        .await
        .unwrap_err()
        .is_unavailable());
    session.set("b", &2).unwrap();
    store.set_down(false);
    let cookie = session.finish().await.unwrap();
    let headers = support::cookie_header(&cookie[0]);
    let again = sessions.start(&headers).await.unwrap();
    assert_eq!(
        again.get::<i64>("a").unwrap(),
        Some(1),
        "kept through the failure"
    );
    assert_eq!(again.get::<i64>("b").unwrap(), Some(2));
    assert_eq!(
        again.get::<i64>("n").unwrap(),
        None,
        "the failed increment was reported, not retried"
    );
}

#[tokio::test]
async fn a_failed_destroy_is_retried_too() {
    let store = Arc::new(FaultyStore::new(MemoryStore::new()));
    let sessions = Sessions::builder()
        .shared_store(store.clone())
        .build()
        .unwrap();
    let session = sessions.start(&HeaderMap::new()).await.unwrap();
    session.set("a", &1).unwrap();
    session.save().await.unwrap();
    session.destroy();
    store.set_down(true);
    assert!(session.save().await.is_err());
    store.set_down(false);
    session.save().await.unwrap();
    assert_eq!(sessions.count().await.unwrap(), 0);
}
