//! The catalog subgraph's errors and what the client sees of each.

use draftr_common::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("property not found")]
    PropertyNotFound,
    #[error("category not found")]
    CategoryNotFound,
    #[error("a category with this slug already exists")]
    SlugTaken,
    #[error("only the property's host or an administrator can change it")]
    NotYourProperty,
    /// A row this code could not have written.
    #[error(transparent)]
    Stored(#[from] crate::domain::UnknownValue),
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
            Error::SlugTaken => ApiError::bad_input("slug", err.to_string()),
            Error::CategoryNotFound => ApiError::bad_input("categoryId", err.to_string()),
            Error::PropertyNotFound => ApiError::not_found(err.to_string()),
            Error::NotYourProperty => ApiError::forbidden(err.to_string()),
            Error::Stored(e) => ApiError::internal(e),
            Error::Db(e) => ApiError::internal(e),
        }
    }
}
