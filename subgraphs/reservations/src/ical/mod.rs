//! iCal (RFC 5545) feeds of host calendars, written and read with the `icalendar` crate
//! (docs/api.md, "Calendar feeds"):
//! - export, in [`export`]: `GET /calendar/{propertyId}/{token}.ics`, a secret URL per property
//!   whose token ([`token`]) is an HMAC of the property and a generation counter, so rotating
//!   it (`rotateIcalExportUrl`) makes the previous URL 404 at once and no token is stored;
//! - import, in [`feed`] (reading a feed's events), [`fetch`] (getting it safely: public
//!   addresses only, bounded size, time and redirects) and [`poller`] (each feed on a schedule,
//!   one replica per feed); the service side is `crate::service::ical`.

pub mod export;
pub mod feed;
pub mod fetch;
pub mod poller;
pub mod token;

use ipnet::IpNet;
use secrecy::SecretString;
use serde::Deserialize;

/// The feed secret used when none is configured. Development only: anyone who knows it can
/// compute every export URL. Production sets `DRAFTR_RESERVATIONS__ICAL__FEED_SECRET`.
pub const DEV_FEED_SECRET: &str = "draftr-development-only-ical-feed-secret";

/// Settings of the calendar feeds (`DRAFTR_RESERVATIONS__ICAL__…`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct IcalSettings {
    /// The HMAC key of export URLs. Unset: [`DEV_FEED_SECRET`] (development only; a warning
    /// is logged). Changing it changes every export URL.
    pub feed_secret: Option<SecretString>,
    /// The base of export URLs, as the outside reaches this service (e.g. the edge proxy's
    /// `https://draftr.example`). Empty: this subgraph's own listen address, which is right for
    /// `draftr run` on one machine.
    pub public_base_url: String,
    /// Exports leave out stays and blocks that ended more than this many days ago.
    pub export_past_days: i64,
    /// How often each imported feed is polled.
    pub poll_interval_secs: u64,
    /// How often the poller looks for feeds that are due.
    pub poller_tick_ms: u64,
    /// The whole fetch of a feed (connect, redirects, body), in milliseconds.
    pub fetch_timeout_ms: u64,
    /// A feed larger than this is refused (counted while streaming).
    pub max_feed_bytes: usize,
    /// Redirects followed per fetch (each target checked again).
    pub max_redirects: usize,
    /// Feeds per property.
    pub max_imports_per_property: u64,
    /// Addresses a feed URL may reach although they are not public (loopback, private, …).
    /// Empty in production; tests allow `127.0.0.1/32` for their local feed server.
    pub allow_networks: Vec<IpNet>,
}

impl Default for IcalSettings {
    fn default() -> Self {
        Self {
            feed_secret: None,
            public_base_url: String::new(),
            export_past_days: 30,
            poll_interval_secs: 900,
            poller_tick_ms: 5_000,
            fetch_timeout_ms: 10_000,
            max_feed_bytes: 1024 * 1024,
            max_redirects: 3,
            max_imports_per_property: 10,
            allow_networks: Vec::new(),
        }
    }
}

/// The service's iCal tools for an app listening on `listen`: export URLs start at the
/// settings' public base URL, or this listener's own address (a wildcard address read as
/// 127.0.0.1). Warns when the development-only feed secret is in use.
pub fn app_ical(
    settings: &IcalSettings,
    listen: std::net::SocketAddr,
) -> anyhow::Result<crate::service::ical::Ical> {
    if settings.feed_secret.is_none() {
        tracing::warn!(
            "no ical.feed_secret set: export URLs use the development-only default (set DRAFTR_RESERVATIONS__ICAL__FEED_SECRET)"
        );
    }
    let host = match listen.ip() {
        ip if ip.is_unspecified() => std::net::IpAddr::from([127, 0, 0, 1]),
        ip => ip,
    };
    let own = format!("http://{}", std::net::SocketAddr::new(host, listen.port()));
    crate::service::ical::Ical::new(settings.clone(), &own)
}
