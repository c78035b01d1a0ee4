use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use draftr_common::ApiError;
use uuid::Uuid;

use crate::service::{CatalogService, Property};

/// Batches every property lookup of a request (`property`, `_entities`) into one query per
/// table (properties, amenities, categories); the batch's photos are one more, and only when
/// asked for (`service::Property::photos`).
pub struct PropertyLoader {
    service: Arc<CatalogService>,
}

impl PropertyLoader {
    pub fn new(service: Arc<CatalogService>) -> Self {
        Self { service }
    }
}

impl Loader<Uuid> for PropertyLoader {
    type Value = Property;
    type Error = ApiError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Property>, ApiError> {
        Ok(self.service.get_many(keys).await?)
    }
}
