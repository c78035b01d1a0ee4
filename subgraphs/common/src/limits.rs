//! The request limits every subgraph applies ([`LimitSettings`]), as an async-graphql
//! extension: aliases, depth, root fields of a mutation and sign-ins are counted on the parsed
//! document, before validation; cost is async-graphql's complexity (each list field's
//! `#[graphql(complexity = …)]` is [`crate::graphql::list_cost`]), whose refusal this
//! extension words with the limit. Every refusal is `GRAPHQL_VALIDATION_FAILED`, with a message
//! that names the limit, and nothing is resolved.
//!
//! The router's `draftr.limits` plugin counts the same way over the client's whole operation,
//! before it plans any subgraph call; these checks are for the fetches it makes and for callers
//! that reach a subgraph directly.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{
    ExecutableDocument, FragmentDefinition, OperationType, Selection, SelectionSet,
};
use async_graphql::{Name, Positioned, ServerError, ServerResult, ValidationResult, Variables};

use crate::config::LimitSettings;
use crate::error::ErrorCode;

/// The mutations that sign up or sign in (auth's): each hashes a password or rotates a token.
pub const SIGN_IN_MUTATIONS: [&str; 3] = ["register", "login", "refreshToken"];

/// Introspection's entry points: not counted for depth (GraphiQL's own introspection query is
/// 13 deep); async-graphql's depth limit, at least [`INTROSPECTION_DEPTH`], bounds them.
const INTROSPECTION_FIELDS: [&str; 2] = ["__schema", "__type"];

/// The depth async-graphql itself allows whatever `depth` is, introspection included.
pub const INTROSPECTION_DEPTH: usize = 16;

/// What one operation asks for, fragments expanded.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub aliases: usize,
    pub depth: usize,
    /// Root fields (mutations only).
    pub root_fields: usize,
    /// Root fields named in [`SIGN_IN_MUTATIONS`] (mutations only).
    pub sign_ins: usize,
}

/// Aliases and depth of a selection set; fragments are counted each time they are spread,
/// computed once each.
#[derive(Default, Clone, Copy)]
struct Shape {
    aliases: usize,
    depth: usize,
}

struct Counter<'a> {
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    done: HashMap<&'a str, Shape>,
    /// Fragments being counted: a cycle counts nothing here (validation refuses it).
    open: Vec<&'a str>,
}

impl<'a> Counter<'a> {
    fn fragment(&mut self, name: &'a str) -> Shape {
        if let Some(shape) = self.done.get(name) {
            return *shape;
        }
        if self.open.contains(&name) {
            return Shape::default();
        }
        let Some(fragment) = self.fragments.get(name) else {
            return Shape::default();
        };
        self.open.push(name);
        let shape = self.selection_set(&fragment.node.selection_set.node);
        self.open.pop();
        self.done.insert(name, shape);
        shape
    }

    fn selection_set(&mut self, set: &'a SelectionSet) -> Shape {
        let mut shape = Shape::default();
        for item in &set.items {
            let inner = match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let below = self.selection_set(&field.selection_set.node);
                    let counted = !INTROSPECTION_FIELDS.contains(&field.name.node.as_str());
                    Shape {
                        aliases: below.aliases.saturating_add(field.alias.is_some().into()),
                        depth: if counted {
                            below.depth.saturating_add(1)
                        } else {
                            0
                        },
                    }
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment(spread.node.fragment_name.node.as_str())
                }
                Selection::InlineFragment(inline) => {
                    self.selection_set(&inline.node.selection_set.node)
                }
            };
            shape.aliases = shape.aliases.saturating_add(inner.aliases);
            shape.depth = shape.depth.max(inner.depth);
        }
        shape
    }

    /// The root field names of a selection set, through fragments.
    fn root_fields(&mut self, set: &'a SelectionSet, names: &mut Vec<&'a str>) {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => names.push(field.node.name.node.as_str()),
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    if self.open.contains(&name) {
                        continue;
                    }
                    if let Some(fragment) = self.fragments.get(name) {
                        self.open.push(name);
                        self.root_fields(&fragment.node.selection_set.node, names);
                        self.open.pop();
                    }
                }
                Selection::InlineFragment(inline) => {
                    self.root_fields(&inline.node.selection_set.node, names)
                }
            }
        }
    }
}

/// The tally of each operation of `doc`.
pub fn tally(doc: &ExecutableDocument) -> Vec<Tally> {
    let mut counter = Counter {
        fragments: &doc.fragments,
        done: HashMap::new(),
        open: Vec::new(),
    };
    doc.operations
        .iter()
        .map(|(_, op)| {
            let op = &op.node;
            let shape = counter.selection_set(&op.selection_set.node);
            let mut tally = Tally {
                aliases: shape.aliases,
                depth: shape.depth,
                ..Tally::default()
            };
            if op.ty == OperationType::Mutation {
                let mut names = Vec::new();
                counter.root_fields(&op.selection_set.node, &mut names);
                tally.root_fields = names.len();
                tally.sign_ins = names
                    .iter()
                    .filter(|n| SIGN_IN_MUTATIONS.contains(n))
                    .count();
            }
            tally
        })
        .collect()
}

/// The first limit `tally` exceeds, as the sentence a client sees.
pub fn exceeded(tally: &Tally, limits: &LimitSettings) -> Option<String> {
    if tally.depth > limits.depth {
        return Some(format!(
            "the query is nested {} deep, over the limit of {} (depth)",
            tally.depth, limits.depth
        ));
    }
    if tally.aliases > limits.aliases {
        return Some(format!(
            "the query uses {} aliases, over the limit of {} (aliases)",
            tally.aliases, limits.aliases
        ));
    }
    if tally.sign_ins > limits.sign_ins {
        return Some(format!(
            "a request may run at most {} of register, login and refreshToken, and this one runs {} \
             (sign_ins): a request cannot sign up or sign in more than once",
            limits.sign_ins, tally.sign_ins
        ));
    }
    if tally.root_fields > limits.mutation_fields {
        return Some(format!(
            "the mutation has {} root fields, over the limit of {} (mutation_fields)",
            tally.root_fields, limits.mutation_fields
        ));
    }
    None
}

/// How a cost refusal reads (here and, with the cost, in the router).
pub fn cost_message(limits: &LimitSettings) -> String {
    format!(
        "the query costs more than the limit of {} (cost): every field costs 1, and a list \
         costs its page size (first, 20 when not given) times what it selects",
        limits.cost
    )
}

fn refusal(message: String) -> ServerError {
    let mut err = ServerError::new(message, None);
    err.extensions
        .get_or_insert_with(Default::default)
        .set("code", ErrorCode::GraphqlValidationFailed.as_str());
    err
}

/// The extension [`crate::graphql::harden`] installs.
pub struct OperationLimits(pub LimitSettings);

impl ExtensionFactory for OperationLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(OperationLimitsExtension(self.0))
    }
}

struct OperationLimitsExtension(LimitSettings);

#[async_trait::async_trait]
impl Extension for OperationLimitsExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        // Every operation of the document is held to the limits, as every one is validated.
        match tally(&doc).iter().find_map(|t| exceeded(t, &self.0)) {
            Some(message) => Err(refusal(message)),
            None => Ok(doc),
        }
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|err| match err.message.as_str() {
                    "Query is too complex." => refusal(cost_message(&self.0)),
                    "Query is nested too deep." => refusal(format!(
                        "the query is nested over the limit of {} (introspection included)",
                        self.0.depth.max(INTROSPECTION_DEPTH)
                    )),
                    _ => err,
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally_of(query: &str) -> Tally {
        let doc = async_graphql::parser::parse_query(query).unwrap();
        let tallies = tally(&doc);
        assert_eq!(tallies.len(), 1);
        tallies[0]
    }

    #[test]
    fn aliases_are_counted_through_fragments_each_time_they_are_spread() {
        let t = tally_of(
            "query { a: me { id } ...F ...F } fragment F on Query { b: me { c: id } d: __typename }",
        );
        assert_eq!(t.aliases, 1 + 2 * 3);
    }

    #[test]
    fn depth_counts_fields_in_fields_and_not_introspection() {
        assert_eq!(tally_of("{ me { id } }").depth, 2);
        assert_eq!(
            tally_of("{ a { ... on A { b { ...F } } } } fragment F on B { c { d } }").depth,
            4
        );
        let introspection = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } } } me { id } }";
        assert_eq!(tally_of(introspection).depth, 2);
    }

    #[test]
    fn mutations_count_root_fields_and_sign_ins() {
        let t = tally_of(
            "mutation { a: login(input: {}) { accessToken } b: login(input: {}) { accessToken } ...M } fragment M on Mutation { logout register(input: {}) { expiresIn } }",
        );
        assert_eq!((t.root_fields, t.sign_ins), (4, 3));
        let q = tally_of("query { a: me { id } b: me { id } }");
        assert_eq!(
            (q.root_fields, q.sign_ins),
            (0, 0),
            "queries are not counted"
        );
    }

    #[test]
    fn fragment_cycles_and_unknown_fragments_count_nothing() {
        let t = tally_of(
            "{ ...A ...Nope } fragment A on Query { x: me { ...B } } fragment B on User { ...A }",
        );
        assert_eq!(t.aliases, 1);
    }

    #[test]
    fn fragments_spread_exponentially_are_counted_without_expanding_them() {
        let mut query = String::from("{ ...F0 }");
        for i in 0..40 {
            query.push_str(&format!(
                " fragment F{i} on Query {{ ...F{n} ...F{n} }}",
                n = i + 1
            ));
        }
        query.push_str(" fragment F40 on Query { a: __typename }");
        let started = std::time::Instant::now();
        assert_eq!(tally_of(&query).aliases, 1 << 40);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn each_limit_names_itself() {
        let limits = LimitSettings::default();
        let over = |t: Tally| exceeded(&t, &limits).unwrap_or_default();
        assert!(
            over(Tally {
                depth: 11,
                ..Tally::default()
            })
            .contains("limit of 10 (depth)")
        );
        assert!(
            over(Tally {
                aliases: 16,
                ..Tally::default()
            })
            .contains("limit of 15 (aliases)")
        );
        assert!(
            over(Tally {
                root_fields: 6,
                ..Tally::default()
            })
            .contains("limit of 5 (mutation_fields)")
        );
        assert!(
            over(Tally {
                root_fields: 2,
                sign_ins: 2,
                ..Tally::default()
            })
            .contains("sign_ins")
        );
        assert_eq!(
            exceeded(
                &Tally {
                    aliases: 15,
                    depth: 10,
                    root_fields: 5,
                    sign_ins: 1
                },
                &limits
            ),
            None,
            "at the limit is allowed"
        );
    }

    mod schema {
        use async_graphql::{EmptySubscription, Object, Schema};

        use crate::config::LimitSettings;
        use crate::graphql::{harden, list_cost};

        struct Query;

        #[derive(Clone, Copy)]
        struct Item;

        #[Object]
        impl Item {
            async fn id(&self) -> i32 {
                1
            }
            #[graphql(complexity = "list_cost(first, child_complexity)")]
            async fn items(&self, first: Option<i32>) -> Vec<Item> {
                vec![Item; first.unwrap_or(1).clamp(0, 3) as usize]
            }
        }

        #[Object]
        impl Query {
            #[graphql(complexity = "list_cost(first, child_complexity)")]
            async fn items(&self, first: Option<i32>) -> Vec<Item> {
                vec![Item; first.unwrap_or(1).clamp(0, 3) as usize]
            }
            /// As a service-only operation: in the subgraph's schema, not the router's.
            #[graphql(inaccessible)]
            async fn hidden_quote(&self) -> i32 {
                0
            }
        }

        struct Mutation;

        #[Object]
        impl Mutation {
            async fn login(&self) -> bool {
                true
            }
            async fn logout(&self) -> bool {
                true
            }
        }

        async fn run(query: &str) -> serde_json::Value {
            let schema = harden(
                Schema::build(Query, Mutation, EmptySubscription),
                &LimitSettings::default(),
            )
            .finish();
            serde_json::to_value(schema.execute(query).await).unwrap()
        }

        fn refusal(response: &serde_json::Value) -> (&str, &str) {
            let err = &response["errors"][0];
            (
                err["extensions"]["code"].as_str().unwrap_or(""),
                err["message"].as_str().unwrap_or(""),
            )
        }

        #[tokio::test]
        async fn lists_of_lists_are_refused_by_cost_before_anything_resolves() {
            let ok = run("{ items(first: 100) { items(first: 40) { id } } }").await;
            assert!(ok.get("errors").is_none(), "{ok}");
            let over = run("{ items(first: 100) { items(first: 100) { id } } }").await;
            let (code, message) = refusal(&over);
            assert_eq!(code, "GRAPHQL_VALIDATION_FAILED");
            assert!(message.contains("limit of 5000 (cost)"), "{message}");
            assert!(over["data"].is_null());
            let by_default = run("{ items { items { items { id } } } }").await;
            assert!(refusal(&by_default).1.contains("cost"), "20 × 20 × 20");
        }

        #[tokio::test]
        async fn aliases_depth_and_mutation_fields_are_refused_with_their_limit() {
            let aliases: String = (0..16).map(|i| format!("a{i}: __typename ")).collect();
            let r = run(&format!("{{ {aliases} }}")).await;
            assert_eq!(refusal(&r).0, "GRAPHQL_VALIDATION_FAILED");
            assert!(refusal(&r).1.contains("aliases"));
            let deep = "{ items { items { items { items { items { items { items { items { items { items { id } } } } } } } } } } }";
            let r = run(deep).await;
            assert!(refusal(&r).1.contains("limit of 10 (depth)"), "{r}");
            let r = run("mutation { a: login b: login }").await;
            assert!(refusal(&r).1.contains("sign_ins"), "{r}");
            let r = run("mutation { a: logout b: logout c: logout d: logout e: logout f: logout }")
                .await;
            assert!(refusal(&r).1.contains("mutation_fields"), "{r}");
            let r = run("mutation { login a: logout b: logout c: logout d: logout }").await;
            assert!(r.get("errors").is_none(), "{r}");
        }

        #[tokio::test]
        async fn a_typo_gets_no_suggestion() {
            let r = run("{ hiddenQuot }").await;
            let (code, message) = refusal(&r);
            assert_eq!(code, "GRAPHQL_VALIDATION_FAILED");
            assert!(!message.contains("Did you mean"), "{message}");
        }

        #[tokio::test]
        async fn graphiqls_introspection_query_still_passes() {
            let type_ref = "kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }";
            let q = format!(
                "{{ __schema {{ queryType {{ name }} types {{ kind name fields(includeDeprecated: true) {{ name args {{ name type {{ {type_ref} }} defaultValue }} type {{ {type_ref} }} }} inputFields {{ name type {{ {type_ref} }} }} }} directives {{ name args {{ name type {{ {type_ref} }} }} }} }} }}"
            );
            let r = run(&q).await;
            assert!(r.get("errors").is_none(), "{r}");
        }
    }
}
