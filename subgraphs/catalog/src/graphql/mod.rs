//! The catalog subgraph's GraphQL API (`docs/api.md`, "catalog").

mod loaders;
mod mutation;
mod query;
mod types;

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{EmptySubscription, SDLExportOptions, Schema, SchemaBuilder};

pub use loaders::PropertyLoader;
pub use mutation::Mutation;
pub use query::Query;

use crate::clients::AuthClient;
use crate::service::CatalogService;

pub type CatalogSchema = Schema<Query, Mutation, EmptySubscription>;

fn builder() -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    draftr_common::graphql::harden(
        Schema::build(Query, Mutation, EmptySubscription).enable_federation(),
    )
}

/// The executable schema, wired to the service.
pub fn schema(service: Arc<CatalogService>, auth: Arc<AuthClient>) -> CatalogSchema {
    builder()
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
    builder()
        .finish()
        .sdl_with_options(SDLExportOptions::new().federation().compose_directive())
}
