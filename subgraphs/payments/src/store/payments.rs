use draftr_common::db::Constraint;
use sea_orm::entity::prelude::*;

use crate::domain::{PaymentStatus, UnknownStatus};

/// One payment per reservation: `payments_reservation_key`, `UNIQUE (reservation_id)`.
pub const RESERVATION_KEY: Constraint = Constraint {
    postgres: "payments_reservation_key",
    sqlite: "payments.reservation_id",
};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub reservation_id: Uuid,
    pub guest_id: Uuid,
    pub host_id: Uuid,
    pub amount: i64,
    pub currency: String,
    pub refunded: i64,
    /// [`PaymentStatus::as_str`]; read with [`Model::status()`].
    pub status: String,
    pub provider: String,
    pub provider_ref: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    /// Authorizations tried so far; the next one's key is
    /// [`crate::provider::authorize_key`]`(reservation, attempts + 1)`.
    pub attempts: i32,
    /// Set when an authorization attempt starts and cleared when its outcome is known: while
    /// set, the authorization may exist at the provider without our knowing.
    pub attempted_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The stored status, read strictly: a value this code does not write is an error.
    pub fn status(&self) -> Result<PaymentStatus, UnknownStatus> {
        PaymentStatus::parse(&self.status)
    }
}
