use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Categories {
    Table,
    Id,
    Name,
    Slug,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Properties {
    Table,
    Id,
    HostId,
    Title,
    Description,
    Line1,
    City,
    Region,
    PostalCode,
    Country,
    NightlyRateAmount,
    Currency,
    MaxGuests,
    Bedrooms,
    CategoryId,
    CancellationPolicy,
    Status,
    CreatedAt,
    UpdatedAt,
}

/// One row per (property, amenity): "has all of these amenities" becomes a join that an index
/// answers, on both backends, without JSON operators.
#[derive(DeriveIden)]
enum PropertyAmenities {
    Table,
    PropertyId,
    Amenity,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Categories::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Categories::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Categories::Name).string_len(80).not_null())
                    .col(ColumnDef::new(Categories::Slug).string_len(80).not_null())
                    .col(
                        ColumnDef::new(Categories::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("categories_slug_key")
                    .table(Categories::Table)
                    .col(Categories::Slug)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Properties::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Properties::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    // A user id from auth: an entity key, not a foreign key (auth owns users).
                    .col(ColumnDef::new(Properties::HostId).uuid().not_null())
                    .col(ColumnDef::new(Properties::Title).string_len(120).not_null())
                    .col(ColumnDef::new(Properties::Description).text().not_null())
                    .col(ColumnDef::new(Properties::Line1).string_len(200).not_null())
                    .col(ColumnDef::new(Properties::City).string_len(100).not_null())
                    .col(ColumnDef::new(Properties::Region).string_len(100).null())
                    .col(ColumnDef::new(Properties::PostalCode).string_len(20).null())
                    .col(ColumnDef::new(Properties::Country).string_len(2).not_null())
                    .col(
                        ColumnDef::new(Properties::NightlyRateAmount)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Properties::Currency)
                            .string_len(3)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Properties::MaxGuests).integer().not_null())
                    .col(ColumnDef::new(Properties::Bedrooms).integer().not_null())
                    .col(ColumnDef::new(Properties::CategoryId).uuid().null())
                    .col(
                        ColumnDef::new(Properties::CancellationPolicy)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Properties::Status).string_len(16).not_null())
                    .col(
                        ColumnDef::new(Properties::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Properties::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("properties_category_id_fkey")
                            .from(Properties::Table, Properties::CategoryId)
                            .to(Categories::Table, Categories::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        // Search filters by status first (the public sees PUBLISHED only), then by place or
        // price, and pages in id order (newest first: ids are UUIDv7) or price order. Each index
        // ends with the sort key, so a page is read in order from the index instead of by
        // walking the whole table backwards and filtering.
        for (name, cols) in [
            (
                "properties_status_id_idx",
                vec![Properties::Status, Properties::Id],
            ),
            (
                "properties_status_country_idx",
                vec![Properties::Status, Properties::Country, Properties::Id],
            ),
            (
                "properties_status_rate_idx",
                vec![
                    Properties::Status,
                    Properties::NightlyRateAmount,
                    Properties::Id,
                ],
            ),
            (
                "properties_host_id_idx",
                vec![Properties::HostId, Properties::Id],
            ),
            ("properties_category_id_idx", vec![Properties::CategoryId]),
        ] {
            let mut index = Index::create();
            index.name(name).table(Properties::Table).if_not_exists();
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        // City search is case-insensitive (`lower(city) = …`), so the index is on the
        // expression; SQLite and PostgreSQL both accept this statement as written.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX IF NOT EXISTS properties_status_city_idx ON properties (status, lower(city), id)",
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PropertyAmenities::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(PropertyAmenities::PropertyId)
                            .uuid()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PropertyAmenities::Amenity)
                            .string_len(40)
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(PropertyAmenities::PropertyId)
                            .col(PropertyAmenities::Amenity),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("property_amenities_property_id_fkey")
                            .from(PropertyAmenities::Table, PropertyAmenities::PropertyId)
                            .to(Properties::Table, Properties::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("property_amenities_amenity_idx")
                    .table(PropertyAmenities::Table)
                    .col(PropertyAmenities::Amenity)
                    .col(PropertyAmenities::PropertyId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PropertyAmenities::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Properties::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Categories::Table).to_owned())
            .await
    }
}
