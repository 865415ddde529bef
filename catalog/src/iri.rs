//! The IRIs of what a caap connector publishes, and back.
//!
//! Assets and offers have user-chosen ids (`readings-csv`, `offer-open`): the handle in the management API
//! and the CLI. On the wire every `@id` must be an absolute IRI that names the same resource everywhere
//! (catalog, dataset endpoint, offers, an agreement's `target`), or independent JSON-LD and RDF tools lose
//! or split the resource. The mapping:
//!
//! * a handle that is already an absolute IRI of the `urn:` or `did:` scheme is published unchanged
//!   (`urn:uuid:…`, as caap generates them);
//! * any other dataset handle `h` becomes `<dsp base>/catalog/datasets/h`, the URL of the dataset
//!   endpoint itself (so the IRI dereferences to the dataset), and an offer handle becomes
//!   `<dsp base>/catalog/offers/h`.
//!
//! Inbound, an id is mapped back to a handle by [`Namespace::dataset_handle`] and
//! [`Namespace::offer_handle`]: one of this connector's IRIs gives its handle, an id in handle form (no `/`:
//! a relative id, `urn:…`) is resolved against this connector's namespace (it is the handle), and any other
//! IRI gives `None`, which the caller refuses with a DSP error.

/// The DSP base (`<root>/dsp/…`) the IRIs of one connector are minted under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    datasets: String,
    offers: String,
}

pub use caap_canonical::dsp::is_absolute;

/// True for a handle that is published as its own IRI (`urn:…`, `did:…`).
fn is_own_iri(handle: &str) -> bool {
    let lower = handle.get(..4).map(str::to_ascii_lowercase);
    matches!(lower.as_deref(), Some("urn:") | Some("did:")) && is_absolute(handle)
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for one path segment.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Namespace {
    /// The namespace of the connector whose DSP base is `dsp_base` (a trailing `/` is ignored).
    pub fn new(dsp_base: &str) -> Namespace {
        let base = dsp_base.trim_end_matches('/');
        Namespace {
            datasets: format!("{base}/catalog/datasets/"),
            offers: format!("{base}/catalog/offers/"),
        }
    }

    /// The IRI of the dataset (asset) with this handle.
    pub fn dataset(&self, handle: &str) -> String {
        mint(&self.datasets, handle)
    }

    /// The IRI of the offer with this handle.
    pub fn offer(&self, handle: &str) -> String {
        mint(&self.offers, handle)
    }

    /// The handle of a dataset id as received: see the [module documentation](self).
    pub fn dataset_handle<'a>(&self, id: &'a str) -> Option<&'a str> {
        handle(&self.datasets, id)
    }

    /// The handle of an offer id as received: see the [module documentation](self).
    pub fn offer_handle<'a>(&self, id: &'a str) -> Option<&'a str> {
        handle(&self.offers, id)
    }

    /// An id as this connector would publish it: a handle or relative id becomes the dataset IRI, an
    /// absolute IRI stays as it is.
    pub fn absolute_dataset(&self, id: &str) -> String {
        if is_absolute(id) {
            id.to_owned()
        } else {
            self.dataset(id)
        }
    }

    /// Like [`Namespace::absolute_dataset`], for offers.
    pub fn absolute_offer(&self, id: &str) -> String {
        if is_absolute(id) {
            id.to_owned()
        } else {
            self.offer(id)
        }
    }

    /// Makes the `@id` and `target` of an offer (a JSON object as sent in a contract request) absolute, by
    /// this namespace; other members are left alone.
    pub fn absolute_offer_ids(&self, offer: &mut serde_json::Value) {
        if let Some(id) = offer.get("@id").and_then(|v| v.as_str()) {
            offer["@id"] = self.absolute_offer(id).into();
        }
        if let Some(t) = offer.get("target").and_then(|v| v.as_str()) {
            offer["target"] = self.absolute_dataset(t).into();
        }
    }
}

fn mint(prefix: &str, handle: &str) -> String {
    if is_own_iri(handle) {
        handle.to_owned()
    } else {
        format!("{prefix}{handle}")
    }
}

fn handle<'a>(prefix: &str, id: &'a str) -> Option<&'a str> {
    if let Some(h) = id.strip_prefix(prefix) {
        return (!h.is_empty()).then_some(h);
    }
    // A handle never holds a `/` (see `asset::check_id`): `readings-csv`, `a:b`, `urn:uuid:…` are handles,
    // `https://lund.example/…` is someone else's IRI.
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_map_to_one_absolute_iri_and_back() {
        let ns = Namespace::new("https://malmo.example/dsp/2025-1/");
        let cases = [
            (
                "readings-csv",
                "https://malmo.example/dsp/2025-1/catalog/datasets/readings-csv",
            ),
            (
                "a:b",
                "https://malmo.example/dsp/2025-1/catalog/datasets/a:b",
            ),
            ("urn:uuid:0b0f", "urn:uuid:0b0f"),
            ("did:web:x.example", "did:web:x.example"),
        ];
        for (h, iri) in cases {
            assert_eq!(ns.dataset(h), iri);
            assert!(is_absolute(&ns.dataset(h)));
            assert_eq!(ns.dataset_handle(iri), Some(h));
            assert_eq!(
                ns.dataset_handle(h),
                Some(h),
                "relative ids resolve to handles"
            );
        }
        assert_eq!(
            ns.offer("offer-open"),
            "https://malmo.example/dsp/2025-1/catalog/offers/offer-open"
        );
        assert_eq!(ns.offer_handle(&ns.offer("offer-open")), Some("offer-open"));
        // Someone else's IRI, or the other kind, is not ours.
        assert_eq!(ns.dataset_handle("https://lund.example/d/1"), None);
        assert_eq!(ns.offer_handle(&ns.dataset("readings-csv")), None);
        assert_eq!(ns.dataset_handle(""), None);
    }

    #[test]
    fn absolute_means_a_scheme() {
        for id in ["urn:uuid:1", "did:web:x", "https://x/y", "a+b.c-d:e"] {
            assert!(is_absolute(id), "{id}");
        }
        for id in ["readings-csv", "a/b", ":x", "1a:b", "x:", ""] {
            assert!(!is_absolute(id), "{id}");
        }
    }

    #[test]
    fn offers_sent_are_made_absolute() {
        let ns = Namespace::new("https://lund.example/dsp");
        let mut offer = serde_json::json!({"@id": "o", "target": "d", "permission": []});
        ns.absolute_offer_ids(&mut offer);
        assert_eq!(offer["@id"], "https://lund.example/dsp/catalog/offers/o");
        assert_eq!(
            offer["target"],
            "https://lund.example/dsp/catalog/datasets/d"
        );
        let mut already = serde_json::json!({"@id": "urn:uuid:1", "target": "https://x/d"});
        ns.absolute_offer_ids(&mut already);
        assert_eq!(
            already,
            serde_json::json!({"@id": "urn:uuid:1", "target": "https://x/d"})
        );
        assert_eq!(encode_segment("https://x/a b"), "https%3A%2F%2Fx%2Fa%20b");
    }
}
