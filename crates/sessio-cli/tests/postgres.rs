//! `sessio` against the real PostgreSQL at 127.0.0.1:5432, in a fresh database.

#![cfg(feature = "sql")]

mod support;

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use support::{check_common, json, put, sessio, unique};

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[tokio::test(flavor = "multi_thread")]
async fn every_subcommand_on_postgres() {
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(PG_ADMIN)
        .await
        .expect("PostgreSQL must run on 127.0.0.1:5432");
    let db = unique("pg");
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&admin)
        .await
        .expect("create database");
    let spec = format!("postgres://postgres@127.0.0.1:5432/{db}");

    // The admin CLI creates nothing by itself: before `migrate` there is no table.
    let before = sessio(&spec, &["count"]);
    assert_ne!(before.code, 0, "{before:?}");
    assert_eq!(json(&spec, &["migrate"])["migrated"], true);
    assert_eq!(
        json(&spec, &["migrate"])["migrated"],
        true,
        "migrate twice is fine"
    );
    assert_eq!(json(&spec, &["count"])["count"], 0);

    let ids: Vec<String> = (0..5)
        .map(|i| format!("pg-session-{i}-{}", unique("id")))
        .collect();
    {
        let opened = sessio_spec::open(&spec, sessio_spec::Mode::Admin)
            .await
            .expect("open");
        let store = opened.store();
        for id in &ids {
            put(
                &**store,
                id,
                &[("user", b"\"iris\""), ("blob", &[0xff, 0x00])],
                Duration::from_secs(3600),
                false,
            )
            .await;
        }
        for i in 0..3 {
            put(
                &**store,
                &format!("pg-expired-{i}"),
                &[("user", b"\"old\"")],
                Duration::from_secs(60),
                true,
            )
            .await;
        }
    }
    // Expired rows are not counted, and purge deletes exactly them.
    assert_eq!(json(&spec, &["count"])["count"], 5);
    assert_eq!(
        json(&spec, &["purge-expired"]),
        serde_json::json!({ "purged": 3, "native_expiry": false })
    );
    assert_eq!(json(&spec, &["purge-expired"])["purged"], 0);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM sessio_sessions")
        .fetch_one(
            &PgPoolOptions::new()
                .max_connections(1)
                .connect(&spec)
                .await
                .expect("connect"),
        )
        .await
        .expect("rows");
    assert_eq!(rows, 5, "the expired rows are gone from the table");
    check_common(&spec, &ids);

    sqlx::query(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .execute(&admin)
        .await
        .expect("drop database");
}
