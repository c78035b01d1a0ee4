//! The reservations subgraph's errors and what the client sees of each.

use draftr_common::{ApiError, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("reservation not found")]
    NotFound,
    #[error("property not found")]
    PropertyNotFound,
    /// No such review, or one an admin removed.
    #[error("review not found")]
    ReviewNotFound,
    /// No such calendar import (never was, or removed).
    #[error("calendar import not found")]
    ImportNotFound,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("those dates are already booked; pick other dates")]
    BookingConflict,
    #[error("{0}")]
    PaymentDeclined(String),
    #[error("{0}")]
    PaymentUnavailable(&'static str),
    /// Catalog could not be asked for the price: the booking cannot be priced right now.
    #[error("bookings are temporarily unavailable; please try again in a moment")]
    CatalogUnavailable(String),
    #[error("database error")]
    Db(#[from] sea_orm::DbErr),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl Error {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        match err {
            Error::Invalid { field, message } => ApiError::bad_input(field, message),
            Error::NotFound
            | Error::PropertyNotFound
            | Error::ReviewNotFound
            | Error::ImportNotFound => ApiError::not_found(err.to_string()),
            Error::Forbidden(m) => ApiError::forbidden(m),
            Error::BookingConflict => ApiError::new(ErrorCode::BookingConflict, err.to_string()),
            Error::PaymentDeclined(m) => ApiError::new(ErrorCode::PaymentDeclined, m),
            Error::PaymentUnavailable(m) => ApiError::new(ErrorCode::PaymentUnavailable, m),
            Error::CatalogUnavailable(ref cause) => {
                tracing::warn!(error = %cause, "catalog unavailable");
                ApiError::new(ErrorCode::InternalServerError, err.to_string())
            }
            Error::Db(e) => ApiError::internal(e),
            Error::Internal(e) => ApiError::internal(e),
        }
    }
}
