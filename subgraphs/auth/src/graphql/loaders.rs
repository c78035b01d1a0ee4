use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use draftr_common::ApiError;
use uuid::Uuid;

use crate::service::{AuthService, User};

/// Batches every user lookup of one request (`_entities`, `user`, `me`) into one query.
pub struct UserLoader {
    service: Arc<AuthService>,
}

impl UserLoader {
    pub fn new(service: Arc<AuthService>) -> Self {
        Self { service }
    }
}

impl Loader<Uuid> for UserLoader {
    type Value = User;
    type Error = ApiError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, User>, ApiError> {
        tracing::debug!(batch = keys.len(), "loading users");
        Ok(self.service.users_by_ids(keys).await?)
    }
}
