//! Reservations and the booking saga (docs/architecture.md, "The booking saga"), one stage
//! per file:
//! - booking, in `booking.rs`: validate → quote (catalog) → hold (insert PENDING; the database
//!   refuses an overlapping hold) → authorize (payments) → confirm + outbox event in one
//!   transaction → capture, and the answer to a repeated idempotency key;
//! - settlement, in `settlement.rs`: capture, compensation, and how a hold whose saga is gone
//!   is ended;
//! - cancellation, in `cancellation.rs`: a guest's cancellation with the policy's refund, and
//!   an admin's delete;
//! - changing a confirmed stay, in `change.rs`: re-priced, the difference charged or refunded,
//!   the new nights taken and the old released in one transaction;
//! - reviews, in `reviews.rs`: a guest's review of a stay that ended, the host's reply, an
//!   admin's removal, and the reads behind `Property.reviews` and `Property.rating`;
//! - calendar blocks, in `blocks.rs`: a host taking nights off sale, and removing the block;
//! - iCal feeds, in `ical.rs`: the export URL and feed, and imported feeds synced into blocks.
//!
//! Every step after the hold either moves the saga forward or compensates it, and every step
//! is safe to repeat, because the reconciler ([`crate::reconciler`]) repeats whatever a crash
//! interrupted with the same settlement functions the saga uses. The statements themselves
//! are in `crate::store`.

mod blocks;
mod booking;
mod cancellation;
mod change;
pub mod ical;
mod reviews;
mod settlement;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use draftr_common::metrics::ReservationMetrics;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::clients::{CatalogClient, PaymentsClient};
use crate::config::{BookingSettings, ReviewSettings};
use crate::domain::{CancellationPolicy, StayRules};
use crate::error::Error;
use crate::store::queries;

pub use crate::store::blocks::Block;
pub use crate::store::{Reservation, Review, Scope};
pub use blocks::{MAX_BLOCK_NIGHTS, MAX_NOTE_CHARS, NewBlock};
pub use change::ChangeRequest;
pub use reviews::{NewReview, Rating};
pub(crate) use settlement::Settled;

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

pub struct ReservationService {
    db: DatabaseConnection,
    catalog: Arc<CatalogClient>,
    payments: Arc<PaymentsClient>,
    rules: BookingSettings,
    reviews: ReviewSettings,
    metrics: ReservationMetrics,
    /// iCal export and import (`ical.rs`); the defaults until [`Self::with_ical`].
    ical: ical::Ical,
}

impl ReservationService {
    pub fn new(
        db: DatabaseConnection,
        catalog: Arc<CatalogClient>,
        payments: Arc<PaymentsClient>,
        rules: BookingSettings,
        reviews: ReviewSettings,
        metrics: ReservationMetrics,
    ) -> Self {
        Self {
            db,
            catalog,
            payments,
            rules,
            reviews,
            metrics,
            ical: ical::Ical::new(Default::default(), "http://127.0.0.1:4003")
                .expect("the default iCal settings build"),
        }
    }

    /// The iCal feeds' settings and tools (export URLs, safe fetching of imports).
    pub fn with_ical(mut self, ical: ical::Ical) -> Self {
        self.ical = ical;
        self
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Where bookings, reconciler actions and the outbox are counted.
    pub fn metrics(&self) -> &ReservationMetrics {
        &self.metrics
    }

    /// Failed or cancelled reservations, and changes, whose payment is still to be voided or
    /// refunded.
    pub async fn compensations_pending(&self) -> Result<u64, Error> {
        Ok(queries::count_awaiting_compensation(&self.db).await?
            + crate::store::changes::count_unsettled(&self.db).await?)
    }

    fn stay_rules(&self) -> StayRules {
        StayRules {
            max_nights: self.rules.max_nights,
            max_days_ahead: self.rules.max_days_ahead,
        }
    }

    pub async fn require(&self, id: Uuid) -> Result<Reservation, Error> {
        queries::require(&self.db, id).await
    }

    pub async fn get_many(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Reservation>, Error> {
        queries::get_many(&self.db, ids).await
    }

    /// Newest first, after the cursor's id; whether more follow.
    pub async fn page(
        &self,
        scope: Scope,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<(Vec<Reservation>, bool), Error> {
        queries::page(&self.db, scope, after, limit).await
    }

    pub async fn count(&self, scope: Scope) -> Result<u64, Error> {
        queries::count(&self.db, scope).await
    }

    /// Taken nights (active bookings and calendar blocks) overlapping each
    /// `(property, from, to)`.
    pub async fn calendar(
        &self,
        keys: &[(Uuid, NaiveDate, NaiveDate)],
    ) -> Result<HashMap<(Uuid, NaiveDate, NaiveDate), Vec<(NaiveDate, NaiveDate)>>, Error> {
        queries::calendar(&self.db, keys).await
    }
}
