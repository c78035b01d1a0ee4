//! Test helpers: a database of its own for every test, on either backend.

use secrecy::SecretString;
use uuid::Uuid;

use crate::config::{DatabaseSettings, RedisSettings};

/// The two backends every data-layer test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A database for one test. SQLite files are deleted with it; PostgreSQL schemas live in the
/// `draftr_test` database, which `.ci/run` recreates before each run.
pub struct TestDatabase {
    pub settings: DatabaseSettings,
    _dir: Option<tempfile::TempDir>,
}

/// `DRAFTR_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/draftr_test`.
pub fn postgres_test_url() -> String {
    std::env::var("DRAFTR_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/draftr_test".to_owned())
}

/// `DRAFTR_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`.
pub fn redis_test_url() -> String {
    std::env::var("DRAFTR_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Settings for the test Redis ([`redis_test_url`]), without a namespace.
pub fn redis_test_settings() -> RedisSettings {
    RedisSettings {
        url: Some(SecretString::from(redis_test_url())),
        namespace: None,
    }
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Postgres => Self::postgres().await,
            Backend::Sqlite => Self::sqlite(),
        }
    }

    /// A fresh schema in the test database (created on first use).
    pub async fn postgres() -> Self {
        ensure_postgres_test_database().await;
        let schema = format!("t_{}", Uuid::new_v4().simple());
        Self {
            settings: DatabaseSettings {
                url: SecretString::from(postgres_test_url()),
                schema: Some(schema),
                max_connections: 5,
                ..Default::default()
            },
            _dir: None,
        }
    }

    /// A fresh SQLite file in a temporary folder.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        Self {
            settings: DatabaseSettings {
                url: SecretString::from(url),
                schema: None,
                max_connections: 5,
                ..Default::default()
            },
            _dir: Some(dir),
        }
    }
}

async fn ensure_postgres_test_database() {
    use sea_orm::{ConnectionTrait, Database};
    static ONCE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    ONCE.get_or_init(|| async {
        let url = postgres_test_url();
        let (base, name) = url.rsplit_once('/').expect("database URL ends with /name");
        let name = name.split('?').next().unwrap_or(name).to_owned();
        let admin = Database::connect(format!("{base}/postgres"))
            .await
            .expect("PostgreSQL at 127.0.0.1:5432 (see README: how to start it)");
        let exists = admin
            .query_one_raw(sea_orm::Statement::from_string(
                admin.get_database_backend(),
                format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
            ))
            .await
            .expect("query pg_database")
            .is_some();
        if !exists {
            // Several test binaries may race here; losing the race is fine.
            let _ = admin
                .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await;
        }
    })
    .await;
}

/// A well-formed reservation event of `kind` (three nights of a 300.00 EUR stay, fresh ids) for
/// tests of the writer and the readers; override what a test is about with struct update
/// syntax.
pub fn reservation_event(
    kind: crate::events::reservation::ReservationEventKind,
) -> crate::events::reservation::ReservationEvent {
    use crate::events::reservation::{
        Amount, ReservationEvent, ReservationEventKind as Kind, ReservationState,
    };
    let total = Amount {
        amount: 30_000,
        currency: "EUR".into(),
    };
    ReservationEvent {
        version: ReservationEvent::VERSION,
        event_id: Uuid::now_v7(),
        kind,
        occurred_at: chrono::Utc::now(),
        reservation_id: Uuid::now_v7(),
        property_id: Uuid::now_v7(),
        property_title: "Loft".into(),
        guest_id: Uuid::now_v7(),
        host_id: Uuid::now_v7(),
        check_in: "2027-03-01".parse().expect("date"),
        check_out: "2027-03-04".parse().expect("date"),
        nights: 3,
        refund: (kind == Kind::Cancelled).then(|| Amount {
            amount: 15_000,
            ..total.clone()
        }),
        total,
        status: match kind {
            Kind::Confirmed | Kind::Changed => ReservationState::Confirmed,
            Kind::Cancelled => ReservationState::Cancelled,
            Kind::Failed => ReservationState::Failed,
        },
        failure_code: (kind == Kind::Failed).then(|| "PAYMENT_DECLINED".to_owned()),
        // A change that moved the stay one night later and added a guest, at the same price.
        change: (kind == Kind::Changed).then(|| crate::events::reservation::StayChange {
            change_id: Uuid::now_v7(),
            previous_check_in: "2027-02-28".parse().expect("date"),
            previous_check_out: "2027-03-03".parse().expect("date"),
            previous_guests: 1,
            guests: 2,
            previous_total: Amount {
                amount: 30_000,
                currency: "EUR".into(),
            },
            charged: None,
        }),
    }
}

/// Declares one `#[tokio::test]` per backend for an `async fn(Backend)`.
#[macro_export]
macro_rules! test_on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn on_postgres() {
                    super::$name($crate::testing::Backend::Postgres).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn on_sqlite() {
                    super::$name($crate::testing::Backend::Sqlite).await
                }
            }
        )*
    };
}
