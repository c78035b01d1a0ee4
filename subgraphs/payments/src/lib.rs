//! The payments subgraph: the money side of a booking.
//!
//! It authorizes, captures, voids and refunds through a [`provider::PaymentProvider`] (Stripe,
//! or a simulation of Stripe's test cards for the embedded default), keeps one `Payment`
//! record per charge (the booking's own, keyed by the reservation id, and one per change that
//! raised the total, keyed by the change's id; amounts, status, provider and provider id; never
//! card data), and takes Stripe's webhooks. Its mutations are service-only: reservations'
//! booking saga drives them, keyed by the charge (refunds by the reservation and a refund key),
//! so every one of them is idempotent.
//!
//! The parts, as in every subgraph: [`config`], `error`, [`app`] (build and serve),
//! [`graphql`] (the API), [`service`] (what payments does), `domain` (payment states and the
//! rules of a charge or refund, pure), `store` (tables and constraint names). Its own:
//! [`provider`] (Stripe and the simulation) and [`webhook`] (Stripe's events).
#![forbid(unsafe_code)]

pub mod app;
pub mod config;
pub mod graphql;
pub mod provider;
pub mod service;
pub mod webhook;

mod domain;
mod error;
mod store;

pub use app::App;
pub use config::PaymentsSettings;
pub use error::Error;
