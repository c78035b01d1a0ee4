//! The payment of each reservation, through its life: authorize → capture (or cancel) →
//! refund.
//!
//! One row per reservation (a unique constraint), written *before* the provider is called, so a
//! crash between the provider's answer and our write leaves a PENDING row that the next call
//! for the reservation finishes by replaying the same idempotency key. Every operation is
//! idempotent: calling it again returns the current state and never moves money twice.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use draftr_common::db::violates;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set, TransactionTrait,
};
use uuid::Uuid;

use crate::domain;
use crate::error::Error;
use crate::provider::{Authorization, Charge, PaymentProvider, ProviderError, idempotency_key};
use crate::store::{payments, refunds, webhook_events};

pub use crate::domain::{PaymentStatus, UnknownStatus};
pub use payments::Model as Payment;

/// What reservations asks to authorize.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub reservation_id: Uuid,
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

fn provider_error(err: ProviderError) -> Error {
    match err {
        ProviderError::Unavailable(cause) => Error::Unavailable(cause),
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

    pub async fn by_reservation(&self, reservation_id: Uuid) -> Result<Option<Payment>, Error> {
        Ok(payments::Entity::find()
            .filter(payments::Column::ReservationId.eq(reservation_id))
            .one(&self.db)
            .await?)
    }

    pub async fn by_reservations(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Payment>, Error> {
        Ok(payments::Entity::find()
            .filter(payments::Column::ReservationId.is_in(ids.iter().copied()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|p| (p.reservation_id, p))
            .collect())
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

    /// Holds the amount on the guest's payment method. A repeat for the same reservation
    /// returns the first outcome (a decline again, as a decline).
    pub async fn authorize(&self, req: AuthorizeRequest) -> Result<Payment, Error> {
        req.validate()?;
        let payment = match self.by_reservation(req.reservation_id).await? {
            Some(existing) => {
                if existing.amount != req.amount || existing.currency != req.currency {
                    return Err(Error::Invalid {
                        field: "amount",
                        message: "this reservation was already authorized for another amount"
                            .into(),
                    });
                }
                existing
            }
            None => self.insert_pending(&req).await?,
        };
        match payment.status()? {
            PaymentStatus::Pending => self.settle_pending(payment, &req.payment_method).await,
            PaymentStatus::Failed => Err(Error::Declined {
                code: payment
                    .failure_code
                    .unwrap_or_else(|| domain::DEFAULT_DECLINE_CODE.into()),
                message: payment
                    .failure_message
                    .unwrap_or_else(|| domain::DEFAULT_DECLINE_MESSAGE.into()),
            }),
            _ => Ok(payment),
        }
    }

    async fn insert_pending(&self, req: &AuthorizeRequest) -> Result<Payment, Error> {
        let now = Utc::now();
        let row = payments::ActiveModel {
            id: Set(Uuid::now_v7()),
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
            created_at: Set(now),
            updated_at: Set(now),
        };
        match row.insert(&self.db).await {
            Ok(p) => Ok(p),
            // A concurrent call for the same reservation won the insert; carry on with its row.
            Err(e) if violates(&e, payments::RESERVATION_KEY) => self
                .by_reservation(req.reservation_id)
                .await?
                .ok_or(Error::Db(e)),
            Err(e) => Err(e.into()),
        }
    }

    /// Asks the provider (with the reservation's key, so a repeat is a replay) and records the
    /// answer.
    async fn settle_pending(
        &self,
        payment: Payment,
        payment_method: &str,
    ) -> Result<Payment, Error> {
        let charge = Charge {
            reservation_id: payment.reservation_id,
            amount: payment.amount,
            currency: payment.currency.clone(),
            payment_method: payment_method.to_owned(),
        };
        let key = idempotency_key(payment.reservation_id, "authorize");
        match self.provider.authorize(&charge, &key).await {
            Ok(Authorization::Authorized { provider_ref }) => {
                tracing::info!(payment.id = %payment.id, reservation.id = %payment.reservation_id, "payment authorized");
                self.transition(
                    &self.db,
                    payment.id,
                    &[PaymentStatus::Pending],
                    PaymentStatus::Authorized,
                    Some(provider_ref),
                    None,
                )
                .await
            }
            Ok(Authorization::Declined { code, message }) => {
                tracing::info!(payment.id = %payment.id, decline = %code, "payment declined");
                self.transition(
                    &self.db,
                    payment.id,
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
                    payment.id,
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
            // Unknown outcome: the row stays PENDING for the next call to settle.
            Err(ProviderError::Unavailable(cause)) => Err(Error::Unavailable(cause)),
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

    async fn require(&self, reservation_id: Uuid) -> Result<Payment, Error> {
        self.by_reservation(reservation_id)
            .await?
            .ok_or(Error::NotFound)
    }

    /// Takes the held funds (after the reservation is confirmed).
    pub async fn capture(&self, reservation_id: Uuid) -> Result<Payment, Error> {
        let payment = self.require(reservation_id).await?;
        match payment.status()? {
            PaymentStatus::Captured
            | PaymentStatus::Refunded
            | PaymentStatus::PartiallyRefunded => Ok(payment),
            PaymentStatus::Authorized => {
                let provider_ref = payment.provider_ref.clone().unwrap_or_default();
                self.provider
                    .capture(&provider_ref, &idempotency_key(reservation_id, "capture"))
                    .await
                    .map_err(provider_error)?;
                tracing::info!(payment.id = %payment.id, reservation.id = %reservation_id, "payment captured");
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

    /// Undoes the payment of a booking that did not happen: voids an authorization, refunds a
    /// capture in full, settles an unknown outcome first. Nothing to undo is not an error.
    pub async fn cancel(
        &self,
        reservation_id: Uuid,
        payment_method: Option<&str>,
    ) -> Result<Option<Payment>, Error> {
        let Some(mut payment) = self.by_reservation(reservation_id).await? else {
            return Ok(None);
        };
        if payment.status()? == PaymentStatus::Pending {
            // The provider may have authorized: replay the authorization to learn the outcome.
            let Some(pm) = payment_method else {
                return Err(Error::Invalid {
                    field: "paymentMethod",
                    message: "the payment's outcome is unknown; the payment method is needed to settle it".into(),
                });
            };
            payment = match self.settle_pending(payment, pm).await {
                Ok(p) => p,
                Err(Error::Declined { .. }) | Err(Error::Invalid { .. }) => {
                    return Ok(Some(self.require(reservation_id).await?));
                }
                Err(e) => return Err(e),
            };
        }
        match payment.status()? {
            PaymentStatus::Authorized => {
                let provider_ref = payment.provider_ref.clone().unwrap_or_default();
                self.provider
                    .cancel(&provider_ref, &idempotency_key(reservation_id, "cancel"))
                    .await
                    .map_err(provider_error)?;
                tracing::info!(payment.id = %payment.id, reservation.id = %reservation_id, "authorization voided");
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
                let amount = payment.amount;
                self.refund(reservation_id, amount).await.map(Some)
            }
            _ => Ok(Some(payment)),
        }
    }

    /// Gives `amount` back (a cancellation under the property's policy). Captures first if the
    /// capture has not happened yet, so the guest is charged exactly `total - amount`. One
    /// refund per payment: a repeat returns the payment as it is.
    pub async fn refund(&self, reservation_id: Uuid, amount: i64) -> Result<Payment, Error> {
        let mut payment = self.require(reservation_id).await?;
        domain::refund_amount(amount, payment.amount)?;
        if payment.status()? == PaymentStatus::Authorized {
            payment = self.capture(reservation_id).await?;
        }
        match payment.status()? {
            PaymentStatus::Refunded | PaymentStatus::PartiallyRefunded => return Ok(payment),
            PaymentStatus::Captured => {}
            other => {
                return Err(Error::WrongState {
                    action: "refunded",
                    status: other,
                });
            }
        }
        if amount == 0 {
            return Ok(payment);
        }
        let provider_ref = payment.provider_ref.clone().unwrap_or_default();
        let refund_ref = self
            .provider
            .refund(
                &provider_ref,
                amount,
                &idempotency_key(reservation_id, "refund"),
            )
            .await
            .map_err(provider_error)?;
        let to = PaymentStatus::after_refund(amount, payment.amount);
        let txn = self.db.begin().await?;
        let inserted = refunds::ActiveModel {
            id: Set(Uuid::now_v7()),
            payment_id: Set(payment.id),
            amount: Set(amount),
            provider_ref: Set(refund_ref),
            created_at: Set(Utc::now()),
        }
        .insert(&txn)
        .await;
        match inserted {
            Ok(_) => {
                payments::Entity::update_many()
                    .col_expr(payments::Column::Status, Expr::value(to.as_str()))
                    .col_expr(payments::Column::Refunded, Expr::value(amount))
                    .col_expr(payments::Column::UpdatedAt, Expr::value(Utc::now()))
                    .filter(payments::Column::Id.eq(payment.id))
                    .filter(payments::Column::Status.eq(PaymentStatus::Captured.as_str()))
                    .exec(&txn)
                    .await?;
                txn.commit().await?;
                tracing::info!(payment.id = %payment.id, refund.amount = amount, "payment refunded");
            }
            // A concurrent refund of the same payment recorded it first.
            Err(e) if violates(&e, refunds::PAYMENT_KEY) => txn.rollback().await?,
            Err(e) => return Err(e.into()),
        }
        self.require(reservation_id).await
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
