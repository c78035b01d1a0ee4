//! What the catalog does, independent of GraphQL: listings, categories, visibility, search.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use draftr_common::Claims;
use draftr_common::db::violates;
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, Query as SqlQuery};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::domain;
pub use crate::domain::{CancellationPolicy, Photo, PropertyStatus, UnknownValue};
use crate::error::Error;
use crate::store::{categories, properties, property_amenities, property_photos};

pub use crate::store::categories::Model as Category;

/// A property with its amenities and category, loaded together for a whole page so a page
/// costs the same number of statements whatever its size. Its status and cancellation policy
/// are read from the row when it is loaded, so a row with a value this code never writes fails
/// to load instead of being shown as something it is not. Its photos are read on demand, for
/// every property loaded with it at once ([`Property::photos`]).
#[derive(Debug, Clone)]
pub struct Property {
    pub row: properties::Model,
    pub amenities: Vec<String>,
    pub category: Option<Category>,
    status: PropertyStatus,
    cancellation_policy: CancellationPolicy,
    photos: Arc<PhotoBatch>,
}

/// The photos of the properties loaded together (a search page, one batch of lookups by id),
/// read for all of them in one statement the first time any of them is asked, and not at all
/// when none is. Deterministic where a time-window batch (async-graphql's `DataLoader` waits
/// 1 ms for keys) is not: a page of 50 resolved in a slow debug build split into 5 to 7 batches.
struct PhotoBatch {
    db: DatabaseConnection,
    ids: Vec<Uuid>,
    loaded: OnceCell<HashMap<Uuid, Vec<Photo>>>,
}

impl std::fmt::Debug for PhotoBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhotoBatch")
            .field("ids", &self.ids)
            .field("loaded", &self.loaded.get())
            .finish_non_exhaustive()
    }
}

impl Property {
    /// In order, the cover first. The first call for any property of its batch reads the
    /// photos of the whole batch; concurrent calls wait for that one read. A failed read is
    /// retried by the next call.
    pub async fn photos(&self) -> Result<Vec<Photo>, Error> {
        let batch = &self.photos;
        let all = batch
            .loaded
            .get_or_try_init(|| photos_of(&batch.db, &batch.ids))
            .await?;
        Ok(all.get(&self.row.id).cloned().unwrap_or_default())
    }

    pub fn status(&self) -> PropertyStatus {
        self.status
    }

    pub fn cancellation_policy(&self) -> CancellationPolicy {
        self.cancellation_policy
    }

    /// Published listings are public; drafts and archived ones only for their host and admins.
    pub fn visible_to(&self, viewer: Option<&Claims>) -> bool {
        self.status() == PropertyStatus::Published
            || viewer.is_some_and(|c| c.is_admin() || c.sub == self.row.host_id)
    }
}

/// Everything a listing is made of, as the client sent it (validated by
/// [`CatalogService::create`] and [`CatalogService::update`], with the rules of `domain`).
#[derive(Debug, Clone, Default)]
pub struct ListingInput {
    pub title: Option<String>,
    pub description: Option<String>,
    pub line1: Option<String>,
    pub city: Option<String>,
    pub region: Option<Option<String>>,
    pub postal_code: Option<Option<String>>,
    pub country: Option<String>,
    pub nightly_rate: Option<(i64, String)>,
    pub max_guests: Option<i32>,
    pub bedrooms: Option<i32>,
    pub amenities: Option<Vec<String>>,
    pub category_id: Option<Option<Uuid>>,
    pub cancellation_policy: Option<CancellationPolicy>,
    pub status: Option<PropertyStatus>,
    /// The whole ordered list (the first is the cover); `Some(vec![])` removes every photo.
    pub photos: Option<Vec<Photo>>,
}

/// Sort orders of search; each has a unique tie-breaker (the id) so pages never overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Newest,
    PriceAsc,
    PriceDesc,
}

/// Search filters. All given filters must hold.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub city: Option<String>,
    pub country: Option<String>,
    pub category_id: Option<Uuid>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub guests: Option<i32>,
    pub amenities: Vec<String>,
    pub text: Option<String>,
    pub host_id: Option<Uuid>,
    /// Statuses to include; the public search is PUBLISHED only.
    pub statuses: Vec<PropertyStatus>,
    /// Free of bookings on `[from, to)`, according to the availability projection.
    pub available: Option<(chrono::NaiveDate, chrono::NaiveDate)>,
}

/// A keyset position: the sort key of the last item seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub price: i64,
    pub id: Uuid,
}

impl Position {
    pub fn encode(&self) -> String {
        format!("{}:{}", self.price, self.id)
    }
    pub fn decode(s: &str) -> Option<Self> {
        let (price, id) = s.split_once(':')?;
        Some(Self {
            price: price.parse().ok()?,
            id: Uuid::parse_str(id).ok()?,
        })
    }
}

pub struct Page {
    pub items: Vec<Property>,
    pub has_next: bool,
    /// Across all pages; 0 when not asked for.
    pub total: u64,
}

pub struct CatalogService {
    db: DatabaseConnection,
}

impl CatalogService {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    async fn check_category(&self, id: Option<Uuid>) -> Result<(), Error> {
        if let Some(id) = id
            && categories::Entity::find_by_id(id)
                .one(&self.db)
                .await?
                .is_none()
        {
            return Err(Error::CategoryNotFound);
        }
        Ok(())
    }

    /// Lists a property. The host is the caller, never a value from the request.
    pub async fn create(&self, host: Uuid, input: ListingInput) -> Result<Property, Error> {
        let missing = |f: &'static str| Error::invalid(f, format!("{f} is required"));
        let title = domain::text(
            "title",
            input.title.as_deref().ok_or_else(|| missing("title"))?,
            1,
            120,
        )?;
        let description = domain::text(
            "description",
            input.description.as_deref().unwrap_or_default(),
            0,
            5_000,
        )?;
        let line1 = domain::text(
            "line1",
            input.line1.as_deref().ok_or_else(|| missing("line1"))?,
            1,
            200,
        )?;
        let city = domain::text(
            "city",
            input.city.as_deref().ok_or_else(|| missing("city"))?,
            1,
            100,
        )?;
        let region = domain::optional_text("region", input.region.flatten().as_deref(), 100)?;
        let postal_code =
            domain::optional_text("postalCode", input.postal_code.flatten().as_deref(), 20)?;
        let country = domain::country(input.country.as_deref().ok_or_else(|| missing("country"))?)?;
        let (amount, currency) = input.nightly_rate.ok_or_else(|| missing("nightlyRate"))?;
        let (amount, currency) = domain::nightly_rate(amount, &currency)?;
        let max_guests = domain::count(
            "maxGuests",
            input.max_guests.ok_or_else(|| missing("maxGuests"))?,
            1,
            domain::MAX_GUESTS,
        )?;
        let bedrooms = domain::count(
            "bedrooms",
            input.bedrooms.unwrap_or(1),
            0,
            domain::MAX_BEDROOMS,
        )?;
        let amenities = domain::amenities(&input.amenities.unwrap_or_default())?;
        let photos = domain::photos(&input.photos.unwrap_or_default())?;
        let category_id = input.category_id.flatten();
        self.check_category(category_id).await?;
        let status = input.status.unwrap_or(PropertyStatus::Draft);
        if status == PropertyStatus::Archived {
            return Err(Error::invalid(
                "status",
                "a new listing is DRAFT or PUBLISHED",
            ));
        }
        let policy = input
            .cancellation_policy
            .unwrap_or(CancellationPolicy::Moderate);

        let now = Utc::now();
        let id = Uuid::now_v7();
        let txn = self.db.begin().await?;
        let row = properties::ActiveModel {
            id: Set(id),
            host_id: Set(host),
            title: Set(title),
            description: Set(description),
            line1: Set(line1),
            city: Set(city),
            region: Set(region),
            postal_code: Set(postal_code),
            country: Set(country),
            nightly_rate_amount: Set(amount),
            currency: Set(currency),
            max_guests: Set(max_guests),
            bedrooms: Set(bedrooms),
            category_id: Set(category_id),
            cancellation_policy: Set(policy.as_str().to_owned()),
            status: Set(status.as_str().to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await?;
        insert_amenities(&txn, id, &amenities).await?;
        insert_photos(&txn, id, &photos).await?;
        txn.commit().await?;
        tracing::info!(property.id = %id, host.id = %host, photos = photos.len(), "property listed");
        Ok(self.complete(vec![row]).await?.remove(0))
    }

    /// Changes a listing: its host or an administrator only.
    pub async fn update(
        &self,
        actor: &Claims,
        id: Uuid,
        input: ListingInput,
    ) -> Result<Property, Error> {
        let current = self.get(id).await?.ok_or(Error::PropertyNotFound)?;
        if !(actor.is_admin() || actor.sub == current.row.host_id) {
            // Someone else's draft does not exist as far as this caller can tell.
            return Err(if current.visible_to(Some(actor)) {
                Error::NotYourProperty
            } else {
                Error::PropertyNotFound
            });
        }
        let mut row: properties::ActiveModel = current.row.clone().into();
        if let Some(v) = &input.title {
            row.title = Set(domain::text("title", v, 1, 120)?);
        }
        if let Some(v) = &input.description {
            row.description = Set(domain::text("description", v, 0, 5_000)?);
        }
        if let Some(v) = &input.line1 {
            row.line1 = Set(domain::text("line1", v, 1, 200)?);
        }
        if let Some(v) = &input.city {
            row.city = Set(domain::text("city", v, 1, 100)?);
        }
        if let Some(v) = &input.region {
            row.region = Set(domain::optional_text("region", v.as_deref(), 100)?);
        }
        if let Some(v) = &input.postal_code {
            row.postal_code = Set(domain::optional_text("postalCode", v.as_deref(), 20)?);
        }
        if let Some(v) = &input.country {
            row.country = Set(domain::country(v)?);
        }
        if let Some((amount, currency)) = &input.nightly_rate {
            let (amount, currency) = domain::nightly_rate(*amount, currency)?;
            row.nightly_rate_amount = Set(amount);
            row.currency = Set(currency);
        }
        if let Some(v) = input.max_guests {
            row.max_guests = Set(domain::count("maxGuests", v, 1, domain::MAX_GUESTS)?);
        }
        if let Some(v) = input.bedrooms {
            row.bedrooms = Set(domain::count("bedrooms", v, 0, domain::MAX_BEDROOMS)?);
        }
        if let Some(v) = input.category_id {
            self.check_category(v).await?;
            row.category_id = Set(v);
        }
        if let Some(v) = input.cancellation_policy {
            row.cancellation_policy = Set(v.as_str().to_owned());
        }
        if let Some(next) = input.status {
            if !current.status().can_become(next) {
                return Err(Error::invalid(
                    "status",
                    format!(
                        "a {} listing cannot become {}",
                        current.status().as_str(),
                        next.as_str()
                    ),
                ));
            }
            row.status = Set(next.as_str().to_owned());
        }
        let amenities = match &input.amenities {
            Some(a) => Some(domain::amenities(a)?),
            None => None,
        };
        // Validated before the transaction opens: a refused list changes nothing.
        let photos = match &input.photos {
            Some(p) => Some(domain::photos(p)?),
            None => None,
        };
        row.updated_at = Set(Utc::now());

        let txn = self.db.begin().await?;
        let row = row.update(&txn).await?;
        if let Some(amenities) = &amenities {
            property_amenities::Entity::delete_many()
                .filter(property_amenities::Column::PropertyId.eq(id))
                .exec(&txn)
                .await?;
            insert_amenities(&txn, id, amenities).await?;
        }
        if let Some(photos) = &photos {
            // Replaced whole: a new order is a new list, so positions never collide midway.
            property_photos::Entity::delete_many()
                .filter(property_photos::Column::PropertyId.eq(id))
                .exec(&txn)
                .await?;
            insert_photos(&txn, id, photos).await?;
        }
        txn.commit().await?;
        tracing::info!(
            property.id = %id,
            actor.id = %actor.sub,
            photos = photos.as_ref().map(Vec::len),
            "property updated"
        );
        Ok(self.complete(vec![row]).await?.remove(0))
    }

    /// ADMIN only (checked by the caller).
    pub async fn delete(&self, id: Uuid) -> Result<bool, Error> {
        let res = properties::Entity::delete_by_id(id).exec(&self.db).await?;
        Ok(res.rows_affected == 1)
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<Property>, Error> {
        Ok(self.get_many(&[id]).await?.remove(&id))
    }

    /// Properties by id with amenities and categories: at most three queries, whatever the
    /// number of ids.
    pub async fn get_many(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Property>, Error> {
        let rows = properties::Entity::find()
            .filter(properties::Column::Id.is_in(ids.iter().copied()))
            .all(&self.db)
            .await?;
        Ok(self
            .complete(rows)
            .await?
            .into_iter()
            .map(|p| (p.row.id, p))
            .collect())
    }

    /// Attaches amenities and categories to rows, in their order, reads their enums, and makes
    /// the rows one [`PhotoBatch`].
    async fn complete(&self, rows: Vec<properties::Model>) -> Result<Vec<Property>, Error> {
        let mut amenities = self.amenities_of(rows.iter().map(|r| r.id)).await?;
        let category_ids: Vec<Uuid> = rows.iter().filter_map(|r| r.category_id).collect();
        let categories = if category_ids.is_empty() {
            HashMap::new()
        } else {
            self.categories_by_ids(&category_ids).await?
        };
        let photos = Arc::new(PhotoBatch {
            db: self.db.clone(),
            ids: rows.iter().map(|r| r.id).collect(),
            loaded: OnceCell::new(),
        });
        rows.into_iter()
            .map(|row| {
                Ok(Property {
                    photos: photos.clone(),
                    status: PropertyStatus::parse(&row.status)?,
                    cancellation_policy: CancellationPolicy::parse(&row.cancellation_policy)?,
                    amenities: amenities.remove(&row.id).unwrap_or_default(),
                    category: row.category_id.and_then(|c| categories.get(&c).cloned()),
                    row,
                })
            })
            .collect()
    }

    async fn amenities_of(
        &self,
        ids: impl Iterator<Item = Uuid>,
    ) -> Result<HashMap<Uuid, Vec<String>>, sea_orm::DbErr> {
        let ids: Vec<Uuid> = ids.collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = property_amenities::Entity::find()
            .filter(property_amenities::Column::PropertyId.is_in(ids))
            .order_by_asc(property_amenities::Column::Amenity)
            .all(&self.db)
            .await?;
        let mut out: HashMap<Uuid, Vec<String>> = HashMap::new();
        for r in rows {
            out.entry(r.property_id).or_default().push(r.amenity);
        }
        Ok(out)
    }

    /// One page of search results after `after`, with the total across all pages.
    pub async fn search(
        &self,
        filter: &Filter,
        sort: Sort,
        after: Option<Position>,
        limit: u64,
        with_total: bool,
    ) -> Result<Page, Error> {
        let condition = self.condition(filter);
        // Counting a broad filter reads every matching row; only do it when asked.
        let total = if with_total {
            properties::Entity::find()
                .filter(condition.clone())
                .count(&self.db)
                .await?
        } else {
            0
        };

        let mut query = properties::Entity::find().filter(condition);
        use properties::Column as C;
        query = match sort {
            Sort::Newest => query.order_by_desc(C::Id),
            Sort::PriceAsc => query.order_by_asc(C::NightlyRateAmount).order_by_asc(C::Id),
            Sort::PriceDesc => query
                .order_by_desc(C::NightlyRateAmount)
                .order_by_desc(C::Id),
        };
        if let Some(p) = after {
            query = query.filter(match sort {
                Sort::Newest => Condition::all().add(C::Id.lt(p.id)),
                Sort::PriceAsc => Condition::any().add(C::NightlyRateAmount.gt(p.price)).add(
                    Condition::all()
                        .add(C::NightlyRateAmount.eq(p.price))
                        .add(C::Id.gt(p.id)),
                ),
                Sort::PriceDesc => Condition::any().add(C::NightlyRateAmount.lt(p.price)).add(
                    Condition::all()
                        .add(C::NightlyRateAmount.eq(p.price))
                        .add(C::Id.lt(p.id)),
                ),
            });
        }
        let mut rows = query.limit(limit + 1).all(&self.db).await?;
        let has_next = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let items = self.complete(rows).await?;
        Ok(Page {
            items,
            has_next,
            total,
        })
    }

    fn condition(&self, f: &Filter) -> Condition {
        use properties::Column as C;
        let mut c = Condition::all();
        if !f.statuses.is_empty() {
            c = c.add(C::Status.is_in(f.statuses.iter().map(|s| s.as_str())));
        }
        if let Some(host) = f.host_id {
            c = c.add(C::HostId.eq(host));
        }
        if let Some(city) = &f.city {
            c = c.add(ExprTrait::eq(
                Expr::expr(Func::lower(Expr::col(C::City))),
                city.trim().to_lowercase(),
            ));
        }
        if let Some(country) = &f.country {
            c = c.add(C::Country.eq(country.trim().to_ascii_uppercase()));
        }
        if let Some(cat) = f.category_id {
            c = c.add(C::CategoryId.eq(cat));
        }
        if let Some(min) = f.min_price {
            c = c.add(C::NightlyRateAmount.gte(min));
        }
        if let Some(max) = f.max_price {
            c = c.add(C::NightlyRateAmount.lte(max));
        }
        if let Some(guests) = f.guests {
            c = c.add(C::MaxGuests.gte(guests));
        }
        for amenity in &f.amenities {
            c = c.add(
                C::Id.in_subquery(
                    SqlQuery::select()
                        .column(property_amenities::Column::PropertyId)
                        .from(property_amenities::Entity)
                        .and_where(property_amenities::Column::Amenity.eq(amenity.as_str()))
                        .to_owned(),
                ),
            );
        }
        if let Some((from, to)) = f.available {
            use crate::store::booked_stays::{Column as B, Entity as Booked};
            c = c.add(
                C::Id.not_in_subquery(
                    SqlQuery::select()
                        .column(B::PropertyId)
                        .from(Booked)
                        .and_where(B::Active.eq(true))
                        .and_where(B::CheckIn.lt(to))
                        .and_where(B::CheckOut.gt(from))
                        .to_owned(),
                ),
            );
        }
        if let Some(text) = f.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            let escaped = text
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            let pattern = format!("%{escaped}%");
            c = c.add(
                Condition::any()
                    .add(
                        Expr::expr(Func::lower(Expr::col(C::Title)))
                            .like(LikeExpr::new(pattern.clone()).escape('\\')),
                    )
                    .add(
                        Expr::expr(Func::lower(Expr::col(C::Description)))
                            .like(LikeExpr::new(pattern).escape('\\')),
                    ),
            );
        }
        c
    }

    pub async fn categories(&self) -> Result<Vec<Category>, Error> {
        Ok(categories::Entity::find()
            .order_by_asc(categories::Column::Name)
            .all(&self.db)
            .await?)
    }

    pub async fn categories_by_ids(
        &self,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Category>, sea_orm::DbErr> {
        let rows = categories::Entity::find()
            .filter(categories::Column::Id.is_in(ids.iter().copied()))
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(|c| (c.id, c)).collect())
    }

    /// ADMIN only (checked by the caller). The slug defaults to one made from the name.
    pub async fn create_category(&self, name: &str, slug: Option<&str>) -> Result<Category, Error> {
        let name = domain::text("name", name, 1, 80)?;
        let slug = domain::slug(slug.unwrap_or(&name))?;
        let row = categories::ActiveModel {
            id: Set(Uuid::now_v7()),
            name: Set(name),
            slug: Set(slug),
            created_at: Set(Utc::now()),
        };
        match row.insert(&self.db).await {
            Ok(c) => Ok(c),
            Err(e) if violates(&e, categories::SLUG_KEY) => Err(Error::SlugTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// For demo data: the category with `slug`, created if missing.
    pub async fn ensure_category(&self, name: &str, slug: &str) -> Result<Category, Error> {
        match categories::Entity::find()
            .filter(categories::Column::Slug.eq(slug))
            .one(&self.db)
            .await?
        {
            Some(c) => Ok(c),
            None => self.create_category(name, Some(slug)).await,
        }
    }

    /// For demo data: does `host` list anything yet?
    pub async fn host_has_listings(&self, host: Uuid) -> Result<bool, Error> {
        Ok(properties::Entity::find()
            .filter(properties::Column::HostId.eq(host))
            .count(&self.db)
            .await?
            > 0)
    }
}

async fn insert_amenities(
    db: &impl sea_orm::ConnectionTrait,
    id: Uuid,
    amenities: &[String],
) -> Result<(), sea_orm::DbErr> {
    if amenities.is_empty() {
        return Ok(());
    }
    property_amenities::Entity::insert_many(amenities.iter().map(|a| {
        property_amenities::ActiveModel {
            property_id: Set(id),
            amenity: Set(a.clone()),
        }
    }))
    .exec(db)
    .await?;
    Ok(())
}

/// Positions 0, 1, 2, … in the order given.
async fn insert_photos(
    db: &impl sea_orm::ConnectionTrait,
    id: Uuid,
    photos: &[Photo],
) -> Result<(), sea_orm::DbErr> {
    if photos.is_empty() {
        return Ok(());
    }
    property_photos::Entity::insert_many(photos.iter().zip(0..).map(|(p, position)| {
        property_photos::ActiveModel {
            property_id: Set(id),
            position: Set(position),
            url: Set(p.url.clone()),
            caption: Set(p.caption.clone()),
        }
    }))
    .exec(db)
    .await?;
    Ok(())
}

/// The photos of each of `ids`, in order (the cover first), in one statement whatever the number
/// of ids. A property without photos is absent from the map.
async fn photos_of(
    db: &DatabaseConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Photo>>, sea_orm::DbErr> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = property_photos::Entity::find()
        .filter(property_photos::Column::PropertyId.is_in(ids.iter().copied()))
        .order_by_asc(property_photos::Column::PropertyId)
        .order_by_asc(property_photos::Column::Position)
        .all(db)
        .await?;
    let mut out: HashMap<Uuid, Vec<Photo>> = HashMap::new();
    for r in rows {
        out.entry(r.property_id).or_default().push(Photo {
            url: r.url,
            caption: r.caption,
        });
    }
    Ok(out)
}
