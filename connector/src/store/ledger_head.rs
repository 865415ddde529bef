//! The ledger's signed head: a checkpoint of the last entry (its `seq` and `hash`), signed with the
//! connector's key and kept in two places a deleted ledger row cannot reach: a `ledger_checkpoint` row and a
//! file in the connector's data directory. `crate::ledger::verify` checks the ledger against both (see
//! ADR 0007).
//!
//! The head is sealed off the write path (ADR 0010): a commit that appended entries wakes a background
//! sealer, which signs the ledger's current head in a transaction of its own and then writes the file, at
//! most once per [`SEAL_INTERVAL`] however many commits happened in between. Closing the store seals the
//! last head.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

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

/// The least time between two seals: the checkpoints lag the ledger by at most about this much (plus one
/// seal) while a connector runs, and under load one seal covers every commit in between.
pub const SEAL_INTERVAL: Duration = Duration::from_millis(50);

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
    /// The highest `seq` in the file (read back at start if this key signed it), so it never moves back.
    written: std::sync::Mutex<u64>,
    /// Woken by every commit that appended to the ledger.
    dirty: tokio::sync::Notify,
    /// One seal at a time (the background sealer's and the one at close).
    sealing: tokio::sync::Mutex<()>,
    /// Set when the store closes: the background sealer stops.
    closing: AtomicBool,
}

/// A signed head, for the head file once its checkpoint committed.
#[derive(Debug, Clone)]
pub(crate) struct SignedHead {
    seq: u64,
    jws: String,
}

impl LedgerSeal {
    /// Signs with `key`; with `file`, also keeps the signed head there (a head this key signed already in
    /// the file is never replaced by an earlier one, across restarts too).
    pub fn new(key: ParticipantKey, file: Option<PathBuf>) -> Self {
        let written = file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|jws| {
                let jwk = key.public_jwk().ok()?;
                open_head(&jws, &[jwk]).ok()
            })
            .map_or(0, |head| head.seq);
        LedgerSeal {
            key,
            file,
            written: std::sync::Mutex::new(written),
            dirty: tokio::sync::Notify::new(),
            sealing: tokio::sync::Mutex::new(()),
            closing: AtomicBool::new(false),
        }
    }

    /// Called after a commit that appended to the ledger: the sealer will sign the new head.
    pub(crate) fn appended(&self) {
        self.dirty.notify_one();
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
async fn checkpoint_in<C: ConnectionTrait>(
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
    ///
    /// Inside a Tokio runtime this starts the background sealer, which also seals the head found at start
    /// (entries a crashed predecessor appended after its last seal). Elsewhere heads are sealed only by
    /// [`Store::seal_ledger_head`] and at [`Store::close`].
    pub fn with_ledger_seal(self, seal: LedgerSeal) -> Store {
        let store = self.with_manual_ledger_seal(seal);
        if let (Ok(runtime), Some(seal)) =
            (tokio::runtime::Handle::try_current(), store.seal.clone())
        {
            seal.appended();
            runtime.spawn(store.clone().keep_sealed(seal));
        }
        store
    }

    /// A seal without the background sealer: heads are sealed only by [`Store::seal_ledger_head`] and at
    /// close (for tests that decide when).
    pub(crate) fn with_manual_ledger_seal(mut self, seal: LedgerSeal) -> Store {
        self.seal = Some(std::sync::Arc::new(seal));
        self
    }

    /// The background sealer: after each wake-up, one seal, then a pause of [`SEAL_INTERVAL`] in which
    /// further commits only leave a wake-up behind.
    async fn keep_sealed(self, seal: std::sync::Arc<LedgerSeal>) {
        loop {
            seal.dirty.notified().await;
            if seal.closing.load(Ordering::Acquire) {
                return;
            }
            if let Err(e) = self.seal_head(&seal, true).await {
                tracing::error!(error = %e, "cannot checkpoint the ledger's head");
            }
            tokio::time::sleep(SEAL_INTERVAL).await;
        }
    }

    /// Signs the ledger's current head and checkpoints it: the database row, then the head file. Returns the
    /// sealed entry (`None`: no seal, or an empty ledger).
    pub async fn seal_ledger_head(&self) -> Result<Option<u64>, StoreError> {
        match self.seal.clone() {
            Some(seal) => self.seal_head(&seal, false).await,
            None => Ok(None),
        }
    }

    async fn seal_head(
        &self,
        seal: &LedgerSeal,
        background: bool,
    ) -> Result<Option<u64>, StoreError> {
        let _one = seal.sealing.lock().await;
        if background && seal.closing.load(Ordering::Acquire) {
            return Ok(None);
        }
        let txn = self.begin_write().await?;
        let Some(head) = super::negotiations::ledger_head_in(&txn.txn).await? else {
            return Ok(None);
        };
        let signed = checkpoint_in(&txn.txn, seal, &head).await?;
        txn.commit().await?;
        seal.write_file(&signed);
        Ok(Some(head.seq))
    }

    /// Stops the background sealer and seals the last head (part of [`Store::close`]; once per seal).
    pub(super) async fn seal_at_close(&self) {
        let Some(seal) = self.seal.clone() else {
            return;
        };
        if seal.closing.swap(true, Ordering::AcqRel) {
            return;
        }
        seal.dirty.notify_one();
        if let Err(e) = self.seal_head(&seal, false).await {
            tracing::error!(error = %e, "cannot checkpoint the ledger's head at close");
        }
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
