//! The auth subgraph: who users are, how they prove it, and what they may do.
//!
//! It owns users, password hashes, refresh tokens and roles, signs access tokens with an
//! Ed25519 key, and publishes the public key at `/.well-known/jwks.json` so every other
//! subgraph verifies tokens without a secret.
#![forbid(unsafe_code)]

pub mod app;
pub mod config;
pub mod graphql;
pub mod service;

mod domain;
mod error;
mod passwords;
mod store;
mod tokens;

pub use app::App;
pub use config::AuthSettings;
pub use error::Error;
