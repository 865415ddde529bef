//! The federated catalog in the store: the sources (other connectors, added by hand or found in the
//! federation's member directory) with their crawl state, their datasets, and the term index searched
//! in the database (the same tables and statements on SQLite and PostgreSQL), so replicas share it and
//! nothing is searched in memory. Words match across Swedish and English inflections: a dataset's
//! terms are its words and their Snowball stems in both languages, and a query word matches every term
//! that starts with one of its stems.
//!
//! A crawl stages each page of a source's catalog under a new generation as it arrives (invisible to
//! search), and [`Store::commit_crawl`] makes the new generation the source's live one, writes its term
//! index and drops the old one in one transaction: readers see either the old catalog or the new one. A
//! failed crawl drops what it staged and leaves the last good catalog, marked stale.
//!
//! Ranking is the same on both backends and depends on the dataset only (not on the rest of the
//! corpus), so keyset paging over `(score, city, address, dataset id)` stays stable while other
//! sources are replaced: for each query word, 10 when it starts a word of the title, 5 of a keyword,
//! theme or data model, 2 of the description, 1 of the city or id.
//!
//! A dataset's id carries its *bucket* (`id >> 20`): the datasets of one source generation that share
//! data model, themes, licence and access (`fed_buckets`, with their count), and its place in the
//! bucket (the low bits). Every filter is a property of a bucket; each process keeps the live buckets
//! with their sources' values (`directory`, read again when the cache's revision changed), so filters,
//! facets and the order of sources cost no statement. The term index (`fed_terms`, see
//! `terms` and ADR 0011) keeps for each term and bucket which of the bucket's datasets have the term in
//! which column, so a search with words reads a few rows per bucket (the terms its words start, in live
//! buckets that pass the filters), and computes from them each hit's id and score, the total and the
//! facets exactly, without visiting a dataset; it orders the hits by score and their source's
//! `(city, address)`, and reads the page in one statement: the hits of the few (score, source) groups
//! that hold it, ordered by dataset id there and cut at the page's end, with their bodies. Without
//! words, the buckets' counts are summed.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use base64::Engine;
use caap_catalog::remote::RemoteDataset;
use caap_catalog::search::CachedDataset;
use chrono::{DateTime, Utc};
use rust_stemmers::{Algorithm, Stemmer};
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value as DbValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::identity::{get, sql};
use super::{Store, StoreError, from_millis, millis};

mod directory;
mod terms;

pub(crate) use directory::Directory;
use directory::{Filters, REVISION};

use terms::Bits;

/// How a source came into the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceOrigin {
    /// `caap catalog fetch` or `caap catalog sources add`: kept until removed by hand.
    Manual,
    /// The federation's member directory: removed when the member leaves it.
    Directory,
}

impl SourceOrigin {
    fn as_str(self) -> &'static str {
        match self {
            SourceOrigin::Manual => "manual",
            SourceOrigin::Directory => "directory",
        }
    }
    fn parse(s: &str) -> Self {
        if s == "directory" {
            SourceOrigin::Directory
        } else {
            SourceOrigin::Manual
        }
    }
}

/// Where a source's crawling stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceState {
    /// Not fetched yet.
    New,
    /// The last crawl succeeded.
    Fresh,
    /// The last crawl failed; the datasets of the last good one are still served, marked stale.
    Stale,
    /// Never fetched successfully.
    Failing,
}

impl SourceState {
    fn parse(s: &str) -> Self {
        match s {
            "fresh" => SourceState::Fresh,
            "stale" => SourceState::Stale,
            "failing" => SourceState::Failing,
            _ => SourceState::New,
        }
    }
}

/// A catalog source of the federated cache, with its crawl state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogSourceInfo {
    /// The DSP address its catalog is fetched from.
    pub counter_party_address: String,
    /// The provider's participant id.
    pub participant_id: String,
    /// The provider's display name.
    pub city: String,
    /// How it came into the cache.
    pub origin: SourceOrigin,
    /// Where its crawling stands.
    pub state: SourceState,
    /// When its catalog was last fetched successfully.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetched_at: Option<DateTime<Utc>>,
    /// When it was last tried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempted_at: Option<DateTime<Utc>>,
    /// Datasets served from it.
    pub dataset_count: i64,
    /// Failed crawls since the last success.
    pub failures: i64,
    /// Why the last crawl failed (cleared by a success).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When it is crawled next.
    pub next_crawl_at: DateTime<Utc>,
}

/// The last reading of the federation's member directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryStatus {
    /// Where it is read.
    pub url: String,
    /// When it was last tried.
    pub attempted_at: DateTime<Utc>,
    /// When it was last read successfully.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_at: Option<DateTime<Utc>>,
    /// Members with a connector at the last success.
    pub members: i64,
    /// Failed readings since the last success.
    pub failures: i64,
    /// Why the last reading failed (cleared by a success).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A source to keep in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSource {
    /// Its DSP address.
    pub address: String,
    /// Its participant id, if known.
    pub participant_id: String,
    /// Its display name.
    pub city: String,
}

/// A search over the federated cache: free text and filters, every given condition must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FederatedQuery {
    /// Free text: every word must occur (Swedish and English inflections match) in the title,
    /// description, keywords, themes, data model or city.
    #[serde(default)]
    pub q: Option<String>,
    /// A theme, exactly (case-insensitive).
    #[serde(default)]
    pub theme: Option<String>,
    /// A Smart Data Model type, exactly (case-insensitive).
    #[serde(default)]
    pub data_model: Option<String>,
    /// A city (the provider's name) or participant id, exactly (case-insensitive).
    #[serde(default)]
    pub city: Option<String>,
    /// A licence IRI, exactly (case-insensitive).
    #[serde(default)]
    pub licence: Option<String>,
    /// `open` or `negotiable`.
    #[serde(default)]
    pub access: Option<String>,
    /// The `next` token of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Hits per page (1 to 500, default 50).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FederatedHit {
    /// Higher is more relevant.
    pub score: i64,
    /// The dataset and where it came from.
    #[serde(flatten)]
    pub item: CachedDataset,
    /// `open` or `negotiable`.
    pub access: &'static str,
    /// The dataset's licence, if it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub licence: Option<String>,
    /// When its catalog was last fetched.
    pub fetched_at: DateTime<Utc>,
    /// The last crawl of its source failed; this is from the last good one.
    pub stale: bool,
}

/// A value of a facet and how many hits have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FacetCount {
    /// The value.
    pub value: String,
    /// Hits with it.
    pub count: u64,
}

/// Counts of the hits (all pages) by city, data model, theme, licence and access.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Facets {
    /// By city.
    pub city: Vec<FacetCount>,
    /// By Smart Data Model type.
    pub data_model: Vec<FacetCount>,
    /// By theme (a dataset with two themes counts under both).
    pub theme: Vec<FacetCount>,
    /// By licence.
    pub licence: Vec<FacetCount>,
    /// `open` / `negotiable`.
    pub access: Vec<FacetCount>,
}

/// One page of search results.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchPage {
    /// Hits on all pages.
    pub total: u64,
    /// This page's hits, best first.
    pub items: Vec<FederatedHit>,
    /// The token of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// Counts over all hits.
    pub facets: Facets,
}

/// Why a search was refused.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The query is not valid.
    #[error("{pointer}: {message}")]
    Invalid {
        /// The parameter.
        pointer: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Federated searches that run at once per core on SQLite; the others wait their turn (first come,
/// first served). On SQLite a search is this process's CPU work, but each statement is a hand-off to a
/// connection's thread and back: two per core kept both cores busier than one (at 16 clients over
/// 300,000 datasets, 430 text searches/s instead of 377) without holding more than a few hundred KiB
/// each (a search keeps its hits per bucket and score, as positions).
pub const SEARCHES_PER_CORE: usize = 2;

/// How many federated searches may run at once: on SQLite [`SEARCHES_PER_CORE`] per core; on
/// PostgreSQL, where the database does most of the work, one per pooled connection
/// (`max_connections`; the gate then only bounds the memory of searches waiting for a connection). Taking turns per core on PostgreSQL halved
/// the bench's text throughput at 16 clients.
pub(crate) fn search_permits(backend: DbBackend, max_connections: u32) -> usize {
    if backend == DbBackend::Postgres {
        return usize::try_from(max_connections).unwrap_or(1).max(1);
    }
    std::thread::available_parallelism()
        .map(std::num::NonZeroUsize::get)
        .unwrap_or(1)
        * SEARCHES_PER_CORE
}

type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Most values listed per facet.
const FACET_VALUES: usize = 100;
/// Most buckets a search with filters names in its statement (more are left out as its rows arrive).
#[cfg(not(test))]
const MAX_LISTED_BUCKETS: usize = 256;
/// In tests two, so the term index's scan test takes both ways (its corpora have a few dozen buckets).
#[cfg(test)]
const MAX_LISTED_BUCKETS: usize = 2;
/// Most rows of a word's terms counted to find a search's rarest word (a common word's 7,200 cost
/// PostgreSQL 1 ms to count; 1,024, 0.17 ms).
const COUNT_UP_TO: usize = 1024;
/// Most words of a query.
const MAX_WORDS: usize = 8;

// ---------------------------------------------------------------------------------------------
// Words and stems

/// The words of a text: lower-cased runs of letters and digits; a camel-cased word also gives its
/// parts (`OffStreetParking`: `offstreetparking`, `off`, `street`, `parking`).
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for raw in text.split(|c: char| !c.is_alphanumeric()) {
        if raw.is_empty() {
            continue;
        }
        out.push(raw.to_lowercase());
        let mut part = String::new();
        let mut parts = Vec::new();
        let mut prev_lower = false;
        for c in raw.chars() {
            if c.is_uppercase() && prev_lower && !part.is_empty() {
                parts.push(std::mem::take(&mut part));
            }
            prev_lower = c.is_lowercase() || c.is_numeric();
            part.extend(c.to_lowercase());
        }
        if !parts.is_empty() {
            parts.push(part);
            out.extend(parts);
        }
    }
    out
}

/// The Swedish and English stems of a word (one when they agree).
fn stems(word: &str) -> Vec<String> {
    let sv = Stemmer::create(Algorithm::Swedish).stem(word).into_owned();
    let en = Stemmer::create(Algorithm::English).stem(word).into_owned();
    if sv == en { vec![sv] } else { vec![sv, en] }
}

/// The indexed terms of a text: each word and its stems, space-separated with a space before each
/// (so `instr(terms, ' ' || stem)` finds a word starting with the stem).
fn terms(texts: &[&str]) -> String {
    let mut seen = HashSet::new();
    let mut out = String::from(" ");
    for text in texts {
        for w in words(text) {
            let mut all = stems(&w);
            all.push(w);
            for t in all {
                if seen.insert(t.clone()) {
                    out.push_str(&t);
                    out.push(' ');
                }
            }
        }
    }
    out
}

/// The indexed terms of a dataset of `city`, per scored column (see [`SCORED_COLUMNS`]): title;
/// keywords, themes and data model; description; city and id.
pub(super) fn column_terms(d: &RemoteDataset, city: &str) -> [String; 4] {
    let tags: Vec<&str> = d
        .keywords
        .iter()
        .chain(&d.themes)
        .chain(&d.data_model)
        .map(String::as_str)
        .collect();
    [
        terms(&[d.title.as_deref().unwrap_or_default()]),
        terms(&tags),
        terms(&[d.description.as_deref().unwrap_or_default()]),
        terms(&[city, &d.id]),
    ]
}

/// A query word with its stems.
pub(super) struct QueryWord {
    word: String,
    stems: Vec<String>,
}

impl QueryWord {
    /// What an indexed word may start with to match: the stems and the word, leaving out any that
    /// starts with another (`parkering` is found by `parker` already).
    pub(super) fn prefixes(&self) -> Vec<&str> {
        let all: Vec<&str> = self
            .stems
            .iter()
            .chain(std::iter::once(&self.word))
            .map(String::as_str)
            .collect();
        covering(&all)
    }

    /// The stems, leaving out any that starts with another. A column's score looks for these: a
    /// longer one would find nothing more.
    pub(super) fn stem_prefixes(&self) -> Vec<&str> {
        let stems: Vec<&str> = self.stems.iter().map(String::as_str).collect();
        covering(&stems)
    }
}

/// The prefixes of `all` that no other one of them starts (the first of equal ones).
fn covering<'a>(all: &[&'a str]) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for (i, p) in all.iter().enumerate() {
        let covered = all
            .iter()
            .enumerate()
            .any(|(j, o)| j != i && p.starts_with(o) && (o.len() < p.len() || j < i));
        if !covered {
            out.push(p);
        }
    }
    out
}

pub(super) fn query_words(q: &str) -> Vec<QueryWord> {
    let mut seen = HashSet::new();
    q.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| seen.insert(w.clone()))
        .take(MAX_WORDS)
        .map(|word| QueryWord {
            stems: stems(&word),
            word,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// What is kept of a dataset besides its JSON

/// The dataset's licence (`dct:license` on the dataset or its first distribution that has one).
fn licence_of(raw: &Value) -> Option<String> {
    fn direct(v: &Value) -> Option<String> {
        let obj = v.as_object()?;
        let l = ["license", "dct:license", "http://purl.org/dc/terms/license"]
            .iter()
            .find_map(|k| obj.get(*k))?;
        let l = match l {
            Value::Array(a) => a.first()?,
            other => other,
        };
        match l {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o
                .get("@id")
                .or_else(|| o.get("@value"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            _ => None,
        }
        .filter(|s| !s.is_empty())
    }
    direct(raw).or_else(|| {
        let obj = raw.as_object()?;
        let d = ["distribution", "dcat:distribution"]
            .iter()
            .find_map(|k| obj.get(*k))?;
        match d {
            Value::Array(a) => a.iter().find_map(direct),
            other => direct(other),
        }
    })
}

/// `open` when one of the dataset's offers permits use without constraints or duties (and has no
/// prohibitions or obligations), else `negotiable`.
fn access_of(raw: &Value) -> &'static str {
    let list = |v: Option<&Value>| -> Vec<Value> {
        match v {
            Some(Value::Array(a)) => a.clone(),
            Some(v @ Value::Object(_)) => vec![v.clone()],
            _ => Vec::new(),
        }
    };
    let get = |v: &Value, key: &str| -> Option<Value> {
        let o = v.as_object()?;
        o.get(key)
            .or_else(|| o.get(&format!("odrl:{key}")))
            .or_else(|| o.get(&format!("http://www.w3.org/ns/odrl/2/{key}")))
            .cloned()
    };
    let offers = list(get(raw, "hasPolicy").as_ref());
    let open = offers.iter().any(|offer| {
        let permissions = list(get(offer, "permission").as_ref());
        let restricted = ["prohibition", "obligation"]
            .iter()
            .any(|k| !list(get(offer, k).as_ref()).is_empty());
        !restricted
            && !permissions.is_empty()
            && permissions.iter().all(|p| {
                list(get(p, "constraint").as_ref()).is_empty()
                    && list(get(p, "duty").as_ref()).is_empty()
            })
    });
    if open { "open" } else { "negotiable" }
}

fn lower(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase)
}

// ---------------------------------------------------------------------------------------------
// Cursor

#[derive(Serialize, Deserialize)]
struct CursorKey(i64, String, String, String);

fn encode_cursor(key: &CursorKey) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(key).unwrap_or_default())
}

fn decode_cursor(token: &str) -> Result<CursorKey, SearchError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| SearchError::Invalid {
            pointer: "/cursor",
            message: "not a cursor of this search; start again without one".into(),
        })
}

// ---------------------------------------------------------------------------------------------
// Statement building

/// SQL text with its values, `$n` placeholders numbered as values are pushed.
#[derive(Default)]
struct Sql {
    text: String,
    values: Vec<DbValue>,
}

impl Sql {
    fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }
    fn bind(&mut self, v: impl Into<DbValue>) -> &mut Self {
        self.values.push(v.into());
        self.text.push_str(&format!("${}", self.values.len()));
        self
    }
    fn statement(self, backend: DbBackend) -> Statement {
        Statement::from_sql_and_values(backend, sql(backend, &self.text), self.values)
    }
}

/// A dataset's id is its bucket's id shifted by this, plus its place in the bucket.
const BUCKET_SHIFT: u32 = 20;
/// Datasets in one bucket (a fuller one continues in a new bucket with the same values).
const BUCKET_SIZE: i64 = 1 << BUCKET_SHIFT;

/// What the datasets of one bucket share (besides their source generation).
struct BucketKey {
    data_model: Option<String>,
    themes: String,
    themes_key: String,
    licence: Option<String>,
    access: &'static str,
}

impl BucketKey {
    /// Binds `data_model, model_key, themes, themes_key, licence, licence_key, access`.
    fn bind_values(&self, s: &mut Sql) {
        s.bind(self.data_model.clone())
            .push(", ")
            .bind(self.data_model.as_deref().map(str::to_lowercase))
            .push(", ")
            .bind(self.themes.clone())
            .push(", ")
            .bind(self.themes_key.clone())
            .push(", ")
            .bind(self.licence.clone())
            .push(", ")
            .bind(self.licence.as_deref().map(str::to_lowercase))
            .push(", ")
            .bind(self.access);
    }

    /// One string for lookups (`None` and an empty value differ).
    fn key(&self) -> String {
        let opt = |v: &Option<String>| match v {
            Some(v) => format!("+{}", v.to_lowercase()),
            None => "-".to_owned(),
        };
        format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}",
            opt(&self.data_model),
            self.themes_key,
            opt(&self.licence),
            self.access
        )
    }
}

/// The buckets a staged page writes into: their ids and counts, written back at the page's end.
#[derive(Default)]
struct Buckets {
    by_key: std::collections::HashMap<String, usize>,
    /// (bucket id, datasets in it).
    ids: Vec<(i64, i64)>,
}

impl Buckets {
    /// The bucket with room for one more dataset of `address`'s `generation` like `b`: the last one
    /// with these values, or a new one.
    async fn slot<C: ConnectionTrait>(
        &mut self,
        db: &C,
        address: &str,
        generation: i64,
        b: &BucketKey,
    ) -> Result<usize, StoreError> {
        let key = b.key();
        if let Some(&i) = self.by_key.get(&key)
            && self.ids[i].1 < BUCKET_SIZE
        {
            return Ok(i);
        }
        let backend = db.get_database_backend();
        let mut found = None;
        if !self.by_key.contains_key(&key) {
            let mut s = Sql::default();
            s.push("SELECT id, n FROM fed_buckets WHERE address = ")
                .bind(address.to_owned())
                .push(" AND generation = ")
                .bind(generation)
                .push(" AND bucket_key = ")
                .bind(key.clone())
                .push(" ORDER BY id DESC LIMIT 1");
            if let Some(row) = db.query_all_raw(s.statement(backend)).await?.first() {
                let (id, n): (i64, i64) = (get(row, "id")?, get(row, "n")?);
                if n < BUCKET_SIZE {
                    found = Some((id, n));
                }
            }
        }
        let entry = match found {
            Some(e) => e,
            None => {
                let mut s = Sql::default();
                s.push(
                    "INSERT INTO fed_buckets (bucket_key, address, generation, data_model, model_key, \
                     themes, themes_key, licence, licence_key, access, n) VALUES (",
                )
                .bind(key.clone())
                .push(", ")
                .bind(address.to_owned())
                .push(", ")
                .bind(generation)
                .push(", ");
                b.bind_values(&mut s);
                s.push(", 0) RETURNING id");
                let rows = db.query_all_raw(s.statement(backend)).await?;
                let id: i64 = rows
                    .first()
                    .ok_or_else(|| StoreError::Corrupt("bucket".into(), "no id".into()))
                    .and_then(|r| get(r, "id"))?;
                if id >= 1 << (63 - BUCKET_SHIFT) {
                    return Err(StoreError::Corrupt(
                        "bucket".into(),
                        "the federated cache ran out of bucket ids".into(),
                    ));
                }
                (id, 0)
            }
        };
        self.ids.push(entry);
        self.by_key.insert(key, self.ids.len() - 1);
        Ok(self.ids.len() - 1)
    }
}

/// The scored columns (their terms' column in `fed_datasets`, in the order of the term index's sets)
/// and their weights (see the module's documentation).
pub(super) const SCORED_COLUMNS: [(&str, i64); 4] = [
    ("title_terms", 10),
    ("tag_terms", 5),
    ("text_terms", 2),
    ("other_terms", 1),
];

/// The hits of one bucket, per score: their places in the bucket, ascending.
struct BucketHits {
    bucket: i64,
    groups: Vec<(i64, Vec<u32>)>,
}

/// A hit a page may hold: its id, negated score and its source's place in the order.
#[derive(Clone, Copy)]
struct Pick {
    id: i64,
    neg: i64,
    rank: usize,
}

/// A row of a page: where it sorts (negated score, source's place, dataset id) and the hit.
struct PageRow {
    neg: i64,
    rank: usize,
    dataset_id: String,
    hit: FederatedHit,
}

/// A page of hits, whether more follow, and the last one's key.
#[derive(Default)]
struct Page {
    items: Vec<FederatedHit>,
    more: bool,
    last: Option<CursorKey>,
}

/// Hits that share a source and the values counted in facets, and how many they are.
struct FacetGroup {
    city: String,
    data_model: Option<String>,
    themes: String,
    licence: Option<String>,
    access: String,
    n: u64,
}

impl FacetGroup {
    fn of(dir: &Directory, b: &directory::DirBucket, n: u64) -> Self {
        FacetGroup {
            city: dir.source(b).city.clone(),
            data_model: b.data_model.clone(),
            themes: b.themes.clone(),
            licence: b.licence.clone(),
            access: b.access.clone(),
            n,
        }
    }
}

/// The total and the facets of a search's groups.
fn facets_of(groups: &[FacetGroup]) -> (u64, Facets) {
    let mut counts: [BTreeMap<String, u64>; 5] = Default::default();
    let mut total = 0;
    for g in groups {
        total += g.n;
        let mut add = |i: usize, v: Option<&str>| {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                match counts[i].get_mut(v) {
                    Some(n) => *n += g.n,
                    None => {
                        counts[i].insert(v.to_owned(), g.n);
                    }
                }
            }
        };
        add(0, Some(&g.city));
        add(1, g.data_model.as_deref());
        for t in g.themes.split('\n') {
            add(2, Some(t));
        }
        add(3, g.licence.as_deref());
        add(4, Some(&g.access));
    }
    let [city, data_model, theme, licence, access] = counts.map(|m| {
        let mut v: Vec<FacetCount> = m
            .into_iter()
            .map(|(value, count)| FacetCount { value, count })
            .collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
        v.truncate(FACET_VALUES);
        v
    });
    (
        total,
        Facets {
            city,
            data_model,
            theme,
            licence,
            access,
        },
    )
}

/// Ids, comma-separated.
fn id_text(ids: &[i64]) -> String {
    let mut out = String::with_capacity(ids.len() * 12);
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{id}");
    }
    out
}

impl Store {
    fn backend_(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// `expr` is one of `ids`, with the ids as one value (a long `IN` list would be a statement per
    /// length): on PostgreSQL an array, which it looks up by index (as a subquery it may hash-join every
    /// bucket with its source first: 5.7 ms instead of 1.4 for 600 buckets); on SQLite a list it indexes.
    fn in_ids(&self, s: &mut Sql, expr: &str, ids: &[i64]) {
        if self.backend_() == DbBackend::Postgres {
            s.push(&format!("{expr} = ANY(string_to_array("))
                .bind(id_text(ids))
                .push(", ',')::bigint[])");
        } else {
            s.push(&format!("{expr} IN (SELECT value FROM json_each("))
                .bind(format!("[{}]", id_text(ids)))
                .push("))");
        }
    }

    /// One page of a search, with the total and the facets over every hit.
    pub async fn search_federated(
        &self,
        q: &FederatedQuery,
        limit: u32,
    ) -> Result<SearchPage, SearchError> {
        let words = q.q.as_deref().map(query_words).unwrap_or_default();
        if q.q.as_deref().is_some_and(|t| !t.trim().is_empty()) && words.is_empty() {
            return Err(SearchError::Invalid {
                pointer: "/q",
                message: "has no words to search for".into(),
            });
        }
        if let Some(a) = lower(&q.access)
            && a != "open"
            && a != "negotiable"
        {
            return Err(SearchError::Invalid {
                pointer: "/access",
                message: format!("`{a}` is neither `open` nor `negotiable`"),
            });
        }
        let after = q.cursor.as_deref().map(decode_cursor).transpose()?;
        let _turn = self
            .search_gate
            .acquire()
            .await
            .map_err(|e| StoreError::Db(sea_orm::DbErr::Custom(e.to_string())))?;
        let filters = Filters::of(q);
        let (page, groups) = if !words.is_empty() {
            self.search_indexed(&filters, &words, after.as_ref(), limit)
                .await?
        } else {
            let dir = self.directory().await?;
            let page = self.page_sql(&dir, &filters, after.as_ref(), limit).await?;
            let groups = dir
                .buckets
                .iter()
                .filter(|b| dir.passes(b, &filters))
                .map(|b| FacetGroup::of(&dir, b, u64::try_from(b.n).unwrap_or_default()))
                .collect();
            (page, groups)
        };
        let next = page
            .more
            .then(|| page.last.as_ref().map(encode_cursor))
            .flatten();
        let items = page.items;
        let (total, facets) = facets_of(&groups);
        Ok(SearchPage {
            total,
            items,
            next,
            facets,
        })
    }

    /// The page of a search without words: every score is the same, the keys alone order it. The
    /// sources with matching buckets in their `(city, address)` order (from the directory), then each
    /// one's dataset ids in order from its key index, only as many as the page still needs: a filter
    /// that matches nothing or little visits no dataset in vain. Then the page's rows.
    async fn page_sql(
        &self,
        dir: &Directory,
        filters: &Filters,
        after: Option<&CursorKey>,
        limit: u32,
    ) -> Result<Page, StoreError> {
        let backend = self.backend_();
        let want = limit as usize + 1;
        let mut keys: Vec<(String, String, String, i64)> = Vec::new();
        for source in &dir.sources {
            if keys.len() >= want {
                break;
            }
            let (city, address) = (&source.city, &source.address);
            if let Some(CursorKey(_, c, a, _)) = after
                && (city, address) < (c, a)
            {
                continue;
            }
            let buckets: Vec<i64> = source
                .buckets
                .iter()
                .map(|&b| &dir.buckets[b])
                .filter(|b| dir.passes(b, filters))
                .map(|b| b.id)
                .collect();
            if buckets.is_empty() {
                continue;
            }
            let mut s = Sql::default();
            s.push("SELECT id, dataset_id FROM fed_datasets WHERE address = ")
                .bind(address.clone())
                .push(" AND generation = ")
                .bind(source.generation);
            if let Some(CursorKey(_, c, a, id)) = after
                && (c, a) == (city, address)
            {
                s.push(" AND dataset_id > ").bind(id.clone());
            }
            s.push(" AND ");
            self.in_ids(&mut s, &format!("(id >> {BUCKET_SHIFT})"), &buckets);
            s.push(" ORDER BY dataset_id LIMIT ")
                .bind(i64::try_from(want - keys.len()).unwrap_or(i64::MAX));
            for r in self.db.query_all_raw(s.statement(backend)).await? {
                keys.push((
                    city.clone(),
                    address.clone(),
                    get(&r, "dataset_id")?,
                    get(&r, "id")?,
                ));
            }
        }
        let more = keys.len() > limit as usize;
        keys.truncate(limit as usize);
        // Every score is the same: the keys' order is the page's (as the source's place).
        let picks: Vec<Pick> = keys
            .iter()
            .enumerate()
            .map(|(rank, &(.., id))| Pick { id, neg: -1, rank })
            .collect();
        let last = keys
            .pop()
            .map(|(city, address, dataset_id, _)| CursorKey(-1, city, address, dataset_id));
        let rows = self.page_rows(&picks, None, picks.len()).await?;
        Ok(Page {
            items: rows.into_iter().map(|r| r.hit).collect(),
            more,
            last,
        })
    }

    /// The hits of the words in buckets that pass the filters, per bucket (ascending) and score, from
    /// the term index, with the cache's revision read in the first statement (none if no statement was
    /// needed). The rows of the terms each word starts, as one string: the rarest word's (with several
    /// words, counted first from the index's keys) in the buckets that pass the filters (from the
    /// directory), the other words' in the rarest one's buckets. A bucket's hits are the datasets every
    /// word matches, each one's score from the columns its words' stems are in.
    async fn scored_hits(
        &self,
        dir: &Directory,
        filters: &Filters,
        words: &[QueryWord],
    ) -> Result<(Option<i64>, Vec<BucketHits>), StoreError> {
        let backend = self.backend_();
        let postgres = backend == DbBackend::Postgres;
        let agg = if postgres {
            "string_agg"
        } else {
            "group_concat"
        };
        let ranges = |s: &mut Sql, word: &QueryWord| {
            s.push("(");
            for (i, prefix) in word.prefixes().into_iter().enumerate() {
                s.push(if i > 0 { " OR (term >= " } else { "(term >= " })
                    .bind(prefix.to_owned())
                    .push(" AND term < ")
                    .bind(format!("{prefix}\u{10FFFF}"))
                    .push(")");
            }
            s.push(")");
        };
        // The buckets that pass the filters (from the directory).
        let mut revision = None;
        let passing = filters.any().then(|| dir.passing(filters));
        if passing.as_ref().is_some_and(Vec::is_empty) {
            return Ok((None, Vec::new()));
        }
        let mut listed = passing.as_ref().filter(|p| p.len() <= MAX_LISTED_BUCKETS);
        // With several words, how many rows each has (the index's keys alone, up to
        // `COUNT_UP_TO`: beyond it a word is common either way): the rarest one's rows
        // are read whole, the others' only in its buckets ("luftkvalitet stationen": 300 rows of the
        // first, 300 of the second's 7,200, where reading every bucket each word is in first cost
        // 1.7 ms of SQLite's time and 0.9 after).
        let mut rarest = Some(0);
        if words.len() > 1 {
            let mut s = Sql::default();
            s.push(&format!("SELECT {REVISION} AS revision"));
            for (w, word) in words.iter().enumerate() {
                s.push(", (SELECT COUNT(*) FROM (SELECT 1 AS one FROM fed_terms WHERE ");
                ranges(&mut s, word);
                s.push(&format!(" LIMIT {COUNT_UP_TO}) c) AS n{w}"));
            }
            let rows = self.db.query_all_raw(s.statement(backend)).await?;
            let Some(row) = rows.first() else {
                return Ok((None, Vec::new()));
            };
            revision = get::<Option<i64>>(row, "revision")?;
            let mut fewest = i64::MAX;
            for w in 0..words.len() {
                let n: i64 = get(row, &format!("n{w}"))?;
                if n == 0 {
                    return Ok((revision, Vec::new()));
                }
                if n < fewest {
                    (rarest, fewest) = (Some(w), n);
                }
            }
            // Fewer buckets pass the filters than the rarest word has rows: every word's rows are
            // read in those buckets, named in the statement however many ("sensor hamnen" with
            // `dataModel=StreetLight`: two common words, 300 buckets).
            if let Some(p) = passing.as_ref()
                && i64::try_from(p.len()).unwrap_or(i64::MAX) <= fewest
            {
                rarest = None;
                listed = Some(p);
            }
        }
        let row = if postgres {
            "CAST(t.w AS TEXT) || ':' || CAST(t.bucket AS TEXT) || ':' || t.term || ':' || encode(t.docs, 'hex')"
        } else {
            "t.w || ':' || t.bucket || ':' || t.term || ':' || hex(t.docs)"
        };
        let mut s = Sql::default();
        s.push(&format!(
            "SELECT {REVISION} AS revision, {agg}({row}, ',') AS h FROM ("
        ));
        for (w, word) in words.iter().enumerate() {
            if w > 0 {
                s.push(" UNION ALL ");
            }
            s.push(&format!(
                "SELECT {w} AS w, term, bucket, docs FROM fed_terms WHERE "
            ));
            ranges(&mut s, word);
            if let Some(rarest) = rarest.filter(|&r| r != w) {
                // The rarest word's buckets, as one value: PostgreSQL computes the array once and
                // looks it up on the (bucket, term) index (as a plain subquery it estimated a prefix
                // at 1 row for 1,200 and planned a nested loop); SQLite lists the subquery's rows.
                s.push(if postgres {
                    " AND bucket = ANY(ARRAY(SELECT bucket FROM fed_terms WHERE "
                } else {
                    " AND bucket IN (SELECT bucket FROM fed_terms WHERE "
                });
                ranges(&mut s, &words[rarest]);
                if let Some(listed) = listed {
                    s.push(" AND ");
                    self.in_ids(&mut s, "bucket", listed);
                }
                s.push(if postgres { "))" } else { ")" });
            } else if let Some(listed) = listed {
                // (The rarest word's, or every word's when the filters drive. A long list for one
                // word costs more to pass and index than the rows it leaves out; those are then left
                // out below.)
                s.push(" AND ");
                self.in_ids(&mut s, "bucket", listed);
            }
        }
        s.push(") t");
        let rows = self.db.query_all_raw(s.statement(backend)).await?;
        let text: Option<String> = match rows.first() {
            Some(row) => {
                revision = revision.or(get::<Option<i64>>(row, "revision")?);
                get(row, "h")?
            }
            None => None,
        };
        let corrupt =
            |row: &str, why: String| StoreError::Corrupt(format!("term index row {row}"), why);
        // Per bucket and word: the datasets it matches and, per column, those with one of its stems there.
        type Matched = Vec<Option<(Bits, [Bits; terms::COLUMNS])>>;
        let mut buckets: FastMap<i64, Matched> = FastMap::default();
        let stems: Vec<Vec<&str>> = words.iter().map(QueryWord::stem_prefixes).collect();
        let mut bytes = Vec::new();
        for r in text
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .filter(|r| !r.is_empty())
        {
            let mut parts = r.splitn(4, ':');
            let mut next = || {
                parts
                    .next()
                    .ok_or_else(|| corrupt(r, "too few fields".into()))
            };
            let (w, bucket, term, docs) = (next()?, next()?, next()?, next()?);
            let w: usize = w.parse().map_err(|_| corrupt(r, "word".into()))?;
            let bucket: i64 = bucket.parse().map_err(|_| corrupt(r, "bucket".into()))?;
            if passing
                .as_ref()
                .is_some_and(|p| p.binary_search(&bucket).is_err())
            {
                continue;
            }
            let Some(word_stems) = stems.get(w) else {
                return Err(corrupt(r, "word".into()));
            };
            terms::unhex_into(docs, &mut bytes).map_err(|e| corrupt(r, e))?;
            let m = buckets
                .entry(bucket)
                .or_insert_with(|| vec![None; words.len()]);
            let (any, columns) = m[w].get_or_insert_with(Default::default);
            let scored = word_stems.iter().any(|p| term.starts_with(p));
            terms::decode_into(&bytes, BUCKET_SIZE as usize, any, scored.then_some(columns))
                .map_err(|e| corrupt(r, e))?;
        }
        let mut out: Vec<BucketHits> = Vec::with_capacity(buckets.len());
        for (bucket, m) in buckets {
            let mut matched: Option<Bits> = None;
            for w in &m {
                let Some((any, _)) = w else {
                    matched = None;
                    break;
                };
                match matched.as_mut() {
                    Some(all) => all.and(any),
                    None => matched = Some(any.clone()),
                }
            }
            let Some(matched) = matched else {
                continue;
            };
            let mut groups: Vec<(i64, Vec<u32>)> = Vec::new();
            for pos in matched.positions() {
                let mut score = 1;
                for (_, columns) in m.iter().flatten() {
                    for (set, (_, weight)) in columns.iter().zip(SCORED_COLUMNS) {
                        if set.get(pos) {
                            score += weight;
                        }
                    }
                }
                let p = u32::try_from(pos).unwrap_or(u32::MAX);
                match groups.iter_mut().find(|(s, _)| *s == score) {
                    Some((_, ps)) => ps.push(p),
                    None => groups.push((score, vec![p])),
                }
            }
            if !groups.is_empty() {
                out.push(BucketHits { bucket, groups });
            }
        }
        out.sort_unstable_by_key(|h| h.bucket);
        Ok((revision, out))
    }

    /// A search with words: the scored hits per bucket (with the cache's revision, read in the same
    /// statement), the directory as of that revision (this process's copy, read again only if the
    /// revision moved), then one statement for the page: the ids of the hits in the fewest
    /// (score, source) groups that hold it, ordered and cut there, and those rows.
    async fn search_indexed(
        &self,
        filters: &Filters,
        words: &[QueryWord],
        after: Option<&CursorKey>,
        limit: u32,
    ) -> Result<(Page, Vec<FacetGroup>), StoreError> {
        let mut dir = match self.cached_directory() {
            Some(d) => d,
            None => self.directory().await?,
        };
        let mut attempts = 0;
        let hits = loop {
            attempts += 1;
            let (revision, mut hits) = self.scored_hits(&dir, filters, words).await?;
            let current = match revision {
                Some(r) => self.directory_as_of(r).await?,
                None => self.directory().await?,
            };
            let same = current.revision() == dir.revision();
            dir = current;
            // The rows were read for the buckets that passed the filters in the directory then; after
            // a commit meanwhile they are read again for the new one (twice more at most; then the
            // rows are kept, each bucket checked against the new directory).
            if same || !filters.any() {
                break hits;
            }
            if attempts >= 3 {
                hits.retain(|h| dir.bucket(h.bucket).is_some_and(|b| dir.passes(b, filters)));
                break hits;
            }
        };
        if hits.is_empty() {
            return Ok(Default::default());
        }

        // The hits' buckets (a bucket the directory does not know, dropped after the rows were
        // read, is left out), each one's source's place in the `(city, address)` order, and where
        // the cursor's is.
        let mut groups = Vec::new();
        let mut rank = Vec::new();
        let mut bucket_of = FastMap::default();
        for h in &hits {
            if let Some(b) = dir.bucket(h.bucket) {
                bucket_of.insert(h.bucket, groups.len());
                groups.push(FacetGroup::of(&dir, b, 0));
                rank.push(b.source);
            }
        }
        let vs_cursor: Vec<std::cmp::Ordering> = match after {
            Some(CursorKey(_, city, address, _)) => dir
                .sources
                .iter()
                .map(|s| {
                    (s.city.as_str(), s.address.as_str()).cmp(&(city.as_str(), address.as_str()))
                })
                .collect(),
            None => Vec::new(),
        };

        // Counts, and the hits not before the cursor, per (score, source).
        let mut counts = vec![0u64; groups.len()];
        let mut per_key: FastMap<(i64, usize), usize> = FastMap::default();
        let key_of = |b: usize, score: i64| -> Option<(i64, usize)> {
            let key = (-score, rank[b]);
            match after {
                Some(CursorKey(neg, ..))
                    if key.0.cmp(neg).then(vs_cursor[key.1]) == std::cmp::Ordering::Less =>
                {
                    None
                }
                _ => Some(key),
            }
        };
        for h in &hits {
            let Some(&b) = bucket_of.get(&h.bucket) else {
                continue;
            };
            for (score, positions) in &h.groups {
                counts[b] += positions.len() as u64;
                if let Some(key) = key_of(b, *score) {
                    *per_key.entry(key).or_default() += positions.len();
                }
            }
        }
        // The fewest (score, source) groups that hold the page; only their hits are picked.
        let mut keys: Vec<(i64, usize)> = per_key.keys().copied().collect();
        keys.sort_unstable();
        let mut needed = Vec::new();
        let mut held = 0;
        for k in keys {
            if held > limit as usize {
                break;
            }
            needed.push(k);
            let at_cursor = after.is_some_and(|c| k.0 == c.0 && vs_cursor[k.1].is_eq());
            if !at_cursor {
                held += per_key.get(&k).copied().unwrap_or_default();
            }
        }
        let mut picks: Vec<Pick> = Vec::new();
        for h in &hits {
            let Some(&b) = bucket_of.get(&h.bucket) else {
                continue;
            };
            for (score, positions) in &h.groups {
                if let Some((neg, rank)) = key_of(b, *score)
                    && needed.binary_search(&(neg, rank)).is_ok()
                {
                    picks.extend(positions.iter().map(|&p| Pick {
                        id: (h.bucket << BUCKET_SHIFT) | i64::from(p),
                        neg,
                        rank,
                    }));
                }
            }
        }
        // In the cursor's (score, source) group, only the datasets after its one.
        let at = after.and_then(|CursorKey(neg, _, _, id)| {
            let rank = vs_cursor.iter().position(|o| o.is_eq())?;
            Some((*neg, rank, id.as_str()))
        });
        let mut rows = self.page_rows(&picks, at, limit as usize + 1).await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let last = rows.last().map(|r| {
            let (city, address) = dir
                .sources
                .get(r.rank)
                .map(|s| (s.city.clone(), s.address.clone()))
                .unwrap_or_default();
            CursorKey(r.neg, city, address, r.dataset_id.clone())
        });
        for (g, n) in groups.iter_mut().zip(counts) {
            g.n = n;
        }
        groups.retain(|g| g.n > 0);
        let page = Page {
            items: rows.into_iter().map(|r| r.hit).collect(),
            more,
            last,
        };
        Ok((page, groups))
    }

    /// The first `limit` of `picks` in the order of results (negated score, source's place, dataset
    /// id; in the group `at` names, only datasets after its one) with their rows, in one statement
    /// (a row replaced meanwhile is left out).
    async fn page_rows(
        &self,
        picks: &[Pick],
        at: Option<(i64, usize, &str)>,
        limit: usize,
    ) -> Result<Vec<PageRow>, StoreError> {
        if picks.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let backend = self.backend_();
        let postgres = backend == DbBackend::Postgres;
        // Byte order for dataset ids on both backends (PostgreSQL's default collation is not).
        let collate = if postgres { " COLLATE \"C\"" } else { "" };
        let rank_of = |r: usize| i64::try_from(r).unwrap_or(i64::MAX);
        let mut s = Sql::default();
        s.push(
            "SELECT p.neg AS neg, p.rank AS rank, p.id AS id, p.address AS address, \
             p.dataset_id AS dataset_id, b.body AS body, p.access AS access, p.licence AS licence, \
             s.participant_id AS participant_id, s.city AS city, s.fetched_at AS fetched_at, \
             s.state AS state FROM (SELECT c.id AS id, c.neg AS neg, c.rank AS rank, \
             d.address AS address, d.dataset_id AS dataset_id, d.access AS access, \
             d.licence AS licence FROM ",
        );
        if postgres {
            let column = |f: &dyn Fn(&Pick) -> i64| {
                let v: Vec<i64> = picks.iter().map(f).collect();
                id_text(&v)
            };
            s.push("unnest(string_to_array(")
                .bind(column(&|p| p.id))
                .push(", ',')::bigint[], string_to_array(")
                .bind(column(&|p| p.neg))
                .push(", ',')::bigint[], string_to_array(")
                .bind(column(&|p| rank_of(p.rank)))
                .push(", ',')::bigint[]) AS c(id, neg, rank)");
        } else {
            let mut list = String::with_capacity(picks.len() * 24 + 2);
            list.push('[');
            for (i, p) in picks.iter().enumerate() {
                if i > 0 {
                    list.push(',');
                }
                // (Writing to a String cannot fail.)
                let _ = write!(list, "[{},{},{}]", p.id, p.neg, rank_of(p.rank));
            }
            list.push(']');
            s.push("(SELECT value ->> 0 AS id, value ->> 1 AS neg, value ->> 2 AS rank FROM json_each(")
                .bind(list)
                .push(")) c");
        }
        s.push(" JOIN fed_datasets d ON d.id = c.id");
        if let Some((neg, rank, id)) = at {
            s.push(" WHERE NOT (c.neg = ")
                .bind(neg)
                .push(" AND c.rank = ")
                .bind(rank_of(rank))
                .push(&format!(" AND d.dataset_id{collate} <= "))
                .bind(id.to_owned())
                .push(")");
        }
        s.push(&format!(
            " ORDER BY c.neg, c.rank, d.dataset_id{collate} LIMIT "
        ))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .push(&format!(
            ") p JOIN fed_bodies b ON b.id = p.id JOIN fed_sources s ON s.address = p.address \
             ORDER BY p.neg, p.rank, p.dataset_id{collate}"
        ));
        let mut out = Vec::with_capacity(limit.min(picks.len()));
        for row in self.db.query_all_raw(s.statement(backend)).await? {
            let neg: i64 = get(&row, "neg")?;
            let rank: i64 = get(&row, "rank")?;
            let fetched: Option<i64> = get(&row, "fetched_at")?;
            let dataset_id: String = get(&row, "dataset_id")?;
            let dataset: RemoteDataset = serde_json::from_str(&get::<String>(&row, "body")?)
                .map_err(|e| {
                    StoreError::Corrupt(format!("cached dataset {dataset_id}"), e.to_string())
                })?;
            out.push(PageRow {
                neg,
                rank: usize::try_from(rank).unwrap_or(usize::MAX),
                hit: FederatedHit {
                    score: -neg,
                    item: CachedDataset {
                        counter_party_address: get(&row, "address")?,
                        participant_id: get(&row, "participant_id")?,
                        city: get(&row, "city")?,
                        dataset,
                    },
                    access: if get::<String>(&row, "access")? == "open" {
                        "open"
                    } else {
                        "negotiable"
                    },
                    licence: get(&row, "licence")?,
                    fetched_at: from_millis(fetched.unwrap_or_default()),
                    stale: SourceState::parse(&get::<String>(&row, "state")?) == SourceState::Stale,
                },
                dataset_id,
            });
        }
        Ok(out)
    }

    // -----------------------------------------------------------------------------------------
    // Sources

    async fn fed_exec<C: ConnectionTrait>(db: &C, s: Sql) -> Result<u64, StoreError> {
        let backend = db.get_database_backend();
        Ok(db.execute_raw(s.statement(backend)).await?.rows_affected())
    }

    /// Adds a source (due for crawling at `due`); for a directory member already there, updates its
    /// participant id and name. A manual source found in the directory stays manual.
    pub async fn put_source(
        &self,
        source: &NewSource,
        origin: SourceOrigin,
        due: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = millis(due);
        let mut s = Sql::default();
        s.push(
            "INSERT INTO fed_sources (address, participant_id, participant_key, city, city_key, origin, \
             state, dataset_count, failures, next_crawl_at, generation) VALUES (",
        )
        .bind(source.address.clone())
        .push(", ")
        .bind(source.participant_id.clone())
        .push(", ")
        .bind(source.participant_id.to_lowercase())
        .push(", ")
        .bind(source.city.clone())
        .push(", ")
        .bind(source.city.to_lowercase())
        .push(", ")
        .bind(origin.as_str())
        .push(", 'new', 0, 0, ")
        .bind(now)
        .push(", 0) ON CONFLICT (address) DO ");
        if origin == SourceOrigin::Directory {
            s.push("UPDATE SET participant_id = ")
                .bind(source.participant_id.clone())
                .push(", participant_key = ")
                .bind(source.participant_id.to_lowercase())
                .push(", city = ")
                .bind(source.city.clone())
                .push(", city_key = ")
                .bind(source.city.to_lowercase());
        } else {
            s.push("NOTHING");
        }
        let txn = self.begin_write().await?;
        Self::fed_exec(&txn.txn, s).await?;
        Self::raise_fed_revision(&txn.txn).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Removes a source and its datasets. Returns whether it was there.
    pub async fn remove_source(&self, address: &str) -> Result<bool, StoreError> {
        let txn = self.begin_write().await?;
        let gone = self.drop_source_in(&txn.txn, address).await?;
        txn.commit().await?;
        Ok(gone)
    }

    async fn drop_source_in<C: ConnectionTrait>(
        &self,
        db: &C,
        address: &str,
    ) -> Result<bool, StoreError> {
        self.drop_datasets_in(db, address, None).await?;
        let mut s = Sql::default();
        s.push("DELETE FROM fed_sources WHERE address = ")
            .bind(address.to_owned());
        Ok(Self::fed_exec(db, s).await? > 0)
    }

    /// Drops a source's datasets: of one generation (`Some(g)`) or of all (`None`); or, with
    /// `keep`, every generation but that one.
    async fn drop_datasets_in<C: ConnectionTrait>(
        &self,
        db: &C,
        address: &str,
        generation: Option<(i64, bool)>,
    ) -> Result<(), StoreError> {
        Self::raise_fed_revision(db).await?;
        let which = |s: &mut Sql| {
            s.push("address = ").bind(address.to_owned());
            if let Some((g, keep)) = generation {
                s.push(if keep {
                    " AND generation <> "
                } else {
                    " AND generation = "
                })
                .bind(g);
            }
        };
        for (table, id, of) in [
            ("fed_bodies", "id", "fed_datasets"),
            ("fed_terms", "bucket", "fed_buckets"),
        ] {
            let mut s = Sql::default();
            s.push(&format!(
                "DELETE FROM {table} WHERE {id} IN (SELECT id FROM {of} WHERE "
            ));
            which(&mut s);
            s.push(")");
            Self::fed_exec(db, s).await?;
        }
        for table in ["fed_datasets", "fed_buckets"] {
            let mut s = Sql::default();
            s.push(&format!("DELETE FROM {table} WHERE "));
            which(&mut s);
            Self::fed_exec(db, s).await?;
        }
        Ok(())
    }

    /// Removes the directory's sources whose address is not in `members` (members that left the
    /// federation). Returns the addresses removed.
    pub async fn remove_departed(&self, members: &[String]) -> Result<Vec<String>, StoreError> {
        let keep: HashSet<&str> = members.iter().map(String::as_str).collect();
        let departed: Vec<String> = self
            .catalog_sources()
            .await?
            .into_iter()
            .filter(|s| s.origin == SourceOrigin::Directory)
            .map(|s| s.counter_party_address)
            .filter(|a| !keep.contains(a.as_str()))
            .collect();
        for a in &departed {
            self.remove_source(a).await?;
        }
        Ok(departed)
    }

    fn source_from_row(row: &sea_orm::QueryResult) -> Result<CatalogSourceInfo, StoreError> {
        Ok(CatalogSourceInfo {
            counter_party_address: get(row, "address")?,
            participant_id: get(row, "participant_id")?,
            city: get(row, "city")?,
            origin: SourceOrigin::parse(&get::<String>(row, "origin")?),
            state: SourceState::parse(&get::<String>(row, "state")?),
            fetched_at: get::<Option<i64>>(row, "fetched_at")?.map(from_millis),
            attempted_at: get::<Option<i64>>(row, "attempted_at")?.map(from_millis),
            dataset_count: get(row, "dataset_count")?,
            failures: get(row, "failures")?,
            last_error: get(row, "last_error")?,
            next_crawl_at: from_millis(get(row, "next_crawl_at")?),
        })
    }

    const SOURCE_COLUMNS: &'static str = "address, participant_id, city, origin, state, fetched_at, \
        attempted_at, dataset_count, failures, last_error, next_crawl_at";

    /// Records a reading of the member directory at `url`: `Ok(members)` or the error.
    pub async fn record_directory_read(
        &self,
        url: &str,
        outcome: Result<usize, &str>,
    ) -> Result<(), StoreError> {
        let now = millis(self.clock.now());
        let mut s = Sql::default();
        s.push(
            "INSERT INTO fed_directory (url, attempted_at, read_at, members, failures, last_error) VALUES (",
        )
        .bind(url.to_owned())
        .push(", ")
        .bind(now)
        .push(", ");
        match outcome {
            Ok(members) => {
                let members = i64::try_from(members).unwrap_or(i64::MAX);
                s.bind(now)
                    .push(", ")
                    .bind(members)
                    .push(", 0, NULL) ON CONFLICT (url) DO UPDATE SET attempted_at = ")
                    .bind(now)
                    .push(", read_at = ")
                    .bind(now)
                    .push(", members = ")
                    .bind(members)
                    .push(", failures = 0, last_error = NULL");
            }
            Err(error) => {
                s.push("NULL, 0, 1, ")
                    .bind(error.to_owned())
                    .push(") ON CONFLICT (url) DO UPDATE SET attempted_at = ")
                    .bind(now)
                    .push(", failures = fed_directory.failures + 1, last_error = ")
                    .bind(error.to_owned());
            }
        }
        let _gate = self.write_gate().await;
        Self::fed_exec(&self.db, s).await?;
        Ok(())
    }

    /// The last reading of the member directory at `url`, if it was ever tried.
    pub async fn directory_status(&self, url: &str) -> Result<Option<DirectoryStatus>, StoreError> {
        let mut s = Sql::default();
        s.push(
            "SELECT url, attempted_at, read_at, members, failures, last_error FROM fed_directory \
             WHERE url = ",
        )
        .bind(url.to_owned());
        let rows = self.db.query_all_raw(s.statement(self.backend_())).await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(DirectoryStatus {
            url: get(row, "url")?,
            attempted_at: from_millis(get(row, "attempted_at")?),
            read_at: get::<Option<i64>>(row, "read_at")?.map(from_millis),
            members: get(row, "members")?,
            failures: get(row, "failures")?,
            last_error: get(row, "last_error")?,
        }))
    }

    /// Every source, by city.
    pub async fn catalog_sources(&self) -> Result<Vec<CatalogSourceInfo>, StoreError> {
        let mut s = Sql::default();
        s.push(&format!(
            "SELECT {} FROM fed_sources ORDER BY city, address",
            Self::SOURCE_COLUMNS
        ));
        self.sources(s).await
    }

    /// One source.
    pub async fn catalog_source(
        &self,
        address: &str,
    ) -> Result<Option<CatalogSourceInfo>, StoreError> {
        let mut s = Sql::default();
        s.push(&format!(
            "SELECT {} FROM fed_sources WHERE address = ",
            Self::SOURCE_COLUMNS
        ))
        .bind(address.to_owned());
        Ok(self.sources(s).await?.into_iter().next())
    }

    /// The source of a provider (by participant id, case-insensitive), if there is one.
    pub async fn source_of_participant(
        &self,
        participant_id: &str,
    ) -> Result<Option<CatalogSourceInfo>, StoreError> {
        let mut s = Sql::default();
        s.push(&format!(
            "SELECT {} FROM fed_sources WHERE participant_key = ",
            Self::SOURCE_COLUMNS
        ))
        .bind(participant_id.to_lowercase())
        .push(" ORDER BY address LIMIT 1");
        Ok(self.sources(s).await?.into_iter().next())
    }

    /// The sources a `SELECT {SOURCE_COLUMNS} FROM fed_sources …` finds.
    async fn sources(&self, s: Sql) -> Result<Vec<CatalogSourceInfo>, StoreError> {
        self.db
            .query_all_raw(s.statement(self.backend_()))
            .await?
            .iter()
            .map(Self::source_from_row)
            .collect()
    }

    /// The next time a source is due (for the processor's sleep).
    pub async fn next_crawl_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut s = Sql::default();
        s.push("SELECT MIN(next_crawl_at) AS due FROM fed_sources");
        let rows = self.db.query_all_raw(s.statement(self.backend_())).await?;
        Ok(rows
            .first()
            .and_then(|r| r.try_get::<Option<i64>>("", "due").ok().flatten())
            .map(from_millis))
    }

    /// Claims up to `limit` sources due for crawling, leased to `owner` until `lease_until`.
    pub async fn claim_crawls(
        &self,
        owner: &str,
        lease_until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<CatalogSourceInfo>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = millis(self.clock.now());
        let mut s = Sql::default();
        s.push(&format!(
            "SELECT {} FROM fed_sources WHERE next_crawl_at <= ",
            Self::SOURCE_COLUMNS
        ))
        .bind(now)
        .push(" AND (lease_until IS NULL OR lease_until < ")
        .bind(now)
        .push(") ORDER BY next_crawl_at LIMIT ")
        .bind(i64::try_from(limit).unwrap_or(i64::MAX));
        let due = self.sources(s).await?;
        let mut claimed = Vec::with_capacity(due.len());
        for source in due {
            let mut s = Sql::default();
            s.push("UPDATE fed_sources SET lease_owner = ")
                .bind(owner.to_owned())
                .push(", lease_until = ")
                .bind(millis(lease_until))
                .push(" WHERE address = ")
                .bind(source.counter_party_address.clone())
                .push(" AND (lease_until IS NULL OR lease_until < ")
                .bind(now)
                .push(")");
            let _gate = self.write_gate().await;
            if Self::fed_exec(&self.db, s).await? == 1 {
                claimed.push(source);
            }
        }
        Ok(claimed)
    }

    // -----------------------------------------------------------------------------------------
    // Crawls

    /// Stages one page of a crawl of `address` (the provider `city`, whose name is searched too) under
    /// `generation` (invisible until [`Store::commit_crawl`]). Datasets already staged under it (by id)
    /// are skipped. Returns how many were added.
    pub async fn stage_page(
        &self,
        address: &str,
        city: &str,
        generation: i64,
        datasets: &[RemoteDataset],
    ) -> Result<u64, StoreError> {
        let txn = self.begin_write().await?;
        let backend = self.backend_();
        let mut added = 0;
        let mut buckets = Buckets::default();
        for d in datasets {
            let body = serde_json::to_string(d)
                .map_err(|e| StoreError::Corrupt("dataset".into(), e.to_string()))?;
            let licence = licence_of(&d.raw);
            let themes = d.themes.join("\n");
            let bucket = BucketKey {
                data_model: d.data_model.clone(),
                themes_key: format!("\n{}\n", themes.to_lowercase()),
                themes,
                licence,
                access: access_of(&d.raw),
            };
            let slot = buckets.slot(&txn.txn, address, generation, &bucket).await?;
            let id = (buckets.ids[slot].0 << BUCKET_SHIFT) | buckets.ids[slot].1;
            let [title_terms, tag_terms, text_terms, other_terms] = column_terms(d, city);
            let mut s = Sql::default();
            s.push(
                "INSERT INTO fed_datasets (id, address, generation, dataset_id, data_model, model_key, \
                 themes, themes_key, licence, licence_key, access, title_terms, tag_terms, text_terms, \
                 other_terms) VALUES (",
            );
            s.bind(id)
                .push(", ")
                .bind(address.to_owned())
                .push(", ")
                .bind(generation)
                .push(", ")
                .bind(d.id.clone())
                .push(", ");
            bucket.bind_values(&mut s);
            s.push(", ")
                .bind(title_terms)
                .push(", ")
                .bind(tag_terms)
                .push(", ")
                .bind(text_terms)
                .push(", ")
                .bind(other_terms);
            s.push(") ON CONFLICT (address, generation, dataset_id) DO NOTHING RETURNING id");
            let rows = txn.txn.query_all_raw(s.statement(backend)).await?;
            if rows.is_empty() {
                continue;
            }
            buckets.ids[slot].1 += 1;
            added += 1;
            let mut s = Sql::default();
            s.push("INSERT INTO fed_bodies (id, body) VALUES (")
                .bind(id)
                .push(", ")
                .bind(body)
                .push(")");
            Self::fed_exec(&txn.txn, s).await?;
        }
        for (id, n) in buckets.ids {
            let mut s = Sql::default();
            s.push("UPDATE fed_buckets SET n = ")
                .bind(n)
                .push(" WHERE id = ")
                .bind(id);
            Self::fed_exec(&txn.txn, s).await?;
        }
        txn.commit().await?;
        Ok(added)
    }

    /// Makes `generation` the live catalog of `address` (with the provider's id and name), drops
    /// every other generation, records the success and when to crawl next, and gives up the lease; one
    /// transaction. Returns the datasets now served, or `None` when the source was removed meanwhile
    /// (what was staged is dropped).
    pub async fn commit_crawl(
        &self,
        address: &str,
        generation: i64,
        participant_id: &str,
        city: &str,
        next_crawl_at: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        let now = millis(self.clock.now());
        let txn = self.begin_write().await?;
        let mut s = Sql::default();
        s.push("SELECT COUNT(*) AS n FROM fed_datasets WHERE address = ")
            .bind(address.to_owned())
            .push(" AND generation = ")
            .bind(generation);
        let count: i64 = txn
            .txn
            .query_all_raw(s.statement(self.backend_()))
            .await?
            .first()
            .and_then(|r| r.try_get("", "n").ok())
            .unwrap_or_default();
        let mut s = Sql::default();
        s.push("UPDATE fed_sources SET generation = ")
            .bind(generation)
            .push(", participant_id = ")
            .bind(participant_id.to_owned())
            .push(", participant_key = ")
            .bind(participant_id.to_lowercase())
            .push(", city = ")
            .bind(city.to_owned())
            .push(", city_key = ")
            .bind(city.to_lowercase())
            .push(", state = 'fresh', fetched_at = ")
            .bind(now)
            .push(", attempted_at = ")
            .bind(now)
            .push(", dataset_count = ")
            .bind(count)
            .push(", failures = 0, last_error = NULL, next_crawl_at = ")
            .bind(millis(next_crawl_at))
            .push(", lease_owner = NULL, lease_until = NULL WHERE address = ")
            .bind(address.to_owned());
        let live = Self::fed_exec(&txn.txn, s).await? == 1;
        if live {
            Self::index_generation(&txn.txn, address, generation).await?;
            self.drop_datasets_in(&txn.txn, address, Some((generation, true)))
                .await?;
        } else {
            self.drop_datasets_in(&txn.txn, address, None).await?;
        }
        txn.commit().await?;
        Ok(live.then_some(count))
    }

    /// Writes the term index of `address`'s `generation` (see `terms`), one bucket at a time from the
    /// terms each dataset keeps per column.
    async fn index_generation<C: ConnectionTrait>(
        db: &C,
        address: &str,
        generation: i64,
    ) -> Result<(), StoreError> {
        /// Rows per statement (three values each).
        const ROWS: usize = 200;
        let backend = db.get_database_backend();
        let mut s = Sql::default();
        s.push("SELECT id FROM fed_buckets WHERE address = ")
            .bind(address.to_owned())
            .push(" AND generation = ")
            .bind(generation)
            .push(" AND n > 0 ORDER BY id");
        let buckets = db
            .query_all_raw(s.statement(backend))
            .await?
            .iter()
            .map(|r| get::<i64>(r, "id"))
            .collect::<Result<Vec<_>, _>>()?;
        for bucket in buckets {
            let mut s = Sql::default();
            s.push(
                "SELECT id, title_terms, tag_terms, text_terms, other_terms FROM fed_datasets \
                 WHERE id >= ",
            )
            .bind(bucket << BUCKET_SHIFT)
            .push(" AND id < ")
            .bind((bucket + 1) << BUCKET_SHIFT)
            .push(" ORDER BY id");
            let rows = db.query_all_raw(s.statement(backend)).await?;
            let mut positions: BTreeMap<String, [Vec<u32>; terms::COLUMNS]> = BTreeMap::new();
            for row in &rows {
                let pos =
                    u32::try_from(get::<i64>(row, "id")? & (BUCKET_SIZE - 1)).unwrap_or_default();
                for (c, (column, _)) in SCORED_COLUMNS.iter().enumerate() {
                    let text: String = get(row, column)?;
                    for term in text.split(' ').filter(|t| !t.is_empty()) {
                        let at = match positions.get_mut(term) {
                            Some(at) => at,
                            None => positions.entry(term.to_owned()).or_default(),
                        };
                        if at[c].last() != Some(&pos) {
                            at[c].push(pos);
                        }
                    }
                }
            }
            let all: Vec<(String, [Vec<u32>; terms::COLUMNS])> = positions.into_iter().collect();
            for chunk in all.chunks(ROWS) {
                let mut s = Sql::default();
                s.push("INSERT INTO fed_terms (term, bucket, docs) VALUES ");
                for (i, (term, columns)) in chunk.iter().enumerate() {
                    s.push(if i == 0 { "(" } else { ", (" })
                        .bind(term.clone())
                        .push(", ")
                        .bind(bucket)
                        .push(", ")
                        .bind(terms::encode(columns))
                        .push(")");
                }
                Self::fed_exec(db, s).await?;
            }
        }
        Ok(())
    }

    /// Records a failed crawl: drops what it staged, keeps the last good catalog (now stale), counts
    /// the failure with its error and when to try again, and gives up the lease.
    pub async fn fail_crawl(
        &self,
        address: &str,
        generation: i64,
        error: &str,
        next_crawl_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = millis(self.clock.now());
        let txn = self.begin_write().await?;
        self.drop_datasets_in(&txn.txn, address, Some((generation, false)))
            .await?;
        let mut s = Sql::default();
        s.push(
            "UPDATE fed_sources SET state = CASE WHEN fetched_at IS NULL THEN 'failing' ELSE 'stale' END, \
             failures = failures + 1, last_error = ",
        )
        .bind(error.to_owned())
        .push(", attempted_at = ")
        .bind(now)
        .push(", next_crawl_at = ")
        .bind(millis(next_crawl_at))
        .push(", lease_owner = NULL, lease_until = NULL WHERE address = ")
        .bind(address.to_owned());
        Self::fed_exec(&txn.txn, s).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Replaces everything cached from one source at once (a manual source, crawled again later like
    /// the others): the whole catalog in one call, for callers that have it in hand.
    pub async fn replace_cached_catalog(
        &self,
        address: &str,
        participant_id: &str,
        city: &str,
        datasets: &[RemoteDataset],
    ) -> Result<CatalogSourceInfo, StoreError> {
        self.put_source(
            &NewSource {
                address: address.to_owned(),
                participant_id: participant_id.to_owned(),
                city: city.to_owned(),
            },
            SourceOrigin::Manual,
            self.clock.now() + chrono::Duration::hours(1),
        )
        .await?;
        let generation = new_generation();
        for chunk in datasets.chunks(500) {
            self.stage_page(address, city, generation, chunk).await?;
        }
        let next = self.clock.now() + chrono::Duration::hours(1);
        self.commit_crawl(address, generation, participant_id, city, next)
            .await?;
        self.catalog_source(address)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "catalog source",
                id: address.to_owned(),
            })
    }

    /// The live datasets of one source (or of all), by source and id.
    async fn live_datasets(&self, address: Option<&str>) -> Result<Vec<CachedDataset>, StoreError> {
        let mut s = Sql::default();
        s.push(
            "SELECT d.address AS address, d.dataset_id AS dataset_id, b.body AS body, \
             s.participant_id AS participant_id, s.city AS city FROM fed_datasets d JOIN fed_sources s \
             ON s.address = d.address AND s.generation = d.generation JOIN fed_bodies b ON b.id = d.id",
        );
        if let Some(a) = address {
            s.push(" WHERE d.address = ").bind(a.to_owned());
        }
        s.push(" ORDER BY s.city, d.address, d.dataset_id");
        self.db
            .query_all_raw(s.statement(self.backend_()))
            .await?
            .iter()
            .map(|row| {
                let g = |c: &str| -> Result<String, StoreError> {
                    row.try_get::<String>("", c)
                        .map_err(|e| StoreError::Corrupt(c.into(), e.to_string()))
                };
                let id = g("dataset_id")?;
                let dataset = serde_json::from_str(&g("body")?).map_err(|e| {
                    StoreError::Corrupt(format!("cached dataset {id}"), e.to_string())
                })?;
                Ok(CachedDataset {
                    counter_party_address: g("address")?,
                    participant_id: g("participant_id")?,
                    city: g("city")?,
                    dataset,
                })
            })
            .collect()
    }

    /// Every cached dataset with its source (small caches: the demo).
    pub async fn cached_datasets(&self) -> Result<Vec<CachedDataset>, StoreError> {
        self.live_datasets(None).await
    }

    /// The cached datasets of one source.
    pub async fn cached_datasets_of(
        &self,
        address: &str,
    ) -> Result<Vec<CachedDataset>, StoreError> {
        self.live_datasets(Some(address)).await
    }
}

/// A new crawl generation: random, so two crawls of one source never share one.
pub fn new_generation() -> i64 {
    rand::random_range(1..i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swedish_and_english_inflections_share_a_stem() {
        let s = |w: &str| stems(w);
        assert_eq!(s("parkering")[0], s("parkeringar")[0]);
        assert_eq!(s("parkeringen")[0], s("parkering")[0]);
        assert!(s("parking").iter().any(|x| s("parked").contains(x)));
        assert!(s("stations").iter().any(|x| s("station").contains(x)));
    }

    #[test]
    fn a_prefix_that_another_one_starts_is_left_out() {
        assert_eq!(
            covering(&["parkering", "parker", "luft", "parker"]),
            ["parker", "luft"]
        );
    }

    #[test]
    fn camel_case_words_give_their_parts() {
        assert_eq!(
            words("OffStreetParking, luft"),
            ["offstreetparking", "off", "street", "parking", "luft"]
        );
    }

    #[test]
    fn licence_and_access_are_read_from_the_dataset() {
        let open = serde_json::json!({
            "dct:license": {"@id": "https://creativecommons.org/licenses/by/4.0/"},
            "hasPolicy": [{"permission": [{"action": "use"}]}]
        });
        assert_eq!(
            licence_of(&open).as_deref(),
            Some("https://creativecommons.org/licenses/by/4.0/")
        );
        assert_eq!(access_of(&open), "open");
        let gated = serde_json::json!({
            "distribution": [{"license": "CC0"}],
            "odrl:hasPolicy": {"odrl:permission": {"action": "use", "constraint": [{"leftOperand": "purpose"}]}}
        });
        assert_eq!(licence_of(&gated).as_deref(), Some("CC0"));
        assert_eq!(access_of(&gated), "negotiable");
        assert_eq!(access_of(&serde_json::json!({})), "negotiable");
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let token = encode_cursor(&CursorKey(-11, "Lund".into(), "a".into(), "b".into()));
        let CursorKey(n, c, a, b) = decode_cursor(&token).unwrap();
        assert_eq!(
            (n, c.as_str(), a.as_str(), b.as_str()),
            (-11, "Lund", "a", "b")
        );
        assert!(decode_cursor("nope").is_err());
    }
}
