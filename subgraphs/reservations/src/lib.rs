//! The reservations subgraph: the booking calendar and the booking saga.
//!
//! It owns reservations (and their outbox) and orchestrates a booking: quote from catalog,
//! hold the dates (the database makes overlapping holds impossible), authorize through
//! payments, confirm with an outbox event in one transaction, capture; any failure after the
//! hold is compensated. A reconciler finishes or compensates whatever a crash interrupted.
//!
//! For the booking path read [`service`] (then its `booking`, `settlement` and `cancellation`
//! stages), `store` for the statements and the constraints they rely on, and [`domain`] for
//! the rules.
#![forbid(unsafe_code)]

pub mod app;
pub mod clients;
pub mod config;
pub mod domain;
pub mod graphql;
pub mod ical;
pub mod reconciler;
pub mod relay;
pub mod service;

mod error;
mod store;

pub use app::App;
pub use config::ReservationsSettings;
pub use error::Error;
