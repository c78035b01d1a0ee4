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
//!
//! Before async-graphql reads a document at all, [`shape_refusal`] checks what its own passes
//! would walk with fragments expanded (they expand every spread every time, so fragments that
//! spread each other twice would cost them 2^n): nesting over [`RECURSION_LIMIT`], a fragment
//! cycle, or more than [`expansion_limit`] selections is refused in one pass over the document.
//! It also refuses introspection (`__schema`, `__type`) where `introspection` is off.
//!
//! `_entities` resolves each representation it is given, so its cost is its representations
//! times what it selects for each (async-graphql counts the selection once).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest,
    NextValidation,
};
use async_graphql::parser::types::{
    ExecutableDocument, FragmentDefinition, OperationType, Selection, SelectionSet,
};
use async_graphql::{
    Name, Positioned, Request, ServerError, ServerResult, ValidationResult, Value, Variables,
};

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

/// How deep selection sets may nest, fragments and inline fragments counted as a level each
/// (async-graphql's `limit_recursive_depth`, which [`crate::graphql::harden`] sets to this).
pub const RECURSION_LIMIT: usize = 32;

/// The most selections (fields, fragment spreads, inline fragments) a document may hold once
/// its fragments are expanded: twice the cost limit, and at least 10 000. Every field but
/// `__typename` costs at least 1, so a document over this is over the cost limit too, or a
/// pile of `__typename`s; a fetch the router makes holds a few hundred.
pub fn expansion_limit(limits: &LimitSettings) -> usize {
    limits.cost.saturating_mul(2).max(10_000)
}

/// Why a selection walk stopped.
enum Walk<'a> {
    TooDeep,
    TooBig,
    Cycle(&'a str),
}

/// Walks a document as async-graphql's passes do (every spread expanded where it is spread),
/// with each fragment's size and height computed once, so the walk itself is linear.
struct Expansion<'a> {
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    /// Fragment → (selections once expanded, levels below the fragment's selection set).
    done: HashMap<&'a str, (usize, usize)>,
    open: Vec<&'a str>,
    limit: usize,
}

impl<'a> Expansion<'a> {
    /// The selections under `set` and the deepest level reached, `set` being at `depth`.
    fn set(&mut self, set: &'a SelectionSet, depth: usize) -> Result<(usize, usize), Walk<'a>> {
        if depth > RECURSION_LIMIT {
            return Err(Walk::TooDeep);
        }
        let (mut size, mut deepest) = (0usize, depth);
        for item in &set.items {
            let (below, reached) = match &item.node {
                Selection::Field(field) if field.node.selection_set.node.items.is_empty() => {
                    (0, depth)
                }
                Selection::Field(field) => self.set(&field.node.selection_set.node, depth + 1)?,
                Selection::InlineFragment(inline) => {
                    self.set(&inline.node.selection_set.node, depth + 1)?
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment(spread.node.fragment_name.node.as_str(), depth + 1)?
                }
            };
            size = size.saturating_add(1).saturating_add(below);
            deepest = deepest.max(reached);
            if size > self.limit {
                return Err(Walk::TooBig);
            }
        }
        Ok((size, deepest))
    }

    fn fragment(&mut self, name: &'a str, depth: usize) -> Result<(usize, usize), Walk<'a>> {
        if let Some(&(size, height)) = self.done.get(name) {
            if depth + height > RECURSION_LIMIT {
                return Err(Walk::TooDeep);
            }
            return Ok((size, depth + height));
        }
        if self.open.contains(&name) {
            return Err(Walk::Cycle(name));
        }
        // An unknown fragment is validation's to report.
        let Some(fragment) = self.fragments.get(name) else {
            return Ok((0, depth));
        };
        self.open.push(name);
        let walked = self.set(&fragment.node.selection_set.node, depth);
        self.open.pop();
        let (size, reached) = walked?;
        self.done.insert(name, (size, reached - depth));
        Ok((size, reached))
    }
}

/// Whether any field of the document, in operations or fragments, is `__schema` or `__type`.
fn introspects(doc: &ExecutableDocument) -> bool {
    fn set(s: &SelectionSet) -> bool {
        s.items.iter().any(|item| match &item.node {
            Selection::Field(f) => {
                INTROSPECTION_FIELDS.contains(&f.node.name.node.as_str())
                    || set(&f.node.selection_set.node)
            }
            Selection::InlineFragment(i) => set(&i.node.selection_set.node),
            Selection::FragmentSpread(_) => false,
        })
    }
    doc.operations
        .iter()
        .any(|(_, op)| set(&op.node.selection_set.node))
        || doc
            .fragments
            .values()
            .any(|f| set(&f.node.selection_set.node))
}

/// What is refused about `doc` before async-graphql's own passes read it: nesting, fragment
/// cycles and expansion (see the module docs), and introspection where it is off.
pub fn shape_refusal(doc: &ExecutableDocument, limits: &LimitSettings) -> Option<String> {
    let mut walk = Expansion {
        fragments: &doc.fragments,
        done: HashMap::new(),
        open: Vec::new(),
        limit: expansion_limit(limits),
    };
    for (_, op) in doc.operations.iter() {
        match walk.set(&op.node.selection_set.node, 0) {
            Ok(_) => {}
            Err(Walk::TooDeep) => {
                return Some(format!(
                    "the query nests selections more than {RECURSION_LIMIT} deep, fragments \
                     and inline fragments included"
                ));
            }
            Err(Walk::TooBig) => {
                return Some(format!(
                    "the query's fragments expand to more than {} selections, over the limit \
                     (cost)",
                    walk.limit
                ));
            }
            Err(Walk::Cycle(name)) => {
                return Some(format!(
                    "fragment {name} spreads itself (a cycle), which can never be answered"
                ));
            }
        }
    }
    if !limits.introspection && introspects(doc) {
        return Some(
            "introspection (__schema, __type) is turned off on this subgraph \
             (limits.introspection); the router serves the API schema"
                .to_owned(),
        );
    }
    None
}

/// Representations given to `_entities` fields at the root of `doc`'s query operations,
/// literal or in variables, through fragments.
pub fn representations(doc: &ExecutableDocument, variables: &Variables) -> usize {
    fn set(
        s: &SelectionSet,
        doc: &ExecutableDocument,
        variables: &Variables,
        open: &mut Vec<String>,
    ) -> usize {
        let mut n = 0usize;
        for item in &s.items {
            n = n.saturating_add(match &item.node {
                Selection::Field(f) if f.node.name.node == "_entities" => {
                    let given = f.node.get_argument("representations").and_then(|v| {
                        v.node
                            .clone()
                            .into_const_with(|name| variables.get(&name).cloned().ok_or(()))
                            .ok()
                    });
                    match given {
                        Some(Value::List(list)) => list.len(),
                        _ => 0,
                    }
                }
                Selection::Field(_) => 0,
                Selection::InlineFragment(i) => {
                    set(&i.node.selection_set.node, doc, variables, open)
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    match doc.fragments.get(name) {
                        Some(f) if !open.iter().any(|o| o == name) => {
                            open.push(name.to_owned());
                            let found = set(&f.node.selection_set.node, doc, variables, open);
                            open.pop();
                            found
                        }
                        _ => 0,
                    }
                }
            });
        }
        n
    }
    doc.operations
        .iter()
        .filter(|(_, op)| op.node.ty == OperationType::Query)
        .map(|(_, op)| set(&op.node.selection_set.node, doc, variables, &mut Vec::new()))
        .fold(0, usize::saturating_add)
}

/// The cost of an operation that gives `_entities` `representations` representations, from
/// the complexity async-graphql computed (which counts the `_entities` field once, and what it
/// selects once): each representation costs what is selected for it, at least 1.
pub fn entities_cost(complexity: usize, representations: usize) -> usize {
    if representations == 0 {
        return complexity;
    }
    complexity
        .saturating_sub(1)
        .max(1)
        .saturating_mul(representations)
        .saturating_add(1)
}

/// How an `_entities` refusal reads.
pub fn entities_message(cost: usize, representations: usize, limits: &LimitSettings) -> String {
    format!(
        "the _entities call costs {cost} ({representations} representations, each costing what \
         is selected for it), over the limit of {} (cost)",
        limits.cost
    )
}

/// The extension [`crate::graphql::harden`] installs.
pub struct OperationLimits(pub LimitSettings);

impl ExtensionFactory for OperationLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(OperationLimitsExtension {
            limits: self.0,
            representations: AtomicUsize::new(0),
        })
    }
}

/// One per request.
struct OperationLimitsExtension {
    limits: LimitSettings,
    /// Counted when the document is parsed, priced once validation knows the complexity.
    representations: AtomicUsize,
}

#[async_trait::async_trait]
impl Extension for OperationLimitsExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        // Parsed here (async-graphql keeps the document for the rest of the request) so the
        // shape is checked before async-graphql's own recursive passes walk it. A document that
        // does not parse is left for the parser to report.
        let refused = match request.parsed_query() {
            Ok(doc) => shape_refusal(doc, &self.limits),
            Err(_) => None,
        };
        if let Some(message) = refused {
            return Err(refusal(message));
        }
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        // Every operation of the document is held to the limits, as every one is validated.
        if let Some(message) = tally(&doc).iter().find_map(|t| exceeded(t, &self.limits)) {
            return Err(refusal(message));
        }
        let representations = representations(&doc, variables);
        // Each costs at least 1: no need to wait for validation to refuse this many.
        if representations > self.limits.cost {
            return Err(refusal(entities_message(
                entities_cost(2, representations),
                representations,
                &self.limits,
            )));
        }
        self.representations
            .store(representations, Ordering::Relaxed);
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let limits = &self.limits;
        let result = next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|err| match err.message.as_str() {
                    "Query is too complex." => refusal(cost_message(limits)),
                    "Query is nested too deep." => refusal(format!(
                        "the query is nested over the limit of {} (introspection included)",
                        limits.depth.max(INTROSPECTION_DEPTH)
                    )),
                    _ => err,
                })
                .collect::<Vec<_>>()
        })?;
        let representations = self.representations.load(Ordering::Relaxed);
        let cost = entities_cost(result.complexity, representations);
        if cost > limits.cost {
            return Err(vec![refusal(entities_message(
                cost,
                representations,
                limits,
            ))]);
        }
        Ok(result)
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
            /// An entity, for `_entities`.
            #[graphql(entity)]
            async fn find_item_by_id(&self, id: i32) -> Item {
                let _ = id;
                Item
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
            run_with(&LimitSettings::default(), query, serde_json::json!({})).await
        }

        async fn run_with(
            limits: &LimitSettings,
            query: &str,
            variables: serde_json::Value,
        ) -> serde_json::Value {
            let schema = harden(
                Schema::build(Query, Mutation, EmptySubscription).enable_federation(),
                limits,
            )
            .finish();
            let request = async_graphql::Request::new(query)
                .variables(async_graphql::Variables::from_json(variables));
            serde_json::to_value(schema.execute(request).await).unwrap()
        }

        fn introspection_on() -> LimitSettings {
            LimitSettings {
                introspection: true,
                ..LimitSettings::default()
            }
        }

        /// Refused with GRAPHQL_VALIDATION_FAILED, a message containing `says`, within a second.
        async fn refused_quickly(query: &str, says: &str) {
            let started = std::time::Instant::now();
            let r = run(query).await;
            let took = started.elapsed();
            let (code, message) = refusal(&r);
            assert_eq!(code, "GRAPHQL_VALIDATION_FAILED", "{r}");
            assert!(message.contains(says), "{r}");
            assert!(r["data"].is_null(), "{r}");
            assert!(took < std::time::Duration::from_secs(1), "took {took:?}");
        }

        #[tokio::test]
        async fn fragment_cycles_are_refused_before_anything_walks_them() {
            refused_quickly(
                "{ ...A } fragment A on Query { items { ...B } } fragment B on Item { items { ...A2 } } fragment A2 on Item { ...B }",
                "spreads itself",
            )
            .await;
            refused_quickly(
                "{ ...A } fragment A on Query { ...A ...A }",
                "spreads itself",
            )
            .await;
        }

        #[tokio::test]
        async fn fragments_that_expand_exponentially_are_refused_in_linear_time() {
            // async-graphql's own passes expand each spread where it is spread: 2^30 visits.
            let mut query = String::from("{ ...F0 }");
            for i in 0..30 {
                query.push_str(&format!(
                    " fragment F{i} on Query {{ ...F{n} ...F{n} }}",
                    n = i + 1
                ));
            }
            query.push_str(" fragment F30 on Query { __typename }");
            refused_quickly(&query, "expand to more than 10000 selections").await;
            // A long chain, each fragment spreading the next once: too deep, not too big.
            let mut chain = String::from("{ ...F0 }");
            for i in 0..200 {
                chain.push_str(&format!(
                    " fragment F{i} on Query {{ __typename ...F{n} }}",
                    n = i + 1
                ));
            }
            chain.push_str(" fragment F200 on Query { __typename }");
            refused_quickly(&chain, "more than 32 deep").await;
            // A short chain is fine.
            let short = "{ ...F0 } fragment F0 on Query { __typename ...F1 } fragment F1 on Query { items { id } }";
            let r = run(short).await;
            assert!(r.get("errors").is_none(), "{r}");
        }

        #[tokio::test]
        async fn introspection_is_refused_unless_turned_on_and_federation_fields_still_answer() {
            for q in [
                "{ __schema { types { name } } }",
                "{ __type(name: \"Query\") { fields { name } } }",
                "{ ...F } fragment F on Query { __schema { queryType { name } } }",
            ] {
                let r = run(q).await;
                let (code, message) = refusal(&r);
                assert_eq!(code, "GRAPHQL_VALIDATION_FAILED", "{r}");
                assert!(message.contains("introspection"), "{r}");
                let on = run_with(&introspection_on(), q, serde_json::json!({})).await;
                assert!(on.get("errors").is_none(), "{on}");
            }
            // What composition and the router use is not introspection.
            let r = run("{ _service { sdl } __typename }").await;
            assert!(r.get("errors").is_none(), "{r}");
            assert!(
                r["data"]["_service"]["sdl"]
                    .as_str()
                    .unwrap()
                    .contains("hiddenQuote")
            );
            let r = run_with(
                &LimitSettings::default(),
                "query($r: [_Any!]!) { _entities(representations: $r) { ... on Item { id } } }",
                serde_json::json!({ "r": [{ "__typename": "Item", "id": 1 }] }),
            )
            .await;
            assert_eq!(r["data"]["_entities"][0]["id"], 1, "{r}");
        }

        #[tokio::test]
        async fn entities_cost_their_representations_times_what_they_select() {
            let entities = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Item { id items(first: 10) { id } } } }";
            let reps = |n: usize| serde_json::json!({ "r": (0..n).map(|i| serde_json::json!({ "__typename": "Item", "id": i })).collect::<Vec<_>>() });
            // Each costs 1 + (1 + 10 × 1) = 12: 400 of them cost 4 801.
            let r = run_with(&LimitSettings::default(), entities, reps(400)).await;
            assert!(r.get("errors").is_none(), "{r}");
            assert_eq!(r["data"]["_entities"].as_array().unwrap().len(), 400);
            let r = run_with(&LimitSettings::default(), entities, reps(500)).await;
            let (code, message) = refusal(&r);
            assert_eq!(code, "GRAPHQL_VALIDATION_FAILED", "{r}");
            assert!(message.contains("500 representations"), "{message}");
            assert!(message.contains("limit of 5000 (cost)"), "{message}");
            // Ten thousand, selecting next to nothing: each costs at least 1.
            let started = std::time::Instant::now();
            let r = run_with(
                &LimitSettings::default(),
                "query($r: [_Any!]!) { _entities(representations: $r) { __typename } }",
                reps(10_000),
            )
            .await;
            assert!(refusal(&r).1.contains("10000 representations"), "{r}");
            assert!(started.elapsed() < std::time::Duration::from_secs(1));
            // Literal lists count too.
            let literal: String = (0..20)
                .map(|i| format!("{{ __typename: \"Item\", id: {i} }} "))
                .collect();
            let q = format!(
                "{{ _entities(representations: [{literal}]) {{ ... on Item {{ items(first: 100) {{ id items(first: 2) {{ id }} }} }} }} }}"
            );
            let r = run(&q).await;
            assert!(refusal(&r).1.contains("20 representations"), "{r}");
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
            let r = run_with(&introspection_on(), &q, serde_json::json!({})).await;
            assert!(r.get("errors").is_none(), "{r}");
        }
    }
}
