//! The export feed: `GET /calendar/{propertyId}/{token}.ics`.
//!
//! One all-day VEVENT per confirmed stay ("Reserved") and per calendar block ("Not
//! available"), DTEND exclusive (the check-out day), UID `<reservation or block id>@draftr`
//! (ids are never reused, so the UID is the same in every fetch), DTSTAMP the row's last
//! change. Nothing about the guest (name, email, id) or the host's note is written. Stays and
//! blocks that ended more than `export_past_days` ago are left out. A wrong token and an
//! unknown property are the same 404.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, NaiveDate, Utc};
use icalendar::{Calendar, Component, Event, EventLike};
use uuid::Uuid;

use crate::service::ReservationService;

/// What a feed lists: one night range, without who or why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportEvent {
    /// The reservation's or the block's id.
    pub id: Uuid,
    pub from: NaiveDate,
    /// Exclusive.
    pub to: NaiveDate,
    pub kind: ExportKind,
    /// When the row last changed (DTSTAMP).
    pub stamp: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    Booking,
    Block,
}

impl ExportKind {
    pub fn summary(self) -> &'static str {
        match self {
            Self::Booking => "Reserved",
            Self::Block => "Not available",
        }
    }
}

/// The UID of the event for a reservation or block id.
pub fn uid(id: Uuid) -> String {
    format!("{id}@draftr")
}

/// The RFC 5545 text of a property's feed.
pub fn calendar(property: Uuid, events: &[ExportEvent]) -> String {
    let mut cal = Calendar::new();
    cal.name("Draftr")
        .description(&format!("Booked and blocked nights of property {property}"));
    for e in events {
        cal.push(
            Event::new()
                .uid(&uid(e.id))
                .timestamp(e.stamp)
                .starts(e.from)
                .ends(e.to)
                .summary(e.kind.summary())
                .class(icalendar::Class::Private)
                .done(),
        );
    }
    cal.done().to_string()
}

/// The feed route, given to `subgraph_app` as an extra route.
pub fn routes(service: Arc<ReservationService>) -> axum::Router {
    axum::Router::new()
        .route("/calendar/{property}/{file}", get(feed))
        .with_state(service)
}

async fn feed(
    State(service): State<Arc<ReservationService>>,
    Path((property, file)): Path<(String, String)>,
) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "not found").into_response();
    let (Ok(property), Some(token)) = (Uuid::parse_str(&property), file.strip_suffix(".ics"))
    else {
        return not_found();
    };
    match service.ical_feed(property, token).await {
        Ok(Some(body)) => (
            [
                (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
                (header::CACHE_CONTROL, "private, no-store"),
                (header::REFERRER_POLICY, "no-referrer"),
            ],
            body,
        )
            .into_response(),
        Ok(None) => not_found(),
        Err(e) => {
            tracing::error!(error = %e, property.id = %property, "serving an iCal feed failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_feed_is_all_day_events_with_stable_uids_and_neutral_summaries() {
        let id = Uuid::now_v7();
        let text = calendar(
            Uuid::now_v7(),
            &[ExportEvent {
                id,
                from: "2027-03-01".parse().unwrap(),
                to: "2027-03-04".parse().unwrap(),
                kind: ExportKind::Booking,
                stamp: Utc::now(),
            }],
        );
        assert!(text.starts_with("BEGIN:VCALENDAR\r\n"), "{text}");
        assert!(text.contains("DTSTART;VALUE=DATE:20270301\r\n"), "{text}");
        assert!(text.contains("DTEND;VALUE=DATE:20270304\r\n"), "{text}");
        assert!(text.contains(&format!("UID:{id}@draftr\r\n")), "{text}");
        assert!(text.contains("SUMMARY:Reserved\r\n"), "{text}");
        assert!(text.contains("DTSTAMP:"), "{text}");
        // It reads back with the same events.
        let parsed = super::super::feed::parse(&text).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].uid, uid(id));
        assert_eq!(parsed[0].to, "2027-03-04".parse::<NaiveDate>().unwrap());
    }
}
