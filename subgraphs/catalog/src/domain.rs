//! The rules of a listing: what a valid property, price, category and photo are.
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

/// The most photos a listing has: enough for every room, few enough to load with a page.
pub const MAX_PHOTOS: usize = 30;
/// The longest photo URL, in characters (as stored, after normalisation): what browsers and
/// CDNs reliably accept.
pub const MAX_PHOTO_URL: usize = 2048;
pub const MAX_PHOTO_CAPTION: usize = 200;

/// A photo of a listing, as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Photo {
    pub url: String,
    pub caption: Option<String>,
}

/// A listing's photos in the order given (the first is the cover): at most [`MAX_PHOTOS`],
/// each an absolute `https` URL with a host and no user name or password, at most
/// [`MAX_PHOTO_URL`] characters, no URL twice, captions of at most [`MAX_PHOTO_CAPTION`]
/// characters (blank means none). URLs are stored normalised (`HTTPS://Example.com` →
/// `https://example.com/`), so two spellings of one address count as the same photo. Every
/// message names the photo by its index, as `photos[3].url`.
pub fn photos(raw: &[Photo]) -> Result<Vec<Photo>, Error> {
    if raw.len() > MAX_PHOTOS {
        return Err(Error::invalid(
            "photos",
            format!(
                "at most {MAX_PHOTOS} photos per listing ({} given)",
                raw.len()
            ),
        ));
    }
    let mut out: Vec<Photo> = Vec::with_capacity(raw.len());
    for (i, photo) in raw.iter().enumerate() {
        let url = photo_url(i, &photo.url)?;
        if let Some(first) = out.iter().position(|p| p.url == url) {
            return Err(Error::invalid(
                "photos",
                format!("photos[{i}].url is the same as photos[{first}].url"),
            ));
        }
        out.push(Photo {
            url,
            caption: photo_caption(i, photo.caption.as_deref())?,
        });
    }
    Ok(out)
}

fn photo_url(i: usize, raw: &str) -> Result<String, Error> {
    let bad = |why: &str| Error::invalid("photos", format!("photos[{i}].url {why}"));
    let raw = raw.trim();
    // Checked before parsing too, so an oversized value is not parsed at all.
    if raw.chars().count() > MAX_PHOTO_URL {
        return Err(bad(&format!(
            "is too long (at most {MAX_PHOTO_URL} characters)"
        )));
    }
    let url = url::Url::parse(raw)
        .map_err(|_| bad("must be an absolute https URL, like https://example.com/photo.jpg"))?;
    if url.scheme() != "https" {
        return Err(bad(&format!(
            "must be an https URL (not {}:)",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not contain a user name or password"));
    }
    let url = String::from(url);
    if url.chars().count() > MAX_PHOTO_URL {
        return Err(bad(&format!(
            "is too long (at most {MAX_PHOTO_URL} characters)"
        )));
    }
    Ok(url)
}

fn photo_caption(i: usize, raw: Option<&str>) -> Result<Option<String>, Error> {
    let Some(caption) = raw.map(str::trim).filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    if caption.chars().count() > MAX_PHOTO_CAPTION {
        return Err(Error::invalid(
            "photos",
            format!("photos[{i}].caption is too long (at most {MAX_PHOTO_CAPTION} characters)"),
        ));
    }
    if caption.chars().any(char::is_control) {
        return Err(Error::invalid(
            "photos",
            format!("photos[{i}].caption must not contain control characters"),
        ));
    }
    Ok(Some(caption.to_owned()))
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

    fn photo(url: &str) -> Photo {
        Photo {
            url: url.to_owned(),
            caption: None,
        }
    }

    fn refusal(raw: &[Photo]) -> String {
        match photos(raw) {
            Err(Error::Invalid { field, message }) => {
                assert_eq!(field, "photos");
                message
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn photos_keep_their_order_and_are_normalised() {
        let got = photos(&[
            photo("https://img.example.com/b.jpg"),
            Photo {
                url: " HTTPS://IMG.example.com/a.jpg ".into(),
                caption: Some("  The view  ".into()),
            },
            Photo {
                url: "https://img.example.com".into(),
                caption: Some("   ".into()),
            },
        ])
        .unwrap();
        assert_eq!(
            got,
            vec![
                photo("https://img.example.com/b.jpg"),
                Photo {
                    url: "https://img.example.com/a.jpg".into(),
                    caption: Some("The view".into()),
                },
                photo("https://img.example.com/"),
            ]
        );
        assert_eq!(photos(&[]).unwrap(), vec![]);
        let thirty: Vec<Photo> = (0..MAX_PHOTOS)
            .map(|i| photo(&format!("https://img.example.com/{i}.jpg")))
            .collect();
        assert_eq!(photos(&thirty).unwrap().len(), MAX_PHOTOS);
    }

    #[test]
    fn bad_photos_are_refused_by_index() {
        let ok = photo("https://img.example.com/ok.jpg");
        for (url, why) in [
            (
                "http://img.example.com/a.jpg",
                "photos[1].url must be an https URL",
            ),
            (
                "/photos/a.jpg",
                "photos[1].url must be an absolute https URL",
            ),
            (
                "img.example.com/a.jpg",
                "photos[1].url must be an absolute https URL",
            ),
            (
                "ftp://img.example.com/a.jpg",
                "photos[1].url must be an https URL",
            ),
            ("javascript:alert(1)", "photos[1].url must be an https URL"),
            (
                "https://ann:pw@img.example.com/a.jpg",
                "photos[1].url must not contain a user",
            ),
            (
                "https://ann@img.example.com/a.jpg",
                "photos[1].url must not contain a user",
            ),
            ("https://", "photos[1].url must be an absolute https URL"),
            ("", "photos[1].url must be an absolute https URL"),
        ] {
            let message = refusal(&[ok.clone(), photo(url)]);
            assert!(message.starts_with(why), "{url:?}: {message}");
        }
        let long = format!("https://img.example.com/{}", "a".repeat(MAX_PHOTO_URL));
        assert!(refusal(&[photo(&long)]).contains("photos[0].url is too long"));
        // 2048 exactly is fine.
        let longest = format!("https://img.example.com/{}", "a".repeat(MAX_PHOTO_URL - 24));
        assert_eq!(longest.len(), MAX_PHOTO_URL);
        assert!(photos(&[photo(&longest)]).is_ok());
        let too_many: Vec<Photo> = (0..=MAX_PHOTOS)
            .map(|i| photo(&format!("https://img.example.com/{i}.jpg")))
            .collect();
        assert!(refusal(&too_many).contains("at most 30 photos"));
        let twice = refusal(&[
            ok.clone(),
            photo("https://img.example.com/x.jpg"),
            photo("https://IMG.example.com/ok.jpg"),
        ]);
        assert_eq!(twice, "photos[2].url is the same as photos[0].url");
        let caption = |c: &str| Photo {
            url: ok.url.clone(),
            caption: Some(c.to_owned()),
        };
        assert!(
            refusal(&[caption(&"c".repeat(MAX_PHOTO_CAPTION + 1))])
                .contains("photos[0].caption is too long")
        );
        assert!(photos(&[caption(&"é".repeat(MAX_PHOTO_CAPTION))]).is_ok());
        assert!(refusal(&[caption("a\u{0}b")]).contains("control characters"));
    }
}
