//! Settings of the reservations subgraph (`DRAFTR_RESERVATIONS__…` environment variables
//! override).

use draftr_common::config::{Subgraph, SubgraphSettings};
use draftr_common::service_client::CallPolicy;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ReservationsSettings {
    /// Listen address, database, Redis, token policy, trusted proxies, service credential.
    #[serde(flatten)]
    pub subgraph: SubgraphSettings<Self>,
    /// Catalog's GraphQL endpoint (quotes).
    pub catalog_url: String,
    /// Payments' GraphQL endpoint (authorize, capture, cancel, refund).
    pub payments_url: String,
    /// Timeouts, retries and circuit breaker of calls to catalog and payments.
    pub calls: CallPolicy,
    pub booking: BookingSettings,
    pub reviews: ReviewSettings,
    /// How often the outbox relay looks for events to publish.
    pub relay_interval_ms: u64,
    /// iCal export and import of host calendars (`DRAFTR_RESERVATIONS__ICAL__…`).
    pub ical: crate::ical::IcalSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct BookingSettings {
    /// Longest stay, in nights.
    pub max_nights: i64,
    /// How far ahead a stay may start, in days.
    pub max_days_ahead: i64,
    /// A PENDING hold older than this is the reconciler's: finished if its payment was
    /// authorized, released otherwise. Longer than any live saga can take.
    pub hold_timeout_ms: u64,
    /// How often the reconciler runs (it also runs at start).
    pub reconcile_interval_ms: u64,
}

impl Default for BookingSettings {
    fn default() -> Self {
        Self {
            max_nights: 30,
            max_days_ahead: 730,
            hold_timeout_ms: 120_000,
            reconcile_interval_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ReviewSettings {
    /// How many days after check-out a guest may still review the stay
    /// (`DRAFTR_RESERVATIONS__REVIEWS__WINDOW_DAYS`).
    pub window_days: i64,
}

impl Default for ReviewSettings {
    fn default() -> Self {
        Self { window_days: 14 }
    }
}

impl Default for ReservationsSettings {
    fn default() -> Self {
        Self {
            subgraph: SubgraphSettings::default(),
            catalog_url: "http://127.0.0.1:4002/".to_owned(),
            payments_url: "http://127.0.0.1:4004/".to_owned(),
            calls: CallPolicy::default(),
            booking: BookingSettings::default(),
            reviews: ReviewSettings::default(),
            relay_interval_ms: 100,
            ical: crate::ical::IcalSettings::default(),
        }
    }
}

impl Subgraph for ReservationsSettings {
    const NAME: &'static str = "reservations";
    const PORT: u16 = 4003;
}
