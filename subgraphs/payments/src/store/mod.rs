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

    draftr_common::test_on_both_backends!(each_constraint_is_recognised_by_its_name);
}
