//! The notifications subgraph's errors and what the client sees of each.

use draftr_common::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("you can only list your own notifications")]
    NotYourNotifications,
    /// A column holds a value this build never writes (a newer build's, or a hand edit):
    /// refused rather than shown as something it is not.
    #[error("notification {id}: stored {column} {value:?} is not one this build knows")]
    UnknownStoredValue {
        id: uuid::Uuid,
        column: &'static str,
        value: String,
    },
    #[error("database error")]
    Db(#[from] sea_orm::DbErr),
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        match err {
            Error::NotYourNotifications => ApiError::forbidden(err.to_string()),
            Error::UnknownStoredValue { .. } => ApiError::internal(err),
            Error::Db(e) => ApiError::internal(e),
        }
    }
}
