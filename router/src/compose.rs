//! Composing the supergraph in Rust with `apollo-federation`, the same library (at the same
//! version) the router uses to read it.

use apollo_federation::composition::{CompositionOptions, compose as federation_compose};
use apollo_federation::subgraph::typestate::Subgraph;

/// One subgraph's SDL and the URL the router calls it at by default.
#[derive(Debug, Clone)]
pub struct SubgraphSdl {
    pub name: String,
    pub url: String,
    pub sdl: String,
}

/// Composes the supergraph SDL, or explains every composition error.
pub fn compose(subgraphs: &[SubgraphSdl]) -> anyhow::Result<String> {
    let parsed = subgraphs
        .iter()
        .map(|s| {
            Subgraph::parse(&s.name, &s.url, &s.sdl)
                .map_err(|e| anyhow::anyhow!("subgraph {}: {e}", s.name))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let supergraph =
        federation_compose(parsed, CompositionOptions::default()).map_err(|failure| {
            let errors = failure
                .errors
                .iter()
                .map(|e| format!("- {e}"))
                .collect::<Vec<_>>()
                .join("\n");
            anyhow::anyhow!("composition failed:\n{errors}")
        })?;
    Ok(supergraph.schema().schema().to_string())
}

/// The API schema of a supergraph: what clients see (no `@inaccessible` fields or types, no
/// federation machinery), as the router serves it to introspection. Client codegen, the
/// operation check and the breaking-change check read this, not the supergraph.
pub fn api_schema(supergraph_sdl: &str) -> anyhow::Result<String> {
    let supergraph = apollo_federation::Supergraph::new(supergraph_sdl)
        .map_err(|e| anyhow::anyhow!("the supergraph does not load: {e}"))?;
    let api = supergraph
        .to_api_schema(apollo_federation::ApiSchemaOptions {
            include_defer: true,
            include_stream: false,
        })
        .map_err(|e| anyhow::anyhow!("no API schema from the supergraph: {e}"))?;
    Ok(api.schema().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const USERS: &str = r#"
extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
type User @key(fields: "id") { id: ID! name: String! }
type Query { me: User }
"#;
    const POSTS: &str = r#"
extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
type User @key(fields: "id") { id: ID! posts: [String!]! }
type Query { latest: [String!]! }
"#;

    fn sub(name: &str, sdl: &str) -> SubgraphSdl {
        SubgraphSdl {
            name: name.into(),
            url: format!("http://127.0.0.1/{name}"),
            sdl: sdl.into(),
        }
    }

    #[test]
    fn two_subgraphs_sharing_an_entity_compose() {
        let supergraph = compose(&[sub("users", USERS), sub("posts", POSTS)]).unwrap();
        assert!(supergraph.contains("join__Graph"), "{supergraph}");
        assert!(supergraph.contains("posts: [String!]!"));
    }

    #[test]
    fn conflicting_field_types_fail_composition_with_a_reason() {
        let bad = POSTS.replace("Query { latest", "Query { me: String latest");
        let err = compose(&[sub("users", USERS), sub("posts", &bad)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("composition failed") || err.contains("me"),
            "{err}"
        );
    }
}
