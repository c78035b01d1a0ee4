use draftr_common::db::Constraint;
use sea_orm::entity::prelude::*;

/// One refund per payment and refund key: `refunds_payment_refund_key`,
/// `UNIQUE (payment_id, refund_key)`.
pub const PAYMENT_REFUND_KEY: Constraint = Constraint {
    postgres: "refunds_payment_refund_key",
    sqlite: "refunds.payment_id, refunds.refund_key",
};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refunds")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub payment_id: Uuid,
    /// The refund of the reservation this is a part of ([`crate::domain::refund_key`];
    /// `cancel` for a cancellation).
    pub refund_key: String,
    pub amount: i64,
    pub provider_ref: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
