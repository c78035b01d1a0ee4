//! Opening a service's database, the same way on SQLite (embedded default) and PostgreSQL.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};
use secrecy::ExposeSecret;

use crate::config::DatabaseSettings;

/// How many statements a pool has run: N+1 regressions show up as counts that grow with a
/// page size (tests compare them), and statements slower than [`SLOW_STATEMENT`] are logged.
#[derive(Clone, Default, Debug)]
pub struct StatementCounter(Arc<AtomicU64>);

impl StatementCounter {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

pub const SLOW_STATEMENT: Duration = Duration::from_millis(500);

/// [`connect`], with every statement counted and slow ones logged.
pub async fn connect_counted(
    settings: &DatabaseSettings,
) -> Result<(DatabaseConnection, StatementCounter), DbErr> {
    let mut db = connect(settings).await?;
    let counter = StatementCounter::default();
    let inner = counter.0.clone();
    db.set_metric_callback(move |info| {
        inner.fetch_add(1, Ordering::Relaxed);
        if info.elapsed > SLOW_STATEMENT {
            tracing::warn!(
                elapsed_ms = info.elapsed.as_millis() as u64,
                failed = info.failed,
                "slow SQL statement"
            );
        }
    });
    Ok((db, counter))
}

/// Opens the pool described by `settings`.
///
/// SQLite: the file (and its folder) is created; WAL journaling so readers never block the one
/// writer, and a busy timeout so concurrent writers queue instead of failing with `SQLITE_BUSY`.
/// PostgreSQL: when a schema is configured it is created if missing and made the connection's
/// `search_path`, so the service's migrations and queries stay inside the schema it owns.
pub async fn connect(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbErr> {
    let url = settings.url.expose_secret();
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(settings.max_connections)
        .connect_timeout(Duration::from_secs(settings.connect_timeout_secs))
        .acquire_timeout(Duration::from_secs(settings.connect_timeout_secs.max(5)))
        .sqlx_logging(false);

    if url.starts_with("sqlite:") {
        if let Some(parent) = sqlite_path(url)
            .and_then(|path| Path::new(path).parent())
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", parent.display())))?;
        }
        opts.map_sqlx_sqlite_opts(|o| {
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
        return Database::connect(opts).await;
    }

    if let Some(schema) = &settings.schema {
        validate_schema_name(schema)?;
        let mut bootstrap = ConnectOptions::new(url.to_owned());
        bootstrap
            .max_connections(1)
            .sqlx_logging(false)
            .connect_timeout(Duration::from_secs(settings.connect_timeout_secs));
        let db = Database::connect(bootstrap).await?;
        // Concurrent starts may race to create the schema; IF NOT EXISTS can still collide on
        // the catalog's unique index, which only means someone else won.
        let created = db
            .execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .await;
        // (`23505` on pg_namespace's unique index, or `42P06`).
        if let Err(err) = created
            && !matches!(
                error_code(&err).as_deref(),
                Some(codes::PG_UNIQUE | codes::PG_DUPLICATE_SCHEMA)
            )
        {
            return Err(err);
        }
        db.close().await?;
        opts.set_schema_search_path(schema.clone());
    }
    Database::connect(opts).await
}

/// One page of a list in keyset order, highest id first (UUIDv7 ids: newest first): the rows
/// of `query` with ids below `after`, at most `limit`, and whether more follow. One statement,
/// and a cursor that stays right while rows are inserted.
pub async fn page_by_id_desc<E, C>(
    db: &impl ConnectionTrait,
    query: sea_orm::Select<E>,
    id: C,
    after: Option<uuid::Uuid>,
    limit: u64,
) -> Result<(Vec<E::Model>, bool), DbErr>
where
    E: sea_orm::EntityTrait,
    C: sea_orm::ColumnTrait,
{
    use sea_orm::{QueryFilter, QueryOrder, QuerySelect};
    let query = match after {
        Some(after) => query.filter(id.lt(after)),
        None => query,
    };
    let mut rows = query
        .order_by(id, sea_orm::Order::Desc)
        .limit(limit + 1)
        .all(db)
        .await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    Ok((rows, more))
}

/// A constraint as each backend names it when a statement violates it, so a caller can tell
/// *which* rule refused a write (the approach of realworld-axum-sqlx: by constraint name, not
/// by message text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Constraint {
    /// PostgreSQL's name for it: the constraint's, or the unique index's.
    pub postgres: &'static str,
    /// SQLite's: a unique or primary key is reported by its columns (`table.col` or
    /// `table.a, table.b`); a trigger that refuses with `RAISE(ABORT, 'msg')` by its message.
    pub sqlite: &'static str,
}

/// SQLSTATE classes and codes (PostgreSQL) and extended result codes (SQLite) this module reads.
mod codes {
    pub const PG_UNIQUE: &str = "23505";
    pub const PG_EXCLUSION: &str = "23P01";
    pub const PG_FOREIGN_KEY: &str = "23503";
    pub const PG_CHECK: &str = "23514";
    pub const PG_DEADLOCK: &str = "40P01";
    pub const PG_DUPLICATE_SCHEMA: &str = "42P06";
    pub const SQLITE_UNIQUE: &str = "2067";
    pub const SQLITE_PRIMARY_KEY: &str = "1555";
    pub const SQLITE_TRIGGER: &str = "1811";
    pub const SQLITE_FOREIGN_KEY: &str = "787";
    pub const SQLITE_CHECK: &str = "275";
}

/// The driver's error behind `err`, if the database itself refused the statement.
fn database_error(err: &DbErr) -> Option<&(dyn sea_orm::sqlx::error::DatabaseError + 'static)> {
    use sea_orm::RuntimeErr;
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match e.as_ref() {
                sea_orm::sqlx::Error::Database(db) => Some(db.as_ref()),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The SQLSTATE (PostgreSQL) or extended result code (SQLite) of a refused statement.
pub fn error_code(err: &DbErr) -> Option<String> {
    database_error(err).and_then(|e| e.code().map(|c| c.into_owned()))
}

/// Whether `err` is `constraint` refusing a write (unique, primary, exclusion, foreign or
/// check constraint, or SQLite's equivalent trigger). Any other error, including a different
/// constraint of the same kind, is not.
pub fn violates(err: &DbErr, constraint: Constraint) -> bool {
    let Some(e) = database_error(err) else {
        return false;
    };
    let Some(code) = e.code() else {
        return false;
    };
    match code.as_ref() {
        codes::PG_UNIQUE | codes::PG_EXCLUSION | codes::PG_FOREIGN_KEY | codes::PG_CHECK => {
            e.constraint() == Some(constraint.postgres)
        }
        codes::SQLITE_TRIGGER => e.message() == constraint.sqlite,
        codes::SQLITE_UNIQUE
        | codes::SQLITE_PRIMARY_KEY
        | codes::SQLITE_FOREIGN_KEY
        | codes::SQLITE_CHECK => e
            .message()
            .split_once("constraint failed: ")
            .is_some_and(|(_, what)| what == constraint.sqlite),
        _ => false,
    }
}

/// Whether `err` is a foreign key refusing a write, whichever it is: SQLite does not say which
/// (its message names no constraint), so callers use this where only one can apply.
pub fn violates_foreign_key(err: &DbErr) -> bool {
    matches!(
        error_code(err).as_deref(),
        Some(codes::PG_FOREIGN_KEY | codes::SQLITE_FOREIGN_KEY)
    )
}

/// PostgreSQL's deadlock detector aborted this statement (SQLSTATE `40P01`); retrying the
/// transaction decides it. SQLite has one writer at a time and never reports one.
pub fn is_deadlock(err: &DbErr) -> bool {
    error_code(err).as_deref() == Some(codes::PG_DEADLOCK)
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// Schema names are interpolated into DDL, so only plain identifiers are accepted.
fn validate_schema_name(schema: &str) -> Result<(), DbErr> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(DbErr::Custom(format!(
            "invalid schema name {schema:?}: use lowercase letters, digits and _"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_are_found_in_urls() {
        assert_eq!(
            sqlite_path("sqlite://data/a.db?mode=rwc"),
            Some("data/a.db")
        );
        assert_eq!(sqlite_path("sqlite:a.db"), Some("a.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }

    #[test]
    fn schema_names_that_could_inject_sql_are_refused() {
        assert!(validate_schema_name("auth").is_ok());
        assert!(validate_schema_name("t_0a1b").is_ok());
        assert!(validate_schema_name("auth\"; drop schema public; --").is_err());
        assert!(validate_schema_name("Auth").is_err());
        assert!(validate_schema_name("").is_err());
    }

    const EMAIL: Constraint = Constraint {
        postgres: "people_email_key",
        sqlite: "people.email",
    };
    const NAME: Constraint = Constraint {
        postgres: "people_name_key",
        sqlite: "people.name",
    };
    const NO_BOB: Constraint = Constraint {
        postgres: "people_no_bob",
        sqlite: "people_no_bob",
    };

    /// Constraint violations are told apart by name, on both backends; other errors are none.
    async fn violations_are_classified_by_constraint(backend: crate::testing::Backend) {
        use crate::testing::{Backend, TestDatabase};
        let test = TestDatabase::new(backend).await;
        let db = connect(&test.settings).await.unwrap();
        let ddl: &[&str] = match backend {
            Backend::Postgres => &[
                "CREATE TABLE people (id INT PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL, \
                 CONSTRAINT people_email_key UNIQUE (email), CONSTRAINT people_name_key UNIQUE (name), \
                 CONSTRAINT people_no_bob CHECK (name <> 'bob'))",
            ],
            Backend::Sqlite => &[
                "CREATE TABLE people (id INT PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL)",
                "CREATE UNIQUE INDEX people_email_key ON people (email)",
                "CREATE UNIQUE INDEX people_name_key ON people (name)",
                "CREATE TRIGGER people_no_bob BEFORE INSERT ON people WHEN NEW.name = 'bob' \
                 BEGIN SELECT RAISE(ABORT, 'people_no_bob'); END",
            ],
        };
        for statement in ddl {
            db.execute_unprepared(statement).await.unwrap();
        }
        db.execute_unprepared("INSERT INTO people VALUES (1, 'a@x', 'ann')")
            .await
            .unwrap();
        let same_email = db
            .execute_unprepared("INSERT INTO people VALUES (2, 'a@x', 'amy')")
            .await
            .unwrap_err();
        assert!(violates(&same_email, EMAIL), "{same_email}");
        assert!(!violates(&same_email, NAME), "{same_email}");
        let same_name = db
            .execute_unprepared("INSERT INTO people VALUES (3, 'b@x', 'ann')")
            .await
            .unwrap_err();
        assert!(violates(&same_name, NAME) && !violates(&same_name, EMAIL));
        let bob = db
            .execute_unprepared("INSERT INTO people VALUES (4, 'c@x', 'bob')")
            .await
            .unwrap_err();
        assert!(violates(&bob, NO_BOB) && !violates(&bob, EMAIL), "{bob}");
        let syntax = db
            .execute_unprepared("INSERT INTO nowhere VALUES (1)")
            .await
            .unwrap_err();
        assert!(!violates(&syntax, EMAIL) && !is_deadlock(&syntax));
        assert!(error_code(&syntax).is_some());
    }

    crate::test_on_both_backends!(violations_are_classified_by_constraint);
}
