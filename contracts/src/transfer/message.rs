//! Transfer process bodies of DSP 2025-1: the messages that change state (request, start, suspension,
//! completion, termination, with the `DataAddress` they may carry), the `TransferProcess` acknowledgement and
//! the `TransferError`.
//!
//! Unknown members are accepted (JSON-LD lets a sender add terms); the schema's required ones are not
//! optional, and `@type` must be the exact term. `check()` tests what serde cannot: that `@context` names the
//! DSP 2025-1 context.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::state::{TransferEvent, TransferState};
use crate::jsonld::{DSP_CONTEXT, dsp_context, type_tag};

type_tag!(
    /// The `@type` of a [`TransferProcessAck`]: always `"TransferProcess"`.
    TransferProcessType = "TransferProcess"
);
type_tag!(
    /// The `@type` of a [`TransferError`]: always `"TransferError"`.
    TransferErrorType = "TransferError"
);

type_tag!(
    /// `"TransferRequestMessage"`.
    TransferRequestType = "TransferRequestMessage"
);
type_tag!(
    /// `"TransferStartMessage"`.
    TransferStartType = "TransferStartMessage"
);
type_tag!(
    /// `"TransferSuspensionMessage"`.
    TransferSuspensionType = "TransferSuspensionMessage"
);
type_tag!(
    /// `"TransferCompletionMessage"`.
    TransferCompletionType = "TransferCompletionMessage"
);
type_tag!(
    /// `"TransferTerminationMessage"`.
    TransferTerminationType = "TransferTerminationMessage"
);
type_tag!(
    /// `"DataAddress"`.
    DataAddressType = "DataAddress"
);
type_tag!(
    /// `"EndpointProperty"`.
    EndpointPropertyType = "EndpointProperty"
);

/// Checks that `@context` names the DSP 2025-1 context.
fn check_context(context: &[String]) -> Result<(), String> {
    if context.iter().any(|c| c == DSP_CONTEXT) {
        Ok(())
    } else {
        Err(format!("@context must contain \"{DSP_CONTEXT}\""))
    }
}

/// The reasons of a suspension or termination as one readable line (strings as they are, `@value` objects by
/// their value, anything else as JSON).
fn reason_text(reason: &[Value]) -> String {
    reason
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

/// One reason, or none when `reason` is empty (the schema wants at least one item if `reason` is present).
fn reasons(reason: &str) -> Vec<Value> {
    if reason.is_empty() {
        Vec::new()
    } else {
        vec![Value::String(reason.to_owned())]
    }
}

/// `EndpointProperty`: one named value of a [`DataAddress`], e.g. `authorization` (a token) or `authType`.
/// `Debug` leaves the value out, as it is often a credential.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointProperty {
    /// `"EndpointProperty"`.
    #[serde(rename = "@type")]
    pub kind: EndpointPropertyType,
    /// The property's name.
    pub name: String,
    /// The property's value.
    pub value: String,
}

impl EndpointProperty {
    /// A property.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        EndpointProperty {
            kind: EndpointPropertyType,
            name: name.into(),
            value: value.into(),
        }
    }
}

impl fmt::Debug for EndpointProperty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointProperty")
            .field("name", &self.name)
            .field("value", &"<redacted>")
            .finish()
    }
}

/// `DataAddress`: where and how data is pushed to (in a request) or pulled from (in a start message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataAddress {
    /// `"DataAddress"`.
    #[serde(rename = "@type")]
    pub kind: DataAddressType,
    /// The kind of endpoint (an IRI, e.g. `https://w3id.org/idsa/v4.1/HTTP`).
    pub endpoint_type: String,
    /// The endpoint, e.g. a URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Named values the endpoint needs (left out when empty: the schema wants at least one if present).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoint_properties: Vec<EndpointProperty>,
}

impl DataAddress {
    /// An address with no properties.
    pub fn new(endpoint_type: impl Into<String>, endpoint: Option<String>) -> Self {
        DataAddress {
            kind: DataAddressType,
            endpoint_type: endpoint_type.into(),
            endpoint,
            endpoint_properties: Vec::new(),
        }
    }

    /// Adds a property.
    #[must_use]
    pub fn with_property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.endpoint_properties
            .push(EndpointProperty::new(name, value));
        self
    }

    /// The value of the first property called `name`.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.endpoint_properties
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_str())
    }
}

/// `TransferRequestMessage`: the consumer asks for a transfer under an agreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferRequestMessage {
    /// JSON-LD context; contains the DSP 2025-1 context.
    #[serde(rename = "@context")]
    pub context: Vec<String>,
    /// `"TransferRequestMessage"`.
    #[serde(rename = "@type")]
    pub kind: TransferRequestType,
    /// The consumer's id for this transfer process.
    pub consumer_pid: String,
    /// The agreement the transfer is made under.
    pub agreement_id: String,
    /// The transfer format, from a distribution of the catalog (e.g. `HttpData-PULL`).
    pub format: String,
    /// Where the provider reaches the consumer.
    pub callback_address: String,
    /// Where to push the data; present only for push formats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_address: Option<DataAddress>,
}

impl TransferRequestMessage {
    /// A request with the DSP 2025-1 context.
    pub fn new(
        consumer_pid: impl Into<String>,
        agreement_id: impl Into<String>,
        format: impl Into<String>,
        callback_address: impl Into<String>,
        data_address: Option<DataAddress>,
    ) -> Self {
        TransferRequestMessage {
            context: dsp_context(),
            kind: TransferRequestType,
            consumer_pid: consumer_pid.into(),
            agreement_id: agreement_id.into(),
            format: format.into(),
            callback_address: callback_address.into(),
            data_address,
        }
    }

    /// Checks the context.
    pub fn check(&self) -> Result<(), String> {
        check_context(&self.context)
    }

    /// The event for the state machine.
    pub const fn event(&self) -> TransferEvent {
        TransferEvent::Request
    }
}

/// `TransferStartMessage`: the provider starts the transfer (a pull carries the `dataAddress` to fetch
/// from), or either side resumes a suspended one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferStartMessage {
    /// JSON-LD context; contains the DSP 2025-1 context.
    #[serde(rename = "@context")]
    pub context: Vec<String>,
    /// `"TransferStartMessage"`.
    #[serde(rename = "@type")]
    pub kind: TransferStartType,
    /// The provider's id for this transfer process.
    pub provider_pid: String,
    /// The consumer's id for this transfer process.
    pub consumer_pid: String,
    /// Where to pull the data from; required for a pull.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_address: Option<DataAddress>,
}

impl TransferStartMessage {
    /// A start message with the DSP 2025-1 context.
    pub fn new(
        provider_pid: impl Into<String>,
        consumer_pid: impl Into<String>,
        data_address: Option<DataAddress>,
    ) -> Self {
        TransferStartMessage {
            context: dsp_context(),
            kind: TransferStartType,
            provider_pid: provider_pid.into(),
            consumer_pid: consumer_pid.into(),
            data_address,
        }
    }

    /// Checks the context.
    pub fn check(&self) -> Result<(), String> {
        check_context(&self.context)
    }

    /// The event for the state machine.
    pub const fn event(&self) -> TransferEvent {
        TransferEvent::Start
    }
}

/// `TransferSuspensionMessage`, from either side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferSuspensionMessage {
    /// JSON-LD context; contains the DSP 2025-1 context.
    #[serde(rename = "@context")]
    pub context: Vec<String>,
    /// `"TransferSuspensionMessage"`.
    #[serde(rename = "@type")]
    pub kind: TransferSuspensionType,
    /// The provider's id for this transfer process.
    pub provider_pid: String,
    /// The consumer's id for this transfer process.
    pub consumer_pid: String,
    /// An implementation-specific code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Why; items may be strings or objects (the schema allows any), left out when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reason: Vec<Value>,
}

impl TransferSuspensionMessage {
    /// A suspension with an optional code and a reason (left out when empty).
    pub fn new(
        provider_pid: impl Into<String>,
        consumer_pid: impl Into<String>,
        code: Option<&str>,
        reason: &str,
    ) -> Self {
        TransferSuspensionMessage {
            context: dsp_context(),
            kind: TransferSuspensionType,
            provider_pid: provider_pid.into(),
            consumer_pid: consumer_pid.into(),
            code: code.map(str::to_owned),
            reason: reasons(reason),
        }
    }

    /// Checks the context.
    pub fn check(&self) -> Result<(), String> {
        check_context(&self.context)
    }

    /// The event for the state machine.
    pub const fn event(&self) -> TransferEvent {
        TransferEvent::Suspension
    }

    /// The reasons as one readable line.
    pub fn reason_text(&self) -> String {
        reason_text(&self.reason)
    }
}

/// `TransferCompletionMessage`, from either side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferCompletionMessage {
    /// JSON-LD context; contains the DSP 2025-1 context.
    #[serde(rename = "@context")]
    pub context: Vec<String>,
    /// `"TransferCompletionMessage"`.
    #[serde(rename = "@type")]
    pub kind: TransferCompletionType,
    /// The provider's id for this transfer process.
    pub provider_pid: String,
    /// The consumer's id for this transfer process.
    pub consumer_pid: String,
}

impl TransferCompletionMessage {
    /// A completion message with the DSP 2025-1 context.
    pub fn new(provider_pid: impl Into<String>, consumer_pid: impl Into<String>) -> Self {
        TransferCompletionMessage {
            context: dsp_context(),
            kind: TransferCompletionType,
            provider_pid: provider_pid.into(),
            consumer_pid: consumer_pid.into(),
        }
    }

    /// Checks the context.
    pub fn check(&self) -> Result<(), String> {
        check_context(&self.context)
    }

    /// The event for the state machine.
    pub const fn event(&self) -> TransferEvent {
        TransferEvent::Completion
    }
}

/// `TransferTerminationMessage`, from either side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferTerminationMessage {
    /// JSON-LD context; contains the DSP 2025-1 context.
    #[serde(rename = "@context")]
    pub context: Vec<String>,
    /// `"TransferTerminationMessage"`.
    #[serde(rename = "@type")]
    pub kind: TransferTerminationType,
    /// The provider's id for this transfer process.
    pub provider_pid: String,
    /// The consumer's id for this transfer process.
    pub consumer_pid: String,
    /// An implementation-specific code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Why; items may be strings or objects (the schema allows any), left out when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reason: Vec<Value>,
}

impl TransferTerminationMessage {
    /// A termination with an optional code and a reason (left out when empty).
    pub fn new(
        provider_pid: impl Into<String>,
        consumer_pid: impl Into<String>,
        code: Option<&str>,
        reason: &str,
    ) -> Self {
        TransferTerminationMessage {
            context: dsp_context(),
            kind: TransferTerminationType,
            provider_pid: provider_pid.into(),
            consumer_pid: consumer_pid.into(),
            code: code.map(str::to_owned),
            reason: reasons(reason),
        }
    }

    /// Checks the context.
    pub fn check(&self) -> Result<(), String> {
        check_context(&self.context)
    }

    /// The event for the state machine.
    pub const fn event(&self) -> TransferEvent {
        TransferEvent::Termination
    }

    /// The reasons as one readable line.
    pub fn reason_text(&self) -> String {
        reason_text(&self.reason)
    }
}

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

    fn start_json() -> Value {
        json!({
            "@context": [DSP_CONTEXT],
            "@type": "TransferStartMessage",
            "providerPid": "urn:uuid:p",
            "consumerPid": "urn:uuid:c",
            "dataAddress": {
                "@type": "DataAddress",
                "endpointType": "https://w3id.org/idsa/v4.1/HTTP",
                "endpoint": "https://provider.example/data/1",
                "endpointProperties": [
                    {"@type": "EndpointProperty", "name": "authorization", "value": "TOKEN-1"},
                    {"@type": "EndpointProperty", "name": "authType", "value": "bearer"}
                ]
            }
        })
    }

    #[test]
    fn messages_serialize_with_their_tags_and_map_to_events() {
        let address = DataAddress::new(
            "https://w3id.org/idsa/v4.1/HTTP",
            Some("https://provider.example/data/1".into()),
        )
        .with_property("authorization", "TOKEN-1")
        .with_property("authType", "bearer");
        let start = TransferStartMessage::new("urn:uuid:p", "urn:uuid:c", Some(address));
        assert_eq!(serde_json::to_value(&start).unwrap(), start_json());
        assert_eq!(start.event(), TransferEvent::Start);
        assert_eq!(
            start
                .data_address
                .as_ref()
                .unwrap()
                .property("authorization"),
            Some("TOKEN-1")
        );
        assert_eq!(start.data_address.as_ref().unwrap().property("nope"), None);

        let request = TransferRequestMessage::new("c", "a", "HttpData-PULL", "https://cb", None);
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            json!({
                "@context": [DSP_CONTEXT], "@type": "TransferRequestMessage", "consumerPid": "c",
                "agreementId": "a", "format": "HttpData-PULL", "callbackAddress": "https://cb"
            })
        );
        assert_eq!(request.event(), TransferEvent::Request);
        assert_eq!(
            TransferCompletionMessage::new("p", "c").event(),
            TransferEvent::Completion
        );
        assert_eq!(
            TransferSuspensionMessage::new("p", "c", None, "").event(),
            TransferEvent::Suspension
        );
        assert_eq!(
            TransferTerminationMessage::new("p", "c", None, "").event(),
            TransferEvent::Termination
        );
    }

    #[test]
    fn unknown_members_are_accepted_and_required_ones_are_not_optional() {
        let mut with_extra = start_json();
        with_extra["https://example.org/extra"] = json!({"x": 1});
        with_extra["dataAddress"]["extra"] = json!(true);
        let parsed: TransferStartMessage = serde_json::from_value(with_extra).unwrap();
        assert!(parsed.check().is_ok());

        for member in ["@context", "@type", "providerPid", "consumerPid"] {
            let mut missing = start_json();
            missing.as_object_mut().unwrap().remove(member);
            assert!(
                serde_json::from_value::<TransferStartMessage>(missing).is_err(),
                "{member}"
            );
        }
        let mut no_type = start_json();
        no_type["dataAddress"]
            .as_object_mut()
            .unwrap()
            .remove("@type");
        assert!(serde_json::from_value::<TransferStartMessage>(no_type).is_err());
        let mut no_endpoint_type = start_json();
        no_endpoint_type["dataAddress"]
            .as_object_mut()
            .unwrap()
            .remove("endpointType");
        assert!(serde_json::from_value::<TransferStartMessage>(no_endpoint_type).is_err());
        let mut wrong_type = start_json();
        wrong_type["@type"] = json!("TransferCompletionMessage");
        assert!(serde_json::from_value::<TransferStartMessage>(wrong_type).is_err());

        let request = json!({
            "@context": [DSP_CONTEXT], "@type": "TransferRequestMessage", "consumerPid": "c",
            "agreementId": "a", "format": "f", "callbackAddress": "https://cb"
        });
        assert!(serde_json::from_value::<TransferRequestMessage>(request.clone()).is_ok());
        for member in ["consumerPid", "agreementId", "format", "callbackAddress"] {
            let mut missing = request.clone();
            missing.as_object_mut().unwrap().remove(member);
            assert!(
                serde_json::from_value::<TransferRequestMessage>(missing).is_err(),
                "{member}"
            );
        }
    }

    #[test]
    fn the_context_is_checked() {
        let mut message = TransferCompletionMessage::new("p", "c");
        assert!(message.check().is_ok());
        message.context = vec!["https://w3id.org/dspace/2024/1/context.json".into()];
        assert!(message.check().unwrap_err().contains("2025/1"));
        let mut request = TransferRequestMessage::new("c", "a", "f", "cb", None);
        request.context.clear();
        assert!(request.check().is_err());
    }

    #[test]
    fn reasons_read_as_text_and_empty_ones_are_left_out() {
        let mut termination = TransferTerminationMessage::new("p", "c", Some("42"), "no");
        assert_eq!(termination.reason_text(), "no");
        termination
            .reason
            .push(json!({"@value": "nope", "@language": "en"}));
        termination.reason.push(json!(7));
        assert_eq!(termination.reason_text(), "no; nope; 7");
        let bare =
            serde_json::to_value(TransferSuspensionMessage::new("p", "c", None, "")).unwrap();
        assert!(bare.get("reason").is_none() && bare.get("code").is_none());
        let suspension = TransferSuspensionMessage::new("p", "c", Some("1"), "paused");
        assert_eq!(suspension.reason_text(), "paused");
        assert_eq!(
            serde_json::to_value(&suspension).unwrap()["reason"],
            json!(["paused"])
        );
    }

    #[test]
    fn endpoint_property_values_stay_out_of_debug() {
        let address = DataAddress::new("https://w3id.org/idsa/v4.1/HTTP", None)
            .with_property("authorization", "SECRET-TOKEN");
        let debug = format!("{:?}", TransferStartMessage::new("p", "c", Some(address)));
        assert!(!debug.contains("SECRET-TOKEN"), "{debug}");
        assert!(debug.contains("authorization"), "{debug}");
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
