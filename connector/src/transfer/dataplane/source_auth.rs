//! OAuth2 client credentials towards protected data sources (the `oauth2` crate), with a token cache: a
//! token is fetched once and reused until shortly before it expires, or until the source refuses it.

use caap_identity::Secret;
use chrono::Duration;
use oauth2::basic::BasicClient;
use oauth2::{AuthUrl, ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};

use super::{AccessError, SourceError};
use crate::clock::Clock;
use crate::config::SourceCredential;

pub use crate::flows::SourceTokens;

/// Tokens for protected sources: the cache, the configured credentials, the clock and the client for the
/// authorization servers.
#[derive(Clone, Copy)]
pub struct SourceAuth<'a> {
    /// The token cache.
    pub tokens: &'a SourceTokens,
    /// `[[source_credentials]]`.
    pub credentials: &'a [SourceCredential],
    /// The clock.
    pub clock: &'a dyn Clock,
    /// The client for token requests.
    pub http: &'a reqwest::Client,
    /// The data directory (`{ file = … }` client secrets are relative to it).
    pub data_dir: &'a std::path::Path,
}

impl std::fmt::Debug for SourceAuth<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceAuth").finish_non_exhaustive()
    }
}

impl SourceAuth<'_> {
    /// The `Authorization` value for a source protected by the credentials named `name`.
    pub async fn authorization(&self, name: &str) -> Result<String, AccessError> {
        let now = self.clock.now();
        if let Some(t) = self.tokens.cached(name, now) {
            return Ok(format!("Bearer {}", t.expose()));
        }
        let cred = self
            .credentials
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| {
                AccessError::Internal(format!(
                    "the dataset names source credentials `{name}`, which the configuration does not have"
                ))
            })?;
        let (token, expires_in) = self.fetch_token(cred).await?;
        // Renew a little before the authorization server says it expires.
        let until = now + expires_in - Duration::seconds(30).min(expires_in / 10);
        self.tokens.store(name, Secret::new(token.clone()), until);
        Ok(format!("Bearer {token}"))
    }

    async fn fetch_token(
        &self,
        cred: &SourceCredential,
    ) -> Result<(String, Duration), AccessError> {
        let bad = |what: &'static str, cause: String| {
            AccessError::Source(SourceError::Credentials {
                name: cred.name.clone(),
                what,
                cause,
            })
        };
        let token_url =
            TokenUrl::new(cred.token_url.clone()).map_err(|e| bad("token_url", e.to_string()))?;
        // The client-credentials grant needs no authorization endpoint; the crate's type wants one.
        let auth_url =
            AuthUrl::new(cred.token_url.clone()).map_err(|e| bad("token_url", e.to_string()))?;
        let secret = cred
            .client_secret
            .resolve(self.data_dir)
            .map_err(|e| bad("client_secret", e))?;
        let client = BasicClient::new(ClientId::new(cred.client_id.clone()))
            .set_client_secret(ClientSecret::new(secret.expose().to_owned()))
            .set_auth_uri(auth_url)
            .set_token_uri(token_url);
        let http = self.http.clone();
        let send = move |req: oauth2::HttpRequest| crate::outbound::oauth2_send(http.clone(), req);
        let mut request = client.exchange_client_credentials();
        for s in &cred.scopes {
            request = request.add_scope(Scope::new(s.clone()));
        }
        let response = request
            .request_async(&send)
            .await
            .map_err(|e| bad("the token request failed", e.to_string()))?;
        let expires_in = response
            .expires_in()
            .and_then(|d| Duration::from_std(d).ok())
            .unwrap_or_else(|| Duration::minutes(5));
        tracing::info!(credentials = %cred.name, "source token obtained");
        Ok((response.access_token().secret().clone(), expires_in))
    }
}
