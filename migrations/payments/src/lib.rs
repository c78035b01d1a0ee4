//! The payments subgraph's schema, as migrations applied at start and by `draftr migrate`.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_payments;
mod m20261201_000001_payment_attempts;
mod m20261202_000001_payment_charges;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_payments::Migration),
            Box::new(m20261201_000001_payment_attempts::Migration),
            Box::new(m20261202_000001_payment_charges::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        "payments_migrations".into_iden()
    }
}
