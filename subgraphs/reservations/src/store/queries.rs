//! Reads: single rows, pages and counts for the API, the calendar, and the rows the
//! reconciler must look at.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select,
};
use uuid::Uuid;

use super::Reservation;
use super::reservations::{Column, Entity};
use crate::domain::{ACTIVE, ReservationStatus};
use crate::error::Error;

/// Whose reservations a list shows.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    All,
    /// Those where the user is the guest or the host.
    Party(Uuid),
    /// Those where the user is the guest.
    Guest(Uuid),
}

/// How many rows each reconciler query hands over per pass; the next pass takes the rest.
const RECONCILER_BATCH: u64 = 100;

/// The guest's reservation made with this idempotency key (unique per guest).
pub async fn by_key(
    db: &impl ConnectionTrait,
    guest: Uuid,
    key: &str,
) -> Result<Option<Reservation>, Error> {
    Ok(Entity::find()
        .filter(Column::GuestId.eq(guest))
        .filter(Column::IdempotencyKey.eq(key))
        .one(db)
        .await?)
}

pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<Reservation>, Error> {
    Ok(Entity::find_by_id(id).one(db).await?)
}

/// The reservation, or [`Error::NotFound`].
pub async fn require(db: &impl ConnectionTrait, id: Uuid) -> Result<Reservation, Error> {
    find(db, id).await?.ok_or(Error::NotFound)
}

pub async fn get_many(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Reservation>, Error> {
    Ok(Entity::find()
        .filter(Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.id, r))
        .collect())
}

fn scoped(scope: Scope) -> Select<Entity> {
    let q = Entity::find();
    match scope {
        Scope::All => q,
        Scope::Guest(u) => q.filter(Column::GuestId.eq(u)),
        Scope::Party(u) => q.filter(
            Condition::any()
                .add(Column::GuestId.eq(u))
                .add(Column::HostId.eq(u)),
        ),
    }
}

/// Newest first, after the cursor's id (ids are time-ordered UUIDv7); whether more follow.
pub async fn page(
    db: &impl ConnectionTrait,
    scope: Scope,
    after: Option<Uuid>,
    limit: u64,
) -> Result<(Vec<Reservation>, bool), Error> {
    Ok(draftr_common::db::page_by_id_desc(db, scoped(scope), Column::Id, after, limit).await?)
}

pub async fn count(db: &impl ConnectionTrait, scope: Scope) -> Result<u64, Error> {
    Ok(scoped(scope).count(db).await?)
}

/// Taken nights overlapping each `(property, from, to)`: active bookings and calendar blocks,
/// merged into one list by start, so the public calendar cannot tell them apart. Two queries
/// per distinct range, so a page of properties asked about the same dates costs two
/// statements.
pub async fn calendar(
    db: &impl ConnectionTrait,
    keys: &[(Uuid, NaiveDate, NaiveDate)],
) -> Result<HashMap<(Uuid, NaiveDate, NaiveDate), Vec<(NaiveDate, NaiveDate)>>, Error> {
    let mut by_range: HashMap<(NaiveDate, NaiveDate), Vec<Uuid>> = HashMap::new();
    for (p, from, to) in keys {
        by_range.entry((*from, *to)).or_default().push(*p);
    }
    let mut out: HashMap<_, Vec<_>> = keys.iter().map(|k| (*k, Vec::new())).collect();
    for ((from, to), properties) in by_range {
        let rows = Entity::find()
            .filter(Column::PropertyId.is_in(properties.iter().copied()))
            .filter(Column::Status.is_in(ACTIVE.map(ReservationStatus::as_str)))
            .filter(Column::CheckIn.lt(to))
            .filter(Column::CheckOut.gt(from))
            .order_by_asc(Column::CheckIn)
            .all(db)
            .await?;
        let blocked = super::blocks::ranges(db, properties, from, to).await?;
        for r in rows {
            if let Some(list) = out.get_mut(&(r.property_id, from, to)) {
                list.push((r.check_in, r.check_out));
            }
        }
        for (property, ranges) in blocked {
            if let Some(list) = out.get_mut(&(property, from, to)) {
                list.extend(ranges);
            }
        }
    }
    for list in out.values_mut() {
        list.sort();
    }
    Ok(out)
}

/// PENDING holds not touched since `older_than`, oldest first: their sagas are gone.
pub async fn stale_pending(
    db: &impl ConnectionTrait,
    older_than: DateTime<Utc>,
) -> Result<Vec<Reservation>, Error> {
    Ok(Entity::find()
        .filter(Column::Status.eq(ReservationStatus::Pending.as_str()))
        .filter(Column::UpdatedAt.lt(older_than))
        .order_by_asc(Column::UpdatedAt)
        .limit(RECONCILER_BATCH)
        .all(db)
        .await?)
}

/// Confirmed bookings whose payment is not captured yet.
pub async fn uncaptured(db: &impl ConnectionTrait) -> Result<Vec<Reservation>, Error> {
    Ok(Entity::find()
        .filter(Column::Status.eq(ReservationStatus::Confirmed.as_str()))
        .filter(Column::Captured.eq(false))
        .limit(RECONCILER_BATCH)
        .all(db)
        .await?)
}

/// How many failed or cancelled bookings still have a payment to void or refund (for
/// metrics; the reconciler reads them in batches with [`awaiting_compensation`]).
pub async fn count_awaiting_compensation(db: &impl ConnectionTrait) -> Result<u64, Error> {
    Ok(Entity::find()
        .filter(Column::CompensationPending.eq(true))
        .count(db)
        .await?)
}

/// Failed or cancelled bookings whose payment still has to be voided or refunded.
pub async fn awaiting_compensation(db: &impl ConnectionTrait) -> Result<Vec<Reservation>, Error> {
    Ok(Entity::find()
        .filter(Column::CompensationPending.eq(true))
        .limit(RECONCILER_BATCH)
        .all(db)
        .await?)
}
