//! The auth subgraph: who users are, how they prove it, and what they may do.
//!
//! It owns users, password hashes, refresh tokens and roles, signs access tokens with an
//! Ed25519 key, and publishes the public key at `/.well-known/jwks.json` so every other
//! subgraph verifies tokens without a secret.
//!
//! The parts, as in every subgraph: [`config`], `error`, [`app`] (build and serve),
//! [`graphql`] (the API), [`service`] (what auth does), `domain` (what a valid email,
//! password and display name are, pure), `store` (tables and constraint names). Its own:
//! `passwords` (argon2id hashing) and `tokens` (signing access tokens, minting refresh tokens).
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
