use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "booked_stays")]
pub struct Model {
    /// The reservation's id, or a host calendar block's (its nights are taken the same way).
    #[sea_orm(primary_key, auto_increment = false)]
    pub reservation_id: Uuid,
    pub property_id: Uuid,
    pub check_in: Date,
    pub check_out: Date,
    pub active: bool,
    /// When the event that set this row happened: an older event never overwrites a newer one.
    pub event_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
