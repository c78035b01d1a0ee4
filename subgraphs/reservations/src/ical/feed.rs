//! Reading an imported feed: its VEVENTs as night ranges, with `icalendar`'s parser.
//!
//! - An all-day event `[DTSTART, DTEND)` is those nights; without DTEND, one night.
//! - A timed event covers the nights from its start date to its end date (a stay from 15:00
//!   on the 1st to 11:00 on the 4th is the nights of the 1st to the 3rd); at least one night.
//!   Times are read as written (a TZID's offset is not applied): calendars of rentals
//!   are in the property's own zone.
//! - `STATUS:CANCELLED` events and events without a UID or a DTSTART are skipped; so is
//!   a second event with the same UID and RECURRENCE-ID. Recurrence rules are not expanded:
//!   a recurring event is its first occurrence (rental feeds do not use them).

use chrono::NaiveDate;
use icalendar::{Calendar, CalendarComponent, Component, DatePerhapsTime, EventStatus};

/// The most events one feed may hold.
pub const MAX_EVENTS: usize = 5_000;

/// The longest UID kept (the column's width).
pub const MAX_UID_CHARS: usize = 255;

/// One event of a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEvent {
    /// The UID, with `#<RECURRENCE-ID>` for an overridden occurrence.
    pub uid: String,
    pub from: NaiveDate,
    /// Exclusive.
    pub to: NaiveDate,
    pub summary: Option<String>,
}

/// Why a body is not a feed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("the feed is not an iCalendar (VCALENDAR) document")]
    NotCalendar,
    #[error("the feed could not be parsed: {0}")]
    Malformed(String),
    #[error("the feed has more than {MAX_EVENTS} events")]
    TooManyEvents,
}

/// The events of `text`.
pub fn parse(text: &str) -> Result<Vec<FeedEvent>, FeedError> {
    let body = text.trim_start_matches('\u{feff}').trim_start();
    if !body
        .get(..15)
        .is_some_and(|h| h.eq_ignore_ascii_case("BEGIN:VCALENDAR"))
    {
        return Err(FeedError::NotCalendar);
    }
    let calendar: Calendar = body
        .parse()
        .map_err(|e: String| FeedError::Malformed(e.chars().take(200).collect::<String>()))?;
    let mut out: Vec<FeedEvent> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for component in &calendar.components {
        let CalendarComponent::Event(event) = component else {
            continue;
        };
        if out.len() >= MAX_EVENTS {
            return Err(FeedError::TooManyEvents);
        }
        if event.get_status() == Some(EventStatus::Cancelled) {
            continue;
        }
        let Some(uid) = event.get_uid().map(str::trim).filter(|u| !u.is_empty()) else {
            continue;
        };
        let Some(start) = event.get_start() else {
            continue;
        };
        let uid = match event.get_recurrence_id() {
            Some(r) => format!("{uid}#{}", r.date_naive()),
            None => uid.to_owned(),
        };
        if uid.chars().count() > MAX_UID_CHARS || !seen.insert(uid.clone()) {
            continue;
        }
        let from = start.date_naive();
        let to = event
            .get_end()
            .as_ref()
            .map_or(from, DatePerhapsTime::date_naive);
        let to = if to <= from {
            from.succ_opt().unwrap_or(from)
        } else {
            to
        };
        if to <= from {
            continue;
        }
        let summary = event
            .get_summary()
            .map(|s| s.trim().chars().take(200).collect::<String>())
            .filter(|s| !s.is_empty());
        out.push(FeedEvent {
            uid,
            from,
            to,
            summary,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn events_become_night_ranges() {
        let text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//y//EN\r\n\
BEGIN:VEVENT\r\nUID:a@x\r\nDTSTAMP:20270101T000000Z\r\nDTSTART;VALUE=DATE:20270301\r\nDTEND;VALUE=DATE:20270304\r\nSUMMARY:Airbnb (Not available)\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:b@x\r\nDTSTAMP:20270101T000000Z\r\nDTSTART;VALUE=DATE:20270310\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:c@x\r\nDTSTAMP:20270101T000000Z\r\nDTSTART:20270320T150000Z\r\nDTEND:20270322T110000Z\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:d@x\r\nDTSTAMP:20270101T000000Z\r\nDTSTART;VALUE=DATE:20270401\r\nDTEND;VALUE=DATE:20270402\r\nSTATUS:CANCELLED\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nDTSTAMP:20270101T000000Z\r\nDTSTART;VALUE=DATE:20270501\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:a@x\r\nDTSTAMP:20270101T000000Z\r\nDTSTART;VALUE=DATE:20270601\r\nDTEND;VALUE=DATE:20270602\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";
        let events = parse(text).unwrap();
        assert_eq!(
            events,
            vec![
                FeedEvent {
                    uid: "a@x".into(),
                    from: d("2027-03-01"),
                    to: d("2027-03-04"),
                    summary: Some("Airbnb (Not available)".into()),
                },
                FeedEvent {
                    uid: "b@x".into(),
                    from: d("2027-03-10"),
                    to: d("2027-03-11"),
                    summary: None,
                },
                FeedEvent {
                    uid: "c@x".into(),
                    from: d("2027-03-20"),
                    to: d("2027-03-22"),
                    summary: None,
                },
            ]
        );
    }

    #[test]
    fn what_is_not_a_calendar_is_refused() {
        assert_eq!(parse("<html>hello</html>"), Err(FeedError::NotCalendar));
        assert_eq!(parse(""), Err(FeedError::NotCalendar));
        assert!(
            parse("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
                .unwrap()
                .is_empty()
        );
    }
}
