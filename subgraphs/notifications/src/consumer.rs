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
        // A `reservation.changed` without the stay before it is refused here (left pending,
        // the reason logged), before any row is stored or anyone is told.
        for email in emails_for(&reservation, &guest.name, &host.name)? {
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

#[cfg(test)]
mod tests {
    use draftr_common::events::reservation::{ReservationEventKind, StayChange};
    use draftr_common::service_client::CallPolicy;
    use draftr_common::testing::{Backend, TestDatabase, reservation_event};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

    use super::*;
    use crate::domain::NotificationKind;
    use crate::store::notifications;

    /// An auth stand-in that knows the guest (Gina) and the host (Hal).
    async fn auth() -> ServiceClient {
        let answer = json!({ "data": { "_entities": [
            { "id": Uuid::nil(), "email": "gina@example.test", "displayName": "Gina" },
            { "id": Uuid::nil(), "email": "hal@example.test", "displayName": "Hal" },
        ] } });
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move || {
                let answer = answer.clone();
                async move { axum::Json(answer) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        ServiceClient::new("auth", url, None, CallPolicy::default()).unwrap()
    }

    /// The stored emails of `event`: (kind, user, recipient, subject), in kind order.
    async fn stored(
        db: &sea_orm::DatabaseConnection,
        event: Uuid,
    ) -> Vec<(NotificationKind, Uuid, String, String)> {
        notifications::Entity::find()
            .filter(notifications::Column::EventId.eq(event))
            .order_by_asc(notifications::Column::Kind)
            .all(db)
            .await
            .unwrap()
            .into_iter()
            .map(|row| (row.kind().unwrap(), row.user_id, row.recipient, row.subject))
            .collect()
    }

    /// A change stores exactly one email to the guest and one to the host, however often it
    /// is delivered, and is pushed live each time; a change without the stay before it is
    /// refused with nothing stored or pushed; a confirmation still stores its two emails.
    async fn a_change_is_mailed_once_to_each_and_pushed(backend: Backend) {
        let test = TestDatabase::new(backend).await;
        let db = draftr_common::db::connect(&test.settings).await.unwrap();
        crate::app::migrate(&db).await.unwrap();
        let hub = LiveHub::local();
        let mut live = hub.subscribe();
        let consumer = Consumer::new(
            Arc::new(NotificationService::new(db.clone())),
            hub,
            auth().await,
        );

        let changed = ReservationEvent {
            change: Some(StayChange {
                charged: Some(draftr_common::events::reservation::Amount {
                    amount: 4_500,
                    currency: "EUR".into(),
                }),
                ..reservation_event(ReservationEventKind::Changed)
                    .change
                    .unwrap()
            }),
            ..reservation_event(ReservationEventKind::Changed)
        };
        let envelope = changed.to_event();
        for _ in 0..2 {
            consumer.handle(&envelope).await.unwrap();
        }
        let rows = stored(&db, envelope.id).await;
        assert_eq!(
            rows,
            [
                (
                    NotificationKind::BookingChanged,
                    changed.guest_id,
                    "gina@example.test".to_owned(),
                    "Your stay at Loft was changed".to_owned()
                ),
                (
                    NotificationKind::BookingChangedHost,
                    changed.host_id,
                    "hal@example.test".to_owned(),
                    "A booking for Loft was changed".to_owned()
                ),
            ],
            "one each, also when delivered twice"
        );
        let guest_body = notifications::Entity::find_by_id(crate::domain::notification_id(
            envelope.id,
            NotificationKind::BookingChanged,
            changed.guest_id,
        ))
        .one(&db)
        .await
        .unwrap()
        .unwrap()
        .body_text;
        assert!(
            guest_body.contains("We charged EUR 45.00 on top"),
            "{guest_body}"
        );
        for _ in 0..2 {
            assert_eq!(live.try_recv().unwrap(), changed, "pushed on each delivery");
        }

        let mut incomplete = reservation_event(ReservationEventKind::Changed);
        incomplete.change = None;
        let incomplete = incomplete.to_event();
        let err = consumer.handle(&incomplete).await.unwrap_err();
        assert!(err.to_string().contains("without `change`"), "{err}");
        assert!(stored(&db, incomplete.id).await.is_empty());
        assert!(live.try_recv().is_err(), "not pushed either");

        let confirmed = reservation_event(ReservationEventKind::Confirmed).to_event();
        consumer.handle(&confirmed).await.unwrap();
        let kinds: Vec<_> = stored(&db, confirmed.id)
            .await
            .into_iter()
            .map(|(kind, ..)| kind)
            .collect();
        assert_eq!(
            kinds,
            [
                NotificationKind::BookingConfirmed,
                NotificationKind::NewBooking
            ]
        );
    }

    draftr_common::test_on_both_backends!(a_change_is_mailed_once_to_each_and_pushed);
}
