//! `[federation]`: where the federation's member directory is and how the crawler keeps the federated
//! catalog fresh.

use serde::{Deserialize, Serialize};

/// The member directory and the crawler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationConfig {
    /// The trust anchor's member directory, e.g. `https://anchor.example/issuer/directory` (a credential
    /// signed by the anchor, ADR 0008). Without it only sources added by hand are crawled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    /// The DID that must have signed the directory (the trust anchor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<String>,
    /// Crawl the sources (those of the directory and those added by hand) on schedule.
    #[serde(default = "default_true")]
    pub crawl: bool,
    /// A source's catalog is fetched again this long after its last success.
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    /// Up to this much is added at random to each wait, so sources do not all come due at once.
    #[serde(default = "default_jitter")]
    pub jitter_secs: u64,
    /// Catalogs fetched at the same time (per replica).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// After a failure the source is tried again after this long, doubling with each further failure.
    #[serde(default = "default_retry_base")]
    pub retry_base_secs: u64,
    /// No retry waits longer than this.
    #[serde(default = "default_retry_max")]
    pub retry_max_secs: u64,
    /// The directory is read again this often.
    #[serde(default = "default_directory_interval")]
    pub directory_interval_secs: u64,
    /// How long a replica holds a claimed crawl before another may take it over.
    #[serde(default = "default_lease")]
    pub lease_secs: u64,
}

fn default_true() -> bool {
    true
}
fn default_interval() -> u64 {
    900
}
fn default_jitter() -> u64 {
    60
}
fn default_concurrency() -> usize {
    4
}
fn default_retry_base() -> u64 {
    30
}
fn default_retry_max() -> u64 {
    3600
}
fn default_directory_interval() -> u64 {
    300
}
fn default_lease() -> u64 {
    900
}

impl Default for FederationConfig {
    fn default() -> Self {
        FederationConfig {
            directory: None,
            anchor: None,
            crawl: true,
            interval_secs: default_interval(),
            jitter_secs: default_jitter(),
            concurrency: default_concurrency(),
            retry_base_secs: default_retry_base(),
            retry_max_secs: default_retry_max(),
            directory_interval_secs: default_directory_interval(),
            lease_secs: default_lease(),
        }
    }
}

impl FederationConfig {
    /// Nothing set (left out of a written config).
    pub fn is_default(&self) -> bool {
        *self == FederationConfig::default()
    }

    /// A random part of the jitter.
    fn jitter(&self) -> chrono::Duration {
        let ms = self.jitter_secs.saturating_mul(1000);
        chrono::Duration::milliseconds(i64::try_from(rand::random_range(0..=ms)).unwrap_or(0))
    }

    /// The wait before the next crawl after a success.
    pub fn interval(&self) -> chrono::Duration {
        chrono::Duration::seconds(i64::try_from(self.interval_secs).unwrap_or(i64::MAX / 2000))
            + self.jitter()
    }

    /// The wait before the next crawl after `failures` earlier failures in a row (and this one).
    pub fn backoff(&self, failures: i64) -> chrono::Duration {
        let exp = u32::try_from(failures.clamp(0, 20)).unwrap_or(20);
        let secs = self
            .retry_base_secs
            .saturating_mul(1u64 << exp)
            .min(self.retry_max_secs);
        chrono::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 2000)) + self.jitter()
    }

    /// What the configuration gets wrong, if anything.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.directory.is_some() && self.anchor.is_none() {
            out.push(
                "federation.directory needs federation.anchor, the DID that signs the directory"
                    .into(),
            );
        }
        if self.concurrency == 0 {
            out.push("federation.concurrency must be at least 1".into());
        }
        out
    }
}
