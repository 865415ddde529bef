//! The crawler: keeps the federated catalog fresh. The processor's loop calls [`Crawler::tick`] once a
//! second; it reads the federation's member directory (`[federation] directory`, ADR 0008) every
//! `directory_interval_secs` to learn whom to crawl (new members are added, members that left are removed
//! with their datasets), and claims due sources under a lease (so replicas share the work and never crawl
//! one source twice at a time), at most `[federation] concurrency` at once. Each crawl streams the source's
//! catalog page by page into the store and swaps it in at the end ([`crate::catalog::federation`]); a
//! failure keeps the last good datasets (marked stale), records the error and backs off.

use std::sync::Arc;
use std::time::{Duration, Instant};

use caap_identity::vc::{VerifyOptions, verify_credential};
use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::authority::MEMBER_DIRECTORY;
use crate::catalog::SourceOrigin;
use crate::error::ServiceError;
use crate::service::Connector;
use crate::store::federation::NewSource;

/// One member as the directory lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryMember {
    /// Its DID.
    pub id: String,
    /// Its display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Its roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Its connector's DSP address (none: a member without a connector).
    #[serde(default)]
    pub dsp_address: Option<String>,
}

/// The crawler's state in one processor.
#[derive(Debug)]
pub struct Crawler {
    owner: String,
    permits: Arc<Semaphore>,
    tasks: JoinSet<()>,
    directory_read: Option<Instant>,
}

impl Crawler {
    /// The crawler of the processor `owner`.
    pub fn new(c: &Connector, owner: &str) -> Self {
        Crawler {
            owner: owner.to_owned(),
            permits: Arc::new(Semaphore::new(c.config.federation.concurrency.max(1))),
            tasks: JoinSet::new(),
            directory_read: None,
        }
    }

    /// Reads the directory when it is due, and starts the crawls that are due for the free permits.
    pub async fn tick(&mut self, c: &Connector) {
        let config = &c.config.federation;
        if !config.crawl {
            return;
        }
        while self.tasks.try_join_next().is_some() {}
        if config.directory.is_some()
            && self
                .directory_read
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(config.directory_interval_secs))
        {
            self.directory_read = Some(Instant::now());
            let c = c.clone();
            self.tasks.spawn(async move {
                if let Err(e) = sync_directory(&c).await {
                    tracing::warn!(error = %e, "reading the member directory failed; the sources stay as they were");
                }
            });
        }
        let free = self.permits.available_permits() as u64;
        if free == 0 {
            return;
        }
        let lease = c.clock.now()
            + chrono::Duration::seconds(i64::try_from(config.lease_secs).unwrap_or(900));
        let claimed = match c.store.claim_crawls(&self.owner, lease, free).await {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(error = %e, "claiming crawls failed");
                return;
            }
        };
        for source in claimed {
            let Ok(permit) = self.permits.clone().acquire_owned().await else {
                break;
            };
            let c = c.clone();
            self.tasks.spawn(async move {
                let address = source.counter_party_address;
                match c.catalog.crawl_source(&address).await {
                    Ok(f) => {
                        tracing::debug!(source = %address, datasets = f.datasets, "crawled");
                    }
                    Err(e) => {
                        tracing::warn!(source = %address, error = %e, "crawl failed; the last good catalog stays, marked stale");
                    }
                }
                drop(permit);
            });
        }
    }

    /// Stops the crawls in flight (what they staged is never made live; their leases expire).
    pub fn stop(&mut self) {
        self.tasks.abort_all();
    }
}

/// Reads the member directory, checks the anchor's signature, and makes the directory's sources those
/// of its members with a DSP address (other than this connector).
pub async fn sync_directory(c: &Connector) -> Result<(usize, Vec<String>), ServiceError> {
    let read = read_directory(c).await;
    if let Some(url) = &c.config.federation.directory {
        let outcome = match &read {
            Ok(members) => Ok(members.len()),
            Err(e) => Err(e.to_string()),
        };
        c.store
            .record_directory_read(url, outcome.as_ref().map(|n| *n).map_err(String::as_str))
            .await?;
    }
    let members = read?;
    let ours = c.identity.participant_id.as_str();
    // A member already fetched by hand (under the DSP base its discovery found, which may not be the
    // address the directory lists) stays that one source.
    let by_hand: std::collections::HashMap<String, String> = c
        .store
        .catalog_sources()
        .await?
        .into_iter()
        .filter(|s| s.origin == SourceOrigin::Manual && !s.participant_id.is_empty())
        .map(|s| (s.participant_id.to_lowercase(), s.counter_party_address))
        .collect();
    let mut addresses = Vec::new();
    let due = c.clock.now();
    for m in members.iter().filter(|m| m.id != ours) {
        let Some(address) = m.dsp_address.as_deref().map(|a| a.trim_end_matches('/')) else {
            continue;
        };
        if by_hand
            .get(&m.id.to_lowercase())
            .is_some_and(|a| a != address)
        {
            continue;
        }
        c.store
            .put_source(
                &NewSource {
                    address: address.to_owned(),
                    participant_id: m.id.clone(),
                    city: m.name.clone().unwrap_or_else(|| m.id.clone()),
                },
                SourceOrigin::Directory,
                due,
            )
            .await?;
        addresses.push(address.to_owned());
    }
    let departed = c.store.remove_departed(&addresses).await?;
    for a in &departed {
        tracing::info!(source = %a, "a member left the federation; its datasets are removed");
    }
    Ok((addresses.len(), departed))
}

/// The members listed by the directory, after checking that the configured anchor signed it and that it
/// is valid now.
async fn read_directory(c: &Connector) -> Result<Vec<DirectoryMember>, ServiceError> {
    let config = &c.config.federation;
    let (Some(url), Some(anchor)) = (&config.directory, &config.anchor) else {
        return Ok(Vec::new());
    };
    let upstream = |what: String| ServiceError::Upstream(format!("member directory {url}: {what}"));
    let res = c
        .http
        .get(url)
        .send()
        .await
        .map_err(|e| upstream(crate::outbound::describe_reqwest(&e)))?;
    if !res.status().is_success() {
        return Err(upstream(format!("answered {}", res.status())));
    }
    let jwt = res.text().await.map_err(|e| upstream(e.to_string()))?;
    let credential = verify_credential(
        jwt.trim(),
        c.trust.resolver.as_ref(),
        &VerifyOptions::at(c.clock.now()),
    )
    .await
    .map_err(|e| upstream(format!("not a valid signed directory: {e}")))?;
    if credential.issuer != *anchor {
        return Err(upstream(format!(
            "signed by {}, not by the anchor {anchor}",
            credential.issuer
        )));
    }
    if !credential.types.iter().any(|t| t == MEMBER_DIRECTORY) {
        return Err(upstream(format!("not a {MEMBER_DIRECTORY}")));
    }
    let members = credential
        .subject
        .get("members")
        .cloned()
        .unwrap_or_default();
    serde_json::from_value(members).map_err(|e| upstream(format!("its member list: {e}")))
}
