use std::sync::Arc;

use async_graphql::{Context, ID, MaybeUndefined, Object};
use draftr_common::ApiResult;
use draftr_common::Role;
use draftr_common::graphql::{request_meta, viewer};

use super::types::{
    Category, CreateCategoryInput, CreatePropertyInput, Property, UpdatePropertyInput, parse_id,
};
use crate::clients::AuthClient;
use crate::service::{CatalogService, ListingInput};

pub struct Mutation;

fn service<'a>(ctx: &'a Context<'_>) -> &'a Arc<CatalogService> {
    ctx.data_unchecked::<Arc<CatalogService>>()
}

#[Object]
impl Mutation {
    /// Lists a property; the caller is its host.
    async fn create_property(
        &self,
        ctx: &Context<'_>,
        input: CreatePropertyInput,
    ) -> ApiResult<Property> {
        let host = viewer(ctx).require_user()?;
        let listing = ListingInput {
            title: Some(input.title),
            description: input.description,
            line1: Some(input.address.line1),
            city: Some(input.address.city),
            region: Some(input.address.region),
            postal_code: Some(input.address.postal_code),
            country: Some(input.address.country),
            nightly_rate: Some((
                input.nightly_rate.amount.into(),
                input.nightly_rate.currency,
            )),
            max_guests: Some(input.max_guests),
            bedrooms: input.bedrooms,
            amenities: input.amenities,
            category_id: Some(
                input
                    .category_id
                    .as_ref()
                    .map(|id| parse_id("categoryId", id))
                    .transpose()?,
            ),
            cancellation_policy: input.cancellation_policy,
            status: input.status,
            photos: input
                .photos
                .map(|p| p.into_iter().map(Into::into).collect()),
        };
        let property = service(ctx).create(host.sub, listing).await?;
        if host.role == Role::Guest {
            let request_id = request_meta(ctx)
                .map(|m| m.request_id.as_str())
                .unwrap_or_default();
            if let Err(err) = ctx
                .data_unchecked::<Arc<AuthClient>>()
                .promote_to_host(host.sub, request_id)
                .await
            {
                // The listing stands; the next one retries (see `crate::clients`).
                tracing::error!(user.id = %host.sub, error = %err, "could not make the lister a host");
            }
        }
        Ok(Property(property))
    }

    /// Its host or an ADMIN.
    async fn update_property(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdatePropertyInput,
    ) -> ApiResult<Property> {
        let actor = viewer(ctx).require_user()?;
        let id = parse_id("id", &id)?;
        let category_id = match &input.category_id {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(v) => Some(Some(parse_id("categoryId", v)?)),
        };
        let (line1, city, region, postal_code, country) = match input.address {
            Some(a) => (
                Some(a.line1),
                Some(a.city),
                Some(a.region),
                Some(a.postal_code),
                Some(a.country),
            ),
            None => (None, None, None, None, None),
        };
        let listing = ListingInput {
            title: input.title,
            description: input.description,
            line1,
            city,
            region,
            postal_code,
            country,
            nightly_rate: input.nightly_rate.map(|m| (m.amount.into(), m.currency)),
            max_guests: input.max_guests,
            bedrooms: input.bedrooms,
            amenities: input.amenities,
            category_id,
            cancellation_policy: input.cancellation_policy,
            status: input.status,
            photos: input
                .photos
                .map(|p| p.into_iter().map(Into::into).collect()),
        };
        Ok(Property(service(ctx).update(actor, id, listing).await?))
    }

    /// ADMIN only.
    async fn delete_property(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        viewer(ctx).require_admin()?;
        let id = parse_id("id", &id)?;
        if service(ctx).delete(id).await? {
            Ok(true)
        } else {
            Err(crate::error::Error::PropertyNotFound.into())
        }
    }

    /// ADMIN only.
    async fn create_category(
        &self,
        ctx: &Context<'_>,
        input: CreateCategoryInput,
    ) -> ApiResult<Category> {
        viewer(ctx).require_admin()?;
        Ok(service(ctx)
            .create_category(&input.name, input.slug.as_deref())
            .await?
            .into())
    }
}
