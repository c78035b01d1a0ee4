//! Logging. Every line is structured; every request's lines carry the router's request id
//! (see [`crate::http::with_standard_layers`]).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt;
use tracing_subscriber::prelude::*;

/// Installs the global subscriber once; later calls are no-ops (tests call it repeatedly).
///
/// `RUST_LOG` filters (default `info`); `DRAFTR_LOG_FORMAT=json` switches to JSON lines for
/// log shippers such as Loki.
pub fn init() {
    // The router's own deprecation notices about its metrics are for its maintainers, not ours.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,sea_orm=warn,sqlx=warn,apollo_router=warn,apollo_router::axum_factory=error,hyper=warn")
    });
    let json = std::env::var("DRAFTR_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if json {
        registry
            .with(fmt::layer().json().with_current_span(true))
            .try_init()
    } else {
        registry.with(fmt::layer().compact()).try_init()
    };
}

/// For tests: logs only when `TEST_LOG` is set, so a passing run stays quiet.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        init();
    }
}
