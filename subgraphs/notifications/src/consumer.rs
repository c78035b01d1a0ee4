//! Reservation events → the emails they call for, and live updates.
//!
//! Runs as consumer group `notifications`: at least once, so everything here is idempotent.
//! Emails are stored as rows whose id is derived from (event, kind, user): a redelivered event
//! inserts nothing new. An event is acknowledged only once its rows are stored and its live
//! update published; the mailer sends the rows on its own schedule, so SMTP being down never
//! holds up the stream.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use draftr_common::events::{Event, EventBus};
use draftr_common::service_client::ServiceClient;
use sea_orm::{ActiveModelTrait, DatabaseConnection, Set};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::live::{LiveHub, LiveUpdate};
use crate::mailer::status;
use crate::store::notifications;

pub const TOPIC: &str = "reservations";
pub const GROUP: &str = "notifications";

pub struct Consumer {
    db: DatabaseConnection,
    hub: LiveHub,
    auth: ServiceClient,
}

/// A recipient as auth knows them.
struct Person {
    email: String,
    name: String,
}

/// What a reservation event says (see reservations' outbox payload).
struct Booking {
    reservation_id: Uuid,
    guest_id: Uuid,
    host_id: Uuid,
    title: String,
    check_in: String,
    check_out: String,
    nights: i64,
    total: i64,
    currency: String,
    refund: Option<i64>,
    status: String,
}

fn parse(p: &Value) -> anyhow::Result<Booking> {
    let uuid = |k: &str| -> anyhow::Result<Uuid> {
        p[k].as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| anyhow::anyhow!("event without {k}"))
    };
    Ok(Booking {
        reservation_id: uuid("reservationId")?,
        guest_id: uuid("guestId")?,
        host_id: uuid("hostId")?,
        title: p["propertyTitle"]
            .as_str()
            .unwrap_or("your stay")
            .to_owned(),
        check_in: p["checkIn"].as_str().unwrap_or_default().to_owned(),
        check_out: p["checkOut"].as_str().unwrap_or_default().to_owned(),
        nights: p["nights"].as_i64().unwrap_or_default(),
        total: p["total"]["amount"].as_i64().unwrap_or_default(),
        currency: p["total"]["currency"].as_str().unwrap_or("EUR").to_owned(),
        refund: p["refund"]["amount"].as_i64(),
        status: p["status"].as_str().unwrap_or_default().to_owned(),
    })
}

/// The id of the email `kind` to `user` for `event`: the same on every delivery of the event
/// (a name-based UUID, version 8, from SHA-256).
pub fn notification_id(event: Uuid, kind: &str, user: Uuid) -> Uuid {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{event}/{kind}/{user}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// `EUR 1,234.50` from minor units.
pub fn money(amount: i64, currency: &str) -> String {
    format!("{currency} {}.{:02}", amount / 100, (amount % 100).abs())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One email to store: (kind, who, subject, text lines).
struct Email {
    kind: &'static str,
    to: Uuid,
    subject: String,
    lines: Vec<String>,
}

fn emails_for(kind: &str, b: &Booking, guest: &Person, host: &Person) -> Vec<Email> {
    let reference = b.reservation_id.to_string()[..8].to_uppercase();
    let stay = vec![
        format!("Property: {}", b.title),
        format!(
            "Dates: {} to {} ({} night{})",
            b.check_in,
            b.check_out,
            b.nights,
            if b.nights == 1 { "" } else { "s" }
        ),
        format!("Total: {}", money(b.total, &b.currency)),
        format!("Reservation reference: {reference} ({})", b.reservation_id),
    ];
    match kind {
        "reservation.confirmed" => vec![
            Email {
                kind: "booking_confirmed",
                to: b.guest_id,
                subject: format!("Your stay at {} is confirmed", b.title),
                lines: [
                    vec![
                        format!("Hello {},", guest.name),
                        "your booking is confirmed.".into(),
                    ],
                    stay.clone(),
                ]
                .concat(),
            },
            Email {
                kind: "new_booking",
                to: b.host_id,
                subject: format!("New booking for {}", b.title),
                lines: [
                    vec![
                        format!("Hello {},", host.name),
                        format!("{} booked your property.", guest.name),
                    ],
                    stay,
                ]
                .concat(),
            },
        ],
        "reservation.cancelled" => {
            let refund = b.refund.unwrap_or(0);
            let mut out = vec![
                Email {
                    kind: "booking_cancelled",
                    to: b.guest_id,
                    subject: format!("Your stay at {} is cancelled", b.title),
                    lines: [
                        vec![
                            format!("Hello {},", guest.name),
                            "your booking is cancelled.".into(),
                        ],
                        stay.clone(),
                    ]
                    .concat(),
                },
                Email {
                    kind: "booking_cancelled_host",
                    to: b.host_id,
                    subject: format!("A booking for {} was cancelled", b.title),
                    lines: [
                        vec![
                            format!("Hello {},", host.name),
                            "these dates are free again.".into(),
                        ],
                        stay.clone(),
                    ]
                    .concat(),
                },
            ];
            if refund > 0 {
                out.push(Email {
                    kind: "refund_issued",
                    to: b.guest_id,
                    subject: format!("Your refund of {}", money(refund, &b.currency)),
                    lines: [
                        vec![
                            format!("Hello {},", guest.name),
                            format!(
                                "we refunded {} to your payment method.",
                                money(refund, &b.currency)
                            ),
                        ],
                        stay,
                    ]
                    .concat(),
                });
            }
            out
        }
        _ => Vec::new(),
    }
}

fn html(lines: &[String]) -> String {
    let body: String = lines
        .iter()
        .map(|l| format!("<p>{}</p>", escape(l)))
        .collect();
    format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\">{body}<p>— Draftr</p></body></html>"
    )
}

impl Consumer {
    pub fn new(db: DatabaseConnection, hub: LiveHub, auth: ServiceClient) -> Self {
        Self { db, hub, auth }
    }

    async fn people(&self, ids: [Uuid; 2], request_id: &str) -> anyhow::Result<[Person; 2]> {
        let data = self
            .auth
            .call(
                "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { id email displayName } } }",
                json!({ "r": ids.iter().map(|id| json!({ "__typename": "User", "id": id })).collect::<Vec<_>>() }),
                request_id,
            )
            .await?;
        let person = |i: usize| -> anyhow::Result<Person> {
            let u = &data["_entities"][i];
            Ok(Person {
                email: u["email"]
                    .as_str()
                    .ok_or_else(|| anyhow::anyhow!("auth has no email for {}", ids[i]))?
                    .to_owned(),
                name: u["displayName"].as_str().unwrap_or("there").to_owned(),
            })
        };
        Ok([person(0)?, person(1)?])
    }

    /// Stores the event's emails and publishes its live update.
    pub async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        let b = parse(&event.payload)?;
        let request_id = format!("event-{}", event.id);
        let [guest, host] = self.people([b.guest_id, b.host_id], &request_id).await?;
        let now = Utc::now();
        for email in emails_for(&event.kind, &b, &guest, &host) {
            let to = if email.to == b.guest_id {
                &guest
            } else {
                &host
            };
            let id = notification_id(event.id, email.kind, email.to);
            let row = notifications::ActiveModel {
                id: Set(id),
                event_id: Set(event.id),
                user_id: Set(email.to),
                kind: Set(email.kind.to_owned()),
                recipient: Set(to.email.clone()),
                subject: Set(email.subject.chars().take(200).collect()),
                body_text: Set(format!("{}\n\n— Draftr\n", email.lines.join("\n"))),
                body_html: Set(html(&email.lines)),
                status: Set(status::PENDING.to_owned()),
                attempts: Set(0),
                last_error: Set(None),
                next_attempt_at: Set(now),
                created_at: Set(now),
                sent_at: Set(None),
            };
            match row.insert(&self.db).await {
                Ok(_) => {}
                // Stored by an earlier delivery of this event.
                Err(e) if draftr_common::db::is_unique_violation(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let occurred_at: DateTime<Utc> = event.occurred_at;
        self.hub
            .publish(&LiveUpdate {
                event_id: event.id,
                kind: event.kind.clone(),
                reservation_id: b.reservation_id,
                guest_id: b.guest_id,
                host_id: b.host_id,
                status: b.status,
                property_title: b.title,
                check_in: b.check_in,
                check_out: b.check_out,
                total_amount: b.total,
                currency: b.currency,
                occurred_at,
            })
            .await?;
        Ok(())
    }
}

/// Consumes until `stop`: ack after `handle` succeeded, nack (redelivery) otherwise.
pub async fn run(consumer: Arc<Consumer>, bus: Arc<dyn EventBus>, stop: impl Future<Output = ()>) {
    draftr_common::events::consume(bus, TOPIC, GROUP, stop, |event| {
        let consumer = consumer.clone();
        async move { consumer.handle(&event).await }
    })
    .await
}
