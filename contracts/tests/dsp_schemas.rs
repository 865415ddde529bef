//! Checks `tests/support/dsp_schema.rs` against the official DSP 2025-1 examples, and this crate's bodies
//! against the official schemas. Skipped (with `SKIPPED: …` on stdout) when the shared folder is missing.

#[path = "../../tests/support/dsp_schema.rs"]
mod dsp_schema;

use caap_contracts::negotiation::message::{ContractNegotiationAck, ContractNegotiationError};
use caap_contracts::negotiation::state::{
    self as negotiation, NegotiationEvent, NegotiationState, Role,
};
use caap_contracts::transfer::message::{
    DataAddress, TransferCompletionMessage, TransferError, TransferProcessAck,
    TransferRequestMessage, TransferStartMessage, TransferSuspensionMessage,
    TransferTerminationMessage,
};
use caap_contracts::transfer::state::{self as transfer, TransferEvent, TransferState};
use dsp_schema::{DspSchemas, Shared};
use serde_json::{Value, json};

fn schemas() -> Option<DspSchemas> {
    match dsp_schema::load() {
        Shared::Found(schemas) => Some(schemas),
        Shared::Skipped(_) => None,
    }
}

#[allow(clippy::unwrap_used)]
fn example(schemas: &DspSchemas, name: &str) -> Value {
    let (protocol, file) = name.split_once('/').unwrap();
    schemas
        .example(&format!("{protocol}/examples/{file}"))
        .unwrap()
}

#[test]
fn every_official_example_validates() {
    let Some(schemas) = schemas() else { return };
    let results = schemas.self_check();
    for (example, result) in &results {
        println!("{example}: {result:?}");
    }
    assert_eq!(
        results.len(),
        27,
        "all 27 official 2025-1 examples are checked"
    );
    let failures: Vec<_> = results
        .iter()
        .filter(|(_, result)| result.is_err())
        .collect();
    let failed: Vec<&str> = failures
        .iter()
        .map(|(example, _)| example.as_str())
        .collect();
    let known: Vec<&str> = dsp_schema::KNOWN_UPSTREAM_EXAMPLE_FAILURES
        .iter()
        .map(|(example, _)| *example)
        .collect();
    assert_eq!(
        failed, known,
        "examples that do not validate: {failures:#?}"
    );
    // The known failure is the serviceEndpoint pattern and nothing else.
    let (_, did_service) = &failures[0];
    let errors = did_service.as_ref().unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("at `/serviceEndpoint`"), "{errors:?}");
}

#[test]
fn the_upstream_pointer_defect_is_patched_in_memory() {
    let Some(schemas) = schemas() else { return };
    assert_eq!(schemas.patches().len(), 3, "{:#?}", schemas.patches());
    for patch in schemas.patches() {
        assert!(
            patch.contains("transfer-schema.json#/definitions/AbstractTransferCodeMessage"),
            "{patch}"
        );
    }
    assert_eq!(schemas.schemas().len(), 26);
}

#[test]
fn example_names_map_to_schemas() {
    let Some(schemas) = schemas() else { return };
    for (example, schema) in [
        (
            "catalog/examples/catalog.json",
            "catalog/catalog-schema.json",
        ),
        (
            "catalog/examples/nested-catalog.json",
            "catalog/catalog-schema.json",
        ),
        (
            "common/examples/catalogservice-did-service.json",
            "common/did-service-schema.json",
        ),
        (
            "negotiation/examples/contract-request-message_initial.json",
            "negotiation/contract-request-message-schema.json",
        ),
        (
            "negotiation/examples/contract-agreement-message-full.json",
            "negotiation/contract-agreement-message-schema.json",
        ),
        (
            "transfer/examples/transfer-process.json",
            "transfer/transfer-process-schema.json",
        ),
    ] {
        assert_eq!(
            schemas.schema_for_example(example).as_deref(),
            Some(schema),
            "{example}"
        );
    }
    assert_eq!(
        schemas.schema_for_example("transfer/examples/no-such-thing.json"),
        None
    );
}

#[test]
fn broken_messages_are_rejected() {
    let Some(schemas) = schemas() else { return };
    let request = example(
        &schemas,
        "negotiation/contract-request-message_initial.json",
    );
    schemas.assert_valid("negotiation/contract-request-message-schema.json", &request);

    let mut no_context = request.clone();
    no_context.as_object_mut().unwrap().remove("@context");
    let errors = schemas
        .validate(
            "negotiation/contract-request-message-schema.json",
            &no_context,
        )
        .unwrap_err();
    assert!(errors.iter().any(|e| e.contains("@context")), "{errors:#?}");

    let mut wrong_context = request.clone();
    wrong_context["@context"] = json!("https://w3id.org/dspace/2025/1/context.jsonld");
    assert!(
        schemas
            .validate(
                "negotiation/contract-request-message-schema.json",
                &wrong_context
            )
            .is_err()
    );

    let mut wrong_type = request.clone();
    wrong_type["@type"] = json!("ContractOfferMessage");
    let errors = schemas
        .validate(
            "negotiation/contract-request-message-schema.json",
            &wrong_type,
        )
        .unwrap_err();
    assert!(
        errors.iter().any(|e| e.contains("ContractRequestMessage")),
        "{errors:#?}"
    );

    let mut both = request.clone();
    both["providerPid"] = json!("urn:uuid:p");
    assert!(
        schemas
            .validate("negotiation/contract-request-message-schema.json", &both)
            .is_err(),
        "callbackAddress and providerPid together break the oneOf"
    );

    let catalog = example(&schemas, "catalog/catalog.json");
    schemas.assert_valid("catalog/catalog-schema.json", &catalog);
    let mut offer_with_target = catalog.clone();
    offer_with_target["dataset"][0]["hasPolicy"][0]["target"] =
        json!("urn:uuid:3dd1add8-4d2d-569e-d634-8394a8836a88");
    let errors = schemas
        .validate("catalog/catalog-schema.json", &offer_with_target)
        .unwrap_err();
    assert!(
        errors.iter().any(|e| e.contains("/dataset/0/hasPolicy/0")),
        "{errors:#?}"
    );
    let mut empty_dataset = catalog;
    empty_dataset["dataset"] = json!([]);
    assert!(
        schemas
            .validate("catalog/catalog-schema.json", &empty_dataset)
            .is_err(),
        "dataset has minItems 1"
    );

    let errors = schemas
        .validate("catalog/no-such-schema.json", &json!({}))
        .unwrap_err();
    assert!(errors[0].contains("unknown DSP schema"), "{errors:?}");
}

#[test]
#[should_panic(expected = "does not validate against DSP schema")]
fn assert_valid_panics_with_the_errors() {
    let Some(schemas) = schemas() else {
        panic!("does not validate against DSP schema (skipped)")
    };
    schemas.assert_valid(
        "negotiation/contract-negotiation-schema.json",
        &json!({"@type": "ContractNegotiation"}),
    );
}

#[test]
fn negotiation_bodies_validate() {
    let Some(schemas) = schemas() else { return };
    for state in NegotiationState::all() {
        let ack = ContractNegotiationAck::new("urn:uuid:provider", "urn:uuid:consumer", state);
        schemas.assert_valid(
            "negotiation/contract-negotiation-schema.json",
            &serde_json::to_value(&ack).unwrap(),
        );
    }
    let illegal = negotiation::transition(
        Some(NegotiationState::Requested),
        Role::Consumer,
        NegotiationEvent::Request {
            counter_offer: true,
        },
    )
    .unwrap_err();
    for error in [
        ContractNegotiationError::new("urn:uuid:p", "urn:uuid:c", None, Vec::new()),
        ContractNegotiationError::new(
            "urn:uuid:p",
            "urn:uuid:c",
            Some("400".into()),
            vec![illegal.to_string()],
        ),
    ] {
        schemas.assert_valid(
            "negotiation/contract-negotiation-error-schema.json",
            &serde_json::to_value(&error).unwrap(),
        );
    }
    let official = example(&schemas, "negotiation/contract-negotiation.json");
    let parsed: ContractNegotiationAck = serde_json::from_value(official.clone()).unwrap();
    assert_eq!(serde_json::to_value(&parsed).unwrap(), official);
    let official = example(&schemas, "negotiation/contract-negotiation-error.json");
    let parsed: ContractNegotiationError = serde_json::from_value(official.clone()).unwrap();
    assert_eq!(serde_json::to_value(&parsed).unwrap(), official);
}

#[test]
fn transfer_bodies_validate() {
    let Some(schemas) = schemas() else { return };
    for state in TransferState::all() {
        let ack = TransferProcessAck::new("urn:uuid:provider", "urn:uuid:consumer", state);
        schemas.assert_valid(
            "transfer/transfer-process-schema.json",
            &serde_json::to_value(&ack).unwrap(),
        );
    }
    let illegal = transfer::transition(
        Some(TransferState::Requested),
        Role::Consumer,
        TransferEvent::Completion,
    )
    .unwrap_err();
    for error in [
        TransferError::new("urn:uuid:p", "urn:uuid:c", None, Vec::new()),
        TransferError::new(
            "urn:uuid:p",
            "urn:uuid:c",
            Some("400".into()),
            vec![illegal.to_string()],
        ),
    ] {
        schemas.assert_valid(
            "transfer/transfer-error-schema.json",
            &serde_json::to_value(&error).unwrap(),
        );
    }
    let official = example(&schemas, "transfer/transfer-process.json");
    let parsed: TransferProcessAck = serde_json::from_value(official.clone()).unwrap();
    assert_eq!(serde_json::to_value(&parsed).unwrap(), official);
    let official = example(&schemas, "transfer/transfer-error.json");
    let parsed: TransferError = serde_json::from_value(official.clone()).unwrap();
    assert_eq!(serde_json::to_value(&parsed).unwrap(), official);
}

fn http_address(with_properties: bool) -> DataAddress {
    let address = DataAddress::new(
        "https://w3id.org/idsa/v4.1/HTTP",
        Some("https://provider.example/api/v1/data/urn:uuid:t1".into()),
    );
    if with_properties {
        address
            .with_property("authorization", "TOKEN-ABCDEFG")
            .with_property("authType", "bearer")
    } else {
        address
    }
}

/// Every transfer process message caap sends, in each shape it can take, against its official schema.
#[test]
fn transfer_messages_validate() {
    let Some(schemas) = schemas() else { return };
    let (p, c) = ("urn:uuid:provider", "urn:uuid:consumer");
    let cases: Vec<(&str, Value)> = vec![
        (
            "transfer/transfer-request-message-schema.json",
            value(&TransferRequestMessage::new(
                c,
                "urn:uuid:agreement",
                "HttpData-PULL",
                "https://consumer.example/dsp",
                None,
            )),
        ),
        (
            "transfer/transfer-request-message-schema.json",
            value(&TransferRequestMessage::new(
                c,
                "urn:uuid:agreement",
                "example:HTTP_PUSH",
                "https://consumer.example/dsp",
                Some(http_address(true)),
            )),
        ),
        (
            "transfer/transfer-start-message-schema.json",
            value(&TransferStartMessage::new(p, c, None)),
        ),
        (
            "transfer/transfer-start-message-schema.json",
            value(&TransferStartMessage::new(p, c, Some(http_address(true)))),
        ),
        (
            "transfer/transfer-start-message-schema.json",
            value(&TransferStartMessage::new(p, c, Some(http_address(false)))),
        ),
        (
            "transfer/transfer-start-message-schema.json",
            value(&TransferStartMessage::new(
                p,
                c,
                Some(DataAddress::new("https://w3id.org/idsa/v4.1/HTTP", None)),
            )),
        ),
        (
            "transfer/transfer-suspension-message-schema.json",
            value(&TransferSuspensionMessage::new(p, c, None, "")),
        ),
        (
            "transfer/transfer-suspension-message-schema.json",
            value(&TransferSuspensionMessage::new(
                p,
                c,
                Some("7"),
                "maintenance",
            )),
        ),
        (
            "transfer/transfer-completion-message-schema.json",
            value(&TransferCompletionMessage::new(p, c)),
        ),
        (
            "transfer/transfer-termination-message-schema.json",
            value(&TransferTerminationMessage::new(p, c, None, "")),
        ),
        (
            "transfer/transfer-termination-message-schema.json",
            value(&TransferTerminationMessage::new(
                p,
                c,
                Some("99"),
                "agreement expired",
            )),
        ),
        (
            "transfer/data-address-schema.json",
            value(&http_address(true)),
        ),
        (
            "transfer/data-address-schema.json",
            value(&http_address(false)),
        ),
    ];
    for (schema, json) in &cases {
        schemas.assert_valid(schema, json);
    }
    // The schemas would notice a wrong tag, so the check above means something.
    let mut wrong = cases[8].1.clone();
    wrong["@type"] = json!("TransferStartMessage");
    assert!(
        schemas
            .validate("transfer/transfer-completion-message-schema.json", &wrong)
            .is_err()
    );
}

/// Every official transfer process example parses into caap's type and serializes back to the same JSON.
#[test]
fn official_transfer_examples_parse() {
    let Some(schemas) = schemas() else { return };
    fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(
        schemas: &DspSchemas,
        name: &str,
    ) -> T {
        let official = example(schemas, name);
        let parsed: T = serde_json::from_value(official.clone())
            .unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
        assert_eq!(serde_json::to_value(&parsed).unwrap(), official, "{name}");
        parsed
    }
    let request: TransferRequestMessage =
        round_trip(&schemas, "transfer/transfer-request-message.json");
    assert_eq!(request.format, "example:HTTP_PUSH");
    let address = request.data_address.unwrap();
    assert_eq!(address.property("authType"), Some("bearer"));
    let start: TransferStartMessage = round_trip(&schemas, "transfer/transfer-start-message.json");
    assert!(start.check().is_ok());
    assert_eq!(
        start.data_address.unwrap().endpoint.as_deref(),
        Some("http://example.com")
    );
    let suspension: TransferSuspensionMessage =
        round_trip(&schemas, "transfer/transfer-suspension-message.json");
    assert_eq!(suspension.reason_text(), "Policy violation");
    let _: TransferCompletionMessage =
        round_trip(&schemas, "transfer/transfer-completion-message.json");
    let termination: TransferTerminationMessage =
        round_trip(&schemas, "transfer/transfer-termination-message.json");
    assert_eq!(termination.code.as_deref(), Some("99"));
    let _: TransferProcessAck = round_trip(&schemas, "transfer/transfer-process.json");
    let _: TransferError = round_trip(&schemas, "transfer/transfer-error.json");

    // Every transfer example is covered above.
    let covered = [
        "transfer/examples/transfer-completion-message.json",
        "transfer/examples/transfer-error.json",
        "transfer/examples/transfer-process.json",
        "transfer/examples/transfer-request-message.json",
        "transfer/examples/transfer-start-message.json",
        "transfer/examples/transfer-suspension-message.json",
        "transfer/examples/transfer-termination-message.json",
    ];
    let official: Vec<String> = schemas
        .self_check()
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("transfer/"))
        .collect();
    assert_eq!(official, covered);
}

#[allow(clippy::unwrap_used)]
fn value(message: &impl serde::Serialize) -> Value {
    serde_json::to_value(message).unwrap()
}

/// Every official contract negotiation example parses into caap's type and serializes back to the same JSON;
/// every negotiation message caap builds validates against its schema.
#[test]
#[allow(clippy::unwrap_used, clippy::panic)]
fn official_negotiation_examples_parse_and_caap_messages_validate() {
    use caap_contracts::negotiation::messages::{
        AgreementSignature, ContractAgreementMessage, ContractAgreementVerificationMessage,
        ContractNegotiationEventMessage, ContractNegotiationTerminationMessage,
        ContractOfferMessage, ContractRequestMessage, EventType,
    };
    let Some(schemas) = schemas() else { return };
    fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(
        schemas: &DspSchemas,
        name: &str,
    ) -> T {
        let official = example(schemas, name);
        let parsed: T = serde_json::from_value(official.clone())
            .unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
        assert_eq!(serde_json::to_value(&parsed).unwrap(), official, "{name}");
        parsed
    }
    let initial: ContractRequestMessage = round_trip(
        &schemas,
        "negotiation/contract-request-message_initial.json",
    );
    assert!(initial.check().is_ok());
    assert_eq!(
        initial.event(),
        NegotiationEvent::Request {
            counter_offer: false
        }
    );
    let counter: ContractRequestMessage =
        round_trip(&schemas, "negotiation/contract-request-message.json");
    assert!(counter.check().is_ok());
    let offer: ContractOfferMessage =
        round_trip(&schemas, "negotiation/contract-offer-message.json");
    assert!(offer.check().is_ok());
    let initial_offer: ContractOfferMessage =
        round_trip(&schemas, "negotiation/contract-offer-message_initial.json");
    assert!(initial_offer.check().is_ok());
    let _: ContractAgreementMessage =
        round_trip(&schemas, "negotiation/contract-agreement-message.json");
    let _: ContractAgreementMessage =
        round_trip(&schemas, "negotiation/contract-agreement-message-full.json");
    let _: ContractAgreementVerificationMessage = round_trip(
        &schemas,
        "negotiation/contract-agreement-verification-message.json",
    );
    let _: ContractNegotiationEventMessage = round_trip(
        &schemas,
        "negotiation/contract-negotiation-event-message.json",
    );
    let _: ContractNegotiationTerminationMessage = round_trip(
        &schemas,
        "negotiation/contract-negotiation-termination-message.json",
    );
    let _: ContractNegotiationAck = round_trip(&schemas, "negotiation/contract-negotiation.json");
    let _: ContractNegotiationError =
        round_trip(&schemas, "negotiation/contract-negotiation-error.json");

    // What caap builds.
    let offer_body =
        json!({"@id": "o", "@type": "Offer", "target": "d", "permission": [{"action": "use"}]});
    let agreement = json!({"@id": "urn:uuid:a", "@type": "Agreement", "target": "d",
        "assigner": "did:web:p", "assignee": "did:web:c", "timestamp": "2026-11-22T10:00:00Z",
        "permission": [{"action": "use"}]});
    let cases: Vec<(&str, Value)> = vec![
        (
            "negotiation/contract-request-message-schema.json",
            value(&ContractRequestMessage::new(
                "urn:uuid:c",
                None,
                offer_body.clone(),
                Some("https://c.example/dsp"),
            )),
        ),
        (
            "negotiation/contract-request-message-schema.json",
            value(&ContractRequestMessage::new(
                "urn:uuid:c",
                Some("urn:uuid:p"),
                offer_body.clone(),
                None,
            )),
        ),
        (
            "negotiation/contract-offer-message-schema.json",
            value(&ContractOfferMessage::new(
                "urn:uuid:p",
                Some("urn:uuid:c"),
                offer_body.clone(),
                None,
            )),
        ),
        (
            "negotiation/contract-offer-message-schema.json",
            value(&ContractOfferMessage::new(
                "urn:uuid:p",
                None,
                offer_body,
                Some("https://p.example/dsp"),
            )),
        ),
        (
            "negotiation/contract-agreement-message-schema.json",
            value(&ContractAgreementMessage::new(
                "urn:uuid:p",
                "urn:uuid:c",
                agreement,
                Some(AgreementSignature {
                    jws: "a.b.c".into(),
                    signer_jwk: json!({"kty": "EC"}),
                }),
            )),
        ),
        (
            "negotiation/contract-agreement-verification-message-schema.json",
            value(&ContractAgreementVerificationMessage::new(
                "urn:uuid:p",
                "urn:uuid:c",
            )),
        ),
        (
            "negotiation/contract-negotiation-event-message-schema.json",
            value(&ContractNegotiationEventMessage::new(
                "urn:uuid:p",
                "urn:uuid:c",
                EventType::Accepted,
            )),
        ),
        (
            "negotiation/contract-negotiation-event-message-schema.json",
            value(&ContractNegotiationEventMessage::new(
                "urn:uuid:p",
                "urn:uuid:c",
                EventType::Finalized,
            )),
        ),
        (
            "negotiation/contract-negotiation-termination-message-schema.json",
            value(&ContractNegotiationTerminationMessage::new(
                "urn:uuid:p",
                "urn:uuid:c",
                Some("terms-differ"),
                "no",
            )),
        ),
        (
            "negotiation/contract-negotiation-termination-message-schema.json",
            value(&ContractNegotiationTerminationMessage::new(
                "urn:uuid:p",
                "urn:uuid:c",
                None,
                "",
            )),
        ),
    ];
    for (schema, body) in cases {
        schemas.assert_valid(schema, &body);
    }
}
