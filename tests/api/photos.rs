//! Listing photos through the router: set, read back in order, reordered, removed, validated,
//! owned by the host, and loaded for a whole search page in one statement.

use draftr_common::test_on_both_backends;
use draftr_common::testing::Backend;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn};

test_on_both_backends!(
    photos_are_set_in_order_reordered_kept_and_removed,
    bad_photos_are_bad_user_input_and_change_nothing,
    only_the_host_or_an_admin_changes_photos,
    a_search_page_with_photos_costs_one_statement_more_whatever_its_size,
);

const CREATE: &str = "mutation($i: CreatePropertyInput!) { createProperty(input: $i) { id photos { url caption } } }";
const UPDATE: &str = "mutation($id: ID!, $i: UpdatePropertyInput!) {
  updateProperty(id: $id, input: $i) { id title photos { url caption } coverPhoto { url } }
}";
const READ: &str = "query($id: ID!) {
  property(id: $id) { title photos { url caption } coverPhoto { url caption } }
}";

fn listing(photos: Value) -> Value {
    json!({
        "title": "Harbour flat",
        "address": { "line1": "3 Quay Street", "city": "Marseille", "country": "FR" },
        "nightlyRate": { "amount": 12_000, "currency": "EUR" },
        "maxGuests": 4,
        "status": "PUBLISHED",
        "photos": photos,
    })
}

fn url(name: &str) -> String {
    format!("https://img.example.com/{name}.jpg")
}

/// Photos as the API returns them, from plain (url, caption) pairs.
fn photos(list: &[(&str, Option<&str>)]) -> Value {
    Value::Array(
        list.iter()
            .map(|(name, caption)| json!({ "url": url(name), "caption": caption }))
            .collect(),
    )
}

async fn create(app: &TestApp, token: &str, list: Value) -> String {
    let res = app
        .gql(CREATE, json!({ "i": listing(list) }), Some(token))
        .await;
    res.ok()["createProperty"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The stored property (title, photos), read back with a fresh request.
async fn read(app: &TestApp, id: &str) -> Value {
    app.gql(READ, json!({ "id": id }), None).await.ok()["property"].clone()
}

async fn photos_are_set_in_order_reordered_kept_and_removed(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, ..) = app.new_user().await;
    let three = photos(&[
        ("front", Some("The front door")),
        ("kitchen", None),
        ("view", Some("From the balcony")),
    ]);
    let res = app
        .gql(CREATE, json!({ "i": listing(three.clone()) }), Some(&host))
        .await;
    assert_eq!(res.ok()["createProperty"]["photos"], three);
    let id = res.ok()["createProperty"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let stored = read(&app, &id).await;
    assert_eq!(stored["photos"], three, "read back in the order given");
    assert_eq!(
        stored["coverPhoto"],
        json!({ "url": url("front"), "caption": "The front door" }),
        "the first is the cover"
    );

    // Reordering is sending the same photos in a new order.
    let reordered = photos(&[
        ("view", Some("From the balcony")),
        ("front", Some("The front door")),
        ("kitchen", None),
    ]);
    let res = app
        .gql(
            UPDATE,
            json!({ "id": id, "i": { "photos": reordered } }),
            Some(&host),
        )
        .await;
    assert_eq!(res.ok()["updateProperty"]["photos"], reordered);
    assert_eq!(res.ok()["updateProperty"]["coverPhoto"]["url"], url("view"));
    assert_eq!(read(&app, &id).await["photos"], reordered);

    // An update without `photos` (or with null) leaves them alone.
    for input in [json!({ "title": "Renamed" }), json!({ "photos": null })] {
        let res = app
            .gql(UPDATE, json!({ "id": id, "i": input }), Some(&host))
            .await;
        assert_eq!(res.ok()["updateProperty"]["photos"], reordered, "{input}");
    }
    let stored = read(&app, &id).await;
    assert_eq!(stored["title"], "Renamed");
    assert_eq!(stored["photos"], reordered);

    // A different list replaces the old one whole; normalised URLs come back normalised.
    let res = app
        .gql(
            UPDATE,
            json!({ "id": id, "i": { "photos": [
                { "url": "HTTPS://IMG.Example.com/new.jpg", "caption": "  New  " },
                { "url": url("front"), "caption": "   " },
            ] } }),
            Some(&host),
        )
        .await;
    let replaced = json!([
        { "url": url("new"), "caption": "New" },
        { "url": url("front"), "caption": null },
    ]);
    assert_eq!(res.ok()["updateProperty"]["photos"], replaced);
    assert_eq!(read(&app, &id).await["photos"], replaced);

    // [] removes every photo.
    let res = app
        .gql(
            UPDATE,
            json!({ "id": id, "i": { "photos": [] } }),
            Some(&host),
        )
        .await;
    assert_eq!(res.ok()["updateProperty"]["photos"], json!([]));
    let stored = read(&app, &id).await;
    assert_eq!(stored["photos"], json!([]));
    assert_eq!(stored["coverPhoto"], Value::Null);

    // A listing created without photos has none; 30 is allowed, and they show in search.
    let bare = app
        .gql(CREATE, json!({ "i": listing(Value::Null) }), Some(&host))
        .await;
    assert_eq!(bare.ok()["createProperty"]["photos"], json!([]));
    let thirty: Vec<Value> = (0..30)
        .map(|i| json!({ "url": url(&format!("p{i}")) }))
        .collect();
    let full = create(&app, &host, Value::Array(thirty)).await;
    let page = app
        .gql(
            "{ properties(first: 10) { edges { node { id photos { url } coverPhoto { url } } } } }",
            json!({}),
            None,
        )
        .await;
    let edges = page.ok()["properties"]["edges"].as_array().unwrap().clone();
    assert_eq!(edges.len(), 3);
    for edge in &edges {
        let node = &edge["node"];
        let expected = if node["id"] == full.as_str() { 30 } else { 0 };
        assert_eq!(node["photos"].as_array().unwrap().len(), expected, "{node}");
        if expected == 30 {
            assert_eq!(node["photos"][29]["url"], url("p29"));
            assert_eq!(node["coverPhoto"]["url"], url("p0"));
        } else {
            assert_eq!(node["coverPhoto"], Value::Null);
        }
    }
}

async fn bad_photos_are_bad_user_input_and_change_nothing(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, ..) = app.new_user().await;
    let good = photos(&[("front", Some("The front door")), ("kitchen", None)]);
    let id = create(&app, &host, good.clone()).await;

    let ok = json!({ "url": url("ok") });
    let thirty_one: Vec<Value> = (0..31)
        .map(|i| json!({ "url": url(&format!("p{i}")) }))
        .collect();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!([ok, { "url": "http://img.example.com/a.jpg" }]),
            "photos[1].url must be an https URL",
        ),
        (
            json!([{ "url": "/photos/a.jpg" }]),
            "photos[0].url must be an absolute https URL",
        ),
        (
            json!([{ "url": "https://ann:secret@img.example.com/a.jpg" }]),
            "photos[0].url must not contain a user name or password",
        ),
        (
            json!([ok, { "url": url("second") }, { "url": format!("https://img.example.com/{}", "a".repeat(2048)) }]),
            "photos[2].url is too long (at most 2048 characters)",
        ),
        (Value::Array(thirty_one), "at most 30 photos per listing"),
        (
            json!([ok, { "url": url("other") }, { "url": "https://IMG.example.com/ok.jpg" }]),
            "photos[2].url is the same as photos[0].url",
        ),
        (
            json!([{ "url": url("a"), "caption": "c".repeat(201) }]),
            "photos[0].caption is too long (at most 200 characters)",
        ),
    ];
    for (bad, message) in &cases {
        let res = app
            .gql(CREATE, json!({ "i": listing(bad.clone()) }), Some(&host))
            .await;
        assert_eq!(res.code(), "BAD_USER_INPUT", "create {bad}: {}", res.body);
        assert_eq!(res.body["errors"][0]["extensions"]["field"], "photos");
        assert!(res.message().starts_with(message), "{}", res.message());

        // The title would change too if the update went through: nothing of it may.
        let res = app
            .gql(
                UPDATE,
                json!({ "id": id, "i": { "title": "Changed", "photos": bad } }),
                Some(&host),
            )
            .await;
        assert_eq!(res.code(), "BAD_USER_INPUT", "update {bad}: {}", res.body);
        assert!(res.message().starts_with(message), "{}", res.message());
        let stored = read(&app, &id).await;
        assert_eq!(stored["title"], "Harbour flat", "{bad}");
        assert_eq!(stored["photos"], good, "{bad}");
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
        1,
        "no refused listing is stored"
    );
}

async fn only_the_host_or_an_admin_changes_photos(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, ..) = app.new_user().await;
    let (_, stranger, ..) = app.new_user().await;
    let (_, admin) = app.new_admin().await;
    let good = photos(&[("front", None)]);
    let id = create(&app, &host, good.clone()).await;
    let set = |name: &str| json!({ "id": id, "i": { "photos": photos(&[(name, None)]) } });

    assert_eq!(
        app.gql(UPDATE, set("mine"), Some(&stranger)).await.code(),
        "FORBIDDEN"
    );
    assert_eq!(
        app.gql(
            UPDATE,
            json!({ "id": id, "i": { "photos": [] } }),
            Some(&stranger)
        )
        .await
        .code(),
        "FORBIDDEN"
    );
    assert_eq!(
        app.gql(UPDATE, set("anon"), None).await.code(),
        "UNAUTHENTICATED"
    );
    assert_eq!(read(&app, &id).await["photos"], good);

    let by_admin = app.gql(UPDATE, set("admin"), Some(&admin)).await;
    assert_eq!(
        by_admin.ok()["updateProperty"]["photos"],
        photos(&[("admin", None)])
    );
    let by_host = app.gql(UPDATE, set("host"), Some(&host)).await;
    assert_eq!(
        by_host.ok()["updateProperty"]["photos"],
        photos(&[("host", None)])
    );
    assert_eq!(read(&app, &id).await["photos"], photos(&[("host", None)]));
}

async fn a_search_page_with_photos_costs_one_statement_more_whatever_its_size(backend: Backend) {
    let app = spawn(backend).await;
    let (_, admin) = app.new_admin().await;
    let category = app
        .gql(
            "mutation { createCategory(input: { name: \"Lofts\" }) { id } }",
            json!({}),
            Some(&admin),
        )
        .await;
    let category_id = category.ok()["createCategory"]["id"].clone();
    for h in 0..10 {
        let (_, host, ..) = app.new_user().await;
        for l in 0..5 {
            let mut input = listing(photos(&[
                (&format!("{h}-{l}-a"), Some("Outside")),
                (&format!("{h}-{l}-b"), None),
                (&format!("{h}-{l}-c"), Some("Inside")),
            ]));
            input["categoryId"] = category_id.clone();
            app.gql(CREATE, json!({ "i": input }), Some(&host))
                .await
                .ok();
        }
    }
    let fields = "title amenities category { name } nightlyRate { amount } host { displayName }";
    let without =
        format!("query($n: Int) {{ properties(first: $n) {{ edges {{ node {{ {fields} }} }} }} }}");
    let with = format!(
        "query($n: Int) {{ properties(first: $n) {{ edges {{ node {{ {fields} photos {{ url caption }} coverPhoto {{ url }} }} }} }} }}"
    );
    // Catalog statements for one request of each query at each page size.
    let mut cost = Vec::new();
    for (name, query) in [("without photos", &without), ("with photos", &with)] {
        for n in [10, 50] {
            let before = app.catalog_statements.get();
            let res = app.gql(query, json!({ "n": n }), None).await;
            let statements = app.catalog_statements.get() - before;
            let edges = res.ok()["properties"]["edges"].as_array().unwrap().clone();
            assert_eq!(edges.len(), n);
            if query == &with {
                for edge in &edges {
                    let node = &edge["node"];
                    assert_eq!(node["photos"].as_array().unwrap().len(), 3, "{node}");
                    assert_eq!(node["photos"][1]["caption"], Value::Null);
                    assert_eq!(node["coverPhoto"]["url"], node["photos"][0]["url"]);
                }
            }
            println!(
                "catalog statements per request, search page of {n} {name} ({backend:?}): {statements}"
            );
            cost.push((name, n, statements));
        }
    }
    assert_eq!(cost[0].2, cost[1].2, "without photos, 10 vs 50: {cost:?}");
    assert_eq!(cost[2].2, cost[3].2, "with photos, 10 vs 50: {cost:?}");
    assert_eq!(cost[0].2, 3, "page, amenities, categories: {cost:?}");
    assert_eq!(
        cost[2].2,
        cost[0].2 + 1,
        "photos and coverPhoto of a whole page in one statement: {cost:?}"
    );

    // The largest page with photos is within the cost limit.
    let res = app.gql(&with, json!({ "n": 100 }), None).await;
    assert_eq!(
        res.ok()["properties"]["edges"].as_array().unwrap().len(),
        50
    );
}
