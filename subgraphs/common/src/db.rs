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
        if let Err(err) = created
            && !err.to_string().contains("duplicate key")
        {
            return Err(err);
        }
        db.close().await?;
        opts.set_schema_search_path(schema.clone());
    }
    Database::connect(opts).await
}

/// A unique or primary-key violation, on PostgreSQL or SQLite: how "someone else already
/// stored this" (a concurrent or repeated request) is recognised everywhere.
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
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
}
