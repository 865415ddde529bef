//! A plain HTTP source (`HttpApi`), optionally protected by OAuth2 client credentials.

use super::{AccessError, Opened, Source, SourceContext, SourceError, open_http};

/// An HTTP resource fetched with `method`.
#[derive(Debug, Clone)]
pub struct HttpSource {
    /// The resource.
    pub url: String,
    /// The HTTP method.
    pub method: String,
    /// The `[[source_credentials]]` that protect it, by name.
    pub credentials: Option<String>,
}

impl Source for HttpSource {
    async fn open(self, cx: &SourceContext<'_>) -> Result<Opened, AccessError> {
        let HttpSource {
            url,
            method,
            credentials,
        } = self;
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| AccessError::Internal(format!("method {method}: {e}")))?;
        // A range the consumer asked for is passed on; a source that supports ranges answers 206.
        let request = |method: reqwest::Method| {
            let req = cx.streaming.request(method, &url);
            match cx.range {
                Some(r) => req.header(reqwest::header::RANGE, r.header()),
                None => req,
            }
        };
        let Some(name) = credentials else {
            return open_http(request(method), &url).await;
        };
        // A protected source: a token from the cache or the authorization server; one that the source
        // refuses is forgotten and fetched anew once.
        for attempt in 0..2 {
            let auth = cx.auth.authorization(&name).await?;
            let req = request(method.clone()).header(reqwest::header::AUTHORIZATION, auth);
            match open_http(req, &url).await {
                Err(AccessError::Source(e)) if attempt == 0 && e.is_unauthorized() => {
                    cx.auth.tokens.forget(&name);
                }
                other => return other,
            }
        }
        Err(SourceError::FreshTokenRefused { url }.into())
    }
}
