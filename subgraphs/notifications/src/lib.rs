//! The notifications subgraph: a booking is not done for the guest until they are told.
//!
//! It consumes reservation events (consumer group `notifications`), turns each into the emails
//! it calls for (one row per email, keyed by event, kind and user, so a redelivered event adds
//! nothing), sends them over SMTP with retries, and pushes live updates to graphql-ws
//! subscribers (`/ws`), fanned out to every replica through Redis pub/sub.
#![forbid(unsafe_code)]

pub mod app;
pub mod config;
pub mod consumer;
pub mod graphql;
pub mod live;
pub mod mailer;
pub mod smtp;

mod store;

pub use app::App;
pub use config::NotificationsSettings;
