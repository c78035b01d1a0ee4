//! iCal feeds of a property's calendar (see `crate::ical`): the export URL and its rotation,
//! serving the export, and the host's imports with their sync.
//!
//! Everything here is for the property's host and admins (the same rule as calendar blocks),
//! except the export feed itself, whose secret URL is its own credential.
//!
//! A sync fetches the feed; a failed fetch or an unreadable body is recorded on the import
//! (`ERROR`, `lastError`) and changes no block. Otherwise the feed's events are compared with
//! the import's blocks by UID: a block whose event is gone is removed (its nights are free), a
//! block whose event moved is moved, a new event becomes a block. All of it goes through the
//! block statements, so every change has its `calendar.*` event for catalog's date search.
//! An event whose nights are taken (a live booking, another block) is refused by the database
//! and recorded as a conflict (`CONFLICTS`); the booking is untouched.

use std::collections::HashMap;

use chrono::{Duration, Utc};
use draftr_common::Claims;
use secrecy::ExposeSecret;
use uuid::Uuid;

use super::ReservationService;
use super::blocks::SOURCE_IMPORTED;
use crate::error::Error;
use crate::ical::export::{self, ExportEvent, ExportKind};
use crate::ical::feed::{self, FeedEvent};
use crate::ical::fetch::{FetchError, Fetcher};
use crate::ical::token::FeedTokens;
use crate::ical::{DEV_FEED_SECRET, IcalSettings};
use crate::store::blocks::Block;
use crate::store::ical::{self as store, CalendarImport, Conflict, Inserted, MoveError};

pub use crate::store::ical::{CalendarImport as Import, Conflict as ImportConflict};

/// The longest import name, in characters (after trimming).
pub const MAX_IMPORT_NAME_CHARS: usize = 100;

/// An import's state (`CalendarImport.status`).
pub const STATUS_PENDING: &str = "PENDING";
pub const STATUS_OK: &str = "OK";
pub const STATUS_CONFLICTS: &str = "CONFLICTS";
pub const STATUS_ERROR: &str = "ERROR";

/// The feeds' settings and tools, given to the service by the app.
#[derive(Debug, Clone)]
pub struct Ical {
    pub settings: IcalSettings,
    tokens: FeedTokens,
    fetcher: Fetcher,
    /// Where export URLs start, without a trailing slash.
    base_url: String,
}

impl Ical {
    /// `own_url` is this subgraph's address, the base of export URLs when the settings name
    /// none.
    pub fn new(settings: IcalSettings, own_url: &str) -> anyhow::Result<Self> {
        let secret = match &settings.feed_secret {
            Some(s) => s.expose_secret().as_bytes().to_vec(),
            None => DEV_FEED_SECRET.as_bytes().to_vec(),
        };
        let base = if settings.public_base_url.trim().is_empty() {
            own_url
        } else {
            settings.public_base_url.trim()
        };
        Ok(Self {
            tokens: FeedTokens::new(&secret),
            fetcher: Fetcher::new(&settings)?,
            base_url: base.trim_end_matches('/').to_owned(),
            settings,
        })
    }
}

/// What a host asks to import.
#[derive(Debug, Clone)]
pub struct NewImport {
    pub property_id: Uuid,
    pub url: String,
    pub name: Option<String>,
}

fn fetch_error(e: FetchError) -> Error {
    Error::invalid("url", e.to_string())
}

impl ReservationService {
    fn ical(&self) -> &Ical {
        &self.ical
    }

    /// The property's export URL: its host and admins.
    pub async fn ical_export_url(
        &self,
        me: &Claims,
        property: Uuid,
        request_id: &str,
    ) -> Result<String, Error> {
        self.require_host(me, property, request_id).await?;
        let generation = store::generation(&self.db, property).await?;
        Ok(self.export_url(property, generation))
    }

    /// A new export URL for the property; the previous one is 404 from now on.
    pub async fn rotate_ical_export_url(
        &self,
        me: &Claims,
        property: Uuid,
        request_id: &str,
    ) -> Result<String, Error> {
        self.require_host(me, property, request_id).await?;
        let generation = store::rotate(&self.db, property).await?;
        tracing::info!(property.id = %property, generation, "iCal export URL rotated");
        Ok(self.export_url(property, generation))
    }

    fn export_url(&self, property: Uuid, generation: i64) -> String {
        let token = self.ical().tokens.token(property, generation);
        format!("{}/calendar/{property}/{token}.ics", self.ical().base_url)
    }

    /// The export feed of `property` if `token` is its current one; `None` otherwise (an
    /// unknown property has no valid token either).
    pub async fn ical_feed(&self, property: Uuid, token: &str) -> Result<Option<String>, Error> {
        let generation = store::generation(&self.db, property).await?;
        if !self.ical().tokens.verify(property, generation, token) {
            return Ok(None);
        }
        let since = Utc::now().date_naive() - Duration::days(self.ical().settings.export_past_days);
        let stays = store::confirmed_stays(&self.db, property, since).await?;
        let blocks = store::blocks_since(&self.db, property, since).await?;
        if stays.is_empty() && blocks.is_empty() && generation == 0 {
            // A property never booked, blocked or rotated may not exist at all: ask catalog,
            // so a made-up id is the same 404 as a wrong token.
            match self.catalog_quote(property, "ical-feed").await {
                Ok(_) => {}
                Err(Error::PropertyNotFound) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        let mut events: Vec<ExportEvent> = stays
            .iter()
            .map(|r| ExportEvent {
                id: r.id,
                from: r.check_in,
                to: r.check_out,
                kind: ExportKind::Booking,
                stamp: r.updated_at,
            })
            .chain(blocks.iter().map(|b| ExportEvent {
                id: b.id,
                from: b.starts_on,
                to: b.ends_on,
                kind: ExportKind::Block,
                stamp: b.created_at,
            }))
            .collect();
        events.sort_by_key(|e| (e.from, e.id));
        Ok(Some(export::calendar(property, &events)))
    }

    /// The property's imports: its host and admins.
    pub async fn calendar_imports(
        &self,
        me: &Claims,
        property: Uuid,
        request_id: &str,
    ) -> Result<Vec<CalendarImport>, Error> {
        if !me.is_admin() {
            self.require_host(me, property, request_id).await?;
        }
        store::imports_of(&self.db, property).await
    }

    /// Subscribes the property to a feed and syncs it once.
    pub async fn add_calendar_import(
        &self,
        me: &Claims,
        req: NewImport,
        request_id: &str,
    ) -> Result<CalendarImport, Error> {
        let name = req
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        if name
            .as_deref()
            .is_some_and(|n| n.chars().count() > MAX_IMPORT_NAME_CHARS)
        {
            return Err(Error::invalid(
                "name",
                format!("a name can be at most {MAX_IMPORT_NAME_CHARS} characters"),
            ));
        }
        // Who asks first: the URL check resolves names, which is not for strangers to probe.
        let host = self.require_host(me, req.property_id, request_id).await?;
        let url = self
            .ical()
            .fetcher
            .check(&req.url)
            .await
            .map_err(fetch_error)?;
        let max = self.ical().settings.max_imports_per_property;
        if store::count_imports(&self.db, req.property_id).await? >= max {
            return Err(Error::invalid(
                "propertyId",
                format!("a property can import at most {max} calendars"),
            ));
        }
        let now = Utc::now();
        let row = CalendarImport {
            id: Uuid::now_v7(),
            property_id: req.property_id,
            host_id: host,
            url: url.to_string(),
            name,
            status: STATUS_PENDING.to_owned(),
            last_synced_at: None,
            last_error: None,
            conflicts: "[]".to_owned(),
            next_poll_at: now + self.poll_interval(),
            created_by: me.sub,
            created_at: now,
        };
        store::insert_import(&self.db, row.clone()).await?;
        tracing::info!(import.id = %row.id, property.id = %row.property_id, "calendar import added");
        self.sync(&row).await?;
        self.import(row.id).await
    }

    /// Removes an import with its blocks (their nights are free again); false when there is
    /// no such import.
    pub async fn remove_calendar_import(&self, me: &Claims, id: Uuid) -> Result<bool, Error> {
        let Some(row) = store::find_import(&self.db, id).await? else {
            return Ok(false);
        };
        require_owner(me, &row)?;
        let removed = store::delete_import(&self.db, id, row.property_id).await?;
        if removed {
            tracing::info!(import.id = %id, property.id = %row.property_id, "calendar import removed");
        }
        Ok(removed)
    }

    /// Syncs an import now (its host or an admin).
    pub async fn sync_calendar_import(
        &self,
        me: &Claims,
        id: Uuid,
    ) -> Result<CalendarImport, Error> {
        let row = store::find_import(&self.db, id)
            .await?
            .ok_or(Error::ImportNotFound)?;
        require_owner(me, &row)?;
        self.sync(&row).await?;
        self.import(id).await
    }

    async fn import(&self, id: Uuid) -> Result<CalendarImport, Error> {
        store::find_import(&self.db, id)
            .await?
            .ok_or(Error::ImportNotFound)
    }

    fn poll_interval(&self) -> Duration {
        Duration::seconds(
            i64::try_from(self.ical().settings.poll_interval_secs.max(1)).unwrap_or(i64::MAX),
        )
    }

    /// Claims and syncs imports that are due: what the poller runs on its tick. How many were
    /// synced.
    pub async fn poll_due_imports(&self) -> Result<usize, Error> {
        let now = Utc::now();
        let mut synced = 0;
        for id in store::due(&self.db, now, 20).await? {
            if !store::claim(&self.db, id, now, now + self.poll_interval()).await? {
                continue; // another replica took it
            }
            let Some(row) = store::find_import(&self.db, id).await? else {
                continue;
            };
            if let Err(e) = self.sync(&row).await {
                tracing::warn!(import.id = %id, error = %e, "calendar import sync failed");
            }
            synced += 1;
        }
        Ok(synced)
    }

    /// One sync of `row` (see the module's doc). An error only for the database; the feed's
    /// own failures are recorded on the import.
    async fn sync(&self, row: &CalendarImport) -> Result<(), Error> {
        let fetched = self.ical().fetcher.fetch(&row.url).await;
        let events = match fetched
            .map_err(|e| e.to_string())
            .and_then(|text| feed::parse(&text).map_err(|e| e.to_string()))
        {
            Ok(events) => events,
            Err(message) => {
                tracing::info!(import.id = %row.id, error = %message, "calendar import not synced");
                return store::record(&self.db, row.id, STATUS_ERROR, None, Some(message), None)
                    .await;
            }
        };
        let today = Utc::now().date_naive();
        let horizon = today + Duration::days(self.rules.max_days_ahead);
        // Past events and events beyond the booking horizon do not matter to the calendar.
        let wanted: Vec<FeedEvent> = events
            .into_iter()
            .filter(|e| e.to > today && e.from <= horizon)
            .collect();
        let mut existing: HashMap<String, Block> = store::blocks_of_import(&self.db, row.id)
            .await?
            .into_iter()
            .filter_map(|b| b.external_uid.clone().map(|u| (u, b)))
            .collect();
        // Removed events first, so their nights are free for the rest.
        let keep: std::collections::HashSet<&str> = wanted.iter().map(|e| e.uid.as_str()).collect();
        let gone: Vec<String> = existing
            .keys()
            .filter(|u| !keep.contains(u.as_str()))
            .cloned()
            .collect();
        for uid in gone {
            if let Some(block) = existing.remove(&uid) {
                crate::store::blocks::delete(&self.db, &block).await?;
            }
        }
        let mut conflicts = Vec::new();
        let mut ordered = wanted;
        ordered.sort_by_key(|e| (e.from, e.uid.clone()));
        for event in ordered {
            let conflict = || Conflict {
                uid: event.uid.clone(),
                from: event.from,
                to: event.to,
                summary: event.summary.clone(),
            };
            match existing.remove(&event.uid) {
                Some(b) if b.starts_on == event.from && b.ends_on == event.to => {}
                Some(b) => match store::move_block(&self.db, &b, event.from, event.to).await {
                    Ok(_) => {}
                    Err(MoveError::Overlap) => {
                        // The feed no longer has the old nights: free them, and report the new.
                        crate::store::blocks::delete(&self.db, &b).await?;
                        conflicts.push(conflict());
                    }
                    // A concurrent sync removed it; the next sync blocks the event again.
                    Err(MoveError::Gone) => {}
                    Err(MoveError::Db(e)) => return Err(e.into()),
                },
                None => {
                    let block = Block {
                        id: Uuid::now_v7(),
                        property_id: row.property_id,
                        host_id: row.host_id,
                        starts_on: event.from,
                        ends_on: event.to,
                        note: event.summary.clone(),
                        source: SOURCE_IMPORTED.to_owned(),
                        import_id: Some(row.id),
                        external_uid: Some(event.uid.clone()),
                        created_by: row.created_by,
                        created_at: Utc::now(),
                    };
                    match store::insert_block(&self.db, block).await? {
                        Inserted::Block | Inserted::Already => {}
                        Inserted::Overlap => conflicts.push(conflict()),
                        Inserted::ImportGone => {
                            tracing::info!(import.id = %row.id, "calendar import removed during its sync; stopped");
                            return Ok(());
                        }
                    }
                }
            }
        }
        let previous = row.conflict_list();
        let new: Vec<&Conflict> = conflicts.iter().filter(|c| !previous.contains(c)).collect();
        let status = if conflicts.is_empty() {
            STATUS_OK
        } else {
            STATUS_CONFLICTS
        };
        store::record_sync(&self.db, row, status, Utc::now(), &conflicts, &new).await?;
        tracing::info!(import.id = %row.id, status, conflicts = conflicts.len(), new_conflicts = new.len(), "calendar import synced");
        Ok(())
    }
}

/// The import's host, or an admin.
fn require_owner(me: &Claims, row: &CalendarImport) -> Result<(), Error> {
    if me.sub != row.host_id && !me.is_admin() {
        return Err(Error::Forbidden(
            "only the property's host or an admin can manage its calendar",
        ));
    }
    Ok(())
}
