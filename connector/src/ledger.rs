//! The MIM3 transaction ledger, as a whole: verification straight from the store, against the signed
//! head checkpoints (the database's and the data directory's file), and cross-checked with the processes
//! and agreements it must record.

use std::path::PathBuf;

use caap_contracts::ledger::{ChainVerifier, LedgerFault, LedgerSummary};

use crate::store::ledger_head::{LedgerHead, open_head};
use crate::store::{Store, StoreError};

/// Why a ledger check did not pass.
#[derive(Debug, thiserror::Error)]
pub enum LedgerCheckError {
    /// An entry is not what was written: the first bad one is named.
    #[error("{0}")]
    Tampered(LedgerFault),
    /// The ledger ends before a signed head: rows were deleted from its end.
    #[error(
        "TRUNCATED: the signed head in {place} records entry {seq}, but the ledger ends at entry {ends} \
         (entries were deleted)"
    )]
    Truncated {
        /// Which checkpoint: `the database checkpoint` or `the head file …`.
        place: String,
        /// The entry the checkpoint records.
        seq: u64,
        /// The ledger's last entry (0: empty).
        ends: u64,
    },
    /// The entry a signed head names has another hash: the ledger was rewritten (and rehashed).
    #[error(
        "REWRITTEN: entry {seq} is not the one the signed head in {place} records (the ledger was \
         rewritten from there on)"
    )]
    Rewritten {
        /// Which checkpoint.
        place: String,
        /// The entry.
        seq: u64,
    },
    /// A checkpoint is not one this connector signed.
    #[error("CHECKPOINT INVALID: the signed head in {place} is not valid: {reason}")]
    BadCheckpoint {
        /// Which checkpoint.
        place: String,
        /// Why.
        reason: String,
    },
    /// The ledger has entries but the database holds no checkpoint of them.
    #[error(
        "CHECKPOINT MISSING: the ledger has {entries} entries but the database holds no signed head \
         (it was deleted)"
    )]
    MissingCheckpoint {
        /// How many entries there are.
        entries: u64,
    },
    /// A process or agreement has no entry in the ledger.
    #[error("UNRECORDED: {what} {id} has no entry in the ledger (its entries were deleted)")]
    Unrecorded {
        /// `negotiation`, `transfer` or `agreement`.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// The database could not be read (or a row could not even be decoded; that is tampering too).
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// What the signed heads are checked with.
#[derive(Debug, Clone, Default)]
pub struct HeadChecks {
    /// The public JWKs a head may be signed with (the connector's key and its retired ones).
    pub keys: Vec<serde_json::Value>,
    /// The head file in the connector's data directory (a missing file is not a failure: a fresh data
    /// directory has none yet).
    pub file: Option<PathBuf>,
}

/// A verified ledger: its summary and the checkpoints it was checked against.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The chain's summary.
    pub summary: LedgerSummary,
    /// The database checkpoint's entry.
    pub database_head: Option<u64>,
    /// The head file's entry.
    pub file_head: Option<u64>,
}

/// Entries checked per database read.
const PAGE: u64 = 1000;

/// Walks the whole ledger in order and checks every hash, every link and every agreement signature; then
/// that it reaches each signed head with the hash the head records, and that every negotiation, transfer
/// and agreement has its entries.
pub async fn verify(store: &Store, checks: &HeadChecks) -> Result<Verified, LedgerCheckError> {
    let mut heads = Vec::new();
    if let Some(jws) = store.ledger_checkpoint().await? {
        heads.push(("the database checkpoint".to_owned(), jws));
    }
    let database_checkpoint = !heads.is_empty();
    if let Some(path) = &checks.file {
        match std::fs::read_to_string(path) {
            Ok(jws) => heads.push((format!("the head file {}", path.display()), jws)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(LedgerCheckError::BadCheckpoint {
                    place: format!("the head file {}", path.display()),
                    reason: e.to_string(),
                });
            }
        }
    }
    let heads = heads
        .into_iter()
        .map(|(place, jws)| match open_head(&jws, &checks.keys) {
            Ok(head) => Ok((place, head)),
            Err(reason) => Err(LedgerCheckError::BadCheckpoint { place, reason }),
        })
        .collect::<Result<Vec<(String, LedgerHead)>, _>>()?;

    let mut verifier = ChainVerifier::new();
    let mut after = 0;
    loop {
        let page = store.ledger(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for entry in &page {
            verifier.push(entry).map_err(LedgerCheckError::Tampered)?;
            for (place, head) in &heads {
                if head.seq == entry.seq && head.hash != entry.hash {
                    return Err(LedgerCheckError::Rewritten {
                        place: place.clone(),
                        seq: entry.seq,
                    });
                }
            }
        }
    }
    let summary = verifier.finish();
    for (place, head) in &heads {
        if head.seq > summary.entries {
            return Err(LedgerCheckError::Truncated {
                place: place.clone(),
                seq: head.seq,
                ends: summary.entries,
            });
        }
    }
    if summary.entries > 0 && !database_checkpoint {
        return Err(LedgerCheckError::MissingCheckpoint {
            entries: summary.entries,
        });
    }
    if let Some((what, id)) = store.first_unrecorded().await? {
        return Err(LedgerCheckError::Unrecorded { what, id });
    }
    let head_of = |prefix: &str| {
        heads
            .iter()
            .find(|(place, _)| place.starts_with(prefix))
            .map(|(_, h)| h.seq)
    };
    Ok(Verified {
        database_head: head_of("the database"),
        file_head: head_of("the head file"),
        summary,
    })
}

/// The ledger service: the MIM3 transaction ledger's export. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Ledger {
    store: Store,
}

impl crate::service::Connector {
    /// The ledger service, sharing this connector's store.
    pub fn ledger(&self) -> Ledger {
        Ledger {
            store: self.store.clone(),
        }
    }
}

impl Ledger {
    /// Up to `limit` (1 to 10 000) ledger entries after sequence number `after`, oldest first, and
    /// whether more follow.
    pub async fn page(
        &self,
        after: u64,
        limit: u64,
    ) -> Result<(Vec<caap_contracts::ledger::LedgerEntry>, bool), crate::error::ServiceError> {
        if !(1..=10_000).contains(&limit) {
            return Err(crate::error::ServiceError::BadRequest(
                "limit must be between 1 and 10000".into(),
                vec![],
            ));
        }
        let mut entries = self.store.ledger(after, limit + 1).await?;
        let more = entries.len() as u64 > limit;
        entries.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok((entries, more))
    }
}
