//! `did:web` identifiers (W3C CCG did:web method): a connector's DID from its public URL, and the
//! URL of a `did:web`'s DID document, plus small helpers for DID URLs (`did#fragment`).

/// Why a URL cannot become a `did:web`, or a DID cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DidError {
    /// The URL is not an absolute http(s) URL with a host.
    #[error("`{0}` is not an absolute http(s) URL with a host; a did:web needs one")]
    BadUrl(String),
    /// The string is not a DID of the expected shape.
    #[error("`{did}` is not a valid DID: {reason}")]
    Invalid {
        /// The offending DID.
        did: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The DID method is not one caap resolves.
    #[error("the DID method of `{0}` is not supported (caap resolves did:web and did:key)")]
    UnsupportedMethod(String),
    /// did:web forbids IP addresses as hosts (only loopback, with the development flag).
    #[error(
        "`{0}`: did:web does not allow IP addresses (loopback only, with the development flag)"
    )]
    IpAddressNotAllowed(String),
}

/// How `did:web` DIDs map to URLs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DidWebOptions {
    /// DEVELOPMENT ONLY: resolve did:web DIDs whose host is loopback (`localhost`, `127.0.0.0/8`,
    /// `[::1]`) over plain `http://`. Everything else stays `https://`. Never enable it in a real
    /// data space: anyone on the path could swap the keys.
    pub insecure_http_on_loopback: bool,
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

/// The URL of the DID document of `did` (a `did:web`, without fragment):
/// `did:web:example.com%3A3000:user:alice` → `https://example.com:3000/user/alice/did.json`;
/// with no path, `https://host/.well-known/did.json`.
pub fn did_web_to_url(did: &str, options: DidWebOptions) -> Result<String, DidError> {
    let invalid = |reason: &str| DidError::Invalid {
        did: did.to_owned(),
        reason: reason.to_owned(),
    };
    let msid = did
        .strip_prefix("did:web:")
        .ok_or_else(|| DidError::UnsupportedMethod(did.to_owned()))?;
    if msid.is_empty() || msid.contains(['#', '?', '/']) {
        return Err(invalid(
            "expected did:web:host[%3Aport](:path)* without fragment, query or slash",
        ));
    }
    let mut segments = msid.split(':');
    let host = percent_decode(segments.next().unwrap_or_default())
        .ok_or_else(|| invalid("bad percent-encoding in the host"))?;
    let mut path = Vec::new();
    for segment in segments {
        let segment =
            percent_decode(segment).ok_or_else(|| invalid("bad percent-encoding in the path"))?;
        if segment.is_empty() || segment == "." || segment == ".." || segment.contains('/') {
            return Err(invalid("empty, dot or slash path segment"));
        }
        path.push(segment);
    }
    // Parse once with https to learn the host kind.
    let probe = url::Url::parse(&format!("https://{host}/"))
        .map_err(|_| invalid("the host is not a valid host[:port]"))?;
    let loopback = match probe.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(invalid("no host")),
    };
    let is_ip = matches!(
        probe.host(),
        Some(url::Host::Ipv4(_)) | Some(url::Host::Ipv6(_))
    );
    if is_ip && !(loopback && options.insecure_http_on_loopback) {
        return Err(DidError::IpAddressNotAllowed(did.to_owned()));
    }
    if probe.username() != "" || probe.password().is_some() {
        return Err(invalid("no user information allowed in the host"));
    }
    let scheme = if loopback && options.insecure_http_on_loopback {
        "http"
    } else {
        "https"
    };
    let mut url = format!("{scheme}://{host}");
    if path.is_empty() {
        url.push_str("/.well-known");
    }
    for segment in &path {
        url.push('/');
        url.push_str(segment);
    }
    url.push_str("/did.json");
    // Normalise (and make sure the result is a URL at all).
    url::Url::parse(&url)
        .map(|u| u.to_string())
        .map_err(|_| invalid("does not map to a valid URL"))
}

/// Splits a DID URL into the DID and its fragment: `did:web:a#key-1` → (`did:web:a`, `Some("key-1")`).
/// Query and path parts are not used by caap and are kept with the DID.
pub fn split_did_url(did_url: &str) -> (&str, Option<&str>) {
    match did_url.split_once('#') {
        Some((did, fragment)) => (did, Some(fragment)),
        None => (did_url, None),
    }
}

/// True if `s` looks like a DID (`did:<method>:<id>`, method lowercase alphanumerics).
pub fn is_did(s: &str) -> bool {
    let mut parts = s.splitn(3, ':');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some("did"), Some(m), Some(id))
            if !m.is_empty()
                && m.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && !id.is_empty()
    )
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
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

    #[test]
    fn did_web_resolves_to_the_spec_urls() {
        let strict = DidWebOptions::default();
        assert_eq!(
            did_web_to_url("did:web:w3c-ccg.github.io", strict).unwrap(),
            "https://w3c-ccg.github.io/.well-known/did.json"
        );
        assert_eq!(
            did_web_to_url("did:web:w3c-ccg.github.io:user:alice", strict).unwrap(),
            "https://w3c-ccg.github.io/user/alice/did.json"
        );
        assert_eq!(
            did_web_to_url("did:web:example.com%3A3000:user:alice", strict).unwrap(),
            "https://example.com:3000/user/alice/did.json"
        );
        // Round trip from a connector URL.
        let did = did_web_from_url("https://malmo.example:8443/caap").unwrap();
        assert_eq!(
            did_web_to_url(&did, strict).unwrap(),
            "https://malmo.example:8443/caap/did.json"
        );
    }

    #[test]
    fn did_web_refuses_bad_ids_ips_and_other_methods() {
        let strict = DidWebOptions::default();
        assert!(matches!(
            did_web_to_url("did:key:z6Mk", strict),
            Err(DidError::UnsupportedMethod(_))
        ));
        for bad in [
            "did:web:",
            "did:web:a.example#k",
            "did:web:a.example:..:x",
            "did:web:a.example::x",
            "did:web:a.example%ZZ",
            "did:web:a/b",
        ] {
            assert!(
                matches!(did_web_to_url(bad, strict), Err(DidError::Invalid { .. })),
                "{bad}"
            );
        }
        assert_eq!(
            did_web_to_url("did:web:10.0.0.1", strict),
            Err(DidError::IpAddressNotAllowed("did:web:10.0.0.1".into()))
        );
        assert!(did_web_to_url("did:web:127.0.0.1%3A8080", strict).is_err());
        // localhost without the flag: https (and fails at the TLS layer, as it should).
        assert_eq!(
            did_web_to_url("did:web:localhost%3A4711:holder", strict).unwrap(),
            "https://localhost:4711/holder/did.json"
        );
    }

    #[test]
    fn the_dev_flag_allows_http_on_loopback_only() {
        let dev = DidWebOptions {
            insecure_http_on_loopback: true,
        };
        assert_eq!(
            did_web_to_url("did:web:localhost%3A4711:holder", dev).unwrap(),
            "http://localhost:4711/holder/did.json"
        );
        assert_eq!(
            did_web_to_url("did:web:127.0.0.1%3A8181", dev).unwrap(),
            "http://127.0.0.1:8181/.well-known/did.json"
        );
        assert_eq!(
            did_web_to_url("did:web:%5B%3A%3A1%5D%3A9000", dev).unwrap(),
            "http://[::1]:9000/.well-known/did.json"
        );
        assert_eq!(
            did_web_to_url("did:web:malmo.example", dev).unwrap(),
            "https://malmo.example/.well-known/did.json"
        );
        assert!(did_web_to_url("did:web:192.168.1.2", dev).is_err());
    }

    #[test]
    fn did_urls_split() {
        assert_eq!(
            split_did_url("did:web:a#key-1"),
            ("did:web:a", Some("key-1"))
        );
        assert_eq!(split_did_url("did:web:a"), ("did:web:a", None));
        assert!(is_did("did:web:a") && is_did("did:key:z6Mk"));
        assert!(!is_did("did:Web:a") && !is_did("did:web") && !is_did("https://x"));
    }
}
