//! The payments subgraph's errors and what the client (reservations, mostly) sees of each.

use draftr_common::{ApiError, ErrorCode};

use crate::domain::{PaymentStatus, UnknownStatus};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{message}")]
    Declined { code: String, message: String },
    #[error("payments are unavailable right now; please try again in a moment")]
    Unavailable(String),
    /// An authorization may exist at the provider, and looking it up cannot tell yet.
    #[error("the payment's outcome is not known yet; ask again later")]
    OutcomeUnknown(String),
    #[error("no payment for this reservation")]
    NotFound,
    #[error("this payment cannot be {action} in its current state ({status})")]
    WrongState {
        action: &'static str,
        status: PaymentStatus,
    },
    /// A row this code could not have written: never guessed at, since that could move money.
    #[error(transparent)]
    Stored(#[from] UnknownStatus),
    #[error("database error")]
    Db(#[from] sea_orm::DbErr),
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
            Error::Declined { .. } => ApiError::new(ErrorCode::PaymentDeclined, err.to_string()),
            Error::Unavailable(ref cause) => {
                tracing::warn!(error = %cause, "payment provider unavailable");
                ApiError::new(ErrorCode::PaymentUnavailable, err.to_string())
            }
            Error::OutcomeUnknown(ref cause) => {
                tracing::warn!(error = %cause, "payment outcome unknown");
                ApiError::new(ErrorCode::PaymentOutcomeUnknown, err.to_string())
            }
            Error::NotFound => ApiError::not_found(err.to_string()),
            Error::WrongState { .. } => ApiError::bad_input("reservationId", err.to_string()),
            Error::Stored(e) => ApiError::internal(e),
            Error::Db(e) => ApiError::internal(e),
        }
    }
}
