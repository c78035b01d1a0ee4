//! What auth does, independent of GraphQL: register, sign in, rotate, sign out, roles.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use draftr_common::db::violates;
use draftr_common::jwt::revoked_session_key;
use draftr_common::kv::KvStore;
use draftr_common::{Claims, Role};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::config::ThrottleSettings;
use crate::domain::{DisplayName, Email, MAX_PASSWORD_CHARS, Password};
use crate::error::Error;
use crate::passwords::Passwords;
use crate::store::{refresh_tokens, users};
use crate::tokens::{TokenIssuer, hash_refresh_token, new_refresh_token};

pub use crate::store::users::Model as User;

/// What a successful sign-in hands the client.
#[derive(Debug, Clone)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    pub user: User,
}

pub struct AuthService {
    db: DatabaseConnection,
    passwords: Passwords,
    tokens: TokenIssuer,
    kv: Arc<dyn KvStore>,
    throttle: ThrottleSettings,
}

impl AuthService {
    pub(crate) fn new(
        db: DatabaseConnection,
        passwords: Passwords,
        tokens: TokenIssuer,
        kv: Arc<dyn KvStore>,
        throttle: ThrottleSettings,
    ) -> Self {
        Self {
            db,
            passwords,
            tokens,
            kv,
            throttle,
        }
    }

    /// Creates a GUEST account and signs it in. The role is not the client's to choose.
    pub async fn register(
        &self,
        email: &str,
        password: &str,
        display_name: &str,
    ) -> Result<Session, Error> {
        let user = self
            .create_user(email, password, display_name, Role::Guest)
            .await?;
        self.start_session(user).await
    }

    async fn create_user(
        &self,
        email: &str,
        password: &str,
        display_name: &str,
        role: Role,
    ) -> Result<User, Error> {
        let email = Email::parse(email)?;
        let display_name = DisplayName::parse(display_name)?;
        let password = Password::parse(password, &email)?;
        if self.find_by_email(&email).await?.is_some() {
            return Err(Error::EmailTaken);
        }
        let hash = self.passwords.hash(password.expose()).await?;
        let now = Utc::now();
        let user = users::ActiveModel {
            id: Set(Uuid::now_v7()),
            email: Set(email.as_str().to_owned()),
            display_name: Set(display_name.as_str().to_owned()),
            password_hash: Set(hash),
            role: Set(role.as_str().to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
        };
        // Two registrations racing past the check above meet the unique index here.
        match user.insert(&self.db).await {
            Ok(user) => {
                tracing::info!(user.id = %user.id, user.role = %user.role, "user registered");
                Ok(user)
            }
            Err(err) if violates(&err, users::EMAIL_KEY) => Err(Error::EmailTaken),
            Err(err) => Err(err.into()),
        }
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, Error> {
        Ok(users::Entity::find()
            .filter(users::Column::Email.eq(email.as_str()))
            .one(&self.db)
            .await?)
    }

    /// Signs in. Unknown email and wrong password look the same (message and timing), and
    /// repeated failures per account and per address end in `RATE_LIMITED` — whether or not
    /// the account exists, so the limit reveals nothing either.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<Session, Error> {
        if password.chars().count() > MAX_PASSWORD_CHARS {
            return Err(Error::BadCredentials);
        }
        let email = Email::parse(email).map_err(|_| Error::BadCredentials)?;
        let t = &self.throttle;
        let account = email.as_str();
        let address = client_ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        let pair_key = format!("login:pair:{account}:{address}");
        let anywhere_key = format!("login:account:{account}");
        let ip_key = client_ip.map(|ip| format!("login:ip:{ip}"));
        let known_key = format!("login:known:{account}:{address}");
        let window = Duration::from_secs(t.window_secs);
        let minutes = t.window_secs.div_ceil(60);

        // Each attempt is counted first and decided on the new count (increment, then
        // decide): of N concurrent guesses at most the limit get to the password check. What
        // turns out not to be a failure is given back afterwards.
        if self.kv.incr_in_window(&pair_key, window).await? > t.max_failures_per_account {
            tracing::warn!(reason = "account and address", "sign-in throttled");
            return Err(Error::RateLimited { minutes });
        }
        if let Some(ip_key) = &ip_key
            && self.kv.incr_in_window(ip_key, window).await? > t.max_failures_per_ip
        {
            self.kv.release(&pair_key).await?;
            tracing::warn!(reason = "address", "sign-in throttled");
            return Err(Error::RateLimited { minutes });
        }
        let anywhere = self
            .kv
            .incr_in_window(&anywhere_key, Duration::from_secs(t.account_window_secs))
            .await?;
        if anywhere > t.max_failures_per_account_anywhere && !self.kv.has_flag(&known_key).await? {
            // Under attack from many addresses: one attempt per slowdown from a new address.
            let slot = format!("login:slot:{account}");
            let slowdown = Duration::from_secs(t.slowdown_secs);
            if self.kv.incr_in_window(&slot, slowdown).await? > 1 {
                self.release_attempt(&pair_key, ip_key.as_deref(), &anywhere_key)
                    .await?;
                tracing::warn!(reason = "account under attack", "sign-in throttled");
                return Err(Error::RateLimited {
                    minutes: t.slowdown_secs.div_ceil(60),
                });
            }
        }

        let user = self.find_by_email(&email).await?;
        let verified = self
            .passwords
            .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
            .await;
        let ok = match verified {
            Ok(ok) => ok,
            Err(e) => {
                // Not checked (busy, or broken): not a failure of the caller's.
                self.release_attempt(&pair_key, ip_key.as_deref(), &anywhere_key)
                    .await?;
                return Err(e.into());
            }
        };
        match user {
            Some(user) if ok => {
                self.release_attempt(&pair_key, ip_key.as_deref(), &anywhere_key)
                    .await?;
                self.kv.delete(&pair_key).await?;
                self.kv
                    .set_flag(
                        &known_key,
                        Duration::from_secs(t.known_address_days * 24 * 3600),
                    )
                    .await?;
                tracing::info!(user.id = %user.id, "user signed in");
                self.start_session(user).await
            }
            _ => {
                tracing::info!("sign-in failed");
                Err(Error::BadCredentials)
            }
        }
    }

    /// Gives back an attempt's counts (it was not a failure).
    async fn release_attempt(
        &self,
        pair_key: &str,
        ip_key: Option<&str>,
        anywhere_key: &str,
    ) -> Result<(), Error> {
        self.kv.release(pair_key).await?;
        if let Some(ip_key) = ip_key {
            self.kv.release(ip_key).await?;
        }
        self.kv.release(anywhere_key).await?;
        Ok(())
    }

    /// A new session: a refresh-token family whose id is also the access token's `sid`.
    async fn start_session(&self, user: User) -> Result<Session, Error> {
        let family = Uuid::now_v7();
        let refresh_token = self.insert_refresh_token(&self.db, family, user.id).await?;
        self.session(user, family, refresh_token)
    }

    fn session(&self, user: User, family: Uuid, refresh_token: String) -> Result<Session, Error> {
        let access_token = self.tokens.access_token(user.id, family, user.role())?;
        Ok(Session {
            access_token,
            refresh_token,
            expires_in: self.tokens.access_ttl_secs(),
            user,
        })
    }

    async fn insert_refresh_token(
        &self,
        db: &impl ConnectionTrait,
        family: Uuid,
        user: Uuid,
    ) -> Result<String, Error> {
        let (token, hash) = new_refresh_token();
        let now = Utc::now();
        refresh_tokens::ActiveModel {
            id: Set(Uuid::now_v7()),
            family_id: Set(family),
            user_id: Set(user),
            token_hash: Set(hash),
            expires_at: Set(now + self.tokens.refresh_ttl()),
            created_at: Set(now),
            used_at: Set(None),
            revoked_at: Set(None),
        }
        .insert(db)
        .await?;
        Ok(token)
    }

    /// Trades a refresh token for a new pair. Each refresh token works once: presenting a
    /// spent one means it was copied, so the whole family (the session) is revoked.
    pub async fn refresh(&self, token: &str) -> Result<Session, Error> {
        const NOT_VALID: Error =
            Error::SessionInvalid("this refresh token is not valid; sign in again");
        if token.len() > 128 {
            return Err(NOT_VALID);
        }
        let hash = hash_refresh_token(token);
        let row = refresh_tokens::Entity::find()
            .filter(refresh_tokens::Column::TokenHash.eq(hash))
            .one(&self.db)
            .await?
            .ok_or(NOT_VALID)?;
        if row.revoked_at.is_some() || row.expires_at <= Utc::now() {
            return Err(NOT_VALID);
        }
        if row.used_at.is_some() {
            return self.reuse_detected(&row).await;
        }

        let txn = self.db.begin().await?;
        // The `used_at IS NULL` guard makes two concurrent uses of one token a detected reuse
        // rather than two valid rotations.
        let spent = refresh_tokens::Entity::update_many()
            .col_expr(refresh_tokens::Column::UsedAt, Expr::value(Utc::now()))
            .filter(refresh_tokens::Column::Id.eq(row.id))
            .filter(refresh_tokens::Column::UsedAt.is_null())
            .filter(refresh_tokens::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        if spent.rows_affected != 1 {
            txn.rollback().await?;
            return self.reuse_detected(&row).await;
        }
        let user = users::Entity::find_by_id(row.user_id)
            .one(&txn)
            .await?
            .ok_or(NOT_VALID)?;
        let next = self
            .insert_refresh_token(&txn, row.family_id, user.id)
            .await?;
        txn.commit().await?;
        self.session(user, row.family_id, next)
    }

    async fn reuse_detected(&self, row: &refresh_tokens::Model) -> Result<Session, Error> {
        tracing::warn!(user.id = %row.user_id, session.id = %row.family_id, "refresh token reused; revoking the session");
        self.revoke_family(row.family_id).await?;
        Err(Error::SessionInvalid(
            "this refresh token was already used; for your safety the session has been ended, sign in again",
        ))
    }

    /// Ends a session everywhere: its refresh tokens stop working here, and its access tokens
    /// stop working on every subgraph (they consult the shared revocation list).
    pub async fn revoke_family(&self, family: Uuid) -> Result<(), Error> {
        refresh_tokens::Entity::update_many()
            .col_expr(refresh_tokens::Column::RevokedAt, Expr::value(Utc::now()))
            .filter(refresh_tokens::Column::FamilyId.eq(family))
            .filter(refresh_tokens::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        // Remembered a little longer than any access token of the session can live.
        let ttl = Duration::from_secs(self.tokens.access_ttl_secs() + 60);
        self.kv.set_flag(&revoked_session_key(family), ttl).await?;
        Ok(())
    }

    pub async fn logout(&self, claims: &Claims) -> Result<(), Error> {
        self.revoke_family(claims.sid).await?;
        tracing::info!(user.id = %claims.sub, session.id = %claims.sid, "user signed out");
        Ok(())
    }

    /// ADMIN only (checked by the caller).
    pub async fn set_role(&self, actor: &Claims, user_id: Uuid, role: Role) -> Result<User, Error> {
        if actor.sub == user_id {
            return Err(Error::invalid(
                "userId",
                "you cannot change your own role; ask another administrator",
            ));
        }
        let user = users::Entity::find_by_id(user_id)
            .one(&self.db)
            .await?
            .ok_or(Error::UserNotFound)?;
        let previous = user.role();
        let user = self.change_role(user, role).await?;
        tracing::info!(user.id = %user.id, actor.id = %actor.sub, from = previous.as_str(), to = role.as_str(), "role changed");
        Ok(user)
    }

    /// Taking privileges away ends the user's sessions, since their access tokens still carry
    /// the old role.
    async fn change_role(&self, user: User, role: Role) -> Result<User, Error> {
        let previous = user.role();
        let mut active: users::ActiveModel = user.into();
        active.role = Set(role.as_str().to_owned());
        active.updated_at = Set(Utc::now());
        let user = active.update(&self.db).await?;
        if role.rank() < previous.rank() {
            self.revoke_all_sessions(user.id).await?;
        }
        Ok(user)
    }

    /// Service call from catalog when a user lists a property: a GUEST becomes a HOST; a HOST
    /// or ADMIN keeps their role. Idempotent, so catalog may retry freely.
    pub async fn promote_to_host(&self, user_id: Uuid) -> Result<User, Error> {
        let user = users::Entity::find_by_id(user_id)
            .one(&self.db)
            .await?
            .ok_or(Error::UserNotFound)?;
        if user.role() != Role::Guest {
            return Ok(user);
        }
        let user = self.change_role(user, Role::Host).await?;
        tracing::info!(user.id = %user.id, "user became a host");
        Ok(user)
    }

    async fn revoke_all_sessions(&self, user_id: Uuid) -> Result<(), Error> {
        let families: Vec<Uuid> = refresh_tokens::Entity::find()
            .select_only()
            .column(refresh_tokens::Column::FamilyId)
            .distinct()
            .filter(refresh_tokens::Column::UserId.eq(user_id))
            .filter(refresh_tokens::Column::RevokedAt.is_null())
            .into_tuple()
            .all(&self.db)
            .await?;
        for family in families {
            self.revoke_family(family).await?;
        }
        Ok(())
    }

    /// For the CLI's `admin bootstrap` and the embedded demo: creates the account with `role`,
    /// or, if the email exists, sets its role (the password is then left unchanged).
    pub async fn ensure_user(
        &self,
        email: &str,
        password: &str,
        display_name: &str,
        role: Role,
    ) -> Result<User, Error> {
        let parsed = Email::parse(email)?;
        match self.find_by_email(&parsed).await? {
            Some(user) if user.role() == role => Ok(user),
            Some(user) => self.change_role(user, role).await,
            None => self.create_user(email, password, display_name, role).await,
        }
    }

    pub async fn users_by_ids(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, User>, sea_orm::DbErr> {
        let rows = users::Entity::find()
            .filter(users::Column::Id.is_in(ids.iter().copied()))
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(|u| (u.id, u)).collect())
    }

    /// One page of users in id order (ids are UUIDv7, so that is sign-up order), the page
    /// after `after`; returns the page, whether more follow, and the total.
    pub async fn users_page(
        &self,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<(Vec<User>, bool, u64), Error> {
        let mut query = users::Entity::find().order_by_asc(users::Column::Id);
        if let Some(after) = after {
            query = query.filter(users::Column::Id.gt(after));
        }
        let mut rows = query.limit(limit + 1).all(&self.db).await?;
        let more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let total = users::Entity::find().count(&self.db).await?;
        Ok((rows, more, total))
    }
}
