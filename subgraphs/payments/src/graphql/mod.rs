//! The payments subgraph's GraphQL API (`docs/api.md`, "payments").
//!
//! Public: `Payment` (to its payer, the property's host and admins), `Reservation.payment` (the
//! booking's own payment) and `Reservation.payments` (all of them: a change that raised the
//! total adds one).
//! Service only (`@inaccessible`, and refused without the service credential): the operations
//! reservations' booking saga drives.

mod loaders;
mod mutation;
mod query;
mod types;

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{EmptySubscription, SDLExportOptions, Schema, SchemaBuilder};
use draftr_common::config::LimitSettings;

pub use crate::domain::{PaymentPurpose, PaymentStatus};
pub use loaders::{PaymentByReservationLoader, PaymentLoader, PaymentsByReservationLoader};
pub use mutation::Mutation;
pub use query::Query;
pub use types::{Money, Payment, Reservation};

use crate::service::PaymentService;

pub type PaymentsSchema = Schema<Query, Mutation, EmptySubscription>;

fn builder(limits: &LimitSettings) -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    draftr_common::graphql::harden(
        Schema::build(Query, Mutation, EmptySubscription).enable_federation(),
        limits,
    )
}

/// The executable schema, wired to the service.
pub fn schema(service: Arc<PaymentService>, limits: &LimitSettings) -> PaymentsSchema {
    builder(limits)
        .data(DataLoader::new(
            PaymentLoader::new(service.clone()),
            tokio::spawn,
        ))
        .data(DataLoader::new(
            PaymentByReservationLoader::new(service.clone()),
            tokio::spawn,
        ))
        .data(DataLoader::new(
            PaymentsByReservationLoader::new(service.clone()),
            tokio::spawn,
        ))
        .data(service)
        .finish()
}

/// The subgraph SDL as the router composes it (`schema/payments.graphql`).
pub fn sdl() -> String {
    // The limits do not show in the SDL.
    builder(&LimitSettings::default())
        .finish()
        .sdl_with_options(SDLExportOptions::new().federation().compose_directive())
}
