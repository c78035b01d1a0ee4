//! The notifications subgraph's schema, as migrations applied at start and by `draftr migrate`.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_notifications;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20261122_000001_create_notifications::Migration)]
    }

    fn migration_table_name() -> DynIden {
        "notifications_migrations".into_iden()
    }
}
