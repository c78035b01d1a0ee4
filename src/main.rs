//! The `draftr` command: run everything (the default), or one part, or a tool.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use draftr::embedded::{DEMO_USERS, Embedded, EmbeddedSettings};
use draftr_common::Role;

#[derive(Parser)]
#[command(
    name = "draftr",
    version,
    about = "Draftr: a property-reservation GraphQL supergraph"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Everything in one process: router and subgraphs, SQLite files, demo accounts (the default).
    Run {
        #[arg(long, env = "DRAFTR_DATA_DIR", default_value = ".draftr-data")]
        data_dir: PathBuf,
        #[arg(long, env = "DRAFTR_ROUTER_LISTEN", default_value = "127.0.0.1:4000")]
        listen: String,
        #[arg(long, env = "DRAFTR_AUTH_LISTEN", default_value = "127.0.0.1:4001")]
        auth_listen: String,
        #[arg(long, env = "DRAFTR_CATALOG_LISTEN", default_value = "127.0.0.1:4002")]
        catalog_listen: String,
        #[arg(
            long,
            env = "DRAFTR_RESERVATIONS_LISTEN",
            default_value = "127.0.0.1:4003"
        )]
        reservations_listen: String,
        #[arg(long, env = "DRAFTR_PAYMENTS_LISTEN", default_value = "127.0.0.1:4004")]
        payments_listen: String,
        #[arg(
            long,
            env = "DRAFTR_NOTIFICATIONS_LISTEN",
            default_value = "127.0.0.1:4005"
        )]
        notifications_listen: String,
        /// Do not create the demo accounts.
        #[arg(long)]
        no_demo: bool,
    },
    /// The auth subgraph alone (production shape; settings from DRAFTR_AUTH__* and --config).
    Auth {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The catalog subgraph alone (production shape; settings from DRAFTR_CATALOG__* and --config).
    Catalog {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The reservations subgraph alone (settings from DRAFTR_RESERVATIONS__* and --config).
    Reservations {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The payments subgraph alone (settings from DRAFTR_PAYMENTS__* and --config).
    Payments {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The notifications subgraph alone (settings from DRAFTR_NOTIFICATIONS__* and --config).
    Notifications {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The router alone: runs the `draftr-router` binary installed beside this one, with
    /// these arguments (e.g. `--config router/router.yaml --supergraph schema/supergraph.graphql`).
    Router {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// Apply the database migrations of a subgraph and exit.
    Migrate {
        #[arg(value_parser = ["auth", "catalog", "reservations", "payments", "notifications"])]
        subgraph: String,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Export or check the subgraph SDLs and the composed supergraph.
    Schema {
        #[command(subcommand)]
        action: SchemaAction,
        #[arg(long, default_value = "schema", global = true)]
        dir: PathBuf,
    },
    /// Administration.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
}

#[derive(Subcommand)]
enum SchemaAction {
    /// Write schema/<subgraph>.graphql and schema/supergraph.graphql from the code.
    Export,
    /// Fail if the committed files differ from the code, or if composition fails.
    Check,
}

#[derive(Subcommand)]
enum AdminAction {
    /// Create the first ADMIN (or promote an existing account). The password is read from
    /// DRAFTR_ADMIN_PASSWORD so it never appears in the process list or shell history.
    Bootstrap {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "Administrator")]
        display_name: String,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn auth_settings(config: Option<&std::path::Path>) -> anyhow::Result<draftr_auth::AuthSettings> {
    draftr_common::config::load("auth", config)
}

/// The `service.name` of a serving command's traces; tools (migrate, schema, admin, and the
/// router launcher, which hands over to `draftr-router`) log but export no traces.
fn service_name(command: Option<&Command>) -> Option<&'static str> {
    match command {
        None | Some(Command::Run { .. }) => Some("draftr"),
        Some(Command::Auth { .. }) => Some("draftr-auth"),
        Some(Command::Catalog { .. }) => Some("draftr-catalog"),
        Some(Command::Reservations { .. }) => Some("draftr-reservations"),
        Some(Command::Payments { .. }) => Some("draftr-payments"),
        Some(Command::Notifications { .. }) => Some("draftr-notifications"),
        Some(Command::Router { .. } | Command::Migrate { .. })
        | Some(Command::Schema { .. } | Command::Admin { .. }) => None,
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let telemetry = service_name(cli.command.as_ref()).map(draftr_common::telemetry::init_service);
    if telemetry.is_none() {
        draftr_common::telemetry::init();
    }
    let result = run(cli).await;
    // After a graceful stop (SIGTERM) too: the spans of the last requests are still buffered.
    if let Some(telemetry) = telemetry {
        telemetry.shutdown().await;
    }
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // One line a person can act on (with its causes), not a backtrace.
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Run {
        data_dir: PathBuf::from(".draftr-data"),
        listen: "127.0.0.1:4000".into(),
        auth_listen: "127.0.0.1:4001".into(),
        catalog_listen: "127.0.0.1:4002".into(),
        reservations_listen: "127.0.0.1:4003".into(),
        payments_listen: "127.0.0.1:4004".into(),
        notifications_listen: "127.0.0.1:4005".into(),
        no_demo: false,
    }) {
        Command::Run {
            data_dir,
            listen,
            auth_listen,
            catalog_listen,
            reservations_listen,
            payments_listen,
            notifications_listen,
            no_demo,
        } => {
            let settings = EmbeddedSettings {
                data_dir: data_dir.clone(),
                router_listen: listen,
                auth_listen,
                catalog_listen,
                reservations_listen,
                payments_listen,
                notifications_listen,
                demo_data: !no_demo,
            };
            let running = Embedded::start(settings).await?;
            println!();
            println!(
                "Draftr is ready (embedded: one process, data in {}).",
                data_dir.display()
            );
            println!("  GraphQL (router)   http://{}/", running.router_addr);
            println!("  router health      http://{}/health", running.router_addr);
            println!(
                "  auth subgraph      http://127.0.0.1:{}/   JWKS http://127.0.0.1:{}/.well-known/jwks.json",
                running.auth_port, running.auth_port
            );
            println!(
                "  catalog subgraph   http://127.0.0.1:{}/",
                running.catalog_port
            );
            println!(
                "  reservations       http://127.0.0.1:{}/",
                running.reservations_port
            );
            println!(
                "  payments           http://127.0.0.1:{}/   (simulated provider: pm_card_visa pays, pm_card_chargeDeclined declines)",
                running.payments_port
            );
            println!(
                "  notifications      http://127.0.0.1:{}/   subscriptions ws://127.0.0.1:{}/ws",
                running.notifications_port, running.notifications_port
            );
            println!(
                "  mail catcher       {} (one .eml file per email)",
                running.mail_dir.display()
            );
            if !no_demo {
                println!("Demo accounts (development only):");
                for (email, password, _, role) in DEMO_USERS {
                    println!("  {:<6} {email:<20} password {password}", role.as_str());
                }
            }
            println!("Press Ctrl-C to stop.");
            draftr_common::http::shutdown_signal().await;
            running.shutdown().await?;
        }
        Command::Auth { config } => {
            let settings = auth_settings(config.as_deref())?;
            settings.subgraph.require_redis()?;
            let app = draftr_auth::App::build(settings).await?;
            println!("auth subgraph listening on port {}", app.port());
            app.run_until_stopped(draftr_common::http::shutdown_signal())
                .await?;
        }
        Command::Catalog { config } => {
            let settings: draftr_catalog::CatalogSettings =
                draftr_common::config::load("catalog", config.as_deref())?;
            settings.subgraph.require_redis()?;
            let app = draftr_catalog::App::build(settings).await?;
            println!("catalog subgraph listening on port {}", app.port());
            app.run_until_stopped(draftr_common::http::shutdown_signal())
                .await?;
        }
        Command::Reservations { config } => {
            let settings: draftr_reservations::ReservationsSettings =
                draftr_common::config::load("reservations", config.as_deref())?;
            settings.subgraph.require_redis()?;
            let app = draftr_reservations::App::build(settings).await?;
            println!("reservations subgraph listening on port {}", app.port());
            app.run_until_stopped(draftr_common::http::shutdown_signal())
                .await?;
        }
        Command::Payments { config } => {
            let settings: draftr_payments::PaymentsSettings =
                draftr_common::config::load("payments", config.as_deref())?;
            settings.subgraph.require_redis()?;
            let app = draftr_payments::App::build(settings).await?;
            println!("payments subgraph listening on port {}", app.port());
            app.run_until_stopped(draftr_common::http::shutdown_signal())
                .await?;
        }
        Command::Notifications { config } => {
            let settings: draftr_notifications::NotificationsSettings =
                draftr_common::config::load("notifications", config.as_deref())?;
            settings.subgraph.require_redis()?;
            let app = draftr_notifications::App::build(settings).await?;
            println!("notifications subgraph listening on port {}", app.port());
            app.run_until_stopped(draftr_common::http::shutdown_signal())
                .await?;
        }
        Command::Router { args } => {
            // The stock router entry point sets up its telemetry (Prometheus, OTLP) from its
            // own command line, which it reads from the process arguments; so the router on
            // its own is its own process.
            let exe = std::env::current_exe()?.with_file_name("draftr-router");
            let mut command = std::process::Command::new(&exe);
            command.args(&args);
            #[cfg(unix)]
            {
                use std::os::unix::process::CommandExt;
                let err = command.exec();
                anyhow::bail!(
                    "cannot run {}: {err} (build it with `cargo build --workspace`)",
                    exe.display()
                );
            }
            #[cfg(not(unix))]
            {
                let status = command.status()?;
                std::process::exit(status.code().unwrap_or(1));
            }
        }
        Command::Migrate { subgraph, config } => {
            match subgraph.as_str() {
                "auth" => {
                    let settings = auth_settings(config.as_deref())?;
                    let db = draftr_common::db::connect(&settings.subgraph.database).await?;
                    draftr_auth::app::migrate(&db).await?;
                }
                "catalog" => {
                    let settings: draftr_catalog::CatalogSettings =
                        draftr_common::config::load("catalog", config.as_deref())?;
                    let db = draftr_common::db::connect(&settings.subgraph.database).await?;
                    draftr_catalog::app::migrate(&db).await?;
                }
                "reservations" => {
                    let settings: draftr_reservations::ReservationsSettings =
                        draftr_common::config::load("reservations", config.as_deref())?;
                    let db = draftr_common::db::connect(&settings.subgraph.database).await?;
                    draftr_reservations::app::migrate(&db).await?;
                }
                "payments" => {
                    let settings: draftr_payments::PaymentsSettings =
                        draftr_common::config::load("payments", config.as_deref())?;
                    let db = draftr_common::db::connect(&settings.subgraph.database).await?;
                    draftr_payments::app::migrate(&db).await?;
                }
                "notifications" => {
                    let settings: draftr_notifications::NotificationsSettings =
                        draftr_common::config::load("notifications", config.as_deref())?;
                    let db = draftr_common::db::connect(&settings.subgraph.database).await?;
                    draftr_notifications::app::migrate(&db).await?;
                }
                other => anyhow::bail!("unknown subgraph {other}"),
            }
            println!("migrations applied: {subgraph}");
        }
        Command::Schema { action, dir } => match action {
            SchemaAction::Export => {
                for name in draftr::schema::export(&dir)? {
                    println!("wrote {}", dir.join(name).display());
                }
            }
            SchemaAction::Check => {
                draftr::schema::check(&dir)?;
                println!("schema files match the code and compose");
            }
        },
        Command::Admin {
            action:
                AdminAction::Bootstrap {
                    email,
                    display_name,
                    config,
                },
        } => {
            let password = std::env::var("DRAFTR_ADMIN_PASSWORD").map_err(|_| {
                anyhow::anyhow!("set DRAFTR_ADMIN_PASSWORD to the new administrator's password")
            })?;
            let app = draftr_auth::App::build(auth_settings(config.as_deref())?).await?;
            let user = app
                .service()
                .ensure_user(&email, &password, &display_name, Role::Admin)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{} is an administrator (id {})", user.email, user.id);
        }
    }
    Ok(())
}
