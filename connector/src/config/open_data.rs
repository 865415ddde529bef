//! `[open_data]`: public datasets (downloads without credentials) and the DCAT-AP feed for open-data portals.

use serde::{Deserialize, Serialize};

/// Open data: the per-client rate limit of public downloads and what the DCAT-AP feed says about the
/// publisher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenDataConfig {
    /// Public downloads and feed pages one client address may start per minute (a token bucket that
    /// refills at this rate).
    #[serde(default = "default_per_minute")]
    pub requests_per_minute: u32,
    /// How many requests one client may make at once before the per-minute rate applies.
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// The feed's contact point (`dcat:contactPoint`, `vcard:hasEmail`), e.g. `opendata@malmo.se`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_email: Option<String>,
    /// The publisher's home page (`foaf:homepage`), e.g. `https://malmo.se`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    /// Datasets per page of the DCAT-AP feed (Hydra paging), 1 to 1000.
    #[serde(default = "default_feed_page")]
    pub feed_page_size: u32,
}

fn default_per_minute() -> u32 {
    60
}
fn default_burst() -> u32 {
    30
}
fn default_feed_page() -> u32 {
    100
}

impl Default for OpenDataConfig {
    fn default() -> Self {
        OpenDataConfig {
            requests_per_minute: default_per_minute(),
            burst: default_burst(),
            contact_email: None,
            homepage: None,
            feed_page_size: default_feed_page(),
        }
    }
}

impl OpenDataConfig {
    /// The key and the problem of the first bad value.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if self.requests_per_minute == 0 {
            return Some(("open_data.requests_per_minute", "must be at least 1".into()));
        }
        if self.burst == 0 {
            return Some(("open_data.burst", "must be at least 1".into()));
        }
        if !(1..=1000).contains(&self.feed_page_size) {
            return Some((
                "open_data.feed_page_size",
                "must be between 1 and 1000".into(),
            ));
        }
        if let Some(email) = &self.contact_email
            && (!email.contains('@')
                || email
                    .chars()
                    .any(|c| c.is_whitespace() || c == '<' || c == '>'))
        {
            return Some((
                "open_data.contact_email",
                format!("`{email}` is not an email address"),
            ));
        }
        if let Some(url) = &self.homepage {
            let mut errors = Vec::new();
            caap_catalog::asset::check_http_url("", url, &mut errors);
            if let Some(e) = errors.first() {
                return Some(("open_data.homepage", e.message.clone()));
            }
        }
        None
    }
}
