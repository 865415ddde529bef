//! `caap demo`: a federation of city connectors on loopback, in one process, narrated.
//!
//! No external services and no files outside a temporary directory. Each city runs a real
//! connector (its own SQLite, keys and listeners); they talk DSP over real HTTP.
#![allow(clippy::print_stdout, reason = "the demo narrates on the terminal")]

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};

mod citizen;

use crate::catalog::FederatedQuery;
use caap_catalog::samples::{self, SampleCity};

use crate::catalog_files::{self, Desired, Kind};
use crate::config::Config;
use crate::init::{InitOptions, init};
use crate::portal::demo_idp::{DemoCitizen, DemoIdp, DemoIdpParts};
use crate::server::{Running, start};
use crate::store::DocKind;

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
#[error("demo step failed: {0}")]
pub struct DemoError(pub String);

fn fail(step: &str) -> impl Fn(String) -> DemoError + '_ {
    move |e| DemoError(format!("{step}: {e}"))
}

fn free_port() -> Result<u16, DemoError> {
    let l =
        TcpListener::bind("127.0.0.1:0").map_err(|e| DemoError(format!("no free port: {e}")))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| DemoError(e.to_string()))
}

fn step(n: usize, total: usize, text: &str) {
    println!("\n[{n}/{total}] {text}");
}

/// The cities' catalog files (examples/cities/<slug>/catalog), built into the binary so that an
/// installed `caap` runs the demo: (slug, [(path in the catalog folder, content)]).
macro_rules! city_files {
    ($($slug:literal),*) => {
        &[$(($slug, &[
            ("assets.toml", include_str!(concat!("../../examples/cities/", $slug, "/catalog/assets.toml"))),
            ("offers.toml", include_str!(concat!("../../examples/cities/", $slug, "/catalog/offers.toml"))),
            ("policies.toml", include_str!(concat!("../../examples/cities/", $slug, "/catalog/policies.toml"))),
            ("policies/open-data-cc-by.jsonld", include_str!(concat!("../../examples/cities/", $slug, "/catalog/policies/open-data-cc-by.jsonld"))),
            ("policies/public-service-use.jsonld", include_str!(concat!("../../examples/cities/", $slug, "/catalog/policies/public-service-use.jsonld"))),
        ])),*]
    };
}

type CatalogFiles = &'static [(&'static str, &'static [(&'static str, &'static str)])];

const CITY_CATALOGS: CatalogFiles = city_files!("malmo", "lund", "goteborg");

/// Writes the catalog files of the city `slug` under `dir` and loads them as `caap apply` would.
fn city_catalog(dir: &std::path::Path, slug: &str) -> Result<Desired, DemoError> {
    let files = CITY_CATALOGS
        .iter()
        .find(|(s, _)| *s == slug)
        .map(|(_, files)| *files)
        .ok_or_else(|| DemoError(format!("no catalog files for {slug}")))?;
    let root = dir.join("catalogs").join(slug);
    for (path, text) in files {
        let path = root.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| fail("writing the catalog files")(e.to_string()))?;
        }
        std::fs::write(&path, text)
            .map_err(|e| fail("writing the catalog files")(e.to_string()))?;
    }
    catalog_files::load(&root).map_err(|problems| {
        let all: Vec<String> = problems.iter().map(ToString::to_string).collect();
        fail("loading the catalog files")(all.join("; "))
    })
}

/// Runs the walk-through. With `exit`, returns when done; otherwise keeps the federation running
/// until Ctrl-C or SIGTERM.
pub async fn run(exit: bool, cities: usize) -> Result<(), DemoError> {
    let cities: Vec<&SampleCity> = samples::CITIES
        .iter()
        .take(cities.clamp(2, samples::CITIES.len()))
        .collect();
    let total = 11;
    let dir = tempfile::Builder::new()
        .prefix("caap-demo-")
        .tempdir()
        .map_err(|e| DemoError(format!("cannot make a temporary directory: {e}")))?;
    println!("caap demo: a small federation of city connectors on this machine.");
    println!(
        "Everything lives in {} and is removed at the end.",
        dir.path().display()
    );

    step(
        1,
        total,
        "Starting the federation's trust anchor (`caap authority`: its own did:web, issuer service and revocation list)…",
    );
    let authority = start_node(
        dir.path(),
        "federation",
        "Svensk stadsdatafederation",
        None,
        true,
        None,
    )
    .await?;
    let authority_did = authority.connector.identity.participant_id.clone();
    println!(
        "  ✓ {}  {}  ·  issuer {}/issuer",
        authority.connector.identity.name, authority_did, authority.connector.identity.public_url
    );

    step(
        2,
        total,
        &format!(
            "Starting {} city connectors (each with its own SQLite database, key pair, did:web and credential service)…",
            cities.len()
        ),
    );
    // The first city (the consent walk's provider) runs its citizen portal, logging citizens in at the
    // demo's own development-only OpenID Connect provider exactly as a city configures its e-ID provider.
    let (idp, portal_config) = demo_portal()?;
    let mut running: Vec<(&SampleCity, Running)> = Vec::new();
    for (i, city) in cities.iter().enumerate() {
        let r = start_node(
            dir.path(),
            city.slug,
            city.name,
            Some(&authority_did),
            false,
            (i == 0).then(|| portal_config.clone()),
        )
        .await?;
        println!(
            "  ✓ {:<9} DSP {}/dsp  ·  management API {}  ·  {}",
            city.name,
            r.connector.identity.public_url,
            r.api_url(),
            r.connector.identity.participant_id
        );
        if let Some((_, url)) = &r.portal {
            println!(
                "  ✓ {:<9} citizen portal {url}  ·  login at the demo's e-ID provider {} (development only)",
                city.name,
                idp.issuer()
            );
        }
        running.push((city, r));
    }
    let supplier = start_node(
        dir.path(),
        "okand",
        "Okänd Leverantör AB",
        Some(&authority_did),
        false,
        None,
    )
    .await?;
    println!(
        "  ✓ {:<9} a supplier that is not a member of the federation  ·  {}",
        "Okänd AB", supplier.connector.identity.participant_id
    );

    step(
        3,
        total,
        "The authority registers the cities as members; each city asks it for credentials over the DCP issuance protocol…",
    );
    for (city, r) in &running {
        let c = &r.connector;
        authority
            .connector
            .authority
            .put_member(crate::store::identity::MemberProfile {
                holder: c.identity.participant_id.clone(),
                name: Some(city.name.to_owned()),
                roles: vec!["Municipality".into()],
                dsp_address: Some(c.identity.dsp_base.clone()),
                attributes:
                    serde_json::json!({"municipalityCode": city.municipality_code, "country": "SE"})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
            })
            .await
            .map_err(|e| fail("registering a member")(e.to_string()))?;
        let got = c
            .trust
            .request_credentials(
                &authority.connector.identity.public_url,
                &[],
                std::time::Duration::from_secs(20),
            )
            .await
            .map_err(|e| fail("requesting credentials")(e.to_string()))?;
        if got.status != "ISSUED" {
            return Err(DemoError(format!(
                "{} got no credentials: {} {:?}",
                city.name, got.status, got.reason
            )));
        }
        let mut types: Vec<String> = got
            .credentials
            .iter()
            .flat_map(|h| h.types.clone())
            .collect();
        // The membership first, then the roles.
        types.sort_by_key(|t| (t != "MembershipCredential", t.clone()));
        println!(
            "  ✓ {:<9} holds {} (VC 2.0 JWTs, municipality code {}, valid until {})",
            city.name,
            types.join(" + "),
            city.municipality_code,
            got.credentials
                .first()
                .and_then(|h| h.valid_until)
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default()
        );
    }

    step(
        4,
        total,
        "Each city publishes its datasets: live air-quality stations (open data, CC BY 4.0) and car-park occupancy (for public-service use)…",
    );
    for (city, r) in &running {
        let c = &r.connector;
        let desired = city_catalog(dir.path(), city.slug)?;
        // The files name the sensor simulator's root as ${env:SENSORS_URL}: here, the city's own.
        let public_url = c.identity.public_url.clone();
        let resolver = move |name: &str| (name == "SENSORS_URL").then(|| public_url.clone());
        let mut models: BTreeMap<String, usize> = BTreeMap::new();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for entry in desired.in_creation_order() {
            let body = entry
                .resolved(&resolver)
                .map_err(|p| fail("reading the catalog files")(p.to_string()))?;
            let kind = match entry.kind {
                Kind::Policy => DocKind::Policy,
                Kind::Asset => DocKind::Asset,
                Kind::Offer => DocKind::Offer,
            };
            c.catalog.create(kind, body).await.map_err(|e| {
                fail("publishing the catalog files")(format!("{}: {e}", entry.origin()))
            })?;
            *counts.entry(entry.kind.name()).or_default() += 1;
            if entry.kind == Kind::Asset {
                let model = entry.body.get("dataModel").and_then(|m| m.as_str());
                *models
                    .entry(model.unwrap_or_default().to_owned())
                    .or_default() += 1;
            }
        }
        let summary: Vec<String> = models.iter().map(|(k, v)| format!("{v} × {k}")).collect();
        let offers = counts.get("offer").copied().unwrap_or_default();
        println!(
            "  ✓ {:<9} {} datasets ({}) under {offers} offer{} (examples/cities/{}/catalog)",
            city.name,
            counts.get("asset").copied().unwrap_or_default(),
            summary.join(", "),
            if offers == 1 { "" } else { "s" },
            city.slug
        );
    }

    let (home, home_run) = &running[0];
    step(
        5,
        total,
        &format!(
            "{} discovers the others over the Dataspace Protocol (version discovery, then the catalog request, page by page)…",
            home.name
        ),
    );
    for (city, r) in running.iter().skip(1) {
        let address = r.connector.identity.public_url.clone();
        print!("  … {} asks {} for its catalog", home.name, city.name);
        let fetched = home_run
            .connector
            .catalog
            .fetch_catalog(&address)
            .await
            .map_err(|e| fail("fetching a catalog")(e.to_string()))?;
        println!(
            "\r  ✓ {} cached {} datasets from {} ({} page{}, {})",
            home.name,
            fetched.datasets,
            fetched.city,
            fetched.pages,
            if fetched.pages == 1 { "" } else { "s" },
            fetched.participant_id
        );
    }

    step(
        6,
        total,
        &format!(
            "{} (not a member) tries to join in: it asks the authority for credentials, then {} for its catalog…",
            supplier.connector.identity.name, home.name
        ),
    );
    let refused = supplier
        .connector
        .trust
        .request_credentials(
            &authority.connector.identity.public_url,
            &[],
            std::time::Duration::from_secs(20),
        )
        .await
        .map_err(|e| fail("the supplier's request")(e.to_string()))?;
    if refused.status != "REJECTED" {
        return Err(DemoError(format!(
            "the authority did not reject a stranger: {}",
            refused.status
        )));
    }
    println!(
        "  ✓ the authority rejected the request: {}",
        refused.reason.as_deref().unwrap_or("?")
    );
    match supplier
        .connector
        .catalog
        .fetch_catalog(&home_run.connector.identity.public_url)
        .await
    {
        Ok(_) => {
            return Err(DemoError(
                "a participant without a membership credential was served a catalog".into(),
            ));
        }
        Err(e) => println!(
            "  ✓ {} refused it: its credential service holds no MembershipCredential ({e})",
            home.name
        ),
    }

    step(
        7,
        total,
        &format!("{} searches its federated cache across cities…", home.name),
    );
    let queries = [
        (
            "keyword \"air quality\"",
            FederatedQuery {
                q: Some("air quality".into()),
                ..Default::default()
            },
        ),
        (
            "Smart Data Model OffStreetParking",
            FederatedQuery {
                data_model: Some("OffStreetParking".into()),
                ..Default::default()
            },
        ),
        (
            cities[1].name,
            FederatedQuery {
                city: Some(cities[1].name.into()),
                theme: Some("environment".into()),
                ..Default::default()
            },
        ),
    ];
    for (label, q) in &queries {
        let hits = home_run
            .connector
            .catalog
            .search(q)
            .await
            .map_err(|e| DemoError(e.to_string()))?
            .items;
        if hits.is_empty() {
            return Err(DemoError(format!("search for {label} found nothing")));
        }
        println!(
            "  ✓ {label}: {} hit{}",
            hits.len(),
            if hits.len() == 1 { "" } else { "s" }
        );
        for h in hits.iter().take(3) {
            println!(
                "      {:<9} {}",
                h.item.city,
                h.item
                    .dataset
                    .title
                    .as_deref()
                    .unwrap_or(&h.item.dataset.id)
            );
        }
        if hits.len() > 3 {
            println!("      … and {} more", hits.len() - 3);
        }
    }

    let (neighbour, neighbour_run) = &running[1];
    let offer_id = format!("{}-parking-public-service", neighbour.slug);
    step(
        8,
        total,
        &format!(
            "{} negotiates a usage contract for {}'s car-park occupancy (offer {offer_id}: use for a public service)…",
            home.name, neighbour.name
        ),
    );
    negotiate_narrated(home_run, neighbour_run, &offer_id).await?;

    step(
        9,
        total,
        &format!(
            "{} streams live air-quality readings from its sensor simulator to {} (a non-finite pull transfer)…",
            neighbour.name, home.name
        ),
    );
    let stream_agreement = stream_narrated(home_run, neighbour_run, neighbour.slug).await?;

    step(
        10,
        total,
        &format!(
            "Citizen consent (MIM4): {} shares resident parking permits with {} only for citizens who consent…",
            home.name, neighbour.name
        ),
    );
    consent_narrated(neighbour_run, home_run).await?;

    step(
        11,
        total,
        &format!(
            "The federation revokes {}'s membership while it streams from {}…",
            home.name, neighbour.name
        ),
    );
    revocation_narrated(&authority, home_run, neighbour_run, &stream_agreement).await?;
    println!(
        "\nDone. Every DSP request carried a self-issued token and was checked against verifiable credentials;\n\
         the same data model in every city means a service built for one city runs in the next."
    );
    if exit {
        for (_, r) in running {
            r.stop().await;
        }
        supplier.stop().await;
        authority.stop().await;
        idp.stop().await;
        println!("\ncaap demo: all steps passed.");
        return Ok(());
    }
    println!("\nThe federation keeps running. Try (each city's admin token is in its caap.toml):");
    for (city, r) in &running {
        let token = r.connector.config.api.admin_token.expose().to_owned();
        println!(
            "  {:<9} curl -H 'Authorization: Bearer {token}' {}/api/v1/assets",
            city.name,
            r.api_url()
        );
    }
    println!(
        "  search   curl -H 'Authorization: Bearer {}' '{}/api/v1/catalogs/search?q=parking'",
        home_run.connector.config.api.admin_token.expose(),
        home_run.api_url()
    );
    if let Some((url, (name, id))) = home_run.portal.as_ref().zip(DEMO_CITIZENS.last()) {
        println!(
            "  portal   {} (open it in a browser: {}'s citizen portal)\n           demo login: choose {name} ({id}, a synthetic citizen) on the demo e-ID's page;\n           {name} has a request waiting for an answer",
            url.1, home.name
        );
    }
    println!("Press Ctrl-C to stop.");
    crate::server::shutdown_signal().await;
    println!("\nStopping…");
    for (_, r) in running {
        r.stop().await;
    }
    supplier.stop().await;
    authority.stop().await;
    idp.stop().await;
    Ok(())
}

/// Creates and starts one connector of the demo on a free loopback port: DCP (did:web over plain
/// HTTP on loopback, the development setting), trusting `authority` for every credential type, or
/// the authority itself.
async fn start_node(
    base: &std::path::Path,
    slug: &str,
    name: &str,
    authority: Option<&str>,
    is_authority: bool,
    portal: Option<crate::config::PortalConfig>,
) -> Result<Running, DemoError> {
    let dsp_port = free_port()?;
    let public_url = format!("http://127.0.0.1:{dsp_port}");
    let made = init(&InitOptions {
        dir: base.join(slug),
        name: name.to_owned(),
        public_url: Some(public_url),
        dsp_bind: SocketAddr::from(([127, 0, 0, 1], dsp_port)),
        api_bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        force: false,
        tls: false,
        data_dir: None,
    })
    .map_err(|e| DemoError(format!("{name}: {e}")))?;
    let mut config = Config::load(&made.config_path, std::iter::empty())
        .map_err(|e| DemoError(e.to_string()))?;
    config.dsp.auth.mode = crate::config::AuthMode::Dcp;
    config.identity.insecure_did_web_over_http = true;
    config.identity.status_list_cache_secs = 1;
    config.dsp.workers = 1;
    config.api.workers = 1;
    if let Some(did) = authority {
        config.identity.trusted_issuers = vec![crate::config::TrustedIssuerConfig {
            issuer: did.to_owned(),
            types: vec!["*".into()],
        }];
    }
    if is_authority {
        config.authority.enabled = true;
    } else {
        config.simulator.enabled = true;
        config.simulator.interval_ms = 300;
    }
    if let Some(portal) = portal {
        config.portal = portal;
    }
    start(config)
        .await
        .map_err(|e| DemoError(format!("{name}: {e}")))
}

/// The client id of the demo's portal at the demo's identity provider.
const DEMO_PORTAL_CLIENT: &str = "caap-demo-portal";
/// The claim the demo's provider carries the (synthetic) personal identity number in, as Swedish e-ID
/// providers do.
const DEMO_PNR_CLAIM: &str = "https://id.oidc.se/claim/personalIdentityNumber";

/// The demo's identity provider (development only, on loopback) and the `[portal]` that logs in with it.
fn demo_portal() -> Result<(DemoIdp, crate::config::PortalConfig), DemoError> {
    let port = free_port()?;
    let bind = SocketAddr::from(([127, 0, 0, 1], port));
    let idp = DemoIdp::start(DemoIdpParts {
        client_id: DEMO_PORTAL_CLIENT.into(),
        redirect_uri: format!("http://{bind}/callback"),
        subject_claim: DEMO_PNR_CLAIM.into(),
        citizens: DEMO_CITIZENS
            .iter()
            .map(|(name, id)| DemoCitizen {
                name: (*name).to_owned(),
                identifier: (*id).to_owned(),
            })
            .collect(),
        clock: std::sync::Arc::new(crate::clock::SystemClock),
    })
    .map_err(|e| DemoError(e.to_string()))?;
    let portal = crate::config::PortalConfig {
        enabled: true,
        bind,
        oidc: Some(idp.portal_oidc()),
        ..Default::default()
    };
    Ok((idp, portal))
}

/// The consumer streams again under `agreement`; the authority revokes the consumer's credentials;
/// the provider's monitor notices at its next status-list refresh and terminates the transfer, and
/// the consumer's next request is refused.
async fn revocation_narrated(
    authority: &Running,
    consumer: &Running,
    provider: &Running,
    agreement: &str,
) -> Result<(), DemoError> {
    use futures_util::StreamExt;
    let c = &consumer.connector;
    let p = &provider.connector;
    let t = c
        .transfers()
        .start_transfer(serde_json::json!({"agreementId": agreement}))
        .await
        .map_err(|e| fail("starting the transfer")(e.to_string()))?;
    let provider_pid = wait_until(|| async {
        let v = c.transfers().transfer_view(&t.id).await.ok()?;
        (v.state == Some("STARTED")).then(|| v.provider_pid.unwrap_or_default())
    })
    .await?;
    let opened = c
        .data_plane()
        .transfer_data(&t.id, None, None)
        .await
        .map_err(|e| fail("opening the stream")(e.to_string()))?;
    let mut stream = opened.stream;
    let mut chunks = 0u64;
    let started = std::time::Instant::now();
    let mut revoked_at = None;
    loop {
        if revoked_at.is_none() && started.elapsed() > std::time::Duration::from_secs(2) {
            let n = authority
                .connector
                .authority
                .revoke(&c.identity.participant_id, "membership ended (demo)")
                .await
                .map_err(|e| fail("revoking")(e.to_string()))?;
            println!(
                "  ✓ {} revoked {n} credential(s) of {}: their bits are set in its status list",
                authority.connector.identity.name, c.identity.name
            );
            revoked_at = Some(std::time::Instant::now());
        }
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next()).await;
        let Ok(Some(Ok(_))) = next else { break };
        chunks += 1;
    }
    let ended = wait_until(|| async {
        let v = p.transfers().transfer_view(&provider_pid).await.ok()?;
        (v.state == Some("TERMINATED")).then_some(v)
    })
    .await?;
    let reason = ended
        .body
        .history
        .iter()
        .rev()
        .find(|h| h.what.contains("revoked"))
        .map(|h| h.what.clone())
        .unwrap_or_default();
    println!(
        "  ✓ {}'s monitor terminated the running stream {:.1} s after the revocation ({chunks} chunks had arrived): {reason}",
        p.identity.name,
        revoked_at.map_or(0.0, |t| t.elapsed().as_secs_f64())
    );
    match c.catalog.fetch_catalog(&p.identity.public_url).await {
        Ok(_) => Err(DemoError(
            "a revoked member was still served a catalog".into(),
        )),
        Err(e) => {
            println!("  ✓ {}'s next request is refused: {e}", c.identity.name);
            Ok(())
        }
    }
}

/// Runs one negotiation between two running cities and narrates each transition as it happens; then checks
/// both transaction ledgers.
async fn negotiate_narrated(
    consumer: &Running,
    provider: &Running,
    offer_id: &str,
) -> Result<(), DemoError> {
    let c = &consumer.connector;
    let started = std::time::Instant::now();
    let n = c
        .negotiations()
        .start_negotiation(
            &c.catalog,
            serde_json::json!({
                "counterPartyAddress": provider.connector.identity.public_url,
                "offerId": offer_id,
            }),
        )
        .await
        .map_err(|e| fail("starting the negotiation")(e.to_string()))?;
    println!(
        "  … {} sends a contract request to {}",
        c.identity.name, provider.connector.identity.name
    );
    let mut shown = 0;
    let done = loop {
        let now = c
            .negotiations()
            .negotiation_view(&n.id)
            .await
            .map_err(|e| fail("following the negotiation")(e.to_string()))?;
        for h in now.body.history.iter().skip(shown) {
            println!(
                "  ✓ {:>5.1} ms  {:<8} {}",
                started.elapsed().as_secs_f64() * 1000.0,
                format!("{:?}", h.by).to_lowercase(),
                h.what
            );
        }
        shown = now.body.history.len();
        if matches!(now.state, Some("FINALIZED" | "TERMINATED")) {
            break now;
        }
        if started.elapsed() > std::time::Duration::from_secs(20) {
            return Err(DemoError(format!(
                "the negotiation did not finish within 20 s (state {:?}, last error {:?})",
                now.state, now.last_error
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    };
    if done.state != Some("FINALIZED") {
        return Err(DemoError(format!(
            "the negotiation ended {:?}: {:?}",
            done.state, done.body.termination
        )));
    }
    println!(
        "  ✓ agreement {} signed by {} and verified by {}",
        done.agreement_id.as_deref().unwrap_or("?"),
        provider.connector.identity.name,
        c.identity.name
    );
    for r in [consumer, provider] {
        // The running connector checkpoints its head within moments; here, at once, so the check covers
        // every entry so far.
        r.connector
            .store
            .seal_ledger_head()
            .await
            .map_err(|e| fail("checkpointing a ledger")(e.to_string()))?;
        let checks = crate::ledger::HeadChecks {
            keys: vec![
                r.connector
                    .identity
                    .key
                    .public_jwk()
                    .map_err(|e| fail("verifying a ledger")(e.to_string()))?,
            ],
            file: Some(
                r.connector
                    .config
                    .data_dir
                    .join(crate::store::ledger_head::HEAD_FILE),
            ),
        };
        let summary = crate::ledger::verify(&r.connector.store, &checks)
            .await
            .map_err(|e| fail("verifying a ledger")(e.to_string()))?
            .summary;
        println!(
            "  ✓ {}'s transaction ledger (MIM3): {} entries, hash chain intact, {} agreement signature(s) verified",
            r.connector.identity.name, summary.entries, summary.agreements_verified
        );
    }
    Ok(())
}

/// One city publishes a live stream, the other negotiates and reads it with a live counter; then the provider
/// suspends it (the flow stops at once) and the consumer terminates it.
async fn stream_narrated(
    consumer: &Running,
    provider: &Running,
    slug: &str,
) -> Result<String, DemoError> {
    use futures_util::StreamExt;
    use std::io::Write;
    let p = &provider.connector;
    let c = &consumer.connector;
    let id = format!("{slug}-air-quality-live");
    let mut asset = serde_json::json!({
        "id": id,
        "title": format!("Live air quality, {} (simulated sensor stream)", p.identity.name),
        "description": "Server-sent events, one reading every 300 ms, from the connector's sensor simulator.",
        "keywords": ["air quality", "live"],
        "dataModel": "AirQualityObserved",
        "dataAddress": {"type": "LiveStream", "source": "Sse",
            "url": format!("{}/sim/{slug}/air-quality/live/stream", p.identity.public_url)},
    });
    if let Some(m) = asset.as_object_mut() {
        m.retain(|_, v| !v.is_null());
    }
    p.catalog
        .create(DocKind::Asset, asset)
        .await
        .map_err(|e| fail("publishing the live stream")(e.to_string()))?;
    p.catalog
        .create(
            DocKind::Offer,
            serde_json::json!({"id": id, "assets": [id], "accessPolicy": samples::OPEN_POLICY_ID,
            "contractPolicy": samples::OPEN_POLICY_ID}),
        )
        .await
        .map_err(|e| fail("offering the live stream")(e.to_string()))?;
    let agreement = agree(consumer, provider, &id, "the stream").await?;
    println!("  ✓ agreement {agreement} (open data, CC BY 4.0: attribute the source)");
    let t = c
        .transfers()
        .start_transfer(serde_json::json!({"agreementId": agreement}))
        .await
        .map_err(|e| fail("starting the transfer")(e.to_string()))?;
    let provider_pid = wait_until(|| async {
        let v = c.transfers().transfer_view(&t.id).await.ok()?;
        (v.state == Some("STARTED")).then(|| v.provider_pid.unwrap_or_default())
    })
    .await?;
    println!(
        "  ✓ transfer {} STARTED: {} hands out a pull address with a 10-minute token",
        t.id, p.identity.name
    );
    let opened = c
        .data_plane()
        .transfer_data(&t.id, None, None)
        .await
        .map_err(|e| fail("opening the stream")(e.to_string()))?;
    let mut stream = opened.stream;
    let mut buf = String::new();
    let mut count = 0u64;
    let started = std::time::Instant::now();
    let mut suspended_at = None;
    loop {
        if suspended_at.is_none() && started.elapsed() > std::time::Duration::from_secs(3) {
            p.transfers()
                .transfer_step(
                    &provider_pid,
                    "suspend",
                    Some(serde_json::json!({"reason": "sensor maintenance"})),
                )
                .await
                .map_err(|e| fail("suspending")(e.to_string()))?;
            suspended_at = Some(count);
        }
        let next = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next()).await;
        let Ok(Some(Ok(chunk))) = next else { break };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let Some(data) = event.lines().find_map(|l| l.strip_prefix("data:")) else {
                continue;
            };
            count += 1;
            let v: serde_json::Value = serde_json::from_str(data.trim()).unwrap_or_default();
            let no2 = v["no2"]["value"].as_f64().unwrap_or(f64::NAN);
            print!(
                "\r  ⟳ readings received by {}: {count:>3}   latest NO₂ {no2:>5.1} µg/m³   ",
                c.identity.name
            );
            let _ = std::io::stdout().flush();
        }
    }
    println!();
    if count == 0 {
        return Err(DemoError("no reading arrived".into()));
    }
    println!(
        "  ✓ {} suspended the transfer (\"sensor maintenance\"): the flow stopped at once, after {count} readings",
        p.identity.name
    );
    c.transfers()
        .transfer_step(
            &t.id,
            "terminate",
            Some(serde_json::json!({"reason": "demo over"})),
        )
        .await
        .map_err(|e| fail("terminating")(e.to_string()))?;
    wait_until(|| async {
        let v = p.transfers().transfer_view(&provider_pid).await.ok()?;
        (v.state == Some("TERMINATED")).then_some(())
    })
    .await?;
    println!(
        "  ✓ {} terminated it; the token is dead, both ledgers hold every step",
        c.identity.name
    );
    Ok(agreement)
}

/// `consumer` negotiates `offer` with `provider` and waits for the agreement; answers its id.
async fn agree(
    consumer: &Running,
    provider: &Running,
    offer: &str,
    what: &str,
) -> Result<String, DemoError> {
    let c = &consumer.connector;
    let n = c
        .negotiations()
        .start_negotiation(
            &c.catalog,
            serde_json::json!({
            "counterPartyAddress": provider.connector.identity.public_url, "offerId": offer}),
        )
        .await
        .map_err(|e| DemoError(format!("negotiating {what}: {e}")))?;
    wait_until(|| async {
        let v = c.negotiations().negotiation_view(&n.id).await.ok()?;
        match v.state {
            Some("FINALIZED") => Some(Ok(v.agreement_id.unwrap_or_default())),
            Some("TERMINATED") => Some(Err(format!("{:?}", v.body.termination))),
            _ => None,
        }
    })
    .await?
    .map_err(|e| DemoError(format!("the negotiation of {what} was terminated: {e}")))
}

/// Polls `f` every few milliseconds until it yields, for at most 20 seconds.
async fn wait_until<T, F, Fut>(mut f: F) -> Result<T, DemoError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = std::time::Instant::now();
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if started.elapsed() > std::time::Duration::from_secs(20) {
            return Err(DemoError("a step did not finish within 20 s".into()));
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Synthetic citizens of the consent walk-through (not real identity numbers).
const DEMO_CITIZENS: [(&str, &str); 3] = [
    ("Alva", "19990101-0001"),
    ("Bruno", "19990101-0002"),
    ("Cleo", "19990101-0003"),
];

/// Citizen consent (MIM4): `provider` publishes synthetic resident parking permits (personal data, on the
/// basis of consent); `consumer` negotiates them for a stated purpose; the citizens' consents decide which
/// records flow; one withdraws, the next access drops their records, and the notice reaches the consumer,
/// which deletes what it received, acknowledges and confirms.
async fn consent_narrated(consumer: &Running, provider: &Running) -> Result<(), DemoError> {
    use caap_policy::consent::DataAgreementTerms;
    let p = &provider.connector;
    let c = &consumer.connector;
    let purpose = "dpv:ServiceProvision";
    let recipient = c.identity.participant_id.clone();
    let declaration = serde_json::json!({"subjectField": "refCitizen",
        "categories": ["pd:VehicleLicence", "pd:Location"], "purposes": [purpose], "retention": "P6M",
        "jurisdiction": "loc:SE", "storageLocations": ["loc:SE"]});
    let mut permits = String::new();
    for (i, (_, who)) in DEMO_CITIZENS.iter().enumerate() {
        for zone in ["A", "C"] {
            permits.push_str(
                &serde_json::json!({"id": format!("permit-{i}{zone}"), "type": "ParkingPermit",
                    "zone": zone, "refCitizen": who})
                .to_string(),
            );
            permits.push('\n');
        }
    }
    let files = p.config.data_dir.join("files");
    std::fs::create_dir_all(&files)
        .and_then(|()| std::fs::write(files.join("resident-permits.ndjson"), permits))
        .map_err(|e| fail("writing the synthetic permits")(e.to_string()))?;
    let decl: caap_catalog::asset::PersonalData = serde_json::from_value(declaration.clone())
        .map_err(|e| fail("the permit declaration")(e.to_string()))?;
    let terms = DataAgreementTerms::new(&decl, purpose, &recipient)
        .map_err(|e| fail("the data agreement terms")(format!("{e:?}")))?;
    let base = caap_policy::parse_policy(
        &serde_json::json!({"@type": "Set", "permission": [{"action": "use"}]}),
    )
    .map_err(|e| fail("the permit policy")(e.to_string()))?;
    let policy = terms.apply(&base).to_compact_json();
    let publish = [
        (
            DocKind::Policy,
            serde_json::json!({"id": "permits-for-service", "policy": policy}),
        ),
        (
            DocKind::Asset,
            serde_json::json!({"id": "resident-parking-permits",
            "title": format!("Resident parking permits, {} (synthetic citizens)", p.identity.name),
            "description": "Which zone each resident may park in. Personal data: shared only with the citizen's consent.",
            "dataAddress": {"type": "File", "path": "resident-permits.ndjson", "mediaType": "application/x-ndjson"},
            "personalData": declaration}),
        ),
        (
            DocKind::Offer,
            serde_json::json!({"id": "resident-parking-permits", "assets": ["resident-parking-permits"],
            "accessPolicy": samples::OPEN_POLICY_ID, "contractPolicy": "permits-for-service"}),
        ),
    ];
    for (kind, doc) in publish {
        p.catalog
            .create(kind, doc)
            .await
            .map_err(|e| fail("publishing the permits")(e.to_string()))?;
    }
    println!(
        "  ✓ {} publishes resident parking permits (personal data: lawful basis consent, purpose {purpose}, retention 6 months)",
        p.identity.name
    );
    let agreement = agree(
        consumer,
        provider,
        "resident-parking-permits",
        "the permits",
    )
    .await?;
    println!(
        "  ✓ agreement {agreement}: {} may use the permits for {purpose}, must delete them after 6 months or on withdrawal",
        c.identity.name
    );
    let consents = &p.consents;
    // The agreement asked every citizen the dataset holds; asking again answers the same record.
    for (_, who) in DEMO_CITIZENS {
        consents
            .request(
                consents.pseudonym(who),
                "resident-parking-permits",
                purpose,
                &recipient,
            )
            .await
            .map_err(|e| fail("asking for consent")(e.to_string()))?;
    }
    println!(
        "  ✓ {} asks {} citizens for consent (pending requests in the citizen portal)",
        p.identity.name,
        DEMO_CITIZENS.len()
    );
    // What the citizens do, they do in the portal: log in at the e-ID provider, read, grant.
    let portal = provider
        .portal
        .as_ref()
        .map(|(_, url)| url.clone())
        .ok_or_else(|| DemoError(format!("{} runs no citizen portal", p.identity.name)))?;
    let [(alva, _), (bruno, _), (cleo, _)] = DEMO_CITIZENS;
    let visit = citizen::Visit::new(&portal, "en")?;
    let provider_page = visit.login(alva).await?;
    println!(
        "  ✓ {alva} opens the citizen portal {portal} and logs in at the e-ID provider (\"{}\"):",
        provider_page.title()
    );
    let overview = visit.page("/").await?;
    seen(&overview, overview.lines().get(1).map(String::as_str));
    let requests = visit.page("/requests").await?;
    let asked = requests.lines();
    seen(
        &requests,
        Some(&format!(
            "{} (purpose: {})",
            asked.get(2).map_or("", String::as_str),
            requests.after("Purpose").unwrap_or_default()
        )),
    );
    let grant = first_link(&requests, "/grant")?;
    let granted = visit.decide(&grant).await?;
    println!(
        "  ✓ {alva} grants consent in the portal (one action, one confirmation; a signed receipt is issued):"
    );
    seen(&granted, granted.flash().as_deref());
    let other = citizen::Visit::new(&portal, "en")?;
    other.login(bruno).await?;
    let grant = first_link(&other.page("/requests").await?, "/grant")?;
    other.decide(&grant).await?;
    println!("  ✓ {bruno} grants consent too; {cleo} has not answered");
    let agreement_id = agreement.as_str();
    let pull = |label: &'static str| async move {
        let t = c
            .transfers()
            .start_transfer(serde_json::json!({"agreementId": agreement_id}))
            .await
            .map_err(|e| fail("starting a pull")(e.to_string()))?;
        wait_until(|| async {
            let v = c.transfers().transfer_view(&t.id).await.ok()?;
            (v.state == Some("STARTED")).then_some(())
        })
        .await?;
        let opened = c
            .data_plane()
            .transfer_data(&t.id, None, None)
            .await
            .map_err(|e| fail(label)(e.to_string()))?;
        let bytes = read_all(opened.stream).await?;
        Ok::<_, DemoError>(String::from_utf8_lossy(&bytes).lines().count())
    };
    let n = pull("pulling the permits").await?;
    println!(
        "  ✓ {} pulls: {n} records arrive, only those of the 2 citizens who consented",
        c.identity.name
    );
    let t = c
        .transfers()
        .start_transfer(serde_json::json!({"agreementId": agreement, "format": "HttpData-PUSH"}))
        .await
        .map_err(|e| fail("starting a push")(e.to_string()))?;
    wait_until(|| async {
        let v = c.transfers().transfer_view(&t.id).await.ok()?;
        (v.state == Some("COMPLETED")).then_some(())
    })
    .await?;
    println!(
        "  ✓ {} pushes the same into {}'s storage",
        p.identity.name, c.identity.name
    );
    // The transfer log records the deliveries when a flow ends.
    let (name, who) = DEMO_CITIZENS[0];
    let subject = consents.pseudonym(who);
    wait_until(|| async {
        let d = consents.deliveries(&subject).await.ok()?;
        (d.iter().map(|d| d.records).sum::<u64>() >= 4).then_some(())
    })
    .await?;
    let received = visit.page("/recipients").await?;
    println!("  ✓ {name} looks up who received her data:");
    for row in received
        .lines()
        .iter()
        .filter(|l| l.contains(" · "))
        .skip(1)
    {
        seen(&received, Some(row));
    }
    let withdraw = first_link(&visit.page("/consents").await?, "/withdraw")?;
    let withdrawn = visit.decide(&withdraw).await?;
    println!("  ✓ {name} withdraws consent in the portal, as easily as she gave it:");
    seen(&withdrawn, withdrawn.flash().as_deref());
    let n = pull("pulling after the withdrawal").await?;
    println!("  ✓ the next pull carries {n} records: {name}'s are dropped at once");
    let notice = wait_until(|| async {
        let all = consents.sent_notices().await.ok()?;
        all.into_iter().find(|n| n.state == "DELETED")
    })
    .await?;
    println!(
        "  ✓ withdrawal notice to {}: acknowledged (signed), records deleted, deletion confirmed (signed)",
        c.identity.name
    );
    let received = c
        .consents
        .received_notices()
        .await
        .map_err(|e| fail("reading received notices")(e.to_string()))?;
    if let Some(r) = received.iter().find(|r| r.id == notice.id) {
        println!(
            "  ✓ {} shows the notice {}: {} record(s) of {name} deleted from its storage",
            c.identity.name, r.state, r.records_deleted
        );
    }
    let notices = visit.page("/notices").await?;
    let lines = notices.lines();
    seen(
        &notices,
        Some(&format!(
            "{}: {} (acknowledged {})",
            lines.get(2).map_or("", String::as_str),
            notices.after("Status").unwrap_or_default(),
            notices.after("Acknowledged").unwrap_or_default()
        )),
    );
    let report = consents
        .verify()
        .await
        .map_err(|e| fail("verifying consent records")(e.to_string()))?;
    if !report.faults.is_empty() {
        return Err(DemoError(format!(
            "consent records do not verify: {:?}",
            report.faults
        )));
    }
    println!(
        "  ✓ {} consent record(s), {} event(s): every hash chain and signature verifies",
        report.records, report.events
    );
    Ok(())
}

/// Prints a line the citizen reads on a portal page, with the page's title.
fn seen(page: &citizen::Page, line: Option<&str>) {
    if let Some(line) = line.filter(|l| !l.is_empty()) {
        println!("      portal › {}: {line}", page.title());
    }
}

/// The first link on `page` to a decision ending in `suffix` (`/grant`, `/withdraw`).
fn first_link(page: &citizen::Page, suffix: &str) -> Result<String, DemoError> {
    page.links("/decide/")
        .into_iter()
        .find(|l| l.ends_with(suffix))
        .ok_or_else(|| {
            DemoError(format!(
                "the portal's {} page offers no {suffix}",
                page.title()
            ))
        })
}

async fn read_all(
    mut stream: futures_util::stream::BoxStream<
        'static,
        Result<actix_web::web::Bytes, std::io::Error>,
    >,
) -> Result<Vec<u8>, DemoError> {
    use futures_util::StreamExt;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend(chunk.map_err(|e| fail("reading data")(e.to_string()))?);
    }
    Ok(out)
}
