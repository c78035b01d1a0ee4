//! sea-orm entities of the tables (the migrations have the columns' constraints).

pub mod reservations {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "reservations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub property_id: Uuid,
        pub property_title: String,
        pub guest_id: Uuid,
        pub host_id: Uuid,
        pub check_in: Date,
        pub check_out: Date,
        pub guests: i32,
        pub nights: i32,
        pub total_amount: i64,
        pub currency: String,
        pub cancellation_policy: String,
        pub status: String,
        pub idempotency_key: String,
        pub request_fingerprint: String,
        pub payment_method: String,
        pub payment_id: Option<Uuid>,
        pub captured: bool,
        pub compensation_pending: bool,
        pub refund_amount: Option<i64>,
        pub failure_code: Option<String>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub cancelled_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod outbox {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub kind: String,
        pub aggregate_id: Uuid,
        pub payload: String,
        pub created_at: DateTimeUtc,
        pub published_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod reviews {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "reviews")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub reservation_id: Uuid,
        pub property_id: Uuid,
        pub guest_id: Uuid,
        /// The stay's host, copied from the reservation: the one who may reply.
        pub host_id: Uuid,
        pub rating: i16,
        pub comment: String,
        pub created_at: DateTimeUtc,
        pub reply: Option<String>,
        pub replied_at: Option<DateTimeUtc>,
        /// Set by an admin's removal; such rows are never shown.
        pub removed_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod calendar_blocks {
    use sea_orm::entity::prelude::*;

    /// Nights `[starts_on, ends_on)` a host took off sale (see the migration for the rule that
    /// keeps them apart from bookings).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "calendar_blocks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub property_id: Uuid,
        /// The property's host when the block was made (from catalog).
        pub host_id: Uuid,
        pub starts_on: Date,
        /// Exclusive, like a check-out day.
        pub ends_on: Date,
        /// The host's own words; shown to the host and admins only, never in events.
        pub note: Option<String>,
        /// `MANUAL`, or `IMPORTED` (from a calendar feed: see `import_id`).
        pub source: String,
        /// The calendar import whose feed the block came from (`IMPORTED` blocks only).
        pub import_id: Option<Uuid>,
        /// The feed event's UID (unique per import), so a later sync can move or remove it.
        pub external_uid: Option<String>,
        /// Who made it: the host, or an admin.
        pub created_by: Uuid,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
