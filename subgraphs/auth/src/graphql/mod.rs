//! The auth subgraph's GraphQL API (API.md, "auth").

mod loaders;
mod mutation;
mod query;
mod types;

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{EmptySubscription, SDLExportOptions, Schema, SchemaBuilder};

pub use loaders::UserLoader;
pub use mutation::Mutation;
pub use query::Query;

use crate::service::AuthService;

pub type AuthSchema = Schema<Query, Mutation, EmptySubscription>;

fn builder() -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    draftr_common::graphql::harden(
        Schema::build(Query, Mutation, EmptySubscription).enable_federation(),
    )
}

/// The executable schema, wired to the service.
pub fn schema(service: Arc<AuthService>) -> AuthSchema {
    let loader = DataLoader::new(UserLoader::new(service.clone()), tokio::spawn);
    builder().data(service).data(loader).finish()
}

/// The subgraph SDL as the router composes it (`schema/auth.graphql`).
pub fn sdl() -> String {
    builder()
        .finish()
        .sdl_with_options(SDLExportOptions::new().federation().compose_directive())
}
