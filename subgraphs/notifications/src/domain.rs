//! What notifications tells whom, independent of storage and transport: the kinds of email,
//! the states an email goes through, and the text of each email a reservation event calls for.

use chrono::NaiveDate;
use draftr_common::events::calendar_import::CalendarImportConflictEvent;
use draftr_common::events::reservation::{
    Amount, ReservationEvent, ReservationEventKind, StayChange,
};
use uuid::Uuid;

/// Which email a notification is (`Notification.kind`, the `kind` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationKind {
    /// To the guest: the booking is confirmed.
    BookingConfirmed,
    /// To the host: someone booked their property.
    NewBooking,
    /// To the guest: the booking is cancelled.
    BookingCancelled,
    /// To the host: the cancelled dates are free again.
    BookingCancelledHost,
    /// To the guest: what the cancellation refunded.
    RefundIssued,
    /// To the guest: the stay's dates or guests changed, and what was charged or refunded.
    BookingChanged,
    /// To the host: a booking of their property moved or changed its guest count.
    BookingChangedHost,
    /// To the host: events of an imported calendar overlap bookings and were not blocked.
    CalendarConflict,
}

impl NotificationKind {
    pub const ALL: [Self; 8] = [
        Self::BookingConfirmed,
        Self::NewBooking,
        Self::BookingCancelled,
        Self::BookingCancelledHost,
        Self::RefundIssued,
        Self::BookingChanged,
        Self::BookingChangedHost,
        Self::CalendarConflict,
    ];

    /// The name stored and shown by the API. It is also hashed into every row's id
    /// (`notification_id`), so renaming one would make redelivered events send again.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BookingConfirmed => "booking_confirmed",
            Self::NewBooking => "new_booking",
            Self::BookingCancelled => "booking_cancelled",
            Self::BookingCancelledHost => "booking_cancelled_host",
            Self::RefundIssued => "refund_issued",
            Self::BookingChanged => "booking_changed",
            Self::BookingChangedHost => "booking_changed_host",
            Self::CalendarConflict => "calendar_conflict",
        }
    }

    /// `None` for a name this build never writes.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Where an email is in its life (`Notification.status`, the `status` column). The mailer
/// moves it PENDING → SENDING → SENT, or through RETRYING back to SENDING, or to FAILED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmailStatus {
    /// Stored by the consumer, not tried yet.
    Pending,
    /// Claimed by a mailer sending it now; the only state in which it can be sent twice (if
    /// that mailer dies, the row goes back to RETRYING after `stale_sending_ms`).
    Sending,
    Sent,
    /// The last attempt failed; another is scheduled.
    Retrying,
    /// Gave up: the attempts are spent, or the server refused the recipient for good.
    Failed,
}

impl EmailStatus {
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Sending,
        Self::Sent,
        Self::Retrying,
        Self::Failed,
    ];

    /// The name stored and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Sending => "SENDING",
            Self::Sent => "SENT",
            Self::Retrying => "RETRYING",
            Self::Failed => "FAILED",
        }
    }

    /// `None` for a name this build never writes.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The id of the email `kind` to `user` for `event`: the same on every delivery of the event
/// (a name-based UUID, version 8, from SHA-256), which is what makes storing it idempotent.
pub fn notification_id(event: Uuid, kind: NotificationKind, user: Uuid) -> Uuid {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{event}/{}/{user}", kind.as_str()).as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// `EUR 1234.50` from minor units: the currency code, whole units without thousands
/// separators, and two decimals.
pub fn money(amount: &Amount) -> String {
    format!(
        "{} {}.{:02}",
        amount.currency,
        amount.amount / 100,
        (amount.amount % 100).abs()
    )
}

/// One email an event calls for, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub kind: NotificationKind,
    /// The user it goes to: the event's guest or host.
    pub to: Uuid,
    pub subject: String,
    /// The body, one paragraph per line.
    pub lines: Vec<String>,
}

impl Email {
    /// The plain-text part.
    pub fn text(&self) -> String {
        format!("{}\n\n— Draftr\n", self.lines.join("\n"))
    }

    /// The HTML part: the same paragraphs, escaped, since titles and names are user input.
    pub fn html(&self) -> String {
        let body: String = self
            .lines
            .iter()
            .map(|l| format!("<p>{}</p>", escape(l)))
            .collect();
        format!(
            "<!doctype html><html><body style=\"font-family:sans-serif\">{body}<p>— Draftr</p></body></html>"
        )
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An event the contract reads but that lacks what its kind needs: a `reservation.changed`
/// without `change` (the stay before it). Refused, so the event stays pending with this
/// reason logged, rather than mailed without the old dates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "event {event} is a reservation.changed without `change`: the stay before the change is unknown"
)]
pub struct MissingChange {
    pub event: Uuid,
}

/// `2027-03-01 to 2027-03-03 (2 nights)`.
fn stay_dates(check_in: NaiveDate, check_out: NaiveDate, nights: i32) -> String {
    format!(
        "{check_in} to {check_out} ({nights} night{})",
        if nights == 1 { "" } else { "s" }
    )
}

/// The emails `event` calls for, addressed by the guest's and the host's display names: a
/// confirmation tells both, a cancellation tells both and the guest of any refund, a change
/// of dates or guests tells both (the guest also what was charged on top or refunded, in the
/// same email), a failed booking calls for none (its subscribers still hear of it live).
pub fn emails_for(
    event: &ReservationEvent,
    guest_name: &str,
    host_name: &str,
) -> Result<Vec<Email>, MissingChange> {
    let title = &event.property_title;
    let reference = format!(
        "Reservation reference: {} ({})",
        event.reservation_id.to_string()[..8].to_uppercase(),
        event.reservation_id
    );
    let stay = vec![
        format!("Property: {title}"),
        format!(
            "Dates: {}",
            stay_dates(event.check_in, event.check_out, event.nights)
        ),
        format!("Total: {}", money(&event.total)),
        reference.clone(),
    ];
    let email = |kind, to, subject: String, opening: [String; 2]| Email {
        kind,
        to,
        subject,
        lines: [opening.to_vec(), stay.clone()].concat(),
    };
    let hello_guest = format!("Hello {guest_name},");
    let hello_host = format!("Hello {host_name},");
    Ok(match event.kind {
        ReservationEventKind::Confirmed => vec![
            email(
                NotificationKind::BookingConfirmed,
                event.guest_id,
                format!("Your stay at {title} is confirmed"),
                [hello_guest, "your booking is confirmed.".into()],
            ),
            email(
                NotificationKind::NewBooking,
                event.host_id,
                format!("New booking for {title}"),
                [hello_host, format!("{guest_name} booked your property.")],
            ),
        ],
        ReservationEventKind::Cancelled => {
            let mut out = vec![
                email(
                    NotificationKind::BookingCancelled,
                    event.guest_id,
                    format!("Your stay at {title} is cancelled"),
                    [hello_guest.clone(), "your booking is cancelled.".into()],
                ),
                email(
                    NotificationKind::BookingCancelledHost,
                    event.host_id,
                    format!("A booking for {title} was cancelled"),
                    [hello_host, "these dates are free again.".into()],
                ),
            ];
            if let Some(refund) = event.refund.as_ref().filter(|r| r.amount > 0) {
                out.push(email(
                    NotificationKind::RefundIssued,
                    event.guest_id,
                    format!("Your refund of {}", money(refund)),
                    [
                        hello_guest,
                        format!("we refunded {} to your payment method.", money(refund)),
                    ],
                ));
            }
            out
        }
        ReservationEventKind::Changed => {
            let change = event.change.as_ref().ok_or(MissingChange {
                event: event.event_id,
            })?;
            changed_emails(
                event,
                change,
                [hello_guest, hello_host],
                guest_name,
                reference,
            )
        }
        ReservationEventKind::Failed => Vec::new(),
    })
}

/// A change's two emails: the guest's (old → new dates and guests, the new total and what
/// it was, and the money that moved) and the host's (the same stay lines with the new total
/// only: what the guest was charged or refunded is between the guest and Draftr).
fn changed_emails(
    event: &ReservationEvent,
    change: &StayChange,
    [hello_guest, hello_host]: [String; 2],
    guest_name: &str,
    reference: String,
) -> Vec<Email> {
    let title = &event.property_title;
    let now = stay_dates(event.check_in, event.check_out, event.nights);
    let dates = if (change.previous_check_in, change.previous_check_out)
        == (event.check_in, event.check_out)
    {
        format!("Dates: {now}, unchanged")
    } else {
        format!(
            "Dates: {} to {} → {now}",
            change.previous_check_in, change.previous_check_out
        )
    };
    let guests = if change.previous_guests == change.guests {
        format!("Guests: {}, unchanged", change.guests)
    } else {
        format!("Guests: {} → {}", change.previous_guests, change.guests)
    };
    let property = format!("Property: {title}");
    let total = format!("Total: {}", money(&event.total));
    let positive = |a: &Option<Amount>| a.clone().filter(|a| a.amount > 0);
    let mut moved = Vec::new();
    if let Some(charged) = positive(&change.charged) {
        moved.push(format!(
            "We charged {} on top of what you paid to your payment method.",
            money(&charged)
        ));
    }
    if let Some(refund) = positive(&event.refund) {
        moved.push(format!(
            "We refunded {} to your payment method.",
            money(&refund)
        ));
    }
    if moved.is_empty() {
        moved.push("Nothing was charged or refunded.".to_owned());
    }
    let guest_lines = [
        vec![
            hello_guest,
            "your booking was changed.".to_owned(),
            property.clone(),
            dates.clone(),
            guests.clone(),
            format!("{total} (was {})", money(&change.previous_total)),
        ],
        moved,
        vec![reference.clone()],
    ]
    .concat();
    vec![
        Email {
            kind: NotificationKind::BookingChanged,
            to: event.guest_id,
            subject: format!("Your stay at {title} was changed"),
            lines: guest_lines,
        },
        Email {
            kind: NotificationKind::BookingChangedHost,
            to: event.host_id,
            subject: format!("A booking for {title} was changed"),
            lines: vec![
                hello_host,
                format!("{guest_name} changed their booking."),
                property,
                dates,
                guests,
                total,
                reference,
            ],
        },
    ]
}

/// The email telling the host that a sync of an imported calendar found events on booked
/// nights (only the ones not reported before), which were not blocked.
pub fn conflict_email(event: &CalendarImportConflictEvent, host_name: &str) -> Email {
    let feed = event.import_name.as_deref().map_or_else(
        || "an imported calendar".to_owned(),
        |n| format!("the imported calendar \"{n}\""),
    );
    let mut lines = vec![
        format!("Hello {host_name},"),
        format!(
            "{} has events on nights that are already booked on Draftr, so those nights were not blocked. The bookings are unchanged; please check the other calendar.",
            capitalize(&feed)
        ),
    ];
    lines.extend(
        event
            .conflicts
            .iter()
            .map(|c| format!("Nights: {} to {}", c.from, c.to)),
    );
    lines.push(format!("Property: {}", event.property_id));
    Email {
        kind: NotificationKind::CalendarConflict,
        to: event.host_id,
        subject: "An imported calendar overlaps your bookings".to_owned(),
        lines,
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use draftr_common::events::reservation::ReservationState;

    use super::*;

    fn eur(amount: i64) -> Amount {
        Amount {
            amount,
            currency: "EUR".into(),
        }
    }

    fn event(kind: ReservationEventKind, refund: Option<i64>) -> ReservationEvent {
        ReservationEvent {
            event_id: Uuid::from_u128(1),
            occurred_at: Utc.with_ymd_and_hms(2027, 2, 1, 9, 0, 0).unwrap(),
            reservation_id: Uuid::parse_str("0193a5c2-7d1e-7000-8000-000000000042").unwrap(),
            property_id: Uuid::from_u128(2),
            property_title: "Harbour <flat> & co".into(),
            guest_id: Uuid::from_u128(3),
            host_id: Uuid::from_u128(4),
            check_in: "2027-03-01".parse().unwrap(),
            check_out: "2027-03-03".parse().unwrap(),
            nights: 2,
            total: eur(20_000),
            refund: refund.map(eur),
            status: ReservationState::Confirmed,
            failure_code: None,
            ..draftr_common::testing::reservation_event(kind)
        }
    }

    fn kinds_and_recipients(emails: &[Email]) -> Vec<(NotificationKind, Uuid)> {
        emails.iter().map(|e| (e.kind, e.to)).collect()
    }

    #[test]
    fn a_confirmation_tells_the_guest_and_the_host_what_was_booked() {
        let e = event(ReservationEventKind::Confirmed, None);
        let emails = emails_for(&e, "Gina", "Hal").unwrap();
        assert_eq!(
            kinds_and_recipients(&emails),
            [
                (NotificationKind::BookingConfirmed, e.guest_id),
                (NotificationKind::NewBooking, e.host_id)
            ]
        );
        let [guest, host] = &emails[..] else {
            unreachable!()
        };
        assert_eq!(
            guest.subject,
            "Your stay at Harbour <flat> & co is confirmed"
        );
        assert_eq!(
            guest.lines,
            [
                "Hello Gina,",
                "your booking is confirmed.",
                "Property: Harbour <flat> & co",
                "Dates: 2027-03-01 to 2027-03-03 (2 nights)",
                "Total: EUR 200.00",
                "Reservation reference: 0193A5C2 (0193a5c2-7d1e-7000-8000-000000000042)",
            ]
        );
        assert_eq!(host.subject, "New booking for Harbour <flat> & co");
        assert_eq!(
            host.lines[..2],
            ["Hello Hal,", "Gina booked your property."]
        );
        assert_eq!(host.lines[2..], guest.lines[2..]);
    }

    #[test]
    fn one_night_is_not_plural() {
        let mut e = event(ReservationEventKind::Confirmed, None);
        e.nights = 1;
        assert!(
            emails_for(&e, "G", "H").unwrap()[0]
                .lines
                .contains(&"Dates: 2027-03-01 to 2027-03-03 (1 night)".to_owned())
        );
    }

    #[test]
    fn a_cancellation_tells_both_and_the_guest_of_a_refund() {
        let e = event(ReservationEventKind::Cancelled, Some(15_000));
        let emails = emails_for(&e, "Gina", "Hal").unwrap();
        assert_eq!(
            kinds_and_recipients(&emails),
            [
                (NotificationKind::BookingCancelled, e.guest_id),
                (NotificationKind::BookingCancelledHost, e.host_id),
                (NotificationKind::RefundIssued, e.guest_id),
            ]
        );
        assert_eq!(
            emails[0].subject,
            "Your stay at Harbour <flat> & co is cancelled"
        );
        assert_eq!(emails[0].lines[1], "your booking is cancelled.");
        assert_eq!(
            emails[1].subject,
            "A booking for Harbour <flat> & co was cancelled"
        );
        assert_eq!(
            emails[1].lines[..2],
            ["Hello Hal,", "these dates are free again."]
        );
        assert_eq!(emails[2].subject, "Your refund of EUR 150.00");
        assert_eq!(
            emails[2].lines[..2],
            [
                "Hello Gina,",
                "we refunded EUR 150.00 to your payment method."
            ]
        );
        assert_eq!(emails[2].lines[4], "Total: EUR 200.00");
    }

    #[test]
    fn no_refund_email_without_a_refund() {
        for refund in [None, Some(0)] {
            let emails =
                emails_for(&event(ReservationEventKind::Cancelled, refund), "G", "H").unwrap();
            assert_eq!(
                emails.iter().map(|e| e.kind).collect::<Vec<_>>(),
                [
                    NotificationKind::BookingCancelled,
                    NotificationKind::BookingCancelledHost
                ],
                "refund {refund:?}"
            );
        }
    }

    #[test]
    fn a_failed_booking_sends_no_email() {
        assert!(
            emails_for(&event(ReservationEventKind::Failed, None), "G", "H")
                .unwrap()
                .is_empty()
        );
    }

    /// A change of `event`'s stay (2027-03-01 to 2027-03-03, EUR 200.00 now) from `previous`
    /// dates, guests and total, with what was `charged` on top and `refund`ed.
    fn change(
        previous: (&str, &str),
        guests: (i32, i32),
        previous_total: i64,
        charged: Option<i64>,
        refund: Option<i64>,
    ) -> ReservationEvent {
        ReservationEvent {
            change: Some(StayChange {
                change_id: Uuid::from_u128(9),
                previous_check_in: previous.0.parse().unwrap(),
                previous_check_out: previous.1.parse().unwrap(),
                previous_guests: guests.0,
                guests: guests.1,
                previous_total: eur(previous_total),
                charged: charged.map(eur),
            }),
            ..event(ReservationEventKind::Changed, refund)
        }
    }

    #[test]
    fn a_change_tells_the_guest_what_moved_and_what_was_charged() {
        let e = change(
            ("2027-02-26", "2027-02-27"),
            (1, 3),
            10_000,
            Some(10_000),
            None,
        );
        let emails = emails_for(&e, "Gina", "Hal").unwrap();
        assert_eq!(
            kinds_and_recipients(&emails),
            [
                (NotificationKind::BookingChanged, e.guest_id),
                (NotificationKind::BookingChangedHost, e.host_id)
            ],
            "one email each, and no separate refund email"
        );
        let [guest, host] = &emails[..] else {
            unreachable!()
        };
        assert_eq!(
            guest.subject,
            "Your stay at Harbour <flat> & co was changed"
        );
        assert_eq!(
            guest.lines,
            [
                "Hello Gina,",
                "your booking was changed.",
                "Property: Harbour <flat> & co",
                "Dates: 2027-02-26 to 2027-02-27 → 2027-03-01 to 2027-03-03 (2 nights)",
                "Guests: 1 → 3",
                "Total: EUR 200.00 (was EUR 100.00)",
                "We charged EUR 100.00 on top of what you paid to your payment method.",
                "Reservation reference: 0193A5C2 (0193a5c2-7d1e-7000-8000-000000000042)",
            ]
        );
        assert_eq!(
            host.subject,
            "A booking for Harbour <flat> & co was changed"
        );
        assert_eq!(
            host.lines,
            [
                "Hello Hal,",
                "Gina changed their booking.",
                "Property: Harbour <flat> & co",
                "Dates: 2027-02-26 to 2027-02-27 → 2027-03-01 to 2027-03-03 (2 nights)",
                "Guests: 1 → 3",
                "Total: EUR 200.00",
                "Reservation reference: 0193A5C2 (0193a5c2-7d1e-7000-8000-000000000042)",
            ]
        );
        assert!(
            !host.text().contains("100.00"),
            "the host is not told what the guest paid before or on top"
        );
    }

    #[test]
    fn a_change_that_lowered_the_total_tells_the_guest_of_the_refund() {
        let e = change(
            ("2027-03-01", "2027-03-05"),
            (2, 2),
            40_000,
            None,
            Some(15_050),
        );
        let emails = emails_for(&e, "Gina", "Hal").unwrap();
        let [guest, host] = &emails[..] else {
            panic!("{emails:?}")
        };
        assert_eq!(
            guest.lines[3..7],
            [
                "Dates: 2027-03-01 to 2027-03-05 → 2027-03-01 to 2027-03-03 (2 nights)",
                "Guests: 2, unchanged",
                "Total: EUR 200.00 (was EUR 400.00)",
                "We refunded EUR 150.50 to your payment method.",
            ]
        );
        assert_eq!(
            host.lines[4..6],
            ["Guests: 2, unchanged", "Total: EUR 200.00"]
        );
        assert!(!host.text().contains("150.50") && !host.text().contains("400.00"));
    }

    #[test]
    fn a_change_with_nothing_to_pay_says_so() {
        for (charged, refund) in [(None, None), (Some(0), Some(0)), (Some(0), None)] {
            let e = change(
                ("2027-03-01", "2027-03-03"),
                (1, 2),
                20_000,
                charged,
                refund,
            );
            let emails = emails_for(&e, "Gina", "Hal").unwrap();
            assert_eq!(emails.len(), 2, "{charged:?} {refund:?}");
            assert_eq!(
                emails[0].lines[3..7],
                [
                    "Dates: 2027-03-01 to 2027-03-03 (2 nights), unchanged",
                    "Guests: 1 → 2",
                    "Total: EUR 200.00 (was EUR 200.00)",
                    "Nothing was charged or refunded.",
                ],
                "{charged:?} {refund:?}"
            );
            assert_eq!(emails[1].lines[3], emails[0].lines[3]);
        }
    }

    #[test]
    fn a_change_without_the_stay_before_it_is_refused() {
        let e = ReservationEvent {
            change: None,
            ..event(ReservationEventKind::Changed, None)
        };
        assert_eq!(
            emails_for(&e, "G", "H").unwrap_err(),
            MissingChange { event: e.event_id }
        );
        // Every other kind carries no change and needs none.
        for kind in [
            ReservationEventKind::Confirmed,
            ReservationEventKind::Cancelled,
        ] {
            assert!(!emails_for(&event(kind, None), "G", "H").unwrap().is_empty());
        }
    }

    #[test]
    fn money_has_two_decimals_and_no_thousands_separator() {
        assert_eq!(money(&eur(123_450)), "EUR 1234.50");
        assert_eq!(money(&eur(20_000)), "EUR 200.00");
        assert_eq!(money(&eur(5)), "EUR 0.05");
        assert_eq!(money(&eur(0)), "EUR 0.00");
        assert_eq!(
            money(&Amount {
                amount: 1_999,
                currency: "CHF".into()
            }),
            "CHF 19.99"
        );
    }

    #[test]
    fn bodies_end_with_the_signature_and_html_is_escaped() {
        let email =
            &emails_for(&event(ReservationEventKind::Confirmed, None), "Gina", "H").unwrap()[0];
        let text = email.text();
        assert!(text.starts_with("Hello Gina,\nyour booking is confirmed.\nProperty: "));
        assert!(text.ends_with("(0193a5c2-7d1e-7000-8000-000000000042)\n\n— Draftr\n"));
        let html = email.html();
        assert!(
            html.contains("<p>Property: Harbour &lt;flat&gt; &amp; co</p>"),
            "{html}"
        );
        assert!(!html.contains("<flat>"));
        assert!(html.ends_with("<p>— Draftr</p></body></html>"));
    }

    #[test]
    fn a_conflict_email_tells_the_host_which_nights() {
        use draftr_common::events::calendar_import::{ConflictNights, ImportConflictKind};
        let event = CalendarImportConflictEvent {
            version: CalendarImportConflictEvent::VERSION,
            event_id: Uuid::from_u128(1),
            kind: ImportConflictKind::Conflict,
            occurred_at: Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap(),
            import_id: Uuid::from_u128(2),
            property_id: Uuid::from_u128(3),
            host_id: Uuid::from_u128(4),
            import_name: Some("Elsewhere".into()),
            conflicts: vec![ConflictNights {
                from: "2027-03-01".parse().unwrap(),
                to: "2027-03-04".parse().unwrap(),
            }],
        };
        let email = conflict_email(&event, "Hosta");
        assert_eq!(email.kind, NotificationKind::CalendarConflict);
        assert_eq!(email.to, event.host_id);
        let text = email.text();
        assert!(text.starts_with("Hello Hosta,\n"), "{text}");
        assert!(
            text.contains("The imported calendar \"Elsewhere\" has events"),
            "{text}"
        );
        assert!(text.contains("Nights: 2027-03-01 to 2027-03-04"), "{text}");
        let unnamed = conflict_email(
            &CalendarImportConflictEvent {
                import_name: None,
                ..event
            },
            "Hosta",
        );
        assert!(unnamed.text().contains("An imported calendar has events"));
    }

    #[test]
    fn stored_names_read_back_and_unknown_ones_are_refused() {
        for status in EmailStatus::ALL {
            assert_eq!(EmailStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(
            EmailStatus::ALL.map(EmailStatus::as_str),
            ["PENDING", "SENDING", "SENT", "RETRYING", "FAILED"]
        );
        for kind in NotificationKind::ALL {
            assert_eq!(NotificationKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(
            NotificationKind::ALL.map(NotificationKind::as_str),
            [
                "booking_confirmed",
                "new_booking",
                "booking_cancelled",
                "booking_cancelled_host",
                "refund_issued",
                "booking_changed",
                "booking_changed_host",
                "calendar_conflict"
            ]
        );
        for unknown in ["", "sent", "DELIVERED", "PENDING "] {
            assert_eq!(EmailStatus::parse(unknown), None, "{unknown:?}");
        }
        assert_eq!(NotificationKind::parse("BOOKING_CONFIRMED"), None);
        assert_eq!(NotificationKind::parse("booking_failed"), None);
    }

    #[test]
    fn notification_ids_are_stable_across_releases() {
        // Rows stored by an earlier release must be found again when an event is redelivered
        // after an upgrade; a change here would send those emails twice.
        let id = notification_id(
            Uuid::from_u128(1),
            NotificationKind::BookingConfirmed,
            Uuid::from_u128(3),
        );
        assert_eq!(id.to_string(), "378a175c-8447-8f19-bc79-bc592f42c780");
        for (kind, pinned) in [
            (
                NotificationKind::BookingChanged,
                "eb0e365d-f323-8d41-9f17-46b484836f14",
            ),
            (
                NotificationKind::BookingChangedHost,
                "502cc66f-27f8-823b-93fe-d946abf871cb",
            ),
        ] {
            let id = notification_id(Uuid::from_u128(1), kind, Uuid::from_u128(3));
            assert_eq!(id.to_string(), pinned, "{kind:?}");
        }
        assert_ne!(
            id,
            notification_id(
                Uuid::from_u128(1),
                NotificationKind::NewBooking,
                Uuid::from_u128(3)
            )
        );
    }
}
