//! Schema migrations. Append-only: never edit a released migration, add a new one.
//! The DDL is the common subset of SQLite and PostgreSQL.

use sea_orm_migration::async_trait::async_trait;
use sea_orm_migration::prelude::*;

/// All migrations, oldest first.
#[derive(Debug)]
pub struct Migrator;

#[async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(M0001Initial),
            Box::new(M0002Negotiations),
            Box::new(M0003Transfers),
            Box::new(M0004Usage),
            Box::new(M0005Identity),
            Box::new(M0006Consent),
            Box::new(M0007LedgerCheckpoint),
            Box::new(M0008OpenDownloads),
            Box::new(M0009FederatedSearch),
            Box::new(M0010CatalogRevision),
            Box::new(M0011FederatedIndex),
            Box::new(M0012FederatedBuckets),
            Box::new(M0013FederatedTerms),
        ]
    }
}

/// Documents (assets, policies, offers), their references, and the federated catalog cache.
#[derive(Debug)]
struct M0001Initial;

impl MigrationName for M0001Initial {
    fn name(&self) -> &str {
        "m0001_initial"
    }
}

/// m0001's federated cache (dropped by m0006, made again by its `down`).
const CATALOG_SOURCES_0001: &str = "CREATE TABLE catalog_sources (
        address VARCHAR(2048) NOT NULL PRIMARY KEY,
        participant_id VARCHAR(2048) NOT NULL,
        city VARCHAR(500) NOT NULL,
        fetched_at BIGINT NOT NULL,
        dataset_count BIGINT NOT NULL)";
const CACHED_DATASETS_0001: &str = "CREATE TABLE cached_datasets (
        address VARCHAR(2048) NOT NULL,
        dataset_id VARCHAR(2048) NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (address, dataset_id))";

const UP_0001: &[&str] = &[
    "CREATE TABLE documents (
        kind VARCHAR(16) NOT NULL,
        id VARCHAR(200) NOT NULL,
        body TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        version BIGINT NOT NULL,
        PRIMARY KEY (kind, id))",
    "CREATE TABLE doc_refs (
        from_kind VARCHAR(16) NOT NULL,
        from_id VARCHAR(200) NOT NULL,
        to_kind VARCHAR(16) NOT NULL,
        to_id VARCHAR(200) NOT NULL,
        PRIMARY KEY (from_kind, from_id, to_kind, to_id))",
    "CREATE INDEX doc_refs_to ON doc_refs (to_kind, to_id)",
    CATALOG_SOURCES_0001,
    CACHED_DATASETS_0001,
];

const DOWN_0001: &[&str] = &[
    "DROP TABLE cached_datasets",
    "DROP TABLE catalog_sources",
    "DROP INDEX doc_refs_to",
    "DROP TABLE doc_refs",
    "DROP TABLE documents",
];

async fn run(manager: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    let db = manager.get_connection();
    for sql in statements {
        db.execute_unprepared(sql).await?;
    }
    Ok(())
}

#[async_trait]
impl MigrationTrait for M0001Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, UP_0001).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, DOWN_0001).await
    }
}

/// Contract negotiations (with the processor's lease and retry columns), agreements and the MIM3 ledger.
#[derive(Debug)]
struct M0002Negotiations;

impl MigrationName for M0002Negotiations {
    fn name(&self) -> &str {
        "m0002_negotiations"
    }
}

const UP_0002: &[&str] = &[
    "CREATE TABLE negotiations (
        id VARCHAR(200) NOT NULL PRIMARY KEY,
        role VARCHAR(16) NOT NULL,
        provider_pid VARCHAR(200),
        consumer_pid VARCHAR(200),
        counterparty_id VARCHAR(2048) NOT NULL,
        counterparty_address VARCHAR(2048) NOT NULL,
        state VARCHAR(16),
        offer_id VARCHAR(2048) NOT NULL,
        dataset_id VARCHAR(2048) NOT NULL,
        body TEXT NOT NULL,
        pending VARCHAR(16),
        awaiting VARCHAR(16),
        attempts BIGINT NOT NULL,
        last_error TEXT,
        next_attempt_at BIGINT,
        lease_owner VARCHAR(100),
        lease_until BIGINT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        version BIGINT NOT NULL)",
    "CREATE INDEX negotiations_due ON negotiations (pending, next_attempt_at)",
    "CREATE INDEX negotiations_consumer_pid ON negotiations (role, consumer_pid)",
    "CREATE TABLE agreements (
        id VARCHAR(200) NOT NULL PRIMARY KEY,
        negotiation_id VARCHAR(200) NOT NULL,
        role VARCHAR(16) NOT NULL,
        provider_id VARCHAR(2048) NOT NULL,
        consumer_id VARCHAR(2048) NOT NULL,
        dataset_id VARCHAR(2048) NOT NULL,
        body TEXT NOT NULL,
        signed_at BIGINT NOT NULL)",
    "CREATE TABLE ledger (
        seq BIGINT NOT NULL PRIMARY KEY,
        at_micros BIGINT NOT NULL,
        kind VARCHAR(32) NOT NULL,
        subject VARCHAR(2048) NOT NULL,
        payload TEXT NOT NULL,
        prev_hash VARCHAR(64) NOT NULL,
        hash VARCHAR(64) NOT NULL)",
];

const DOWN_0002: &[&str] = &[
    "DROP TABLE ledger",
    "DROP TABLE agreements",
    "DROP INDEX negotiations_consumer_pid",
    "DROP INDEX negotiations_due",
    "DROP TABLE negotiations",
];

#[async_trait]
impl MigrationTrait for M0002Negotiations {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, UP_0002).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, DOWN_0002).await
    }
}

/// Transfer processes (with the processor's lease and retry columns).
#[derive(Debug)]
struct M0003Transfers;

impl MigrationName for M0003Transfers {
    fn name(&self) -> &str {
        "m0003_transfers"
    }
}

const UP_0003: &[&str] = &[
    "CREATE TABLE transfers (
        id VARCHAR(200) NOT NULL PRIMARY KEY,
        role VARCHAR(16) NOT NULL,
        provider_pid VARCHAR(200),
        consumer_pid VARCHAR(200),
        counterparty_id VARCHAR(2048) NOT NULL,
        counterparty_address VARCHAR(2048) NOT NULL,
        state VARCHAR(16),
        agreement_id VARCHAR(2048) NOT NULL,
        format VARCHAR(200) NOT NULL,
        body TEXT NOT NULL,
        pending VARCHAR(16),
        awaiting VARCHAR(16),
        attempts BIGINT NOT NULL,
        last_error TEXT,
        next_attempt_at BIGINT,
        lease_owner VARCHAR(100),
        lease_until BIGINT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        version BIGINT NOT NULL)",
    "CREATE INDEX transfers_due ON transfers (pending, next_attempt_at)",
    "CREATE INDEX transfers_consumer_pid ON transfers (role, consumer_pid)",
];

const DOWN_0003: &[&str] = &[
    "DROP INDEX transfers_consumer_pid",
    "DROP INDEX transfers_due",
    "DROP TABLE transfers",
];

#[async_trait]
impl MigrationTrait for M0003Transfers {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, UP_0003).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, DOWN_0003).await
    }
}

/// Uses of each agreement per counting period (what `count` constraints are evaluated against).
#[derive(Debug)]
struct M0004Usage;

impl MigrationName for M0004Usage {
    fn name(&self) -> &str {
        "m0004_agreement_usage"
    }
}

const UP_0004: &[&str] = &["CREATE TABLE agreement_usage (
        agreement_id VARCHAR(200) NOT NULL,
        period_start BIGINT NOT NULL,
        uses BIGINT NOT NULL,
        first_use BIGINT NOT NULL,
        PRIMARY KEY (agreement_id, period_start))"];

const DOWN_0004: &[&str] = &["DROP TABLE agreement_usage"];

#[async_trait]
impl MigrationTrait for M0004Usage {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, UP_0004).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, DOWN_0004).await
    }
}

/// Identity: the credentials this connector holds, the jtis of self-issued tokens already seen
/// (shared by replicas), what each caller's credentials were at its last verification (for the
/// revocation monitor), and the trust anchor's members, requests and issued credentials.
#[derive(Debug)]
struct M0005Identity;

impl MigrationName for M0005Identity {
    fn name(&self) -> &str {
        "m0005_identity"
    }
}

const UP_0005: &[&str] = &[
    "CREATE TABLE held_credentials (
        id VARCHAR(400) NOT NULL PRIMARY KEY,
        types TEXT NOT NULL,
        issuer VARCHAR(400) NOT NULL,
        format VARCHAR(20) NOT NULL,
        jwt TEXT NOT NULL,
        valid_until BIGINT NULL,
        received_at BIGINT NOT NULL)",
    "CREATE TABLE dcp_jti (
        jti_key VARCHAR(700) NOT NULL PRIMARY KEY,
        expires_at BIGINT NOT NULL)",
    "CREATE INDEX dcp_jti_expiry ON dcp_jti (expires_at)",
    "CREATE TABLE verified_callers (
        participant_id VARCHAR(400) NOT NULL PRIMARY KEY,
        credentials TEXT NOT NULL,
        verified_at BIGINT NOT NULL)",
    "CREATE TABLE authority_members (
        holder VARCHAR(400) NOT NULL PRIMARY KEY,
        profile TEXT NOT NULL,
        created_at BIGINT NOT NULL)",
    "CREATE TABLE authority_requests (
        id VARCHAR(100) NOT NULL PRIMARY KEY,
        holder VARCHAR(400) NOT NULL,
        holder_pid VARCHAR(200) NOT NULL,
        status VARCHAR(20) NOT NULL,
        reason TEXT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL)",
    "CREATE TABLE authority_credentials (
        id VARCHAR(400) NOT NULL PRIMARY KEY,
        holder VARCHAR(400) NOT NULL,
        credential_type VARCHAR(200) NOT NULL,
        status_index BIGINT NOT NULL UNIQUE,
        request_id VARCHAR(100) NULL,
        issued_at BIGINT NOT NULL,
        valid_until BIGINT NOT NULL,
        revoked_at BIGINT NULL,
        revoke_reason TEXT NULL)",
    "CREATE INDEX authority_credentials_holder ON authority_credentials (holder)",
];

const DOWN_0005: &[&str] = &[
    "DROP TABLE authority_credentials",
    "DROP TABLE authority_requests",
    "DROP TABLE authority_members",
    "DROP TABLE verified_callers",
    "DROP TABLE dcp_jti",
    "DROP TABLE held_credentials",
];

#[async_trait]
impl MigrationTrait for M0005Identity {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, UP_0005).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, DOWN_0005).await
    }
}

/// Consent (OASC MIM4): consent records and their signed revisions, deliveries of each citizen's records,
/// withdrawal notices sent (leased by the processor) and received.
#[derive(Debug)]
struct M0006Consent;

impl MigrationName for M0006Consent {
    fn name(&self) -> &str {
        "m0006_consent"
    }
}

const UP_0006: &[&str] = &[
    "CREATE TABLE consent_records (
        id VARCHAR(200) NOT NULL PRIMARY KEY,
        subject VARCHAR(64) NOT NULL,
        dataset VARCHAR(2048) NOT NULL,
        purpose VARCHAR(500) NOT NULL,
        recipient VARCHAR(2048) NOT NULL,
        terms TEXT NOT NULL,
        state VARCHAR(20) NOT NULL,
        head_seq BIGINT NOT NULL,
        head_hash VARCHAR(64) NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL)",
    "CREATE UNIQUE INDEX consent_records_scope ON consent_records (subject, dataset, purpose, recipient)",
    "CREATE INDEX consent_records_dataset ON consent_records (dataset)",
    "CREATE INDEX consent_records_updated ON consent_records (updated_at)",
    "CREATE TABLE consent_revisions (
        record_id VARCHAR(200) NOT NULL,
        seq BIGINT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (record_id, seq))",
    "CREATE TABLE consent_deliveries (
        transfer_id VARCHAR(200) NOT NULL,
        subject VARCHAR(64) NOT NULL,
        day BIGINT NOT NULL,
        recipient VARCHAR(400) NOT NULL,
        dataset VARCHAR(2048) NOT NULL,
        purpose VARCHAR(500) NOT NULL,
        subject_ref VARCHAR(64) NOT NULL,
        records BIGINT NOT NULL,
        last_at BIGINT NOT NULL,
        PRIMARY KEY (transfer_id, subject, day))",
    "CREATE INDEX consent_deliveries_subject ON consent_deliveries (subject)",
    "CREATE TABLE consent_notices (
        id VARCHAR(200) NOT NULL PRIMARY KEY,
        record_id VARCHAR(200) NOT NULL,
        subject VARCHAR(64) NOT NULL,
        recipient VARCHAR(400) NOT NULL,
        address VARCHAR(2048) NOT NULL,
        dataset VARCHAR(2048) NOT NULL,
        transfers TEXT NOT NULL,
        notice TEXT NOT NULL,
        state VARCHAR(20) NOT NULL,
        attempts BIGINT NOT NULL,
        next_at BIGINT NOT NULL,
        lease_owner VARCHAR(200) NULL,
        lease_until BIGINT NULL,
        last_error TEXT NULL,
        ack TEXT NULL,
        acked_at BIGINT NULL,
        deletion TEXT NULL,
        deleted_at BIGINT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL)",
    "CREATE INDEX consent_notices_subject ON consent_notices (subject)",
    "CREATE INDEX consent_notices_due ON consent_notices (state, next_at)",
    "CREATE TABLE received_notices (
        id VARCHAR(200) NOT NULL,
        provider VARCHAR(400) NOT NULL,
        body TEXT NOT NULL,
        state VARCHAR(20) NOT NULL,
        received_at BIGINT NOT NULL,
        deleted_at BIGINT NULL,
        records_deleted BIGINT NOT NULL,
        confirmation TEXT NULL,
        PRIMARY KEY (provider, id))",
];

const DOWN_0006: &[&str] = &[
    "DROP TABLE received_notices",
    "DROP TABLE consent_notices",
    "DROP TABLE consent_deliveries",
    "DROP TABLE consent_revisions",
    "DROP TABLE consent_records",
];

#[async_trait]
impl MigrationTrait for M0006Consent {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, UP_0006).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, DOWN_0006).await
    }
}

/// The ledger's signed head, checkpointed in the same transaction as the entries (`store::ledger_head`).
#[derive(Debug)]
struct M0007LedgerCheckpoint;

impl MigrationName for M0007LedgerCheckpoint {
    fn name(&self) -> &str {
        "m0007_ledger_checkpoint"
    }
}

#[async_trait]
impl MigrationTrait for M0007LedgerCheckpoint {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(
            manager,
            &["CREATE TABLE ledger_checkpoint (
                id VARCHAR(16) NOT NULL PRIMARY KEY,
                seq BIGINT NOT NULL,
                hash VARCHAR(128) NOT NULL,
                jws TEXT NOT NULL)"],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, &["DROP TABLE ledger_checkpoint"]).await
    }
}

/// Open data: anonymous downloads of public datasets, counted per dataset and day (no client, no address).
#[derive(Debug)]
struct M0008OpenDownloads;

impl MigrationName for M0008OpenDownloads {
    fn name(&self) -> &str {
        "m0008_open_downloads"
    }
}

const UP_0008: &[&str] = &["CREATE TABLE open_downloads (
        dataset_id VARCHAR(200) NOT NULL,
        day VARCHAR(10) NOT NULL,
        downloads BIGINT NOT NULL,
        PRIMARY KEY (dataset_id, day))"];

const DOWN_0008: &[&str] = &["DROP TABLE open_downloads"];

#[async_trait]
impl MigrationTrait for M0008OpenDownloads {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, UP_0008).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, DOWN_0008).await
    }
}

/// The federated catalog at scale: sources with their crawl state (lease, back-off, last error, the live
/// generation of their datasets), datasets with what search filters and ranks on, and the full-text index:
/// an FTS5 table on SQLite, a `tsvector` (Swedish and English configurations) with a GIN index on
/// PostgreSQL. Full-text search is the one place the two backends need different DDL. The cache tables of
/// m0001 go (a cache: the crawler fills the new ones again).
#[derive(Debug)]
struct M0009FederatedSearch;

impl MigrationName for M0009FederatedSearch {
    fn name(&self) -> &str {
        "m0009_federated_search"
    }
}

const UP_0009_SOURCES: &str = "CREATE TABLE fed_sources (
        address VARCHAR(2048) NOT NULL PRIMARY KEY,
        participant_id VARCHAR(2048) NOT NULL,
        participant_key VARCHAR(2048) NOT NULL,
        city VARCHAR(500) NOT NULL,
        city_key VARCHAR(500) NOT NULL,
        origin VARCHAR(16) NOT NULL,
        state VARCHAR(16) NOT NULL,
        fetched_at BIGINT NULL,
        attempted_at BIGINT NULL,
        dataset_count BIGINT NOT NULL,
        failures BIGINT NOT NULL,
        last_error TEXT NULL,
        next_crawl_at BIGINT NOT NULL,
        lease_owner VARCHAR(100) NULL,
        lease_until BIGINT NULL,
        generation BIGINT NOT NULL)";

/// The dataset table's columns after its id (the id's type differs: SQLite's rowid, PostgreSQL's identity).
/// The body comes last: a scan for search and facets reads the short columns without passing over it.
const DATASET_COLUMNS_0009: &str = "
        address VARCHAR(2048) NOT NULL,
        generation BIGINT NOT NULL,
        dataset_id VARCHAR(2048) NOT NULL,
        data_model VARCHAR(200) NULL,
        model_key VARCHAR(200) NULL,
        themes TEXT NOT NULL,
        themes_key TEXT NOT NULL,
        licence VARCHAR(500) NULL,
        licence_key VARCHAR(500) NULL,
        access VARCHAR(16) NOT NULL,
        title_terms TEXT NOT NULL,
        tag_terms TEXT NOT NULL,
        text_terms TEXT NOT NULL,
        other_terms TEXT NOT NULL,
        body TEXT NOT NULL";

const UP_0009_INDEXES: &[&str] = &[
    "CREATE UNIQUE INDEX fed_datasets_key ON fed_datasets (address, generation, dataset_id)",
    "CREATE INDEX fed_datasets_model ON fed_datasets (model_key)",
    "CREATE INDEX fed_sources_due ON fed_sources (next_crawl_at)",
    "CREATE INDEX fed_sources_city ON fed_sources (city, address)",
    // The facet counts of each source's live datasets, kept at each crawl's commit: a search without
    // words sums these instead of counting every dataset.
    "CREATE TABLE fed_facets (
        address VARCHAR(2048) NOT NULL,
        generation BIGINT NOT NULL,
        data_model VARCHAR(200) NULL,
        model_key VARCHAR(200) NULL,
        themes TEXT NOT NULL,
        themes_key TEXT NOT NULL,
        licence VARCHAR(500) NULL,
        licence_key VARCHAR(500) NULL,
        access VARCHAR(16) NOT NULL,
        n BIGINT NOT NULL)",
    "CREATE INDEX fed_facets_source ON fed_facets (address, generation)",
];

const DOWN_0009: &[&str] = &[
    "DROP INDEX fed_facets_source",
    "DROP TABLE fed_facets",
    "DROP INDEX fed_sources_city",
    "DROP INDEX fed_sources_due",
    "DROP INDEX fed_datasets_model",
    "DROP INDEX fed_datasets_key",
    "DROP TABLE fed_datasets",
    "DROP TABLE fed_sources",
    CATALOG_SOURCES_0001,
    CACHED_DATASETS_0001,
];

#[async_trait]
impl MigrationTrait for M0009FederatedSearch {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let postgres = manager.get_database_backend() == sea_orm::DbBackend::Postgres;
        let datasets = if postgres {
            format!(
                "CREATE TABLE fed_datasets (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,{DATASET_COLUMNS_0009},
                tsv TSVECTOR NOT NULL)"
            )
        } else {
            format!("CREATE TABLE fed_datasets (id INTEGER PRIMARY KEY,{DATASET_COLUMNS_0009})")
        };
        let mut up = vec![
            "DROP TABLE cached_datasets",
            "DROP TABLE catalog_sources",
            UP_0009_SOURCES,
            datasets.as_str(),
        ];
        up.extend(UP_0009_INDEXES);
        if postgres {
            up.push("CREATE INDEX fed_datasets_tsv ON fed_datasets USING GIN (tsv)");
        } else {
            // Contentless: the terms are kept in fed_datasets; deletes by rowid.
            up.push(
                "CREATE VIRTUAL TABLE fed_fts USING fts5(terms, content='', contentless_delete=1)",
            );
        }
        run(manager, &up).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == sea_orm::DbBackend::Postgres {
            run(manager, &["DROP INDEX fed_datasets_tsv"]).await?;
        } else {
            run(manager, &["DROP TABLE fed_fts"]).await?;
        }
        run(manager, DOWN_0009).await
    }
}

/// The catalog's revision: one counter that every change of an asset, policy or offer raises in its own
/// transaction, so that a replica can tell from one cheap read whether what it cached of the catalog is current.
#[derive(Debug)]
struct M0010CatalogRevision;

impl MigrationName for M0010CatalogRevision {
    fn name(&self) -> &str {
        "m0010_catalog_revision"
    }
}

#[async_trait]
impl MigrationTrait for M0010CatalogRevision {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(
            manager,
            &[
                "CREATE TABLE catalog_revision (id INTEGER NOT NULL PRIMARY KEY, revision BIGINT NOT NULL)",
                "INSERT INTO catalog_revision (id, revision) VALUES (1, 0)",
            ],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, &["DROP TABLE catalog_revision"]).await
    }
}

/// The federated search index made fast at 300,000 datasets (SQLite): the FTS5
/// table keeps rowids only (`detail=none`: search needs no positions, and its lists are several times
/// smaller) with prefix indexes, since every query word is a prefix (`"parker"*`); without them FTS5
/// merges the lists of every indexed word with that prefix. Rebuilt from the terms kept in
/// `fed_datasets`. The dataset's JSON moves to `fed_bodies` (read for a page's hits only), so that the
/// rows that ranking and facets visit for every hit are a third as wide. And, on both backends, the last reading of the member directory (`fed_directory`), so
/// that a directory that cannot be read shows in `caap catalog sources`, not only in a log.
#[derive(Debug)]
struct M0011FederatedIndex;

const UP_0011_DIRECTORY: &str = "CREATE TABLE fed_directory (
        url VARCHAR(2048) NOT NULL PRIMARY KEY,
        attempted_at BIGINT NOT NULL,
        read_at BIGINT NULL,
        members BIGINT NOT NULL,
        failures BIGINT NOT NULL,
        last_error TEXT NULL)";

impl MigrationName for M0011FederatedIndex {
    fn name(&self) -> &str {
        "m0011_federated_index"
    }
}

/// The index's terms of a dataset, from its columns (what `stage_page` writes into it).
pub(crate) const FTS_TERMS: &str = "title_terms || text_terms || tag_terms || other_terms";

fn fts_0011(options: &str) -> [String; 3] {
    [
        "DROP TABLE fed_fts".to_owned(),
        format!(
            "CREATE VIRTUAL TABLE fed_fts USING fts5(terms, content='', contentless_delete=1{options})"
        ),
        format!("INSERT INTO fed_fts (rowid, terms) SELECT id, {FTS_TERMS} FROM fed_datasets"),
    ]
}

#[async_trait]
impl MigrationTrait for M0011FederatedIndex {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let bodies = if manager.get_database_backend() == sea_orm::DbBackend::Postgres {
            "CREATE TABLE fed_bodies (id BIGINT NOT NULL PRIMARY KEY, body TEXT NOT NULL)"
        } else {
            "CREATE TABLE fed_bodies (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"
        };
        run(
            manager,
            &[
                UP_0011_DIRECTORY,
                bodies,
                "INSERT INTO fed_bodies (id, body) SELECT id, body FROM fed_datasets",
                "ALTER TABLE fed_datasets DROP COLUMN body",
            ],
        )
        .await?;
        if manager.get_database_backend() == sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        let up = fts_0011(", detail=none, prefix='2 3 4 5 6 7 8 9 10'");
        run(manager, &up.iter().map(String::as_str).collect::<Vec<_>>()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(
            manager,
            &[
                "DROP TABLE fed_directory",
                "ALTER TABLE fed_datasets ADD COLUMN body TEXT NOT NULL DEFAULT ''",
                "UPDATE fed_datasets SET body = COALESCE((SELECT b.body FROM fed_bodies b \
                 WHERE b.id = fed_datasets.id), '')",
                "DROP TABLE fed_bodies",
            ],
        )
        .await?;
        if manager.get_database_backend() == sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        let down = fts_0011("");
        run(
            manager,
            &down.iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .await
    }
}

/// Search without visiting each hit's row (issue 18 at 300,000 datasets). A dataset's id carries its
/// *bucket* (`id >> 20`): the datasets of one source generation that share data model, themes, licence and
/// access, kept in `fed_buckets` with their count (which replaces `fed_facets`). Facets, totals and filters
/// are then counted per bucket from the index's row ids alone. On SQLite the index also holds each
/// term marked with its column (`t_parker` for a word of the title: `_` is a token character here and
/// never one of a term), so a hit's score, which depends on the columns its words are in, comes from
/// the index alone too. The cache is emptied (the ids change) and every source is due for crawling at once.
#[derive(Debug)]
struct M0012FederatedBuckets;

impl MigrationName for M0012FederatedBuckets {
    fn name(&self) -> &str {
        "m0012_federated_buckets"
    }
}

/// The columns of a bucket (and of m0009's `fed_facets`) after its id.
const BUCKET_COLUMNS: &str = "address VARCHAR(2048) NOT NULL,
        generation BIGINT NOT NULL,
        data_model VARCHAR(200) NULL,
        model_key VARCHAR(200) NULL,
        themes TEXT NOT NULL,
        themes_key TEXT NOT NULL,
        licence VARCHAR(500) NULL,
        licence_key VARCHAR(500) NULL,
        access VARCHAR(16) NOT NULL,
        n BIGINT NOT NULL";

/// The full-text index as m0012 leaves it (terms marked with their column, `_` part of a token).
const FTS_0012: &str = "CREATE VIRTUAL TABLE fed_fts USING fts5(terms, content='', \
    contentless_delete=1, detail=none, prefix='2 3 4 5 6 7 8 9 10', \
    tokenize=\"unicode61 tokenchars '_'\")";

/// Empties the federated cache and makes every source due.
const EMPTY_CACHE: &[&str] = &[
    "DELETE FROM fed_bodies",
    "DELETE FROM fed_datasets",
    "UPDATE fed_sources SET generation = 0, dataset_count = 0, next_crawl_at = 0",
];

#[async_trait]
impl MigrationTrait for M0012FederatedBuckets {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let postgres = manager.get_database_backend() == sea_orm::DbBackend::Postgres;
        let buckets = if postgres {
            format!(
                "CREATE TABLE fed_buckets (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, \
                 bucket_key TEXT NOT NULL, {BUCKET_COLUMNS})"
            )
        } else {
            format!(
                "CREATE TABLE fed_buckets (id INTEGER PRIMARY KEY, bucket_key TEXT NOT NULL, {BUCKET_COLUMNS})"
            )
        };
        let mut up: Vec<&str> = EMPTY_CACHE.to_vec();
        up.extend([
            "DROP INDEX fed_facets_source",
            "DROP TABLE fed_facets",
            buckets.as_str(),
            "CREATE INDEX fed_buckets_source ON fed_buckets (address, generation, bucket_key)",
        ]);
        if postgres {
            up.push("ALTER TABLE fed_datasets ALTER COLUMN id DROP IDENTITY");
        } else {
            up.extend(["DROP TABLE fed_fts", FTS_0012]);
        }
        run(manager, &up).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let postgres = manager.get_database_backend() == sea_orm::DbBackend::Postgres;
        let facets = format!("CREATE TABLE fed_facets ({BUCKET_COLUMNS})");
        let mut down: Vec<&str> = EMPTY_CACHE.to_vec();
        down.extend([
            "DROP INDEX fed_buckets_source",
            "DROP TABLE fed_buckets",
            facets.as_str(),
            "CREATE INDEX fed_facets_source ON fed_facets (address, generation)",
        ]);
        if postgres {
            down.push("ALTER TABLE fed_datasets ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY");
        } else {
            down.extend([
                "DROP TABLE fed_fts",
                "CREATE VIRTUAL TABLE fed_fts USING fts5(terms, content='', contentless_delete=1, \
                 detail=none, prefix='2 3 4 5 6 7 8 9 10')",
            ]);
        }
        run(manager, &down).await
    }
}

/// Search counts, facets and ranks from a term index of its own (ADR 0011): for each term and bucket,
/// which of the bucket's datasets have it and in which column (`fed_terms`, written when a crawl is
/// committed). It replaces the full-text index of m0009/m0011/m0012 (SQLite's FTS5 table, PostgreSQL's
/// `tsvector` with its GIN index), which every search had to walk hit by hit. PostgreSQL compares the terms
/// bytewise (`COLLATE "C"`), so a prefix is one range of the key on both backends, and its keys carry the
/// sets (`INCLUDE`), so a word's rows are read from an index alone. The cache is emptied
/// (the committed catalogs have no term rows) and every source is due for crawling at once.
#[derive(Debug)]
struct M0013FederatedTerms;

impl MigrationName for M0013FederatedTerms {
    fn name(&self) -> &str {
        "m0013_federated_terms"
    }
}

/// The federated cache's revision, raised by every change of its live buckets or sources, so that a
/// process can tell from one read whether the bucket directory it keeps is current.
const UP_0013_REVISION: [&str; 2] = [
    "CREATE TABLE fed_revision (id INTEGER NOT NULL PRIMARY KEY, revision BIGINT NOT NULL)",
    "INSERT INTO fed_revision (id, revision) VALUES (1, 0)",
];

/// Empties the federated cache (with its buckets, which m0012 added) and makes every source due.
fn empty_cache_0013() -> Vec<&'static str> {
    let mut all = EMPTY_CACHE.to_vec();
    all.push("DELETE FROM fed_buckets");
    all
}

#[async_trait]
impl MigrationTrait for M0013FederatedTerms {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let postgres = manager.get_database_backend() == sea_orm::DbBackend::Postgres;
        let mut up: Vec<&str> = empty_cache_0013();
        if postgres {
            up.extend([
                "DROP INDEX fed_datasets_tsv",
                "ALTER TABLE fed_datasets DROP COLUMN tsv",
                "CREATE TABLE fed_terms (term TEXT COLLATE \"C\" NOT NULL, bucket BIGINT NOT NULL, \
                 docs BYTEA NOT NULL, PRIMARY KEY (term, bucket) INCLUDE (docs))",
            ]);
        } else {
            up.extend([
                "DROP TABLE fed_fts",
                "CREATE TABLE fed_terms (term TEXT NOT NULL, bucket INTEGER NOT NULL, \
                 docs BLOB NOT NULL, PRIMARY KEY (term, bucket)) WITHOUT ROWID",
            ]);
        }
        // A bucket's terms: what a search of some buckets and a source's removal look up (on
        // PostgreSQL with the sets, so a word's rows in some buckets come from the index alone: 922
        // buffers instead of 1,222 and no heap visits for "luftkvalitet stationen").
        up.push(if postgres {
            "CREATE INDEX fed_terms_bucket ON fed_terms (bucket, term) INCLUDE (docs)"
        } else {
            "CREATE INDEX fed_terms_bucket ON fed_terms (bucket, term)"
        });
        up.extend(UP_0013_REVISION);
        run(manager, &up).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let postgres = manager.get_database_backend() == sea_orm::DbBackend::Postgres;
        let mut down: Vec<&str> = empty_cache_0013();
        down.extend([
            "DROP TABLE fed_revision",
            "DROP INDEX fed_terms_bucket",
            "DROP TABLE fed_terms",
        ]);
        if postgres {
            down.extend([
                "ALTER TABLE fed_datasets ADD COLUMN tsv TSVECTOR NOT NULL",
                "CREATE INDEX fed_datasets_tsv ON fed_datasets USING GIN (tsv)",
            ]);
        } else {
            down.push(FTS_0012);
        }
        run(manager, &down).await
    }
}
