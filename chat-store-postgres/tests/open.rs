//! Opening: typed errors for a wrong URL, a refused connection and a missing database;
//! migrations refused when the schema is newer; concurrent opens; schema clean-up.

mod common;

use std::time::{Duration, Instant};

use chat_core::ErrorCode;
use chat_store_postgres::{Error, PgConfig, PgStore, SCHEMA_VERSION};

fn with_database(db: &str) -> String {
    let url = common::url();
    match url.rfind('/') {
        Some(i) if i > "postgres://".len() => format!("{}/{db}", &url[..i]),
        _ => format!("{url}/{db}"),
    }
}

#[tokio::test]
async fn a_malformed_url_is_invalid_config() {
    for url in [
        "postgres://postgres@127.0.0.1:notaport/postgres",
        "mysql://nobody@127.0.0.1/x",
        "just some words",
    ] {
        let err = PgStore::open(PgConfig::new(url).schema("x"))
            .await
            .expect_err(url);
        assert!(matches!(err, Error::InvalidConfig(_)), "{url}: {err:?}");
        assert_eq!(chat_core::Error::from(err).code(), ErrorCode::Invalid);
    }
}

#[tokio::test]
async fn a_refused_connection_is_unreachable() {
    let start = Instant::now();
    let err = PgStore::open(
        PgConfig::new("postgres://postgres@127.0.0.1:1/postgres")
            .connect_timeout(Duration::from_secs(2)),
    )
    .await
    .expect_err("nothing listens on port 1");
    assert!(matches!(err, Error::Unreachable(_)), "{err:?}");
    assert!(
        err.to_string().to_lowercase().contains("refused"),
        "says why: {err}"
    );
    assert!(start.elapsed() < Duration::from_secs(3), "fails promptly");
    assert_eq!(chat_core::Error::from(err).code(), ErrorCode::Unavailable);
}

#[tokio::test]
async fn a_missing_database_is_named() {
    let err = PgStore::open(PgConfig::new(with_database("chat_no_such_database_here")))
        .await
        .expect_err("no such database");
    assert!(matches!(err, Error::DatabaseMissing(_)), "{err:?}");
    assert!(
        err.to_string().contains("chat_no_such_database_here"),
        "{err}"
    );
}

#[tokio::test]
async fn a_bad_schema_name_is_invalid_config() {
    let err = PgStore::open(PgConfig::new(common::url()).schema("x; DROP TABLE y"))
        .await
        .expect_err("bad schema");
    assert!(matches!(err, Error::InvalidConfig(_)), "{err:?}");
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let store = common::open().await;
    let schema = store.schema().to_owned();
    let client = common::raw().await;
    let versions: Vec<i32> = client
        .query(
            &format!("SELECT version FROM {schema}.schema_migrations ORDER BY version"),
            &[],
        )
        .await
        .expect("versions")
        .iter()
        .map(|r| r.get("version"))
        .collect();
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    client
        .execute(
            &format!(
                "INSERT INTO {schema}.schema_migrations (version, name) VALUES (999, 'future')"
            ),
            &[],
        )
        .await
        .expect("pretend a newer build ran");
    let err = PgStore::open(PgConfig::new(common::url()).schema(schema.clone()))
        .await
        .expect_err("newer schema");
    match err {
        Error::SchemaTooNew {
            found, supported, ..
        } => assert_eq!((found, supported), (999, SCHEMA_VERSION)),
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    drop(store);
    assert!(
        !common::schema_exists(&schema).await,
        "dropped with the store"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_opening_at_once_migrate_once() {
    let schema = common::fresh_schema();
    let _guard = common::DropSchema(schema.clone());
    let opened = futures::future::join_all((0..6).map(|_| {
        PgStore::open(
            PgConfig::new(common::url())
                .schema(schema.clone())
                .pool_size(3),
        )
    }))
    .await;
    for o in &opened {
        assert!(o.is_ok(), "{o:?}");
    }
    let client = common::raw().await;
    let n: i64 = client
        .query_one(
            &format!("SELECT count(*) AS migrations FROM {schema}.schema_migrations"),
            &[],
        )
        .await
        .expect("count")
        .get("migrations");
    assert_eq!(n, i64::from(SCHEMA_VERSION));
}
