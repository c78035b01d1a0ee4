//! Tables of the auth subgraph (sea-orm entities). Queries live in [`crate::service`].

pub mod refresh_tokens;
pub mod users;

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use draftr_common::db::violates;
    use draftr_common::testing::{Backend, TestDatabase};
    use sea_orm::{ActiveModelTrait, Set};
    use uuid::Uuid;

    use super::users;

    fn user(id: Uuid, email: &str) -> users::ActiveModel {
        let now = Utc::now();
        users::ActiveModel {
            id: Set(id),
            email: Set(email.into()),
            display_name: Set("Ann".into()),
            password_hash: Set("x".into()),
            role: Set("GUEST".into()),
            created_at: Set(now),
            updated_at: Set(now),
        }
    }

    /// The name the service matches is the one the migration gives the email's unique index,
    /// and another unique rule of the table (its primary key) is not mistaken for it.
    async fn a_taken_email_is_recognised_by_its_constraint(backend: Backend) {
        let test = TestDatabase::new(backend).await;
        let db = draftr_common::db::connect(&test.settings).await.unwrap();
        crate::app::migrate(&db).await.unwrap();

        let id = Uuid::now_v7();
        user(id, "ann@example.com").insert(&db).await.unwrap();
        let taken = user(Uuid::now_v7(), "ann@example.com")
            .insert(&db)
            .await
            .unwrap_err();
        assert!(violates(&taken, users::EMAIL_KEY), "{taken}");
        let same_id = user(id, "bob@example.com").insert(&db).await.unwrap_err();
        assert!(!violates(&same_id, users::EMAIL_KEY), "{same_id}");
    }

    draftr_common::test_on_both_backends!(a_taken_email_is_recognised_by_its_constraint);
}
