use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, ID, Object};
use draftr_common::graphql::{entity_id, page_size, require_service_call, viewer};
use draftr_common::{ApiError, ApiResult};
use uuid::Uuid;

use super::loaders::PropertyLoader;
use super::types::{
    Category, Money, Property, PropertyConnection, PropertyFilter, PropertyQuote, PropertySort,
    User, connection, parse_after, parse_id, wants_total,
};
use crate::domain::{self, PropertyStatus};
use crate::service::{CatalogService, Filter};

pub struct Query;

/// A property the caller may see, or nothing: someone else's draft does not exist for them.
async fn visible_property(ctx: &Context<'_>, id: Uuid) -> ApiResult<Option<Property>> {
    let me = viewer(ctx).user()?;
    let found = ctx
        .data_unchecked::<DataLoader<PropertyLoader>>()
        .load_one(id)
        .await?;
    Ok(found.filter(|p| p.visible_to(me)).map(Property))
}

#[Object]
impl Query {
    async fn property(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Property>> {
        visible_property(ctx, parse_id("id", &id)?).await
    }

    /// Published properties matching `filter`, in `sort` order (newest first by default).
    #[graphql(complexity = "draftr_common::graphql::list_cost(first, child_complexity)")]
    async fn properties(
        &self,
        ctx: &Context<'_>,
        filter: Option<PropertyFilter>,
        sort: Option<PropertySort>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<PropertyConnection> {
        viewer(ctx).user()?;
        let f = filter.unwrap_or_default();
        if let (Some(min), Some(max)) = (f.min_price, f.max_price)
            && min > max
        {
            return Err(ApiError::bad_input(
                "minPrice",
                "minPrice must not be above maxPrice",
            ));
        }
        if f.text.as_ref().is_some_and(|t| t.chars().count() > 200) {
            return Err(ApiError::bad_input(
                "text",
                "search text is too long (at most 200 characters)",
            ));
        }
        let available = match (f.available_from, f.available_to) {
            (None, None) => None,
            (Some(from), Some(to)) if from.0 < to.0 => Some((from.0, to.0)),
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_input(
                    "availableTo",
                    "availableTo must be after availableFrom",
                ));
            }
            _ => {
                return Err(ApiError::bad_input(
                    "availableFrom",
                    "give both availableFrom and availableTo",
                ));
            }
        };
        let filter = Filter {
            available,
            city: f.city,
            country: f.country,
            category_id: f
                .category_id
                .as_ref()
                .map(|id| parse_id("categoryId", id))
                .transpose()?,
            min_price: f.min_price.map(i64::from),
            max_price: f.max_price.map(i64::from),
            guests: f.guests,
            amenities: domain::amenities(&f.amenities.unwrap_or_default())?,
            text: f.text,
            host_id: None,
            statuses: vec![PropertyStatus::Published],
        };
        let limit = page_size(first)?;
        let after = parse_after(after)?;
        let service = ctx.data_unchecked::<Arc<CatalogService>>();
        let page = service
            .search(
                &filter,
                sort.unwrap_or_default().into(),
                after,
                limit,
                wants_total(ctx),
            )
            .await?;
        Ok(connection(page, after.is_some()))
    }

    /// Service only (reservations' booking saga): what a booking of this property costs and
    /// allows, whatever its status. Not part of the public API.
    #[graphql(inaccessible)]
    async fn property_quote(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<PropertyQuote>> {
        require_service_call(ctx)?;
        let id = parse_id("id", &id)?;
        let found = ctx
            .data_unchecked::<DataLoader<PropertyLoader>>()
            .load_one(id)
            .await?;
        Ok(found.map(|p| PropertyQuote {
            property_id: ID(p.row.id.to_string()),
            title: p.row.title.clone(),
            host_id: ID(p.row.host_id.to_string()),
            status: p.status(),
            nightly_rate: Money {
                amount: p.row.nightly_rate_amount as i32,
                currency: p.row.currency.clone(),
            },
            max_guests: p.row.max_guests,
            cancellation_policy: p.cancellation_policy(),
        }))
    }

    async fn categories(&self, ctx: &Context<'_>) -> ApiResult<Vec<Category>> {
        let service = ctx.data_unchecked::<Arc<CatalogService>>();
        Ok(service
            .categories()
            .await?
            .into_iter()
            .map(Category::from)
            .collect())
    }

    /// Federation: how other subgraphs' `Property` references are completed. Invisible
    /// listings resolve to null here too.
    #[graphql(entity)]
    async fn find_property_by_id(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Property>> {
        let Some(id) = entity_id(&id) else {
            return Ok(None);
        };
        visible_property(ctx, id).await
    }

    /// Federation: `User.properties` for users owned by auth.
    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> Option<User> {
        entity_id(&id).map(|id| User { id })
    }
}
