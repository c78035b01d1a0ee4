//! The auth subgraph's errors and what the client sees of each.

use draftr_common::{ApiError, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("an account with this email already exists")]
    EmailTaken,
    /// Deliberately the same for an unknown email and a wrong password.
    #[error("invalid email or password")]
    BadCredentials,
    #[error("too many failed sign-in attempts; wait {minutes} minutes and try again")]
    RateLimited { minutes: u64 },
    #[error("{0}")]
    SessionInvalid(&'static str),
    #[error("user not found")]
    UserNotFound,
    /// Every password-hashing slot is busy (a flood of sign-ups or sign-ins).
    #[error("the server is busy checking passwords; try again in a moment")]
    Busy,
    #[error("{0}")]
    Internal(#[from] anyhow::Error),
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
            Error::EmailTaken => ApiError::bad_input("email", err.to_string()),
            Error::BadCredentials | Error::SessionInvalid(_) => {
                ApiError::unauthenticated(err.to_string())
            }
            Error::RateLimited { .. } | Error::Busy => {
                ApiError::new(ErrorCode::RateLimited, err.to_string())
            }
            Error::UserNotFound => ApiError::not_found(err.to_string()),
            Error::Internal(e) => ApiError::internal(e),
            Error::Db(e) => ApiError::internal(e),
        }
    }
}

impl From<crate::passwords::PasswordError> for Error {
    fn from(err: crate::passwords::PasswordError) -> Self {
        match err {
            crate::passwords::PasswordError::Busy => Error::Busy,
            crate::passwords::PasswordError::Other(e) => Error::Internal(e),
        }
    }
}
