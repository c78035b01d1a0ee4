use draftr_common::db::Constraint;
use sea_orm::entity::prelude::*;

/// One account per (normalised) email: the unique index `users_email_key`.
pub const EMAIL_KEY: Constraint = Constraint {
    postgres: "users_email_key",
    sqlite: "users.email",
};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
    /// `GUEST`, `HOST` or `ADMIN` (see [`draftr_common::Role`]).
    pub role: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    pub fn role(&self) -> draftr_common::Role {
        // The column only ever holds values written from `Role::as_str`.
        draftr_common::Role::parse(&self.role).unwrap_or(draftr_common::Role::Guest)
    }
}
