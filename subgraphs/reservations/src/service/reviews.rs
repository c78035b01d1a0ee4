//! Reviews of stays: the guest of a CONFIRMED stay reviews it once, from its check-out day
//! until `reviews.window_days` after; the stay's host replies once; an admin removes a review,
//! which then disappears from every read and from the property's rating.
//!
//! "Once" is kept by the database: the UNIQUE key on `reviews.reservation_id` decides between
//! concurrent reviews of one stay, and the reply is a conditional update. Who may do what is
//! decided here, with the same hiding as reservations: someone else's stay is NOT_FOUND,
//! except to the host (and admins), who know it exists and are told FORBIDDEN.

use std::collections::HashMap;

use chrono::Utc;
use draftr_common::Claims;
use uuid::Uuid;

use super::ReservationService;
use crate::domain::{self, ReservationStatus};
use crate::error::Error;
use crate::store::reviews::{self, InsertError};
use crate::store::{Review, queries};

/// What a guest writes about a stay.
#[derive(Debug, Clone)]
pub struct NewReview {
    pub reservation_id: Uuid,
    pub rating: i32,
    pub comment: String,
}

/// A property's rating over its shown reviews.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rating {
    pub count: i64,
    pub sum: i64,
}

impl Rating {
    /// The mean rating; none without reviews.
    pub fn average(self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }
}

impl ReservationService {
    /// Stores `review` of a stay by `who`, its guest.
    pub async fn create_review(&self, who: &Claims, review: NewReview) -> Result<Review, Error> {
        let comment = domain::validate_review(review.rating, &review.comment)?;
        let stay = queries::require(&self.db, review.reservation_id).await?;
        if stay.guest_id != who.sub {
            // Those who may see the stay learn they may not review it; anyone else, that
            // there is no such stay (as `reservation` tells them).
            return Err(if stay.host_id == who.sub || who.is_admin() {
                Error::Forbidden("only the guest of a stay can review it")
            } else {
                Error::NotFound
            });
        }
        if ReservationStatus::parse(&stay.status)? != ReservationStatus::Confirmed {
            return Err(Error::invalid(
                "reservationId",
                "only a confirmed stay can be reviewed",
            ));
        }
        let today = Utc::now().date_naive();
        domain::review_window(stay.check_out, today, self.reviews.window_days)?;
        let row = Review {
            id: Uuid::now_v7(),
            reservation_id: stay.id,
            property_id: stay.property_id,
            guest_id: stay.guest_id,
            host_id: stay.host_id,
            rating: review.rating as i16,
            comment,
            created_at: Utc::now(),
            reply: None,
            replied_at: None,
            removed_at: None,
        };
        match reviews::insert(&self.db, row).await {
            Ok(stored) => {
                tracing::info!(
                    review.id = %stored.id,
                    reservation.id = %stored.reservation_id,
                    property.id = %stored.property_id,
                    review.rating = stored.rating,
                    "stay reviewed"
                );
                Ok(stored)
            }
            Err(InsertError::AlreadyReviewed) => Err(Error::invalid(
                "reservationId",
                "this stay has been reviewed already",
            )),
            Err(InsertError::Db(e)) => Err(e.into()),
        }
    }

    /// The host's one reply to a review of their stay.
    pub async fn reply_to_review(
        &self,
        who: &Claims,
        id: Uuid,
        reply: &str,
    ) -> Result<Review, Error> {
        let review = self.shown_review(id).await?;
        if review.host_id != who.sub {
            return Err(Error::Forbidden(
                "only the host of the stay can reply to its review",
            ));
        }
        let reply = domain::review_text("reply", reply)?;
        if review.reply.is_some() || !reviews::set_reply(&self.db, id, reply, Utc::now()).await? {
            // Replied to (perhaps a moment ago, concurrently) or removed since it was read.
            self.shown_review(id).await?;
            return Err(Error::invalid("id", "this review has a reply already"));
        }
        tracing::info!(review.id = %id, "review replied to");
        self.shown_review(id).await
    }

    /// Removes a review (admins only, checked by the caller): whether it was shown until now.
    pub async fn remove_review(&self, id: Uuid) -> Result<bool, Error> {
        if reviews::find_any(&self.db, id).await?.is_none() {
            return Err(Error::ReviewNotFound);
        }
        let removed = reviews::remove(&self.db, id, Utc::now()).await?;
        if removed {
            tracing::info!(review.id = %id, "review removed");
        }
        Ok(removed)
    }

    async fn shown_review(&self, id: Uuid) -> Result<Review, Error> {
        reviews::find_any(&self.db, id)
            .await?
            .filter(|r| r.removed_at.is_none())
            .ok_or(Error::ReviewNotFound)
    }

    /// Shown reviews by id.
    pub async fn reviews(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Review>, Error> {
        Ok(reviews::get_many(&self.db, ids).await?)
    }

    /// The shown review of each of these stays that has one.
    pub async fn reviews_of_stays(
        &self,
        reservations: &[Uuid],
    ) -> Result<HashMap<Uuid, Review>, Error> {
        Ok(reviews::by_reservations(&self.db, reservations).await?)
    }

    /// A property's reviews, newest first, after the cursor's id; whether more follow.
    pub async fn review_page(
        &self,
        property: Uuid,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<(Vec<Review>, bool), Error> {
        Ok(reviews::page(&self.db, property, after, limit).await?)
    }

    /// The rating of each property (zero reviews for those without any), in one statement.
    pub async fn ratings(&self, properties: &[Uuid]) -> Result<HashMap<Uuid, Rating>, Error> {
        let found = reviews::ratings(&self.db, properties).await?;
        Ok(properties
            .iter()
            .map(|p| {
                let (count, sum) = found.get(p).copied().unwrap_or_default();
                (*p, Rating { count, sum })
            })
            .collect())
    }
}
