//! Reservation events → the emails they call for, and live updates; calendar-import conflict
//! events → the host's email about them.
//!
//! Runs as consumer group `notifications`: at least once, so everything here is idempotent.
//! Emails are stored as rows whose id is derived from (event, kind, user): a redelivered event
//! inserts nothing new. An event is acknowledged only once its rows are stored and its live
//! update published; the mailer sends the rows on its own schedule, so SMTP being down never
//! holds up the stream.
//!
//! Events are read through the shared contract ([`ReservationEvent`]): one that does not match
//! it is left pending (the consume loop logs why) rather than mailed with guessed values.

use std::future::Future;
use std::sync::Arc;

use chrono::Utc;
use draftr_common::events::calendar_import::CalendarImportConflictEvent;
use draftr_common::events::reservation::{ReservationEvent, TOPIC};
use draftr_common::events::{Event, EventBus};
use draftr_common::service_client::ServiceClient;
use serde_json::json;
use uuid::Uuid;

use crate::domain::{conflict_email, emails_for};
use crate::live::LiveHub;
use crate::service::NotificationService;

pub const GROUP: &str = "notifications";

pub struct Consumer {
    service: Arc<NotificationService>,
    hub: LiveHub,
    auth: ServiceClient,
}

/// A recipient as auth knows them.
struct Person {
    email: String,
    name: String,
}

impl Consumer {
    pub fn new(service: Arc<NotificationService>, hub: LiveHub, auth: ServiceClient) -> Self {
        Self { service, hub, auth }
    }

    /// The guest's and the host's addresses and names, in one call to auth.
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

    /// Stores the event's emails and publishes its live update. An event of a kind this build
    /// does not define is someone else's news: acknowledged with nothing done.
    pub async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        if let Some(conflict) = CalendarImportConflictEvent::from_event(event)? {
            return self.handle_conflict(event, &conflict).await;
        }
        let Some(reservation) = ReservationEvent::from_event(event)? else {
            tracing::debug!(event.id = %event.id, event.kind = %event.kind, "event kind not for notifications; skipped");
            return Ok(());
        };
        let request_id = format!("event-{}", event.id);
        let [guest, host] = self
            .people([reservation.guest_id, reservation.host_id], &request_id)
            .await?;
        let now = Utc::now();
        for email in emails_for(&reservation, &guest.name, &host.name) {
            let to = if email.to == reservation.guest_id {
                &guest
            } else {
                &host
            };
            self.service
                .store_email(event.id, &email, &to.email, now)
                .await?;
        }
        self.hub.publish(&reservation).await?;
        Ok(())
    }
}

impl Consumer {
    /// Stores the host's email about an imported calendar's conflicts (once per event, like
    /// every email).
    async fn handle_conflict(
        &self,
        event: &Event,
        conflict: &CalendarImportConflictEvent,
    ) -> anyhow::Result<()> {
        let request_id = format!("event-{}", event.id);
        let [host, _] = self
            .people([conflict.host_id, conflict.host_id], &request_id)
            .await?;
        let email = conflict_email(conflict, &host.name);
        self.service
            .store_email(event.id, &email, &host.email, Utc::now())
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
