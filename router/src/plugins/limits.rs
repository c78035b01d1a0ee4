//! `draftr.limits`: what one request may ask for, checked on the client's whole operation
//! before the router plans it, so a request over a limit never reaches a subgraph (or a
//! database). The free router refuses its own operation limits (`limits.router.max_depth`,
//! `max_aliases`, `max_root_fields`) and demand control without a GraphOS licence; this is
//! Draftr's own check, a native plugin, and every subgraph applies the same limits with the
//! same defaults (`draftr_common::config::LimitSettings`) to what reaches it.
//!
//! The rules, the same as the subgraphs':
//! - **cost**: every field costs 1; a field that takes a `first` argument (a list, in the
//!   supergraph schema) costs 1 plus its page size times the cost of what it selects. The page
//!   size is `first` (literal or variable), 20 when not given or null, and a value the
//!   subgraphs refuse (outside 1..=100) counts as 100. Fragments count each time they are
//!   spread.
//! - **depth**: fields nested in fields (`{ me { id } }` is 2 deep); introspection
//!   (`__schema`, `__type`) is left out: the router answers it and bounds it itself.
//! - **aliases**: aliased fields, fragments expanded.
//! - **mutation fields**: root fields of a mutation.
//! - **sign-ins**: `register`, `login` and `refreshToken` fields of a mutation: each hashes a
//!   password or rotates a token, so a request cannot sign up or sign in more than once.
//!
//! Every operation in the document is held to the limits. A refusal is a GraphQL error with
//! `extensions.code: GRAPHQL_VALIDATION_FAILED` and HTTP 400, as the router answers its own
//! validation errors, and its message names the limit. The router's own introspection depth
//! refusal, which it sends without a code, gets the same code on its way out.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use apollo_compiler::executable::{
    ExecutableDocument, Field, Fragment, Operation, OperationType, Selection, Value,
};
use apollo_compiler::validation::Valid;
use apollo_compiler::{Name, Schema};
use apollo_router::graphql;
use apollo_router::layers::ServiceBuilderExt;
use apollo_router::plugin::{Plugin, PluginInit};
use apollo_router::register_plugin;
use apollo_router::services::supergraph;
use http::StatusCode;
use schemars::JsonSchema;
use serde::Deserialize;
use tower::{BoxError, ServiceBuilder, ServiceExt};

/// The page size when `first` is not given (as the subgraphs' `page_size`).
pub const DEFAULT_PAGE_SIZE: u64 = 20;
/// The largest page the subgraphs serve.
pub const MAX_PAGE_SIZE: u64 = 100;
/// Auth's mutations that sign up or sign in.
pub const SIGN_IN_MUTATIONS: [&str; 3] = ["register", "login", "refreshToken"];
const INTROSPECTION_FIELDS: [&str; 2] = ["__schema", "__type"];
pub const CODE: &str = "GRAPHQL_VALIDATION_FAILED";

/// The limits (`plugins: draftr.limits:` in `router.yaml`); each has a safe default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The most an operation may cost (a list costs its page size times what it selects).
    pub cost: u64,
    /// The deepest fields may nest, introspection aside.
    pub depth: u64,
    /// The most aliased fields in an operation, fragments expanded.
    pub aliases: u64,
    /// The most root fields in one mutation.
    pub mutation_fields: u64,
    /// The most `register`, `login` and `refreshToken` fields in one request.
    pub sign_ins: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            cost: 5_000,
            depth: 10,
            aliases: 15,
            mutation_fields: 5,
            sign_ins: 1,
        }
    }
}

/// A request variable as the cost rule sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    Absent,
    Null,
    Int(i64),
    /// Anything else (a string, say): the router refuses it later; it costs as the largest page.
    Other,
}

/// What one operation asks for.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Measure {
    pub cost: u64,
    pub depth: u64,
    pub aliases: u64,
    /// Root fields (mutations only).
    pub mutation_fields: u64,
    /// Sign-in root fields (mutations only).
    pub sign_ins: u64,
}

#[derive(Default, Clone, Copy)]
struct Shape {
    cost: u64,
    depth: u64,
    aliases: u64,
}

fn page_size(first: Option<i64>) -> u64 {
    match first {
        None => DEFAULT_PAGE_SIZE,
        Some(n) if (1..=MAX_PAGE_SIZE as i64).contains(&n) => n as u64,
        Some(_) => MAX_PAGE_SIZE,
    }
}

struct Measurer<'a> {
    fragments: &'a apollo_compiler::executable::FragmentMap,
    operation: &'a Operation,
    variables: &'a dyn Fn(&str) -> Var,
    /// Each fragment is measured once per operation (its variables are the operation's), so
    /// fragments spread in fragments cannot make the count itself expensive.
    done: HashMap<&'a Name, Shape>,
    /// Fragments being measured: a cycle counts nothing (the router refuses it before this).
    open: Vec<&'a Name>,
}

impl<'a> Measurer<'a> {
    /// A list field's page size; None for a field that is not a list (takes no `first`).
    fn page_size(&self, field: &Field) -> Option<u64> {
        if !field.definition.arguments.iter().any(|a| a.name == "first") {
            return None;
        }
        let int = |v: &Value| match v {
            Value::Null => None,
            Value::Int(i) => Some(i.try_to_i32().map_or(i64::MAX, i64::from)),
            _ => Some(i64::MAX),
        };
        let first = match field.arguments.iter().find(|a| a.name == "first") {
            None => None,
            Some(arg) => match arg.value.as_ref() {
                Value::Variable(name) => match (self.variables)(name.as_str()) {
                    Var::Null => None,
                    Var::Int(n) => Some(n),
                    Var::Other => Some(i64::MAX),
                    Var::Absent => self
                        .operation
                        .variables
                        .iter()
                        .find(|v| v.name == *name)
                        .and_then(|v| v.default_value.as_deref())
                        .and_then(int),
                },
                literal => int(literal),
            },
        };
        Some(page_size(first))
    }

    fn fragment(&mut self, name: &'a Name) -> Shape {
        if let Some(shape) = self.done.get(name) {
            return *shape;
        }
        if self.open.contains(&name) {
            return Shape::default();
        }
        let Some(fragment) = self.fragments.get(name) else {
            return Shape::default();
        };
        let fragment: &'a Fragment = fragment;
        self.open.push(name);
        let shape = self.selection_set(&fragment.selection_set.selections);
        self.open.pop();
        self.done.insert(name, shape);
        shape
    }

    fn selection_set(&mut self, set: &'a [Selection]) -> Shape {
        let mut shape = Shape::default();
        for selection in set {
            let inner = match selection {
                Selection::Field(field) => {
                    let below = self.selection_set(&field.selection_set.selections);
                    let times = self.page_size(field).unwrap_or(1);
                    let counted = !INTROSPECTION_FIELDS.contains(&field.name.as_str());
                    Shape {
                        cost: below.cost.saturating_mul(times).saturating_add(1),
                        depth: if counted {
                            below.depth.saturating_add(1)
                        } else {
                            0
                        },
                        aliases: below.aliases.saturating_add(field.alias.is_some().into()),
                    }
                }
                Selection::FragmentSpread(spread) => self.fragment(&spread.fragment_name),
                Selection::InlineFragment(inline) => {
                    self.selection_set(&inline.selection_set.selections)
                }
            };
            shape.cost = shape.cost.saturating_add(inner.cost);
            shape.aliases = shape.aliases.saturating_add(inner.aliases);
            shape.depth = shape.depth.max(inner.depth);
        }
        shape
    }

    fn root_fields(&mut self, set: &'a [Selection], names: &mut Vec<&'a str>) {
        for selection in set {
            match selection {
                Selection::Field(field) => names.push(field.name.as_str()),
                Selection::FragmentSpread(spread) => {
                    let name = &spread.fragment_name;
                    if self.open.contains(&name) {
                        continue;
                    }
                    if let Some(fragment) = self.fragments.get(name) {
                        self.open.push(name);
                        self.root_fields(&fragment.selection_set.selections, names);
                        self.open.pop();
                    }
                }
                Selection::InlineFragment(inline) => {
                    self.root_fields(&inline.selection_set.selections, names)
                }
            }
        }
    }
}

/// Measures every operation of `doc`, with `variables` the request's.
pub fn measure(doc: &ExecutableDocument, variables: &dyn Fn(&str) -> Var) -> Vec<Measure> {
    doc.operations
        .iter()
        .map(|operation| {
            let mut m = Measurer {
                fragments: &doc.fragments,
                operation,
                variables,
                done: HashMap::new(),
                open: Vec::new(),
            };
            let selections = &operation.selection_set.selections;
            let shape = m.selection_set(selections);
            let mut measure = Measure {
                cost: shape.cost,
                depth: shape.depth,
                aliases: shape.aliases,
                ..Measure::default()
            };
            if operation.operation_type == OperationType::Mutation {
                let mut names = Vec::new();
                m.root_fields(selections, &mut names);
                measure.mutation_fields = names.len() as u64;
                measure.sign_ins = names
                    .iter()
                    .filter(|n| SIGN_IN_MUTATIONS.contains(n))
                    .count() as u64;
            }
            measure
        })
        .collect()
}

/// The first limit `m` exceeds, as the sentence the client gets.
pub fn exceeded(m: &Measure, limits: &Config) -> Option<String> {
    if m.depth > limits.depth {
        return Some(format!(
            "the query is nested {} deep, over the limit of {} (depth)",
            m.depth, limits.depth
        ));
    }
    if m.aliases > limits.aliases {
        return Some(format!(
            "the query uses {} aliases, over the limit of {} (aliases)",
            m.aliases, limits.aliases
        ));
    }
    if m.sign_ins > limits.sign_ins {
        return Some(format!(
            "a request may run at most {} of register, login and refreshToken, and this one runs {} \
             (sign_ins): a request cannot sign up or sign in more than once",
            limits.sign_ins, m.sign_ins
        ));
    }
    if m.mutation_fields > limits.mutation_fields {
        return Some(format!(
            "the mutation has {} root fields, over the limit of {} (mutation_fields)",
            m.mutation_fields, limits.mutation_fields
        ));
    }
    if m.cost > limits.cost {
        return Some(format!(
            "the query costs {}, over the limit of {} (cost): every field costs 1, and a list \
             costs its page size (first, 20 when not given) times what it selects",
            m.cost, limits.cost
        ));
    }
    None
}

/// Why `query` is refused under `limits`, if it is. The router has parsed and validated the
/// document against the API schema before this runs, so it reads without errors against the
/// supergraph schema (a superset); should it not, what could be read is measured.
pub fn refusal(
    schema: &Valid<Schema>,
    query: &str,
    variables: &dyn Fn(&str) -> Var,
    limits: &Config,
) -> Option<String> {
    let doc = ExecutableDocument::parse(schema, query, "operation.graphql")
        .unwrap_or_else(|with_errors| with_errors.partial);
    measure(&doc, variables)
        .iter()
        .find_map(|m| exceeded(m, limits))
}

/// The supergraph schema, which tells which fields are lists (take `first`).
pub fn read_schema(supergraph_sdl: &str) -> Result<Valid<Schema>, BoxError> {
    Schema::parse_and_validate(supergraph_sdl, "supergraph.graphql")
        .map_err(|e| format!("draftr.limits cannot read the supergraph: {}", e.errors).into())
}

pub struct Limits {
    config: Config,
    schema: Arc<Valid<Schema>>,
}

#[async_trait::async_trait]
impl Plugin for Limits {
    type Config = Config;

    async fn new(init: PluginInit<Self::Config>) -> Result<Self, BoxError> {
        Ok(Limits {
            config: init.config,
            schema: Arc::new(read_schema(&init.supergraph_sdl)?),
        })
    }

    fn supergraph_service(&self, service: supergraph::BoxService) -> supergraph::BoxService {
        let limits = self.config;
        let schema = self.schema.clone();
        ServiceBuilder::new()
            .checkpoint(move |req: supergraph::Request| {
                let body = req.supergraph_request.body();
                let variables = |name: &str| match body.variables.get(name) {
                    None => Var::Absent,
                    Some(v) if v.is_null() => Var::Null,
                    Some(v) => v.as_i64().map_or(Var::Other, Var::Int),
                };
                let refused = body
                    .query
                    .as_deref()
                    .and_then(|q| refusal(&schema, q, &variables, &limits));
                let Some(message) = refused else {
                    return Ok(ControlFlow::Continue(req));
                };
                tracing::info!(reason = %message, "operation refused by draftr.limits");
                let error = graphql::Error::builder()
                    .message(message)
                    .extension_code(CODE)
                    .build();
                let res = supergraph::Response::error_builder()
                    .error(error)
                    .status_code(StatusCode::BAD_REQUEST)
                    .context(req.context)
                    .build()?;
                Ok(ControlFlow::Break(res))
            })
            .service(service)
            .map_response(|res: supergraph::Response| res.map_stream(code_introspection_refusals))
            .boxed()
    }
}

/// The message of the router's own introspection limit (apollo-compiler's `check_max_depth`:
/// `fields`, `interfaces`, `possibleTypes` and `inputFields` nested three deep), which it sends
/// without a code.
pub const INTROSPECTION_DEPTH_MESSAGE: &str = "Maximum introspection depth exceeded";

/// Gives the router's introspection depth refusal the code every other limit refusal has, so
/// every error a client sees carries `extensions.code` (docs/api.md).
pub fn code_introspection_refusals(mut response: graphql::Response) -> graphql::Response {
    for err in &mut response.errors {
        if err.message == INTROSPECTION_DEPTH_MESSAGE && !err.extensions.contains_key("code") {
            *err = graphql::Error::builder()
                .message(std::mem::take(&mut err.message))
                .locations(std::mem::take(&mut err.locations))
                .extension_code(CODE)
                .build();
        }
    }
    response
}

register_plugin!("draftr", "limits", Limits);

pub(crate) fn ensure_linked() {}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use super::*;

    static SCHEMA: LazyLock<Valid<Schema>> =
        LazyLock::new(|| read_schema(include_str!("../../../schema/supergraph.graphql")).unwrap());

    fn no_vars(_: &str) -> Var {
        Var::Absent
    }

    fn measure_of(query: &str, variables: &dyn Fn(&str) -> Var) -> Measure {
        let doc = ExecutableDocument::parse(&SCHEMA, query, "q.graphql").unwrap();
        let all = measure(&doc, variables);
        assert_eq!(all.len(), 1);
        all[0]
    }

    fn refused(query: &str) -> Option<String> {
        refusal(&SCHEMA, query, &no_vars, &Config::default())
    }

    /// `levels` lists of properties, each listing's host's properties the next.
    fn nested(levels: usize, first: &str) -> String {
        let mut inner = String::from("id");
        for _ in 0..levels {
            inner = format!(
                "properties(first: {first}) {{ edges {{ node {{ host {{ {inner} }} }} }} }}"
            );
        }
        format!("{{ {inner} }}")
    }

    #[test]
    fn a_list_multiplies_what_it_selects_by_its_page_size() {
        // properties: 1 + 100 × (edges 1 + node 1 + title 1).
        let m = measure_of(
            "{ properties(first: 100) { edges { node { title } } } }",
            &no_vars,
        );
        assert_eq!(m.cost, 1 + 100 * 3);
        assert_eq!(m.depth, 4);
        assert_eq!(
            measure_of("{ properties { edges { node { title } } } }", &no_vars).cost,
            1 + 20 * 3,
            "20 when first is not given"
        );
        // 100 listings, each host's 100: 10 000 rows.
        let two = measure_of(&nested(2, "100"), &no_vars);
        assert_eq!(two.cost, 1 + 100 * (3 + (1 + 100 * 4)));
        assert_eq!(two.depth, 9);
        let message = refused(&nested(2, "100")).unwrap();
        assert!(message.contains("limit of 5000 (cost)"), "{message}");
        assert!(measure_of(&nested(3, "100"), &no_vars).cost > 1_000_000);
        assert!(refused(&nested(3, "100")).is_some());
    }

    #[test]
    fn page_sizes_come_from_variables_then_their_defaults() {
        let q = "query($n: Int = 5) { properties(first: $n) { edges { node { id } } } }";
        assert_eq!(measure_of(q, &no_vars).cost, 1 + 5 * 3);
        assert_eq!(measure_of(q, &|_| Var::Int(50)).cost, 1 + 50 * 3);
        assert_eq!(measure_of(q, &|_| Var::Null).cost, 1 + 20 * 3);
        // What the subgraphs refuse counts as the largest page.
        assert_eq!(measure_of(q, &|_| Var::Int(1_000_000)).cost, 1 + 100 * 3);
        assert_eq!(measure_of(q, &|_| Var::Int(0)).cost, 1 + 100 * 3);
        assert_eq!(measure_of(q, &|_| Var::Other).cost, 1 + 100 * 3);
        assert_eq!(
            measure_of(
                "{ properties(first: 99999999999) { edges { node { id } } } }",
                &no_vars
            )
            .cost,
            1 + 100 * 3
        );
    }

    #[test]
    fn the_routers_introspection_depth_refusal_gets_a_code() {
        let response = graphql::Response::builder()
            .error(
                graphql::Error::builder()
                    .message(INTROSPECTION_DEPTH_MESSAGE)
                    .build(),
            )
            .error(
                graphql::Error::builder()
                    .message("other")
                    .extension_code("OTHER")
                    .build(),
            )
            .build();
        let coded = code_introspection_refusals(response);
        let json = serde_json::to_value(&coded.errors).unwrap();
        assert_eq!(json[0]["extensions"]["code"], CODE);
        assert_eq!(json[0]["message"], INTROSPECTION_DEPTH_MESSAGE);
        assert_eq!(json[1]["extensions"]["code"], "OTHER");
    }

    #[test]
    fn fragments_are_expanded_each_time_and_measured_once() {
        let q = "{ ...F ...F } fragment F on Query { a: properties(first: 10) { edges { node { ...P } } } } fragment P on Property { b: id c: title }";
        let m = measure_of(q, &no_vars);
        assert_eq!(m.aliases, 2 * 3);
        assert_eq!(m.cost, 2 * (1 + 10 * (1 + 1 + 2)));
        let mut exponential = String::from("{ ...F0 }");
        for i in 0..60 {
            exponential.push_str(&format!(
                " fragment F{i} on Query {{ ...F{n} ...F{n} }}",
                n = i + 1
            ));
        }
        exponential.push_str(" fragment F60 on Query { x: __typename }");
        let started = std::time::Instant::now();
        let m = measure_of(&exponential, &no_vars);
        assert_eq!(m.aliases, 1 << 60);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let cycle = "{ me { ...A } } fragment A on User { x: id ...B } fragment B on User { ...A }";
        assert_eq!(measure_of(cycle, &no_vars).aliases, 1);
    }

    #[test]
    fn introspection_is_not_counted_for_depth() {
        let q = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } } } me { id } }";
        assert_eq!(measure_of(q, &no_vars).depth, 2);
    }

    #[test]
    fn mutations_count_root_fields_and_sign_ins() {
        let q = r#"mutation { a: login(input: { email: "a", password: "b" }) { accessToken } b: login(input: { email: "a", password: "b" }) { accessToken } ...M } fragment M on Mutation { logout register(input: { email: "a", password: "b", displayName: "c" }) { expiresIn } }"#;
        let m = measure_of(q, &no_vars);
        assert_eq!((m.mutation_fields, m.sign_ins), (4, 3));
        assert!(refused(q).unwrap().contains("sign_ins"));
        let q = measure_of("{ a: me { id } b: me { id } }", &no_vars);
        assert_eq!((q.mutation_fields, q.sign_ins), (0, 0));
    }

    #[test]
    fn every_refusal_names_its_limit_and_the_limits_themselves_pass() {
        let aliases = |n: usize| {
            let fields: String = (0..n).map(|i| format!("a{i}: __typename ")).collect();
            format!("{{ {fields} }}")
        };
        assert!(
            refused(&aliases(16))
                .unwrap()
                .contains("limit of 15 (aliases)")
        );
        assert_eq!(refused(&aliases(15)), None);
        // 10 deep, then 13.
        let ten = "{ me { properties { edges { node { host { properties { edges { node { host { id } } } } } } } } } }";
        assert_eq!(measure_of(ten, &no_vars).depth, 10);
        assert_eq!(refused(ten), None);
        let deeper = ten.replace(
            "host { id }",
            "host { properties { edges { node { id } } } }",
        );
        assert!(refused(&deeper).unwrap().contains("limit of 10 (depth)"));
        let logouts = |n: usize| {
            let fields: String = (0..n).map(|i| format!("l{i}: logout ")).collect();
            format!("mutation {{ {fields} }}")
        };
        assert!(
            refused(&logouts(6))
                .unwrap()
                .contains("limit of 5 (mutation_fields)")
        );
        assert_eq!(refused(&logouts(5)), None);
        assert_eq!(refused("not graphql {"), None, "left to the router");
    }

    #[test]
    fn legitimate_queries_pass() {
        for q in [
            "{ properties(first: 50) { totalCount edges { node { id title host { id displayName } } } } }",
            "{ properties(first: 100) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id title description nightlyRate { amount currency } address { city country } host { displayName } amenities category { name } } } } }",
            "{ me { email reservations { totalCount edges { node { id status property { title host { displayName } } payment { status amount { amount currency } } } } } } }",
            "{ me { notifications(first: 20) { totalCount edges { node { kind subject status attempts sentAt } } } } }",
            "mutation($i: RegisterInput!) { register(input: $i) { accessToken refreshToken expiresIn user { id email displayName role } } }",
        ] {
            assert_eq!(refused(q), None, "{q}");
        }
    }

    #[test]
    fn the_sign_in_mutations_are_the_supergraphs() {
        let mutation = SCHEMA.get_object("Mutation").expect("a Mutation type");
        for name in SIGN_IN_MUTATIONS {
            assert!(
                mutation.fields.contains_key(name),
                "Mutation.{name} is not in the supergraph"
            );
        }
    }

    #[test]
    fn the_committed_config_enables_the_plugin_with_its_defaults() {
        let yaml: serde_yaml::Value = serde_yaml::from_str(crate::ROUTER_YAML).unwrap();
        let config: Config =
            serde_yaml::from_value(yaml["plugins"]["draftr.limits"].clone()).unwrap();
        assert_eq!(config, Config::default());
    }
}
