//! Sending what a negotiation owes: what is particular to negotiations for [`crate::processor`], which claims
//! the work with a lease, sends it and records the outcome the same way for every process kind.

use caap_contracts::Role;
use caap_contracts::negotiation::message::ContractNegotiationAck;
use caap_contracts::negotiation::process::{Documents, outgoing};
use caap_contracts::negotiation::state::NegotiationState;
use chrono::{DateTime, Utc};

use super::inbound::{agreement_entry, agreement_record};
use super::model::{Negotiation, Step};
use crate::processor::{Ack, Outcome, Work, post_to};
use crate::service::Connector;
use crate::store::processes::Effects;

impl Work for Negotiation {
    const NOUN: &'static str = "negotiation";

    async fn send(c: &Connector, n: &Negotiation, step: Step, _owner: &str) -> Outcome {
        // With DCP the provider's DID is verified: its agreement must be signed with one of its DID
        // document's assertion keys, not just any key the message carries. Resolving the DID may need the
        // provider's server, so it is checked here rather than when the agreement came in.
        if step == Step::Verify
            && n.role == Role::Consumer
            && c.config.dsp.auth.mode == crate::config::AuthMode::Dcp
            && let Some(sig) = &n.body.signature
            && let Err(reason) = c
                .trust
                .check_signer(&n.counterparty_id, &sig.signer_jwk)
                .await
        {
            return Outcome::Refused {
                code: "agreement-invalid",
                what: "agreement",
                reason,
            };
        }
        let docs = Documents {
            offer: &n.body.offer,
            agreement: n.body.agreement.as_ref(),
            signature: n.body.signature.as_ref(),
            termination: n.body.outgoing_termination.as_ref(),
            callback: &c.identity.dsp_base,
        };
        let pids = (n.provider_pid.as_deref(), n.consumer_pid.as_deref());
        let Some(message) = outgoing(step, n.role, n.state, pids, &docs) else {
            return if step == Step::Terminate {
                Outcome::LocalOnly
            } else {
                Outcome::Failed {
                    error: format!(
                        "cannot build the {} message: the counterparty's process id is not known yet",
                        step.as_str()
                    ),
                    permanent: true,
                }
            };
        };
        let ack = (step == Step::Request).then_some(Ack {
            name: "ContractNegotiation",
            provider_pid: |a: ContractNegotiationAck| a.provider_pid,
        });
        let to = (&*n.counterparty_id, &*n.counterparty_address);
        post_to(c, to, &message, ack).await
    }

    fn after_ack(
        c: &Connector,
        n: &mut Negotiation,
        to: Option<NegotiationState>,
        _bytes: u64,
        effects: &mut Effects,
        now: DateTime<Utc>,
    ) {
        if to == Some(NegotiationState::Finalized) {
            effects.agreement = agreement_record(n, &c.identity.participant_id, now);
            effects.ledger.extend(agreement_entry(n, now));
        }
    }

    /// Once an agreement we provide is committed, every citizen of its dataset is asked for consent when the
    /// data is consent-based (nothing happens otherwise). A crash in between loses only the requests, which
    /// `POST /api/v1/agreements/{id}/consent-requests` makes again.
    fn saved(c: &Connector, n: &Negotiation, effects: &Effects) {
        if n.role != Role::Provider {
            return;
        }
        if let Some(a) = &effects.agreement {
            let (c, id) = (c.clone(), a.id.clone());
            tokio::spawn(async move {
                if let Err(e) = c.data_plane().request_consents_for(&id).await {
                    tracing::warn!(agreement = %id, error = %e, "cannot ask the citizens for consent");
                }
            });
        }
    }
}
