//! The MIM3 transaction ledger, as a whole: verification straight from the store.

use caap_contracts::ledger::{ChainVerifier, LedgerFault, LedgerSummary};

use crate::store::{Store, StoreError};

/// Why a ledger check did not pass.
#[derive(Debug, thiserror::Error)]
pub enum LedgerCheckError {
    /// An entry is not what was written: the first bad one is named.
    #[error("{0}")]
    Tampered(LedgerFault),
    /// The database could not be read (or a row could not even be decoded; that is tampering too).
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Entries checked per database read.
const PAGE: u64 = 1000;

/// Walks the whole ledger in order and checks every hash, every link and every agreement signature.
pub async fn verify(store: &Store) -> Result<LedgerSummary, LedgerCheckError> {
    let mut verifier = ChainVerifier::new();
    let mut after = 0;
    loop {
        let page = store.ledger(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for entry in &page {
            verifier.push(entry).map_err(LedgerCheckError::Tampered)?;
        }
    }
    Ok(verifier.finish())
}
