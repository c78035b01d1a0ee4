//! End-to-end tests: the real auth subgraph, a second subgraph, and the real Apollo Router, on
//! PostgreSQL and SQLite, with Redis for shared state. Requests go through the router unless a
//! test says otherwise.

// The shared test support, under the names the modules use (`crate::helpers::spawn`, …).
use draftr_test_support::{app as helpers, smtp, ws};

mod auth_flow;
mod blocks;
mod booking;
mod catalog;
mod changes;
mod delivery;
mod edge;
mod events;
mod hive;
mod hostile;
mod ical;
mod limits;
mod metrics;
mod notifications;
mod origins;
mod payments;
mod photos;
mod processes;
mod reviews;
mod router;
mod saga;
mod scale;
mod schema_check;
mod sockets;
mod tokens;
mod traces;
