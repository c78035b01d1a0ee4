use sea_orm::entity::prelude::*;

/// A listing's photo at `position` (0 is the cover). The whole list is replaced at once, so
/// positions are always 0, 1, 2, … without gaps.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "property_photos")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub property_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub position: i32,
    pub url: String,
    pub caption: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
