//! The ledger's signed head: a checkpoint of the last entry (its `seq` and `hash`), signed with the
//! connector's key and kept in two places a deleted ledger row cannot reach: a `ledger_checkpoint` row
//! written in the same transaction as the entries, and a file in the connector's data directory written
//! after each commit. `crate::ledger::verify` checks the ledger against both (see `docs/ledger.md`).

use std::path::PathBuf;

use caap_identity::jose;
use caap_identity::keys::ParticipantKey;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ConnectionTrait, Statement};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

/// The name of the head file in the data directory.
pub const HEAD_FILE: &str = "ledger-head.jws";

/// The JWS `typ` of a signed ledger head.
const HEAD_TYP: &str = "caap-ledger-head+jwt";

/// What a checkpoint records: the ledger's last entry when it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerHead {
    /// The last entry's `seq`.
    pub seq: u64,
    /// The last entry's hash.
    pub hash: String,
}

/// Signs ledger heads and keeps the head file (set on the store by the running connector).
#[derive(Debug)]
pub struct LedgerSeal {
    key: ParticipantKey,
    file: Option<PathBuf>,
    /// The highest `seq` written to the file, so concurrent commits never move it back.
    written: std::sync::Mutex<u64>,
}

/// A head signed inside a transaction, for the file once the transaction committed.
#[derive(Debug, Clone)]
pub(crate) struct SignedHead {
    seq: u64,
    jws: String,
}

impl LedgerSeal {
    /// Signs with `key`; with `file`, also keeps the signed head there.
    pub fn new(key: ParticipantKey, file: Option<PathBuf>) -> Self {
        LedgerSeal {
            key,
            file,
            written: std::sync::Mutex::new(0),
        }
    }

    fn sign(&self, head: &LedgerHead) -> Result<SignedHead, StoreError> {
        let payload = serde_json::to_value(head)
            .map_err(|e| StoreError::Corrupt("ledger head".into(), e.to_string()))?;
        let jws = jose::sign_compact(&self.key, Some(HEAD_TYP), &payload)
            .map_err(|e| StoreError::Corrupt("ledger head signature".into(), e.to_string()))?;
        Ok(SignedHead { seq: head.seq, jws })
    }

    /// Writes the head file (atomically: a temporary file renamed over it), unless a later head is there.
    /// A failure is logged, not returned: the entries are committed, and the file is only a lower bound.
    pub(crate) fn write_file(&self, head: &SignedHead) {
        let Some(path) = &self.file else { return };
        let Ok(mut written) = self.written.lock() else {
            return;
        };
        if head.seq <= *written {
            return;
        }
        let tmp = path.with_extension("jws.tmp");
        let result =
            std::fs::write(&tmp, head.jws.as_bytes()).and_then(|()| std::fs::rename(&tmp, path));
        match result {
            Ok(()) => *written = head.seq,
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "cannot write the ledger head file")
            }
        }
    }
}

/// Reads a signed head, checking its signature with one of `keys` (public JWKs).
pub fn open_head(jws: &str, keys: &[serde_json::Value]) -> Result<LedgerHead, String> {
    let decoded = jose::decode_compact(jws.trim()).map_err(|e| format!("not a JWS: {e}"))?;
    if decoded.typ() != Some(HEAD_TYP) {
        return Err("not a signed ledger head".into());
    }
    if !keys
        .iter()
        .any(|k| jose::verify_with_jwk(&decoded, k).is_ok())
    {
        return Err("its signature is not by this connector's key".into());
    }
    serde_json::from_value(decoded.payload).map_err(|e| format!("unreadable: {e}"))
}

/// Signs `head` and records it as the checkpoint inside the caller's transaction (never moving it back).
pub(super) async fn checkpoint_in<C: ConnectionTrait>(
    db: &C,
    seal: &LedgerSeal,
    head: &LedgerHead,
) -> Result<SignedHead, StoreError> {
    let signed = seal.sign(head)?;
    let seq = i64::try_from(head.seq).unwrap_or(i64::MAX);
    let table = Alias::new("ledger_checkpoint");
    let mut insert = Query::insert();
    insert
        .into_table(table.clone())
        .columns([
            Alias::new("id"),
            Alias::new("seq"),
            Alias::new("hash"),
            Alias::new("jws"),
        ])
        .values_panic([
            "head".into(),
            seq.into(),
            head.hash.clone().into(),
            signed.jws.clone().into(),
        ])
        .on_conflict(
            OnConflict::column(Alias::new("id"))
                .update_columns([Alias::new("seq"), Alias::new("hash"), Alias::new("jws")])
                .action_and_where(Expr::col((table, Alias::new("seq"))).lt(seq))
                .to_owned(),
        );
    db.execute(&insert).await?;
    Ok(signed)
}

impl Store {
    /// Signs the ledger's head from now on (and keeps it in `file`); without a seal, no checkpoint is written.
    pub fn with_ledger_seal(mut self, seal: LedgerSeal) -> Store {
        self.seal = Some(std::sync::Arc::new(seal));
        self
    }

    /// The signed checkpoint kept in the database, if any.
    pub async fn ledger_checkpoint(&self) -> Result<Option<String>, StoreError> {
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                self.db.get_database_backend(),
                "SELECT jws FROM ledger_checkpoint WHERE id = 'head'",
            ))
            .await?;
        Ok(row.map(|r| r.try_get::<String>("", "jws")).transpose()?)
    }

    /// The first process or agreement that has no ledger entry of the kinds it must have: `(what, id)`.
    pub async fn first_unrecorded(&self) -> Result<Option<(&'static str, String)>, StoreError> {
        const CHECKS: [(&str, &str, &str); 3] = [
            ("negotiation", "negotiations", "'negotiation-state'"),
            ("transfer", "transfers", "'transfer-state'"),
            (
                "agreement",
                "agreements",
                "'agreement-signed', 'negotiation-state'",
            ),
        ];
        for (what, table, kinds) in CHECKS {
            let sql = format!(
                "SELECT t.id AS id FROM {table} t WHERE NOT EXISTS \
                 (SELECT 1 FROM ledger l WHERE l.subject = t.id AND l.kind IN ({kinds})) \
                 ORDER BY t.id LIMIT 1"
            );
            let row = self
                .db
                .query_one_raw(Statement::from_string(self.db.get_database_backend(), sql))
                .await?;
            if let Some(row) = row {
                return Ok(Some((what, row.try_get::<String>("", "id")?)));
            }
        }
        Ok(None)
    }
}
