use std::sync::Arc;

use async_graphql::{Context, ID, Object};
use draftr_common::graphql::{request_meta, require_service_call, viewer};
use draftr_common::{ApiResult, Role};

use super::query::parse_id;
use super::types::{AuthPayload, LoginInput, RegisterInput, User};
use crate::service::AuthService;

pub struct Mutation;

fn service<'a>(ctx: &'a Context<'_>) -> &'a Arc<AuthService> {
    ctx.data_unchecked::<Arc<AuthService>>()
}

#[Object]
impl Mutation {
    /// Creates an account (always a GUEST) and signs it in.
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> ApiResult<AuthPayload> {
        Ok(service(ctx)
            .register(&input.email, &input.password, &input.display_name)
            .await?
            .into())
    }

    /// Signs in. Repeated failures are throttled per account and per address.
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> ApiResult<AuthPayload> {
        let ip = request_meta(ctx).and_then(|m| m.client_ip);
        Ok(service(ctx)
            .login(&input.email, &input.password, ip)
            .await?
            .into())
    }

    /// Trades a refresh token for a new pair; each refresh token works once, and reusing one
    /// ends its session.
    async fn refresh_token(
        &self,
        ctx: &Context<'_>,
        refresh_token: String,
    ) -> ApiResult<AuthPayload> {
        Ok(service(ctx).refresh(&refresh_token).await?.into())
    }

    /// Ends this session: its access token stops working on every subgraph at once.
    async fn logout(&self, ctx: &Context<'_>) -> ApiResult<bool> {
        let claims = viewer(ctx).require_user()?;
        service(ctx).logout(claims).await?;
        Ok(true)
    }

    /// ADMIN only.
    async fn set_user_role(&self, ctx: &Context<'_>, user_id: ID, role: Role) -> ApiResult<User> {
        let actor = viewer(ctx).require_admin()?;
        let user_id = parse_id("userId", &user_id)?;
        Ok(User::from_row(
            service(ctx).set_role(actor, user_id, role).await?,
        ))
    }

    /// Service only (catalog, when a user lists a property). Not part of the public API.
    #[graphql(inaccessible)]
    async fn promote_to_host(&self, ctx: &Context<'_>, user_id: ID) -> ApiResult<User> {
        require_service_call(ctx)?;
        let user_id = parse_id("userId", &user_id)?;
        Ok(User::from_row(service(ctx).promote_to_host(user_id).await?))
    }
}
