//! What every Draftr subgraph needs, and nothing domain-specific.
//!
//! Each module answers one cross-cutting question the same way for all five subgraphs:
//! how settings are read ([`config`]), how logs carry the router's request id ([`telemetry`]),
//! how every GraphQL error gets an `extensions.code` ([`error`]), how a bearer token is verified
//! with the auth service's public key only ([`jwt`]), how a database is opened on SQLite or
//! PostgreSQL ([`db`]), where short-lived shared state lives ([`kv`]), how events travel
//! ([`events`]) and how a subgraph is served ([`http`], [`graphql`]), what one request may ask of it
//! ([`limits`]) and what it reports to Prometheus ([`metrics`]).
#![forbid(unsafe_code)]

pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod jwt;
pub mod kv;
pub mod limits;
pub mod metrics;
pub mod service_client;
pub mod stream;
pub mod telemetry;

/// Test helpers for this crate's own unit tests and, with `test-support`, for the others'.
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

pub use error::{ApiError, ApiResult, ErrorCode};
pub use jwt::{Claims, Role, Viewer};
