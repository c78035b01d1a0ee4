//! The catalog subgraph: the properties people browse, their categories, and search.
//!
//! It owns properties, categories and amenities; hosts are `User` entity keys from auth,
//! resolved by the router, never read from auth's tables.
//!
//! The parts, as in every subgraph: [`config`], `error`, [`app`] (build and serve),
//! [`graphql`] (the API), [`service`] (what the catalog does), `domain` (the rules of a
//! listing, pure), `store` (tables and constraint names). Its own: [`clients`] (the call to
//! auth that makes a lister a host) and [`projection`] (availability, from reservation events).
#![forbid(unsafe_code)]

pub mod app;
pub mod clients;
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
