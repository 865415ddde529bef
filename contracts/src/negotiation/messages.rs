//! The contract negotiation protocol messages of DSP 2025-1 (the bodies that change state), as serde types.
//!
//! Policies (`offer`, `agreement`) stay JSON values here: the `policy` crate parses and judges them, and the
//! connector keeps them exactly as they were sent, so a signature over an agreement stays checkable.
//! Unknown members are accepted (JSON-LD lets a sender add terms); the schema's required ones are not optional.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::state::NegotiationEvent;
use crate::jsonld::{DSP_CONTEXT, dsp_context, policy_context, type_tag};

/// The member of a `ContractAgreementMessage` that carries caap's agreement signature. A full IRI, so that it
/// survives JSON-LD processing under the protected DSP context and other connectors can ignore it.
pub const AGREEMENT_SIGNATURE: &str = "https://w3id.org/caap/v1#agreementSignature";

type_tag!(
    /// `"ContractRequestMessage"`.
    ContractRequestType = "ContractRequestMessage"
);
type_tag!(
    /// `"ContractOfferMessage"`.
    ContractOfferType = "ContractOfferMessage"
);
type_tag!(
    /// `"ContractAgreementMessage"`.
    ContractAgreementType = "ContractAgreementMessage"
);
type_tag!(
    /// `"ContractAgreementVerificationMessage"`.
    ContractAgreementVerificationType = "ContractAgreementVerificationMessage"
);
type_tag!(
    /// `"ContractNegotiationEventMessage"`.
    ContractNegotiationEventType = "ContractNegotiationEventMessage"
);
type_tag!(
    /// `"ContractNegotiationTerminationMessage"`.
    ContractNegotiationTerminationType = "ContractNegotiationTerminationMessage"
);

/// Checks that `@context` names the DSP 2025-1 context.
pub fn check_context(context: &[String]) -> Result<(), String> {
    if context.iter().any(|c| c == DSP_CONTEXT) {
        Ok(())
    } else {
        Err(format!("@context must contain \"{DSP_CONTEXT}\""))
    }
}

/// `ContractRequestMessage`: the consumer's initial request (with `callbackAddress`) or a counter-offer (with
/// `providerPid`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractRequestMessage {
    /// JSON-LD context.
    #[serde(rename = "@context")]
    pub context: Vec<String>,
    /// The type tag.
    #[serde(rename = "@type")]
    pub kind: ContractRequestType,
    /// The consumer's process id.
    pub consumer_pid: String,
    /// The provider's process id; present on a counter-offer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_pid: Option<String>,
    /// The requested offer (`@id`, `target`, rules).
    pub offer: Value,
    /// Where the provider reaches the consumer; present on the initial request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_address: Option<String>,
}

impl ContractRequestMessage {
    /// Checks what serde cannot: the context, and exactly one of `callbackAddress` and `providerPid` (the
    /// schema's `oneOf`).
    pub fn check(&self) -> Result<(), String> {
        check_context(&self.context)?;
        match (&self.callback_address, &self.provider_pid) {
            (Some(_), Some(_)) => Err(
                "send callbackAddress (initial request) or providerPid (counter-offer), not both"
                    .into(),
            ),
            (None, None) => Err(
                "callbackAddress is required on an initial request, providerPid on a counter-offer"
                    .into(),
            ),
            _ => Ok(()),
        }
    }

    /// The event for the state machine.
    pub fn event(&self) -> NegotiationEvent {
        NegotiationEvent::Request {
            counter_offer: self.provider_pid.is_some(),
        }
    }
}

/// `ContractOfferMessage`: the provider's initial offer (with `callbackAddress`) or an offer within a
/// negotiation (with `consumerPid`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractOfferMessage {
    /// JSON-LD context.
    #[serde(rename = "@context")]
    pub context: Vec<String>,
    /// The type tag.
    #[serde(rename = "@type")]
    pub kind: ContractOfferType,
    /// The provider's process id.
    pub provider_pid: String,
    /// The consumer's process id; present within a negotiation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_pid: Option<String>,
    /// The offer.
    pub offer: Value,
    /// Where the consumer reaches the provider; present on the initial offer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_address: Option<String>,
}

impl ContractOfferMessage {
    /// Checks the context and that exactly one of `callbackAddress` and `consumerPid` is present.
    pub fn check(&self) -> Result<(), String> {
        check_context(&self.context)?;
        match (&self.callback_address, &self.consumer_pid) {
            (Some(_), Some(_)) => Err(
                "send callbackAddress (initial offer) or consumerPid (offer within a negotiation), not both"
                    .into(),
            ),
            (None, None) => Err(
                "callbackAddress is required on an initial offer, consumerPid within a negotiation"
                    .into(),
            ),
            _ => Ok(()),
        }
    }

    /// The event for the state machine.
    pub fn event(&self) -> NegotiationEvent {
        NegotiationEvent::Offer {
            counter: self.consumer_pid.is_some(),
        }
    }
}

/// caap's signature over an agreement, carried in [`AGREEMENT_SIGNATURE`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgreementSignature {
    /// Compact JWS over the canonical JSON of the agreement.
    pub jws: String,
    /// The signer's public key (JWK); its `kid` names the signer's DID verification method.
    pub signer_jwk: Value,
}

/// `ContractAgreementMessage`: the provider's agreement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractAgreementMessage {
    /// JSON-LD context.
    #[serde(rename = "@context")]
    pub context: Vec<String>,
    /// The type tag.
    #[serde(rename = "@type")]
    pub kind: ContractAgreementType,
    /// The provider's process id.
    pub provider_pid: String,
    /// The consumer's process id.
    pub consumer_pid: String,
    /// The agreement (`@id`, `target`, `assigner`, `assignee`, `timestamp`, rules).
    pub agreement: Value,
    /// The provider's signature, when the provider signs (caap always does).
    #[serde(
        rename = "https://w3id.org/caap/v1#agreementSignature",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub signature: Option<AgreementSignature>,
}

/// `ContractAgreementVerificationMessage`: the consumer confirms the agreement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractAgreementVerificationMessage {
    /// JSON-LD context.
    #[serde(rename = "@context")]
    pub context: Vec<String>,
    /// The type tag.
    #[serde(rename = "@type")]
    pub kind: ContractAgreementVerificationType,
    /// The provider's process id.
    pub provider_pid: String,
    /// The consumer's process id.
    pub consumer_pid: String,
}

/// The `eventType` of a [`ContractNegotiationEventMessage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventType {
    /// The consumer accepts the provider's latest offer.
    Accepted,
    /// The provider finalizes the agreement.
    Finalized,
}

/// `ContractNegotiationEventMessage`: ACCEPTED (consumer) or FINALIZED (provider).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractNegotiationEventMessage {
    /// JSON-LD context.
    #[serde(rename = "@context")]
    pub context: Vec<String>,
    /// The type tag.
    #[serde(rename = "@type")]
    pub kind: ContractNegotiationEventType,
    /// The provider's process id.
    pub provider_pid: String,
    /// The consumer's process id.
    pub consumer_pid: String,
    /// What happened.
    pub event_type: EventType,
}

impl ContractNegotiationEventMessage {
    /// The event for the state machine.
    pub fn event(&self) -> NegotiationEvent {
        match self.event_type {
            EventType::Accepted => NegotiationEvent::Accepted,
            EventType::Finalized => NegotiationEvent::Finalized,
        }
    }
}

/// `ContractNegotiationTerminationMessage`, from either side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractNegotiationTerminationMessage {
    /// JSON-LD context.
    #[serde(rename = "@context")]
    pub context: Vec<String>,
    /// The type tag.
    #[serde(rename = "@type")]
    pub kind: ContractNegotiationTerminationType,
    /// The provider's process id.
    pub provider_pid: String,
    /// The consumer's process id.
    pub consumer_pid: String,
    /// An implementation-specific code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Why; items may be strings or objects (the schema allows any), left out when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reason: Vec<Value>,
}

impl ContractNegotiationTerminationMessage {
    /// The reasons as one readable line (strings as they are, other values as JSON).
    pub fn reason_text(&self) -> String {
        self.reason
            .iter()
            .map(|r| match r {
                Value::String(s) => s.clone(),
                Value::Object(m) => m
                    .get("@value")
                    .and_then(Value::as_str)
                    .map_or_else(|| r.to_string(), str::to_owned),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl ContractRequestMessage {
    /// A request; `provider_pid` set makes it a counter-offer, else `callback_address` must be given.
    pub fn new(
        consumer_pid: &str,
        provider_pid: Option<&str>,
        offer: Value,
        callback_address: Option<&str>,
    ) -> Self {
        ContractRequestMessage {
            context: policy_context(),
            kind: ContractRequestType,
            consumer_pid: consumer_pid.into(),
            provider_pid: provider_pid.map(str::to_owned),
            offer,
            callback_address: callback_address.map(str::to_owned),
        }
    }
}

impl ContractOfferMessage {
    /// An offer; `consumer_pid` set makes it an offer within a negotiation.
    pub fn new(
        provider_pid: &str,
        consumer_pid: Option<&str>,
        offer: Value,
        callback_address: Option<&str>,
    ) -> Self {
        ContractOfferMessage {
            context: policy_context(),
            kind: ContractOfferType,
            provider_pid: provider_pid.into(),
            consumer_pid: consumer_pid.map(str::to_owned),
            offer,
            callback_address: callback_address.map(str::to_owned),
        }
    }
}

impl ContractAgreementMessage {
    /// An agreement message.
    pub fn new(
        provider_pid: &str,
        consumer_pid: &str,
        agreement: Value,
        signature: Option<AgreementSignature>,
    ) -> Self {
        ContractAgreementMessage {
            context: policy_context(),
            kind: ContractAgreementType,
            provider_pid: provider_pid.into(),
            consumer_pid: consumer_pid.into(),
            agreement,
            signature,
        }
    }
}

impl ContractAgreementVerificationMessage {
    /// A verification message.
    pub fn new(provider_pid: &str, consumer_pid: &str) -> Self {
        ContractAgreementVerificationMessage {
            context: dsp_context(),
            kind: ContractAgreementVerificationType,
            provider_pid: provider_pid.into(),
            consumer_pid: consumer_pid.into(),
        }
    }
}

impl ContractNegotiationEventMessage {
    /// An event message.
    pub fn new(provider_pid: &str, consumer_pid: &str, event_type: EventType) -> Self {
        ContractNegotiationEventMessage {
            context: dsp_context(),
            kind: ContractNegotiationEventType,
            provider_pid: provider_pid.into(),
            consumer_pid: consumer_pid.into(),
            event_type,
        }
    }
}

impl ContractNegotiationTerminationMessage {
    /// A termination with an optional code and a reason (left out when empty).
    pub fn new(provider_pid: &str, consumer_pid: &str, code: Option<&str>, reason: &str) -> Self {
        ContractNegotiationTerminationMessage {
            context: dsp_context(),
            kind: ContractNegotiationTerminationType,
            provider_pid: provider_pid.into(),
            consumer_pid: consumer_pid.into(),
            code: code.map(str::to_owned),
            reason: if reason.is_empty() {
                Vec::new()
            } else {
                vec![Value::String(reason.into())]
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn request_needs_exactly_one_of_callback_and_provider_pid() {
        let initial = ContractRequestMessage::new("c", None, json!({}), Some("http://cb"));
        assert!(initial.check().is_ok());
        assert_eq!(
            initial.event(),
            NegotiationEvent::Request {
                counter_offer: false
            }
        );
        let counter = ContractRequestMessage::new("c", Some("p"), json!({}), None);
        assert!(counter.check().is_ok());
        assert_eq!(
            counter.event(),
            NegotiationEvent::Request {
                counter_offer: true
            }
        );
        assert!(
            ContractRequestMessage::new("c", Some("p"), json!({}), Some("x"))
                .check()
                .is_err()
        );
        assert!(
            ContractRequestMessage::new("c", None, json!({}), None)
                .check()
                .is_err()
        );
        let mut wrong = initial;
        wrong.context = vec!["https://w3id.org/dspace/2024/1/context.json".into()];
        assert!(wrong.check().unwrap_err().contains("2025/1"));
    }

    #[test]
    fn agreement_signature_travels_under_its_iri() {
        let m = ContractAgreementMessage::new(
            "p",
            "c",
            json!({"@id": "a"}),
            Some(AgreementSignature {
                jws: "x.y.z".into(),
                signer_jwk: json!({"kty": "EC"}),
            }),
        );
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v[AGREEMENT_SIGNATURE]["jws"], "x.y.z");
        let back: ContractAgreementMessage = serde_json::from_value(v).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn termination_reasons_read_as_text() {
        let mut t = ContractNegotiationTerminationMessage::new("p", "c", Some("42"), "no");
        assert_eq!(t.reason_text(), "no");
        t.reason.push(json!({"@value": "nope", "@language": "en"}));
        assert_eq!(t.reason_text(), "no; nope");
        let empty = ContractNegotiationTerminationMessage::new("p", "c", None, "");
        assert!(
            serde_json::to_value(&empty)
                .unwrap()
                .get("reason")
                .is_none()
        );
    }

    #[test]
    fn event_types_map_to_events() {
        let m: ContractNegotiationEventMessage = serde_json::from_value(json!({
            "@context": [DSP_CONTEXT], "@type": "ContractNegotiationEventMessage",
            "providerPid": "p", "consumerPid": "c", "eventType": "FINALIZED"
        }))
        .unwrap();
        assert_eq!(m.event(), NegotiationEvent::Finalized);
        assert!(
            serde_json::from_value::<ContractNegotiationEventMessage>(json!({
                "@context": [DSP_CONTEXT], "@type": "ContractNegotiationEventMessage",
                "providerPid": "p", "consumerPid": "c", "eventType": "AGREED"
            }))
            .is_err()
        );
    }
}
