//! Transfer process bodies: the `TransferProcess` acknowledgement and the `TransferError`.

use serde::{Deserialize, Serialize};

use super::state::TransferState;
use crate::jsonld::{dsp_context, type_tag};

type_tag!(
    /// The `@type` of a [`TransferProcessAck`]: always `"TransferProcess"`.
    TransferProcessType = "TransferProcess"
);
type_tag!(
    /// The `@type` of a [`TransferError`]: always `"TransferError"`.
    TransferErrorType = "TransferError"
);

/// The `TransferProcess` body: the answer to a transfer request (201) and to a GET.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferProcessAck {
    /// JSON-LD context; contains the DSP 2025-1 context.
    #[serde(rename = "@context")]
    pub context: Vec<String>,
    /// `"TransferProcess"`.
    #[serde(rename = "@type")]
    pub kind: TransferProcessType,
    /// The provider's id for this transfer process.
    pub provider_pid: String,
    /// The consumer's id for this transfer process.
    pub consumer_pid: String,
    /// The transfer process's current state.
    pub state: TransferState,
}

impl TransferProcessAck {
    /// An acknowledgement with the DSP 2025-1 context.
    pub fn new(
        provider_pid: impl Into<String>,
        consumer_pid: impl Into<String>,
        state: TransferState,
    ) -> Self {
        TransferProcessAck {
            context: dsp_context(),
            kind: TransferProcessType,
            provider_pid: provider_pid.into(),
            consumer_pid: consumer_pid.into(),
            state,
        }
    }
}

/// The `TransferError` body, sent with a 4xx (for example 400 for an illegal transition).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferError {
    /// JSON-LD context; contains the DSP 2025-1 context.
    #[serde(rename = "@context")]
    pub context: Vec<String>,
    /// `"TransferError"`.
    #[serde(rename = "@type")]
    pub kind: TransferErrorType,
    /// The provider's id for this transfer process.
    pub provider_pid: String,
    /// The consumer's id for this transfer process.
    pub consumer_pid: String,
    /// An implementation-specific error code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Human-readable reasons; left out when empty (the schema wants at least one item if present).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reason: Vec<String>,
}

impl TransferError {
    /// An error body with the DSP 2025-1 context.
    pub fn new(
        provider_pid: impl Into<String>,
        consumer_pid: impl Into<String>,
        code: Option<String>,
        reason: Vec<String>,
    ) -> Self {
        TransferError {
            context: dsp_context(),
            kind: TransferErrorType,
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
        let ack = TransferProcessAck::new("urn:uuid:p", "urn:uuid:c", TransferState::Suspended);
        let json = serde_json::to_value(&ack).unwrap();
        assert_eq!(
            json,
            json!({
                "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
                "@type": "TransferProcess",
                "providerPid": "urn:uuid:p",
                "consumerPid": "urn:uuid:c",
                "state": "SUSPENDED"
            })
        );
        assert_eq!(
            serde_json::from_value::<TransferProcessAck>(json.clone()).unwrap(),
            ack
        );
        let mut wrong = json;
        wrong["@type"] = json!("ContractNegotiation");
        assert!(serde_json::from_value::<TransferProcessAck>(wrong).is_err());
    }

    #[test]
    fn error_leaves_out_empty_code_and_reason() {
        let bare = TransferError::new("p", "c", None, Vec::new());
        let json = serde_json::to_value(&bare).unwrap();
        assert_eq!(
            json,
            json!({
                "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
                "@type": "TransferError",
                "providerPid": "p",
                "consumerPid": "c"
            })
        );
        assert_eq!(serde_json::from_value::<TransferError>(json).unwrap(), bare);
    }
}
