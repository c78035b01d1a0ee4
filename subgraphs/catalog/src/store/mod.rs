//! Tables of the catalog subgraph (sea-orm entities). Queries live in [`crate::service`].

pub mod booked_stays;
pub mod categories;
pub mod properties;
pub mod property_amenities;
