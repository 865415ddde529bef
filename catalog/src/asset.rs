//! Assets: a dataset's metadata and where its data lives.

use serde::{Deserialize, Serialize};

use crate::error::FieldError;

/// Longest id caap accepts (ids appear in URLs and in DSP messages).
pub const MAX_ID_LEN: usize = 200;

/// A dataset a connector publishes: metadata for the catalog plus the address of the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Asset {
    /// Stable id; appears as the DCAT dataset `@id`. Letters, digits and `._~:@+-` only.
    pub id: String,
    /// Human-readable title (`dct:title`).
    pub title: String,
    /// What the data is, in plain language (`dct:description`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Free keywords (`dcat:keyword`), used by federated search.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// Themes (`dcat:theme`), e.g. `environment`, `mobility` or a EU data theme IRI.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub themes: Vec<String>,
    /// Spatial coverage (`dct:spatial`), e.g. a city name or a GeoNames IRI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spatial: Option<String>,
    /// Smart Data Models entity type the records follow, e.g. `AirQualityObserved`. This is what
    /// lets a service built for one city find the same kind of data in another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_model: Option<String>,
    /// URL of the data model's schema (`dct:conformsTo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_model_schema: Option<String>,
    /// Licence IRI or SPDX id (`dct:license`), e.g. `https://creativecommons.org/licenses/by/4.0/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Media type of the records, e.g. `application/ld+json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Present when records carry personal data (OASC MIM4). The consent part of caap uses this to
    /// release only the records of citizens whose consent covers a purpose and recipient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal_data: Option<PersonalData>,
    /// Where the data plane reads the data from. Never shown in the catalog.
    pub data_address: DataAddress,
}

/// A declaration that an asset's records are personal data (OASC MIM4, ISO/IEC TS 27560 terms).
///
/// The fields after `purposes` came later; a declaration without them still reads, as a consent-based
/// one with no retention, jurisdiction or storage location declared (consent is the default because it
/// is the basis that releases the fewest records: only those of citizens who gave it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PersonalData {
    /// The record field that names the data subject (the citizen), e.g. `refCitizen`.
    pub subject_field: String,
    /// DPV personal-data categories, e.g. `dpv-pd:Location`.
    pub categories: Vec<String>,
    /// DPV purposes this data may serve at most, e.g. `dpv:ServiceProvision`.
    pub purposes: Vec<String>,
    /// The lawful basis of sharing the data (GDPR Art. 6(1), in DPV terms); `dpv:Consent` when absent.
    #[serde(default, skip_serializing_if = "LawfulBasis::is_consent")]
    pub lawful_basis: LawfulBasis,
    /// How long a recipient may keep the records, an ISO 8601 duration (`dpv:StorageDuration`), e.g. `P6M`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<String>,
    /// The jurisdiction the processing falls under (`dpv:hasJurisdiction`), e.g. `loc:SE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
    /// Where the records are stored (`dpv:StorageLocation`), e.g. `loc:SE` or `loc:EU`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub storage_locations: Vec<String>,
}

impl PersonalData {
    /// Whether records flow per citizen's consent (and citizens can grant and withdraw it). Data on another
    /// basis is still shown to citizens, for transparency, without grant or withdraw.
    pub fn is_consent_based(&self) -> bool {
        self.lawful_basis.is_consent()
    }

    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_text(
            "/personalData/subjectField",
            &self.subject_field,
            200,
            errors,
        );
        if self.purposes.is_empty() {
            errors.push(FieldError::new(
                "/personalData/purposes",
                "name at least one DPV purpose the data may serve, e.g. dpv:ServiceProvision",
            ));
        }
        for (i, p) in self.purposes.iter().enumerate() {
            check_text(&format!("/personalData/purposes/{i}"), p, 300, errors);
        }
        for (i, c) in self.categories.iter().enumerate() {
            check_text(&format!("/personalData/categories/{i}"), c, 300, errors);
        }
        if let Some(retention) = &self.retention {
            check_duration("/personalData/retention", retention, errors);
        }
        if let Some(jurisdiction) = &self.jurisdiction {
            check_text("/personalData/jurisdiction", jurisdiction, 100, errors);
        }
        if self.storage_locations.len() > 50 {
            errors.push(FieldError::new(
                "/personalData/storageLocations",
                "at most 50 storage locations",
            ));
        }
        for (i, l) in self.storage_locations.iter().enumerate() {
            check_text(
                &format!("/personalData/storageLocations/{i}"),
                l,
                300,
                errors,
            );
        }
    }
}

/// The lawful basis for sharing personal data (GDPR Art. 6(1)), written as its DPV term.
///
/// Read from the DPV term (`dpv:Consent`), its full IRI (`https://w3id.org/dpv#Consent`) or the GDPR
/// article (`eu-gdpr:A6-1-a`); always written as the `dpv:` term.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum LawfulBasis {
    /// `dpv:Consent` (Art. 6(1)(a)): only the records of citizens who consented flow.
    #[default]
    Consent,
    /// `dpv:Contract` (Art. 6(1)(b)).
    Contract,
    /// `dpv:LegalObligation` (Art. 6(1)(c)).
    LegalObligation,
    /// `dpv:PublicInterest` (Art. 6(1)(e), a task in the public interest: a city's public task).
    PublicTask,
}

impl LawfulBasis {
    /// Every basis, in GDPR article order.
    pub const ALL: [LawfulBasis; 4] = [
        LawfulBasis::Consent,
        LawfulBasis::Contract,
        LawfulBasis::LegalObligation,
        LawfulBasis::PublicTask,
    ];

    /// The DPV term, e.g. `dpv:Consent`.
    pub fn dpv_term(self) -> &'static str {
        match self {
            LawfulBasis::Consent => "dpv:Consent",
            LawfulBasis::Contract => "dpv:Contract",
            LawfulBasis::LegalObligation => "dpv:LegalObligation",
            LawfulBasis::PublicTask => "dpv:PublicInterest",
        }
    }

    /// The GDPR article, e.g. `eu-gdpr:A6-1-a`.
    pub fn gdpr_article(self) -> &'static str {
        match self {
            LawfulBasis::Consent => "eu-gdpr:A6-1-a",
            LawfulBasis::Contract => "eu-gdpr:A6-1-b",
            LawfulBasis::LegalObligation => "eu-gdpr:A6-1-c",
            LawfulBasis::PublicTask => "eu-gdpr:A6-1-e",
        }
    }

    /// Reads a DPV term, DPV IRI or GDPR article; `None` for anything else.
    pub fn from_term(term: &str) -> Option<Self> {
        let local = ["dpv:", "https://w3id.org/dpv#", "https://w3id.org/dpv/owl#"]
            .iter()
            .find_map(|ns| term.strip_prefix(ns));
        let article = ["eu-gdpr:", "https://w3id.org/dpv/legal/eu/gdpr#"]
            .iter()
            .find_map(|ns| term.strip_prefix(ns));
        Self::ALL.into_iter().find(|basis| {
            local.is_some_and(|l| Some(l) == basis.dpv_term().strip_prefix("dpv:"))
                || article.is_some_and(|a| Some(a) == basis.gdpr_article().strip_prefix("eu-gdpr:"))
        })
    }

    /// The default.
    pub fn is_consent(&self) -> bool {
        *self == LawfulBasis::Consent
    }
}

impl std::fmt::Display for LawfulBasis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.dpv_term())
    }
}

impl Serialize for LawfulBasis {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.dpv_term())
    }
}

impl<'de> Deserialize<'de> for LawfulBasis {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let term = String::deserialize(deserializer)?;
        LawfulBasis::from_term(&term).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown lawful basis `{term}`; use dpv:Consent, dpv:Contract, dpv:LegalObligation or \
                 dpv:PublicInterest (a public task)"
            ))
        })
    }
}

/// Checks an ISO 8601 duration such as `P6M`, `P1Y6M`, `P30D` or `PT12H` (see [`IsoDuration`]); it must be
/// longer than zero.
pub fn check_duration(pointer: &str, value: &str, errors: &mut Vec<FieldError>) {
    match IsoDuration::parse(value) {
        None => errors.push(FieldError::new(
            pointer,
            format!("`{value}` is not an ISO 8601 duration; write e.g. P6M, P1Y, P30D or PT12H"),
        )),
        Some(d) if d.is_zero() => errors.push(FieldError::new(pointer, "must be longer than zero")),
        Some(_) => {}
    }
}

/// An ISO 8601 duration with whole-number components (`P1Y2M3W4DT5H6M7S`; at least one component, each at
/// most once and in this order, at most 9 digits each). Calendar components stay calendar components:
/// `P1M` is one month, not 30 days.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IsoDuration {
    /// Years.
    pub years: u32,
    /// Months.
    pub months: u32,
    /// Weeks.
    pub weeks: u32,
    /// Days.
    pub days: u32,
    /// Hours.
    pub hours: u32,
    /// Minutes.
    pub minutes: u32,
    /// Seconds.
    pub seconds: u32,
}

impl IsoDuration {
    /// Parses `value`; `None` when it is not a duration of this form.
    pub fn parse(value: &str) -> Option<Self> {
        let rest = value.strip_prefix('P')?;
        let (date, time) = match rest.split_once('T') {
            Some((d, t)) => (d, Some(t)),
            None => (rest, None),
        };
        let mut d = IsoDuration::default();
        let date_parts = components(
            date,
            &mut [
                ('Y', &mut d.years),
                ('M', &mut d.months),
                ('W', &mut d.weeks),
                ('D', &mut d.days),
            ],
        )?;
        let time_parts = match time {
            None => 0,
            Some(t) => match components(
                t,
                &mut [
                    ('H', &mut d.hours),
                    ('M', &mut d.minutes),
                    ('S', &mut d.seconds),
                ],
            )? {
                0 => return None,
                n => n,
            },
        };
        (date_parts + time_parts > 0).then_some(d)
    }

    /// Whether every component is zero.
    pub fn is_zero(&self) -> bool {
        *self == IsoDuration::default()
    }
}

/// Reads `<digits><designator>` pairs of `text` into `slots` (designators in the slots' order, each at most
/// once); the number of components read, or `None` if `text` is not of that form.
fn components(text: &str, slots: &mut [(char, &mut u32)]) -> Option<usize> {
    let mut next = 0;
    let mut count = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            if number.len() > 9 {
                return None;
            }
        } else {
            let at = slots[next..].iter().position(|(d, _)| *d == c)? + next;
            *slots[at].1 = number.parse().ok()?;
            number.clear();
            next = at + 1;
            count += 1;
        }
    }
    number.is_empty().then_some(count)
}

/// Where an asset's data lives and how the data plane reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum DataAddress {
    /// An HTTP API answered with one finite document per request.
    #[serde(rename = "HttpApi", rename_all = "camelCase")]
    HttpApi {
        /// Absolute http(s) URL.
        url: String,
        /// HTTP method, `GET` unless said otherwise.
        #[serde(default = "default_method")]
        method: String,
        /// The name of an OAuth2 client-credentials entry in the connector's configuration
        /// (`[[source_credentials]]`) whose token is sent to the source. The secret never sits in the asset.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credentials: Option<String>,
    },
    /// A query against an NGSI-LD context broker (OASC MIM1).
    #[serde(rename = "NgsiLdQuery", rename_all = "camelCase")]
    NgsiLdQuery {
        /// The broker's base URL, e.g. `http://broker:1026`.
        broker_url: String,
        /// Entity type to query, e.g. `AirQualityObserved`.
        entity_type: String,
        /// Optional NGSI-LD query (`q=`), e.g. `NO2>40`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        query: Option<String>,
        /// Optional NGSI-LD tenant.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tenant: Option<String>,
    },
    /// A file on the connector's machine (CSV or JSON), served in chunks.
    #[serde(rename = "File", rename_all = "camelCase")]
    File {
        /// Absolute path, or relative to the connector's data directory.
        path: String,
        /// Media type, e.g. `text/csv`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media_type: Option<String>,
    },
    /// A non-finite live source relayed until the transfer is suspended or terminated.
    #[serde(rename = "LiveStream", rename_all = "camelCase")]
    LiveStream {
        /// How the source is read.
        source: StreamSource,
        /// The source URL.
        url: String,
        /// Polling interval in seconds, for `HttpPoll` only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        interval_secs: Option<u32>,
    },
}

fn default_method() -> String {
    "GET".to_owned()
}

/// The kinds of live source a stream can relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamSource {
    /// A server-sent-events endpoint.
    Sse,
    /// An HTTP endpoint polled on an interval.
    HttpPoll,
    /// NGSI-LD subscription notifications from a context broker.
    NgsiLdSubscription,
}

/// DSP `format` strings caap offers for each kind of data address.
pub mod format {
    /// The consumer pulls with a token from the provider's data plane.
    pub const HTTP_PULL: &str = "HttpData-PULL";
    /// The provider's data plane pushes to the consumer's endpoint.
    pub const HTTP_PUSH: &str = "HttpData-PUSH";
}

impl DataAddress {
    /// The DSP distribution formats a dataset with this address is offered in.
    pub fn formats(&self) -> [&'static str; 2] {
        [format::HTTP_PULL, format::HTTP_PUSH]
    }

    /// True for sources that never end by themselves (live streams).
    pub fn is_stream(&self) -> bool {
        matches!(self, DataAddress::LiveStream { .. })
    }

    fn validate(&self, errors: &mut Vec<FieldError>) {
        match self {
            DataAddress::HttpApi {
                url,
                method,
                credentials,
            } => {
                if let Some(c) = credentials {
                    check_id("/dataAddress/credentials", c, errors);
                }
                check_address_url("/dataAddress/url", url, errors);
                if !matches!(method.as_str(), "GET" | "POST") {
                    errors.push(FieldError::new(
                        "/dataAddress/method",
                        format!("method `{method}` is not supported; use GET or POST"),
                    ));
                }
            }
            DataAddress::NgsiLdQuery {
                broker_url,
                entity_type,
                ..
            } => {
                check_address_url("/dataAddress/brokerUrl", broker_url, errors);
                check_text("/dataAddress/entityType", entity_type, 200, errors);
            }
            DataAddress::File { path, .. } => {
                check_text("/dataAddress/path", path, 4096, errors);
                if path.split(['/', '\\']).any(|part| part == "..") {
                    errors.push(FieldError::new(
                        "/dataAddress/path",
                        "must not contain `..`; give an absolute path or one inside the data directory",
                    ));
                }
            }
            DataAddress::LiveStream {
                source,
                url,
                interval_secs,
            } => {
                check_address_url("/dataAddress/url", url, errors);
                match (source, interval_secs) {
                    (StreamSource::HttpPoll, None) => errors.push(FieldError::new(
                        "/dataAddress/intervalSecs",
                        "an HttpPoll stream needs intervalSecs (1 to 86400)",
                    )),
                    (StreamSource::HttpPoll, Some(s)) if *s == 0 || *s > 86_400 => {
                        errors.push(FieldError::new(
                            "/dataAddress/intervalSecs",
                            "must be between 1 and 86400 seconds",
                        ))
                    }
                    (StreamSource::Sse | StreamSource::NgsiLdSubscription, Some(_)) => {
                        errors.push(FieldError::new(
                            "/dataAddress/intervalSecs",
                            "only HttpPoll streams take an interval",
                        ))
                    }
                    _ => {}
                }
            }
        }
    }
}

impl Asset {
    /// Every problem with this asset, each naming its field. Empty means valid.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        check_id("/id", &self.id, &mut errors);
        check_text("/title", &self.title, 500, &mut errors);
        if self.description.len() > 10_000 {
            errors.push(FieldError::new("/description", "longer than 10000 bytes"));
        }
        for (i, k) in self.keywords.iter().enumerate() {
            check_text(&format!("/keywords/{i}"), k, 100, &mut errors);
        }
        for (i, t) in self.themes.iter().enumerate() {
            check_text(&format!("/themes/{i}"), t, 300, &mut errors);
        }
        if self.keywords.len() > 100 {
            errors.push(FieldError::new("/keywords", "at most 100 keywords"));
        }
        if self.themes.len() > 50 {
            errors.push(FieldError::new("/themes", "at most 50 themes"));
        }
        for (pointer, value, max) in [
            ("/spatial", &self.spatial, 300),
            ("/dataModel", &self.data_model, 200),
            ("/license", &self.license, 500),
            ("/mediaType", &self.media_type, 200),
        ] {
            if let Some(v) = value {
                check_text(pointer, v, max, &mut errors);
            }
        }
        if let Some(schema) = &self.data_model_schema {
            check_http_url("/dataModelSchema", schema, &mut errors);
        }
        if let Some(pd) = &self.personal_data {
            pd.validate(&mut errors);
        }
        self.data_address.validate(&mut errors);
        errors
    }

    /// Lower-cased text that keyword search looks at.
    pub fn search_text(&self) -> String {
        let mut s = String::new();
        for part in [&self.id, &self.title, &self.description] {
            s.push_str(&part.to_lowercase());
            s.push(' ');
        }
        for k in self.keywords.iter().chain(&self.themes) {
            s.push_str(&k.to_lowercase());
            s.push(' ');
        }
        if let Some(m) = &self.data_model {
            s.push_str(&m.to_lowercase());
        }
        s
    }
}

/// Checks an id used in URLs and DSP messages.
pub fn check_id(pointer: &str, id: &str, errors: &mut Vec<FieldError>) {
    if id.is_empty() {
        errors.push(FieldError::new(pointer, "must not be empty"));
    } else if id.len() > MAX_ID_LEN {
        errors.push(FieldError::new(
            pointer,
            format!("longer than {MAX_ID_LEN} bytes"),
        ));
    } else if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._~:@+-".contains(*c)))
    {
        errors.push(FieldError::new(
            pointer,
            format!("character {c:?} is not allowed; use letters, digits and . _ ~ : @ + -"),
        ));
    }
}

fn check_text(pointer: &str, value: &str, max: usize, errors: &mut Vec<FieldError>) {
    if value.trim().is_empty() {
        errors.push(FieldError::new(pointer, "must not be empty"));
    } else if value.len() > max {
        errors.push(FieldError::new(pointer, format!("longer than {max} bytes")));
    } else if value.chars().any(char::is_control) {
        errors.push(FieldError::new(
            pointer,
            "must not contain control characters",
        ));
    }
}

/// Checks a data-address URL: an absolute http(s) URL with a host once its references
/// ([`crate::reference`]) are resolved; the references themselves must be well-formed and safe.
fn check_address_url(pointer: &str, value: &str, errors: &mut Vec<FieldError>) {
    if !crate::reference::has_refs(value) {
        return check_http_url(pointer, value, errors);
    }
    match crate::reference::checkable(value) {
        Ok(url) => {
            let mut found = Vec::new();
            check_http_url(pointer, &url, &mut found);
            if !found.is_empty() {
                errors.push(FieldError::new(
                    pointer,
                    format!("`{value}` is not an absolute http:// or https:// URL with its references resolved"),
                ));
            }
        }
        Err(e) => errors.push(FieldError::new(pointer, e)),
    }
}

/// Checks that `value` is an absolute http(s) URL with a host.
pub fn check_http_url(pointer: &str, value: &str, errors: &mut Vec<FieldError>) {
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        Ok(u) => errors.push(FieldError::new(
            pointer,
            format!(
                "`{value}` has scheme `{}`; an absolute http:// or https:// URL is required",
                u.scheme()
            ),
        )),
        Err(e) => errors.push(FieldError::new(
            pointer,
            format!("`{value}` is not an absolute URL ({e})"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset() -> Asset {
        Asset {
            id: "air-1".into(),
            title: "Air quality".into(),
            description: String::new(),
            keywords: vec!["air".into()],
            themes: vec![],
            spatial: None,
            data_model: Some("AirQualityObserved".into()),
            data_model_schema: None,
            license: None,
            media_type: None,
            personal_data: None,
            data_address: DataAddress::HttpApi {
                url: "http://127.0.0.1:1/x".into(),
                method: "GET".into(),
                credentials: None,
            },
        }
    }

    #[test]
    fn valid_asset_has_no_errors() {
        assert_eq!(asset().validate(), vec![]);
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut a = asset();
        a.id = "a/b".into();
        a.title = " ".into();
        a.data_address = DataAddress::LiveStream {
            source: StreamSource::HttpPoll,
            url: "ftp://x".into(),
            interval_secs: None,
        };
        let pointers: Vec<_> = a.validate().into_iter().map(|e| e.pointer).collect();
        assert_eq!(
            pointers,
            [
                "/id",
                "/title",
                "/dataAddress/url",
                "/dataAddress/intervalSecs"
            ]
        );
    }

    #[test]
    fn file_paths_cannot_escape() {
        let mut a = asset();
        a.data_address = DataAddress::File {
            path: "data/../../etc/passwd".into(),
            media_type: None,
        };
        assert_eq!(a.validate()[0].pointer, "/dataAddress/path");
    }

    fn personal() -> PersonalData {
        serde_json::from_value(serde_json::json!({
            "subjectField": "refCitizen",
            "categories": ["pd:Location"],
            "purposes": ["dpv:ServiceProvision"]
        }))
        .unwrap()
    }

    #[test]
    fn a_declaration_from_before_the_new_fields_reads_as_consent_based_and_writes_back_unchanged() {
        let old = serde_json::json!({"subjectField": "refCitizen", "categories": ["pd:Location"],
            "purposes": ["dpv:ServiceProvision"]});
        let pd: PersonalData = serde_json::from_value(old.clone()).unwrap();
        assert_eq!(pd.lawful_basis, LawfulBasis::Consent);
        assert!(pd.is_consent_based());
        assert_eq!(
            (pd.retention.as_deref(), pd.jurisdiction.as_deref()),
            (None, None)
        );
        assert!(pd.storage_locations.is_empty());
        assert_eq!(serde_json::to_value(&pd).unwrap(), old);
    }

    #[test]
    fn the_new_fields_read_and_write_in_dpv_terms() {
        let pd: PersonalData = serde_json::from_value(serde_json::json!({
            "subjectField": "refCitizen", "categories": ["pd:Location"],
            "purposes": ["dpv:ServiceProvision"], "lawfulBasis": "eu-gdpr:A6-1-e",
            "retention": "P6M", "jurisdiction": "loc:SE", "storageLocations": ["loc:SE", "loc:EU"]
        }))
        .unwrap();
        assert_eq!(pd.lawful_basis, LawfulBasis::PublicTask);
        assert!(!pd.is_consent_based());
        let json = serde_json::to_value(&pd).unwrap();
        assert_eq!(json["lawfulBasis"], "dpv:PublicInterest");
        assert_eq!(json["storageLocations"][1], "loc:EU");
        let bad = serde_json::from_value::<PersonalData>(serde_json::json!({
            "subjectField": "s", "categories": [], "purposes": ["dpv:X"],
            "lawfulBasis": "dpv:Vibes"}))
        .unwrap_err()
        .to_string();
        assert!(bad.contains("unknown lawful basis `dpv:Vibes`"), "{bad}");
    }

    #[test]
    fn lawful_bases_read_from_every_spelling() {
        let table = [
            ("dpv:Consent", Some(LawfulBasis::Consent)),
            ("https://w3id.org/dpv#Contract", Some(LawfulBasis::Contract)),
            ("eu-gdpr:A6-1-c", Some(LawfulBasis::LegalObligation)),
            ("dpv:PublicInterest", Some(LawfulBasis::PublicTask)),
            (
                "https://w3id.org/dpv/legal/eu/gdpr#A6-1-a",
                Some(LawfulBasis::Consent),
            ),
            ("dpv:LegitimateInterest", None),
            ("Consent", None),
            ("eu-gdpr:A6-1-f", None),
        ];
        for (term, expected) in table {
            assert_eq!(LawfulBasis::from_term(term), expected, "{term}");
        }
        for basis in LawfulBasis::ALL {
            assert_eq!(LawfulBasis::from_term(basis.dpv_term()), Some(basis));
            assert_eq!(LawfulBasis::from_term(basis.gdpr_article()), Some(basis));
        }
    }

    #[test]
    fn retention_is_an_iso_8601_duration() {
        let table = [
            ("P6M", true),
            ("P1Y6M", true),
            ("P30D", true),
            ("P2W", true),
            ("PT12H", true),
            ("P1DT1H30M", true),
            ("P1Y2M3W4DT5H6M7S", true),
            ("P", false),
            ("PT", false),
            ("P1DT", false),
            ("6M", false),
            ("P6", false),
            ("PM", false),
            ("P1M1Y", false),
            ("P1Y1Y", false),
            ("P1.5Y", false),
            ("P-1D", false),
            ("p6m", false),
            ("P1H", false),
            ("PT1D", false),
            ("P0D", false),
            ("P9999999999D", false),
        ];
        for (value, ok) in table {
            let mut errors = Vec::new();
            check_duration("/r", value, &mut errors);
            assert_eq!(errors.is_empty(), ok, "{value}: {errors:?}");
        }
        assert_eq!(
            IsoDuration::parse("P1Y2M3W4DT5H6M7S"),
            Some(IsoDuration {
                years: 1,
                months: 2,
                weeks: 3,
                days: 4,
                hours: 5,
                minutes: 6,
                seconds: 7
            })
        );
        assert_eq!(
            IsoDuration::parse("PT90M"),
            Some(IsoDuration {
                minutes: 90,
                ..IsoDuration::default()
            })
        );
    }

    #[test]
    fn each_bad_personal_data_field_is_named() {
        let mut a = asset();
        let mut pd = personal();
        pd.purposes.clear();
        pd.retention = Some("six months".into());
        pd.jurisdiction = Some(" ".into());
        pd.storage_locations = vec!["loc:SE".into(), "\n".into()];
        a.personal_data = Some(pd);
        let pointers: Vec<_> = a.validate().into_iter().map(|e| e.pointer).collect();
        assert_eq!(
            pointers,
            [
                "/personalData/purposes",
                "/personalData/retention",
                "/personalData/jurisdiction",
                "/personalData/storageLocations/1"
            ]
        );
        let mut a = asset();
        a.personal_data = Some(PersonalData {
            retention: Some("P6M".into()),
            jurisdiction: Some("loc:SE".into()),
            storage_locations: vec!["loc:SE".into()],
            ..personal()
        });
        assert_eq!(a.validate(), vec![]);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let v = serde_json::json!({"id":"x","title":"t","colour":"red",
            "dataAddress":{"type":"HttpApi","url":"http://a"}});
        let err = serde_json::from_value::<Asset>(v).unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
    }
}
