//! Consent records and receipts as JSON-LD in DPV terms, in the shape of the DPV guide "Consent Records and
//! Receipts as per ISO/IEC TS 27560:2023 using DPV": the whole record with its history for a data protection
//! officer ([`ConsentRecord::to_jsonld`]), and one `dpv:ConsentReceipt` per event for the citizen
//! ([`ConsentRecord::receipt`]), signed by the connector ([`SignedReceipt`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::chain::{RevisionSigner, RevisionVerifier, SignatureError};
use super::record::{ConsentEvent, ConsentRecord, RECORD_CONFORMS_TO};
use super::state::ConsentStatus;

/// `dct:conformsTo` of a consent receipt.
pub const RECEIPT_CONFORMS_TO: &str = "https://w3id.org/dpv/schema/dpv-27560#receipt";

/// The prefix of a consent record's IRI: `urn:caap:consent:<id>`.
pub const RECORD_IRI_PREFIX: &str = "urn:caap:consent:";

/// The `@context` of caap's consent documents: the DPV prefixes the DPV guide uses, and `caap` for the
/// revision chain.
pub fn consent_context() -> Value {
    json!({
        "dpv": "https://w3id.org/dpv#",
        "pd": "https://w3id.org/dpv/pd#",
        "loc": "https://w3id.org/dpv/loc#",
        "eu-gdpr": "https://w3id.org/dpv/legal/eu/gdpr#",
        "dct": "http://purl.org/dc/terms/",
        "skos": "http://www.w3.org/2004/02/skos/core#",
        "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
        "schema": "https://schema.org/",
        "xsd": "http://www.w3.org/2001/XMLSchema#",
        "caap": "urn:caap:"
    })
}

fn status_jsonld(event: &ConsentEvent) -> Value {
    let types = match event.status {
        ConsentStatus::Given | ConsentStatus::Renewed => {
            json!([event.status.dpv_term(), "dpv:ExpressedConsent"])
        }
        other => json!(other.dpv_term()),
    };
    let mut m = Map::new();
    m.insert("@type".into(), types);
    m.insert(
        "dpv:isIndicatedBy".into(),
        event.indicated_by.as_str().into(),
    );
    m.insert(
        "dpv:hasIndicationMethod".into(),
        event.method.clone().into(),
    );
    m.insert(
        "dpv:isIndicatedAtTime".into(),
        json!({"@value": event.at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
               "@type": "xsd:dateTime"}),
    );
    if let Some(d) = &event.duration {
        m.insert(
            "dpv:hasDuration".into(),
            json!({"@type": "dpv:TemporalDuration", "rdf:value": d}),
        );
    }
    Value::Object(m)
}

impl ConsentRecord {
    /// The record's IRI.
    pub fn iri(&self) -> String {
        format!("{RECORD_IRI_PREFIX}{}", self.terms().id)
    }

    /// The record's terms and the history up to and including event `upto` (all when `None`), without
    /// `@context`: the body shared by the export and the receipts.
    fn body(&self, upto: Option<u64>) -> Map<String, Value> {
        let t = self.terms();
        let p = &t.processing;
        let mut storage =
            vec![json!({"@type": "dpv:StorageDuration", "dpv:hasDuration": p.retention})];
        if !p.storage_locations.is_empty() {
            storage.insert(
                0,
                json!({"@type": "dpv:StorageLocation", "dpv:hasLocation": p.storage_locations}),
            );
        }
        let history: Vec<Value> = self
            .revisions()
            .iter()
            .filter(|r| upto.is_none_or(|u| r.seq <= u))
            .map(|r| status_jsonld(&r.event))
            .collect();
        let mut m = Map::new();
        m.insert("@id".into(), self.iri().into());
        m.insert("@type".into(), "dpv:ConsentRecord".into());
        m.insert("dct:identifier".into(), t.id.clone().into());
        m.insert("dct:conformsTo".into(), RECORD_CONFORMS_TO.into());
        m.insert(
            "dpv:hasDataSubject".into(),
            json!({"@id": t.subject.iri(), "skos:broader": "dpv:Citizen"}),
        );
        m.insert("dpv:hasDataController".into(), p.controller.clone().into());
        m.insert("dpv:hasJurisdiction".into(), p.jurisdiction.clone().into());
        m.insert(
            "dpv:hasProcess".into(),
            json!([{
                "@type": "dpv:Process",
                "dct:source": p.dataset,
                "dpv:hasPurpose": p.purpose,
                "dpv:hasPersonalData": p.personal_data,
                "dpv:hasRecipient": p.recipients,
                "dpv:hasStorageCondition": storage,
            }]),
        );
        m.insert(
            "dpv:hasConsentControl".into(),
            json!({"@type": ["dpv:ProvideConsent", "dpv:WithdrawConsent"],
                   "dpv:isExercisedAt": p.withdrawal_method}),
        );
        m.insert(
            "dpv:hasRight".into(),
            json!([{"@type": ["dpv:DataSubjectRight", "eu-gdpr:A7-3"],
                    "dct:title": "Right to Withdraw Consent",
                    "dpv:isExercisedAt": p.withdrawal_method}]),
        );
        m.insert(
            "dpv:hasNotice".into(),
            json!({"@id": t.notice.id, "@type": "dpv:ConsentNotice",
                   "dct:date": t.notice.date.to_string(), "dct:language": t.notice.language}),
        );
        m.insert("dpv:hasConsentStatus".into(), Value::Array(history));
        m
    }

    /// The whole record as JSON-LD for a data protection officer: the ISO/IEC TS 27560 header and process,
    /// every status event, and the revision chain (`caap:revisions`: seq, hash, predecessor and signature of
    /// each event) so that the export can be checked against the connector's key.
    pub fn to_jsonld(&self) -> Value {
        let mut m = Map::new();
        m.insert("@context".into(), consent_context());
        m.extend(self.body(None));
        let revisions: Vec<Value> = self
            .revisions()
            .iter()
            .map(|r| {
                json!({"caap:seq": r.seq, "caap:hash": r.hash, "caap:prevHash": r.prev_hash,
                       "caap:jws": r.jws})
            })
            .collect();
        m.insert("caap:revisions".into(), Value::Array(revisions));
        Value::Object(m)
    }

    /// The `dpv:ConsentReceipt` for event `seq`: the record as it stood after that event, published by the
    /// controller for the data subject, with the revision's hash and signature (`caap:revision`). `None` if
    /// there is no such event.
    pub fn receipt(&self, seq: u64) -> Option<Value> {
        let revision = self.revisions().iter().find(|r| r.seq == seq)?;
        let id = format!("{}:{seq}", self.terms().id);
        let mut record = self.body(Some(seq));
        record.insert(
            "caap:revision".into(),
            json!({"caap:seq": seq, "caap:hash": revision.hash, "caap:jws": revision.jws}),
        );
        Some(json!({
            "@context": consent_context(),
            "@id": format!("urn:caap:consent-receipt:{id}"),
            "@type": "dpv:ConsentReceipt",
            "dct:identifier": id,
            "dct:conformsTo": RECEIPT_CONFORMS_TO,
            "dct:created": revision.event.at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            "dct:publisher": self.terms().processing.controller,
            "schema:recipient": "dpv:DataSubject",
            "dpv:hasRecordOfActivity": Value::Object(record),
        }))
    }

    /// [`ConsentRecord::receipt`], signed by the connector.
    pub fn signed_receipt(
        &self,
        seq: u64,
        signer: &dyn RevisionSigner,
    ) -> Result<Option<SignedReceipt>, SignatureError> {
        let Some(receipt) = self.receipt(seq) else {
            return Ok(None);
        };
        let jws = signer.sign(caap_canonical::canonical_json(&receipt).as_bytes())?;
        Ok(Some(SignedReceipt { receipt, jws }))
    }
}

/// A receipt and the connector's compact JWS over its canonical JSON: what the citizen downloads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignedReceipt {
    /// The `dpv:ConsentReceipt`.
    pub receipt: Value,
    /// The signature.
    pub jws: String,
}

impl SignedReceipt {
    /// Whether the signature holds over the receipt as it is now (member order and whitespace do not matter).
    pub fn verify(&self, verifier: &dyn RevisionVerifier) -> Result<(), SignatureError> {
        verifier.verify(
            &self.jws,
            caap_canonical::canonical_json(&self.receipt).as_bytes(),
        )
    }
}
