//! The catalog subgraph's GraphQL API (`docs/api.md`, "catalog").

mod loaders;
mod mutation;
mod query;
mod types;

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{EmptySubscription, SDLExportOptions, Schema, SchemaBuilder};
use draftr_common::config::LimitSettings;

pub use loaders::PropertyLoader;
pub use mutation::Mutation;
pub use query::Query;

use crate::clients::AuthClient;
use crate::service::CatalogService;

pub type CatalogSchema = Schema<Query, Mutation, EmptySubscription>;

fn builder(limits: &LimitSettings) -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    draftr_common::graphql::harden(
        Schema::build(Query, Mutation, EmptySubscription).enable_federation(),
        limits,
    )
}

/// The executable schema, wired to the service.
pub fn schema(
    service: Arc<CatalogService>,
    auth: Arc<AuthClient>,
    limits: &LimitSettings,
) -> CatalogSchema {
    builder(limits)
        .data(auth)
        .data(DataLoader::new(
            PropertyLoader::new(service.clone()),
            tokio::spawn,
        ))
        .data(service)
        .finish()
}

/// The subgraph SDL as the router composes it (`schema/catalog.graphql`).
pub fn sdl() -> String {
    // The limits do not show in the SDL.
    builder(&LimitSettings::default())
        .finish()
        .sdl_with_options(SDLExportOptions::new().federation().compose_directive())
}
