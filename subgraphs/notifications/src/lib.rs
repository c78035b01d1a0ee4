//! The notifications subgraph: a booking is not done for the guest until they are told.
//!
//! It consumes reservation events (consumer group `notifications`), turns each into the emails
//! it calls for (one row per email, keyed by event, kind and user, so a redelivered event adds
//! nothing), sends them over SMTP with retries, and pushes live updates to graphql-ws
//! subscribers (`/ws`), fanned out to every replica through Redis pub/sub.
//!
//! The shape every subgraph has: [`config`], [`error`](Error), [`app`], [`graphql`] (the API),
//! [`service`] (what the API and the consumer ask of the table), `domain` (the kinds and states
//! of an email, and the text of each) and `store` (the table and every query on it). Beside
//! them the two ends of the pipeline: [`consumer`] (events in) and [`mailer`] with [`smtp`]
//! (emails out), [`live`] (the subscriptions' fan-out) and [`socket`] (the subscription socket,
//! `/ws`: its protocol, caps, keepalive, and the session that ends it).
#![forbid(unsafe_code)]

pub mod app;
pub mod config;
pub mod consumer;
pub mod graphql;
pub mod live;
pub mod mailer;
pub mod service;
pub mod smtp;
pub mod socket;

mod domain;
mod error;
mod store;

pub use app::App;
pub use config::NotificationsSettings;
pub use error::Error;
