use draftr_common::db::Constraint;
use sea_orm::entity::prelude::*;

use crate::domain::{PaymentPurpose, PaymentStatus, UnknownStatus};

/// One payment per charge: `payments_charge_key`, `UNIQUE (charge_id)`.
pub const CHARGE_KEY: Constraint = Constraint {
    postgres: "payments_charge_key",
    sqlite: "payments.charge_id",
};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// What the payment pays for, its idempotency key: the reservation's id for the booking's
    /// own payment, a change's id for the extra charge of a change (unique).
    pub charge_id: Uuid,
    /// The reservation the payment belongs to.
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
    /// [`crate::provider::authorize_key`]`(charge, attempts + 1)`.
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
    /// The booking's own payment, or a change's extra charge.
    pub fn purpose(&self) -> PaymentPurpose {
        if self.charge_id == self.reservation_id {
            PaymentPurpose::Booking
        } else {
            PaymentPurpose::Change
        }
    }

    /// What is left to refund (`amount - refunded`).
    pub fn refundable(&self) -> i64 {
        self.amount - self.refunded
    }

    /// The stored status, read strictly: a value this code does not write is an error.
    pub fn status(&self) -> Result<PaymentStatus, UnknownStatus> {
        PaymentStatus::parse(&self.status)
    }
}
