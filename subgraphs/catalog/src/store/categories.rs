use draftr_common::db::Constraint;
use sea_orm::entity::prelude::*;

/// Slugs are unique: the unique index `categories_slug_key`.
pub const SLUG_KEY: Constraint = Constraint {
    postgres: "categories_slug_key",
    sqlite: "categories.slug",
};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "categories")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    #[sea_orm(unique)]
    pub slug: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
