//! Reservations and the booking saga (ARCHITECTURE.md, "The booking flow").
//!
//! `create` runs: validate → quote (catalog) → hold (insert PENDING; the database refuses an
//! overlapping hold) → authorize (payments) → confirm + outbox event in one transaction →
//! capture. Every step after the hold either moves the saga forward or compensates it, and
//! every step is safe to repeat, because the reconciler ([`crate::reconciler`]) repeats
//! whatever a crash interrupted.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use draftr_common::Claims;
use draftr_common::db::is_unique_violation;
use draftr_common::service_client::CallError;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, Order,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use crate::clients::{AuthorizeCall, CatalogClient, PaymentsClient, Quote};
use crate::config::BookingSettings;
use crate::domain::{self, ACTIVE, CancellationPolicy, ReservationStatus, StayRules};
use crate::error::Error;
use crate::store::{outbox, reservations};

pub use reservations::Model as Reservation;

/// Event kinds written to the outbox (relayed to the event stream).
pub mod events {
    pub const CONFIRMED: &str = "reservation.confirmed";
    pub const CANCELLED: &str = "reservation.cancelled";
    pub const FAILED: &str = "reservation.failed";
}

/// What a guest asks to book.
#[derive(Debug, Clone)]
pub struct BookingRequest {
    pub property_id: Uuid,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub guests: i32,
    pub payment_method: String,
    pub idempotency_key: String,
}

/// The price of a stay, as the server computes it.
#[derive(Debug, Clone)]
pub struct PricedStay {
    pub property_id: Uuid,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub guests: i32,
    pub nights: i64,
    pub nightly_rate: i64,
    pub total: i64,
    pub currency: String,
    pub cancellation_policy: CancellationPolicy,
    pub available: bool,
}

/// Whose reservations a list shows.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    All,
    /// Those where the user is the guest or the host.
    Party(Uuid),
    /// Those where the user is the guest.
    Guest(Uuid),
}

pub struct ReservationService {
    db: DatabaseConnection,
    catalog: Arc<CatalogClient>,
    payments: Arc<PaymentsClient>,
    rules: BookingSettings,
}

/// The database refused an overlapping active reservation (exclusion constraint on
/// PostgreSQL, trigger on SQLite; both named `reservations_no_overlap`).
fn is_overlap(err: &sea_orm::DbErr) -> bool {
    err.to_string().contains("reservations_no_overlap")
}

/// On PostgreSQL, a transaction-scoped advisory lock per property (see `insert_hold`); SQLite
/// already runs one writer at a time.
async fn lock_property(txn: &impl ConnectionTrait, property: Uuid) -> Result<(), sea_orm::DbErr> {
    if txn.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
        return Ok(());
    }
    // The random half of the id (the first half of a UUIDv7 is its timestamp).
    let key = i64::from_be_bytes(property.as_bytes()[8..].try_into().expect("8 bytes"));
    txn.execute_raw(sea_orm::Statement::from_sql_and_values(
        sea_orm::DatabaseBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [key.into()],
    ))
    .await?;
    Ok(())
}

/// PostgreSQL's deadlock detector chose this statement (SQLSTATE 40P01).
fn is_deadlock(err: &sea_orm::DbErr) -> bool {
    err.to_string().contains("deadlock detected")
}

fn catalog_error(err: CallError) -> Error {
    match err {
        CallError::Unavailable { reason, .. } => Error::CatalogUnavailable(reason),
        CallError::Refused { code, message, .. } => Error::Internal(anyhow::anyhow!(
            "catalog refused the quote: {code}: {message}"
        )),
    }
}

const UNAVAILABLE: &str = "payments are unavailable right now, so nothing was charged and the dates were released; please try again in a moment";

impl ReservationService {
    pub fn new(
        db: DatabaseConnection,
        catalog: Arc<CatalogClient>,
        payments: Arc<PaymentsClient>,
        rules: BookingSettings,
    ) -> Self {
        Self {
            db,
            catalog,
            payments,
            rules,
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub(crate) fn payments(&self) -> &PaymentsClient {
        &self.payments
    }

    pub(crate) fn rules(&self) -> &BookingSettings {
        &self.rules
    }

    fn stay_rules(&self) -> StayRules {
        StayRules {
            max_nights: self.rules.max_nights,
            max_days_ahead: self.rules.max_days_ahead,
        }
    }

    /// Prices a stay from catalog's current rate and checks it can be booked.
    pub async fn quote(
        &self,
        property_id: Uuid,
        check_in: NaiveDate,
        check_out: NaiveDate,
        guests: i32,
        request_id: &str,
    ) -> Result<PricedStay, Error> {
        let nights = domain::validate_stay(
            check_in,
            check_out,
            guests,
            Utc::now().date_naive(),
            self.stay_rules(),
        )?;
        let quote = self
            .catalog
            .quote(property_id, request_id)
            .await
            .map_err(catalog_error)?
            .ok_or(Error::PropertyNotFound)?;
        let priced = price(&quote, check_in, check_out, guests, nights)?;
        let free = self
            .calendar(&[(property_id, check_in, check_out)])
            .await?
            .values()
            .all(|r| r.is_empty());
        Ok(PricedStay {
            available: free,
            ..priced
        })
    }

    /// The booking saga. A repeat with the same idempotency key returns the first attempt's
    /// reservation (or its error) and never charges again.
    pub async fn create(
        self: &Arc<Self>,
        guest: Uuid,
        req: BookingRequest,
        request_id: &str,
    ) -> Result<Reservation, Error> {
        domain::validate_idempotency_key(&req.idempotency_key)?;
        domain::validate_payment_method(&req.payment_method)?;
        let nights = domain::validate_stay(
            req.check_in,
            req.check_out,
            req.guests,
            Utc::now().date_naive(),
            self.stay_rules(),
        )?;
        let fingerprint = domain::fingerprint(
            req.property_id,
            req.check_in,
            req.check_out,
            req.guests,
            &req.payment_method,
        );
        if let Some(first) = self.by_key(guest, &req.idempotency_key).await? {
            return replay(first, &fingerprint);
        }

        // Quote: the price comes from catalog, never from the client.
        let quote = self
            .catalog
            .quote(req.property_id, request_id)
            .await
            .map_err(catalog_error)?
            .ok_or(Error::PropertyNotFound)?;
        if quote.host_id == guest {
            return Err(Error::invalid(
                "propertyId",
                "you cannot book your own property",
            ));
        }
        let stay = price(&quote, req.check_in, req.check_out, req.guests, nights)?;

        // Hold: the database refuses an overlapping active reservation, so of any number of
        // concurrent requests for the same dates exactly one gets here.
        let held = match self.hold(guest, &req, &quote, &stay, &fingerprint).await {
            Ok(r) => r,
            // A concurrent retry of this very attempt holds the dates: that is a replay, not a
            // conflict (SQLite's trigger fires before the unique key is checked).
            Err(HoldError::Overlap) => match self.by_key(guest, &req.idempotency_key).await? {
                Some(first) => return replay(first, &fingerprint),
                None => return Err(Error::BookingConflict),
            },
            Err(HoldError::SameKey) => {
                let first = self
                    .by_key(guest, &req.idempotency_key)
                    .await?
                    .ok_or(Error::NotFound)?;
                return replay(first, &fingerprint);
            }
            Err(HoldError::Db(e)) => return Err(e.into()),
        };
        tracing::info!(reservation.id = %held.id, property.id = %held.property_id, "dates held");

        // Authorize.
        let authorized = self
            .payments
            .authorize(
                AuthorizeCall {
                    reservation_id: held.id,
                    guest_id: guest,
                    host_id: held.host_id,
                    amount: held.total_amount,
                    currency: &held.currency,
                    payment_method: &held.payment_method,
                },
                request_id,
            )
            .await;
        let payment = match authorized {
            Ok(p) => p,
            Err(CallError::Refused { code, message, .. }) => {
                let (failure, err) = match code.as_str() {
                    "PAYMENT_DECLINED" => ("PAYMENT_DECLINED", Error::PaymentDeclined(message)),
                    "BAD_USER_INPUT" => {
                        ("BAD_USER_INPUT", Error::invalid("paymentMethod", message))
                    }
                    _ => (
                        "INTERNAL",
                        Error::Internal(anyhow::anyhow!("payments refused: {code}: {message}")),
                    ),
                };
                // Declined: nothing was authorized, nothing to compensate.
                self.fail(held.id, failure, false).await?;
                return Err(err);
            }
            Err(CallError::Unavailable { reason, .. }) => {
                tracing::warn!(reservation.id = %held.id, error = %reason, "authorization outcome unknown; compensating");
                // The authorization may have happened: release the dates now, and void it in
                // the background (the reconciler retries until payments answers), so the
                // guest hears back without waiting on a dependency that is down.
                self.fail(held.id, "PAYMENT_UNAVAILABLE", true).await?;
                let service = Arc::clone(self);
                let (id, request_id) = (held.id, request_id.to_owned());
                tokio::spawn(async move { service.compensate(id, &request_id).await });
                return Err(Error::PaymentUnavailable(UNAVAILABLE));
            }
        };

        // Confirm, with the event, in one transaction.
        if !self.confirm(held.id, payment.id).await? {
            // The reconciler released the hold meanwhile (a very slow authorization).
            self.mark_compensation(held.id).await?;
            self.compensate(held.id, request_id).await;
            return Err(Error::PaymentUnavailable(
                "the booking took too long and the dates were released; nothing was charged, please try again",
            ));
        }
        tracing::info!(reservation.id = %held.id, "reservation confirmed");

        // Capture. A failure here is not the guest's problem: the booking stands and the
        // reconciler captures later.
        self.capture(held.id, request_id).await;
        self.require(held.id).await
    }

    async fn by_key(&self, guest: Uuid, key: &str) -> Result<Option<Reservation>, Error> {
        Ok(reservations::Entity::find()
            .filter(reservations::Column::GuestId.eq(guest))
            .filter(reservations::Column::IdempotencyKey.eq(key))
            .one(&self.db)
            .await?)
    }

    async fn hold(
        &self,
        guest: Uuid,
        req: &BookingRequest,
        quote: &Quote,
        stay: &PricedStay,
        fingerprint: &str,
    ) -> Result<Reservation, HoldError> {
        let now = Utc::now();
        let row = reservations::ActiveModel {
            id: Set(Uuid::now_v7()),
            property_id: Set(req.property_id),
            property_title: Set(quote.title.chars().take(200).collect()),
            guest_id: Set(guest),
            host_id: Set(quote.host_id),
            check_in: Set(req.check_in),
            check_out: Set(req.check_out),
            guests: Set(req.guests),
            nights: Set(stay.nights as i32),
            total_amount: Set(stay.total),
            currency: Set(stay.currency.clone()),
            cancellation_policy: Set(stay.cancellation_policy.as_str().into()),
            status: Set(ReservationStatus::Pending.as_str().into()),
            idempotency_key: Set(req.idempotency_key.clone()),
            request_fingerprint: Set(fingerprint.to_owned()),
            payment_method: Set(req.payment_method.clone()),
            payment_id: Set(None),
            captured: Set(false),
            compensation_pending: Set(false),
            refund_amount: Set(None),
            failure_code: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            cancelled_at: Set(None),
        };
        // PostgreSQL checks an exclusion constraint after inserting the index entry, so two
        // racing inserts of overlapping stays can each wait for the other; the deadlock
        // detector then aborts one of them. Retrying decides it: by then the other has
        // committed (a conflict) or rolled back (this one wins).
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.insert_hold(row.clone(), req.property_id).await {
                Ok(r) => return Ok(r),
                Err(e) if is_overlap(&e) => return Err(HoldError::Overlap),
                Err(e) if is_unique_violation(&e) => return Err(HoldError::SameKey),
                Err(e) if attempt < 5 && is_deadlock(&e) => {
                    tracing::debug!(attempt, "hold insert chosen as deadlock victim; retrying");
                }
                Err(e) => return Err(HoldError::Db(e)),
            }
        }
    }

    /// Inserts a hold. On PostgreSQL, holds and confirmations of one property take turns on
    /// an advisory lock first: the exclusion constraint alone would make racing inserts wait
    /// on one another's uncommitted rows, and under load those waits pile up into deadlocks
    /// and pool exhaustion. Different properties never wait for each other.
    async fn insert_hold(
        &self,
        row: reservations::ActiveModel,
        property: Uuid,
    ) -> Result<Reservation, sea_orm::DbErr> {
        if self.db.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
            // SQLite: one statement, so the write lock is held for the insert alone.
            return row.insert(&self.db).await;
        }
        let txn = self.db.begin().await?;
        lock_property(&txn, property).await?;
        let inserted = row.insert(&txn).await?;
        txn.commit().await?;
        Ok(inserted)
    }

    /// PENDING → CONFIRMED and the `reservation.confirmed` event, atomically. `false` if the
    /// reservation was no longer PENDING.
    pub(crate) async fn confirm(&self, id: Uuid, payment_id: Uuid) -> Result<bool, Error> {
        // Confirming writes a new version of an active row, which PostgreSQL checks against
        // the exclusion constraint again; racing inserts of overlapping holds can then deadlock
        // with it. The losing side is retried (the inserts are retried the same way).
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.confirm_once(id, payment_id).await {
                Err(Error::Db(e)) if attempt < 5 && is_deadlock(&e) => {
                    tracing::debug!(reservation.id = %id, attempt, "confirmation chosen as deadlock victim; retrying");
                }
                other => return other,
            }
        }
    }

    async fn confirm_once(&self, id: Uuid, payment_id: Uuid) -> Result<bool, Error> {
        let property = self.require(id).await?.property_id;
        let txn = self.db.begin().await?;
        lock_property(&txn, property).await?;
        let now = Utc::now();
        let updated = reservations::Entity::update_many()
            .col_expr(reservations::Column::Status, Expr::value("CONFIRMED"))
            .col_expr(reservations::Column::PaymentId, Expr::value(payment_id))
            .col_expr(reservations::Column::UpdatedAt, Expr::value(now))
            .filter(reservations::Column::Id.eq(id))
            .filter(reservations::Column::Status.eq("PENDING"))
            .exec(&txn)
            .await?;
        if updated.rows_affected == 0 {
            txn.rollback().await?;
            return Ok(false);
        }
        let row = reservations::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(Error::NotFound)?;
        write_event(&txn, events::CONFIRMED, &row, now).await?;
        txn.commit().await?;
        Ok(true)
    }

    /// PENDING → FAILED (dates free again), with the `reservation.failed` event.
    /// `compensate`: the payment may exist and must be undone (by us now, or the reconciler).
    pub(crate) async fn fail(&self, id: Uuid, code: &str, compensate: bool) -> Result<bool, Error> {
        let txn = self.db.begin().await?;
        let now = Utc::now();
        let updated = reservations::Entity::update_many()
            .col_expr(reservations::Column::Status, Expr::value("FAILED"))
            .col_expr(reservations::Column::FailureCode, Expr::value(code))
            .col_expr(
                reservations::Column::CompensationPending,
                Expr::value(compensate),
            )
            .col_expr(reservations::Column::UpdatedAt, Expr::value(now))
            .filter(reservations::Column::Id.eq(id))
            .filter(reservations::Column::Status.eq("PENDING"))
            .exec(&txn)
            .await?;
        if updated.rows_affected == 0 {
            txn.rollback().await?;
            return Ok(false);
        }
        let row = reservations::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(Error::NotFound)?;
        write_event(&txn, events::FAILED, &row, now).await?;
        txn.commit().await?;
        tracing::info!(reservation.id = %id, failure = code, "reservation failed; dates released");
        Ok(true)
    }

    async fn mark_compensation(&self, id: Uuid) -> Result<(), Error> {
        reservations::Entity::update_many()
            .col_expr(reservations::Column::CompensationPending, Expr::value(true))
            .filter(reservations::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Captures a confirmed reservation's payment; on failure leaves it to the reconciler.
    pub(crate) async fn capture(&self, id: Uuid, request_id: &str) -> bool {
        match self.payments.capture(id, request_id).await {
            Ok(_) => {
                let done = reservations::Entity::update_many()
                    .col_expr(reservations::Column::Captured, Expr::value(true))
                    .filter(reservations::Column::Id.eq(id))
                    .exec(&self.db)
                    .await;
                if let Err(e) = done {
                    tracing::error!(reservation.id = %id, error = %e, "capture not recorded; the reconciler will repeat it");
                    return false;
                }
                true
            }
            Err(e) => {
                tracing::warn!(reservation.id = %id, error = %e, "capture failed; the reconciler will retry");
                false
            }
        }
    }

    /// Undoes the payment of a FAILED or CANCELLED reservation marked for compensation
    /// (void, or the policy's refund). Returns whether it is done.
    pub(crate) async fn compensate(&self, id: Uuid, request_id: &str) -> bool {
        let Ok(Some(row)) = reservations::Entity::find_by_id(id).one(&self.db).await else {
            return false;
        };
        if !row.compensation_pending {
            return true;
        }
        let result = match ReservationStatus::parse(&row.status) {
            ReservationStatus::Failed => self
                .payments
                .cancel(id, Some(&row.payment_method), request_id)
                .await
                .map(|_| ()),
            ReservationStatus::Cancelled => self
                .payments
                .refund(id, row.refund_amount.unwrap_or(0), request_id)
                .await
                .map(|_| ()),
            _ => return false,
        };
        match result {
            Ok(()) => {
                let cleared = reservations::Entity::update_many()
                    .col_expr(
                        reservations::Column::CompensationPending,
                        Expr::value(false),
                    )
                    .filter(reservations::Column::Id.eq(id))
                    .exec(&self.db)
                    .await;
                tracing::info!(reservation.id = %id, "payment compensated");
                cleared.is_ok()
            }
            Err(e) => {
                tracing::warn!(reservation.id = %id, error = %e, "compensation failed; the reconciler will retry");
                false
            }
        }
    }

    /// Cancels a confirmed reservation (its guest or an admin) and refunds what the
    /// property's policy gives back at this moment. The dates are free once this returns.
    pub async fn cancel(
        &self,
        who: &Claims,
        id: Uuid,
        request_id: &str,
    ) -> Result<Reservation, Error> {
        let row = self.require(id).await?;
        let is_guest = row.guest_id == who.sub;
        if !is_guest && !who.is_admin() {
            // The host may see it, but cancelling is the guest's (or an admin's) decision.
            return Err(if row.host_id == who.sub {
                Error::Forbidden("only the guest or an administrator can cancel a reservation")
            } else {
                Error::NotFound
            });
        }
        match ReservationStatus::parse(&row.status) {
            ReservationStatus::Confirmed => {}
            ReservationStatus::Cancelled => return Ok(row),
            _ => {
                return Err(Error::invalid(
                    "id",
                    "only a confirmed reservation can be cancelled",
                ));
            }
        }
        let now = Utc::now();
        if now >= domain::stay_starts(row.check_in) && !who.is_admin() {
            return Err(Error::invalid(
                "id",
                "this stay has already started and cannot be cancelled",
            ));
        }
        let policy = CancellationPolicy::parse(&row.cancellation_policy);
        let refund = domain::refund_for(policy, row.total_amount, row.check_in, now);

        let txn = self.db.begin().await?;
        let updated = reservations::Entity::update_many()
            .col_expr(reservations::Column::Status, Expr::value("CANCELLED"))
            .col_expr(reservations::Column::CancelledAt, Expr::value(now))
            .col_expr(reservations::Column::RefundAmount, Expr::value(refund))
            .col_expr(reservations::Column::CompensationPending, Expr::value(true))
            .col_expr(reservations::Column::UpdatedAt, Expr::value(now))
            .filter(reservations::Column::Id.eq(id))
            .filter(reservations::Column::Status.eq("CONFIRMED"))
            .exec(&txn)
            .await?;
        if updated.rows_affected == 0 {
            txn.rollback().await?;
            return self.require(id).await;
        }
        let cancelled = reservations::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(Error::NotFound)?;
        write_event(&txn, events::CANCELLED, &cancelled, now).await?;
        txn.commit().await?;
        tracing::info!(reservation.id = %id, refund.amount = refund, "reservation cancelled");
        self.compensate(id, request_id).await;
        self.require(id).await
    }

    /// Removes a reservation record (admins only, checked by the caller). Active reservations
    /// must be cancelled first, so no money or dates are left dangling.
    pub async fn delete(&self, id: Uuid) -> Result<bool, Error> {
        let row = self.require(id).await?;
        if ACTIVE.contains(&row.status.as_str()) {
            return Err(Error::invalid(
                "id",
                "cancel this reservation before deleting it",
            ));
        }
        if row.compensation_pending {
            return Err(Error::invalid(
                "id",
                "this reservation's refund is still being processed; try again later",
            ));
        }
        let res = reservations::Entity::delete_by_id(id)
            .exec(&self.db)
            .await?;
        tracing::info!(reservation.id = %id, "reservation deleted");
        Ok(res.rows_affected == 1)
    }

    pub async fn require(&self, id: Uuid) -> Result<Reservation, Error> {
        reservations::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or(Error::NotFound)
    }

    pub async fn get_many(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Reservation>, Error> {
        Ok(reservations::Entity::find()
            .filter(reservations::Column::Id.is_in(ids.iter().copied()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|r| (r.id, r))
            .collect())
    }

    fn scoped(scope: Scope) -> sea_orm::Select<reservations::Entity> {
        let q = reservations::Entity::find();
        match scope {
            Scope::All => q,
            Scope::Guest(u) => q.filter(reservations::Column::GuestId.eq(u)),
            Scope::Party(u) => q.filter(
                sea_orm::Condition::any()
                    .add(reservations::Column::GuestId.eq(u))
                    .add(reservations::Column::HostId.eq(u)),
            ),
        }
    }

    /// Newest first, after the cursor's id (ids are time-ordered UUIDv7).
    pub async fn page(
        &self,
        scope: Scope,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<(Vec<Reservation>, bool), Error> {
        let mut q = Self::scoped(scope);
        if let Some(after) = after {
            q = q.filter(reservations::Column::Id.lt(after));
        }
        let mut rows = q
            .order_by(reservations::Column::Id, Order::Desc)
            .limit(limit + 1)
            .all(&self.db)
            .await?;
        let more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        Ok((rows, more))
    }

    pub async fn count(&self, scope: Scope) -> Result<u64, Error> {
        Ok(Self::scoped(scope).count(&self.db).await?)
    }

    /// Active bookings overlapping each `(property, from, to)`: one query per distinct range.
    pub async fn calendar(
        &self,
        keys: &[(Uuid, NaiveDate, NaiveDate)],
    ) -> Result<HashMap<(Uuid, NaiveDate, NaiveDate), Vec<(NaiveDate, NaiveDate)>>, Error> {
        let mut by_range: HashMap<(NaiveDate, NaiveDate), Vec<Uuid>> = HashMap::new();
        for (p, from, to) in keys {
            by_range.entry((*from, *to)).or_default().push(*p);
        }
        let mut out: HashMap<_, Vec<_>> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for ((from, to), properties) in by_range {
            let rows = reservations::Entity::find()
                .filter(reservations::Column::PropertyId.is_in(properties))
                .filter(reservations::Column::Status.is_in(ACTIVE))
                .filter(reservations::Column::CheckIn.lt(to))
                .filter(reservations::Column::CheckOut.gt(from))
                .order_by_asc(reservations::Column::CheckIn)
                .all(&self.db)
                .await?;
            for r in rows {
                if let Some(list) = out.get_mut(&(r.property_id, from, to)) {
                    list.push((r.check_in, r.check_out));
                }
            }
        }
        Ok(out)
    }

    /// Rows the reconciler must look at, oldest first.
    pub(crate) async fn stale_pending(
        &self,
        older_than: DateTime<Utc>,
    ) -> Result<Vec<Reservation>, Error> {
        Ok(reservations::Entity::find()
            .filter(reservations::Column::Status.eq("PENDING"))
            .filter(reservations::Column::UpdatedAt.lt(older_than))
            .order_by_asc(reservations::Column::UpdatedAt)
            .limit(100)
            .all(&self.db)
            .await?)
    }

    pub(crate) async fn uncaptured(&self) -> Result<Vec<Reservation>, Error> {
        Ok(reservations::Entity::find()
            .filter(reservations::Column::Status.eq("CONFIRMED"))
            .filter(reservations::Column::Captured.eq(false))
            .limit(100)
            .all(&self.db)
            .await?)
    }

    pub(crate) async fn awaiting_compensation(&self) -> Result<Vec<Reservation>, Error> {
        Ok(reservations::Entity::find()
            .filter(reservations::Column::CompensationPending.eq(true))
            .limit(100)
            .all(&self.db)
            .await?)
    }
}

enum HoldError {
    Overlap,
    SameKey,
    Db(sea_orm::DbErr),
}

/// The answer to a repeated idempotency key: the same reservation, or the same error.
fn replay(first: Reservation, fingerprint: &str) -> Result<Reservation, Error> {
    if first.request_fingerprint != fingerprint {
        return Err(Error::invalid(
            "idempotencyKey",
            "this idempotencyKey was already used for a different booking; use a new key",
        ));
    }
    match (
        ReservationStatus::parse(&first.status),
        first.failure_code.as_deref(),
    ) {
        (ReservationStatus::Failed, Some("PAYMENT_DECLINED")) => Err(Error::PaymentDeclined(
            "your card was declined; try another payment method with a new idempotencyKey".into(),
        )),
        (ReservationStatus::Failed, Some("PAYMENT_UNAVAILABLE")) => Err(Error::PaymentUnavailable(
            "this booking attempt failed because payments were unavailable; try again with a new idempotencyKey",
        )),
        (ReservationStatus::Failed, _) => Err(Error::invalid(
            "idempotencyKey",
            "this booking attempt failed; try again with a new idempotencyKey",
        )),
        _ => Ok(first),
    }
}

/// Server-side price: nights × nightly rate in minor units; refuses what cannot be booked.
fn price(
    quote: &Quote,
    check_in: NaiveDate,
    check_out: NaiveDate,
    guests: i32,
    nights: i64,
) -> Result<PricedStay, Error> {
    if !quote.published {
        return Err(Error::invalid(
            "propertyId",
            "this property is not open for booking",
        ));
    }
    if guests > quote.max_guests {
        return Err(Error::invalid(
            "guests",
            format!("this property takes at most {} guests", quote.max_guests),
        ));
    }
    let total = quote
        .nightly_rate
        .checked_mul(nights)
        .filter(|t| *t > 0 && *t <= i64::from(i32::MAX))
        .ok_or_else(|| Error::invalid("checkOut", "this stay's total is too large to book"))?;
    Ok(PricedStay {
        property_id: quote.property_id,
        check_in,
        check_out,
        guests,
        nights,
        nightly_rate: quote.nightly_rate,
        total,
        currency: quote.currency.clone(),
        cancellation_policy: quote.cancellation_policy,
        available: true,
    })
}

/// The outbox row announcing a reservation's new state (same transaction as the change).
async fn write_event(
    txn: &impl ConnectionTrait,
    kind: &str,
    r: &Reservation,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    let id = Uuid::now_v7();
    let payload = json!({
        "eventId": id,
        "kind": kind,
        "occurredAt": at,
        "reservationId": r.id,
        "propertyId": r.property_id,
        "propertyTitle": r.property_title,
        "guestId": r.guest_id,
        "hostId": r.host_id,
        "checkIn": r.check_in,
        "checkOut": r.check_out,
        "nights": r.nights,
        "total": { "amount": r.total_amount, "currency": r.currency },
        "refund": r.refund_amount.map(|a| json!({ "amount": a, "currency": r.currency })),
        "status": r.status,
        "failureCode": r.failure_code,
    });
    outbox::ActiveModel {
        id: Set(id),
        kind: Set(kind.to_owned()),
        aggregate_id: Set(r.id),
        payload: Set(payload.to_string()),
        created_at: Set(at),
        published_at: Set(None),
    }
    .insert(txn)
    .await?;
    Ok(())
}
