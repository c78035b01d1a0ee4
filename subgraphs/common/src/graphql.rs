//! Serving an async-graphql schema the Draftr way: limits, error codes, the caller in the
//! context, the GraphiQL page, and Relay pagination helpers.

use async_graphql::http::GraphiQLSource;
use async_graphql::{ObjectType, Schema, SchemaBuilder, SimpleObject, SubscriptionType};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::Router;
use axum::extract::{Extension, State};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::config::LimitSettings;
use crate::error::{ApiError, ApiResult, ErrorCodes};
use crate::http::RequestMeta;
use crate::jwt::Viewer;
use crate::limits::{INTROSPECTION_DEPTH, OperationLimits};

/// The limits every subgraph applies ([`LimitSettings`]; the router applies the same to the
/// client's whole operation, and subgraphs must not trust that only the router reaches them),
/// and no "Did you mean …?" suggestions, which would name `@inaccessible` operations to anyone
/// who calls a subgraph directly.
pub fn harden<Q, M, S>(
    builder: SchemaBuilder<Q, M, S>,
    limits: &LimitSettings,
) -> SchemaBuilder<Q, M, S>
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    builder
        .extension(ErrorCodes)
        .extension(OperationLimits(*limits))
        .disable_suggestions()
        // `depth` leaves introspection out (the extension counts it); this bounds everything,
        // introspection included (GraphiQL's introspection query is 13 deep).
        .limit_depth(limits.depth.max(INTROSPECTION_DEPTH))
        .limit_complexity(limits.cost)
        .limit_recursive_depth(32)
        .limit_directives(20)
}

/// The page size when a client does not say (`first`).
pub const DEFAULT_PAGE_SIZE: u64 = 20;
/// The largest page a client may ask for.
pub const MAX_PAGE_SIZE: u64 = 100;

/// The cost of a list field (every field that takes `first`), for its
/// `#[graphql(complexity = "list_cost(first, child_complexity)")]`: 1 for the field, plus its
/// page size, read as [`page_size`] reads it, times the cost of what it selects. A page size
/// [`page_size`] refuses costs as much as the largest page: the request fails with
/// `BAD_USER_INPUT` when resolved, and must not slip under the cost limit before that.
pub fn list_cost(first: Option<i32>, child_complexity: usize) -> usize {
    let page = match first {
        None => DEFAULT_PAGE_SIZE,
        Some(n) if (1..=MAX_PAGE_SIZE as i32).contains(&n) => n as u64,
        Some(_) => MAX_PAGE_SIZE,
    };
    child_complexity
        .saturating_mul(page as usize)
        .saturating_add(1)
}

/// The caller of this request (put in the request data by the subgraph's handler).
pub fn viewer<'a>(ctx: &'a async_graphql::Context<'_>) -> &'a Viewer {
    static ANON: Viewer = Viewer::Anonymous;
    ctx.data_opt::<Viewer>().unwrap_or(&ANON)
}

/// Request facts (id, client address) for logging and throttling.
pub fn request_meta<'a>(ctx: &'a async_graphql::Context<'_>) -> Option<&'a RequestMeta> {
    ctx.data_opt::<RequestMeta>()
}

/// For operations only Draftr's own services may call (marked `@inaccessible`, so the router
/// never exposes them; this check is for callers that reach a subgraph directly).
pub fn require_service_call(ctx: &async_graphql::Context<'_>) -> ApiResult<()> {
    if request_meta(ctx).is_some_and(|m| m.service_call) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "this operation is only for Draftr's own services",
        ))
    }
}

/// The key of an `_entities` representation as one of our ids. A key that is not one (not a
/// UUID) names no entity, so the resolver answers null for it, as federation expects of an
/// unknown key, instead of failing the router's whole fetch. An entity resolver starts with
/// `let Some(id) = entity_id(&id) else { return Ok(None) };` and answers null for an id it
/// has no row for, too.
pub fn entity_id(id: &async_graphql::ID) -> Option<uuid::Uuid> {
    uuid::Uuid::parse_str(id.as_str()).ok()
}

/// Extra fields of every Draftr connection.
#[derive(SimpleObject, Debug, Clone, Copy)]
pub struct ConnectionFields {
    /// How many items the whole list has, across all pages.
    pub total_count: u64,
}

/// The page size a client asked for, checked: default 20, at most 100.
pub fn page_size(first: Option<i32>) -> ApiResult<u64> {
    match first {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(n) if (1..=MAX_PAGE_SIZE as i32).contains(&n) => Ok(n as u64),
        Some(_) => Err(ApiError::bad_input(
            "first",
            "first must be between 1 and 100",
        )),
    }
}

/// Cursors are opaque to clients; inside they are the sort key of the last item seen, so a
/// page stays stable while rows are inserted before or after it.
pub fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

pub fn decode_cursor(cursor: &str) -> ApiResult<String> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::bad_input("after", "after is not a cursor this API returned"))
}

/// A Relay cursor made by [`encode_cursor`] from a UUID (lists ordered by time-ordered ids).
pub fn decode_uuid_cursor(after: Option<&str>) -> ApiResult<Option<uuid::Uuid>> {
    after
        .map(|c| {
            decode_cursor(c).and_then(|s| {
                uuid::Uuid::parse_str(&s).map_err(|_| {
                    ApiError::bad_input("after", "after is not a cursor this API returned")
                })
            })
        })
        .transpose()
}

// One definition for every subgraph: the type is shareable, and composition requires its
// copies to be identical.
/// An amount of money in minor units (cents) of an ISO 4217 currency.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
#[graphql(shareable)]
pub struct Money {
    pub amount: i32,
    pub currency: String,
}

impl Money {
    /// From a stored 64-bit amount. GraphQL's `Int` is 32-bit: anything larger is shown as
    /// `i32::MAX`. Rates are validated to fit and totals are capped when priced, so stored
    /// amounts never reach the cap.
    pub fn minor_units(amount: i64, currency: &str) -> Self {
        Self {
            amount: i32::try_from(amount).unwrap_or(i32::MAX),
            currency: currency.to_owned(),
        }
    }
}

/// A calendar date, `YYYY-MM-DD` (the `Date` scalar of `docs/api.md`; the same in every
/// subgraph).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Date(pub chrono::NaiveDate);

#[async_graphql::Scalar(name = "Date")]
impl async_graphql::ScalarType for Date {
    fn parse(value: async_graphql::Value) -> async_graphql::InputValueResult<Self> {
        match &value {
            async_graphql::Value::String(s) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Date)
                .map_err(|_| {
                    async_graphql::InputValueError::custom(format!(
                        "{s:?} is not a date (YYYY-MM-DD)"
                    ))
                }),
            _ => Err(async_graphql::InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> async_graphql::Value {
        async_graphql::Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

/// GET on a subgraph's GraphQL path shows GraphiQL, for trying a subgraph on its own.
async fn graphiql() -> impl IntoResponse {
    Html(GraphiQLSource::build().endpoint("/").finish())
}

async fn graphql_post<Q, M, S>(
    State(schema): State<Schema<Q, M, S>>,
    Extension(viewer): Extension<Viewer>,
    Extension(meta): Extension<RequestMeta>,
    request: GraphQLRequest,
) -> GraphQLResponse
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    schema
        .execute(request.into_inner().data(viewer).data(meta))
        .await
        .into()
}

/// `POST /` runs GraphQL with the caller (from [`crate::http::identify`]) in the request data;
/// `GET /` shows GraphiQL.
pub fn routes<Q, M, S>(schema: Schema<Q, M, S>) -> Router
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    Router::new()
        .route("/", get(graphiql).post(graphql_post::<Q, M, S>))
        .with_state(schema)
}

/// What every subgraph serves: GraphQL at `/` with the caller identified, `/health`, and
/// `/ready` (its database answers), under the standard layers. `extra` adds a subgraph's own
/// routes (auth's JWKS).
pub fn subgraph_app<Q, M, S>(
    schema: Schema<Q, M, S>,
    identify: crate::http::Identify,
    db: sea_orm::DatabaseConnection,
    extra: Router,
) -> Router
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let graphql = routes(schema).layer(axum::middleware::from_fn_with_state(
        std::sync::Arc::new(identify),
        crate::http::identify,
    ));
    crate::http::with_standard_layers(graphql.merge(extra).merge(crate::http::health_routes(
        move || {
            let db = db.clone();
            async move { db.ping().await.map_err(|e| e.to_string()) }
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_bad_input() {
        let c = encode_cursor("0190f1c2-aaaa");
        assert_eq!(decode_cursor(&c).unwrap(), "0190f1c2-aaaa");
        assert!(decode_cursor("!!!").is_err());
    }

    #[test]
    fn entity_keys_that_are_not_ids_name_nothing() {
        let id = uuid::Uuid::now_v7();
        assert_eq!(entity_id(&async_graphql::ID(id.to_string())), Some(id));
        assert_eq!(entity_id(&async_graphql::ID("not-an-id".into())), None);
    }

    #[test]
    fn a_list_costs_its_page_size_times_what_it_selects() {
        assert_eq!(list_cost(None, 3), 61);
        assert_eq!(list_cost(Some(100), 3), 301);
        assert_eq!(list_cost(Some(1), 0), 1);
        // Sizes page_size refuses count as the largest page.
        assert_eq!(list_cost(Some(1_000_000), 3), 301);
        assert_eq!(list_cost(Some(0), 3), 301);
        assert_eq!(list_cost(Some(-5), 3), 301);
        assert_eq!(list_cost(Some(100), usize::MAX), usize::MAX);
    }

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(page_size(None).unwrap(), 20);
        assert_eq!(page_size(Some(100)).unwrap(), 100);
        assert!(page_size(Some(0)).is_err());
        assert!(page_size(Some(101)).is_err());
        assert!(page_size(Some(-1)).is_err());
    }
}
