//! The bucket directory: the live buckets of the federated cache with their sources' values (what
//! every filter, facet and the order of sources read), kept per process and read again whenever the
//! cache's revision (`fed_revision`, raised in the transaction of every commit, removal and source
//! change) differs from the one it was read at. A few hundred bytes per bucket (3,600 buckets at
//! 300,000 datasets), so a search reads one counter instead of joining every bucket with its source.

use std::sync::Arc;

use sea_orm::{ConnectionTrait, DbBackend};

use super::{FastMap, FederatedQuery, Sql, lower};
use crate::store::identity::get;
use crate::store::{Store, StoreError};

/// The cache's revision, as an SQL expression (a search reads it in its first statement, so its
/// rows and the directory it takes are of the same revision, without a statement of its own).
pub(super) const REVISION: &str = "(SELECT revision FROM fed_revision WHERE id = 1)";

/// A source with live datasets, in the `(city, address)` order of search results.
pub(super) struct DirSource {
    pub(super) city: String,
    pub(super) address: String,
    pub(super) generation: i64,
    city_key: String,
    participant_key: String,
    /// Its buckets (indexes into [`Directory::buckets`]).
    pub(super) buckets: Vec<usize>,
}

/// A live bucket that holds datasets.
pub(super) struct DirBucket {
    pub(super) id: i64,
    /// Its source (an index into [`Directory::sources`], so also its place in the order).
    pub(super) source: usize,
    pub(super) data_model: Option<String>,
    model_key: Option<String>,
    pub(super) themes: String,
    themes_key: String,
    pub(super) licence: Option<String>,
    licence_key: Option<String>,
    pub(super) access: String,
    pub(super) n: i64,
}

/// The directory as of one revision.
pub(crate) struct Directory {
    revision: i64,
    pub(super) sources: Vec<DirSource>,
    pub(super) buckets: Vec<DirBucket>,
    by_id: FastMap<i64, usize>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("revision", &self.revision)
            .field("sources", &self.sources.len())
            .field("buckets", &self.buckets.len())
            .finish()
    }
}

/// A search's filters, as `search_filters` reads them (trimmed, lower-cased, a blank one is none).
pub(super) struct Filters {
    city: Option<String>,
    model: Option<String>,
    theme: Option<String>,
    licence: Option<String>,
    access: Option<String>,
}

impl Filters {
    pub(super) fn of(q: &FederatedQuery) -> Self {
        Filters {
            city: lower(&q.city),
            model: lower(&q.data_model),
            theme: lower(&q.theme).map(|t| format!("\n{t}\n")),
            licence: lower(&q.licence),
            access: lower(&q.access),
        }
    }

    pub(super) fn any(&self) -> bool {
        self.city.is_some()
            || self.model.is_some()
            || self.theme.is_some()
            || self.licence.is_some()
            || self.access.is_some()
    }
}

impl Directory {
    /// The cache's revision this directory is as of.
    pub(super) fn revision(&self) -> i64 {
        self.revision
    }

    pub(super) fn bucket(&self, id: i64) -> Option<&DirBucket> {
        self.by_id.get(&id).and_then(|&i| self.buckets.get(i))
    }

    pub(super) fn source(&self, b: &DirBucket) -> &DirSource {
        &self.sources[b.source]
    }

    /// Whether a bucket passes the filters.
    pub(super) fn passes(&self, b: &DirBucket, f: &Filters) -> bool {
        let s = self.source(b);
        f.city
            .as_ref()
            .is_none_or(|c| s.city_key == *c || s.participant_key == *c)
            && f.model
                .as_ref()
                .is_none_or(|m| b.model_key.as_ref() == Some(m))
            && f.theme
                .as_ref()
                .is_none_or(|t| b.themes_key.contains(t.as_str()))
            && f.licence
                .as_ref()
                .is_none_or(|l| b.licence_key.as_ref() == Some(l))
            && f.access.as_ref().is_none_or(|a| b.access == *a)
    }

    /// The buckets that pass the filters, ascending.
    pub(super) fn passing(&self, f: &Filters) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .buckets
            .iter()
            .filter(|b| self.passes(b, f))
            .map(|b| b.id)
            .collect();
        ids.sort_unstable();
        ids
    }
}

/// A row of the directory's query (a JSON array, in this order).
#[derive(serde::Deserialize)]
struct Row {
    id: i64,
    city: String,
    address: String,
    generation: i64,
    city_key: String,
    participant_key: String,
    data_model: Option<String>,
    model_key: Option<String>,
    themes: String,
    themes_key: String,
    licence: Option<String>,
    licence_key: Option<String>,
    access: String,
    n: i64,
}

impl Store {
    /// Raises the federated cache's revision (in the transaction of the change).
    pub(super) async fn raise_fed_revision<C: ConnectionTrait>(db: &C) -> Result<(), StoreError> {
        db.execute_unprepared("UPDATE fed_revision SET revision = revision + 1 WHERE id = 1")
            .await?;
        Ok(())
    }

    /// The bucket directory as of the cache's current revision (read again if it changed).
    pub(super) async fn directory(&self) -> Result<Arc<Directory>, StoreError> {
        let backend = self.db.get_database_backend();
        let mut s = Sql::default();
        s.push(&format!("SELECT {REVISION} AS revision"));
        let revision: i64 = match self.db.query_all_raw(s.statement(backend)).await?.first() {
            Some(row) => get::<Option<i64>>(row, "revision")?.unwrap_or_default(),
            None => 0,
        };
        self.directory_as_of(revision).await
    }

    /// The directory this process read last, if any (not checked against the cache's revision: a
    /// search reads the revision in its first statement and then calls [`Self::directory_as_of`]).
    pub(super) fn cached_directory(&self) -> Option<Arc<Directory>> {
        self.fed_directory.lock().ok().and_then(|d| d.clone())
    }

    /// The directory as of `revision` or later: the cached one if it is as of that revision, else
    /// read again (labelled with the revision read in the statement that reads it).
    pub(super) async fn directory_as_of(
        &self,
        revision: i64,
    ) -> Result<Arc<Directory>, StoreError> {
        if let Some(d) = self.cached_directory()
            && d.revision == revision
        {
            return Ok(d);
        }
        let backend = self.db.get_database_backend();
        let fields = "d.id, s.city, s.address, s.generation, s.city_key, s.participant_key, d.data_model, \
                      d.model_key, d.themes, d.themes_key, d.licence, d.licence_key, d.access, d.n";
        let mut s = Sql::default();
        s.push(&if backend == DbBackend::Postgres {
            format!("SELECT {REVISION} AS revision, CAST(json_agg(json_build_array({fields})) AS TEXT) AS b")
        } else {
            format!("SELECT {REVISION} AS revision, json_group_array(json_array({fields})) AS b")
        });
        s.push(
            " FROM fed_sources s JOIN fed_buckets d ON s.address = d.address AND s.generation = d.generation \
             WHERE d.n > 0",
        );
        let (revision, text): (i64, Option<String>) =
            match self.db.query_all_raw(s.statement(backend)).await?.first() {
                Some(row) => (
                    get::<Option<i64>>(row, "revision")?.unwrap_or_default(),
                    get(row, "b")?,
                ),
                None => (revision, None),
            };
        let mut rows: Vec<Row> = match text {
            Some(t) => serde_json::from_str(&t)
                .map_err(|e| StoreError::Corrupt("bucket directory".into(), e.to_string()))?,
            None => Vec::new(),
        };
        rows.sort_by(|a, b| (&a.city, &a.address, a.id).cmp(&(&b.city, &b.address, b.id)));
        let mut dir = Directory {
            revision,
            sources: Vec::new(),
            buckets: Vec::with_capacity(rows.len()),
            by_id: FastMap::default(),
        };
        for r in rows {
            if dir
                .sources
                .last()
                .is_none_or(|s| (&s.city, &s.address) != (&r.city, &r.address))
            {
                dir.sources.push(DirSource {
                    city: r.city,
                    address: r.address,
                    generation: r.generation,
                    city_key: r.city_key,
                    participant_key: r.participant_key,
                    buckets: Vec::new(),
                });
            }
            let source = dir.sources.len() - 1;
            dir.sources[source].buckets.push(dir.buckets.len());
            dir.by_id.insert(r.id, dir.buckets.len());
            dir.buckets.push(DirBucket {
                id: r.id,
                source,
                data_model: r.data_model,
                model_key: r.model_key,
                themes: r.themes,
                themes_key: r.themes_key,
                licence: r.licence,
                licence_key: r.licence_key,
                access: r.access,
                n: r.n,
            });
        }
        let dir = Arc::new(dir);
        if let Ok(mut cached) = self.fed_directory.lock() {
            *cached = Some(dir.clone());
        }
        Ok(dir)
    }
}
