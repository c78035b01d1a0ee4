//! The catalog subgraph: the properties people browse, their categories, and search.
//!
//! It owns properties, categories and amenities; hosts are `User` entity keys from auth,
//! resolved by the router, never read from auth's tables.
#![forbid(unsafe_code)]

pub mod app;
pub mod auth_client;
pub mod config;
pub mod graphql;
pub mod projection;
pub mod service;

mod domain;
mod error;
mod store;

pub use app::App;
pub use config::CatalogSettings;
pub use error::Error;
