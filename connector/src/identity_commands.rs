//! `caap authority …`, `caap credentials …` and `caap keys …`: the command-line side of identity.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use caap_connector::config::Config;
use caap_connector::init::{InitOptions, init};
use caap_identity::ParticipantKey;
use caap_identity::keys::{KeySet, RetiredKey};
use clap::Subcommand;
use serde_json::{Value, json};

use crate::api_client::Api;
use crate::{api_call, load};

/// `caap authority …`.
#[derive(Debug, Subcommand)]
pub enum AuthorityCommand {
    /// Create a trust anchor's directory: `caap init` plus `[authority] enabled = true`. Start it
    /// with `caap serve --config DIR/caap.toml`.
    Init {
        /// Directory to create.
        #[arg(long)]
        dir: PathBuf,
        /// The federation's name, e.g. "Svensk stadsdatafederation".
        #[arg(long)]
        name: String,
        /// Public root URL (its did:web is the authority's DID).
        #[arg(long)]
        public_url: Option<String>,
        /// Address of the DSP listener (serves the DID document, the issuer and the status list).
        #[arg(long, default_value = "127.0.0.1:8191")]
        dsp_bind: SocketAddr,
        /// Address of the management API listener.
        #[arg(long, default_value = "127.0.0.1:8192")]
        api_bind: SocketAddr,
        /// Serve HTTPS with a self-signed certificate.
        #[arg(long)]
        tls: bool,
    },
    /// The member register: who may obtain credentials.
    Members {
        #[command(subcommand)]
        command: MembersCommand,
    },
    /// List issued credentials (all, or of one holder).
    Credentials {
        /// Only those of this holder DID.
        #[arg(long)]
        holder: Option<String>,
    },
    /// Revoke a credential (by id) or every credential of a holder (by DID). Verifiers notice at
    /// their next status-list refresh (identity.status_list_cache_secs).
    Revoke {
        /// A credential id (urn:uuid:…) or a holder DID.
        subject: String,
        /// Why; kept with the credential.
        #[arg(long)]
        reason: String,
    },
}

/// `caap authority members …`.
#[derive(Debug, Subcommand)]
pub enum MembersCommand {
    /// Register (or update) a member.
    Add {
        /// The member's DID.
        #[arg(long)]
        did: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// A role to issue a credential for (Municipality, Supplier); repeatable.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// An attribute of the role credentials, KEY=VALUE (e.g. municipalityCode=1280); repeatable.
        #[arg(long = "attr")]
        attributes: Vec<String>,
    },
    /// List the members.
    List,
}

/// `caap credentials …`.
#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// Ask an authority for credentials (DCP issuance) and wait for their delivery.
    Request {
        /// The authority's root URL (or DID).
        #[arg(long)]
        authority: String,
        /// Only these credential types (repeatable; default: all it offers this connector).
        #[arg(long = "type")]
        types: Vec<String>,
        /// Give up waiting after this many seconds.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// List the credentials this connector holds.
    List,
    /// Forget a held credential.
    Forget {
        /// Its id.
        id: String,
    },
}

/// `caap keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key. The old one stays in the DID document (verification only) for
    /// --keep-hours, so what it signed still verifies. Restart `caap serve` to use the new key.
    Rotate {
        /// How long the old key stays published, in hours (at least the lifetime of what it
        /// signed: tokens live 5 minutes; on an authority, credentials live for
        /// authority.credential_validity_days).
        #[arg(long)]
        keep_hours: Option<i64>,
    },
    /// Show the current and retired keys.
    List,
}

/// `caap authority …`.
pub async fn authority(
    command: AuthorityCommand,
    config: Option<PathBuf>,
    api: Api,
) -> anyhow::Result<()> {
    if let AuthorityCommand::Init {
        dir,
        name,
        public_url,
        dsp_bind,
        api_bind,
        tls,
    } = command
    {
        let made = init(&InitOptions {
            dir: dir.clone(),
            name,
            public_url,
            dsp_bind,
            api_bind,
            force: false,
            tls,
            data_dir: None,
        })?;
        let mut text = std::fs::read_to_string(&made.config_path)?;
        text.push_str(
            "\n# This connector is the federation's trust anchor: it issues and revokes credentials.\n\
             [authority]\nenabled = true\ncredential_validity_days = 365\n",
        );
        std::fs::write(&made.config_path, text)?;
        println!("caap: trust anchor created in {}", dir.display());
        println!(
            "  start it:        caap serve --config {}",
            made.config_path.display()
        );
        println!(
            "  add a member:    caap authority --config {} members add --did did:web:… --role Municipality --attr municipalityCode=1280",
            made.config_path.display()
        );
        println!(
            "  members trust it with [[identity.trusted_issuers]] issuer = \"<its DID>\" and obtain credentials with\n                   caap credentials request --authority <its public URL>"
        );
        return Ok(());
    }
    let config = load(config.as_deref())?;
    let api = &api;
    match command {
        AuthorityCommand::Init { .. } => unreachable!("handled above"),
        AuthorityCommand::Members {
            command:
                MembersCommand::Add {
                    did,
                    name,
                    roles,
                    attributes,
                },
        } => {
            let mut attrs = BTreeMap::new();
            for a in attributes {
                let Some((k, v)) = a.split_once('=') else {
                    bail!("--attr {a}: write KEY=VALUE, e.g. municipalityCode=1280");
                };
                attrs.insert(k.trim().to_owned(), Value::from(v.trim()));
            }
            let r = api_call(
                &config,
                api,
                reqwest::Method::POST,
                "/api/v1/authority/members",
                Some(json!({"holder": did, "name": name, "roles": roles, "attributes": attrs})),
            )
            .await?;
            println!(
                "caap: {} is a member (roles: {})",
                r["holder"].as_str().unwrap_or("?"),
                r["roles"]
            );
        }
        AuthorityCommand::Members {
            command: MembersCommand::List,
        } => {
            let r = api_call(
                &config,
                api,
                reqwest::Method::GET,
                "/api/v1/authority/members",
                None,
            )
            .await?;
            for m in r.as_array().cloned().unwrap_or_default() {
                println!(
                    "  {:<50} {:<20} roles {} {}",
                    m["holder"].as_str().unwrap_or("?"),
                    m["name"].as_str().unwrap_or("-"),
                    m["roles"],
                    m["attributes"]
                );
            }
        }
        AuthorityCommand::Credentials { holder } => {
            let path = match holder {
                Some(h) => format!(
                    "/api/v1/authority/credentials?holder={}",
                    url::form_urlencoded::byte_serialize(h.as_bytes()).collect::<String>()
                ),
                None => "/api/v1/authority/credentials".into(),
            };
            let r = api_call(&config, api, reqwest::Method::GET, &path, None).await?;
            for c in r.as_array().cloned().unwrap_or_default() {
                let state = match c["revokedAt"].as_str() {
                    Some(at) => format!(
                        "REVOKED {at} ({})",
                        c["revokeReason"].as_str().unwrap_or("")
                    ),
                    None => format!("valid until {}", c["validUntil"].as_str().unwrap_or("?")),
                };
                println!(
                    "  {}  {:<24} {:<45} {state}",
                    c["id"].as_str().unwrap_or("?"),
                    c["credentialType"].as_str().unwrap_or("?"),
                    c["holder"].as_str().unwrap_or("?"),
                );
            }
        }
        AuthorityCommand::Revoke { subject, reason } => {
            let r = api_call(
                &config,
                api,
                reqwest::Method::POST,
                "/api/v1/authority/revocations",
                Some(json!({"subject": subject, "reason": reason})),
            )
            .await?;
            println!(
                "caap: {} credential(s) revoked; verifiers notice at their next status-list refresh",
                r["revoked"]
            );
        }
    }
    Ok(())
}

/// `caap credentials …`.
pub async fn credentials(
    command: CredentialsCommand,
    config: Option<PathBuf>,
    api: Api,
) -> anyhow::Result<()> {
    let config = load(config.as_deref())?;
    let api = &api;
    match command {
        CredentialsCommand::Request {
            authority,
            types,
            timeout,
        } => {
            println!("caap: asking {authority} for credentials…");
            let r = api_call(
                &config,
                api,
                reqwest::Method::POST,
                "/api/v1/credentials/requests",
                Some(json!({"authority": authority, "types": types, "waitSecs": timeout})),
            )
            .await?;
            match r["status"].as_str() {
                Some("ISSUED") => {
                    println!(
                        "caap: {} issued (request {}):",
                        r["authority"].as_str().unwrap_or("?"),
                        r["requestId"].as_str().unwrap_or("?")
                    );
                    for c in r["credentials"].as_array().cloned().unwrap_or_default() {
                        println!(
                            "  {}  {}  valid until {}",
                            c["types"],
                            c["id"].as_str().unwrap_or("?"),
                            c["validUntil"].as_str().unwrap_or("-")
                        );
                    }
                }
                Some("REJECTED") => bail!(
                    "the authority rejected the request: {}",
                    r["reason"].as_str().unwrap_or("no reason given")
                ),
                _ => bail!(
                    "no credentials arrived within {timeout} s (request {} is {}{}); look again with `caap credentials list`",
                    r["requestId"].as_str().unwrap_or("?"),
                    r["status"].as_str().unwrap_or("?"),
                    r["reason"]
                        .as_str()
                        .map(|w| format!(": {w}"))
                        .unwrap_or_default()
                ),
            }
        }
        CredentialsCommand::List => {
            let r = api_call(
                &config,
                api,
                reqwest::Method::GET,
                "/api/v1/credentials",
                None,
            )
            .await?;
            let items = r.as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                println!(
                    "no credentials; obtain some with `caap credentials request --authority URL`"
                );
            }
            for c in items {
                println!(
                    "  {:<40} {}  from {}  valid until {}",
                    c["types"].to_string(),
                    c["id"].as_str().unwrap_or("?"),
                    c["issuer"].as_str().unwrap_or("?"),
                    c["validUntil"].as_str().unwrap_or("-")
                );
            }
        }
        CredentialsCommand::Forget { id } => {
            let path = format!(
                "/api/v1/credentials/{}",
                url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
            );
            api_call(&config, api, reqwest::Method::DELETE, &path, None).await?;
            println!("caap: forgot {id}");
        }
    }
    Ok(())
}

/// `caap keys …`: works on the key files (the connector may be stopped).
pub fn keys(command: KeysCommand, config: Option<PathBuf>) -> anyhow::Result<()> {
    let config: Config = load(config.as_deref())?;
    let key_path = config.key_path();
    let retired_path = caap_connector::trust::dcp::retired_keys_path(&config);
    let current = ParticipantKey::from_jwk_json(
        &std::fs::read_to_string(&key_path)
            .with_context(|| format!("cannot read the key file {}", key_path.display()))?,
    )
    .with_context(|| format!("{} is not a usable key", key_path.display()))?;
    let retired = caap_connector::trust::dcp::read_retired_keys(&config)?;
    let mut set = KeySet::with_retired(current, retired);
    match command {
        KeysCommand::List => {
            let now = caap_connector::clock::Clock::now(&caap_connector::clock::SystemClock);
            println!(
                "  current  {}  ({:?})",
                set.current().key_id().unwrap_or("?"),
                set.current().algorithm()
            );
            for r in set.retired() {
                let state = if r.keep_until > now {
                    "published"
                } else {
                    "expired, dropped at next start"
                };
                println!(
                    "  retired  {}  since {}  until {} ({state})",
                    r.kid, r.retired_at, r.keep_until
                );
            }
        }
        KeysCommand::Rotate { keep_hours } => {
            let now = caap_connector::clock::Clock::now(&caap_connector::clock::SystemClock);
            let keep = match keep_hours {
                Some(h) if h < 1 => bail!("--keep-hours must be at least 1"),
                Some(h) => chrono::Duration::hours(h),
                None if config.authority.enabled => {
                    chrono::Duration::days(i64::from(config.authority.credential_validity_days))
                }
                None => chrono::Duration::hours(24),
            };
            // Key ids are `<did>#key-N`, or `key-N` when the DID was not known at `caap init`
            // (the connector puts it under its DID at start).
            let number = |kid: &str| {
                kid.rsplit('#')
                    .next()
                    .and_then(|f| f.strip_prefix("key-"))
                    .and_then(|n| n.parse::<u32>().ok())
            };
            let highest = std::iter::once(set.current().key_id().unwrap_or_default())
                .chain(set.retired().iter().map(|r| r.kid.as_str()))
                .filter_map(number)
                .max()
                .unwrap_or(0);
            let next_kid = match set.current().key_id().and_then(|k| k.split_once('#')) {
                Some((did, _)) => format!("{did}#key-{}", highest + 1),
                None => format!("key-{}", highest + 1),
            };
            let next = ParticipantKey::generate_with(set.current().algorithm(), &next_kid)?;
            let old = set.current().key_id().unwrap_or("?").to_owned();
            set.rotate(next, now, now + keep)?;
            set.prune(now);
            let retired: Vec<RetiredKey> = set.retired().to_vec();
            caap_connector::init::write_private(
                &retired_path,
                &serde_json::to_string_pretty(&retired)?,
            )?;
            caap_connector::init::write_private(&key_path, &set.current().to_private_jwk_json())?;
            println!("caap: the signing key is now {next_kid}");
            println!(
                "  {old} stays in the DID document for verification until {}",
                now + keep
            );
            println!("  restart `caap serve` (every replica, with the same key files) to use it");
        }
    }
    Ok(())
}
