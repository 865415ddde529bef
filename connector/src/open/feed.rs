//! The DCAT-AP 3.0 feed: one page of [`caap_catalog::dcat_ap`], written in the format the harvester asked for.

use caap_catalog::dcat_ap::{self, PREFIXES, Publisher};
use caap_catalog::offer::ResolvedOffer;

use super::{OpenData, OpenError};

/// The RDF syntaxes the feed is served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// `text/turtle` (the default).
    Turtle,
    /// `application/ld+json`.
    JsonLd,
    /// `application/rdf+xml`.
    RdfXml,
}

impl Syntax {
    /// Every syntax with its media type, the default first.
    pub const ALL: [(Syntax, &'static str); 3] = [
        (Syntax::Turtle, "text/turtle"),
        (Syntax::JsonLd, "application/ld+json"),
        (Syntax::RdfXml, "application/rdf+xml"),
    ];

    /// The media type.
    pub fn media_type(self) -> &'static str {
        Syntax::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("text/turtle", |(_, m)| m)
    }

    /// The syntax an `Accept` header prefers (q-values honoured; `application/json` is JSON-LD); Turtle when
    /// it names none of them (RFC 9110 lets a server answer with its default rather than 406).
    pub fn negotiate(accept: Option<&str>) -> Syntax {
        let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
            return Syntax::Turtle;
        };
        let mut best: Option<(Syntax, f32)> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let syntax = match media.as_str() {
                "text/turtle" | "application/x-turtle" | "*/*" | "text/*" => Syntax::Turtle,
                "application/ld+json" | "application/json" => Syntax::JsonLd,
                "application/rdf+xml" | "application/xml" | "text/xml" => Syntax::RdfXml,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(_, b)| q > b) {
                best = Some((syntax, q));
            }
        }
        best.map_or(Syntax::Turtle, |(s, _)| s)
    }
}

/// A feed page, written.
#[derive(Debug, Clone)]
pub struct FeedDocument {
    /// The syntax it is written in.
    pub syntax: Syntax,
    /// The document.
    pub body: String,
}

impl OpenData {
    /// Page `page` (from 1) of the DCAT-AP feed in `syntax`.
    pub async fn feed(&self, page: u64, syntax: Syntax) -> Result<FeedDocument, OpenError> {
        let c = &self.plane;
        let ident = self.catalog.identity();
        let publisher = Publisher {
            email: c.config.open_data.contact_email.clone(),
            homepage: c.config.open_data.homepage.clone(),
        };
        let feed_url = format!("{}/catalog", ident.open_url.trim_end_matches('/'));
        let page = dcat_ap::feed_page(
            &c.store,
            ident,
            &publisher,
            &feed_url,
            page,
            c.config.open_data.feed_page_size,
            anyone_may_see,
        )
        .await?;
        let body = match syntax {
            Syntax::Turtle => page.graph.to_turtle(PREFIXES),
            Syntax::RdfXml => page.graph.to_rdf_xml(PREFIXES),
            Syntax::JsonLd => page.graph.to_json_ld(PREFIXES).to_string(),
        };
        Ok(FeedDocument { syntax, body })
    }
}

/// Whether anyone, without credentials, may see an offer: its access policy lets anyone use the data.
fn anyone_may_see(offer: &ResolvedOffer) -> bool {
    caap_policy::parse_policy(&offer.access_policy).is_ok_and(|p| p.permits_anyone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_pick_the_syntax() {
        assert_eq!(Syntax::negotiate(None), Syntax::Turtle);
        assert_eq!(Syntax::negotiate(Some("*/*")), Syntax::Turtle);
        assert_eq!(
            Syntax::negotiate(Some("application/rdf+xml")),
            Syntax::RdfXml
        );
        assert_eq!(
            Syntax::negotiate(Some("text/turtle;q=0.5, application/ld+json")),
            Syntax::JsonLd
        );
        assert_eq!(Syntax::negotiate(Some("text/html")), Syntax::Turtle);
    }
}
