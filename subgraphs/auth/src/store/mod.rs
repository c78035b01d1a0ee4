//! Tables of the auth subgraph (sea-orm entities). Queries live in [`crate::service`].

pub mod refresh_tokens;
pub mod users;
