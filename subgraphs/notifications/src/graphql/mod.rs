//! The notifications subgraph's GraphQL API (docs/api.md, "notifications"):
//! `User.notifications` and the subscriptions served over graphql-ws at `/ws`.

mod query;
mod subscription;
mod types;

use std::sync::Arc;

use async_graphql::{EmptyMutation, SDLExportOptions, Schema, SchemaBuilder};
use draftr_common::config::LimitSettings;

pub use draftr_common::graphql::{Date, Money};
pub use query::Query;
pub use subscription::Subscription;
pub use types::{
    BookingConfirmation, ChangedStay, Notification, NotificationConnection, Reservation,
    ReservationStatusEvent, User,
};

use crate::live::LiveHub;
use crate::service::NotificationService;

pub type NotificationsSchema = Schema<Query, EmptyMutation, Subscription>;

fn builder(limits: &LimitSettings) -> SchemaBuilder<Query, EmptyMutation, Subscription> {
    draftr_common::graphql::harden(
        Schema::build(Query, EmptyMutation, Subscription)
            .enable_federation()
            // The supergraph composes with its Subscription type (federated subscriptions).
            .enable_subscription_in_federation(),
        limits,
    )
}

/// The executable schema, wired to the service and to this replica's live updates.
pub fn schema(
    service: Arc<NotificationService>,
    hub: LiveHub,
    limits: &LimitSettings,
) -> NotificationsSchema {
    builder(limits).data(service).data(hub).finish()
}

/// The subgraph SDL as the router composes it (`schema/notifications.graphql`).
pub fn sdl() -> String {
    // The limits do not show in the SDL.
    builder(&LimitSettings::default())
        .finish()
        .sdl_with_options(SDLExportOptions::new().federation().compose_directive())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use async_graphql::Request;
    use draftr_common::events::reservation::{ReservationEvent, ReservationEventKind};
    use draftr_common::testing::reservation_event;
    use draftr_common::{Claims, Role, Viewer};
    use futures::{Stream, StreamExt};
    use serde_json::json;
    use uuid::Uuid;

    use crate::live::LiveHub;

    /// `_entities` completes a reference for any UUID (the owning subgraph decides whether it
    /// exists) and answers null for an id that cannot name one.
    #[tokio::test]
    async fn entities_resolve_uuids_and_null_for_anything_else() {
        let id = "0193a5c2-7d1e-7000-8000-000000000042";
        let query = format!(
            r#"{{ _entities(representations: [
                {{ __typename: "User", id: "not-a-uuid" }},
                {{ __typename: "User", id: "{id}" }},
                {{ __typename: "Reservation", id: "" }},
                {{ __typename: "Reservation", id: "{id}" }}
            ]) {{ ... on User {{ id }} ... on Reservation {{ id }} }} }}"#
        );
        let response = super::builder(&Default::default())
            .finish()
            .execute(query)
            .await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        assert_eq!(
            response.data.into_json().unwrap(),
            json!({ "_entities": [null, { "id": id }, null, { "id": id }] })
        );
    }

    fn as_user(sub: Uuid) -> Viewer {
        Viewer::User(Claims {
            sub,
            sid: Uuid::nil(),
            role: Role::Guest,
            iss: String::new(),
            aud: String::new(),
            iat: 0,
            exp: 0,
            jti: Uuid::nil(),
        })
    }

    /// The next pushed payload, or `None` if nothing comes within 200 ms.
    async fn next(
        stream: &mut (impl Stream<Item = async_graphql::Response> + Unpin),
    ) -> Option<serde_json::Value> {
        let response = tokio::time::timeout(Duration::from_millis(200), stream.next())
            .await
            .ok()??;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        Some(response.data.into_json().unwrap())
    }

    /// A change of dates or guests reaches the reservation's `reservationStatusChanged`
    /// subscribers (its guest and host) with the new dates and what changed, and does not
    /// fire `bookingConfirmed`; other events carry `change: null`.
    #[tokio::test]
    async fn a_change_is_pushed_as_a_status_event_and_not_as_a_confirmation() {
        let hub = LiveHub::local();
        let schema = super::builder(&Default::default())
            .data(hub.clone())
            .finish();
        let changed = reservation_event(ReservationEventKind::Changed);
        let confirmed = ReservationEvent {
            reservation_id: changed.reservation_id,
            guest_id: changed.guest_id,
            host_id: changed.host_id,
            ..reservation_event(ReservationEventKind::Confirmed)
        };
        let status = |viewer| {
            Request::new(format!(
                r#"subscription {{ reservationStatusChanged(reservationId: "{}") {{
                    reservationId status checkIn checkOut
                    change {{ previousCheckIn previousCheckOut previousGuests guests total {{ amount currency }} }}
                }} }}"#,
                changed.reservation_id
            ))
            .data(viewer)
        };
        let mut guest_status = schema.execute_stream(status(as_user(changed.guest_id)));
        let mut host_status = schema.execute_stream(status(as_user(changed.host_id)));
        let mut confirmations = schema.execute_stream(
            Request::new("subscription { bookingConfirmed { reservationId checkIn } }")
                .data(as_user(changed.guest_id)),
        );
        // Start the three subscriptions (a stream subscribes when first polled).
        for stream in [&mut guest_status, &mut host_status, &mut confirmations] {
            assert_eq!(next(stream).await, None);
        }
        assert_eq!(hub.listeners(), 3);

        hub.publish(&changed).await.unwrap();
        hub.publish(&confirmed).await.unwrap();
        let change = json!({
            "reservationId": changed.reservation_id.to_string(),
            "status": "CONFIRMED",
            "checkIn": "2027-03-01",
            "checkOut": "2027-03-04",
            "change": {
                "previousCheckIn": "2027-02-28",
                "previousCheckOut": "2027-03-03",
                "previousGuests": 1,
                "guests": 2,
                "total": { "amount": 30_000, "currency": "EUR" }
            }
        });
        let confirmation = json!({
            "reservationId": changed.reservation_id.to_string(),
            "status": "CONFIRMED",
            "checkIn": "2027-03-01",
            "checkOut": "2027-03-04",
            "change": null
        });
        for stream in [&mut guest_status, &mut host_status] {
            assert_eq!(
                next(stream).await,
                Some(json!({ "reservationStatusChanged": change }))
            );
            assert_eq!(
                next(stream).await,
                Some(json!({ "reservationStatusChanged": confirmation }))
            );
        }
        assert_eq!(
            next(&mut confirmations).await,
            Some(json!({ "bookingConfirmed": {
                "reservationId": changed.reservation_id.to_string(),
                "checkIn": "2027-03-01"
            } })),
            "the confirmation, not the change before it"
        );
        assert_eq!(next(&mut confirmations).await, None);

        // Someone else's reservation: nothing.
        let mut stranger = schema.execute_stream(status(as_user(Uuid::now_v7())));
        assert_eq!(next(&mut stranger).await, None);
        hub.publish(&changed).await.unwrap();
        assert_eq!(next(&mut stranger).await, None);
    }
}
