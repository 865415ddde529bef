//! `did:web` identifiers (W3C did:web method, §3.2 "Create").

/// Why a URL cannot become a `did:web`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DidError {
    /// The URL is not an absolute http(s) URL with a host.
    #[error("`{0}` is not an absolute http(s) URL with a host; a did:web needs one")]
    BadUrl(String),
}

/// The `did:web` of a connector reachable at `url`: the host (a port percent-encoded as `%3A`),
/// then each path segment after a `:`. `https://malmo.example/caap` → `did:web:malmo.example:caap`.
pub fn did_web_from_url(url: &str) -> Result<String, DidError> {
    let parsed = url::Url::parse(url).map_err(|_| DidError::BadUrl(url.to_owned()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(DidError::BadUrl(url.to_owned()));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| DidError::BadUrl(url.to_owned()))?;
    let mut did = format!("did:web:{host}");
    if let Some(port) = parsed.port() {
        did.push_str(&format!("%3A{port}"));
    }
    for segment in parsed.path().split('/').filter(|s| !s.is_empty()) {
        did.push(':');
        did.push_str(segment);
    }
    Ok(did)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_web_follows_the_method_spec() {
        assert_eq!(
            did_web_from_url("https://w3c-ccg.github.io").unwrap(),
            "did:web:w3c-ccg.github.io"
        );
        assert_eq!(
            did_web_from_url("https://w3c-ccg.github.io/user/alice/").unwrap(),
            "did:web:w3c-ccg.github.io:user:alice"
        );
        assert_eq!(
            did_web_from_url("http://127.0.0.1:8181").unwrap(),
            "did:web:127.0.0.1%3A8181"
        );
        assert!(did_web_from_url("ftp://x").is_err());
        assert!(did_web_from_url("not a url").is_err());
    }
}
