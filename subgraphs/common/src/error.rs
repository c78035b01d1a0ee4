//! Typed client errors, and the guarantee that every GraphQL error carries `extensions.code`.
//!
//! The async-graphql trap: `?` in a resolver compiles for any `Display` error through a blanket
//! `From`, and such an error reaches the client with no code and possibly an SQL message.
//! Two defences:
//! 1. [`ApiError`] deliberately does **not** implement `Display`, so it can have its own
//!    `From<ApiError> for async_graphql::Error` that sets the code. Resolvers return
//!    [`ApiResult`]; a `?` on an error type without a `From<_> for ApiError` does not compile.
//! 2. The [`ErrorCodes`] extension is a safety net for errors raised outside our resolvers
//!    (parse, validation, argument coercion, panics in libraries): it assigns a code, and
//!    replaces the message of anything unexpected with a neutral one after logging it.

use std::borrow::Cow;
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextRequest,
    NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{
    ErrorExtensionValues, ErrorExtensions, Response, ServerError, ServerResult, ValidationResult,
    Variables,
};

/// The codes clients can rely on (`errors[].extensions.code`), as listed in docs/api.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BadUserInput,
    Unauthenticated,
    Forbidden,
    NotFound,
    BookingConflict,
    PaymentDeclined,
    PaymentUnavailable,
    /// Between services only (payments to reservations): an authorization may exist at the
    /// provider but cannot be confirmed yet; ask again later. Guests see PAYMENT_UNAVAILABLE.
    PaymentOutcomeUnknown,
    RateLimited,
    GraphqlParseFailed,
    GraphqlValidationFailed,
    InternalServerError,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::BookingConflict => "BOOKING_CONFLICT",
            ErrorCode::PaymentDeclined => "PAYMENT_DECLINED",
            ErrorCode::PaymentUnavailable => "PAYMENT_UNAVAILABLE",
            ErrorCode::PaymentOutcomeUnknown => "PAYMENT_OUTCOME_UNKNOWN",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
            ErrorCode::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            ErrorCode::InternalServerError => "INTERNAL_SERVER_ERROR",
        }
    }
}

/// An error a client will see: a code and a sentence the user can act on.
///
/// Internal errors keep their cause for the log and show the client only a neutral sentence.
#[derive(Debug, Clone)]
pub struct ApiError {
    code: ErrorCode,
    message: Cow<'static, str>,
    field: Option<&'static str>,
    cause: Option<Arc<anyhow::Error>>,
}

/// What resolvers return.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
            cause: None,
        }
    }

    /// Bad input; `field` names the input field at fault so forms can highlight it.
    pub fn bad_input(field: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            field: Some(field),
            ..Self::new(ErrorCode::BadUserInput, message)
        }
    }

    pub fn unauthenticated(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::Unauthenticated, message)
    }

    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// An unexpected failure: the cause is logged when the error is turned into a response,
    /// the client only learns that something went wrong on our side.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self {
            cause: Some(Arc::new(cause.into())),
            ..Self::new(
                ErrorCode::InternalServerError,
                "something went wrong on our side; please try again",
            )
        }
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(err: ApiError) -> Self {
        if let Some(cause) = &err.cause {
            tracing::error!(error = ?cause, "internal error in resolver");
        }
        let code = err.code.as_str();
        let field = err.field;
        async_graphql::Error::new(err.message).extend_with(|_, ext| {
            ext.set("code", code);
            if let Some(field) = field {
                ext.set("field", field);
            }
        })
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        ApiError::internal(err)
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        ApiError::internal(err)
    }
}

/// Ensures every error leaving the schema carries `extensions.code` (see the module docs).
pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodesExtension)
    }
}

struct ErrorCodesExtension;

fn has_code(err: &ServerError) -> bool {
    err.extensions
        .as_ref()
        .is_some_and(|e| e.get("code").is_some())
}

fn set_code(err: &mut ServerError, code: ErrorCode) {
    err.extensions
        .get_or_insert_with(ErrorExtensionValues::default)
        .set("code", code.as_str());
}

/// async-graphql reports a value that does not coerce to an argument's type this way;
/// it is the client's mistake, not ours.
fn is_input_coercion_error(err: &ServerError) -> bool {
    err.message.starts_with("Failed to parse")
        || err.message.starts_with("Invalid value for argument")
}

/// async-graphql's `_entities` refuses a representation with these messages: one that names no
/// entity this subgraph resolves (an unknown `__typename`, or key fields of the wrong shape), or
/// one without a `__typename` string. The router only sends representations it built from the
/// subgraph's own SDL, so this is the input of a caller that reached the subgraph directly.
fn is_bad_entity_representation(err: &ServerError) -> bool {
    err.message == "Entity not found."
        || err.message == r#""__typename" must be an existing string."#
}

#[async_trait::async_trait]
impl Extension for ErrorCodesExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables).await.map_err(|mut err| {
            if !has_code(&err) {
                set_code(&mut err, ErrorCode::GraphqlParseFailed);
            }
            err
        })
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|mut errors| {
            for err in &mut errors {
                if !has_code(err) {
                    set_code(err, ErrorCode::GraphqlValidationFailed);
                }
            }
            errors
        })
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut response = next.run(ctx, operation_name).await;
        for err in &mut response.errors {
            if has_code(err) {
                continue;
            }
            if is_input_coercion_error(err) {
                set_code(err, ErrorCode::BadUserInput);
            } else if is_bad_entity_representation(err) {
                // Logged: from the router, it would mean its supergraph and this subgraph disagree.
                tracing::warn!(error.message = %err.message, "refused an _entities representation");
                set_code(err, ErrorCode::BadUserInput);
            } else {
                tracing::error!(error.message = %err.message, error.path = ?err.path, "uncoded error hidden from client");
                err.message = "something went wrong on our side; please try again".to_owned();
                set_code(err, ErrorCode::InternalServerError);
            }
        }
        response
    }

    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        // Errors raised before execution (e.g. a request without a query) end up here.
        for err in &mut response.errors {
            if !has_code(err) {
                set_code(err, ErrorCode::BadUserInput);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

    struct Query;

    #[derive(Debug, thiserror::Error)]
    #[error("relation \"users\" does not exist")]
    struct LeakyDbError;

    #[Object]
    impl Query {
        async fn typed(&self) -> ApiResult<i32> {
            Err(ApiError::bad_input("x", "x must be positive"))
        }
        async fn leaky(&self) -> async_graphql::Result<i32> {
            Err(LeakyDbError)?
        }
        async fn internal(&self) -> ApiResult<i32> {
            Err(ApiError::internal(anyhow::anyhow!("connection refused")))
        }
        async fn takes_int(&self, n: i32) -> i32 {
            n
        }
    }

    fn schema() -> Schema<Query, EmptyMutation, EmptySubscription> {
        Schema::build(Query, EmptyMutation, EmptySubscription)
            .extension(ErrorCodes)
            .finish()
    }

    fn code_of(resp: &Response) -> String {
        let json = serde_json::to_value(&resp.errors[0]).unwrap();
        json["extensions"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    #[tokio::test]
    async fn typed_errors_keep_their_code_and_field() {
        let resp = schema().execute("{ typed }").await;
        assert_eq!(code_of(&resp), "BAD_USER_INPUT");
        assert_eq!(resp.errors[0].message, "x must be positive");
        let json = serde_json::to_value(&resp.errors[0]).unwrap();
        assert_eq!(json["extensions"]["field"], "x");
    }

    #[tokio::test]
    async fn uncoded_errors_are_hidden_and_marked_internal() {
        let resp = schema().execute("{ leaky }").await;
        assert_eq!(code_of(&resp), "INTERNAL_SERVER_ERROR");
        assert!(
            !resp.errors[0].message.contains("relation"),
            "leaked: {}",
            resp.errors[0].message
        );
    }

    #[tokio::test]
    async fn internal_errors_do_not_show_their_cause() {
        let resp = schema().execute("{ internal }").await;
        assert_eq!(code_of(&resp), "INTERNAL_SERVER_ERROR");
        assert!(!resp.errors[0].message.contains("refused"));
    }

    #[tokio::test]
    async fn parse_and_validation_errors_get_graphql_codes() {
        assert_eq!(
            code_of(&schema().execute("{ typed").await),
            "GRAPHQL_PARSE_FAILED"
        );
        assert_eq!(
            code_of(&schema().execute("{ nope }").await),
            "GRAPHQL_VALIDATION_FAILED"
        );
    }

    #[derive(async_graphql::SimpleObject)]
    struct Thing {
        id: async_graphql::ID,
    }

    struct FederatedQuery;

    #[Object]
    impl FederatedQuery {
        async fn hello(&self) -> i32 {
            1
        }
        #[graphql(entity)]
        async fn find_thing_by_id(&self, id: async_graphql::ID) -> Option<Thing> {
            Some(Thing { id })
        }
    }

    /// Found by fuzzing a subgraph's own port: `_entities` with a representation naming no
    /// entity, or without a `__typename` string, answered INTERNAL_SERVER_ERROR.
    #[tokio::test]
    async fn bad_entity_representations_are_bad_user_input() {
        let schema = Schema::build(FederatedQuery, EmptyMutation, EmptySubscription)
            .enable_federation()
            .extension(ErrorCodes)
            .finish();
        for representations in [
            r#"{ __typename: "Category", id: "1" }"#,
            r#"{ __typename: "Thing", id: true }"#,
            r#"{ __typename: "Thing" }"#,
            r#"{ id: "1" }"#,
            r#"{ __typename: 7, id: "1" }"#,
            r#""1""#,
        ] {
            let query = format!(
                "{{ _entities(representations: [{representations}]) {{ ... on Thing {{ id }} }} }}"
            );
            let resp = schema.execute(query.as_str()).await;
            assert_eq!(
                code_of(&resp),
                "BAD_USER_INPUT",
                "{representations}: {:?}",
                resp.errors
            );
        }
        let resp = schema
            .execute(r#"{ _entities(representations: [{ __typename: "Thing", id: "1" }]) { ... on Thing { id } } }"#)
            .await;
        assert!(resp.errors.is_empty(), "{:?}", resp.errors);
    }

    #[tokio::test]
    async fn a_badly_typed_variable_is_bad_user_input_or_validation() {
        let req = async_graphql::Request::new("query($n: Int!) { takesInt(n: $n) }")
            .variables(Variables::from_json(serde_json::json!({ "n": "seven" })));
        let resp = schema().execute(req).await;
        let code = code_of(&resp);
        assert!(
            code == "BAD_USER_INPUT" || code == "GRAPHQL_VALIDATION_FAILED",
            "got {code}"
        );
    }
}
