//! Demo data for the embedded default, so a newcomer can search at once. Development only.

use draftr_auth::service::AuthService;
use draftr_catalog::service::{CatalogService, ListingInput};
use draftr_common::Role;
use uuid::Uuid;

/// Development-only demo accounts: (email, password, display name, role).
pub const DEMO_USERS: &[(&str, &str, &str, Role)] = &[
    (
        "admin@draftr.test",
        "correct-horse-ada",
        "Ada Admin",
        Role::Admin,
    ),
    (
        "host@draftr.test",
        "correct-horse-hugo",
        "Hugo Host",
        Role::Host,
    ),
    (
        "guest@draftr.test",
        "correct-horse-greta",
        "Greta Guest",
        Role::Guest,
    ),
];

/// Creates the demo accounts (later starts find them); returns the demo host's id.
pub async fn seed_users(auth: &AuthService) -> anyhow::Result<Uuid> {
    let mut host = None;
    for (email, password, name, role) in DEMO_USERS {
        let user = auth
            .ensure_user(email, password, name, *role)
            .await
            .map_err(|e| anyhow::anyhow!("demo user {email}: {e}"))?;
        if *role == Role::Host {
            host = Some(user.id);
        }
    }
    host.ok_or_else(|| anyhow::anyhow!("the demo accounts include no host"))
}

/// (name, slug)
const CATEGORIES: &[(&str, &str)] = &[
    ("Apartments", "apartments"),
    ("Cabins", "cabins"),
    ("Beach houses", "beach-houses"),
    ("Villas", "villas"),
];

/// (title, city, country, nightly rate in cents, currency, guests, bedrooms, category slug, amenities)
type Listing = (
    &'static str,
    &'static str,
    &'static str,
    i64,
    &'static str,
    i32,
    i32,
    &'static str,
    &'static [&'static str],
);
const LISTINGS: &[Listing] = &[
    (
        "Sunny loft by the canals",
        "Amsterdam",
        "NL",
        14_500,
        "EUR",
        2,
        1,
        "apartments",
        &["wifi", "kitchen", "workspace"],
    ),
    (
        "Alpine cabin with a view",
        "Chamonix",
        "FR",
        21_000,
        "EUR",
        6,
        3,
        "cabins",
        &["wifi", "fireplace", "parking"],
    ),
    (
        "Dune house on the shore",
        "Sylt",
        "DE",
        32_000,
        "EUR",
        8,
        4,
        "beach-houses",
        &["wifi", "kitchen", "garden", "parking"],
    ),
    (
        "Quiet studio near the old town",
        "Lisbon",
        "PT",
        7_900,
        "EUR",
        2,
        1,
        "apartments",
        &["wifi", "air_conditioning"],
    ),
    (
        "Villa with pool and olive grove",
        "Lucca",
        "IT",
        48_000,
        "EUR",
        10,
        5,
        "villas",
        &["wifi", "pool", "kitchen", "parking"],
    ),
];

/// Creates the demo categories, and the demo host's listings unless they have some already.
pub async fn seed_catalog(catalog: &CatalogService, host: Uuid) -> anyhow::Result<()> {
    let mut slugs = std::collections::HashMap::new();
    for (name, slug) in CATEGORIES {
        let category = catalog
            .ensure_category(name, slug)
            .await
            .map_err(|e| anyhow::anyhow!("demo category: {e}"))?;
        slugs.insert(*slug, category.id);
    }
    if catalog
        .host_has_listings(host)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
    {
        return Ok(());
    }
    for (title, city, country, rate, currency, guests, bedrooms, category, amenities) in LISTINGS {
        let listing = ListingInput {
            title: Some((*title).to_owned()),
            description: Some(format!("{title}. A demo listing of the embedded default.")),
            line1: Some("1 Demo Street".to_owned()),
            city: Some((*city).to_owned()),
            country: Some((*country).to_owned()),
            nightly_rate: Some((*rate, (*currency).to_owned())),
            max_guests: Some(*guests),
            bedrooms: Some(*bedrooms),
            amenities: Some(amenities.iter().map(|a| (*a).to_owned()).collect()),
            category_id: Some(slugs.get(category).copied()),
            status: Some(draftr_catalog::service::PropertyStatus::Published),
            ..Default::default()
        };
        catalog
            .create(host, listing)
            .await
            .map_err(|e| anyhow::anyhow!("demo listing {title}: {e}"))?;
    }
    Ok(())
}
