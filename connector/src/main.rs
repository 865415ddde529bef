//! `caap`: the city data-space connector. One binary: serve, set up, run the demo, and talk to a
//! running connector's management API.
#![allow(
    clippy::print_stdout,
    reason = "a command-line program prints its results"
)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::bail;
use caap_connector::catalog_files::Kind;
use caap_connector::config::Config;
use caap_connector::init::{InitOptions, init};
use caap_connector::server;
use clap::{CommandFactory, Parser, Subcommand};

mod api_client;
mod apply;
mod catalog_table;
mod commands;
mod identity_commands;
mod resources;

use api_client::Api;

/// caap: a Dataspace Protocol (DSP 2025-1) connector for cities and their suppliers.
///
/// A connector advertises a city's datasets in a DCAT catalog, fetches and searches other cities'
/// catalogs, negotiates ODRL usage contracts (signed, recorded in a hash-chained ledger), and (in later
/// releases) streams data peer to peer.
/// It runs as one binary with an embedded SQLite database, or on PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "caap", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Commands that call the management API use the config's admin token, or with these options an
    /// access token from the OIDC provider (OAuth2 client credentials).
    #[command(flatten)]
    oidc: api_client::OidcArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the connector until SIGTERM or Ctrl-C.
    ///
    /// Without --config, runs the embedded default from ./caap-data (created on first start:
    /// SQLite, a generated key pair and admin token, loopback ports 8181 and 8182).
    Serve {
        /// The configuration file (TOML). CAAP_* environment variables override its keys.
        #[arg(long, short, env = "CAAP_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Create a new connector directory: caap.toml, keys/participant.jwk and files/.
    Init {
        /// Directory to create (or fill).
        #[arg(long)]
        dir: PathBuf,
        /// Display name of the participant, e.g. "Malmö stad".
        #[arg(long)]
        name: String,
        /// Public root URL other connectors reach this one at, e.g. https://caap.malmo.se.
        /// The participant id becomes its did:web. Default: the DSP listener's address.
        #[arg(long)]
        public_url: Option<String>,
        /// Address of the DSP listener.
        #[arg(long, default_value = "127.0.0.1:8181")]
        dsp_bind: SocketAddr,
        /// Address of the management API listener (keep it private).
        #[arg(long, default_value = "127.0.0.1:8182")]
        api_bind: SocketAddr,
        /// Replace an existing configuration and key.
        #[arg(long)]
        force: bool,
        /// Also make a self-signed TLS certificate (keys/tls.crt, keys/tls.key) for localhost,
        /// 127.0.0.1 and the public URL's host, and serve the DSP listener over HTTPS. Other
        /// connectors trust it by listing keys/tls.crt in their [tls] ca_files.
        #[arg(long)]
        tls: bool,
        /// Keep state (database, keys, files) in this absolute directory instead of --dir, e.g.
        /// --dir /etc/caap --data-dir /var/lib/caap (the Debian package's layout).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Run a federation of city connectors on this machine and narrate what they do.
    ///
    /// Needs no external service and writes only to a temporary directory.
    #[cfg(feature = "demo")]
    Demo {
        /// Run the walk-through and exit (0 when every step passed) instead of staying up.
        #[arg(long)]
        exit: bool,
        /// How many cities (2 or 3).
        #[arg(long, default_value_t = 3)]
        cities: usize,
    },
    /// The federated catalog of a running connector.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
        /// The running connector's configuration (for its API address and admin token).
        #[arg(long, short, env = "CAAP_CONFIG", global = true)]
        config: Option<PathBuf>,
        /// The management API's base URL, when it is not the config's api.bind (e.g. port 0).
        #[arg(long, global = true)]
        api_url: Option<String>,
    },
    /// Negotiate a contract for an offer in another connector's catalog (as consumer).
    Negotiate {
        /// The provider's root URL or DSP base URL.
        #[arg(long)]
        provider: String,
        /// The offer id (from the provider's catalog: a dataset's hasPolicy).
        #[arg(long)]
        offer: String,
        /// Follow the negotiation until FINALIZED (print the agreement id) or TERMINATED (print the reason).
        #[arg(long)]
        wait: bool,
        /// With --wait: give up waiting after this many seconds (the negotiation goes on).
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// The running connector's configuration (for its API address and admin token).
        #[arg(long, short, env = "CAAP_CONFIG")]
        config: Option<PathBuf>,
        /// The management API's base URL, when it is not the config's api.bind.
        #[arg(long)]
        api_url: Option<String>,
    },
    /// Look at and steer contract negotiations of a running connector.
    Negotiation {
        #[command(subcommand)]
        command: commands::NegotiationCommand,
        /// The running connector's configuration.
        #[arg(long, short, env = "CAAP_CONFIG", global = true)]
        config: Option<PathBuf>,
        /// The management API's base URL, when it is not the config's api.bind.
        #[arg(long, global = true)]
        api_url: Option<String>,
    },
    /// Transfers: start one under an agreement (pull or push, with progress), look at them, suspend, resume,
    /// complete, terminate, refresh the pull token.
    Transfer {
        #[command(subcommand)]
        command: commands::TransferCommand,
        /// The running connector's configuration.
        #[arg(long, short, env = "CAAP_CONFIG", global = true)]
        config: Option<PathBuf>,
        /// The management API's base URL, when it is not the config's api.bind.
        #[arg(long, global = true)]
        api_url: Option<String>,
    },
    /// List the contract agreements of a running connector.
    Agreements {
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// The running connector's configuration.
        #[arg(long, short, env = "CAAP_CONFIG")]
        config: Option<PathBuf>,
        /// The management API's base URL, when it is not the config's api.bind.
        #[arg(long)]
        api_url: Option<String>,
    },
    /// Make the connector's catalog match catalog files (assets, policies, offers as TOML): create,
    /// update and, with --prune, delete; every file is checked first and nothing is written unless all
    /// of it is valid. Exit status: 0 done (or nothing to do), 1 error, 2 bad usage, 3 --check found
    /// changes.
    Apply {
        #[command(flatten)]
        args: apply::ApplyArgs,
        #[command(flatten)]
        target: resources::Target,
    },
    /// Write the running connector's catalog as catalog files (`caap apply` of them changes nothing).
    Export {
        /// The folder to write assets.toml, policies.toml (+ policies/*.jsonld) and offers.toml to.
        #[arg(long, short = 'o')]
        out: PathBuf,
        /// Overwrite files that exist.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        target: resources::Target,
    },
    /// The datasets this connector publishes (metadata + data address): list, show, create, update,
    /// delete.
    Asset {
        #[command(subcommand)]
        command: resources::ResourceCommand,
        #[command(flatten)]
        target: resources::Target,
    },
    /// ODRL policies: the connector's (list, show, create, update, delete), and offline: evaluate one
    /// against a request (compliance report), or explain it.
    Policy {
        #[command(subcommand)]
        command: resources::PolicyCommands,
        #[command(flatten)]
        target: resources::Target,
    },
    /// Offers (assets under an access and a contract policy): list, show, create, update, delete.
    Offer {
        #[command(subcommand)]
        command: resources::ResourceCommand,
        #[command(flatten)]
        target: resources::Target,
    },
    /// Print a shell completion script, e.g. `caap completions bash > /etc/bash_completion.d/caap`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// The MIM3 transaction ledger: verify its hash chain and signatures, or export it.
    Ledger {
        #[command(subcommand)]
        command: commands::LedgerCommand,
        /// The connector's configuration (the ledger is read straight from its database).
        #[arg(long, short, env = "CAAP_CONFIG", global = true)]
        config: Option<PathBuf>,
    },
    /// The federation's trust anchor: create one, manage its members, list and revoke the
    /// credentials it issued.
    Authority {
        #[command(subcommand)]
        command: identity_commands::AuthorityCommand,
        /// The authority's configuration.
        #[arg(long, short, env = "CAAP_CONFIG", global = true)]
        config: Option<PathBuf>,
        /// The management API's base URL, when it is not the config's api.bind.
        #[arg(long, global = true)]
        api_url: Option<String>,
    },
    /// The verifiable credentials this connector holds: request them from an authority, list, forget.
    Credentials {
        #[command(subcommand)]
        command: identity_commands::CredentialsCommand,
        /// The running connector's configuration.
        #[arg(long, short, env = "CAAP_CONFIG", global = true)]
        config: Option<PathBuf>,
        /// The management API's base URL, when it is not the config's api.bind.
        #[arg(long, global = true)]
        api_url: Option<String>,
    },
    /// The participant's signing keys: rotate, list.
    Keys {
        #[command(subcommand)]
        command: identity_commands::KeysCommand,
        /// The connector's configuration (the key files are next to it).
        #[arg(long, short, env = "CAAP_CONFIG", global = true)]
        config: Option<PathBuf>,
    },
    /// Apply (or roll back) database migrations and exit. `caap serve` applies them itself.
    Migrate {
        /// The configuration file.
        #[arg(long, short, env = "CAAP_CONFIG")]
        config: Option<PathBuf>,
        /// Roll every migration back (drops caap's tables; data is lost).
        #[arg(long)]
        down: bool,
    },
}

#[derive(Debug, Subcommand)]
enum CatalogCommand {
    /// Fetch another connector's catalog into the federated cache.
    Fetch {
        /// The other connector's root URL or DSP base URL.
        url: String,
    },
    /// Search the federated cache across every source: a page of ranked hits and the facets.
    Search {
        /// Free text (every word must occur; Swedish and English inflections match).
        #[arg(long)]
        q: Option<String>,
        /// A theme, e.g. environment.
        #[arg(long)]
        theme: Option<String>,
        /// A Smart Data Model type, e.g. AirQualityObserved.
        #[arg(long)]
        data_model: Option<String>,
        /// A city name or participant id.
        #[arg(long)]
        city: Option<String>,
        /// A licence IRI.
        #[arg(long)]
        licence: Option<String>,
        /// `open` or `negotiable`.
        #[arg(long)]
        access: Option<String>,
        /// Hits per page (1 to 500).
        #[arg(long)]
        limit: Option<u32>,
        /// The next page (the token the previous page printed).
        #[arg(long)]
        cursor: Option<String>,
    },
    /// List the catalog sources with their crawl state.
    Sources,
    /// Remove a catalog source and its datasets from the cache.
    Remove {
        /// The source's DSP address, as `caap catalog sources` lists it.
        address: String,
    },
}

const EMBEDDED_DIR: &str = "caap-data";

fn env_vars() -> Vec<(String, String)> {
    std::env::vars().collect()
}

pub(crate) fn load(config: Option<&Path>) -> anyhow::Result<Config> {
    match config {
        Some(path) => Ok(Config::load(path, env_vars())?),
        None => {
            let path = Path::new(EMBEDDED_DIR).join("caap.toml");
            if !path.exists() {
                bail!(
                    "no --config given and {} does not exist; run `caap serve` once or `caap init`",
                    path.display()
                );
            }
            Ok(Config::load(&path, env_vars())?)
        }
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if config.log.format == "json" {
        // One JSON object a line; a line logged while serving a request carries the request's span in
        // `spans` (`request_id`, the `X-Request-Id` echoed to the caller), however deeply it is nested.
        builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init()
    } else {
        builder.try_init()
    };
}

async fn serve(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let started = Instant::now();
    let config_path = match config_path {
        Some(p) => p,
        None => {
            let dir = PathBuf::from(EMBEDDED_DIR);
            let path = dir.join("caap.toml");
            if !path.exists() {
                let made = init(&InitOptions {
                    dir: dir.clone(),
                    name: "caap (embedded default)".into(),
                    public_url: None,
                    dsp_bind: SocketAddr::from(([127, 0, 0, 1], 8181)),
                    api_bind: SocketAddr::from(([127, 0, 0, 1], 8182)),
                    force: false,
                    tls: false,
                    data_dir: None,
                })?;
                println!(
                    "caap: first start: created {} and {}",
                    made.config_path.display(),
                    made.key_path.display()
                );
            }
            path
        }
    };
    let config = Config::load(&config_path, env_vars())?;
    init_logging(&config);
    let db = if config.database.url.is_some() {
        "configured database"
    } else {
        "SQLite"
    };
    let data_dir = config.data_dir.clone();
    let running = server::start(config).await?;
    let c = &running.connector;
    println!(
        "caap: {} is ready in {} ms",
        c.identity.name,
        started.elapsed().as_millis()
    );
    println!("  participant id   {}", c.identity.participant_id);
    println!(
        "  DID document     {}/.well-known/did.json  (credential service {})",
        c.identity.public_url, c.trust.credential_service
    );
    if c.config.dsp.auth.mode == caap_connector::config::AuthMode::Dcp {
        let held = c
            .store
            .held_credentials()
            .await
            .map(|h| h.len())
            .unwrap_or(0);
        println!(
            "  DSP auth         DCP 1.0; {} trusted issuer(s); {held} credential(s) held",
            c.config.identity.trusted_issuers.len()
        );
        if held == 0 && !c.config.authority.enabled {
            println!(
                "                   (other connectors will refuse this one until it holds a membership: \
                 caap credentials request --authority <URL>)"
            );
        }
    } else {
        println!("  DSP auth         static token table (TCK and tests only; loopback)");
    }
    if c.config.authority.enabled {
        println!(
            "  trust anchor     issuer {}/issuer  (caap authority members add …)",
            c.identity.public_url
        );
    }
    println!(
        "  DSP 2025-1       {}  (version: http://{}/.well-known/dspace-version)",
        c.identity.dsp_base, running.dsp_addr
    );
    println!(
        "  management API   {}/api/v1  (OpenAPI: {}/api/v1/openapi.json)",
        running.api_url(),
        running.api_url()
    );
    println!(
        "  admin token      [api] admin_token in {}",
        config_path.display()
    );
    println!("  database         {db} ({})", c.store.backend());
    println!("  data directory   {}", data_dir.display());
    if let Some((_, url)) = &running.portal {
        println!("  citizen portal   {url}  (login with [portal.oidc])");
    }
    let portal = match &running.portal {
        Some((addr, _)) => format!(" portal={addr}"),
        None => String::new(),
    };
    let stop = server::listen_for_shutdown();
    println!(
        "caap: ready dsp={} api={}{portal}",
        running.dsp_addr, running.api_addr
    );
    stop.await;
    println!("caap: stopping (finishing requests in flight)…");
    running.stop().await;
    println!("caap: stopped");
    Ok(())
}

/// The management API's base URL: `--api-url`, else the config's `api.bind` (loopback for 0.0.0.0).
pub(crate) fn api_base(config: &Config, api_url: Option<&str>) -> String {
    match api_url {
        Some(base) => base.trim_end_matches('/').to_owned(),
        None => {
            let host = if config.api.bind.ip().is_unspecified() {
                "127.0.0.1".to_owned()
            } else {
                config.api.bind.ip().to_string()
            };
            format!("http://{host}:{}", config.api.bind.port())
        }
    }
}

pub(crate) async fn api_call(
    config: &Config,
    api: &Api,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<serde_json::Value> {
    resources::call(config, api, method, path, body.as_ref(), None)
        .await
        .map(|reply| reply.body)
}

async fn catalog(command: CatalogCommand, config: Option<PathBuf>, api: Api) -> anyhow::Result<()> {
    let config = load(config.as_deref())?;
    match command {
        CatalogCommand::Fetch { url } => {
            println!("caap: fetching the catalog of {url}…");
            let r = api_call(
                &config,
                &api,
                reqwest::Method::POST,
                "/api/v1/catalogs/request",
                Some(serde_json::json!({"counterPartyAddress": url})),
            )
            .await?;
            println!(
                "caap: cached {} datasets from {} ({}) in {} page(s)",
                r["datasets"],
                r["city"].as_str().unwrap_or("?"),
                r["participantId"].as_str().unwrap_or("?"),
                r["pages"]
            );
        }
        CatalogCommand::Search {
            q,
            theme,
            data_model,
            city,
            licence,
            access,
            limit,
            cursor,
        } => {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in [
                ("q", q),
                ("theme", theme),
                ("dataModel", data_model),
                ("city", city),
                ("licence", licence),
                ("access", access),
                ("limit", limit.map(|l| l.to_string())),
                ("cursor", cursor),
            ] {
                if let Some(v) = v {
                    query.append_pair(k, &v);
                }
            }
            let r = api_call(
                &config,
                &api,
                reqwest::Method::GET,
                &format!("/api/v1/catalogs/search?{}", query.finish()),
                None,
            )
            .await?;
            print!("{}", catalog_table::search(&r));
        }
        CatalogCommand::Sources => {
            let r = api_call(
                &config,
                &api,
                reqwest::Method::GET,
                "/api/v1/catalogs",
                None,
            )
            .await?;
            print!("{}", catalog_table::sources(&r));
        }
        CatalogCommand::Remove { address } => {
            let encoded: String =
                url::form_urlencoded::byte_serialize(address.as_bytes()).collect();
            api_call(
                &config,
                &api,
                reqwest::Method::DELETE,
                &format!("/api/v1/catalogs?address={encoded}"),
                None,
            )
            .await?;
            println!("caap: {address} and its datasets are no longer in the cache");
        }
    }
    Ok(())
}

async fn migrate(config: Option<PathBuf>, down: bool) -> anyhow::Result<()> {
    let config = load(config.as_deref())?;
    let store = caap_connector::store::Store::open(
        &config.database_url(),
        1,
        std::sync::Arc::new(caap_connector::clock::SystemClock),
    )
    .await?;
    if down {
        store.migrate_down().await?;
        println!("caap: every migration rolled back");
    } else {
        println!("caap: migrations applied ({})", store.backend());
    }
    store.close().await?;
    Ok(())
}

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let api = |url: Option<String>| Api::new(url, cli.oidc.clone());
    let result = match cli.command {
        Command::Serve { config } => serve(config).await,
        Command::Init { dir, name, public_url, dsp_bind, api_bind, force, tls, data_dir } => {
            init(&InitOptions { dir, name, public_url, dsp_bind, api_bind, force, tls, data_dir }).map(|made| {
                println!("caap: created {}", made.config_path.display());
                println!("  key pair        {} (private, mode 0600)", made.key_path.display());
                if let Some(cert) = &made.tls_cert_path {
                    println!("  TLS certificate {} (self-signed; peers list it in [tls] ca_files)", cert.display());
                }
                match made.participant_id {
                    Some(id) => println!("  participant id  {id}"),
                    None => println!("  participant id  the did:web of the DSP listener's address (set --public-url to fix it)"),
                }
                println!("start it with: caap serve --config {}", made.config_path.display());
                println!(
                    "then join a federation: add its authority to [[identity.trusted_issuers]] and run\n  \
                     caap credentials --config {} request --authority <the authority's URL>",
                    made.config_path.display()
                );
            }).map_err(Into::into)
        }
        #[cfg(feature = "demo")]
        Command::Demo { exit, cities } => {
            caap_connector::demo::run(exit, cities).await.map_err(Into::into)
        }
        Command::Catalog {
            command,
            config,
            api_url,
        } => catalog(command, config, api(api_url)).await,
        Command::Migrate { config, down } => migrate(config, down).await,
        Command::Negotiate {
            provider,
            offer,
            wait,
            timeout,
            config,
            api_url,
        } => commands::negotiate(config, api(api_url), provider, offer, wait, timeout).await,
        Command::Negotiation {
            command,
            config,
            api_url,
        } => commands::negotiation(command, config, api(api_url)).await,
        Command::Agreements { config, api_url, json } => {
            commands::agreements(config, api(api_url), json).await
        }
        Command::Transfer {
            command,
            config,
            api_url,
        } => commands::transfer(command, config, api(api_url)).await,
        Command::Ledger { command, config } => commands::ledger(command, config).await,
        Command::Authority {
            command,
            config,
            api_url,
        } => identity_commands::authority(command, config, api(api_url)).await,
        Command::Credentials {
            command,
            config,
            api_url,
        } => identity_commands::credentials(command, config, api(api_url)).await,
        Command::Keys { command, config } => identity_commands::keys(command, config),
        Command::Policy { command: resources::PolicyCommands::Offline(command), .. } => {
            commands::policy(command)
        }
        Command::Policy { command: resources::PolicyCommands::Managed(command), target } => {
            resources::run(Kind::Policy, command, target.config, api(target.api_url)).await
        }
        Command::Asset { command, target } => {
            resources::run(Kind::Asset, command, target.config, api(target.api_url)).await
        }
        Command::Offer { command, target } => {
            resources::run(Kind::Offer, command, target.config, api(target.api_url)).await
        }
        Command::Apply { args, target } => {
            apply::apply(args, target.config, api(target.api_url)).await
        }
        Command::Export { out, force, target } => {
            apply::export(out, force, target.config, api(target.api_url)).await
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "caap", &mut std::io::stdout());
            Ok(())
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<apply::PendingChanges>().is_some() => {
            eprintln!("caap: {e}");
            std::process::ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("caap: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
