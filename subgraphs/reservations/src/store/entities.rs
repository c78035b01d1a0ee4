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
        /// The check-in the cancellation policy counts notice from, once a change moved the
        /// stay: the earliest it has had. `None`: `check_in` (see [`Model::notice_from`]).
        pub policy_check_in: Option<Date>,
    }

    impl Model {
        /// The check-in a refund's notice is counted from (the policy's clock): the earliest
        /// check-in this stay has had, so moving a stay later cannot make a late cancellation
        /// an early one.
        pub fn notice_from(&self) -> Date {
            // A change stores the earlier of the two already (see `store::changes::apply`).
            self.policy_check_in.unwrap_or(self.check_in)
        }
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

pub mod reservation_changes {
    use sea_orm::entity::prelude::*;

    /// A change of a confirmed stay (see the migration for what each column records).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "reservation_changes")]
    pub struct Model {
        /// Also the charge id of the change's extra payment, if it has one.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub reservation_id: Uuid,
        pub requested_by: Uuid,
        pub idempotency_key: String,
        pub request_fingerprint: String,
        pub from_check_in: Date,
        pub from_check_out: Date,
        pub from_guests: i32,
        pub from_total: i64,
        pub to_check_in: Date,
        pub to_check_out: Date,
        pub to_guests: i32,
        pub to_nights: i32,
        pub to_total: i64,
        pub payment_method: String,
        /// [`crate::domain::ChangeStatus::as_str`].
        pub status: String,
        /// [`crate::domain::ChangeFailure::as_str`], when FAILED.
        pub failure_code: Option<String>,
        pub payment_id: Option<Uuid>,
        pub captured: bool,
        pub refund_amount: Option<i64>,
        pub compensation_pending: bool,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    impl Model {
        /// What the change costs on top of what was paid (negative: the total went down).
        pub fn difference(&self) -> i64 {
            self.to_total - self.from_total
        }
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
