use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};
use draftr_common::graphql::{ConnectionFields, decode_cursor, encode_cursor, page_size, viewer};
use draftr_common::{ApiError, ApiResult};
use uuid::Uuid;

use crate::domain::{CancellationPolicy, PropertyStatus};
use crate::service::{self, CatalogService, Filter, Page, Position, Sort};

pub use draftr_common::graphql::Money;

#[derive(InputObject, Clone, Debug)]
pub struct MoneyInput {
    /// Minor units (cents).
    pub amount: i32,
    pub currency: String,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct Address {
    pub line1: String,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    /// ISO 3166 alpha-2.
    pub country: String,
}

#[derive(InputObject, Clone, Debug)]
pub struct AddressInput {
    pub line1: String,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: String,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct Category {
    pub id: ID,
    pub name: String,
    pub slug: String,
}

impl From<service::Category> for Category {
    fn from(c: service::Category) -> Self {
        Self {
            id: ID(c.id.to_string()),
            name: c.name,
            slug: c.slug,
        }
    }
}

/// A photo of a listing.
#[derive(SimpleObject, Clone, Debug)]
pub struct Photo {
    /// An absolute https URL, as normalised when it was set.
    pub url: String,
    pub caption: Option<String>,
}

impl From<service::Photo> for Photo {
    fn from(p: service::Photo) -> Self {
        Self {
            url: p.url,
            caption: p.caption,
        }
    }
}

/// A photo to set on a listing.
#[derive(InputObject, Clone, Debug)]
pub struct PhotoInput {
    /// An absolute https URL with a host and no user name or password, at most 2048
    /// characters; no URL twice in one list.
    pub url: String,
    /// At most 200 characters; blank means none.
    pub caption: Option<String>,
}

impl From<PhotoInput> for service::Photo {
    fn from(p: PhotoInput) -> Self {
        Self {
            url: p.url,
            caption: p.caption,
        }
    }
}

#[derive(InputObject)]
pub struct CreateCategoryInput {
    pub name: String,
    /// Made from the name when omitted.
    pub slug: Option<String>,
}

/// A place to stay.
pub struct Property(pub service::Property);

#[Object]
impl Property {
    async fn id(&self) -> ID {
        ID(self.0.row.id.to_string())
    }
    async fn title(&self) -> &str {
        &self.0.row.title
    }
    async fn description(&self) -> &str {
        &self.0.row.description
    }
    async fn category(&self) -> Option<Category> {
        self.0.category.clone().map(Category::from)
    }
    async fn address(&self) -> Address {
        let r = &self.0.row;
        Address {
            line1: r.line1.clone(),
            city: r.city.clone(),
            region: r.region.clone(),
            postal_code: r.postal_code.clone(),
            country: r.country.clone(),
        }
    }
    async fn nightly_rate(&self) -> Money {
        // Rates are validated to at most 10 000 000 minor units, well inside GraphQL's Int.
        Money {
            amount: self.0.row.nightly_rate_amount as i32,
            currency: self.0.row.currency.clone(),
        }
    }
    async fn max_guests(&self) -> i32 {
        self.0.row.max_guests
    }
    async fn bedrooms(&self) -> i32 {
        self.0.row.bedrooms
    }
    async fn amenities(&self) -> &[String] {
        &self.0.amenities
    }
    /// In the host's order; the first is the cover. At most 30.
    async fn photos(&self) -> ApiResult<Vec<Photo>> {
        Ok(self
            .0
            .photos()
            .await?
            .into_iter()
            .map(Photo::from)
            .collect())
    }
    /// The first of `photos`; null when there are none.
    async fn cover_photo(&self) -> ApiResult<Option<Photo>> {
        Ok(self.0.photos().await?.into_iter().next().map(Photo::from))
    }
    async fn cancellation_policy(&self) -> CancellationPolicy {
        self.0.cancellation_policy()
    }
    async fn status(&self) -> PropertyStatus {
        self.0.status()
    }
    /// The host, resolved by the auth subgraph through the router.
    async fn host(&self) -> User {
        User {
            id: self.0.row.host_id,
        }
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.row.created_at
    }
}

pub type PropertyConnection = Connection<String, Property, ConnectionFields, EmptyFields>;

pub fn connection(page: Page, after: bool) -> PropertyConnection {
    let mut c = PropertyConnection::with_additional_fields(
        after,
        page.has_next,
        ConnectionFields {
            total_count: page.total,
        },
    );
    c.edges.extend(page.items.into_iter().map(|p| {
        let cursor = encode_cursor(
            &Position {
                price: p.row.nightly_rate_amount,
                id: p.row.id,
            }
            .encode(),
        );
        Edge::new(cursor, Property(p))
    }));
    c
}

/// Whether the client selected `totalCount` on this connection (it costs a count query).
pub fn wants_total(ctx: &Context<'_>) -> bool {
    ctx.look_ahead().field("totalCount").exists()
}

pub fn parse_after(after: Option<String>) -> ApiResult<Option<Position>> {
    match after {
        None => Ok(None),
        Some(cursor) => Position::decode(&decode_cursor(&cursor)?)
            .map(Some)
            .ok_or_else(|| ApiError::bad_input("after", "after is not a cursor this API returned")),
    }
}

pub fn parse_id(field: &'static str, id: &ID) -> ApiResult<Uuid> {
    Uuid::parse_str(id.as_str())
        .map_err(|_| ApiError::bad_input(field, format!("{field} is not a valid id")))
}

/// A user, as far as the catalog knows one: the listings they host.
pub struct User {
    pub id: Uuid,
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }

    /// What this user hosts, newest first. Others see published listings only.
    #[graphql(complexity = "draftr_common::graphql::list_cost(first, child_complexity)")]
    async fn properties(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<PropertyConnection> {
        let me = viewer(ctx).user()?;
        let all = me.is_some_and(|c| c.is_admin() || c.sub == self.id);
        let statuses = if all {
            vec![]
        } else {
            vec![PropertyStatus::Published]
        };
        let filter = Filter {
            host_id: Some(self.id),
            statuses,
            ..Default::default()
        };
        let limit = page_size(first)?;
        let after = parse_after(after)?;
        let page = ctx
            .data_unchecked::<std::sync::Arc<CatalogService>>()
            .search(&filter, Sort::Newest, after, limit, wants_total(ctx))
            .await?;
        Ok(connection(page, after.is_some()))
    }
}

/// How search results are ordered.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum PropertySort {
    #[default]
    Newest,
    PriceAsc,
    PriceDesc,
}

impl From<PropertySort> for Sort {
    fn from(s: PropertySort) -> Self {
        match s {
            PropertySort::Newest => Sort::Newest,
            PropertySort::PriceAsc => Sort::PriceAsc,
            PropertySort::PriceDesc => Sort::PriceDesc,
        }
    }
}

/// Search filters; all given ones must hold.
#[derive(InputObject, Default)]
pub struct PropertyFilter {
    pub city: Option<String>,
    /// ISO 3166 alpha-2.
    pub country: Option<String>,
    pub category_id: Option<ID>,
    /// Nightly rate bounds in minor units.
    pub min_price: Option<i32>,
    pub max_price: Option<i32>,
    /// Properties that sleep at least this many.
    pub guests: Option<i32>,
    /// Properties that have all of these.
    pub amenities: Option<Vec<String>>,
    /// Words in the title or description.
    pub text: Option<String>,
    /// With `availableTo`: only properties free of bookings from this date (check-in)…
    pub available_from: Option<Date>,
    /// …to this date (check-out). Eventually consistent: booking still decides.
    pub available_to: Option<Date>,
}

pub use draftr_common::graphql::Date;

#[derive(InputObject)]
pub struct CreatePropertyInput {
    pub title: String,
    pub description: Option<String>,
    pub address: AddressInput,
    pub nightly_rate: MoneyInput,
    pub max_guests: i32,
    pub bedrooms: Option<i32>,
    pub amenities: Option<Vec<String>>,
    pub category_id: Option<ID>,
    pub cancellation_policy: Option<CancellationPolicy>,
    /// DRAFT (default) or PUBLISHED.
    pub status: Option<PropertyStatus>,
    /// In order, the first is the cover; at most 30.
    pub photos: Option<Vec<PhotoInput>>,
}

#[derive(InputObject)]
pub struct UpdatePropertyInput {
    pub title: Option<String>,
    pub description: Option<String>,
    /// Replaces the whole address.
    pub address: Option<AddressInput>,
    pub nightly_rate: Option<MoneyInput>,
    pub max_guests: Option<i32>,
    pub bedrooms: Option<i32>,
    /// Replaces the whole list.
    pub amenities: Option<Vec<String>>,
    /// null removes the category.
    pub category_id: MaybeUndefined<ID>,
    pub cancellation_policy: Option<CancellationPolicy>,
    pub status: Option<PropertyStatus>,
    /// Replaces the whole ordered list (send it in a new order to reorder; [] removes every
    /// photo); omitted or null leaves the photos as they are.
    pub photos: Option<Vec<PhotoInput>>,
}

/// What a booking needs to know of a property (service only).
#[derive(SimpleObject)]
#[graphql(inaccessible)]
pub struct PropertyQuote {
    pub property_id: ID,
    /// Kept with the reservation, so emails and receipts name what was booked.
    pub title: String,
    pub host_id: ID,
    pub status: PropertyStatus,
    pub nightly_rate: Money,
    pub max_guests: i32,
    pub cancellation_policy: CancellationPolicy,
}
