//! The payments of each reservation, through their life: authorize → capture (or cancel) →
//! refund.
//!
//! A payment is keyed by its **charge id**: the reservation's id for the booking's own payment,
//! a change's id for the extra charge of a change that raised the total. One row per charge (a
//! unique constraint), written *before* the provider is called, so a crash between the
//! provider's answer and our write leaves a PENDING row that the next call for the charge
//! finishes. Every operation is idempotent: calling it again returns the current state and
//! never moves money twice.
//!
//! A refund is of the reservation, under a refund key (`cancel` for a cancellation): it is
//! spread over the reservation's payments, newest first, one recorded part per payment and
//! key, and a repeat (or a retry after a crash half way) plans again from the recorded parts
//! and makes only the missing ones (`domain::plan_refund`).
//!
//! An authorization whose outcome is unknown (a crash, a timeout, a 500) is never settled by
//! sending it again: Stripe replays a stored 500 under the same key for 24 hours and then
//! forgets the key, so a replay either learns nothing or authorizes a second time. The next
//! call looks it up instead ([`PaymentProvider::find_authorization`]); only once the provider
//! says there is none, and the last attempt is older than the provider's
//! [`PaymentProvider::settle_after`], is a new attempt made, under a new key.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use draftr_common::db::violates;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::domain;
use crate::error::Error;
use crate::provider::{
    Authorization, Charge, Found, PaymentProvider, ProviderError, authorize_key, idempotency_key,
    refund_idempotency_key,
};
use crate::store::{payments, refunds, webhook_events};

pub use crate::domain::{CANCEL_REFUND_KEY, PaymentPurpose, PaymentStatus, UnknownStatus};
pub use payments::Model as Payment;

/// What reservations asks to authorize.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub reservation_id: Uuid,
    /// The charge: `reservation_id` for the booking's own payment, a change's id for its extra
    /// charge.
    pub charge_id: Uuid,
    pub guest_id: Uuid,
    pub host_id: Uuid,
    pub amount: i64,
    pub currency: String,
    pub payment_method: String,
}

impl AuthorizeRequest {
    /// The charge's rules (see [`crate::domain`]), checked before anything is stored.
    fn validate(&self) -> Result<(), Error> {
        domain::amount(self.amount)?;
        domain::currency(&self.currency)?;
        domain::payment_method(&self.payment_method)?;
        Ok(())
    }
}

pub struct PaymentService {
    db: DatabaseConnection,
    provider: Arc<dyn PaymentProvider>,
}

/// Why a PENDING payment is being settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settle<'a> {
    /// To authorize with this payment method: if nothing exists at the provider, make an
    /// attempt.
    Authorize(&'a str),
    /// To undo: if nothing exists at the provider, there is nothing to undo.
    Undo,
}

/// How long a call waits for a concurrent attempt at the same authorization to be recorded.
const IN_FLIGHT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The answer for a payment that failed: the decline it recorded.
fn declined(payment: Payment) -> Error {
    Error::Declined {
        code: payment
            .failure_code
            .unwrap_or_else(|| domain::DEFAULT_DECLINE_CODE.into()),
        message: payment
            .failure_message
            .unwrap_or_else(|| domain::DEFAULT_DECLINE_MESSAGE.into()),
    }
}

fn provider_error(err: ProviderError) -> Error {
    match err {
        ProviderError::Unavailable(cause) | ProviderError::Unknown(cause) => {
            Error::Unavailable(cause)
        }
        ProviderError::Invalid(message) => Error::Invalid {
            field: "paymentMethod",
            message,
        },
    }
}

impl PaymentService {
    pub fn new(db: DatabaseConnection, provider: Arc<dyn PaymentProvider>) -> Self {
        Self { db, provider }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The booking's own payment of a reservation (its charge id is the reservation's).
    pub async fn by_reservation(&self, reservation_id: Uuid) -> Result<Option<Payment>, Error> {
        self.by_charge(reservation_id, reservation_id).await
    }

    /// The payment of the charge `charge_id` of the reservation (none if the charge belongs to
    /// another reservation).
    pub async fn by_charge(
        &self,
        reservation_id: Uuid,
        charge_id: Uuid,
    ) -> Result<Option<Payment>, Error> {
        Ok(self
            .charge(charge_id)
            .await?
            .filter(|p| p.reservation_id == reservation_id))
    }

    async fn charge(&self, charge_id: Uuid) -> Result<Option<Payment>, Error> {
        Ok(payments::Entity::find()
            .filter(payments::Column::ChargeId.eq(charge_id))
            .one(&self.db)
            .await?)
    }

    /// The booking's own payment of each reservation, by reservation.
    pub async fn by_reservations(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Payment>, Error> {
        Ok(payments::Entity::find()
            .filter(payments::Column::ChargeId.is_in(ids.iter().copied()))
            .all(&self.db)
            .await?
            .into_iter()
            .filter(|p| p.charge_id == p.reservation_id)
            .map(|p| (p.reservation_id, p))
            .collect())
    }

    /// Every payment of each reservation, oldest first, by reservation (one query).
    pub async fn all_by_reservations(
        &self,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<Payment>>, Error> {
        let mut all: HashMap<Uuid, Vec<Payment>> = HashMap::new();
        for payment in payments::Entity::find()
            .filter(payments::Column::ReservationId.is_in(ids.iter().copied()))
            .order_by_asc(payments::Column::CreatedAt)
            .order_by_asc(payments::Column::Id)
            .all(&self.db)
            .await?
        {
            all.entry(payment.reservation_id).or_default().push(payment);
        }
        Ok(all)
    }

    /// Every payment of a reservation, oldest first.
    pub async fn all_by_reservation(&self, reservation_id: Uuid) -> Result<Vec<Payment>, Error> {
        Ok(self
            .all_by_reservations(&[reservation_id])
            .await?
            .remove(&reservation_id)
            .unwrap_or_default())
    }

    pub async fn get_many(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Payment>, Error> {
        Ok(payments::Entity::find()
            .filter(payments::Column::Id.is_in(ids.iter().copied()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect())
    }

    /// Holds the amount on the guest's payment method. A repeat for the same charge returns
    /// the first outcome (a decline again, as a decline). A change's charge comes after the
    /// booking's own payment, in its currency, for the same guest and host.
    pub async fn authorize(&self, req: AuthorizeRequest) -> Result<Payment, Error> {
        req.validate()?;
        let payment = match self.charge(req.charge_id).await? {
            Some(existing) => {
                if existing.reservation_id != req.reservation_id {
                    return Err(Error::invalid(
                        "chargeId",
                        "this charge belongs to another reservation",
                    ));
                }
                if existing.amount != req.amount || existing.currency != req.currency {
                    return Err(Error::Invalid {
                        field: "amount",
                        message: if existing.purpose() == PaymentPurpose::Booking {
                            "this reservation was already authorized for another amount".into()
                        } else {
                            "this charge was already authorized for another amount".into()
                        },
                    });
                }
                existing
            }
            None => {
                if req.charge_id != req.reservation_id {
                    self.check_change_charge(&req).await?;
                }
                self.insert_pending(&req).await?
            }
        };
        match payment.status()? {
            PaymentStatus::Pending => {
                self.settle_pending(payment, Settle::Authorize(&req.payment_method))
                    .await
            }
            PaymentStatus::Failed => Err(declined(payment)),
            _ => Ok(payment),
        }
    }

    /// A change's extra charge belongs with the booking's own payment: it must exist, and the
    /// change is charged in its currency to the same guest, for the same host.
    async fn check_change_charge(&self, req: &AuthorizeRequest) -> Result<(), Error> {
        let Some(booking) = self.by_reservation(req.reservation_id).await? else {
            return Err(Error::invalid(
                "chargeId",
                "a change can be charged only once the reservation's own payment exists",
            ));
        };
        if booking.currency != req.currency {
            return Err(Error::invalid(
                "currency",
                format!(
                    "a change is charged in the reservation's currency ({})",
                    booking.currency
                ),
            ));
        }
        if booking.guest_id != req.guest_id || booking.host_id != req.host_id {
            return Err(Error::invalid(
                "guestId",
                "a change is charged to the reservation's guest, for its host",
            ));
        }
        Ok(())
    }

    async fn insert_pending(&self, req: &AuthorizeRequest) -> Result<Payment, Error> {
        let now = Utc::now();
        let row = payments::ActiveModel {
            id: Set(Uuid::now_v7()),
            charge_id: Set(req.charge_id),
            reservation_id: Set(req.reservation_id),
            guest_id: Set(req.guest_id),
            host_id: Set(req.host_id),
            amount: Set(req.amount),
            currency: Set(req.currency.clone()),
            refunded: Set(0),
            status: Set(PaymentStatus::Pending.as_str().into()),
            provider: Set(self.provider.name().into()),
            provider_ref: Set(None),
            failure_code: Set(None),
            failure_message: Set(None),
            attempts: Set(0),
            attempted_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        };
        match row.insert(&self.db).await {
            Ok(p) => Ok(p),
            // A concurrent call for the same charge won the insert; carry on with its row.
            Err(e) if violates(&e, payments::CHARGE_KEY) => self
                .by_charge(req.reservation_id, req.charge_id)
                .await?
                .ok_or(Error::Db(e)),
            Err(e) => Err(e.into()),
        }
    }

    /// Settles a PENDING payment: looks up what an earlier attempt may have done, and (to
    /// authorize) makes an attempt only when none can exist.
    async fn settle_pending(&self, payment: Payment, why: Settle<'_>) -> Result<Payment, Error> {
        if payment.attempts > 0 {
            match self.provider.find_authorization(payment.charge_id).await {
                Ok(Some(found)) => {
                    tracing::info!(payment.id = %payment.id, found = ?found, "earlier authorization found at the provider");
                    return self.record_found(payment, found).await;
                }
                Ok(None) => {
                    if let Some(at) = payment.attempted_at {
                        let since = (Utc::now() - at).to_std().unwrap_or_default();
                        if since < self.provider.settle_after() {
                            return self
                                .await_in_flight(
                                    payment.id,
                                    format!(
                                        "attempt {} made {}s ago is not found at the provider yet",
                                        payment.attempts,
                                        since.as_secs()
                                    ),
                                )
                                .await;
                        }
                    }
                    if why == Settle::Undo {
                        tracing::info!(payment.id = %payment.id, "no authorization exists at the provider; nothing to undo");
                        return self
                            .nothing_to_undo(
                                payment.id,
                                "The payment provider holds no authorization for this payment.",
                            )
                            .await;
                    }
                }
                Err(e) => return Err(provider_error(e)),
            }
        }
        let Settle::Authorize(payment_method) = why else {
            // Never attempted (a crash between our insert and the call): nothing to undo.
            return self
                .nothing_to_undo(payment.id, "The payment was never sent to the provider.")
                .await;
        };
        let attempt = match self.claim_attempt(&payment).await {
            Ok(attempt) => attempt,
            Err(Error::OutcomeUnknown(cause)) => {
                return self.await_in_flight(payment.id, cause).await;
            }
            Err(e) => return Err(e),
        };
        // The provider knows a charge by its charge id (Stripe's metadata `reservation_id`).
        let charge = Charge {
            reservation_id: payment.charge_id,
            amount: payment.amount,
            currency: payment.currency.clone(),
            payment_method: payment_method.to_owned(),
        };
        let key = authorize_key(payment.charge_id, attempt);
        let outcome = match payment.purpose() {
            PaymentPurpose::Booking => self.provider.authorize(&charge, &key).await,
            PaymentPurpose::Change => {
                self.provider
                    .authorize_change(&charge, payment.reservation_id, &key)
                    .await
            }
        };
        self.record_authorization(payment.id, outcome).await
    }

    /// PENDING → FAILED (`not_authorized`) for a payment the provider holds nothing for.
    async fn nothing_to_undo(&self, id: Uuid, why: &str) -> Result<Payment, Error> {
        self.transition(
            &self.db,
            id,
            &[PaymentStatus::Pending],
            PaymentStatus::Failed,
            None,
            Some(("not_authorized".into(), why.into())),
        )
        .await
    }

    /// Takes the next attempt number and marks it in flight; a concurrent caller that took it
    /// first makes this one answer "outcome unknown" rather than authorize twice.
    async fn claim_attempt(&self, payment: &Payment) -> Result<i32, Error> {
        let claimed = payments::Entity::update_many()
            .col_expr(
                payments::Column::Attempts,
                Expr::value(payment.attempts + 1),
            )
            .col_expr(payments::Column::AttemptedAt, Expr::value(Some(Utc::now())))
            .col_expr(payments::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(payments::Column::Id.eq(payment.id))
            .filter(payments::Column::Status.eq(PaymentStatus::Pending.as_str()))
            .filter(payments::Column::Attempts.eq(payment.attempts))
            .exec(&self.db)
            .await?;
        if claimed.rows_affected == 0 {
            return Err(Error::OutcomeUnknown(
                "another authorization attempt for this payment is in flight".into(),
            ));
        }
        Ok(payment.attempts + 1)
    }

    /// Waits a moment for an attempt in flight elsewhere (a concurrent retry of the same
    /// booking, usually) to be recorded, and answers with its outcome; "outcome unknown" if it
    /// is not recorded by then.
    async fn await_in_flight(&self, id: Uuid, cause: String) -> Result<Payment, Error> {
        let deadline = tokio::time::Instant::now() + IN_FLIGHT_WAIT;
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let payment = payments::Entity::find_by_id(id)
                .one(&self.db)
                .await?
                .ok_or(Error::NotFound)?;
            match payment.status()? {
                PaymentStatus::Pending if tokio::time::Instant::now() < deadline => {}
                PaymentStatus::Pending => return Err(Error::OutcomeUnknown(cause)),
                PaymentStatus::Failed => return Err(declined(payment)),
                _ => return Ok(payment),
            }
        }
    }

    /// Records the provider's answer to an attempt.
    async fn record_authorization(
        &self,
        id: Uuid,
        outcome: Result<Authorization, ProviderError>,
    ) -> Result<Payment, Error> {
        match outcome {
            Ok(Authorization::Authorized { provider_ref }) => {
                tracing::info!(payment.id = %id, "payment authorized");
                self.transition(
                    &self.db,
                    id,
                    &[PaymentStatus::Pending],
                    PaymentStatus::Authorized,
                    Some(provider_ref),
                    None,
                )
                .await
            }
            Ok(Authorization::Declined { code, message }) => {
                tracing::info!(payment.id = %id, decline = %code, "payment declined");
                self.transition(
                    &self.db,
                    id,
                    &[PaymentStatus::Pending],
                    PaymentStatus::Failed,
                    None,
                    Some((code.clone(), message.clone())),
                )
                .await?;
                Err(Error::Declined { code, message })
            }
            Err(ProviderError::Invalid(message)) => {
                self.transition(
                    &self.db,
                    id,
                    &[PaymentStatus::Pending],
                    PaymentStatus::Failed,
                    None,
                    Some(("invalid_payment_method".into(), message.clone())),
                )
                .await?;
                Err(Error::Invalid {
                    field: "paymentMethod",
                    message,
                })
            }
            // Not processed: nothing can exist, so the next call may try again at once.
            Err(ProviderError::Unavailable(cause)) => {
                payments::Entity::update_many()
                    .col_expr(
                        payments::Column::AttemptedAt,
                        Expr::value(Option::<chrono::DateTime<Utc>>::None),
                    )
                    .filter(payments::Column::Id.eq(id))
                    .filter(payments::Column::Status.eq(PaymentStatus::Pending.as_str()))
                    .exec(&self.db)
                    .await?;
                Err(Error::Unavailable(cause))
            }
            // May exist: the row stays PENDING with the attempt marked, for a later lookup.
            Err(ProviderError::Unknown(cause)) => Err(Error::OutcomeUnknown(cause)),
        }
    }

    /// Records what a lookup found at the provider for a PENDING payment.
    async fn record_found(&self, payment: Payment, found: Found) -> Result<Payment, Error> {
        let (to, provider_ref, failure) = match found {
            Found::Authorized { provider_ref } => {
                (PaymentStatus::Authorized, Some(provider_ref), None)
            }
            Found::Captured { provider_ref } => (PaymentStatus::Captured, Some(provider_ref), None),
            Found::Canceled { provider_ref } => (PaymentStatus::Canceled, Some(provider_ref), None),
            Found::Declined { code, message } => {
                (PaymentStatus::Failed, None, Some((code, message)))
            }
        };
        let updated = self
            .transition(
                &self.db,
                payment.id,
                &[PaymentStatus::Pending],
                to,
                provider_ref,
                failure,
            )
            .await?;
        match updated.status()? {
            PaymentStatus::Failed => Err(declined(updated)),
            _ => Ok(updated),
        }
    }

    /// Moves a payment from one of `from` to `to`; returns the row as it now is (a concurrent
    /// writer that got there first wins, and its result is returned).
    async fn transition(
        &self,
        conn: &impl ConnectionTrait,
        id: Uuid,
        from: &[PaymentStatus],
        to: PaymentStatus,
        provider_ref: Option<String>,
        failure: Option<(String, String)>,
    ) -> Result<Payment, Error> {
        let mut update = payments::Entity::update_many()
            .col_expr(payments::Column::Status, Expr::value(to.as_str()))
            .col_expr(payments::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(payments::Column::Id.eq(id))
            .filter(payments::Column::Status.is_in(from.iter().map(|s| s.as_str())));
        if let Some(r) = provider_ref {
            update = update.col_expr(payments::Column::ProviderRef, Expr::value(r));
        }
        if let Some((code, message)) = failure {
            update = update
                .col_expr(payments::Column::FailureCode, Expr::value(code))
                .col_expr(
                    payments::Column::FailureMessage,
                    Expr::value(message.chars().take(255).collect::<String>()),
                );
        }
        update.exec(conn).await?;
        payments::Entity::find_by_id(id)
            .one(conn)
            .await?
            .ok_or(Error::NotFound)
    }

    async fn require(&self, reservation_id: Uuid, charge_id: Uuid) -> Result<Payment, Error> {
        self.by_charge(reservation_id, charge_id)
            .await?
            .ok_or(Error::NotFound)
    }

    /// Takes the held funds of one charge (after the reservation, or its change, is
    /// confirmed).
    pub async fn capture(&self, reservation_id: Uuid, charge_id: Uuid) -> Result<Payment, Error> {
        let payment = self.require(reservation_id, charge_id).await?;
        self.capture_payment(payment).await
    }

    async fn capture_payment(&self, payment: Payment) -> Result<Payment, Error> {
        match payment.status()? {
            PaymentStatus::Captured
            | PaymentStatus::Refunded
            | PaymentStatus::PartiallyRefunded => Ok(payment),
            PaymentStatus::Authorized => {
                let provider_ref = payment.provider_ref.clone().unwrap_or_default();
                self.provider
                    .capture(
                        &provider_ref,
                        &idempotency_key(payment.charge_id, "capture"),
                    )
                    .await
                    .map_err(provider_error)?;
                tracing::info!(payment.id = %payment.id, reservation.id = %payment.reservation_id, charge.id = %payment.charge_id, "payment captured");
                self.transition(
                    &self.db,
                    payment.id,
                    &[PaymentStatus::Authorized],
                    PaymentStatus::Captured,
                    None,
                    None,
                )
                .await
            }
            other => Err(Error::WrongState {
                action: "captured",
                status: other,
            }),
        }
    }

    /// Undoes the payment of one charge that did not happen (a booking, or a change): voids an
    /// authorization, refunds a capture in full, settles an unknown outcome first. Nothing to
    /// undo is not an error. The reservation's other charges are left alone.
    pub async fn cancel(
        &self,
        reservation_id: Uuid,
        charge_id: Uuid,
    ) -> Result<Option<Payment>, Error> {
        let Some(mut payment) = self.by_charge(reservation_id, charge_id).await? else {
            return Ok(None);
        };
        if payment.status()? == PaymentStatus::Pending {
            // The provider may have authorized: look it up (never authorize just to undo).
            payment = match self.settle_pending(payment, Settle::Undo).await {
                Ok(p) => p,
                Err(Error::Declined { .. }) | Err(Error::Invalid { .. }) => {
                    return Ok(Some(self.require(reservation_id, charge_id).await?));
                }
                // Cannot tell yet: the caller (the reconciler) asks again later.
                Err(Error::OutcomeUnknown(cause)) => return Err(Error::Unavailable(cause)),
                Err(e) => return Err(e),
            };
        }
        match payment.status()? {
            PaymentStatus::Authorized => {
                let provider_ref = payment.provider_ref.clone().unwrap_or_default();
                self.provider
                    .cancel(&provider_ref, &idempotency_key(charge_id, "cancel"))
                    .await
                    .map_err(provider_error)?;
                tracing::info!(payment.id = %payment.id, reservation.id = %reservation_id, charge.id = %charge_id, "authorization voided");
                Ok(Some(
                    self.transition(
                        &self.db,
                        payment.id,
                        &[PaymentStatus::Authorized],
                        PaymentStatus::Canceled,
                        None,
                        None,
                    )
                    .await?,
                ))
            }
            PaymentStatus::Captured => {
                // All of it, as the cancellation's part of this payment.
                let amount = payment.refundable();
                self.refund_part(&payment, CANCEL_REFUND_KEY, amount)
                    .await?;
                Ok(Some(self.require(reservation_id, charge_id).await?))
            }
            _ => Ok(Some(payment)),
        }
    }

    /// Gives `amount` back of the reservation's payments, under `refund_key` (`cancel` for a
    /// cancellation under the property's policy; a change that lowered the total names its
    /// own). Captures whatever is only authorized first, so the guest is charged exactly what
    /// was authorized less what is refunded. The amount is taken from the newest payment first,
    /// each giving at most what is left on it. Idempotent per reservation and key: a repeat,
    /// or a retry after a failure half way, refunds nothing twice and makes the missing parts.
    /// Answers with the booking's own payment as it now is.
    pub async fn refund(
        &self,
        reservation_id: Uuid,
        amount: i64,
        refund_key: &str,
    ) -> Result<Payment, Error> {
        domain::refund_key(refund_key)?;
        if amount < 0 {
            return Err(Error::invalid("amount", "a refund cannot be negative"));
        }
        let booking = self
            .by_reservation(reservation_id)
            .await?
            .ok_or(Error::NotFound)?;
        match booking.status()? {
            PaymentStatus::Authorized
            | PaymentStatus::Captured
            | PaymentStatus::PartiallyRefunded
            | PaymentStatus::Refunded => {}
            other => {
                return Err(Error::WrongState {
                    action: "refunded",
                    status: other,
                });
            }
        }
        let mut payments = self.all_by_reservation(reservation_id).await?;
        for payment in &mut payments {
            if payment.status()? == PaymentStatus::Authorized {
                *payment = self.capture_payment(payment.clone()).await?;
            }
        }
        let recorded = refunds::Entity::find()
            .filter(refunds::Column::PaymentId.is_in(payments.iter().map(|p| p.id)))
            .filter(refunds::Column::RefundKey.eq(refund_key))
            .all(&self.db)
            .await?;
        let done: i64 = recorded.iter().map(|r| r.amount).sum();
        let mut open = Vec::new();
        // Newest first.
        for payment in payments.iter().rev() {
            let refundable = matches!(
                payment.status()?,
                PaymentStatus::Captured | PaymentStatus::PartiallyRefunded
            );
            if refundable && !recorded.iter().any(|r| r.payment_id == payment.id) {
                open.push((payment.id, payment.refundable()));
            }
        }
        let plan = domain::plan_refund(amount, done, &open)?;
        for part in plan {
            let payment = payments
                .iter()
                .find(|p| p.id == part.payment_id)
                .ok_or(Error::NotFound)?;
            self.refund_part(payment, refund_key, part.amount).await?;
        }
        self.require(reservation_id, reservation_id).await
    }

    /// Refunds `amount` of one payment as its part of the refund `refund_key`, and records it
    /// with the payment's new total in one transaction. The provider's key is derived from the
    /// charge and the refund key, so a retry of a part whose answer was lost gets the first
    /// refund back rather than a second one.
    async fn refund_part(
        &self,
        payment: &Payment,
        refund_key: &str,
        amount: i64,
    ) -> Result<(), Error> {
        if amount <= 0 {
            return Ok(());
        }
        let provider_ref = payment.provider_ref.clone().unwrap_or_default();
        let refund_ref = self
            .provider
            .refund(
                &provider_ref,
                amount,
                &refund_idempotency_key(payment.charge_id, refund_key),
            )
            .await
            .map_err(provider_error)?;
        let txn = self.db.begin().await?;
        let inserted = refunds::ActiveModel {
            id: Set(Uuid::now_v7()),
            payment_id: Set(payment.id),
            refund_key: Set(refund_key.to_owned()),
            amount: Set(amount),
            provider_ref: Set(refund_ref),
            created_at: Set(Utc::now()),
        }
        .insert(&txn)
        .await;
        match inserted {
            Ok(_) => {
                let total = Expr::col(payments::Column::Refunded).add(amount);
                let updated = payments::Entity::update_many()
                    .col_expr(
                        payments::Column::Status,
                        Expr::case(
                            total.clone().eq(Expr::col(payments::Column::Amount)),
                            PaymentStatus::Refunded.as_str(),
                        )
                        .finally(PaymentStatus::PartiallyRefunded.as_str())
                        .into(),
                    )
                    .col_expr(payments::Column::Refunded, total.clone())
                    .col_expr(payments::Column::UpdatedAt, Expr::value(Utc::now()))
                    .filter(payments::Column::Id.eq(payment.id))
                    .filter(payments::Column::Status.is_in([
                        PaymentStatus::Captured.as_str(),
                        PaymentStatus::PartiallyRefunded.as_str(),
                    ]))
                    .filter(total.lte(Expr::col(payments::Column::Amount)))
                    .exec(&txn)
                    .await?;
                if updated.rows_affected == 0 {
                    // The provider refunded it; the total was raised meanwhile by the
                    // provider's own report of it, which stays the truth for the total.
                    tracing::warn!(payment.id = %payment.id, refund.amount = amount, "refund recorded; the payment's total already counted it");
                }
                txn.commit().await?;
                tracing::info!(payment.id = %payment.id, charge.id = %payment.charge_id, refund.key = refund_key, refund.amount = amount, "payment refunded");
            }
            // A concurrent refund under the same key recorded this part first.
            Err(e) if violates(&e, refunds::PAYMENT_REFUND_KEY) => txn.rollback().await?,
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// Records a webhook event and applies it, in one transaction: either both happen or
    /// neither does. Recording first and applying after (two commits) would let a crash in
    /// between keep the id, so the provider's retry would look like a duplicate and the event
    /// would be lost. A concurrent delivery of the same event waits on the id's key and then
    /// finds it recorded.
    pub async fn receive_webhook(
        &self,
        event_id: &str,
        kind: &str,
        update: Option<(&str, ProviderUpdate)>,
    ) -> Result<WebhookOutcome, Error> {
        let txn = self.db.begin().await?;
        let recorded = webhook_events::ActiveModel {
            id: Set(event_id.to_owned()),
            kind: Set(kind.to_owned()),
            received_at: Set(Utc::now()),
        }
        .insert(&txn)
        .await;
        match recorded {
            Ok(_) => {}
            Err(e) if violates(&e, webhook_events::ID_KEY) => {
                txn.rollback().await?;
                return Ok(WebhookOutcome::Duplicate);
            }
            Err(e) => return Err(e.into()),
        }
        let payment = match update {
            Some((provider_ref, update)) => {
                self.apply_provider_update(&txn, provider_ref, update)
                    .await?
            }
            None => None,
        };
        txn.commit().await?;
        Ok(WebhookOutcome::Applied(payment.map(Box::new)))
    }

    /// Applies what Stripe tells us happened to a PaymentIntent outside our calls (captured
    /// or canceled from the dashboard, an authorization expiring, a refund made there).
    async fn apply_provider_update(
        &self,
        conn: &impl ConnectionTrait,
        provider_ref: &str,
        update: ProviderUpdate,
    ) -> Result<Option<Payment>, Error> {
        let Some(payment) = payments::Entity::find()
            .filter(payments::Column::ProviderRef.eq(provider_ref))
            .one(conn)
            .await?
        else {
            return Ok(None);
        };
        let updated = match update {
            ProviderUpdate::Captured => {
                self.transition(
                    conn,
                    payment.id,
                    &[PaymentStatus::Authorized],
                    PaymentStatus::Captured,
                    None,
                    None,
                )
                .await?
            }
            ProviderUpdate::Canceled => {
                self.transition(
                    conn,
                    payment.id,
                    &[PaymentStatus::Pending, PaymentStatus::Authorized],
                    PaymentStatus::Canceled,
                    None,
                    None,
                )
                .await?
            }
            ProviderUpdate::Refunded { total_refunded } => {
                if let Some((total, to)) =
                    domain::reported_refund(total_refunded, payment.amount, payment.refunded)
                {
                    payments::Entity::update_many()
                        .col_expr(payments::Column::Refunded, Expr::value(total))
                        .col_expr(payments::Column::Status, Expr::value(to.as_str()))
                        .col_expr(payments::Column::UpdatedAt, Expr::value(Utc::now()))
                        .filter(payments::Column::Id.eq(payment.id))
                        .filter(payments::Column::Refunded.lt(total))
                        .exec(conn)
                        .await?;
                }
                payments::Entity::find_by_id(payment.id)
                    .one(conn)
                    .await?
                    .ok_or(Error::NotFound)?
            }
        };
        Ok(Some(updated))
    }
}

/// What became of a webhook delivery.
#[derive(Debug)]
pub enum WebhookOutcome {
    /// Seen before: nothing done again.
    Duplicate,
    /// Recorded and applied; the payment it changed, if it names one of ours.
    Applied(Option<Box<Payment>>),
}

/// A change to a payment reported by the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderUpdate {
    Captured,
    Canceled,
    Refunded { total_refunded: i64 },
}

#[cfg(test)]
mod tests {
    use draftr_common::testing::{Backend, TestDatabase};

    use super::*;
    use crate::provider::SimulatedProvider;
    use crate::provider::simulated::Stall;

    struct Setup {
        _test: TestDatabase,
        service: PaymentService,
        provider: Arc<SimulatedProvider>,
    }

    async fn setup(backend: Backend) -> Setup {
        let test = TestDatabase::new(backend).await;
        let db = draftr_common::db::connect(&test.settings).await.unwrap();
        crate::app::migrate(&db).await.unwrap();
        let provider = Arc::new(SimulatedProvider::new());
        Setup {
            _test: test,
            service: PaymentService::new(db, provider.clone()),
            provider,
        }
    }

    /// A booking (the charge is the reservation) of `amount` EUR cents for fresh people.
    fn booking(reservation_id: Uuid, amount: i64) -> AuthorizeRequest {
        AuthorizeRequest {
            reservation_id,
            charge_id: reservation_id,
            guest_id: Uuid::now_v7(),
            host_id: Uuid::now_v7(),
            amount,
            currency: "EUR".into(),
            payment_method: "pm_card_visa".into(),
        }
    }

    /// The extra charge `change_id` of `amount` for the booking `of`.
    fn change(of: &AuthorizeRequest, change_id: Uuid, amount: i64) -> AuthorizeRequest {
        AuthorizeRequest {
            charge_id: change_id,
            amount,
            ..of.clone()
        }
    }

    fn invalid_field(err: &Error) -> Option<&'static str> {
        match err {
            Error::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    /// The booking's charge and a change's, both captured: (reservation, booking, change).
    async fn booked_and_changed(
        service: &PaymentService,
        total: i64,
        extra: i64,
    ) -> (Uuid, Payment, Payment) {
        let r = Uuid::now_v7();
        let req = booking(r, total);
        service.authorize(req.clone()).await.unwrap();
        let booking = service.capture(r, r).await.unwrap();
        let c = Uuid::now_v7();
        service.authorize(change(&req, c, extra)).await.unwrap();
        let change = service.capture(r, c).await.unwrap();
        (r, booking, change)
    }

    async fn a_change_is_charged_apart_from_the_booking(backend: Backend) {
        let Setup {
            _test: _database,
            service,
            provider,
        } = setup(backend).await;
        let r = Uuid::now_v7();
        let req = booking(r, 30_000);

        let without_booking = service
            .authorize(change(&req, Uuid::now_v7(), 10_000))
            .await
            .unwrap_err();
        assert_eq!(invalid_field(&without_booking), Some("chargeId"));

        let booked = service.authorize(req.clone()).await.unwrap();
        let c = Uuid::now_v7();
        let changed = service.authorize(change(&req, c, 10_000)).await.unwrap();
        assert_eq!(booked.status().unwrap(), PaymentStatus::Authorized);
        assert_eq!(changed.status().unwrap(), PaymentStatus::Authorized);
        assert_eq!(
            (booked.purpose(), changed.purpose()),
            (PaymentPurpose::Booking, PaymentPurpose::Change)
        );
        assert_eq!((booked.charge_id, changed.charge_id), (r, c));
        assert_eq!(changed.reservation_id, r);
        assert_ne!(booked.provider_ref, changed.provider_ref);
        assert_eq!(provider.counts().authorizations, 2);

        // Idempotent per charge; another amount, currency, reservation or payer is refused.
        let again = service.authorize(change(&req, c, 10_000)).await.unwrap();
        assert_eq!(again.id, changed.id);
        assert_eq!(provider.counts().authorizations, 2);
        let err = service.authorize(change(&req, c, 9_000)).await.unwrap_err();
        assert_eq!(invalid_field(&err), Some("amount"));
        let err = service
            .authorize(AuthorizeRequest {
                reservation_id: Uuid::now_v7(),
                ..change(&req, c, 10_000)
            })
            .await
            .unwrap_err();
        assert_eq!(invalid_field(&err), Some("chargeId"));
        let err = service
            .authorize(AuthorizeRequest {
                currency: "USD".into(),
                ..change(&req, Uuid::now_v7(), 10_000)
            })
            .await
            .unwrap_err();
        assert_eq!(invalid_field(&err), Some("currency"));
        let err = service
            .authorize(AuthorizeRequest {
                guest_id: Uuid::now_v7(),
                ..change(&req, Uuid::now_v7(), 10_000)
            })
            .await
            .unwrap_err();
        assert_eq!(invalid_field(&err), Some("guestId"));

        // Lookups by charge; a charge is not found under another reservation.
        assert_eq!(
            service.by_reservation(r).await.unwrap().unwrap().id,
            booked.id
        );
        assert_eq!(
            service.by_charge(r, c).await.unwrap().unwrap().id,
            changed.id
        );
        assert!(
            service
                .by_charge(Uuid::now_v7(), c)
                .await
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            service.capture(Uuid::now_v7(), c).await,
            Err(Error::NotFound)
        ));

        // Cancelling the change voids it alone.
        let voided = service.cancel(r, c).await.unwrap().unwrap();
        assert_eq!(voided.status().unwrap(), PaymentStatus::Canceled);
        assert_eq!(provider.counts().cancels, 1);
        let booked = service.by_reservation(r).await.unwrap().unwrap();
        assert_eq!(booked.status().unwrap(), PaymentStatus::Authorized);
        let captured = service.capture(r, r).await.unwrap();
        assert_eq!(captured.status().unwrap(), PaymentStatus::Captured);
        assert_eq!(provider.counts().captures, 1);

        // The provider's lookups are by charge and never mix the two up.
        assert_eq!(
            provider.find_authorization(r).await.unwrap(),
            Some(Found::Captured {
                provider_ref: booked.provider_ref.clone().unwrap()
            })
        );
        assert_eq!(
            provider.find_authorization(c).await.unwrap(),
            Some(Found::Canceled {
                provider_ref: changed.provider_ref.clone().unwrap()
            })
        );

        // A second change, captured on its own; all of them, oldest first.
        let c2 = Uuid::now_v7();
        service.authorize(change(&req, c2, 5_000)).await.unwrap();
        let second = service.capture(r, c2).await.unwrap();
        assert_eq!(second.status().unwrap(), PaymentStatus::Captured);
        assert_eq!(provider.counts().captures, 2);
        let all: Vec<Uuid> = service
            .all_by_reservation(r)
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.charge_id)
            .collect();
        assert_eq!(all, [r, c, c2]);
        let by_reservation = service.by_reservations(&[r]).await.unwrap();
        assert_eq!(by_reservation.len(), 1);
        assert_eq!(by_reservation[&r].charge_id, r, "the booking's own payment");
    }

    async fn a_refund_is_spread_over_the_payments_newest_first(backend: Backend) {
        let Setup {
            _test: _database,
            service,
            provider,
        } = setup(backend).await;
        let (r, booked, changed) = booked_and_changed(&service, 30_000, 10_000).await;
        let booking_ref = booked.provider_ref.clone().unwrap();
        let change_ref = changed.provider_ref.clone().unwrap();

        let answered = service.refund(r, 15_000, "k1").await.unwrap();
        assert_eq!(answered.id, booked.id, "the booking's own payment");
        assert_eq!(answered.refunded, 5_000);
        assert_eq!(answered.status().unwrap(), PaymentStatus::PartiallyRefunded);
        let changed = service
            .by_charge(r, changed.charge_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(changed.refunded, 10_000);
        assert_eq!(changed.status().unwrap(), PaymentStatus::Refunded);
        assert_eq!(provider.net_captured(&change_ref), Some(0));
        assert_eq!(provider.net_captured(&booking_ref), Some(25_000));
        assert_eq!(provider.counts().refund_calls, 2);

        // A repeat: nothing sent, nothing changed.
        let again = service.refund(r, 15_000, "k1").await.unwrap();
        assert_eq!(again.refunded, 5_000);
        assert_eq!(provider.counts().refund_calls, 2);

        // The cancellation's refund, from what is left (the booking's charge only).
        let cancelled = service.refund(r, 20_000, CANCEL_REFUND_KEY).await.unwrap();
        assert_eq!(cancelled.refunded, 25_000);
        assert_eq!(
            cancelled.status().unwrap(),
            PaymentStatus::PartiallyRefunded
        );
        assert_eq!(provider.net_captured(&booking_ref), Some(5_000));
        assert_eq!(provider.counts().refund_calls, 3);
        assert_eq!(provider.counts().refunds, 3);

        // More than is left, a negative amount, a bad key: refused before the provider.
        let err = service.refund(r, 5_001, "k2").await.unwrap_err();
        assert_eq!(invalid_field(&err), Some("amount"), "{err}");
        let err = service.refund(r, -1, "k3").await.unwrap_err();
        assert_eq!(invalid_field(&err), Some("amount"));
        for bad in ["", "two words", &"k".repeat(65)] {
            let err = service.refund(r, 1, bad).await.unwrap_err();
            assert_eq!(invalid_field(&err), Some("refundKey"), "{bad:?}");
        }
        assert_eq!(provider.counts().refund_calls, 3);

        // One recorded part per payment and key.
        let mut parts: Vec<(Uuid, String, i64)> = refunds::Entity::find()
            .all(service.db())
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.payment_id, r.refund_key, r.amount))
            .collect();
        parts.sort();
        let mut expected = vec![
            (booked.id, "cancel".to_owned(), 20_000),
            (booked.id, "k1".to_owned(), 5_000),
            (changed.id, "k1".to_owned(), 10_000),
        ];
        expected.sort();
        assert_eq!(parts, expected);

        // What is left goes too, and then nothing more.
        let last = service.refund(r, 5_000, "k4").await.unwrap();
        assert_eq!(last.refunded, 30_000);
        assert_eq!(last.status().unwrap(), PaymentStatus::Refunded);
        let err = service.refund(r, 1, "k5").await.unwrap_err();
        assert_eq!(invalid_field(&err), Some("amount"));
    }

    async fn a_refund_that_failed_half_way_is_finished_by_a_retry(backend: Backend) {
        let Setup {
            _test: _database,
            service,
            provider,
        } = setup(backend).await;
        let (r, booked, changed) = booked_and_changed(&service, 30_000, 10_000).await;
        let booking_ref = booked.provider_ref.clone().unwrap();
        let change_ref = changed.provider_ref.clone().unwrap();

        // The change's part goes through, the booking's fails.
        provider.refuse_refunds_of(&booking_ref, true);
        let err = service.refund(r, 15_000, "k1").await.unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)), "{err}");
        let changed = service
            .by_charge(r, changed.charge_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(changed.refunded, 10_000);
        assert_eq!(
            service.by_reservation(r).await.unwrap().unwrap().refunded,
            0
        );
        assert_eq!(provider.counts().refunds, 1);

        provider.refuse_refunds_of(&booking_ref, false);
        let finished = service.refund(r, 15_000, "k1").await.unwrap();
        assert_eq!(finished.refunded, 5_000);
        assert_eq!(
            provider.counts().refunds,
            2,
            "the change's part is not repeated"
        );
        assert_eq!(provider.counts().refund_calls, 3);
        assert_eq!(provider.net_captured(&change_ref), Some(0));
        assert_eq!(provider.net_captured(&booking_ref), Some(25_000));

        // A crash after the provider refunded and before it was recorded: the retry sends the
        // same key, which the provider answers with the first refund.
        let (r2, booked2, _) = booked_and_changed(&service, 20_000, 1_000).await;
        let before = provider.counts().refunds;
        provider.stall(Stall::AfterRefund, true);
        let crashed = tokio::time::timeout(
            std::time::Duration::from_millis(300),
            service.refund(r2, 1_500, "k1"),
        )
        .await;
        assert!(crashed.is_err(), "the refund's answer never came");
        provider.stall(Stall::AfterRefund, false);
        assert_eq!(
            provider.counts().refunds,
            before + 1,
            "the change's part was made"
        );
        let finished = service.refund(r2, 1_500, "k1").await.unwrap();
        assert_eq!(finished.refunded, 500);
        assert_eq!(provider.counts().refunds, before + 2);
        assert_eq!(
            provider.net_captured(booked2.provider_ref.as_deref().unwrap()),
            Some(19_500)
        );
        let all = service.all_by_reservation(r2).await.unwrap();
        assert_eq!(
            all.iter().map(|p| p.refunded).collect::<Vec<_>>(),
            [500, 1_000]
        );
    }

    async fn a_refund_captures_what_is_only_held_and_cancel_refunds_one_charge(backend: Backend) {
        let Setup {
            _test: _database,
            service,
            provider,
        } = setup(backend).await;
        let r = Uuid::now_v7();
        let req = booking(r, 30_000);
        service.authorize(req.clone()).await.unwrap();
        let c = Uuid::now_v7();
        service.authorize(change(&req, c, 10_000)).await.unwrap();
        // Nothing refunded: both are captured, the guest pays all.
        let paid = service.refund(r, 0, CANCEL_REFUND_KEY).await.unwrap();
        assert_eq!(paid.status().unwrap(), PaymentStatus::Captured);
        assert_eq!(provider.counts().captures, 2);
        assert_eq!(provider.counts().refund_calls, 0);

        // Cancelling the change's captured charge refunds it in full, and it alone.
        let undone = service.cancel(r, c).await.unwrap().unwrap();
        assert_eq!(undone.refunded, 10_000);
        assert_eq!(undone.status().unwrap(), PaymentStatus::Refunded);
        assert_eq!(
            service.by_reservation(r).await.unwrap().unwrap().refunded,
            0
        );
        assert!(service.cancel(r, Uuid::now_v7()).await.unwrap().is_none());
    }

    draftr_common::test_on_both_backends!(
        a_change_is_charged_apart_from_the_booking,
        a_refund_is_spread_over_the_payments_newest_first,
        a_refund_that_failed_half_way_is_finished_by_a_retry,
        a_refund_captures_what_is_only_held_and_cancel_refunds_one_charge,
    );
}
