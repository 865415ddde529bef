//! The automatic decisions of a negotiation: does a request match a current offer, does the requester satisfy
//! the contract policy, is a received agreement the one that was negotiated, and the provider's signed
//! agreement.

use caap_catalog::offer::{Approval, Offer};
use caap_contracts::agreement::{sign_agreement, verify_agreement};
use caap_contracts::ledger::{EntryKind, NewEntry};
use caap_contracts::negotiation::messages::AgreementSignature;
use caap_identity::VerifiedCaller;
use caap_policy::{AgreementTerms, Policy, parse_policy};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::Negotiations;
use crate::error::ServiceError;
use crate::store::DocKind;

/// What the provider does with a contract request.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Agree to it.
    Agree,
    /// Wait for a human (`approval = "manual"` on the offer).
    Approval,
    /// Terminate, telling the consumer why.
    Terminate {
        /// Machine-readable code.
        code: &'static str,
        /// Readable reason.
        reason: String,
    },
}

/// Parses an offer or agreement from the wire, naming the problem readably.
pub fn parse(what: &str, value: &Value) -> Result<Policy, String> {
    parse_policy(value)
        .map_err(|e| format!("the {what} is not an ODRL policy caap can evaluate: {e}"))
}

/// The offer id and dataset id an offer on the wire names.
pub fn offer_ids(offer: &Value) -> Result<(String, Option<String>), String> {
    let id = offer
        .get("@id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or("the offer has no @id; name an offer from the catalog")?;
    let target = offer
        .get("target")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok((id.to_owned(), target))
}

impl Negotiations {
    /// Looks up the current offer a request names. `Ok(None)`: no such offer.
    pub async fn current_offer(&self, offer_id: &str) -> Result<Option<Offer>, ServiceError> {
        let namespace = caap_catalog::iri::Namespace::new(&self.identity.dsp_base);
        let Some(offer_id) = namespace.offer_handle(offer_id) else {
            return Ok(None);
        };
        match self.store.get(DocKind::Offer, offer_id).await? {
            None => Ok(None),
            Some(doc) => serde_json::from_value(doc.body).map(Some).map_err(|e| {
                ServiceError::Internal(format!("stored offer {offer_id} is unreadable: {e}"))
            }),
        }
    }

    async fn contract_policy(&self, offer: &Offer) -> Result<Policy, ServiceError> {
        let doc = self
            .store
            .get(DocKind::Policy, &offer.contract_policy)
            .await?
            .ok_or_else(|| {
                ServiceError::Internal(format!(
                    "offer {} names missing policy {}",
                    offer.id, offer.contract_policy
                ))
            })?;
        let body = doc.body.get("policy").cloned().unwrap_or_default();
        parse_policy(&body).map_err(|e| {
            ServiceError::Internal(format!(
                "stored policy {} is unreadable: {e}",
                offer.contract_policy
            ))
        })
    }

    /// The provider's judgement of a contract request (initial or counter-offer) from `caller` for
    /// `requested` (the offer as sent), with the ledger entry recording the policy decision.
    pub async fn judge_request(
        &self,
        caller: &VerifiedCaller,
        negotiation_id: &str,
        requested: &Value,
        dataset_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(Verdict, NewEntry), ServiceError> {
        let verdict = self.judge(caller, requested, dataset_id, now).await?;
        let (decision, reason) = match &verdict {
            Verdict::Agree => ("permit", String::new()),
            Verdict::Approval => ("manual-approval", "the offer needs a human approval".into()),
            Verdict::Terminate { reason, .. } => ("deny", reason.clone()),
        };
        let entry = NewEntry {
            at: now,
            kind: EntryKind::PolicyDecision,
            subject: negotiation_id.to_owned(),
            payload: json!({
                "point": "negotiation",
                "requester": caller.participant_id,
                "offerId": requested.get("@id"),
                "datasetId": dataset_id,
                "decision": decision,
                "reason": reason,
            }),
        };
        Ok((verdict, entry))
    }

    async fn judge(
        &self,
        caller: &VerifiedCaller,
        requested: &Value,
        dataset_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Verdict, ServiceError> {
        let terminate = |code, reason: String| Ok(Verdict::Terminate { code, reason });
        let (offer_id, _) = match offer_ids(requested) {
            Ok(ids) => ids,
            Err(reason) => return terminate("offer-unknown", reason),
        };
        let Some(offer) = self.current_offer(&offer_id).await? else {
            return terminate(
                "offer-unknown",
                format!("offer {offer_id} is not (or no longer) in this connector's catalog"),
            );
        };
        if !offer.assets.iter().any(|a| a == dataset_id) {
            return terminate(
                "target-mismatch",
                format!("offer {offer_id} does not cover dataset {dataset_id}"),
            );
        }
        let policy = self.contract_policy(&offer).await?;
        let asked = match parse("requested offer", requested) {
            Ok(p) => p,
            Err(reason) => return terminate("offer-invalid", reason),
        };
        if !asked.same_terms(&policy) {
            return terminate(
                "terms-differ",
                format!(
                    "the requested terms differ from offer {offer_id}: asked {}, offered {}",
                    asked.describe(),
                    policy.describe()
                ),
            );
        }
        // As if the first use happened now, for the purpose the offer names (see `crate::enforce`).
        let ctx = crate::enforce::usage_context(
            &policy,
            &caller.participant_id,
            dataset_id,
            now,
            0,
            None,
        )
        .with_claims(caller.claims.clone());
        let decision = self.decider.decide(&policy, &ctx);
        if !decision.permitted {
            return terminate(
                "policy-denied",
                format!(
                    "the contract policy of offer {offer_id} is not satisfied: {}",
                    decision.reasons.join("; ")
                ),
            );
        }
        if offer.approval == Approval::Manual {
            return Ok(Verdict::Approval);
        }
        Ok(Verdict::Agree)
    }

    /// The provider's agreement on `offer` (as requested) for `consumer`, and its signature.
    pub fn make_agreement(
        &self,
        offer: &Value,
        dataset_id: &str,
        consumer: &str,
        now: DateTime<Utc>,
    ) -> Result<(Value, AgreementSignature), ServiceError> {
        let policy = parse("offer", offer).map_err(|e| ServiceError::field("/offer", e))?;
        let terms = AgreementTerms {
            id: crate::negotiation::new_pid(),
            target: caap_catalog::iri::Namespace::new(&self.identity.dsp_base)
                .absolute_dataset(dataset_id),
            assigner: self.identity.participant_id.clone(),
            assignee: consumer.to_owned(),
            timestamp: now,
        };
        let agreement = policy.to_dsp_agreement_json(&terms);
        let jws = sign_agreement(&agreement, &self.identity.key)
            .map_err(|e| ServiceError::Internal(format!("signing the agreement failed: {e}")))?;
        let signer_jwk = caap_contracts::agreement::signer_public_jwk(&self.identity.key)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok((agreement, AgreementSignature { jws, signer_jwk }))
    }

    /// The consumer's check of a received agreement: it is signed (unless unsigned agreements are allowed),
    /// the signature verifies, and (with `terms_too`) it grants what was offered, on the dataset asked for, by
    /// the provider to us. A human verifying by hand (`manual`) is trusted with the terms, not the signature.
    pub fn check_agreement(
        &self,
        offered: &Value,
        (dataset_id, provider_address): (&str, &str),
        provider: &str,
        agreement: &Value,
        signature: Option<&AgreementSignature>,
        terms_too: bool,
    ) -> Result<(), String> {
        match signature {
            Some(sig) => verify_agreement(&sig.jws, agreement, &sig.signer_jwk)
                .map_err(|e| format!("the agreement signature does not verify: {e}"))?,
            None if self.config.negotiation.require_signed_agreements => {
                return Err(
                    "the agreement is not signed; this connector requires signed agreements \
                            (negotiation.require_signed_agreements)"
                        .into(),
                );
            }
            None => {}
        }
        if !terms_too {
            return Ok(());
        }
        let field = |k: &str| agreement.get(k).and_then(Value::as_str).unwrap_or_default();
        // The dataset as negotiated, or (a caap provider's handle) the IRI the provider publishes it under.
        let published =
            caap_catalog::iri::Namespace::new(provider_address).absolute_dataset(dataset_id);
        if field("target") != dataset_id && field("target") != published {
            return Err(format!(
                "the agreement's target `{}` is not the dataset negotiated ({dataset_id})",
                field("target")
            ));
        }
        if field("assignee") != self.identity.participant_id {
            return Err(format!(
                "the agreement's assignee `{}` is not this connector ({})",
                field("assignee"),
                self.identity.participant_id
            ));
        }
        if field("assigner") != provider {
            return Err(format!(
                "the agreement's assigner `{}` is not the provider ({provider})",
                field("assigner")
            ));
        }
        let got = parse("agreement", agreement)?;
        let want = parse("offer", offered)?;
        if !got.same_terms(&want) {
            return Err(format!(
                "the agreement grants other terms than offered: agreed {}, offered {}",
                got.describe(),
                want.describe()
            ));
        }
        Ok(())
    }
}
