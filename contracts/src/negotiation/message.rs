//! Contract negotiation bodies: the `ContractNegotiation` acknowledgement and the `ContractNegotiationError`.

use serde::{Deserialize, Serialize};

use super::state::NegotiationState;
use crate::jsonld::{dsp_context, type_tag};

type_tag!(
    /// The `@type` of a [`ContractNegotiationAck`]: always `"ContractNegotiation"`.
    ContractNegotiationType = "ContractNegotiation"
);
type_tag!(
    /// The `@type` of a [`ContractNegotiationError`]: always `"ContractNegotiationError"`.
    ContractNegotiationErrorType = "ContractNegotiationError"
);

/// The `ContractNegotiation` body: the answer to an initial request or offer (201) and to a GET.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractNegotiationAck {
    /// JSON-LD context; contains the DSP 2025-1 context.
    #[serde(rename = "@context")]
    pub context: Vec<String>,
    /// `"ContractNegotiation"`.
    #[serde(rename = "@type")]
    pub kind: ContractNegotiationType,
    /// The provider's id for this negotiation.
    pub provider_pid: String,
    /// The consumer's id for this negotiation.
    pub consumer_pid: String,
    /// The negotiation's current state.
    pub state: NegotiationState,
}

impl ContractNegotiationAck {
    /// An acknowledgement with the DSP 2025-1 context.
    pub fn new(
        provider_pid: impl Into<String>,
        consumer_pid: impl Into<String>,
        state: NegotiationState,
    ) -> Self {
        ContractNegotiationAck {
            context: dsp_context(),
            kind: ContractNegotiationType,
            provider_pid: provider_pid.into(),
            consumer_pid: consumer_pid.into(),
            state,
        }
    }
}

/// The `ContractNegotiationError` body, sent with a 4xx (for example 400 for an illegal transition).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractNegotiationError {
    /// JSON-LD context; contains the DSP 2025-1 context.
    #[serde(rename = "@context")]
    pub context: Vec<String>,
    /// `"ContractNegotiationError"`.
    #[serde(rename = "@type")]
    pub kind: ContractNegotiationErrorType,
    /// The provider's id for this negotiation.
    pub provider_pid: String,
    /// The consumer's id for this negotiation.
    pub consumer_pid: String,
    /// An implementation-specific error code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Human-readable reasons; left out when empty (the schema wants at least one item if present).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reason: Vec<String>,
}

impl ContractNegotiationError {
    /// An error body with the DSP 2025-1 context.
    pub fn new(
        provider_pid: impl Into<String>,
        consumer_pid: impl Into<String>,
        code: Option<String>,
        reason: Vec<String>,
    ) -> Self {
        ContractNegotiationError {
            context: dsp_context(),
            kind: ContractNegotiationErrorType,
            provider_pid: provider_pid.into(),
            consumer_pid: consumer_pid.into(),
            code,
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ack_round_trips_and_checks_its_type() {
        let ack = ContractNegotiationAck::new("urn:uuid:p", "urn:uuid:c", NegotiationState::Agreed);
        let json = serde_json::to_value(&ack).unwrap();
        assert_eq!(
            json,
            json!({
                "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
                "@type": "ContractNegotiation",
                "providerPid": "urn:uuid:p",
                "consumerPid": "urn:uuid:c",
                "state": "AGREED"
            })
        );
        assert_eq!(
            serde_json::from_value::<ContractNegotiationAck>(json.clone()).unwrap(),
            ack
        );
        let mut wrong = json;
        wrong["@type"] = json!("TransferProcess");
        let error = serde_json::from_value::<ContractNegotiationAck>(wrong).unwrap_err();
        assert!(
            error.to_string().contains("\"ContractNegotiation\""),
            "{error}"
        );
    }

    #[test]
    fn error_leaves_out_empty_code_and_reason() {
        let bare = ContractNegotiationError::new("p", "c", None, Vec::new());
        assert_eq!(
            serde_json::to_value(&bare).unwrap(),
            json!({
                "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
                "@type": "ContractNegotiationError",
                "providerPid": "p",
                "consumerPid": "c"
            })
        );
        let parsed: ContractNegotiationError =
            serde_json::from_value(serde_json::to_value(&bare).unwrap()).unwrap();
        assert_eq!(parsed, bare);
        let full = ContractNegotiationError::new("p", "c", Some("400".into()), vec!["no".into()]);
        let json = serde_json::to_value(&full).unwrap();
        assert_eq!(json["code"], json!("400"));
        assert_eq!(json["reason"], json!(["no"]));
    }
}
