//! Tables of the payments subgraph (sea-orm entities) and the database's names for their
//! constraints (see the migration). Queries live in [`crate::service`].

pub mod payments;
pub mod refunds;
pub mod webhook_events;

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use draftr_common::db::{Constraint, violates};
    use draftr_common::testing::{Backend, TestDatabase};
    use sea_orm::{ActiveModelTrait, DbErr, Set};
    use uuid::Uuid;

    use super::*;

    const ALL: [Constraint; 3] = [
        payments::CHARGE_KEY,
        refunds::PAYMENT_REFUND_KEY,
        webhook_events::ID_KEY,
    ];

    /// `err` is `constraint` refusing the write, and none of the others.
    fn only(err: &DbErr, constraint: Constraint) {
        for other in ALL {
            assert_eq!(
                violates(err, other),
                other == constraint,
                "{other:?}: {err}"
            );
        }
    }

    fn payment(reservation_id: Uuid) -> payments::ActiveModel {
        let now = Utc::now();
        payments::ActiveModel {
            id: Set(Uuid::now_v7()),
            charge_id: Set(reservation_id),
            reservation_id: Set(reservation_id),
            guest_id: Set(Uuid::now_v7()),
            host_id: Set(Uuid::now_v7()),
            amount: Set(1_000),
            currency: Set("EUR".into()),
            refunded: Set(0),
            status: Set("CAPTURED".into()),
            provider: Set("simulated".into()),
            provider_ref: Set(None),
            failure_code: Set(None),
            failure_message: Set(None),
            attempts: Set(1),
            attempted_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
    }

    fn refund(payment_id: Uuid) -> refunds::ActiveModel {
        refunds::ActiveModel {
            id: Set(Uuid::now_v7()),
            payment_id: Set(payment_id),
            refund_key: Set("cancel".into()),
            amount: Set(100),
            provider_ref: Set("re_1".into()),
            created_at: Set(Utc::now()),
        }
    }

    fn webhook_event(id: &str) -> webhook_events::ActiveModel {
        webhook_events::ActiveModel {
            id: Set(id.into()),
            kind: Set("payment_intent.succeeded".into()),
            received_at: Set(Utc::now()),
        }
    }

    /// The names the service matches are the ones the migrations give the constraints.
    async fn each_constraint_is_recognised_by_its_name(backend: Backend) {
        let test = TestDatabase::new(backend).await;
        let db = draftr_common::db::connect(&test.settings).await.unwrap();
        crate::app::migrate(&db).await.unwrap();

        let reservation = Uuid::now_v7();
        let first = payment(reservation).insert(&db).await.unwrap();
        let err = payment(reservation).insert(&db).await.unwrap_err();
        only(&err, payments::CHARGE_KEY);

        refund(first.id).insert(&db).await.unwrap();
        let err = refund(first.id).insert(&db).await.unwrap_err();
        only(&err, refunds::PAYMENT_REFUND_KEY);

        webhook_event("evt_1").insert(&db).await.unwrap();
        let err = webhook_event("evt_1").insert(&db).await.unwrap_err();
        only(&err, webhook_events::ID_KEY);
    }

    /// A payment and its refund written by the schema before charges (one payment per
    /// reservation, one refund per payment) read back after the charges migration as the
    /// booking's own payment and a cancellation's refund; the new keys then allow a change's
    /// charge and further refunds of the same payment. Undoing the migration is refused once
    /// it would lose a change's charge.
    async fn payments_and_refunds_survive_the_charges_migration(backend: Backend) {
        use draftr_payments_migration::{Alias, MigratorTrait, Query};
        use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

        let test = TestDatabase::new(backend).await;
        let db = draftr_common::db::connect(&test.settings).await.unwrap();
        // Up to m20261201_000001_payment_attempts, the schema before charges.
        draftr_payments_migration::Migrator::up(&db, Some(2))
            .await
            .unwrap();
        let (payment_id, reservation, refund_id) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let now = Utc::now();
        let old_payment = Query::insert()
            .into_table(Alias::new("payments"))
            .columns(
                [
                    "id",
                    "reservation_id",
                    "guest_id",
                    "host_id",
                    "amount",
                    "currency",
                    "refunded",
                    "status",
                    "provider",
                    "provider_ref",
                    "attempts",
                    "created_at",
                    "updated_at",
                ]
                .map(Alias::new),
            )
            .values_panic([
                payment_id.into(),
                reservation.into(),
                Uuid::now_v7().into(),
                Uuid::now_v7().into(),
                30_000i64.into(),
                "EUR".into(),
                12_000i64.into(),
                "PARTIALLY_REFUNDED".into(),
                "simulated".into(),
                "pi_sim_1".into(),
                1i32.into(),
                now.into(),
                now.into(),
            ])
            .to_owned();
        let old_refund = Query::insert()
            .into_table(Alias::new("refunds"))
            .columns(["id", "payment_id", "amount", "provider_ref", "created_at"].map(Alias::new))
            .values_panic([
                refund_id.into(),
                payment_id.into(),
                12_000i64.into(),
                "re_sim_2".into(),
                now.into(),
            ])
            .to_owned();
        let backend_of_db = db.get_database_backend();
        db.execute_raw(backend_of_db.build(&old_payment))
            .await
            .unwrap();
        db.execute_raw(backend_of_db.build(&old_refund))
            .await
            .unwrap();

        crate::app::migrate(&db).await.unwrap();

        let migrated = payments::Entity::find_by_id(payment_id)
            .one(&db)
            .await
            .unwrap()
            .expect("the payment survives");
        assert_eq!(
            (migrated.charge_id, migrated.reservation_id),
            (reservation, reservation)
        );
        assert_eq!(migrated.purpose(), crate::domain::PaymentPurpose::Booking);
        assert_eq!((migrated.amount, migrated.refunded), (30_000, 12_000));
        assert_eq!(
            migrated.status().unwrap(),
            crate::domain::PaymentStatus::PartiallyRefunded
        );
        assert_eq!(migrated.provider_ref.as_deref(), Some("pi_sim_1"));
        assert_eq!(migrated.attempts, 1);
        let found = payments::Entity::find()
            .filter(payments::Column::ReservationId.eq(reservation))
            .all(&db)
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "found by reservation");
        let recorded = refunds::Entity::find_by_id(refund_id)
            .one(&db)
            .await
            .unwrap()
            .expect("the refund survives");
        assert_eq!(
            (
                recorded.payment_id,
                recorded.refund_key.as_str(),
                recorded.amount,
                recorded.provider_ref.as_str()
            ),
            (payment_id, "cancel", 12_000, "re_sim_2")
        );

        // The new keys: another refund of the same payment under another key, a change's
        // charge of the same reservation; the same key twice is still refused.
        let mut again = refund(payment_id);
        again.refund_key = Set("change-1".into());
        again.insert(&db).await.unwrap();
        let err = refund(payment_id).insert(&db).await.unwrap_err();
        only(&err, refunds::PAYMENT_REFUND_KEY);
        assert_eq!(
            payments::Entity::find_by_id(payment_id)
                .one(&db)
                .await
                .unwrap()
                .unwrap()
                .refunded,
            12_000,
            "the check still holds per payment"
        );
        let mut change = payment(reservation);
        change.charge_id = Set(Uuid::now_v7());
        change.insert(&db).await.unwrap();
        let err = draftr_payments_migration::Migrator::down(&db, Some(1))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("cannot undo payment charges"),
            "{err}"
        );
    }

    draftr_common::test_on_both_backends!(
        each_constraint_is_recognised_by_its_name,
        payments_and_refunds_survive_the_charges_migration,
    );
}
