//! A listing's photos: an ordered list (position 0 is the cover), replaced whole on each change.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Properties {
    Table,
    Id,
}

/// One row per (property, position). The primary key is also the index that reads a page's
/// photos in order, so loading them for a whole search page is one range scan per listing.
#[derive(DeriveIden)]
enum PropertyPhotos {
    Table,
    PropertyId,
    Position,
    Url,
    Caption,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PropertyPhotos::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(PropertyPhotos::PropertyId).uuid().not_null())
                    .col(
                        ColumnDef::new(PropertyPhotos::Position)
                            .integer()
                            .not_null(),
                    )
                    // The limits of `domain::photos`: 2048 characters of URL, 200 of caption.
                    .col(
                        ColumnDef::new(PropertyPhotos::Url)
                            .string_len(2048)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PropertyPhotos::Caption)
                            .string_len(200)
                            .null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(PropertyPhotos::PropertyId)
                            .col(PropertyPhotos::Position),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("property_photos_property_id_fkey")
                            .from(PropertyPhotos::Table, PropertyPhotos::PropertyId)
                            .to(Properties::Table, Properties::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PropertyPhotos::Table).to_owned())
            .await
    }
}
