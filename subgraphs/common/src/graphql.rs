//! Serving an async-graphql schema the Draftr way: limits, error codes, the caller in the
//! context, GraphQL over POST only (GraphiQL on GET where introspection is on), and Relay
//! pagination helpers.

use async_graphql::http::GraphiQLSource;
use async_graphql::{
    ObjectType, ParseRequestError, Schema, SchemaBuilder, SimpleObject, SubscriptionType,
};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Extension, FromRequest, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::config::LimitSettings;
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorCodes};
use crate::http::RequestMeta;
use crate::jwt::Viewer;
use crate::limits::{INTROSPECTION_DEPTH, OperationLimits, RECURSION_LIMIT};
use crate::metrics::{RequestMetrics, SubgraphMetrics, UNMATCHED_ROUTE};

/// Request metrics ([`RequestMetrics`], first, so it sees every response as the client does),
/// the limits every subgraph applies ([`LimitSettings`]; the router applies the same to the
/// client's whole operation, and subgraphs must not trust that only the router reaches them),
/// and no "Did you mean …?" suggestions, which would name `@inaccessible` operations to anyone
/// who calls a subgraph directly.
///
/// Introspection (`__schema`, `__type`) is answered only where `limits.introspection` is on
/// (the embedded default): elsewhere [`OperationLimits`] refuses it with
/// `GRAPHQL_VALIDATION_FAILED`, and the schema would not answer it anyway. The federation
/// fields the router and composition use, `_service { sdl }` and `_entities`, are not
/// introspection and are answered either way.
pub fn harden<Q, M, S>(
    builder: SchemaBuilder<Q, M, S>,
    limits: &LimitSettings,
) -> SchemaBuilder<Q, M, S>
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let builder = builder
        .extension(RequestMetrics)
        .extension(ErrorCodes)
        .extension(OperationLimits(*limits))
        .disable_suggestions()
        // `depth` leaves introspection out (the extension counts it); this bounds everything,
        // introspection included (GraphiQL's introspection query is 13 deep).
        .limit_depth(limits.depth.max(INTROSPECTION_DEPTH))
        .limit_complexity(limits.cost)
        .limit_recursive_depth(RECURSION_LIMIT)
        .limit_directives(20);
    if limits.introspection {
        builder
    } else {
        builder.disable_introspection()
    }
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

/// A refusal made before GraphQL runs, as a GraphQL response with a code.
fn refused(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code.as_str() } }]
    });
    let mut response = (status, axum::Json(body)).into_response();
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    response
}

/// Whether `schema` answers introspection: asked of the schema itself, so GraphiQL is shown
/// exactly where its introspection query would be answered (`limits.introspection`).
async fn answers_introspection<Q, M, S>(schema: &Schema<Q, M, S>) -> bool
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    schema
        .execute("{ __schema { queryType { name } } }")
        .await
        .is_ok()
}

/// `GET /`: GraphiQL, for trying a subgraph on its own, where introspection is on; 405
/// elsewhere. GraphQL itself is never run from a GET (a GET can be a cross-site request, and
/// a mutation must never run on one): a `query` parameter is refused with 405 either way.
async fn graphql_get<Q, M, S>(State(schema): State<Schema<Q, M, S>>, uri: Uri) -> Response
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let asks_graphql = uri
        .query()
        .is_some_and(|q| url::form_urlencoded::parse(q.as_bytes()).any(|(key, _)| key == "query"));
    if asks_graphql {
        return refused(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::BadUserInput,
            "GraphQL is served over POST only: send the operation as a JSON body",
        );
    }
    if !answers_introspection(&schema).await {
        return refused(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::BadUserInput,
            "GraphQL is served over POST only; GraphiQL and introspection are turned off on \
             this subgraph (limits.introspection)",
        );
    }
    Html(GraphiQLSource::build().endpoint("/").finish()).into_response()
}

/// A body that is not one GraphQL request, refused as a GraphQL response with a code instead
/// of async-graphql-axum's plain-text 400. Messages are fixed: nothing of the body or the
/// parser's internals is echoed.
pub struct BodyRefused(ParseRequestError);

impl From<ParseRequestError> for BodyRefused {
    fn from(err: ParseRequestError) -> Self {
        Self(err)
    }
}

impl IntoResponse for BodyRefused {
    fn into_response(self) -> Response {
        let too_large = || {
            refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::BadUserInput,
                "the request body is over the limit of 1 MiB",
            )
        };
        match self.0 {
            ParseRequestError::PayloadTooLarge => too_large(),
            // The body limit cuts a body without a length off while it is read.
            ParseRequestError::Io(e) if e.to_string().contains("length limit exceeded") => {
                too_large()
            }
            ParseRequestError::UnsupportedBatch => refused(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadUserInput,
                "batches are not accepted: send one operation per request",
            ),
            _ => refused(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadUserInput,
                "the body is not a GraphQL request (a JSON object with a query)",
            ),
        }
    }
}

async fn graphql_post<Q, M, S>(
    State(schema): State<Schema<Q, M, S>>,
    Extension(viewer): Extension<Viewer>,
    Extension(meta): Extension<RequestMeta>,
    metrics: Option<Extension<Arc<SubgraphMetrics>>>,
    request: axum::extract::Request,
) -> Response
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    // No Draftr schema takes an upload, and a multipart body is spooled to files before
    // anything looks at it: refused unread.
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/")
        });
    if multipart {
        return refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::BadUserInput,
            "send GraphQL as application/json; uploads are not accepted",
        );
    }
    let request = match GraphQLRequest::<BodyRefused>::from_request(request, &()).await {
        Ok(request) => request,
        Err(refusal) => return refusal.into_response(),
    };
    let mut request = request.into_inner().data(viewer).data(meta);
    crate::telemetry::record_operation(&request);
    if let Some(Extension(metrics)) = metrics {
        // Where [`RequestMetrics`] finds it.
        request = request.data(metrics);
    }
    GraphQLResponse::from(schema.execute(request).await).into_response()
}

/// `POST /` runs GraphQL with the caller (from [`crate::http::identify`]) in the request data,
/// one operation per request; `GET /` shows GraphiQL where introspection is on.
pub fn routes<Q, M, S>(schema: Schema<Q, M, S>) -> Router
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    Router::new()
        .route(
            "/",
            get(graphql_get::<Q, M, S>).post(graphql_post::<Q, M, S>),
        )
        .with_state(schema)
}

/// What every subgraph serves: GraphQL at `/` with the caller identified, `/health`, `/ready`
/// (its database answers) and `/metrics` (Prometheus, from `metrics`: this app's own
/// registry), under the standard layers. `extra` adds a subgraph's own routes (auth's JWKS).
/// Every request is counted by route and status class, and every GraphQL request by
/// [`RequestMetrics`].
pub fn subgraph_app<Q, M, S>(
    schema: Schema<Q, M, S>,
    identify: crate::http::Identify,
    db: sea_orm::DatabaseConnection,
    extra: Router,
    metrics: Arc<SubgraphMetrics>,
) -> Router
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    metrics.register_schema(&schema.sdl());
    let graphql = routes(schema).layer(Extension(metrics.clone())).layer(
        axum::middleware::from_fn_with_state(Arc::new(identify), crate::http::identify),
    );
    let scraped = metrics.clone();
    let app = graphql
        .merge(extra)
        .merge(crate::http::health_routes(move || {
            let db = db.clone();
            async move { db.ping().await.map_err(|e| e.to_string()) }
        }))
        .route(
            "/metrics",
            get(move || {
                let metrics = scraped.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        metrics.scrape().await,
                    )
                }
            }),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            metrics.clone(),
            count_http,
        ))
        .fallback(move || {
            let metrics = metrics.clone();
            async move {
                metrics.record_http(UNMATCHED_ROUTE, StatusCode::NOT_FOUND.as_u16());
                StatusCode::NOT_FOUND
            }
        });
    crate::http::with_standard_layers(app)
}

/// Counts a matched request by its route pattern (never its raw path, which a client
/// chooses). A request that never finishes here (the timeout dropped it, or it panicked; the
/// outer layers answer 504 or 500) is counted as a 5xx.
async fn count_http(
    State(metrics): State<Arc<SubgraphMetrics>>,
    route: axum::extract::MatchedPath,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    struct Unfinished<'a> {
        metrics: &'a SubgraphMetrics,
        route: &'a str,
        done: bool,
    }
    impl Drop for Unfinished<'_> {
        fn drop(&mut self) {
            if !self.done {
                self.metrics
                    .record_http(self.route, StatusCode::INTERNAL_SERVER_ERROR.as_u16());
            }
        }
    }
    let mut guard = Unfinished {
        metrics: &metrics,
        route: route.as_str(),
        done: false,
    };
    let response = next.run(request).await;
    guard.done = true;
    metrics.record_http(route.as_str(), response.status().as_u16());
    response
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
