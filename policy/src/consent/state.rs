//! The consent state machine: which status events a consent record may take next. One pure function,
//! [`transition`], table-tested cell by cell below.
//!
//! ```text
//!  (none) ──requested──▶ Requested ──given──▶ Given ──withdrawn──▶ Withdrawn
//!     │                    │   │               ▲ │ │ ╰──renewed──╮      │
//!     ╰───────given────────┼───┼───────────────╯ │ ╰──expired─▶ Expired (also from Requested)
//!                          │   ╰──expired──▶ Expired              │
//!                          ╰──refused──▶ Refused                  │
//!  Refused, Withdrawn, Expired ──requested/given──▶ Requested/Given; Expired ──renewed──▶ Given
//! ```
//!
//! Nothing can be withdrawn that was not given (a refused or requested consent has nothing to withdraw),
//! an active consent is renewed rather than given twice, and a withdrawn consent is given anew rather than
//! renewed (the citizen decides again; the connector does not quietly revive it).

use serde::{Deserialize, Serialize};

/// A consent status event (DPV consent status), what a record's history is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConsentStatus {
    /// `dpv:ConsentRequested`: a party asked for consent.
    Requested,
    /// `dpv:ConsentGiven`: the data subject gave it.
    Given,
    /// `dpv:ConsentRefused`: the data subject refused a request.
    Refused,
    /// `dpv:ConsentWithdrawn`: the data subject withdrew a given consent.
    Withdrawn,
    /// `dpv:ConsentExpired`: its validity (or the request's) ran out.
    Expired,
    /// `dpv:RenewedConsentGiven`: the data subject confirmed it again (a new validity from now).
    Renewed,
}

impl ConsentStatus {
    /// Every status.
    pub const ALL: [ConsentStatus; 6] = [
        ConsentStatus::Requested,
        ConsentStatus::Given,
        ConsentStatus::Refused,
        ConsentStatus::Withdrawn,
        ConsentStatus::Expired,
        ConsentStatus::Renewed,
    ];

    /// The DPV term, e.g. `dpv:ConsentGiven`.
    pub fn dpv_term(self) -> &'static str {
        match self {
            ConsentStatus::Requested => "dpv:ConsentRequested",
            ConsentStatus::Given => "dpv:ConsentGiven",
            ConsentStatus::Refused => "dpv:ConsentRefused",
            ConsentStatus::Withdrawn => "dpv:ConsentWithdrawn",
            ConsentStatus::Expired => "dpv:ConsentExpired",
            ConsentStatus::Renewed => "dpv:RenewedConsentGiven",
        }
    }

    /// Whether only the data subject may indicate this status (give, refuse, withdraw, renew); the others
    /// (request, expiry) are indicated by a party.
    pub fn is_the_subjects(self) -> bool {
        !matches!(self, ConsentStatus::Requested | ConsentStatus::Expired)
    }
}

impl std::fmt::Display for ConsentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.dpv_term())
    }
}

/// Where a consent record stands after its history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConsentState {
    /// No event yet.
    None,
    /// Asked, not answered.
    Requested,
    /// Given (or renewed): records may flow while it is valid.
    Given,
    /// Refused.
    Refused,
    /// Withdrawn.
    Withdrawn,
    /// Expired.
    Expired,
}

impl ConsentState {
    /// Every state.
    pub const ALL: [ConsentState; 6] = [
        ConsentState::None,
        ConsentState::Requested,
        ConsentState::Given,
        ConsentState::Refused,
        ConsentState::Withdrawn,
        ConsentState::Expired,
    ];
}

/// A status event the current state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a consent in state {from:?} cannot be {status:?} ({})", status.dpv_term())]
pub struct IllegalTransition {
    /// The state the record was in.
    pub from: ConsentState,
    /// The status event refused.
    pub status: ConsentStatus,
}

/// The state after `status` in state `from`, or why not.
pub fn transition(
    from: ConsentState,
    status: ConsentStatus,
) -> Result<ConsentState, IllegalTransition> {
    use ConsentState as S;
    use ConsentStatus as E;
    let to = match (from, status) {
        (S::None | S::Refused | S::Withdrawn | S::Expired, E::Requested) => S::Requested,
        (S::None | S::Requested | S::Refused | S::Withdrawn | S::Expired, E::Given) => S::Given,
        (S::Requested, E::Refused) => S::Refused,
        (S::Given, E::Withdrawn) => S::Withdrawn,
        (S::Requested | S::Given, E::Expired) => S::Expired,
        (S::Given | S::Expired, E::Renewed) => S::Given,
        _ => return Err(IllegalTransition { from, status }),
    };
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every cell: state × event → next state, or `None` for an illegal transition.
    #[test]
    fn every_cell_of_the_table() {
        use ConsentState as S;
        use ConsentStatus as E;
        // Columns: Requested, Given, Refused, Withdrawn, Expired, Renewed.
        let table: [(S, [Option<S>; 6]); 6] = [
            (
                S::None,
                [Some(S::Requested), Some(S::Given), None, None, None, None],
            ),
            (
                S::Requested,
                [
                    None,
                    Some(S::Given),
                    Some(S::Refused),
                    None,
                    Some(S::Expired),
                    None,
                ],
            ),
            (
                S::Given,
                [
                    None,
                    None,
                    None,
                    Some(S::Withdrawn),
                    Some(S::Expired),
                    Some(S::Given),
                ],
            ),
            (
                S::Refused,
                [Some(S::Requested), Some(S::Given), None, None, None, None],
            ),
            (
                S::Withdrawn,
                [Some(S::Requested), Some(S::Given), None, None, None, None],
            ),
            (
                S::Expired,
                [
                    Some(S::Requested),
                    Some(S::Given),
                    None,
                    None,
                    None,
                    Some(S::Given),
                ],
            ),
        ];
        assert_eq!(table.len(), S::ALL.len());
        for (from, row) in table {
            for (status, expected) in E::ALL.into_iter().zip(row) {
                let got = transition(from, status).ok();
                assert_eq!(got, expected, "{from:?} + {status:?}");
                if expected.is_none() {
                    let err = transition(from, status).unwrap_err();
                    assert_eq!(err, IllegalTransition { from, status });
                    assert!(err.to_string().contains(status.dpv_term()));
                }
            }
        }
    }

    #[test]
    fn the_cases_that_matter_most() {
        use ConsentState as S;
        use ConsentStatus as E;
        assert!(
            transition(S::Refused, E::Withdrawn).is_err(),
            "nothing to withdraw"
        );
        assert!(
            transition(S::Requested, E::Withdrawn).is_err(),
            "nothing to withdraw"
        );
        assert!(transition(S::Withdrawn, E::Withdrawn).is_err());
        assert!(transition(S::Given, E::Given).is_err(), "renew instead");
        assert!(
            transition(S::Withdrawn, E::Renewed).is_err(),
            "give anew instead"
        );
        assert_eq!(transition(S::Withdrawn, E::Given), Ok(S::Given));
    }

    #[test]
    fn who_indicates_what() {
        let by_subject: Vec<_> = ConsentStatus::ALL
            .into_iter()
            .filter(|s| s.is_the_subjects())
            .collect();
        assert_eq!(
            by_subject,
            [
                ConsentStatus::Given,
                ConsentStatus::Refused,
                ConsentStatus::Withdrawn,
                ConsentStatus::Renewed
            ]
        );
    }
}
