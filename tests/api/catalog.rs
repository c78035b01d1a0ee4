//! The catalog through the router: listing, visibility, search, pagination, hosts from auth.

use std::collections::HashSet;

use draftr_common::test_on_both_backends;
use draftr_common::testing::Backend;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn};

test_on_both_backends!(
    a_listing_is_created_published_and_found_by_every_filter,
    a_draft_is_invisible_to_others_via_property_properties_and_entities,
    only_the_host_or_an_admin_updates_and_only_an_admin_deletes,
    bad_listings_are_bad_user_input_and_store_nothing,
    pagination_walks_every_page_once_while_listings_are_inserted,
    a_page_of_50_with_hosts_costs_the_same_queries_as_a_page_of_10,
    only_admins_manage_categories,
    a_page_asking_for_host_emails_anonymously_keeps_every_listing,
    a_representation_naming_no_entity_is_bad_user_input_on_every_subgraph,
);

const CREATE: &str =
    "mutation($i: CreatePropertyInput!) { createProperty(input: $i) { id status title } }";
const UPDATE: &str = "mutation($id: ID!, $i: UpdatePropertyInput!) { updateProperty(id: $id, input: $i) { id status title } }";
const SEARCH: &str = "query($f: PropertyFilter, $s: PropertySort, $n: Int, $a: String) {
  properties(filter: $f, sort: $s, first: $n, after: $a) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { id title nightlyRate { amount } } }
  }
}";

fn listing(overrides: Value) -> Value {
    let mut base = json!({
        "title": "Harbour flat",
        "description": "Bright flat over the old harbour",
        "address": { "line1": "3 Quay Street", "city": "Marseille", "country": "FR" },
        "nightlyRate": { "amount": 12_000, "currency": "EUR" },
        "maxGuests": 4,
        "bedrooms": 2,
        "amenities": ["wifi", "kitchen"],
        "cancellationPolicy": "FLEXIBLE"
    });
    if let (Some(b), Some(o)) = (base.as_object_mut(), overrides.as_object()) {
        for (k, v) in o {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

async fn create(app: &TestApp, token: &str, overrides: Value) -> String {
    let res = app
        .gql(CREATE, json!({ "i": listing(overrides) }), Some(token))
        .await;
    res.ok()["createProperty"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Creates a category as `admin` and returns its id.
async fn new_category(app: &TestApp, admin: &str, name: &str) -> String {
    let res = app
        .gql(
            "mutation($n: String!) { createCategory(input: { name: $n }) { id } }",
            json!({ "n": name }),
            Some(admin),
        )
        .await;
    res.ok()["createCategory"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn search_ids(app: &TestApp, filter: Value) -> Vec<String> {
    let res = app
        .gql(SEARCH, json!({ "f": filter, "n": 100 }), None)
        .await;
    res.ok()["properties"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_listing_is_created_published_and_found_by_every_filter(backend: Backend) {
    let app = spawn(backend).await;
    let (_, admin) = app.new_admin().await;
    let category_id = new_category(&app, &admin, "Sea views").await;
    let (host_email, host, _, host_id) = app.new_user().await;

    let id = create(
        &app,
        &host,
        json!({ "categoryId": category_id, "amenities": ["wifi", "kitchen", "pool"] }),
    )
    .await;
    let other = create(&app, &host, json!({ "title": "Mountain hut", "description": "Quiet hut in the snow", "address": { "line1": "Col", "city": "Chamonix", "country": "FR" }, "nightlyRate": { "amount": 30_000, "currency": "EUR" }, "maxGuests": 8, "amenities": ["fireplace"], "status": "PUBLISHED" })).await;
    assert!(
        search_ids(&app, json!({})).await == vec![other.clone()],
        "a draft is not searchable"
    );

    let published = app
        .gql(
            UPDATE,
            json!({ "id": id, "i": { "status": "PUBLISHED" } }),
            Some(&host),
        )
        .await;
    assert_eq!(published.ok()["updateProperty"]["status"], "PUBLISHED");

    let only = |v: Vec<String>| v == vec![id.clone()];
    assert!(only(search_ids(&app, json!({ "city": "marseille" })).await));
    assert!(search_ids(&app, json!({ "country": "FR" })).await.len() == 2);
    assert!(only(
        search_ids(&app, json!({ "categoryId": category_id })).await
    ));
    assert!(only(
        search_ids(&app, json!({ "minPrice": 10_000, "maxPrice": 15_000 })).await
    ));
    assert!(search_ids(&app, json!({ "guests": 5 })).await == vec![other.clone()]);
    assert!(only(
        search_ids(&app, json!({ "amenities": ["pool", "wifi"] })).await
    ));
    assert!(
        search_ids(&app, json!({ "amenities": ["pool", "fireplace"] }))
            .await
            .is_empty(),
        "amenities are all-of"
    );
    assert!(only(search_ids(&app, json!({ "text": "HARBOUR" })).await));
    assert!(
        search_ids(&app, json!({ "text": "100%" })).await.is_empty(),
        "LIKE wildcards in text are literal"
    );
    assert!(only(
        search_ids(
            &app,
            json!({ "city": "Marseille", "minPrice": 1, "guests": 4, "amenities": ["kitchen"] })
        )
        .await
    ));

    let q = "query($id: ID!) { property(id: $id) { title category { name } amenities nightlyRate { amount currency } host { id displayName email } } }";
    let seen_by_host = app.gql(q, json!({ "id": id }), Some(&host)).await;
    let p = &seen_by_host.ok()["property"];
    assert_eq!(p["category"]["name"], "Sea views");
    assert_eq!(p["amenities"], json!(["kitchen", "pool", "wifi"]));
    assert_eq!(
        p["nightlyRate"],
        json!({ "amount": 12_000, "currency": "EUR" })
    );
    assert_eq!(p["host"]["id"], host_id.as_str(), "the host is the caller");
    assert_eq!(
        p["host"]["email"],
        host_email.as_str(),
        "resolved by auth through the router"
    );
    assert_eq!(p["host"]["displayName"], "Test User");

    let public = app
        .gql(
            "query($id: ID!) { property(id: $id) { host { displayName } } }",
            json!({ "id": id }),
            None,
        )
        .await;
    assert_eq!(public.ok()["property"]["host"]["displayName"], "Test User");
}

async fn a_draft_is_invisible_to_others_via_property_properties_and_entities(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, host_id) = app.new_user().await;
    let (_, stranger, ..) = app.new_user().await;
    let (_, admin) = app.new_admin().await;
    let draft = create(&app, &host, json!({ "title": "Secret draft" })).await;
    let q = "query($id: ID!) { property(id: $id) { title status } }";

    assert_eq!(
        app.gql(q, json!({ "id": draft }), Some(&stranger))
            .await
            .ok()["property"],
        Value::Null
    );
    assert_eq!(
        app.gql(q, json!({ "id": draft }), None).await.ok()["property"],
        Value::Null
    );
    assert_eq!(
        app.gql(q, json!({ "id": draft }), Some(&host)).await.ok()["property"]["title"],
        "Secret draft"
    );
    assert_eq!(
        app.gql(q, json!({ "id": draft }), Some(&admin)).await.ok()["property"]["status"],
        "DRAFT"
    );
    assert!(search_ids(&app, json!({})).await.is_empty());

    // `_entities` straight to the catalog subgraph, as another subgraph's reference would be.
    let entities =
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Property { title } } }";
    let reps = json!({ "r": [{ "__typename": "Property", "id": draft }] });
    let direct = app
        .post(
            &app.catalog_url,
            entities,
            reps.clone(),
            Some(&stranger),
            &[],
        )
        .await;
    assert_eq!(direct.ok()["_entities"], json!([null]));
    let direct_host = app
        .post(&app.catalog_url, entities, reps, Some(&host), &[])
        .await;
    assert_eq!(direct_host.ok()["_entities"][0]["title"], "Secret draft");

    // User.properties: the host sees the draft, others do not.
    let mine = "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { properties { totalCount } } } }";
    let reps = json!({ "r": [{ "__typename": "User", "id": host_id }] });
    assert_eq!(
        app.post(&app.catalog_url, mine, reps.clone(), Some(&host), &[])
            .await
            .ok()["_entities"][0]["properties"]["totalCount"],
        1
    );
    assert_eq!(
        app.post(&app.catalog_url, mine, reps, Some(&stranger), &[])
            .await
            .ok()["_entities"][0]["properties"]["totalCount"],
        0
    );
    let via_router = app
        .gql(
            "{ me { properties { totalCount edges { node { title } } } } }",
            json!({}),
            Some(&host),
        )
        .await;
    assert_eq!(via_router.ok()["me"]["properties"]["totalCount"], 1);
}

async fn only_the_host_or_an_admin_updates_and_only_an_admin_deletes(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, ..) = app.new_user().await;
    let (_, guest, ..) = app.new_user().await;
    let (_, admin) = app.new_admin().await;
    let id = create(&app, &host, json!({ "status": "PUBLISHED" })).await;
    let rename = |t: &str| json!({ "id": id, "i": { "title": t } });

    assert_eq!(
        app.gql(UPDATE, rename("Mine now"), Some(&guest))
            .await
            .code(),
        "FORBIDDEN"
    );
    assert_eq!(
        app.gql(UPDATE, rename("Anon"), None).await.code(),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        app.gql(UPDATE, rename("By host"), Some(&host)).await.ok()["updateProperty"]["title"],
        "By host"
    );
    assert_eq!(
        app.gql(UPDATE, rename("By admin"), Some(&admin)).await.ok()["updateProperty"]["title"],
        "By admin"
    );
    let back_to_draft = app
        .gql(
            UPDATE,
            json!({ "id": id, "i": { "status": "DRAFT" } }),
            Some(&host),
        )
        .await;
    assert_eq!(back_to_draft.code(), "BAD_USER_INPUT");

    let delete = "mutation($id: ID!) { deleteProperty(id: $id) }";
    assert_eq!(
        app.gql(delete, json!({ "id": id }), Some(&host))
            .await
            .code(),
        "FORBIDDEN"
    );
    assert_eq!(
        app.gql(delete, json!({ "id": id }), Some(&admin))
            .await
            .ok()["deleteProperty"],
        true
    );
    assert_eq!(
        app.gql(delete, json!({ "id": id }), Some(&admin))
            .await
            .code(),
        "NOT_FOUND"
    );
    assert_eq!(
        app.gql(UPDATE, rename("Ghost"), Some(&host)).await.code(),
        "NOT_FOUND"
    );
}

async fn bad_listings_are_bad_user_input_and_store_nothing(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, ..) = app.new_user().await;
    let cases = [
        (
            json!({ "nightlyRate": { "amount": -100, "currency": "EUR" } }),
            "nightlyRate",
        ),
        (
            json!({ "nightlyRate": { "amount": 2_000_000_000, "currency": "EUR" } }),
            "nightlyRate",
        ),
        (
            json!({ "nightlyRate": { "amount": 100, "currency": "EURO" } }),
            "currency",
        ),
        (json!({ "maxGuests": 0 }), "maxGuests"),
        (json!({ "amenities": ["wifi", "moat"] }), "amenities"),
        (json!({ "title": "t".repeat(121) }), "title"),
        (json!({ "title": "   " }), "title"),
        (
            json!({ "address": { "line1": "x", "city": "y", "country": "France" } }),
            "country",
        ),
        (
            json!({ "categoryId": uuid::Uuid::now_v7().to_string() }),
            "categoryId",
        ),
        (json!({ "description": "d".repeat(5_001) }), "description"),
    ];
    for (overrides, field) in cases {
        let res = app
            .gql(
                CREATE,
                json!({ "i": listing(overrides.clone()) }),
                Some(&host),
            )
            .await;
        assert_eq!(res.code(), "BAD_USER_INPUT", "{overrides}: {}", res.body);
        assert_eq!(
            res.body["errors"][0]["extensions"]["field"], field,
            "{overrides}"
        );
    }
    let mine = app
        .gql(
            "{ me { properties { totalCount } } }",
            json!({}),
            Some(&host),
        )
        .await;
    assert_eq!(
        mine.ok()["me"]["properties"]["totalCount"],
        0,
        "nothing may be stored for bad input"
    );
    assert_eq!(
        app.gql(SEARCH, json!({ "n": 0 }), None).await.code(),
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.gql(SEARCH, json!({ "a": "bogus" }), None).await.code(),
        "BAD_USER_INPUT"
    );
    let long_text = app
        .gql(SEARCH, json!({ "f": { "text": "x".repeat(201) } }), None)
        .await;
    assert_eq!(long_text.code(), "BAD_USER_INPUT");
    let unknown_amenity = app
        .gql(SEARCH, json!({ "f": { "amenities": ["moat"] } }), None)
        .await;
    assert_eq!(unknown_amenity.code(), "BAD_USER_INPUT");
    assert_eq!(
        app.gql(
            SEARCH,
            json!({ "f": { "minPrice": 10, "maxPrice": 5 } }),
            None
        )
        .await
        .code(),
        "BAD_USER_INPUT"
    );
}

async fn walk(app: &TestApp, sort: &str, host: &str, insert_between: bool) -> Vec<(String, i64)> {
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let res = app
            .gql(SEARCH, json!({ "s": sort, "n": 5, "a": after }), None)
            .await;
        let page = &res.ok()["properties"];
        for e in page["edges"].as_array().unwrap() {
            seen.push((
                e["node"]["id"].as_str().unwrap().to_owned(),
                e["node"]["nightlyRate"]["amount"].as_i64().unwrap(),
            ));
        }
        if insert_between {
            // A new listing appears while the client pages: it must not shift what follows.
            create(app, host, json!({ "status": "PUBLISHED", "title": "Late arrival", "nightlyRate": { "amount": 9_000, "currency": "EUR" } })).await;
        }
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    seen
}

async fn pagination_walks_every_page_once_while_listings_are_inserted(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, ..) = app.new_user().await;
    let mut original = HashSet::new();
    for i in 0..23 {
        // Several listings share a price, so the tie-breaker is exercised.
        let amount = 10_000 + (i % 4) * 1_000;
        original.insert(create(&app, &host, json!({ "status": "PUBLISHED", "title": format!("Listing {i}"), "nightlyRate": { "amount": amount, "currency": "EUR" } })).await);
    }

    let newest = walk(&app, "NEWEST", &host, true).await;
    let ids: Vec<&String> = newest.iter().map(|(id, _)| id).collect();
    let unique: HashSet<&String> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no listing twice");
    assert_eq!(
        unique,
        original.iter().collect::<HashSet<_>>(),
        "every original listing once, none skipped"
    );

    for sort in ["PRICE_ASC", "PRICE_DESC"] {
        let walked = walk(&app, sort, &host, false).await;
        let total = app.gql(SEARCH, json!({}), None).await.ok()["properties"]["totalCount"]
            .as_u64()
            .unwrap();
        assert_eq!(walked.len() as u64, total, "{sort}");
        assert_eq!(
            walked
                .iter()
                .map(|(id, _)| id)
                .collect::<HashSet<_>>()
                .len(),
            walked.len(),
            "{sort}: no duplicates"
        );
        let prices: Vec<i64> = walked.iter().map(|(_, p)| *p).collect();
        let mut sorted = prices.clone();
        sorted.sort();
        if sort == "PRICE_DESC" {
            sorted.reverse();
        }
        assert_eq!(prices, sorted, "{sort}");
    }
}

async fn a_page_of_50_with_hosts_costs_the_same_queries_as_a_page_of_10(backend: Backend) {
    let app = spawn(backend).await;
    let (_, admin) = app.new_admin().await;
    let category_id = new_category(&app, &admin, "Lofts").await;
    for _ in 0..10 {
        let (_, host, ..) = app.new_user().await;
        for _ in 0..5 {
            create(
                &app,
                &host,
                json!({ "status": "PUBLISHED", "categoryId": category_id }),
            )
            .await;
        }
    }
    let q = "query($n: Int) { properties(first: $n) { edges { node { title category { name } host { displayName } } } } }";
    let mut cost = Vec::new();
    for n in [10, 50] {
        let (auth_before, catalog_before) =
            (app.auth_statements.get(), app.catalog_statements.get());
        let res = app.gql(q, json!({ "n": n }), None).await;
        let edges = res.ok()["properties"]["edges"].as_array().unwrap().clone();
        assert_eq!(edges.len(), n);
        assert!(
            edges
                .iter()
                .all(|e| e["node"]["host"]["displayName"] == "Test User"
                    && e["node"]["category"]["name"] == "Lofts")
        );
        cost.push((
            app.auth_statements.get() - auth_before,
            app.catalog_statements.get() - catalog_before,
        ));
    }
    assert_eq!(
        cost[0], cost[1],
        "statements (auth, catalog) for 10 vs 50 items: {cost:?}"
    );
    assert_eq!(cost[1].0, 1, "all hosts of a page in one auth query");
    // totalCount costs one count statement, and only when it is asked for.
    let before = app.catalog_statements.get();
    let counted = app
        .gql(
            "{ properties(first: 50) { totalCount edges { node { id } } } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(counted.ok()["properties"]["totalCount"], 50);
    assert_eq!(app.catalog_statements.get() - before, cost[1].1 + 1);
    assert_eq!(cost[1].1, 3, "page, amenities, categories: {cost:?}");
}

async fn only_admins_manage_categories(backend: Backend) {
    let app = spawn(backend).await;
    let (_, guest, ..) = app.new_user().await;
    let (_, admin) = app.new_admin().await;
    let create = "mutation($n: String!, $s: String) { createCategory(input: { name: $n, slug: $s }) { name slug } }";
    assert_eq!(
        app.gql(create, json!({ "n": "Boats" }), Some(&guest))
            .await
            .code(),
        "FORBIDDEN"
    );
    assert_eq!(
        app.gql(create, json!({ "n": "Boats" }), Some(&admin))
            .await
            .ok()["createCategory"]["slug"],
        "boats"
    );
    let dup = app
        .gql(
            create,
            json!({ "n": "More boats", "s": "boats" }),
            Some(&admin),
        )
        .await;
    assert_eq!(dup.code(), "BAD_USER_INPUT");
    assert_eq!(
        app.gql(create, json!({ "n": "  " }), Some(&admin))
            .await
            .code(),
        "BAD_USER_INPUT"
    );
    let list = app
        .gql("{ categories { name slug } }", json!({}), None)
        .await;
    assert_eq!(
        list.ok()["categories"],
        json!([{ "name": "Boats", "slug": "boats" }])
    );
}

test_on_both_backends!(
    listing_a_property_makes_a_guest_a_host,
    service_operations_are_hidden_and_need_the_credential
);

async fn listing_a_property_makes_a_guest_a_host(backend: Backend) {
    let app = spawn(backend).await;
    let (email, token, ..) = app.new_user().await;
    assert_eq!(app.me(&token).await.ok()["me"]["role"], "GUEST");
    create(&app, &token, json!({})).await;
    assert_eq!(
        app.me(&token).await.ok()["me"]["role"],
        "HOST",
        "auth learnt it"
    );
    // The next token carries it, so every subgraph sees a host.
    let fresh = app.login(&email, crate::helpers::PASSWORD).await;
    assert_eq!(fresh.ok()["login"]["user"]["role"], "HOST");
}

async fn service_operations_are_hidden_and_need_the_credential(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, host_id) = app.new_user().await;
    let id = create(
        &app,
        &host,
        json!({ "nightlyRate": { "amount": 9_900, "currency": "EUR" }, "maxGuests": 3 }),
    )
    .await;
    let quote = "query($id: ID!) { propertyQuote(id: $id) { hostId status nightlyRate { amount currency } maxGuests cancellationPolicy } }";
    let promote = "mutation($u: ID!) { promoteToHost(userId: $u) { role } }";

    // Not in the supergraph's API: the router refuses the operations outright.
    let via_router = app.gql(quote, json!({ "id": id }), Some(&host)).await;
    assert_eq!(
        via_router.code(),
        "GRAPHQL_VALIDATION_FAILED",
        "{}",
        via_router.body
    );
    assert_eq!(
        app.gql(promote, json!({ "u": host_id }), Some(&host))
            .await
            .code(),
        "GRAPHQL_VALIDATION_FAILED"
    );
    // Even with the credential header: the router does not forward it.
    let smuggled = app
        .post(
            &app.router_url,
            quote,
            json!({ "id": id }),
            None,
            &[("x-draftr-service-token", crate::helpers::SERVICE_TOKEN)],
        )
        .await;
    assert_eq!(smuggled.code(), "GRAPHQL_VALIDATION_FAILED");

    // Straight to the subgraph: refused without the credential, or with a wrong one.
    let bare = app
        .post(
            &app.catalog_url,
            quote,
            json!({ "id": id }),
            Some(&host),
            &[],
        )
        .await;
    assert_eq!(bare.code(), "FORBIDDEN");
    let wrong = app
        .post(
            &app.catalog_url,
            quote,
            json!({ "id": id }),
            None,
            &[("x-draftr-service-token", "guess")],
        )
        .await;
    assert_eq!(wrong.code(), "FORBIDDEN");
    assert_eq!(
        app.post(
            &app.auth_url,
            promote,
            json!({ "u": host_id }),
            Some(&host),
            &[]
        )
        .await
        .code(),
        "FORBIDDEN"
    );

    let served = app
        .post(
            &app.catalog_url,
            quote,
            json!({ "id": id }),
            None,
            &[("x-draftr-service-token", crate::helpers::SERVICE_TOKEN)],
        )
        .await;
    let q = &served.ok()["propertyQuote"];
    assert_eq!(q["hostId"], host_id.as_str());
    assert_eq!(q["status"], "DRAFT");
    assert_eq!(
        q["nightlyRate"],
        json!({ "amount": 9_900, "currency": "EUR" })
    );
    assert_eq!(q["maxGuests"], 3);
    assert_eq!(q["cancellationPolicy"], "FLEXIBLE");
}

/// `User.email` is private, and nullable so that its refusal nulls that one field: a page of
/// listings asking for `host { email }` anonymously (or as a stranger) keeps every listing and
/// host, with `email: null` and the refusal in `errors`.
async fn a_page_asking_for_host_emails_anonymously_keeps_every_listing(backend: Backend) {
    let app = spawn(backend).await;
    let (host_email, host, _, host_id) = app.new_user().await;
    let first = create(
        &app,
        &host,
        json!({ "status": "PUBLISHED", "title": "First" }),
    )
    .await;
    let second = create(
        &app,
        &host,
        json!({ "status": "PUBLISHED", "title": "Second" }),
    )
    .await;
    let query = "{ properties(first: 10) { edges { node { id host { id displayName email } } } } }";
    let (_, stranger, _, _) = app.new_user().await;

    for (who, token) in [("anonymous", None), ("a stranger", Some(stranger.as_str()))] {
        let res = app.gql(query, json!({}), token).await;
        let edges = res.data()["properties"]["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("{who}: the page is gone: {}", res.body));
        let ids: HashSet<&str> = edges
            .iter()
            .map(|e| e["node"]["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            HashSet::from([first.as_str(), second.as_str()]),
            "{who}"
        );
        for edge in edges {
            let h = &edge["node"]["host"];
            assert_eq!(h["id"], host_id.as_str(), "{who}: {}", res.body);
            assert_eq!(h["displayName"], "Test User", "{who}");
            assert!(h["email"].is_null(), "{who} read an email: {}", res.body);
        }
        let expected = if token.is_none() {
            "UNAUTHENTICATED"
        } else {
            "FORBIDDEN"
        };
        assert_eq!(res.code(), expected, "{who}: {}", res.body);
        assert!(!res.body.to_string().contains(&host_email), "{who}");
    }

    // The host still reads their own email on the same page.
    let own = app.gql(query, json!({}), Some(&host)).await;
    let edges = own.ok()["properties"]["edges"].as_array().unwrap().clone();
    assert!(
        edges
            .iter()
            .all(|e| e["node"]["host"]["email"] == host_email.as_str())
    );
}

/// Found by fuzzing the subgraphs' own ports (tests/fuzz): `_entities` with a representation
/// whose `__typename` names no entity of that subgraph, or is missing, answered
/// INTERNAL_SERVER_ERROR. It is the caller's bad input.
async fn a_representation_naming_no_entity_is_bad_user_input_on_every_subgraph(backend: Backend) {
    let app = spawn(backend).await;
    let (_, token, ..) = app.new_user().await;
    let entities = "query($r: [_Any!]!) { _entities(representations: $r) { __typename } }";
    let id = "01a23145-a7c1-77f3-b5d5-4d01640f3e75";
    for url in [
        &app.auth_url,
        &app.catalog_url,
        &app.reservations_url,
        &app.payments_url,
        &app.notifications_url,
    ] {
        for representation in [
            json!({ "__typename": "Category", "id": id }),
            json!({ "__typename": "NoSuchType", "id": id }),
            json!({ "id": id }),
            json!({ "__typename": 7, "id": id }),
        ] {
            for token in [None, Some(token.as_str())] {
                let res = app
                    .post(url, entities, json!({ "r": [representation] }), token, &[])
                    .await;
                assert_eq!(
                    res.code(),
                    "BAD_USER_INPUT",
                    "{url} {representation}: {}",
                    res.body
                );
            }
        }
    }
}
