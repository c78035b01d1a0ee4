//! `draftr-router`: Apollo Router with Draftr's native plugins compiled in.
//!
//! Run it like the stock router:
//! `draftr-router --config router/router.yaml --supergraph schema/supergraph.graphql`.

fn main() -> anyhow::Result<()> {
    draftr_router::plugins::ensure_registered();
    apollo_router::main()
}
