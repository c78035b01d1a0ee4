//! The auth subgraph's GraphQL API (`docs/api.md`, "auth").

mod loaders;
mod mutation;
mod query;
mod types;

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{EmptySubscription, SDLExportOptions, Schema, SchemaBuilder};
use draftr_common::config::LimitSettings;

pub use loaders::UserLoader;
pub use mutation::Mutation;
pub use query::Query;

use crate::service::AuthService;

pub type AuthSchema = Schema<Query, Mutation, EmptySubscription>;

fn builder(limits: &LimitSettings) -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    draftr_common::graphql::harden(
        Schema::build(Query, Mutation, EmptySubscription).enable_federation(),
        limits,
    )
}

/// The executable schema, wired to the service.
pub fn schema(service: Arc<AuthService>, limits: &LimitSettings) -> AuthSchema {
    let loader = DataLoader::new(UserLoader::new(service.clone()), tokio::spawn);
    builder(limits).data(service).data(loader).finish()
}

/// The subgraph SDL as the router composes it (`schema/auth.graphql`).
pub fn sdl() -> String {
    // The limits do not show in the SDL.
    builder(&LimitSettings::default())
        .finish()
        .sdl_with_options(SDLExportOptions::new().federation().compose_directive())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_graphql::{Request, Variables};
    use draftr_common::jwt::{SigningKey, TokenPolicy};
    use draftr_common::kv::InMemoryKv;
    use draftr_common::testing::TestDatabase;
    use draftr_common::{Claims, Role, Viewer};
    use serde_json::{Value, json};
    use uuid::Uuid;

    use crate::config::{ThrottleSettings, TokenSettings};
    use crate::passwords::Passwords;
    use crate::service::AuthService;
    use crate::tokens::TokenIssuer;

    fn claims(sub: Uuid, role: Role) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub,
            sid: Uuid::now_v7(),
            role,
            iss: "draftr-auth".into(),
            aud: "draftr".into(),
            iat: now,
            exp: now + 60,
            jti: Uuid::new_v4(),
        }
    }

    /// A refused `email` is null with its error reported; the user around it is still there,
    /// so a page of users (or of properties asking for their host's email) survives it.
    #[tokio::test]
    async fn a_refused_email_nulls_that_field_only() {
        let test = TestDatabase::sqlite();
        let db = draftr_common::db::connect(&test.settings).await.unwrap();
        crate::app::migrate(&db).await.unwrap();
        let policy = TokenPolicy {
            issuer: "draftr-auth".into(),
            audience: "draftr".into(),
        };
        let service = Arc::new(AuthService::new(
            db,
            Passwords::new().unwrap(),
            TokenIssuer::new(SigningKey::generate(), TokenSettings::default(), policy),
            Arc::new(InMemoryKv::default()),
            ThrottleSettings::default(),
        ));
        let ann = service
            .ensure_user(
                "ann@example.com",
                "correct horse battery",
                "Ann",
                Role::Guest,
            )
            .await
            .unwrap();
        let schema = super::schema(service, &Default::default());
        let ask = |query: &str, variables: Value, viewer: Viewer| {
            let request = Request::new(query)
                .variables(Variables::from_json(variables))
                .data(viewer);
            let schema = schema.clone();
            async move { serde_json::to_value(schema.execute(request).await).unwrap() }
        };
        let entities = "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { displayName email } } }";
        let representations = json!({ "r": [
            { "__typename": "User", "id": ann.id.to_string() },
            { "__typename": "User", "id": Uuid::now_v7().to_string() },
            { "__typename": "User", "id": "not-an-id" },
        ] });
        let user = "query($id: ID!) { user(id: $id) { displayName email } }";
        let id = json!({ "id": ann.id.to_string() });

        for (viewer, code) in [
            (
                Viewer::User(claims(Uuid::now_v7(), Role::Host)),
                "FORBIDDEN",
            ),
            (Viewer::Anonymous, "UNAUTHENTICATED"),
        ] {
            let res = ask(entities, representations.clone(), viewer.clone()).await;
            let found = &res["data"]["_entities"];
            assert_eq!(found[0]["displayName"], "Ann", "{res}");
            // async-graphql leaves a failed nullable field out of the object; the router
            // completes it as null.
            assert!(found[0].get("email").is_none_or(Value::is_null), "{res}");
            assert_eq!(found[1], Value::Null, "an unknown id is null: {res}");
            assert_eq!(found[2], Value::Null, "a key that is no id is null: {res}");
            let errors = res["errors"].as_array().unwrap();
            assert_eq!(errors.len(), 1, "{res}");
            assert_eq!(errors[0]["extensions"]["code"], code, "{res}");
            assert_eq!(errors[0]["path"][0], "_entities", "{res}");
            assert_eq!(
                errors[0]["path"].as_array().unwrap().last().unwrap(),
                "email"
            );

            let res = ask(user, id.clone(), viewer).await;
            assert_eq!(res["data"]["user"]["displayName"], "Ann", "{res}");
            assert!(res["data"]["user"].get("email").is_none_or(Value::is_null));
            assert_eq!(res["errors"][0]["extensions"]["code"], code, "{res}");
            assert_eq!(res["errors"][0]["path"], json!(["user", "email"]), "{res}");
        }

        for viewer in [
            Viewer::User(claims(ann.id, Role::Guest)),
            Viewer::User(claims(Uuid::now_v7(), Role::Admin)),
        ] {
            let res = ask(entities, representations.clone(), viewer).await;
            assert_eq!(
                res["data"]["_entities"][0]["email"], "ann@example.com",
                "{res}"
            );
            assert!(res.get("errors").is_none(), "{res}");
        }
    }
}
