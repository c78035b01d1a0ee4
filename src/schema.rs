//! The schema files under `schema/`: each subgraph's SDL exported from code, the supergraph
//! composed from them, and its API schema (`api.graphql`: what clients see). CI runs [`check`], so a hand-edited or stale file fails.

use std::path::Path;

use draftr_router::compose::{SubgraphSdl, compose};

/// Every subgraph: its name in the supergraph, its default URL, and its SDL from code.
pub fn subgraphs() -> Vec<SubgraphSdl> {
    vec![
        SubgraphSdl {
            name: "auth".into(),
            url: "http://127.0.0.1:4001/".into(),
            sdl: draftr_auth::graphql::sdl(),
        },
        SubgraphSdl {
            name: "catalog".into(),
            url: "http://127.0.0.1:4002/".into(),
            sdl: draftr_catalog::graphql::sdl(),
        },
        SubgraphSdl {
            name: "reservations".into(),
            url: "http://127.0.0.1:4003/".into(),
            sdl: draftr_reservations::graphql::sdl(),
        },
        SubgraphSdl {
            name: "payments".into(),
            url: "http://127.0.0.1:4004/".into(),
            sdl: draftr_payments::graphql::sdl(),
        },
        SubgraphSdl {
            name: "notifications".into(),
            url: "http://127.0.0.1:4005/".into(),
            sdl: draftr_notifications::graphql::sdl(),
        },
    ]
}

/// [`subgraphs`] at the URLs in `urls` (subgraph name → URL); a name not in it keeps its
/// default URL.
pub fn subgraphs_at(urls: &std::collections::BTreeMap<String, String>) -> Vec<SubgraphSdl> {
    let mut all = subgraphs();
    for subgraph in &mut all {
        if let Some(url) = urls.get(&subgraph.name) {
            subgraph.url = url.clone();
        }
    }
    all
}

/// The files `export` writes: `(file name, contents)`.
pub fn generate() -> anyhow::Result<Vec<(String, String)>> {
    let subgraphs = subgraphs();
    let supergraph = compose(&subgraphs)?;
    let mut files: Vec<(String, String)> = subgraphs
        .into_iter()
        .map(|s| (format!("{}.graphql", s.name), normalise(&s.sdl)))
        .collect();
    files.push((
        "api.graphql".into(),
        normalise(&draftr_router::compose::api_schema(&supergraph)?),
    ));
    files.push(("supergraph.graphql".into(), normalise(&supergraph)));
    Ok(files)
}

fn normalise(sdl: &str) -> String {
    format!("{}\n", sdl.trim_end())
}

/// Writes the generated files into `dir`.
pub fn export(dir: &Path) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (name, contents) in generate()? {
        std::fs::write(dir.join(&name), contents)?;
        written.push(name);
    }
    Ok(written)
}

/// Fails when a committed file differs from what the code produces, or composition fails.
pub fn check(dir: &Path) -> anyhow::Result<()> {
    let mut stale = Vec::new();
    for (name, expected) in generate()? {
        let committed = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
        if committed != expected {
            stale.push(name);
        }
    }
    if stale.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "schema files differ from what the code produces: {}. Run `draftr schema export` and commit the result.",
            stale.join(", ")
        )
    }
}
