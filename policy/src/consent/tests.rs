//! Tests of the consent core: records and their state machine, the signed chain (with caap-identity's keys
//! and JWS, as the connector will sign), JSON-LD against the shared DPV vectors, the index, agreements, and a
//! randomized run over many citizens.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use caap_catalog::PersonalData;
use caap_identity::ParticipantKey;
use caap_identity::jose::{decode_compact, verify_with_jwk};
use caap_identity::keys::SigningKey;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::{Value, json};

use super::*;
use crate::{Action, EvaluationContext, OdrlEvaluator, PolicyDecider, parse_policy};

/// Signs as the connector will: a compact JWS with the participant key (caap-identity).
struct KeySigner {
    key: ParticipantKey,
}

impl KeySigner {
    fn new() -> Self {
        Self {
            key: ParticipantKey::generate("did:web:malmo.example#key-1").unwrap(),
        }
    }
    fn verifier(&self) -> KeyVerifier {
        KeyVerifier {
            jwk: self.key.public_jwk().unwrap(),
        }
    }
}

impl RevisionSigner for KeySigner {
    fn sign(&self, payload: &[u8]) -> Result<String, SignatureError> {
        let header = json!({"alg": self.key.algorithm().jws_name(), "typ": "caap-consent+jws",
                            "kid": self.key.key_id()});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = SigningKey::sign(&self.key, input.as_bytes())
            .map_err(|e| SignatureError(e.to_string()))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

struct KeyVerifier {
    jwk: Value,
}

impl RevisionVerifier for KeyVerifier {
    fn verify(&self, jws: &str, payload: &[u8]) -> Result<(), SignatureError> {
        let decoded = decode_compact(jws).map_err(|e| SignatureError(e.to_string()))?;
        verify_with_jwk(&decoded, &self.jwk).map_err(|e| SignatureError(e.to_string()))?;
        if caap_canonical::canonical_json(&decoded.payload).as_bytes() == payload {
            Ok(())
        } else {
            Err(SignatureError("it signs another payload".into()))
        }
    }
}

/// A cheap stand-in for the randomized test (thousands of events): "signs" with a hash of the payload.
struct HashSigner;

impl RevisionSigner for HashSigner {
    fn sign(&self, payload: &[u8]) -> Result<String, SignatureError> {
        Ok(format!(
            "test.{}",
            chain::sha256_hex(&String::from_utf8_lossy(payload))
        ))
    }
}

pub(super) fn t(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_780_000_000 + seconds, 0).unwrap()
}

const CITY: &str = "did:web:malmo.example";
const LUND: &str = "did:web:lund.example";

fn declaration() -> PersonalData {
    serde_json::from_value(json!({
        "subjectField": "refCitizen", "categories": ["pd:Location", "pd:VehicleLicence"],
        "purposes": ["dpv:ServiceProvision", "dpv:ResearchAndDevelopment"],
        "retention": "P6M", "jurisdiction": "loc:SE", "storageLocations": ["loc:SE"]
    }))
    .unwrap()
}

fn key() -> SubjectKey {
    SubjectKey::new(&[42; 32]).unwrap()
}

fn terms(id: &str, citizen: &str) -> ConsentTerms {
    ConsentTerms {
        id: id.into(),
        subject: key().pseudonym(citizen),
        notice: Notice {
            id: "https://malmo.example/portal/notices/parking-permits".into(),
            date: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            language: "sv".into(),
        },
        processing: Processing::for_dataset(
            "parking-permits",
            &declaration(),
            "https://w3id.org/dpv#ServiceProvision",
            CITY,
            vec![LUND.into()],
            "https://malmo.example/portal/consents",
        )
        .unwrap(),
    }
}

fn ev(status: ConsentStatus, at: i64) -> ConsentEvent {
    let by = if status.is_the_subjects() {
        Indicator::DataSubject
    } else {
        Indicator::Party(
            if status == ConsentStatus::Requested {
                LUND
            } else {
                CITY
            }
            .into(),
        )
    };
    ConsentEvent::new(status, by, t(at), "caap portal after e-ID login")
}

fn record_with(statuses: &[ConsentStatus], signer: &dyn RevisionSigner) -> ConsentRecord {
    let mut record = ConsentRecord::new(terms("c-1", "19121212-1212")).unwrap();
    for (i, s) in statuses.iter().enumerate() {
        record.append(ev(*s, i as i64 * 60), signer).unwrap();
    }
    record
}

use ConsentStatus::{Expired, Given, Refused, Renewed, Requested, Withdrawn};

// ---- terms and events ----

#[test]
fn processing_comes_from_the_dataset_declaration() {
    let p = &terms("c-1", "x").processing;
    assert_eq!(p.purpose, "dpv:ServiceProvision", "one spelling");
    assert_eq!(p.retention, "P6M");
    assert_eq!(p.jurisdiction, "loc:SE");
    assert_eq!(p.personal_data, ["pd:Location", "pd:VehicleLicence"]);
    let mut d = declaration();
    d.retention = None;
    d.jurisdiction = None;
    d.lawful_basis = caap_catalog::LawfulBasis::PublicTask;
    let Err(ConsentError::Invalid(errors)) = Processing::for_dataset(
        "x",
        &d,
        "dpv:Marketing",
        CITY,
        vec![LUND.into()],
        "https://p",
    ) else {
        panic!("refused")
    };
    let pointers: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(
        pointers,
        [
            "/personalData/lawfulBasis",
            "/purpose",
            "/personalData/retention",
            "/personalData/jurisdiction"
        ]
    );
    // A narrower purpose than a declared one is fine.
    assert!(
        Processing::for_dataset(
            "x",
            &declaration(),
            "dpv:AcademicResearch",
            CITY,
            vec![],
            "u"
        )
        .is_ok()
    );
}

#[test]
fn bad_terms_are_named_by_field() {
    let mut bad = terms("c 1", "x");
    bad.processing.recipients.clear();
    bad.processing.retention = "six months".into();
    bad.notice.language = String::new();
    let Err(ConsentError::Invalid(errors)) = ConsentRecord::new(bad) else {
        panic!("refused")
    };
    let pointers: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(
        pointers,
        [
            "/notice/language",
            "/id",
            "/processing/recipients",
            "/processing/retention"
        ]
    );
}

#[test]
fn appending_checks_state_indicator_time_and_duration() {
    let signer = HashSigner;
    let mut r = record_with(&[Requested, Refused], &signer);
    // No withdrawal of a refused consent; nothing changes.
    assert_eq!(
        r.append(ev(Withdrawn, 600), &signer).unwrap_err(),
        ConsentError::IllegalTransition(IllegalTransition {
            from: ConsentState::Refused,
            status: Withdrawn
        })
    );
    assert_eq!(r.revisions().len(), 2);
    // Only the data subject gives; only a party requests.
    let mut by_party = ev(Given, 600);
    by_party.indicated_by = Indicator::Party(LUND.into());
    assert!(matches!(
        r.append(by_party, &signer),
        Err(ConsentError::WrongIndicator { status: Given, .. })
    ));
    let mut by_subject = ev(Requested, 600);
    by_subject.indicated_by = Indicator::DataSubject;
    assert!(matches!(
        r.append(by_subject, &signer),
        Err(ConsentError::WrongIndicator { .. })
    ));
    // Not older than the last event.
    assert!(matches!(
        r.append(ev(Given, 1), &signer),
        Err(ConsentError::OutOfOrder { .. })
    ));
    // Durations only on grants, and they must read.
    let table = [
        (ev(Given, 600).valid_for("P6M"), true),
        (ev(Given, 600).valid_for("6 months"), false),
        (ev(Given, 600).valid_for("P0D"), false),
        (ev(Requested, 600).valid_for("P6M"), false),
    ];
    for (event, ok) in table {
        let mut copy = r.clone();
        assert_eq!(copy.append(event.clone(), &signer).is_ok(), ok, "{event:?}");
    }
    let mut no_method = ev(Given, 600);
    no_method.method = " ".into();
    assert!(matches!(
        r.append(no_method, &signer),
        Err(ConsentError::Invalid(e)) if e[0].pointer == "/method"
    ));
    assert_eq!(r.revisions().len(), 2, "nothing was appended");
}

#[test]
fn standing_at_each_moment() {
    let signer = HashSigner;
    let mut r = ConsentRecord::new(terms("c-1", "x")).unwrap();
    assert_eq!(r.standing(t(0)), Standing::NoConsent);
    r.append(ev(Requested, 0), &signer).unwrap();
    assert_eq!(r.standing(t(1)), Standing::Requested);
    r.append(ev(Given, 100).valid_for("P1D"), &signer).unwrap();
    let table = [
        (99, Standing::NotYetGiven),
        (100, Standing::Active),
        (100 + 86_399, Standing::Active),
        (100 + 86_400, Standing::Expired),
    ];
    for (at, expected) in table {
        assert_eq!(r.standing(t(at)), expected, "at {at}");
    }
    r.append(ev(Renewed, 50_000), &signer).unwrap();
    assert_eq!(
        r.standing(t(100 + 86_400)),
        Standing::Active,
        "renewed without end"
    );
    r.append(ev(Withdrawn, 90_000), &signer).unwrap();
    assert_eq!(r.standing(t(90_000)), Standing::Withdrawn);
    assert_eq!(r.state(), ConsentState::Withdrawn);
    r.append(ev(Given, 90_060), &signer).unwrap();
    assert_eq!(r.standing(t(90_060)), Standing::Active, "given anew");
    r.append(ev(Expired, 90_120), &signer).unwrap();
    assert_eq!(r.standing(t(90_120)), Standing::Expired);
}

#[test]
fn a_month_is_a_calendar_month() {
    let at = Utc.with_ymd_and_hms(2027, 1, 31, 12, 0, 0).unwrap();
    let e = ConsentEvent::new(Given, Indicator::DataSubject, at, "portal").valid_for("P1M");
    assert_eq!(
        e.valid_until(),
        Some(Utc.with_ymd_and_hms(2027, 2, 28, 12, 0, 0).unwrap())
    );
    let e = e.valid_for("P1Y2DT3H");
    assert_eq!(
        e.valid_until(),
        Some(Utc.with_ymd_and_hms(2028, 2, 2, 15, 0, 0).unwrap())
    );
}

// ---- the signed chain ----

#[test]
fn a_signed_chain_verifies_and_survives_storage() {
    let signer = KeySigner::new();
    let r = record_with(&[Requested, Given, Withdrawn, Given], &signer);
    let summary = verify_chain(r.terms(), r.revisions(), &signer.verifier(), None).unwrap();
    assert_eq!(summary.events, 4);
    assert_eq!(summary.state, ConsentState::Given);
    let head = summary.head.unwrap();
    assert_eq!(head.seq, 3);
    assert_eq!(r.revisions()[0].prev_hash, GENESIS_HASH);
    assert_eq!(r.revisions()[2].prev_hash, r.revisions()[1].hash);
    // Through JSON (the store) and back, member order shuffled: still the same bytes hashed.
    let stored = serde_json::to_string(&r).unwrap();
    let back: ConsentRecord = serde_json::from_str(&stored).unwrap();
    assert_eq!(back, r);
    let again = ConsentRecord::from_parts(back.terms().clone(), back.revisions().to_vec());
    verify_chain(
        again.terms(),
        again.revisions(),
        &signer.verifier(),
        Some(&head),
    )
    .unwrap();
    // The hash is SHA-256 over the canonical payload.
    let first = &r.revisions()[0];
    let payload = chain::revision_payload("c-1", 0, GENESIS_HASH, &r.terms().hash(), &first.event);
    assert_eq!(first.hash, chain::sha256_hex(&payload));
    assert!(payload.starts_with(r#"{"event":{"at":"#), "{payload}");
}

fn fault_of(
    r: &ConsentRecord,
    revisions: &[Revision],
    verifier: &dyn RevisionVerifier,
    head: Option<&Head>,
) -> (u64, ChainFaultKind) {
    let f = verify_chain(r.terms(), revisions, verifier, head).unwrap_err();
    assert!(f.to_string().contains("c-1"), "{f}");
    (f.seq, f.kind)
}

#[test]
fn the_verifier_names_the_first_altered_dropped_or_reordered_event() {
    use ChainFaultKind::*;
    let signer = KeySigner::new();
    let verifier = signer.verifier();
    let r = record_with(&[Requested, Given, Withdrawn, Given, Renewed], &signer);
    let revs = r.revisions().to_vec();
    let head = Head {
        seq: 4,
        hash: revs[4].hash.clone(),
    };
    type Tamper = fn(&mut Vec<Revision>);
    let table: [(&str, Tamper, (u64, ChainFaultKind)); 9] = [
        (
            "method changed",
            |v| v[2].event.method = "by post".into(),
            (2, Altered),
        ),
        ("time changed", |v| v[1].event.at = t(5), (1, Altered)),
        (
            "status changed",
            |v| v[2].event.status = Renewed,
            (2, Altered),
        ),
        (
            "hash recomputed, signature kept",
            |v| {
                v[3].event.method = "forged".into();
                let terms = terms("c-1", "19121212-1212");
                let p =
                    chain::revision_payload("c-1", 3, &v[3].prev_hash, &terms.hash(), &v[3].event);
                v[3].hash = chain::sha256_hex(&p);
            },
            (3, Altered),
        ),
        (
            "middle dropped",
            |v| {
                v.remove(2);
            },
            (2, Dropped),
        ),
        (
            "first dropped",
            |v| {
                v.remove(0);
            },
            (0, Dropped),
        ),
        ("two swapped", |v| v.swap(1, 2), (1, Reordered)),
        (
            "one moved back",
            |v| {
                let x = v.remove(3);
                v.insert(1, x);
            },
            (1, Reordered),
        ),
        (
            "signature from another event",
            |v| v[1].jws = v[2].jws.clone(),
            (1, Altered),
        ),
    ];
    for (name, tamper, expected) in table {
        let mut v = revs.clone();
        tamper(&mut v);
        assert_eq!(fault_of(&r, &v, &verifier, Some(&head)), expected, "{name}");
    }
    // The last event dropped: only the remembered head shows it.
    let shorter = &revs[..4];
    assert!(verify_chain(r.terms(), shorter, &verifier, None).is_ok());
    assert_eq!(fault_of(&r, shorter, &verifier, Some(&head)), (4, Dropped));
    // Altered terms show at the first event.
    let mut other = r.clone();
    other = ConsentRecord::from_parts(
        ConsentTerms {
            processing: Processing {
                recipients: vec![LUND.into(), "did:web:adtech.example".into()],
                ..other.terms().processing.clone()
            },
            ..other.terms().clone()
        },
        other.revisions().to_vec(),
    );
    assert_eq!(
        fault_of(&other, other.revisions(), &verifier, None),
        (0, Altered)
    );
    // Another connector's key.
    let stranger = KeySigner::new().verifier();
    assert_eq!(fault_of(&r, &revs, &stranger, None), (0, Altered));
}

#[test]
fn an_illegal_history_signed_by_a_careless_writer_is_named() {
    let signer = HashSigner;
    struct AcceptAll;
    impl RevisionVerifier for AcceptAll {
        fn verify(&self, _: &str, _: &[u8]) -> Result<(), SignatureError> {
            Ok(())
        }
    }
    let mut r = record_with(&[Requested, Refused], &signer);
    // Bypass append: a refused consent withdrawn.
    let terms_hash = r.terms().hash();
    let event = ev(Withdrawn, 600);
    let prev = r.revisions()[1].hash.clone();
    let p = chain::revision_payload("c-1", 2, &prev, &terms_hash, &event);
    let mut revs = r.revisions().to_vec();
    revs.push(Revision {
        seq: 2,
        prev_hash: prev,
        event,
        hash: chain::sha256_hex(&p),
        jws: String::new(),
    });
    r = ConsentRecord::from_parts(r.terms().clone(), revs);
    let f = verify_chain(r.terms(), r.revisions(), &AcceptAll, None).unwrap_err();
    assert_eq!((f.seq, f.kind), (2, ChainFaultKind::IllegalHistory));
}

// ---- JSON-LD ----

fn shared_vector(name: &str) -> Option<Value> {
    let dir = crate::vector_tests::shared_dir("vectors/consent/dpv-27560-guide")?;
    let text = std::fs::read_to_string(dir.join(name)).unwrap();
    Some(serde_json::from_str(&text).unwrap())
}

fn keys(v: &Value) -> std::collections::BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn as_list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    }
}

#[test]
fn the_export_has_the_shape_of_the_dpv_27560_record() {
    let signer = KeySigner::new();
    let r = record_with(&[Requested, Given, Withdrawn], &signer);
    let export = r.to_jsonld();
    assert_eq!(export["@type"], "dpv:ConsentRecord");
    assert_eq!(export["dct:conformsTo"], RECORD_CONFORMS_TO);
    assert!(
        !export.to_string().contains("19121212"),
        "no identity number"
    );
    assert_eq!(
        export["dpv:hasDataSubject"]["@id"],
        key().pseudonym("19121212-1212").iri()
    );
    let history = export["dpv:hasConsentStatus"].as_array().unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(history[2]["@type"], "dpv:ConsentWithdrawn");
    assert_eq!(
        export["caap:revisions"][2]["caap:hash"],
        r.revisions()[2].hash
    );
    let Some(vector) = shared_vector("consent-record-given-then-withdrawn.json") else {
        return;
    };
    // Same conformance IRI; every ISO/IEC TS 27560 member of the guide's record is there (the guide's data
    // processor and applicable law have no counterpart in a city's consent); nothing outside DPV but the chain.
    assert_eq!(export["dct:conformsTo"], vector["dct:conformsTo"]);
    assert_eq!(export["@type"], vector["@type"]);
    let ours = keys(&export);
    let theirs = keys(&vector);
    for k in &theirs {
        if !["dpv:hasDataProcessor", "dpv:hasApplicableLaw"].contains(&k.as_str()) {
            assert!(ours.contains(k), "missing {k}");
        }
    }
    for k in &ours {
        assert!(theirs.contains(k) || k.starts_with("caap:"), "extra {k}");
    }
    let their_process = keys(&as_list(&vector["dpv:hasProcess"])[0]);
    for k in keys(&as_list(&export["dpv:hasProcess"])[0]) {
        assert!(
            their_process.contains(&k) || k == "dct:source",
            "process {k}"
        );
    }
    let their_given = keys(&as_list(&vector["dpv:hasConsentStatus"])[0]);
    for entry in history {
        assert_eq!(keys(entry), their_given, "status entry");
    }
    // The notice: all but the guide's optional `dct:coverage`.
    let their_notice = keys(&vector["dpv:hasNotice"]);
    let our_notice = keys(&export["dpv:hasNotice"]);
    assert!(our_notice.is_subset(&their_notice), "{our_notice:?}");
    assert_eq!(our_notice.len() + 1, their_notice.len());
    assert_eq!(
        keys(&export["dpv:hasConsentControl"]),
        keys(&vector["dpv:hasConsentControl"])
    );
    assert_eq!(
        export["dpv:hasConsentControl"]["@type"],
        vector["dpv:hasConsentControl"]["@type"]
    );
    for (ours, theirs) in as_list(&export["dpv:hasProcess"][0]["dpv:hasStorageCondition"])
        .iter()
        .zip(as_list(
            &vector["dpv:hasProcess"][0]["dpv:hasStorageCondition"],
        ))
    {
        assert_eq!(ours["@type"], theirs["@type"]);
        assert_eq!(keys(ours), keys(&theirs));
    }
    // Our context defines every prefix the vectors' context does.
    let context = shared_vector("context.jsonld").unwrap();
    for (prefix, iri) in context["@context"].as_object().unwrap() {
        if prefix != "ex" {
            assert_eq!(&consent_context()[prefix], iri, "{prefix}");
        }
    }
}

#[test]
fn a_duration_is_written_as_in_the_dpv_guide() {
    let signer = HashSigner;
    let mut r = ConsentRecord::new(terms("c-1", "x")).unwrap();
    r.append(ev(Given, 0).valid_for("P6M"), &signer).unwrap();
    let status = &r.to_jsonld()["dpv:hasConsentStatus"][0];
    assert_eq!(
        status["dpv:hasDuration"],
        json!({"@type": "dpv:TemporalDuration", "rdf:value": "P6M"})
    );
    if let Some(vector) = shared_vector("consent-given-with-duration.json") {
        assert_eq!(
            status["dpv:hasDuration"],
            vector["dpv:hasConsentStatus"]["dpv:hasDuration"]
        );
    }
}

#[test]
fn each_event_gives_a_signed_receipt_in_the_shape_of_the_dpv_receipt() {
    let signer = KeySigner::new();
    let verifier = signer.verifier();
    let r = record_with(&[Requested, Given, Withdrawn], &signer);
    for seq in 0..3 {
        let signed = r.signed_receipt(seq, &signer).unwrap().unwrap();
        signed.verify(&verifier).unwrap();
        let receipt = &signed.receipt;
        assert_eq!(receipt["@type"], "dpv:ConsentReceipt");
        let history = receipt["dpv:hasRecordOfActivity"]["dpv:hasConsentStatus"]
            .as_array()
            .unwrap();
        assert_eq!(history.len() as u64, seq + 1, "the record as it stood then");
        assert_eq!(
            receipt["dpv:hasRecordOfActivity"]["caap:revision"]["caap:hash"],
            r.revisions()[seq as usize].hash
        );
        // The receipt's revision is a head the chain must still reach.
        let head = Head {
            seq,
            hash: r.revisions()[seq as usize].hash.clone(),
        };
        verify_chain(r.terms(), r.revisions(), &verifier, Some(&head)).unwrap();
        // A changed receipt no longer verifies.
        let mut changed = signed.clone();
        changed.receipt["dct:publisher"] = json!("did:web:someone.example");
        assert!(changed.verify(&verifier).is_err());
    }
    assert_eq!(r.signed_receipt(3, &signer).unwrap(), None);
    let Some(vector) = shared_vector("consent-receipt-full.json") else {
        return;
    };
    let receipt = r.receipt(1).unwrap();
    let mut ours = keys(&receipt);
    ours.remove("@context");
    assert_eq!(ours, keys(&vector));
    assert_eq!(receipt["dct:conformsTo"], vector["dct:conformsTo"]);
    assert_eq!(receipt["schema:recipient"], vector["schema:recipient"]);
    assert_eq!(
        receipt["dpv:hasRecordOfActivity"]["dct:conformsTo"],
        vector["dpv:hasRecordOfActivity"]["dct:conformsTo"]
    );
}

// ---- the index ----

#[test]
fn the_index_decides_per_subject_dataset_purpose_and_recipient() {
    let signer = HashSigner;
    let mut index = ConsentIndex::new();
    let anna = record_with(&[Requested, Given], &signer);
    let mut bo = ConsentRecord::new(terms("c-2", "19850505-5555")).unwrap();
    bo.append(ev(Requested, 0), &signer).unwrap();
    index.apply(&anna);
    index.apply(&bo);
    let (anna_h, bo_h) = (anna.terms().subject, bo.terms().subject);
    let stranger = key().pseudonym("20000101-0000");
    let f = index.filter("parking-permits", "dpv:ServiceProvision", LUND, t(120));
    assert_eq!(f.decide(&anna_h), Standing::Active);
    assert!(f.releases_identifier(&key(), "19121212-1212"));
    assert_eq!(f.decide(&bo_h), Standing::Requested);
    assert_eq!(f.decide(&stranger), Standing::NoConsent);
    // Any DPV spelling of the purpose finds the same scope.
    let full = index.filter(
        "parking-permits",
        "https://w3id.org/dpv#ServiceProvision",
        LUND,
        t(120),
    );
    assert!(full.releases(&anna_h));
    // Another purpose, recipient or dataset: nothing.
    for f in [
        index.filter("parking-permits", "dpv:Marketing", LUND, t(120)),
        index.filter(
            "parking-permits",
            "dpv:ServiceProvision",
            "did:web:adtech.example",
            t(120),
        ),
        index.filter("home-care-visits", "dpv:ServiceProvision", LUND, t(120)),
    ] {
        assert_eq!(f.decide(&anna_h), Standing::NoConsent);
    }
    // The policy decision's context gives the scope.
    let ctx = EvaluationContext::new(LUND, Action::Read, t(120))
        .with_target("parking-permits")
        .with_purpose("dpv:ServiceProvision");
    assert!(index.filter_for(&ctx).releases(&anna_h));
    assert!(
        !index
            .filter_for(&ctx.clone().with_recipient("did:web:adtech.example"))
            .releases(&anna_h)
    );
    let no_purpose =
        EvaluationContext::new(LUND, Action::Read, t(120)).with_target("parking-permits");
    assert!(!index.filter_for(&no_purpose).releases(&anna_h));
    assert_eq!(index.len(), 2);
}

// ---- offers and agreements ----

fn policy(value: Value) -> crate::Policy {
    parse_policy(&value).unwrap()
}

#[test]
fn an_offer_on_personal_data_names_a_declared_purpose() {
    let d = declaration();
    let ok = [
        (
            json!({"@type": "Offer", "permission": [{"action": "use", "constraint": [
            {"leftOperand": "purpose", "operator": "eq", "rightOperand": {"@id": "dpv:ServiceProvision"}}]}]}),
            vec!["dpv:ServiceProvision"],
        ),
        (
            json!({"@type": "Offer", "permission": [{"action": "use", "constraint": [
            {"and": [{"leftOperand": "dateTime", "operator": "lt", "rightOperand":
                {"@value": "2028-01-01", "@type": "xsd:date"}},
             {"leftOperand": "purpose", "operator": "isA", "rightOperand": {"@id": "https://w3id.org/dpv#AcademicResearch"}}]}]}]}),
            vec!["dpv:AcademicResearch"],
        ),
        (
            json!({"@type": "Offer", "permission": [{"action": "use", "constraint": [
            {"leftOperand": "purpose", "operator": "isAnyOf",
             "rightOperand": ["dpv:ServiceProvision", "dpv:ResearchAndDevelopment"]}]}]}),
            vec!["dpv:ServiceProvision", "dpv:ResearchAndDevelopment"],
        ),
    ];
    for (p, expected) in ok {
        assert_eq!(offer_purposes(&policy(p), &d).unwrap(), expected);
    }
    let bad = [
        (
            json!({"@type": "Offer", "permission": [{"action": "use"}]}),
            vec!["/permission/0/constraint"],
        ),
        (
            json!({"@type": "Offer", "permission": [{"action": "use", "constraint": [
            {"leftOperand": "purpose", "operator": "eq", "rightOperand": {"@id": "dpv:Marketing"}}]}]}),
            vec!["/permission/0/constraint/0/rightOperand"],
        ),
        (
            json!({"@type": "Offer", "permission": [{"action": "use", "constraint": [
            {"or": [{"leftOperand": "purpose", "operator": "eq", "rightOperand": {"@id": "dpv:ServiceProvision"}},
                    {"leftOperand": "spatial", "operator": "eq", "rightOperand": "SE"}]}]}]}),
            vec!["/permission/0/constraint"],
        ),
        (
            json!({"@type": "Offer", "prohibition": [{"action": "distribute"}]}),
            vec!["/permission"],
        ),
    ];
    for (p, pointers) in bad {
        let errors = offer_purposes(&policy(p.clone()), &d).unwrap_err();
        let got: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(got, pointers, "{p}");
    }
}

#[test]
fn agreement_terms_are_written_as_odrl_and_read_back() {
    let d = declaration();
    let offer = policy(
        json!({"@type": "Offer", "permission": [{"action": "use", "constraint": [
        {"leftOperand": "purpose", "operator": "isA", "rightOperand": {"@id": "dpv:ServiceProvision"}}]}]}),
    );
    let terms = DataAgreementTerms::new(&d, "https://w3id.org/dpv#ServiceProvision", LUND).unwrap();
    assert_eq!(terms.purpose, "dpv:ServiceProvision");
    assert_eq!(terms.retention, "P6M");
    let agreement = terms.apply(&offer);
    // Through the compact JSON a DSP agreement carries, and back.
    let json = agreement.to_compact_json();
    let text = json.to_string();
    assert!(
        text.contains(DELETE_ON_WITHDRAWAL) && text.contains(DELETE_AFTER_RETENTION),
        "{text}"
    );
    let back = policy(json);
    assert_eq!(DataAgreementTerms::read(&back, &d).unwrap(), terms);
    // The evaluator grants the recipient for the purpose, and nobody else or for anything else.
    let ctx = |who: &str, purpose: &str| {
        EvaluationContext::new(who, Action::Read, t(0)).with_purpose(purpose)
    };
    let e = OdrlEvaluator::new();
    assert!(
        e.decide(&back, &ctx(LUND, "dpv:ServiceProvision"))
            .permitted
    );
    assert!(!e.decide(&back, &ctx(LUND, "dpv:Marketing")).permitted);
    assert!(
        !e.decide(
            &back,
            &ctx("did:web:adtech.example", "dpv:ServiceProvision")
        )
        .permitted
    );
    // Data on another basis has no withdrawal duty, and needs none.
    let mut public = d.clone();
    public.lawful_basis = caap_catalog::LawfulBasis::PublicTask;
    let public_terms = DataAgreementTerms::new(&public, "dpv:ServiceProvision", LUND).unwrap();
    let public_agreement = public_terms.apply(&offer);
    assert!(
        !public_agreement
            .to_compact_json()
            .to_string()
            .contains(DELETE_ON_WITHDRAWAL)
    );
    assert_eq!(
        DataAgreementTerms::read(&public_agreement, &public).unwrap(),
        public_terms
    );
    // …but consent-based data does.
    let errors = DataAgreementTerms::read(&public_agreement, &d).unwrap_err();
    assert_eq!(errors[0].pointer, "/permission/0/duty");
    assert!(errors[0].message.contains(DELETE_ON_WITHDRAWAL));
}

#[test]
fn agreement_terms_that_do_not_fit_the_dataset_are_named() {
    let d = declaration();
    let mut no_retention = d.clone();
    no_retention.retention = None;
    let errors = DataAgreementTerms::new(&no_retention, "dpv:Marketing", " ").unwrap_err();
    let pointers: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(
        pointers,
        ["/purpose", "/recipient", "/personalData/retention"]
    );
    // A retention longer than declared, or no purpose, or no recipient.
    let offer = policy(json!({"@type": "Offer", "permission": [{"action": "use"}]}));
    let mut long = DataAgreementTerms::new(&d, "dpv:ServiceProvision", LUND).unwrap();
    long.retention = "P7M".into();
    let errors = DataAgreementTerms::read(&long.apply(&offer), &d).unwrap_err();
    assert!(errors[0].message.contains("P7M"), "{errors:?}");
    let mut short = long.clone();
    short.retention = "P30D".into();
    assert!(DataAgreementTerms::read(&short.apply(&offer), &d).is_ok());
    let errors = DataAgreementTerms::read(&offer, &d).unwrap_err();
    assert_eq!(errors[0].pointer, "/permission/0/constraint");
}

// ---- randomized: many citizens, grants and withdrawals interleaved ----

/// A record's coordinates: citizen, dataset, purpose, recipient (indices).
type Key4 = (usize, usize, usize, usize);
/// What the oracle knows: consent given, and until when (seconds).
type Covered = (bool, Option<i64>);

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn randomized_no_record_flows_without_a_covering_consent() {
    const CITIZENS: usize = 300;
    const STEPS: usize = 6_000;
    let purposes = ["dpv:ServiceProvision", "dpv:ResearchAndDevelopment"];
    let recipients = [
        LUND,
        "did:web:helsingborg.example",
        "did:web:supplier.example",
    ];
    let datasets = ["parking-permits", "school-transport"];
    let signer = HashSigner;
    let subject_key = key();
    let citizens: Vec<String> = (0..CITIZENS)
        .map(|i| format!("1990{:08}", i * 7919))
        .collect();

    for seed in [1_u64, 0x5eed, 0xdead_beef] {
        let mut rng = Rng(seed);
        let mut index = ConsentIndex::new();
        // One record per (citizen, dataset, purpose, recipient); the oracle keeps, per record, the status and
        // the end of validity, written down independently of the state machine.
        let mut records: std::collections::HashMap<Key4, ConsentRecord> = Default::default();
        let mut oracle: std::collections::HashMap<Key4, Covered> = Default::default();
        let mut now = 0_i64;
        let (mut released, mut withheld, mut withdrawals) = (0_u64, 0_u64, 0_u64);
        for _ in 0..STEPS {
            now += rng.below(3_600) as i64;
            let key4 = (
                rng.below(CITIZENS),
                rng.below(datasets.len()),
                rng.below(purposes.len()),
                rng.below(recipients.len()),
            );
            let (c, d, p, r) = key4;
            let record = records.entry(key4).or_insert_with(|| {
                let mut terms = terms(&format!("c-{c}-{d}-{p}-{r}"), &citizens[c]);
                terms.processing.dataset = datasets[d].into();
                terms.processing.purpose = purposes[p].into();
                terms.processing.recipients = vec![recipients[r].into()];
                ConsentRecord::new(terms).unwrap()
            });
            let status = ConsentStatus::ALL[rng.below(6)];
            let mut event = ev(status, now);
            let lasting = rng.below(3) == 0;
            if lasting && matches!(status, Given | Renewed) {
                event = event.valid_for("PT6H");
            }
            // Random events: the illegal ones are refused and change nothing.
            if record.append(event, &signer).is_ok() {
                index.apply(record);
                let entry = oracle.entry(key4).or_insert((false, None));
                match status {
                    Given | Renewed => *entry = (true, lasting.then_some(now + 6 * 3600)),
                    Withdrawn | Expired | Refused | Requested => *entry = (false, None),
                }
                if status == Withdrawn {
                    withdrawals += 1;
                    // A withdrawal takes effect on the very next decision.
                    let f = index.filter(datasets[d], purposes[p], recipients[r], t(now));
                    assert_eq!(
                        f.decide(&subject_key.pseudonym(&citizens[c])),
                        Standing::Withdrawn
                    );
                }
            }
            // A pull: a batch of records, each for a random citizen, through one filter.
            let (d, p, r) = (rng.below(2), rng.below(2), rng.below(3));
            let f = index.filter(datasets[d], purposes[p], recipients[r], t(now));
            for _ in 0..20 {
                let c = rng.below(CITIZENS);
                let flows = f.releases_identifier(&subject_key, &citizens[c]);
                let covered = oracle
                    .get(&(c, d, p, r))
                    .is_some_and(|(given, until)| *given && until.is_none_or(|u| now < u));
                assert_eq!(
                    flows, covered,
                    "seed {seed:#x}: citizen {c} {d} {p} {r} at {now}"
                );
                if flows { released += 1 } else { withheld += 1 }
            }
        }
        // The run exercised both outcomes and many withdrawals.
        assert!(
            released > 1_000 && withheld > 1_000 && withdrawals > 50,
            "{released} {withheld} {withdrawals}"
        );
        // And every record's chain is whole.
        for record in records.values().take(50) {
            struct HashVerifier;
            impl RevisionVerifier for HashVerifier {
                fn verify(&self, jws: &str, payload: &[u8]) -> Result<(), SignatureError> {
                    (HashSigner.sign(payload)?.as_str() == jws)
                        .then_some(())
                        .ok_or(SignatureError("bad".into()))
                }
            }
            verify_chain(record.terms(), record.revisions(), &HashVerifier, None).unwrap();
        }
    }
}
