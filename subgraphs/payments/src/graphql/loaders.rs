use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use draftr_common::ApiError;
use uuid::Uuid;

use crate::service::{self, PaymentService};

/// Batches `payment` and `_entities` lookups by payment id.
pub struct PaymentLoader {
    service: Arc<PaymentService>,
}

impl PaymentLoader {
    pub fn new(service: Arc<PaymentService>) -> Self {
        Self { service }
    }
}

impl Loader<Uuid> for PaymentLoader {
    type Value = service::Payment;
    type Error = ApiError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, service::Payment>, ApiError> {
        Ok(self.service.get_many(keys).await?)
    }
}

/// Batches `Reservation.payment` lookups, the booking's own payment (a page of reservations
/// is one query).
pub struct PaymentByReservationLoader {
    service: Arc<PaymentService>,
}

impl PaymentByReservationLoader {
    pub fn new(service: Arc<PaymentService>) -> Self {
        Self { service }
    }
}

impl Loader<Uuid> for PaymentByReservationLoader {
    type Value = service::Payment;
    type Error = ApiError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, service::Payment>, ApiError> {
        Ok(self.service.by_reservations(keys).await?)
    }
}

/// Batches `Reservation.payments` lookups: every payment of a page of reservations is one
/// query.
pub struct PaymentsByReservationLoader {
    service: Arc<PaymentService>,
}

impl PaymentsByReservationLoader {
    pub fn new(service: Arc<PaymentService>) -> Self {
        Self { service }
    }
}

impl Loader<Uuid> for PaymentsByReservationLoader {
    type Value = Vec<service::Payment>;
    type Error = ApiError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Vec<service::Payment>>, ApiError> {
        Ok(self.service.all_by_reservations(keys).await?)
    }
}
