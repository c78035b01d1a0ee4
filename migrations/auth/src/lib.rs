//! The auth subgraph's schema, as migrations applied at start and by `draftr migrate`.
//!
//! Written with sea-query's builder (not raw SQL) so the same migration runs on SQLite and
//! PostgreSQL.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_users;
mod m20261122_000002_create_refresh_tokens;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_users::Migration),
            Box::new(m20261122_000002_create_refresh_tokens::Migration),
        ]
    }

    /// Named per service, so a database shared by several services in development still
    /// keeps each service's migration history apart.
    fn migration_table_name() -> DynIden {
        "auth_migrations".into_iden()
    }
}
