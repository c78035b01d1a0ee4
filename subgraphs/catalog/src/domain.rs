//! The rules of a listing: what a valid property, price and category are.
//!
//! The two enums derive `async_graphql::Enum` so the API and the rules share one definition
//! (their variants are the API's enum values); nothing else here knows about GraphQL. Each is
//! stored as its [`as_str`](PropertyStatus::as_str) and read back with a `parse` that refuses
//! anything else: a stored value this code never writes is an error, never a default.

use crate::error::Error;

/// A stored value that is none of an enum's: the row was not written by this code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?} in the database")]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
}

// No doc comments on the enums themselves: they would become the API types' descriptions.
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyStatus {
    Draft,
    Published,
    Archived,
}

impl PropertyStatus {
    pub const ALL: [Self; 3] = [Self::Draft, Self::Published, Self::Archived];

    pub fn as_str(self) -> &'static str {
        match self {
            PropertyStatus::Draft => "DRAFT",
            PropertyStatus::Published => "PUBLISHED",
            PropertyStatus::Archived => "ARCHIVED",
        }
    }

    pub fn parse(s: &str) -> Result<PropertyStatus, UnknownValue> {
        parse(&Self::ALL, Self::as_str, "property status", s)
    }

    /// DRAFT → PUBLISHED → ARCHIVED, and an archived listing may be published again; nothing
    /// goes back to DRAFT once guests could have seen it.
    pub fn can_become(self, next: PropertyStatus) -> bool {
        use PropertyStatus::*;
        self == next
            || matches!(
                (self, next),
                (Draft, Published)
                    | (Draft, Archived)
                    | (Published, Archived)
                    | (Archived, Published)
            )
    }
}

#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancellationPolicy {
    Flexible,
    Moderate,
    Strict,
}

impl CancellationPolicy {
    pub const ALL: [Self; 3] = [Self::Flexible, Self::Moderate, Self::Strict];

    pub fn as_str(self) -> &'static str {
        match self {
            CancellationPolicy::Flexible => "FLEXIBLE",
            CancellationPolicy::Moderate => "MODERATE",
            CancellationPolicy::Strict => "STRICT",
        }
    }

    pub fn parse(s: &str) -> Result<CancellationPolicy, UnknownValue> {
        parse(&Self::ALL, Self::as_str, "cancellation policy", s)
    }
}

/// The one of `all` whose `as_str` is `s`, exactly.
fn parse<T: Copy>(
    all: &[T],
    as_str: fn(T) -> &'static str,
    what: &'static str,
    s: &str,
) -> Result<T, UnknownValue> {
    all.iter()
        .copied()
        .find(|v| as_str(*v) == s)
        .ok_or_else(|| UnknownValue {
            what,
            value: s.to_owned(),
        })
}

/// The amenities a listing can claim. A fixed list, so search can filter on them exactly.
pub const AMENITIES: &[&str] = &[
    "wifi",
    "kitchen",
    "parking",
    "pool",
    "air_conditioning",
    "heating",
    "washer",
    "dryer",
    "tv",
    "workspace",
    "pets_allowed",
    "ev_charger",
    "hot_tub",
    "gym",
    "breakfast",
    "balcony",
    "garden",
    "fireplace",
    "crib",
    "wheelchair_accessible",
];

/// ISO 4217 currencies accepted for nightly rates.
pub const CURRENCIES: &[&str] = &[
    "EUR", "USD", "GBP", "CHF", "JPY", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK", "PLN", "CZK",
    "HUF", "RON", "MXN", "BRL", "INR", "ZAR", "SGD", "HKD", "KRW", "TRY", "ILS", "AED", "THB",
];

/// At most 100 000.00 a night in minor units: anything above is a typo, not a listing.
pub const MAX_NIGHTLY_RATE: i64 = 10_000_000;
pub const MAX_GUESTS: i32 = 50;
pub const MAX_BEDROOMS: i32 = 50;

pub fn text(field: &'static str, raw: &str, min: usize, max: usize) -> Result<String, Error> {
    let value = raw.trim();
    let chars = value.chars().count();
    if chars < min {
        return Err(Error::invalid(field, format!("{field} must not be empty")));
    }
    if chars > max {
        return Err(Error::invalid(
            field,
            format!("{field} is too long (at most {max} characters)"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::invalid(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(value.to_owned())
}

pub fn optional_text(
    field: &'static str,
    raw: Option<&str>,
    max: usize,
) -> Result<Option<String>, Error> {
    match raw.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => text(field, v, 1, max).map(Some),
        None => Ok(None),
    }
}

pub fn country(raw: &str) -> Result<String, Error> {
    let code = raw.trim().to_ascii_uppercase();
    if code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(code)
    } else {
        Err(Error::invalid(
            "country",
            "country must be a two-letter ISO 3166 code, like FR",
        ))
    }
}

pub fn nightly_rate(amount: i64, currency: &str) -> Result<(i64, String), Error> {
    let currency = currency.trim().to_ascii_uppercase();
    if !CURRENCIES.contains(&currency.as_str()) {
        return Err(Error::invalid(
            "currency",
            format!("unknown currency {currency:?}; use an ISO 4217 code such as EUR"),
        ));
    }
    if amount <= 0 {
        return Err(Error::invalid(
            "nightlyRate",
            "the nightly rate must be more than zero",
        ));
    }
    if amount > MAX_NIGHTLY_RATE {
        return Err(Error::invalid(
            "nightlyRate",
            "the nightly rate is implausibly high (at most 100000.00 a night)",
        ));
    }
    Ok((amount, currency))
}

pub fn count(field: &'static str, value: i32, min: i32, max: i32) -> Result<i32, Error> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(Error::invalid(
            field,
            format!("{field} must be between {min} and {max}"),
        ))
    }
}

pub fn amenities(raw: &[String]) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::new();
    for a in raw {
        let a = a.trim().to_ascii_lowercase();
        if !AMENITIES.contains(&a.as_str()) {
            return Err(Error::invalid(
                "amenities",
                format!("unknown amenity {a:?}; known: {}", AMENITIES.join(", ")),
            ));
        }
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out.sort();
    Ok(out)
}

/// A URL-safe slug from a category name ("Beach houses" → "beach-houses").
pub fn slug(raw: &str) -> Result<String, Error> {
    let mut slug = String::new();
    for c in raw.trim().to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-').to_owned();
    if slug.is_empty() || slug.len() > 80 {
        return Err(Error::invalid(
            "slug",
            "slug must be 1 to 80 letters, digits or dashes",
        ));
    }
    Ok(slug)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_values_round_trip_and_unknown_ones_are_errors() {
        for (status, text) in
            PropertyStatus::ALL
                .into_iter()
                .zip(["DRAFT", "PUBLISHED", "ARCHIVED"])
        {
            assert_eq!(status.as_str(), text);
            assert_eq!(PropertyStatus::parse(text), Ok(status));
        }
        for (policy, text) in CancellationPolicy::ALL
            .into_iter()
            .zip(["FLEXIBLE", "MODERATE", "STRICT"])
        {
            assert_eq!(policy.as_str(), text);
            assert_eq!(CancellationPolicy::parse(text), Ok(policy));
        }
        for unknown in ["", "published", "DELETED", " DRAFT"] {
            let err = PropertyStatus::parse(unknown).unwrap_err();
            assert_eq!(err.value, unknown);
            assert_eq!(
                err.to_string(),
                format!("unknown property status {unknown:?} in the database")
            );
        }
        for unknown in ["", "moderate", "SUPER_STRICT"] {
            assert!(CancellationPolicy::parse(unknown).is_err(), "{unknown:?}");
        }
    }

    #[test]
    fn status_moves_forward_only() {
        use PropertyStatus::*;
        assert!(Draft.can_become(Published));
        assert!(Published.can_become(Archived));
        assert!(Archived.can_become(Published));
        assert!(!Published.can_become(Draft));
        assert!(!Archived.can_become(Draft));
    }

    #[test]
    fn prices_currencies_and_amenities_are_checked() {
        assert_eq!(
            nightly_rate(12_000, "eur").unwrap(),
            (12_000, "EUR".to_owned())
        );
        assert!(nightly_rate(-1, "EUR").is_err());
        assert!(nightly_rate(0, "EUR").is_err());
        assert!(nightly_rate(MAX_NIGHTLY_RATE + 1, "EUR").is_err());
        assert!(nightly_rate(100, "XYZ").is_err());
        assert_eq!(
            amenities(&["Wifi".into(), "pool".into(), "wifi".into()]).unwrap(),
            vec!["pool", "wifi"]
        );
        assert!(amenities(&["moat".into()]).is_err());
        assert!(count("maxGuests", 0, 1, MAX_GUESTS).is_err());
        assert_eq!(
            slug("  Beach houses & Villas ").unwrap(),
            "beach-houses-villas"
        );
        assert!(slug("!!!").is_err());
        assert_eq!(country("fr").unwrap(), "FR");
        assert!(country("France").is_err());
    }
}
