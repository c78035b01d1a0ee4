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
    BookingConfirmation, Notification, NotificationConnection, Reservation, ReservationStatusEvent,
    User,
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
    use serde_json::json;

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
}
