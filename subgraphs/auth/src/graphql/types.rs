use async_graphql::{ComplexObject, Context, ID, InputObject, SimpleObject};
use chrono::{DateTime, Utc};
use draftr_common::graphql::{ConnectionFields, viewer};
use draftr_common::{ApiError, ApiResult, Role};

use crate::service::{Session, User as UserRow};

/// Someone with an account.
#[derive(SimpleObject, Clone)]
#[graphql(complex, name = "User")]
pub struct User {
    pub id: ID,
    /// How the user is shown to others.
    pub display_name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    #[graphql(skip)]
    email: String,
    /// Set when the object is handed to the account's owner outside a signed-in request
    /// (the payload of `register`, `login` and `refreshToken`).
    #[graphql(skip)]
    owner_view: bool,
}

#[ComplexObject]
impl User {
    /// Private: visible to the user and to administrators only (and to Draftr's own services,
    /// which send the user's booking emails). Anyone else gets null here, with a FORBIDDEN
    /// (or UNAUTHENTICATED) error for this field alone.
    // Nullable so that a refusal nulls this field only (its error is still reported), not the
    // user and everything above it: a page of properties asking for `host { email }` stays.
    async fn email(&self, ctx: &Context<'_>) -> ApiResult<Option<&str>> {
        if self.owner_view
            || draftr_common::graphql::request_meta(ctx).is_some_and(|m| m.service_call)
        {
            return Ok(Some(self.email.as_str()));
        }
        match viewer(ctx).user()? {
            Some(c) if c.is_admin() || c.sub.to_string() == self.id.as_str() => {
                Ok(Some(self.email.as_str()))
            }
            Some(_) => Err(ApiError::forbidden(
                "only the user and administrators can see an email address",
            )),
            None => Err(ApiError::unauthenticated("sign in to see email addresses")),
        }
    }
}

impl User {
    pub fn from_row(row: UserRow) -> Self {
        Self {
            id: ID(row.id.to_string()),
            role: row.role(),
            display_name: row.display_name,
            created_at: row.created_at,
            email: row.email,
            owner_view: false,
        }
    }

    fn for_owner(row: UserRow) -> Self {
        Self {
            owner_view: true,
            ..Self::from_row(row)
        }
    }
}

/// A signed-in session.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// Send as `Authorization: Bearer <accessToken>`; valid for `expiresIn` seconds.
    pub access_token: String,
    /// Trade for a new pair with `refreshToken` before the access token expires. Works once.
    pub refresh_token: String,
    pub expires_in: u64,
    pub user: User,
}

impl From<Session> for AuthPayload {
    fn from(s: Session) -> Self {
        Self {
            access_token: s.access_token,
            refresh_token: s.refresh_token,
            expires_in: s.expires_in,
            user: User::for_owner(s.user),
        }
    }
}

#[derive(InputObject)]
pub struct RegisterInput {
    pub email: String,
    /// At least 10 characters; a few words make a good one.
    pub password: String,
    pub display_name: String,
}

#[derive(InputObject)]
pub struct LoginInput {
    pub email: String,
    pub password: String,
}

pub type UserConnection = async_graphql::connection::Connection<
    String,
    User,
    ConnectionFields,
    async_graphql::connection::EmptyFields,
>;
