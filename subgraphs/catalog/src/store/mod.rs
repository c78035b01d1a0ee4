//! Tables of the catalog subgraph (sea-orm entities). Queries live in [`crate::service`].

pub mod booked_stays;
pub mod categories;
pub mod properties;
pub mod property_amenities;
pub mod property_photos;

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

    /// Deleting a listing deletes its photos (the foreign key cascades on both backends), and
    /// one position holds one photo.
    async fn photos_go_with_their_property(backend: Backend) {
        use sea_orm::{EntityTrait, PaginatorTrait};

        use super::{properties, property_photos};

        let test = TestDatabase::new(backend).await;
        let db = draftr_common::db::connect(&test.settings).await.unwrap();
        crate::app::migrate(&db).await.unwrap();

        let id = Uuid::now_v7();
        properties::ActiveModel {
            id: Set(id),
            host_id: Set(Uuid::now_v7()),
            title: Set("Harbour flat".into()),
            description: Set(String::new()),
            line1: Set("3 Quay Street".into()),
            city: Set("Marseille".into()),
            region: Set(None),
            postal_code: Set(None),
            country: Set("FR".into()),
            nightly_rate_amount: Set(12_000),
            currency: Set("EUR".into()),
            max_guests: Set(2),
            bedrooms: Set(1),
            category_id: Set(None),
            cancellation_policy: Set("FLEXIBLE".into()),
            status: Set("DRAFT".into()),
            created_at: Set(Utc::now()),
            updated_at: Set(Utc::now()),
        }
        .insert(&db)
        .await
        .unwrap();
        let photo = |position: i32, url: &str| property_photos::ActiveModel {
            property_id: Set(id),
            position: Set(position),
            url: Set(url.into()),
            caption: Set(None),
        };
        photo(0, "https://img.example.com/a.jpg")
            .insert(&db)
            .await
            .unwrap();
        photo(1, "https://img.example.com/b.jpg")
            .insert(&db)
            .await
            .unwrap();
        assert!(
            photo(1, "https://img.example.com/c.jpg")
                .insert(&db)
                .await
                .is_err(),
            "two photos at one position"
        );
        assert_eq!(property_photos::Entity::find().count(&db).await.unwrap(), 2);
        properties::Entity::delete_by_id(id)
            .exec(&db)
            .await
            .unwrap();
        assert_eq!(property_photos::Entity::find().count(&db).await.unwrap(), 0);
    }

    draftr_common::test_on_both_backends!(
        a_taken_slug_is_recognised_by_its_constraint,
        photos_go_with_their_property,
    );
}
