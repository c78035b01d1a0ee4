//! The catalog subgraph's schema, as migrations applied at start and by `draftr migrate`.
//!
//! Written with sea-query's builder (not raw SQL) so the same migration runs on SQLite and
//! PostgreSQL.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_catalog;
mod m20261122_000002_create_booked_stays;
mod m20261201_000003_create_property_photos;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_catalog::Migration),
            Box::new(m20261122_000002_create_booked_stays::Migration),
            Box::new(m20261201_000003_create_property_photos::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        "catalog_migrations".into_iden()
    }
}
