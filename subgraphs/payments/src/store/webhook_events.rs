use draftr_common::db::Constraint;
use sea_orm::entity::prelude::*;

/// An event id is recorded once: the primary key, which the migration leaves unnamed
/// (PostgreSQL names it `webhook_events_pkey`).
pub const ID_KEY: Constraint = Constraint {
    postgres: "webhook_events_pkey",
    sqlite: "webhook_events.id",
};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub kind: String,
    pub received_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
