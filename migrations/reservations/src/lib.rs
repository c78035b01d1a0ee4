//! The reservations subgraph's schema, as migrations applied at start and by `draftr migrate`.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_reservations;
mod m20261201_000002_create_reviews;
mod m20261201_000003_create_calendar_blocks;
mod m20261202_000000_create_reservation_changes;
mod m20261202_000001_calendar_imports;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_reservations::Migration),
            Box::new(m20261201_000002_create_reviews::Migration),
            Box::new(m20261201_000003_create_calendar_blocks::Migration),
            Box::new(m20261202_000000_create_reservation_changes::Migration),
            Box::new(m20261202_000001_calendar_imports::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        "reservations_migrations".into_iden()
    }
}
