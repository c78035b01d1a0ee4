use draftr_common::db::Constraint;
use sea_orm::entity::prelude::*;

/// One refund per payment: `refunds_payment_key`, `UNIQUE (payment_id)`.
pub const PAYMENT_KEY: Constraint = Constraint {
    postgres: "refunds_payment_key",
    sqlite: "refunds.payment_id",
};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refunds")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub payment_id: Uuid,
    pub amount: i64,
    pub provider_ref: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
