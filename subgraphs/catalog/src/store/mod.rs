//! Tables of the catalog subgraph (sea-orm entities). Queries live in [`crate::service`].

pub mod booked_stays;
pub mod categories;
pub mod properties;
pub mod property_amenities;

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use draftr_common::db::violates;
    use draftr_common::testing::{Backend, TestDatabase};
    use sea_orm::{ActiveModelTrait, Set};
    use uuid::Uuid;

    use super::categories;

    fn category(id: Uuid, slug: &str) -> categories::ActiveModel {
        categories::ActiveModel {
            id: Set(id),
            name: Set("Beach houses".into()),
            slug: Set(slug.into()),
            created_at: Set(Utc::now()),
        }
    }

    /// The name the service matches is the one the migration gives the slug's unique index,
    /// and another unique rule of the table (its primary key) is not mistaken for it.
    async fn a_taken_slug_is_recognised_by_its_constraint(backend: Backend) {
        let test = TestDatabase::new(backend).await;
        let db = draftr_common::db::connect(&test.settings).await.unwrap();
        crate::app::migrate(&db).await.unwrap();

        let id = Uuid::now_v7();
        category(id, "beach").insert(&db).await.unwrap();
        let taken = category(Uuid::now_v7(), "beach")
            .insert(&db)
            .await
            .unwrap_err();
        assert!(violates(&taken, categories::SLUG_KEY), "{taken}");
        let same_id = category(id, "lake").insert(&db).await.unwrap_err();
        assert!(!violates(&same_id, categories::SLUG_KEY), "{same_id}");
    }

    draftr_common::test_on_both_backends!(a_taken_slug_is_recognised_by_its_constraint);
}
