//! Persistence with SeaORM: SQLite by default, PostgreSQL for scale. The only module that knows
//! sea-orm; it hands out domain types and implements the domain crates' store traits.

pub mod consent;
mod entities;
pub mod federation;
pub mod identity;
pub mod ledger_head;
pub mod migration;
pub mod negotiations;
pub mod open_data;
pub mod processes;
pub mod stats;
pub mod transfers;

use std::sync::Arc;

use caap_catalog::CatalogFault;
use caap_catalog::asset::Asset;
use caap_catalog::build::CatalogSource;
use caap_catalog::offer::{Offer, ResolvedOffer};
use caap_catalog::page::Cursor;
use caap_identity::Secret;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
    TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

use crate::clock::Clock;
pub use federation::CatalogSourceInfo;

use entities::{doc_ref, document};
use migration::Migrator;

/// The kinds of document the management API manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocKind {
    /// A dataset with its data address.
    Asset,
    /// An ODRL policy.
    Policy,
    /// An offer of assets under policies.
    Offer,
}

impl DocKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Asset => "asset",
            DocKind::Policy => "policy",
            DocKind::Offer => "offer",
        }
    }
}

/// A stored document with its bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDoc {
    /// The id.
    pub id: String,
    /// The document.
    pub body: serde_json::Value,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Starts at 1, grows by one on every change.
    pub version: i64,
}

/// A reference from a document to another one, with the field that makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocRef {
    /// The referenced kind.
    pub kind: DocKind,
    /// The referenced id.
    pub id: String,
    /// JSON pointer of the field holding the reference, for error messages.
    pub pointer: String,
}

impl DocRef {
    /// The references an offer makes: its assets and its two policies.
    pub fn of_offer(offer: &Offer) -> Vec<DocRef> {
        let assets = offer.assets.iter().enumerate().map(|(i, a)| DocRef {
            kind: DocKind::Asset,
            id: a.clone(),
            pointer: format!("/assets/{i}"),
        });
        let policies = [
            (&offer.access_policy, "/accessPolicy"),
            (&offer.contract_policy, "/contractPolicy"),
        ]
        .into_iter()
        .map(|(id, pointer)| DocRef {
            kind: DocKind::Policy,
            id: id.clone(),
            pointer: pointer.into(),
        });
        assets.chain(policies).collect()
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such document.
    #[error("no {kind} `{id}`")]
    NotFound {
        /// Kind.
        kind: &'static str,
        /// Id.
        id: String,
    },
    /// The id is taken, or the version did not match.
    #[error("{0}")]
    Conflict(String),
    /// A referenced document does not exist.
    #[error("{pointer}: no {kind} `{id}`")]
    MissingRef {
        /// The field.
        pointer: String,
        /// Referenced kind.
        kind: &'static str,
        /// Referenced id.
        id: String,
    },
    /// Other documents still reference this one.
    #[error("{kind} `{id}` is still used by {users}; change or delete those first")]
    InUse {
        /// Kind.
        kind: &'static str,
        /// Id.
        id: String,
        /// Who uses it, e.g. `offer o1, offer o2`.
        users: String,
    },
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] DbErr),
    /// A stored document could not be read back.
    #[error("stored {0} is corrupt: {1}")]
    Corrupt(String, String),
}

/// Each SQLite connection's page cache by default, in KiB (`database.sqlite_cache_kib`).
pub const DEFAULT_SQLITE_CACHE_KIB: u32 = 512;

/// How long an SQLite statement waits for another connection's lock before "database is locked".
const SQLITE_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Connects. SQLite answers a connection's set-up (switching a new database file to WAL) with "database is
/// locked" at once, without waiting out the busy timeout, when another process sets up the same file at
/// that moment: such a set-up is tried again, for up to the busy timeout.
async fn connect(options: ConnectOptions) -> Result<DatabaseConnection, DbErr> {
    let deadline = std::time::Instant::now() + SQLITE_BUSY_TIMEOUT;
    loop {
        match Database::connect(options.clone()).await {
            Err(e) if is_sqlite_busy(&e) && std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            done => return done,
        }
    }
}

/// A connection's set-up refused with SQLite's SQLITE_BUSY ("database is locked").
fn is_sqlite_busy(e: &DbErr) -> bool {
    matches!(e, DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e))
        if matches!(&**e, sea_orm::sqlx::Error::Database(d) if d.code().as_deref() == Some("5")))
}

/// The PostgreSQL advisory lock that migrations hold (an arbitrary key: "caap" in ASCII).
const MIGRATION_LOCK: i64 = 0x6361_6170;

/// The connector's store.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    /// SQLite allows one writer; a transaction that reads and then writes can deadlock another one doing the
    /// same (SQLITE_BUSY on the lock upgrade, which no busy timeout cures). So on SQLite the write
    /// transactions of one process take turns here. PostgreSQL needs no gate.
    write_gate: Option<Arc<tokio::sync::Mutex<()>>>,
    /// Signs the ledger's head after every append (see [`ledger_head`]); `None` for tools that only read.
    seal: Option<Arc<ledger_head::LedgerSeal>>,
    /// Federated searches running at once (see [`federation::search_permits`]): a search's working set
    /// grows with its hits, so more at once than can make progress only adds memory.
    search_gate: Arc<tokio::sync::Semaphore>,
    /// The federated cache's bucket directory as of the last revision read (see
    /// `federation::directory`).
    fed_directory: Arc<std::sync::Mutex<Option<Arc<federation::Directory>>>>,
}

/// A write transaction, holding the SQLite write gate (if any) until it is dropped.
pub(crate) struct WriteTxn {
    pub(crate) txn: sea_orm::DatabaseTransaction,
    _gate: Option<tokio::sync::OwnedMutexGuard<()>>,
    seal: Option<Arc<ledger_head::LedgerSeal>>,
    /// Whether this transaction appended to the ledger (the seal signs the new head once it committed).
    appended: bool,
}

impl std::ops::Deref for WriteTxn {
    type Target = sea_orm::DatabaseTransaction;
    fn deref(&self) -> &Self::Target {
        &self.txn
    }
}

impl WriteTxn {
    pub(crate) async fn commit(self) -> Result<(), DbErr> {
        let WriteTxn {
            txn,
            _gate: gate,
            seal,
            appended,
        } = self;
        txn.commit().await?;
        drop(gate);
        if let (Some(seal), true) = (&seal, appended) {
            seal.appended();
        }
        Ok(())
    }
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}
fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl Store {
    /// Connects (creating the SQLite file and its directory if needed) and runs pending migrations.
    pub async fn open(
        url: &Secret,
        max_connections: u32,
        clock: Arc<dyn Clock>,
    ) -> Result<Store, StoreError> {
        Self::open_with(url, max_connections, DEFAULT_SQLITE_CACHE_KIB, clock).await
    }

    /// [`Store::open`] with each SQLite connection's page cache set to `sqlite_cache_kib` KiB.
    pub async fn open_with(
        url: &Secret,
        max_connections: u32,
        sqlite_cache_kib: u32,
        clock: Arc<dyn Clock>,
    ) -> Result<Store, StoreError> {
        let url = url.expose();
        if let Some(path) = url.strip_prefix("sqlite://") {
            let path = path.split('?').next().unwrap_or_default();
            if let Some(dir) = std::path::Path::new(path).parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Db(DbErr::Custom(format!(
                        "cannot create the database directory {}: {e}",
                        dir.display()
                    )))
                })?;
            }
        }
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .max_connections(max_connections)
            .min_connections(1)
            .sqlx_logging(false)
            // WAL with synchronous=NORMAL on every pooled connection: a commit survives a crash of the
            // process (not of the machine's power) without an fsync per transaction, the usual choice for WAL.
            .map_sqlx_sqlite_opts(move |o| {
                use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    // Negative: a size in KiB.
                    .pragma("cache_size", format!("-{sqlite_cache_kib}"))
            });
        let db = connect(options).await?;

        let write_gate = (db.get_database_backend() == DbBackend::Sqlite)
            .then(|| Arc::new(tokio::sync::Mutex::new(())));
        let searches = federation::search_permits(db.get_database_backend(), max_connections);
        let store = Store {
            db,
            clock,
            write_gate,
            seal: None,
            search_gate: Arc::new(tokio::sync::Semaphore::new(searches)),
            fed_directory: Arc::default(),
        };
        store.migrate_up().await?;
        Ok(store)
    }

    /// Takes the SQLite write gate for a single write statement (`None` on PostgreSQL).
    pub(crate) async fn write_gate(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match &self.write_gate {
            Some(g) => Some(g.clone().lock_owned().await),
            None => None,
        }
    }

    /// Offers are part of the MIM3 ledger: publishing, changing and withdrawing one is recorded in the same
    /// transaction as the change.
    async fn record_offer(
        &self,
        txn: &mut WriteTxn,
        kind: DocKind,
        id: &str,
        what: &str,
        body: Option<&serde_json::Value>,
        version: i64,
    ) -> Result<(), StoreError> {
        if kind != DocKind::Offer {
            return Ok(());
        }
        let entry = caap_contracts::ledger::NewEntry {
            at: self.clock.now(),
            kind: caap_contracts::ledger::EntryKind::OfferPublished,
            subject: id.to_owned(),
            payload: serde_json::json!({"change": what, "offer": body, "version": version}),
        };
        negotiations::append_ledger_in(txn, &[entry]).await
    }

    /// Begins a write transaction (taking turns with the others on SQLite).
    ///
    /// On SQLite the transaction is `IMMEDIATE`: it takes the database's write lock at `BEGIN`, where the
    /// busy timeout waits for another writer (a statement outside the gate, another process, a checkpoint).
    /// A deferred one would take a read snapshot first and fail with "database is locked" at its first write
    /// whenever another writer got in between, which no busy timeout cures.
    pub(crate) async fn begin_write(&self) -> Result<WriteTxn, DbErr> {
        let gate = match &self.write_gate {
            Some(g) => Some(g.clone().lock_owned().await),
            None => None,
        };
        let txn = if gate.is_some() {
            self.db
                .begin_with_options(sea_orm::TransactionOptions {
                    sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
                    ..Default::default()
                })
                .await?
        } else {
            self.db.begin().await?
        };
        Ok(WriteTxn {
            txn,
            _gate: gate,
            seal: self.seal.clone(),
            appended: false,
        })
    }

    /// Applies pending migrations, in one transaction (see [`Store::migration_txn`]).
    pub async fn migrate_up(&self) -> Result<(), StoreError> {
        let txn = self.migration_txn().await?;
        Migrator::up(&*txn, None).await?;
        Ok(txn.commit().await?)
    }

    /// Rolls every migration back (drops caap's tables), in one transaction.
    pub async fn migrate_down(&self) -> Result<(), StoreError> {
        let txn = self.migration_txn().await?;
        Migrator::down(&*txn, None).await?;
        Ok(txn.commit().await?)
    }

    /// The transaction migrations run in: all of a run's statements on one connection, and all or none of
    /// its migrations applied.
    ///
    /// One connection matters on SQLite: each connection keeps its own copy of the schema and checks it only
    /// when a statement reads a table, so a `CREATE INDEX` prepared on another pooled connection that last
    /// saw the schema before a `DROP INDEX` of the same name was refused with "already exists" (the store
    /// tests' down-and-up failed about once in sixty runs). On PostgreSQL a transaction-scoped advisory lock
    /// makes replicas that start together take turns: the second finds nothing pending.
    async fn migration_txn(&self) -> Result<WriteTxn, DbErr> {
        let txn = self.begin_write().await?;
        if self.db.get_database_backend() == DbBackend::Postgres {
            txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
                .await?;
        }
        Ok(txn)
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.db.get_database_backend() {
            DbBackend::Postgres => "postgres",
            DbBackend::Sqlite => "sqlite",
            _ => "other",
        }
    }

    /// Cheap liveness check for readiness probes.
    pub async fn ping(&self) -> Result<(), StoreError> {
        Ok(self.db.ping().await?)
    }

    /// Closes the database, after sealing the ledger's last head (see [`ledger_head`]).
    pub async fn close(self) -> Result<(), StoreError> {
        self.seal_at_close().await;
        Ok(self.db.close().await?)
    }

    fn to_doc(m: document::Model) -> Result<StoredDoc, StoreError> {
        let body = serde_json::from_str(&m.body)
            .map_err(|e| StoreError::Corrupt(format!("{} {}", m.kind, m.id), e.to_string()))?;
        Ok(StoredDoc {
            id: m.id,
            body,
            created_at: from_millis(m.created_at),
            updated_at: from_millis(m.updated_at),
            version: m.version,
        })
    }

    async fn check_refs<C: ConnectionTrait>(db: &C, refs: &[DocRef]) -> Result<(), StoreError> {
        for r in refs {
            let found = document::Entity::find_by_id((r.kind.as_str().to_owned(), r.id.clone()))
                .one(db)
                .await?;
            if found.is_none() {
                return Err(StoreError::MissingRef {
                    pointer: r.pointer.clone(),
                    kind: r.kind.as_str(),
                    id: r.id.clone(),
                });
            }
        }
        Ok(())
    }

    async fn write_refs<C: ConnectionTrait>(
        db: &C,
        kind: DocKind,
        id: &str,
        refs: &[DocRef],
    ) -> Result<(), StoreError> {
        doc_ref::Entity::delete_many()
            .filter(doc_ref::Column::FromKind.eq(kind.as_str()))
            .filter(doc_ref::Column::FromId.eq(id))
            .exec(db)
            .await?;
        let mut seen = std::collections::HashSet::new();
        let rows: Vec<doc_ref::ActiveModel> = refs
            .iter()
            .filter(|r| seen.insert((r.kind, r.id.clone())))
            .map(|r| doc_ref::ActiveModel {
                from_kind: Set(kind.as_str().to_owned()),
                from_id: Set(id.to_owned()),
                to_kind: Set(r.kind.as_str().to_owned()),
                to_id: Set(r.id.clone()),
            })
            .collect();
        if !rows.is_empty() {
            doc_ref::Entity::insert_many(rows).exec(db).await?;
        }
        Ok(())
    }

    /// Raises the catalog's revision, in the transaction of a change to an asset, policy or offer.
    async fn raise_revision<C: ConnectionTrait>(db: &C) -> Result<(), StoreError> {
        db.execute_unprepared("UPDATE catalog_revision SET revision = revision + 1 WHERE id = 1")
            .await?;
        Ok(())
    }

    /// The catalog's revision: it grows with every committed change to an asset, policy or offer (by any
    /// process sharing the database), so what was built from the documents at one revision is current as long
    /// as this still reads the same.
    pub async fn catalog_revision(&self) -> Result<i64, StoreError> {
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                self.db.get_database_backend(),
                "SELECT revision FROM catalog_revision WHERE id = 1",
            ))
            .await?;
        Ok(row
            .map(|r| r.try_get::<i64>("", "revision"))
            .transpose()?
            .unwrap_or_default())
    }

    /// Creates a document; `Conflict` if the id is taken, `MissingRef` if a reference dangles.
    /// Document and references are written in one transaction.
    pub async fn create(
        &self,
        kind: DocKind,
        id: &str,
        body: &serde_json::Value,
        refs: &[DocRef],
    ) -> Result<StoredDoc, StoreError> {
        let now = millis(self.clock.now());
        let mut txn = self.begin_write().await?;
        if document::Entity::find_by_id((kind.as_str().to_owned(), id.to_owned()))
            .one(&txn.txn)
            .await?
            .is_some()
        {
            return Err(StoreError::Conflict(format!(
                "{} `{id}` already exists; use PUT to change it",
                kind.as_str()
            )));
        }
        Self::check_refs(&txn.txn, refs).await?;
        let model = document::ActiveModel {
            kind: Set(kind.as_str().to_owned()),
            id: Set(id.to_owned()),
            body: Set(body.to_string()),
            created_at: Set(now),
            updated_at: Set(now),
            version: Set(1),
        };
        document::Entity::insert(model).exec(&txn.txn).await?;
        Self::write_refs(&txn.txn, kind, id, refs).await?;
        Self::raise_revision(&txn.txn).await?;
        self.record_offer(&mut txn, kind, id, "published", Some(body), 1)
            .await?;
        txn.commit().await?;
        Ok(StoredDoc {
            id: id.to_owned(),
            body: body.clone(),
            created_at: from_millis(now),
            updated_at: from_millis(now),
            version: 1,
        })
    }

    /// Replaces a document. With `expected_version`, refuses (`Conflict`) if it changed meanwhile.
    pub async fn replace(
        &self,
        kind: DocKind,
        id: &str,
        body: &serde_json::Value,
        refs: &[DocRef],
        expected_version: Option<i64>,
    ) -> Result<StoredDoc, StoreError> {
        let now = millis(self.clock.now());
        let mut txn = self.begin_write().await?;
        let current = document::Entity::find_by_id((kind.as_str().to_owned(), id.to_owned()))
            .one(&txn.txn)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: kind.as_str(),
                id: id.to_owned(),
            })?;
        if let Some(v) = expected_version
            && v != current.version
        {
            return Err(StoreError::Conflict(format!(
                "{} `{id}` is at version {}, not {v}; read it again and retry",
                kind.as_str(),
                current.version
            )));
        }
        Self::check_refs(&txn.txn, refs).await?;
        // Optimistic: the update only applies if nobody changed the row since we read it.
        let updated = document::Entity::update_many()
            .col_expr(document::Column::Body, Expr::value(body.to_string()))
            .col_expr(document::Column::UpdatedAt, Expr::value(now))
            .col_expr(document::Column::Version, Expr::value(current.version + 1))
            .filter(document::Column::Kind.eq(kind.as_str()))
            .filter(document::Column::Id.eq(id))
            .filter(document::Column::Version.eq(current.version))
            .exec(&txn.txn)
            .await?;
        if updated.rows_affected != 1 {
            return Err(StoreError::Conflict(format!(
                "{} `{id}` changed while it was being updated; retry",
                kind.as_str()
            )));
        }
        Self::write_refs(&txn.txn, kind, id, refs).await?;
        Self::raise_revision(&txn.txn).await?;
        self.record_offer(
            &mut txn,
            kind,
            id,
            "changed",
            Some(body),
            current.version + 1,
        )
        .await?;
        txn.commit().await?;
        Ok(StoredDoc {
            id: id.to_owned(),
            body: body.clone(),
            created_at: from_millis(current.created_at),
            updated_at: from_millis(now),
            version: current.version + 1,
        })
    }

    /// One document.
    pub async fn get(&self, kind: DocKind, id: &str) -> Result<Option<StoredDoc>, StoreError> {
        document::Entity::find_by_id((kind.as_str().to_owned(), id.to_owned()))
            .one(&self.db)
            .await?
            .map(Self::to_doc)
            .transpose()
    }

    /// Up to `limit` documents from `cursor`, in scan order (see [`Cursor`]).
    pub async fn scan(
        &self,
        kind: DocKind,
        cursor: &Cursor,
        limit: u64,
    ) -> Result<Vec<StoredDoc>, StoreError> {
        let mut q = document::Entity::find().filter(document::Column::Kind.eq(kind.as_str()));
        q = match cursor {
            Cursor::Start => q.order_by_asc(document::Column::Id),
            Cursor::After(id) => q
                .filter(document::Column::Id.gt(id.as_str()))
                .order_by_asc(document::Column::Id),
            Cursor::Before(id) => q
                .filter(document::Column::Id.lt(id.as_str()))
                .order_by_desc(document::Column::Id),
        };
        q.limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Self::to_doc)
            .collect()
    }

    /// Several documents by id (missing ones are left out).
    pub async fn get_many(
        &self,
        kind: DocKind,
        ids: &[String],
    ) -> Result<Vec<StoredDoc>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        document::Entity::find()
            .filter(document::Column::Kind.eq(kind.as_str()))
            .filter(document::Column::Id.is_in(ids.iter().map(String::as_str)))
            .all(&self.db)
            .await?
            .into_iter()
            .map(Self::to_doc)
            .collect()
    }

    /// Deletes a document; `InUse` while others reference it.
    pub async fn delete(&self, kind: DocKind, id: &str) -> Result<(), StoreError> {
        let mut txn = self.begin_write().await?;
        let users = doc_ref::Entity::find()
            .filter(doc_ref::Column::ToKind.eq(kind.as_str()))
            .filter(doc_ref::Column::ToId.eq(id))
            .limit(10)
            .all(&txn.txn)
            .await?;
        if !users.is_empty() {
            return Err(StoreError::InUse {
                kind: kind.as_str(),
                id: id.to_owned(),
                users: users
                    .iter()
                    .map(|u| format!("{} {}", u.from_kind, u.from_id))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let gone = document::Entity::delete_by_id((kind.as_str().to_owned(), id.to_owned()))
            .exec(&txn.txn)
            .await?;
        if gone.rows_affected == 0 {
            return Err(StoreError::NotFound {
                kind: kind.as_str(),
                id: id.to_owned(),
            });
        }
        Self::write_refs(&txn.txn, kind, id, &[]).await?;
        Self::raise_revision(&txn.txn).await?;
        self.record_offer(&mut txn, kind, id, "withdrawn", None, 0)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Ids of documents of `from` kind that reference any of `to_ids` of kind `to`.
    async fn referrers(
        &self,
        from: DocKind,
        to: DocKind,
        to_ids: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let rows = doc_ref::Entity::find()
            .filter(doc_ref::Column::FromKind.eq(from.as_str()))
            .filter(doc_ref::Column::ToKind.eq(to.as_str()))
            .filter(doc_ref::Column::ToId.is_in(to_ids.iter().map(String::as_str)))
            .all(&self.db)
            .await?;
        let mut ids: Vec<String> = rows.into_iter().map(|r| r.from_id).collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }
}

impl From<StoreError> for CatalogFault {
    fn from(e: StoreError) -> Self {
        CatalogFault::Store(e.to_string())
    }
}

fn decode<T: serde::de::DeserializeOwned>(kind: &str, doc: StoredDoc) -> Result<T, CatalogFault> {
    serde_json::from_value(doc.body)
        .map_err(|e| CatalogFault::Store(format!("stored {kind} `{}` is unreadable: {e}", doc.id)))
}

impl CatalogSource for Store {
    async fn assets(&self, cursor: &Cursor, limit: u32) -> Result<Vec<Asset>, CatalogFault> {
        self.scan(DocKind::Asset, cursor, u64::from(limit))
            .await?
            .into_iter()
            .map(|d| decode("asset", d))
            .collect()
    }

    async fn asset(&self, id: &str) -> Result<Option<Asset>, CatalogFault> {
        self.get(DocKind::Asset, id)
            .await?
            .map(|d| decode("asset", d))
            .transpose()
    }

    async fn offers_for(&self, asset_ids: &[String]) -> Result<Vec<ResolvedOffer>, CatalogFault> {
        let offer_ids = self
            .referrers(DocKind::Offer, DocKind::Asset, asset_ids)
            .await?;
        let offers = self.get_many(DocKind::Offer, &offer_ids).await?;
        self.resolve_offers(offers).await
    }
}

impl Store {
    /// Every offer, with its policies resolved.
    pub async fn all_offers(&self) -> Result<Vec<ResolvedOffer>, CatalogFault> {
        let offers = document::Entity::find()
            .filter(document::Column::Kind.eq(DocKind::Offer.as_str()))
            .all(&self.db)
            .await
            .map_err(StoreError::from)?
            .into_iter()
            .map(Self::to_doc)
            .collect::<Result<Vec<_>, _>>()?;
        self.resolve_offers(offers).await
    }

    /// Offers as stored, read and with their policies resolved.
    async fn resolve_offers(
        &self,
        offers: Vec<StoredDoc>,
    ) -> Result<Vec<ResolvedOffer>, CatalogFault> {
        let offers: Vec<Offer> = offers
            .into_iter()
            .map(|d| decode("offer", d))
            .collect::<Result<_, _>>()?;
        let mut policy_ids: Vec<String> = offers
            .iter()
            .flat_map(|o| [o.access_policy.clone(), o.contract_policy.clone()])
            .collect();
        policy_ids.sort();
        policy_ids.dedup();
        let policies: std::collections::HashMap<String, serde_json::Value> = self
            .get_many(DocKind::Policy, &policy_ids)
            .await?
            .into_iter()
            .map(|d| {
                let body = d.body.get("policy").cloned().unwrap_or_default();
                (d.id, body)
            })
            .collect();
        offers
            .into_iter()
            .map(|offer| {
                let get = |id: &str| {
                    policies.get(id).cloned().ok_or_else(|| {
                        CatalogFault::Store(format!(
                            "offer `{}` names missing policy `{id}`",
                            offer.id
                        ))
                    })
                };
                Ok(ResolvedOffer {
                    access_policy: get(&offer.access_policy)?,
                    contract_policy: get(&offer.contract_policy)?,
                    offer,
                })
            })
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests;
