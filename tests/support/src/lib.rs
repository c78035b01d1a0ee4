//! What Draftr's end-to-end tests (`tests/api`) and benches (`benches/`) share, as a crate of
//! its own rather than files pulled in with `#[path]`:
//! - [`app`]: the test app — the whole stack from [`draftr::stack`], wired as production wires
//!   it (Redis, JWKS over HTTP, two notifications replicas) — and the GraphQL calls tests make;
//! - [`smtp`]: a real SMTP listener that can be down, stalled or refusing;
//! - [`ws`]: a graphql-ws client;
//! - [`otlp`]: an OTLP/HTTP trace receiver, to point the parts' exporters at;
//! - [`bench`](mod@bench): knobs, a PostgreSQL schema per bench run, the stack for benches, percentiles.

pub mod app;
pub mod bench;
pub mod cluster;
pub mod edge;
pub mod otlp;
pub mod smtp;
pub mod stripe;
pub mod ws;
