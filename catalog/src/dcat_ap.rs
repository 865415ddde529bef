//! The DCAT-AP 3.0 feed of a connector's catalog, for open-data portals (the Swedish data portal, CKAN with
//! ckanext-dcat, data.europa.eu).
//!
//! Pure: it reads through [`CatalogSource`] and returns an [`rdf::Graph`] the connector writes as Turtle,
//! RDF/XML or JSON-LD. What is in it:
//! * the catalog, its publisher (`foaf:Agent`), its contact point (`vcard:Kind`) and the DSP endpoint as a
//!   `dcat:DataService`;
//! * every dataset with an offer anyone may see (its access policy has no constraint: `visible`); datasets
//!   whose very visibility needs credentials are left out of a public feed;
//! * a public dataset in full: `dct:accessRights` PUBLIC and a distribution with `dcat:accessURL` and
//!   `dcat:downloadURL` at caap's data plane and the licence; a restricted one as metadata: `dct:accessRights`
//!   RESTRICTED and a distribution whose `dcat:accessURL` is the DSP endpoint (`dcat:accessService`);
//! * themes mapped to the EU data-theme vocabulary, spatial coverage as a `dct:Location`, the Smart Data
//!   Model schema as `dct:conformsTo`;
//! * Hydra paging (`hydra:PartialCollectionView` with first/previous/next/last, and the older
//!   `hydra:PagedCollection` terms that ckanext-dcat and EntryScape also read).
//!
//! Every node the DCAT-AP range shapes expect to be of a class is typed explicitly, so the feed validates
//! against the official shapes without inference.

use crate::asset::{Asset, DataAddress};
use crate::build::{CatalogIdentity, CatalogSource};
use crate::error::CatalogFault;
use crate::offer::ResolvedOffer;
use crate::page::Cursor;
use crate::rdf::{Graph, Term};

const DCAT: &str = "http://www.w3.org/ns/dcat#";
const DCT: &str = "http://purl.org/dc/terms/";
const FOAF: &str = "http://xmlns.com/foaf/0.1/";
const VCARD: &str = "http://www.w3.org/2006/vcard/ns#";
const SKOS: &str = "http://www.w3.org/2004/02/skos/core#";
const HYDRA: &str = "http://www.w3.org/ns/hydra/core#";
const XSD: &str = "http://www.w3.org/2001/XMLSchema#";
/// The EU data-theme vocabulary.
pub const DATA_THEME: &str = "http://publications.europa.eu/resource/authority/data-theme";
const ACCESS_RIGHT: &str = "http://publications.europa.eu/resource/authority/access-right/";
const FILE_TYPE: &str = "http://publications.europa.eu/resource/authority/file-type/";
/// DSP 2025-1, what the data service conforms to.
const DSP_SPEC: &str = "https://w3id.org/dspace/2025/1";

/// The prefixes the feed is written with.
pub const PREFIXES: &[(&str, &str)] = &[
    ("rdf", "http://www.w3.org/1999/02/22-rdf-syntax-ns#"),
    ("dcat", DCAT),
    ("dct", DCT),
    ("foaf", FOAF),
    ("vcard", VCARD),
    ("skos", SKOS),
    ("hydra", HYDRA),
    ("xsd", XSD),
];

/// EU data themes by code, with their English labels.
const THEMES: &[(&str, &str)] = &[
    ("AGRI", "Agriculture, fisheries, forestry and food"),
    ("ECON", "Economy and finance"),
    ("EDUC", "Education, culture and sport"),
    ("ENER", "Energy"),
    ("ENVI", "Environment"),
    ("GOVE", "Government and public sector"),
    ("HEAL", "Health"),
    ("INTR", "International issues"),
    ("JUST", "Justice, legal system and public safety"),
    ("REGI", "Regions and cities"),
    ("SOCI", "Population and society"),
    ("TECH", "Science and technology"),
    ("TRAN", "Transport"),
];

/// The EU data theme code of an asset's theme: a code, an IRI of the vocabulary, or a common word
/// (`environment`, `mobility`, …); `None` when there is no sensible one (the theme stays a keyword).
pub fn eu_theme(theme: &str) -> Option<&'static str> {
    let t = theme.trim();
    let code = t
        .strip_prefix(DATA_THEME)
        .map(|c| c.trim_start_matches('/'))
        .unwrap_or(t)
        .to_ascii_uppercase();
    if let Some((c, _)) = THEMES.iter().find(|(c, _)| *c == code) {
        return Some(c);
    }
    let word = t.to_lowercase();
    let code = match word.as_str() {
        "environment" | "air quality" | "climate" | "weather" | "noise" | "water" => "ENVI",
        "mobility" | "transport" | "traffic" | "parking" | "public transport" => "TRAN",
        "energy" | "electricity" | "district heating" => "ENER",
        "health" | "healthcare" => "HEAL",
        "economy" | "finance" | "business" => "ECON",
        "education" | "culture" | "sport" | "tourism" => "EDUC",
        "government" | "public sector" | "administration" => "GOVE",
        "population" | "society" | "social" | "housing" => "SOCI",
        "safety" | "justice" | "public safety" => "JUST",
        "city" | "cities" | "regions" | "urban planning" | "planning" => "REGI",
        "agriculture" | "food" | "forestry" | "fisheries" => "AGRI",
        "science" | "technology" | "research" => "TECH",
        _ => return None,
    };
    Some(code)
}

/// What the feed says about the publisher beyond the catalog identity.
#[derive(Debug, Clone, Default)]
pub struct Publisher {
    /// Contact e-mail (`vcard:hasEmail`).
    pub email: Option<String>,
    /// Home page (`foaf:homepage`, `vcard:hasURL`).
    pub homepage: Option<String>,
}

/// One page of the feed.
#[derive(Debug, Clone)]
pub struct FeedPage {
    /// The page's triples.
    pub graph: Graph,
    /// Datasets in the whole feed.
    pub total: u64,
    /// The number of the last page (1 when empty).
    pub last_page: u64,
}

/// The feed's page `page` (from 1) of `page_size` datasets. `feed_url` is the feed's absolute URL without a
/// query; `visible` says whether anyone may see an offer (its access policy is open).
pub async fn feed_page<S, V>(
    source: &S,
    ident: &CatalogIdentity,
    publisher: &Publisher,
    feed_url: &str,
    page: u64,
    page_size: u32,
    visible: V,
) -> Result<FeedPage, CatalogFault>
where
    S: CatalogSource,
    V: Fn(&ResolvedOffer) -> bool,
{
    if page == 0 {
        return Err(CatalogFault::BadRequest("page numbers start at 1".into()));
    }
    let size = u64::from(page_size.max(1));
    let first = (page - 1).saturating_mul(size);
    // Walk the whole catalog in batches (the feed is harvested page by page, seldom): count what anyone may
    // see and keep this page's datasets with their offers.
    let mut total = 0u64;
    let mut on_page: Vec<(Asset, bool)> = Vec::new();
    let mut cursor = Cursor::Start;
    loop {
        let assets = source.assets(&cursor, 500).await?;
        let Some(last) = assets.last() else { break };
        cursor = Cursor::After(last.id.clone());
        let exhausted = assets.len() < 500;
        let ids: Vec<String> = assets.iter().map(|a| a.id.clone()).collect();
        let offers = source.offers_for(&ids).await?;
        for asset in assets {
            let mine: Vec<&ResolvedOffer> = offers
                .iter()
                .filter(|o| o.offer.assets.contains(&asset.id) && visible(o))
                .collect();
            if mine.is_empty() {
                continue;
            }
            if total >= first && total < first + size {
                let public = mine.iter().any(|o| o.offer.public)
                    && crate::offer::public_refusal(&asset).is_none();
                on_page.push((asset, public));
            }
            total += 1;
        }
        if exhausted {
            break;
        }
    }
    let last_page = total.div_ceil(size).max(1);
    let mut g = Graph::default();
    let catalog = Term::iri(feed_url);
    let agent = Term::iri(&ident.participant_id);
    let service = Term::iri(ident.service_id());
    let contact = Term::iri(format!("{feed_url}#contact"));

    g.typed(&catalog, &format!("{DCAT}Catalog"));
    g.add(
        &catalog,
        &format!("{DCT}title"),
        Term::text(format!("{} data catalog", ident.publisher)),
    );
    g.add(
        &catalog,
        &format!("{DCT}description"),
        Term::text(format!(
            "The datasets {} shares through its caap data-space connector: open data to download, and \
             restricted data to negotiate over the Dataspace Protocol.",
            ident.publisher
        )),
    );
    g.add(&catalog, &format!("{DCT}publisher"), agent.clone());
    g.add(&catalog, &format!("{DCAT}service"), service.clone());
    let scheme = Term::iri(DATA_THEME);
    g.add(&catalog, &format!("{DCAT}themeTaxonomy"), scheme.clone());
    g.typed(&scheme, &format!("{SKOS}ConceptScheme"));
    g.add(
        &scheme,
        &format!("{DCT}title"),
        Term::lang("Data theme", "en"),
    );
    if let Some(home) = &publisher.homepage {
        let page = Term::iri(home);
        g.add(&catalog, &format!("{FOAF}homepage"), page.clone());
        g.typed(&page, &format!("{FOAF}Document"));
    }

    g.typed(&agent, &format!("{FOAF}Agent"));
    g.typed(&agent, &format!("{FOAF}Organization"));
    g.add(&agent, &format!("{FOAF}name"), Term::text(&ident.publisher));

    g.typed(&contact, &format!("{VCARD}Kind"));
    g.typed(&contact, &format!("{VCARD}Organization"));
    g.add(
        &contact,
        &format!("{VCARD}fn"),
        Term::text(&ident.publisher),
    );
    if let Some(email) = &publisher.email {
        g.add(
            &contact,
            &format!("{VCARD}hasEmail"),
            Term::iri(format!("mailto:{email}")),
        );
    }
    if let Some(home) = &publisher.homepage {
        g.add(&contact, &format!("{VCARD}hasURL"), Term::iri(home));
    }

    g.typed(&service, &format!("{DCAT}DataService"));
    g.add(
        &service,
        &format!("{DCT}title"),
        Term::text(format!(
            "Dataspace Protocol endpoint of {}",
            ident.publisher
        )),
    );
    g.add(
        &service,
        &format!("{DCAT}endpointURL"),
        Term::iri(&ident.dsp_base),
    );
    g.add(
        &service,
        &format!("{DCAT}endpointDescription"),
        Term::iri(&ident.version_url),
    );
    let dsp = Term::iri(DSP_SPEC);
    g.add(&service, &format!("{DCT}conformsTo"), dsp.clone());
    g.typed(&dsp, &format!("{DCT}Standard"));
    g.add(&service, &format!("{DCT}publisher"), agent.clone());
    g.add(&service, &format!("{DCAT}contactPoint"), contact.clone());
    let restricted = access_right(&mut g, "RESTRICTED");
    g.add(&service, &format!("{DCT}accessRights"), restricted.clone());

    let public_right = access_right(&mut g, "PUBLIC");
    let ns = ident.namespace();
    for (asset, public) in &on_page {
        let d = Term::iri(ns.dataset(&asset.id));
        g.add(&catalog, &format!("{DCAT}dataset"), d.clone());
        g.typed(&d, &format!("{DCAT}Dataset"));
        g.add(&d, &format!("{DCT}identifier"), Term::text(&asset.id));
        g.add(&d, &format!("{DCT}title"), Term::text(&asset.title));
        let description = if asset.description.is_empty() {
            &asset.title
        } else {
            &asset.description
        };
        g.add(&d, &format!("{DCT}description"), Term::text(description));
        g.add(&d, &format!("{DCT}publisher"), agent.clone());
        g.add(&d, &format!("{DCAT}contactPoint"), contact.clone());
        for k in &asset.keywords {
            g.add(&d, &format!("{DCAT}keyword"), Term::text(k));
        }
        for t in &asset.themes {
            match eu_theme(t) {
                Some(code) => {
                    let concept = Term::iri(format!("{DATA_THEME}/{code}"));
                    g.add(&d, &format!("{DCAT}theme"), concept.clone());
                    g.typed(&concept, &format!("{SKOS}Concept"));
                    let label = THEMES
                        .iter()
                        .find(|(c, _)| *c == code)
                        .map_or(code, |(_, l)| l);
                    g.add(
                        &concept,
                        &format!("{SKOS}prefLabel"),
                        Term::lang(label, "en"),
                    );
                    g.add(&concept, &format!("{SKOS}inScheme"), scheme.clone());
                }
                None => g.add(&d, &format!("{DCAT}keyword"), Term::text(t)),
            }
        }
        if let Some(spatial) = &asset.spatial {
            let location = if is_http(spatial) {
                Term::iri(spatial)
            } else {
                Term::iri(format!("{}#location", ns.dataset(&asset.id)))
            };
            g.add(&d, &format!("{DCT}spatial"), location.clone());
            g.typed(&location, &format!("{DCT}Location"));
            if !is_http(spatial) {
                g.add(&location, &format!("{SKOS}prefLabel"), Term::text(spatial));
            }
        }
        let standard = asset.data_model_schema.as_deref().filter(|s| is_http(s));
        if let Some(schema) = standard {
            let st = Term::iri(schema);
            g.add(&d, &format!("{DCT}conformsTo"), st.clone());
            g.typed(&st, &format!("{DCT}Standard"));
            if let Some(model) = &asset.data_model {
                g.add(
                    &st,
                    &format!("{DCT}title"),
                    Term::text(format!("Smart Data Models: {model}")),
                );
            }
        }
        let dist = Term::iri(format!(
            "{}#{}",
            ns.dataset(&asset.id),
            if *public { "download" } else { "dsp" }
        ));
        g.add(&d, &format!("{DCAT}distribution"), dist.clone());
        g.typed(&dist, &format!("{DCAT}Distribution"));
        if let Some(schema) = standard {
            g.add(&dist, &format!("{DCT}conformsTo"), Term::iri(schema));
        }
        if let Some(license) = asset.license.as_deref().filter(|l| is_http(l)) {
            let l = Term::iri(license);
            g.add(&dist, &format!("{DCT}license"), l.clone());
            g.typed(&l, &format!("{DCT}LicenseDocument"));
        }
        if *public {
            g.add(&d, &format!("{DCT}accessRights"), public_right.clone());
            let url = Term::iri(ident.download_url(&asset.id));
            g.add(
                &dist,
                &format!("{DCT}title"),
                Term::text(format!("{}: download", asset.title)),
            );
            g.add(&dist, &format!("{DCAT}accessURL"), url.clone());
            g.add(&dist, &format!("{DCAT}downloadURL"), url);
            g.add(&dist, &format!("{DCT}rights"), public_right.clone());
            let media = media_type(asset);
            if let Some(m) = &media {
                let mt = Term::iri(format!("http://www.iana.org/assignments/media-types/{m}"));
                g.add(&dist, &format!("{DCAT}mediaType"), mt.clone());
                g.typed(&mt, &format!("{DCT}MediaType"));
            }
            if let Some(code) = media.as_deref().and_then(file_type) {
                let ft = Term::iri(format!("{FILE_TYPE}{code}"));
                g.add(&dist, &format!("{DCT}format"), ft.clone());
                g.typed(&ft, &format!("{DCT}MediaTypeOrExtent"));
            }
        } else {
            g.add(&d, &format!("{DCT}accessRights"), restricted.clone());
            g.add(
                &dist,
                &format!("{DCT}title"),
                Term::text(format!(
                    "{}: by contract negotiation over the Dataspace Protocol",
                    asset.title
                )),
            );
            g.add(
                &dist,
                &format!("{DCAT}accessURL"),
                Term::iri(&ident.dsp_base),
            );
            g.add(&dist, &format!("{DCAT}accessService"), service.clone());
            g.add(&dist, &format!("{DCT}rights"), restricted.clone());
            g.add(&service, &format!("{DCAT}servesDataset"), d.clone());
        }
    }

    // Hydra paging.
    let view = Term::iri(format!("{feed_url}?page={page}"));
    g.typed(&view, &format!("{HYDRA}PartialCollectionView"));
    g.typed(&view, &format!("{HYDRA}PagedCollection"));
    let at = |n: u64| Term::iri(format!("{feed_url}?page={n}"));
    g.add(&view, &format!("{HYDRA}first"), at(1));
    g.add(&view, &format!("{HYDRA}firstPage"), at(1));
    g.add(&view, &format!("{HYDRA}last"), at(last_page));
    g.add(&view, &format!("{HYDRA}lastPage"), at(last_page));
    if page > 1 {
        g.add(&view, &format!("{HYDRA}previous"), at(page - 1));
        g.add(&view, &format!("{HYDRA}previousPage"), at(page - 1));
    }
    if page < last_page {
        g.add(&view, &format!("{HYDRA}next"), at(page + 1));
        g.add(&view, &format!("{HYDRA}nextPage"), at(page + 1));
    }
    g.add(
        &view,
        &format!("{HYDRA}totalItems"),
        Term::typed(total.to_string(), &format!("{XSD}integer")),
    );
    g.add(
        &view,
        &format!("{HYDRA}itemsPerPage"),
        Term::typed(size.to_string(), &format!("{XSD}integer")),
    );
    g.add(&catalog, &format!("{HYDRA}view"), view);
    Ok(FeedPage {
        graph: g,
        total,
        last_page,
    })
}

/// The EU access-right concept `code`, typed as the range shapes want.
fn access_right(g: &mut Graph, code: &str) -> Term {
    let t = Term::iri(format!("{ACCESS_RIGHT}{code}"));
    g.typed(&t, &format!("{DCT}RightsStatement"));
    t
}

fn is_http(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://"))
        && !s
            .chars()
            .any(|c| c.is_whitespace() || "<>\"{}|^`\\".contains(c))
}

/// The media type of a dataset's data as served: the declared one; a live stream is server-sent events.
fn media_type(asset: &Asset) -> Option<String> {
    match &asset.data_address {
        DataAddress::LiveStream { .. } => Some("text/event-stream".into()),
        _ => asset
            .media_type
            .clone()
            .filter(|m| m.contains('/') && !m.chars().any(char::is_whitespace)),
    }
}

/// The EU file-type code of a media type, where there is one.
fn file_type(media: &str) -> Option<&'static str> {
    Some(match media.split(';').next()?.trim() {
        "application/ld+json" => "JSON_LD",
        "application/json" | "application/geo+json" => "JSON",
        "text/csv" => "CSV",
        "application/xml" | "text/xml" => "XML",
        "text/turtle" => "RDF_TURTLE",
        "application/rdf+xml" => "RDF_XML",
        "text/plain" => "TXT",
        "application/pdf" => "PDF",
        "application/zip" => "ZIP",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn themes_map_to_the_eu_vocabulary() {
        assert_eq!(eu_theme("environment"), Some("ENVI"));
        assert_eq!(eu_theme("Mobility"), Some("TRAN"));
        assert_eq!(eu_theme("envi"), Some("ENVI"));
        assert_eq!(
            eu_theme("http://publications.europa.eu/resource/authority/data-theme/HEAL"),
            Some("HEAL")
        );
        assert_eq!(eu_theme("sensors"), None);
    }
}
