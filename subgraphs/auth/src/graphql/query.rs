use std::sync::Arc;

use async_graphql::connection::Edge;
use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, ID, Object};
use draftr_common::graphql::{
    ConnectionFields, decode_cursor, encode_cursor, entity_id, page_size, viewer,
};
use draftr_common::{ApiError, ApiResult};
use uuid::Uuid;

use super::loaders::UserLoader;
use super::types::{User, UserConnection};
use crate::service::AuthService;

pub struct Query;

pub(crate) fn parse_id(field: &'static str, id: &ID) -> ApiResult<Uuid> {
    Uuid::parse_str(id.as_str())
        .map_err(|_| ApiError::bad_input(field, format!("{field} is not a valid id")))
}

async fn load_user(ctx: &Context<'_>, id: Uuid) -> ApiResult<Option<User>> {
    let loader = ctx.data_unchecked::<DataLoader<UserLoader>>();
    Ok(loader.load_one(id).await?.map(User::from_row))
}

#[Object]
impl Query {
    /// The signed-in user, or null when signed out.
    async fn me(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        match viewer(ctx).user()? {
            Some(claims) => load_user(ctx, claims.sub).await,
            None => Ok(None),
        }
    }

    /// A user's public profile.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<User>> {
        viewer(ctx).user()?;
        let id = parse_id("id", &id)?;
        load_user(ctx, id).await
    }

    /// All users in sign-up order. ADMIN only.
    #[graphql(complexity = "draftr_common::graphql::list_cost(first, child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<UserConnection> {
        viewer(ctx).require_admin()?;
        let limit = page_size(first)?;
        let after = match after {
            Some(cursor) => Some(Uuid::parse_str(&decode_cursor(&cursor)?).map_err(|_| {
                ApiError::bad_input("after", "after is not a cursor this API returned")
            })?),
            None => None,
        };
        let service = ctx.data_unchecked::<Arc<AuthService>>();
        let (rows, more, total) = service.users_page(after, limit).await?;
        let mut connection = UserConnection::with_additional_fields(
            after.is_some(),
            more,
            ConnectionFields { total_count: total },
        );
        connection.edges.extend(
            rows.into_iter()
                .map(|row| Edge::new(encode_cursor(&row.id.to_string()), User::from_row(row))),
        );
        Ok(connection)
    }

    /// Federation entity resolver: how other subgraphs' `User` references are completed.
    #[graphql(entity)]
    async fn find_user_by_id(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<User>> {
        viewer(ctx).user()?;
        let Some(id) = entity_id(&id) else {
            return Ok(None);
        };
        load_user(ctx, id).await
    }
}
