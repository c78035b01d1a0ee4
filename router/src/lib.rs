//! Draftr's Apollo Router: a custom binary built from the `apollo-router` crate, with Draftr's
//! native plugins, the committed free-features configuration, and supergraph composition.
#![forbid(unsafe_code)]

pub mod compose;
pub mod embed;
pub mod plugins;

/// The committed router configuration (free features only: it must start without a GraphOS key).
pub const ROUTER_YAML: &str = include_str!("../router.yaml");
