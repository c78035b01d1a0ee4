//! Host calendar blocks: `blockDates`, `unblockDates` and `Property.calendarBlocks`.
//!
//! Only the property's host (as catalog says, through the same `propertyQuote` the booking
//! saga prices with) or an admin may block, unblock or list blocks. That a block never shares
//! a night with a live booking or another block is the database's rule
//! ([`crate::store::CALENDAR_NO_OVERLAP`]); the code only turns its refusal into
//! BOOKING_CONFLICT. Guests never see blocks as such: their nights are in the public calendar
//! (`bookedRanges`, `isAvailable`, quotes, date search) like booked ones.

use chrono::{NaiveDate, Utc};
use draftr_common::Claims;
use uuid::Uuid;

use super::ReservationService;
use crate::error::Error;
use crate::store::blocks::{self, Block, BlockError};

/// The longest block, in nights (a host closing a listing for longer can add several).
pub const MAX_BLOCK_NIGHTS: i64 = 366;

/// The longest note, in characters (after trimming).
pub const MAX_NOTE_CHARS: usize = 500;

/// Where a block came from: the host's `blockDates`.
pub const SOURCE_MANUAL: &str = "MANUAL";

/// Where a block came from: an event of a calendar feed the host imports (`crate::ical`).
pub const SOURCE_IMPORTED: &str = "IMPORTED";

/// What a host asks to block.
#[derive(Debug, Clone)]
pub struct NewBlock {
    pub property_id: Uuid,
    pub from: NaiveDate,
    /// Exclusive: the day after the last blocked night.
    pub to: NaiveDate,
    pub note: Option<String>,
}

/// Checks the dates as a stay's are checked, with the block's own length limit; the note,
/// trimmed (empty is none).
fn validate(
    req: &NewBlock,
    today: NaiveDate,
    max_days_ahead: i64,
) -> Result<Option<String>, Error> {
    if req.from < today {
        return Err(Error::invalid("from", "a block cannot start in the past"));
    }
    if req.to <= req.from {
        return Err(Error::invalid("to", "the block must end after it starts"));
    }
    if (req.from - today).num_days() > max_days_ahead {
        return Err(Error::invalid(
            "from",
            format!("blocks can start at most {max_days_ahead} days ahead"),
        ));
    }
    if (req.to - req.from).num_days() > MAX_BLOCK_NIGHTS {
        return Err(Error::invalid(
            "to",
            format!("a block can be at most {MAX_BLOCK_NIGHTS} nights"),
        ));
    }
    let note = req.note.as_deref().map(str::trim).filter(|n| !n.is_empty());
    if note.is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS) {
        return Err(Error::invalid(
            "note",
            format!("a note can be at most {MAX_NOTE_CHARS} characters"),
        ));
    }
    Ok(note.map(str::to_owned))
}

impl ReservationService {
    /// The property's host, as catalog says; [`Error::PropertyNotFound`] without one.
    async fn property_host(&self, property: Uuid, request_id: &str) -> Result<Uuid, Error> {
        Ok(self.catalog_quote(property, request_id).await?.host_id)
    }

    /// Allowed for admins, and the property's host.
    pub(super) async fn require_host(
        &self,
        me: &Claims,
        property: Uuid,
        request_id: &str,
    ) -> Result<Uuid, Error> {
        let host = self.property_host(property, request_id).await?;
        if me.sub != host && !me.is_admin() {
            return Err(Error::Forbidden(
                "only the property's host or an admin can manage its calendar",
            ));
        }
        Ok(host)
    }

    /// Blocks `[from, to)` of the property: BOOKING_CONFLICT when a live booking or another
    /// block has one of those nights.
    pub async fn block_dates(
        &self,
        me: &Claims,
        req: NewBlock,
        request_id: &str,
    ) -> Result<Block, Error> {
        let note = validate(&req, Utc::now().date_naive(), self.rules.max_days_ahead)?;
        let host = self.require_host(me, req.property_id, request_id).await?;
        let block = Block {
            id: Uuid::now_v7(),
            property_id: req.property_id,
            host_id: host,
            starts_on: req.from,
            ends_on: req.to,
            note,
            source: SOURCE_MANUAL.to_owned(),
            import_id: None,
            external_uid: None,
            created_by: me.sub,
            created_at: Utc::now(),
        };
        match blocks::insert(&self.db, block).await {
            Ok(b) => {
                tracing::info!(block.id = %b.id, property.id = %b.property_id, from = %b.starts_on, to = %b.ends_on, "dates blocked");
                Ok(b)
            }
            Err(BlockError::Overlap) => Err(Error::BookingConflict),
            Err(BlockError::Db(e)) => Err(e.into()),
        }
    }

    /// Removes a block (its host, or an admin); false when there is no such block (never
    /// was, or removed already). The host is the one recorded with the block, so a block
    /// stays removable even if catalog no longer lists the property.
    pub async fn unblock_dates(&self, me: &Claims, id: Uuid) -> Result<bool, Error> {
        let Some(block) = blocks::find(&self.db, id).await? else {
            return Ok(false);
        };
        if me.sub != block.host_id && !me.is_admin() {
            return Err(Error::Forbidden(
                "only the property's host or an admin can manage its calendar",
            ));
        }
        let removed = blocks::delete(&self.db, &block).await?;
        if removed {
            tracing::info!(block.id = %block.id, property.id = %block.property_id, "dates unblocked");
        }
        Ok(removed)
    }

    /// The property's blocks sharing a night with `[from, to)`: its host and admins only.
    pub async fn calendar_blocks(
        &self,
        me: &Claims,
        property: Uuid,
        from: NaiveDate,
        to: NaiveDate,
        request_id: &str,
    ) -> Result<Vec<Block>, Error> {
        if !me.is_admin() {
            self.require_host(me, property, request_id).await?;
        }
        blocks::overlapping(&self.db, property, from, to).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(from: &str, to: &str, note: Option<&str>) -> NewBlock {
        NewBlock {
            property_id: Uuid::nil(),
            from: from.parse().unwrap(),
            to: to.parse().unwrap(),
            note: note.map(str::to_owned),
        }
    }

    fn field(r: Result<Option<String>, Error>) -> &'static str {
        match r {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected invalid input, got {other:?}"),
        }
    }

    #[test]
    fn dates_and_notes_are_checked() {
        let today: NaiveDate = "2027-01-10".parse().unwrap();
        let ok = |r| validate(&r, today, 730);
        assert_eq!(ok(req("2027-01-10", "2027-01-11", None)).unwrap(), None);
        assert_eq!(
            ok(req("2027-01-10", "2027-01-11", Some("  family  "))).unwrap(),
            Some("family".into())
        );
        assert_eq!(
            ok(req("2027-01-10", "2027-01-11", Some("   "))).unwrap(),
            None
        );
        assert_eq!(field(ok(req("2027-01-09", "2027-01-11", None))), "from");
        assert_eq!(field(ok(req("2027-01-12", "2027-01-12", None))), "to");
        assert_eq!(field(ok(req("2029-01-11", "2029-01-12", None))), "from");
        assert_eq!(field(ok(req("2027-01-10", "2028-01-12", None))), "to");
        assert!(
            ok(req("2027-01-10", "2028-01-11", None)).is_ok(),
            "366 nights"
        );
        let long = "x".repeat(MAX_NOTE_CHARS + 1);
        assert_eq!(
            field(ok(req("2027-01-10", "2027-01-11", Some(&long)))),
            "note"
        );
    }
}
