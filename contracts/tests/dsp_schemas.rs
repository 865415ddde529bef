//! Checks `tests/support/dsp_schema.rs` against the official DSP 2025-1 examples, and this crate's bodies
//! against the official schemas. Skipped (with `SKIPPED: …` on stdout) when the shared folder is missing.

#[path = "../../tests/support/dsp_schema.rs"]
mod dsp_schema;

use caap_contracts::negotiation::message::{ContractNegotiationAck, ContractNegotiationError};
use caap_contracts::negotiation::state::{
    self as negotiation, NegotiationEvent, NegotiationState, Role,
};
use caap_contracts::transfer::message::{TransferError, TransferProcessAck};
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
