use chrono::{Duration, TimeZone as _};
use serde_json::json;

use super::*;
use crate::canonical::canonical_json;

fn start() -> DateTime<Utc> {
    // Nanoseconds on purpose: append must truncate them.
    Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap() + Duration::nanoseconds(123_456_789)
}

fn agreement(n: u32) -> Value {
    json!({
        "@id": format!("urn:uuid:agreement-{n}"),
        "@type": "Agreement",
        "target": format!("urn:uuid:dataset-{n}"),
        "assigner": "did:web:provider.example",
        "assignee": "did:web:consumer.example",
        "timestamp": "2025-06-01T12:00:00Z",
        "permission": [{"action": "use"}]
    })
}

fn key() -> ParticipantKey {
    ParticipantKey::generate("did:web:provider.example#key-1").unwrap()
}

/// 20 entries of every kind; entries 6 and 14 are signed agreements.
fn chain(key: &ParticipantKey) -> Vec<LedgerEntry> {
    let mut entries: Vec<LedgerEntry> = Vec::new();
    for i in 1..=20u32 {
        let at = start() + Duration::microseconds(i64::from(i) * 1_234_567);
        let new = match i {
            6 | 14 => {
                NewEntry::agreement_signed(at, &AgreementRecord::sign(agreement(i), key).unwrap())
            }
            1 | 11 => NewEntry {
                at,
                kind: EntryKind::OfferPublished,
                subject: format!("offer-{i}"),
                payload: json!({"offer": {"@id": format!("offer-{i}")}, "change": "published"}),
            },
            _ => NewEntry {
                at,
                kind: [
                    EntryKind::NegotiationState,
                    EntryKind::TransferState,
                    EntryKind::PolicyDecision,
                ][(i % 3) as usize],
                subject: format!("urn:uuid:process-{}", i % 4),
                payload: json!({"from": "REQUESTED", "to": "AGREED", "n": i, "ratio": 0.1 + 0.2, "note": "ü€😀\n"}),
            },
        };
        let entry = append(entries.last(), new);
        entries.push(entry);
    }
    entries
}

/// Recomputes `prevHash` and `hash` from index `from` on, as a forger who rewrites the rest of the chain would.
fn rechain(entries: &mut [LedgerEntry], from: usize) {
    for i in from..entries.len() {
        entries[i].prev_hash = if i == 0 {
            GENESIS_HASH.to_owned()
        } else {
            entries[i - 1].hash.clone()
        };
        entries[i].hash = entries[i].expected_hash();
    }
}

fn first_fault(entries: &[LedgerEntry]) -> LedgerFault {
    verify_chain(entries).unwrap_err()
}

#[test]
fn a_clean_chain_verifies() {
    let entries = chain(&key());
    let summary = verify_chain(&entries).unwrap();
    assert_eq!(
        summary,
        LedgerSummary {
            entries: 20,
            agreements_verified: 2,
            last_hash: entries[19].hash.clone(),
        }
    );
    assert_eq!(entries[0].seq, 1);
    assert_eq!(entries[0].prev_hash, GENESIS_HASH);
    for pair in entries.windows(2) {
        assert_eq!(pair[1].seq, pair[0].seq + 1);
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    assert!(entries.iter().all(|e| {
        e.hash.len() == 64
            && e.hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }));
}

#[test]
fn pages_verify_like_the_whole() {
    let entries = chain(&key());
    let mut verifier = ChainVerifier::default();
    for page in entries.chunks(7) {
        for entry in page {
            verifier.push(entry).unwrap();
        }
    }
    assert_eq!(verifier.finish(), verify_chain(&entries).unwrap());
}

#[test]
fn an_empty_ledger_verifies() {
    assert_eq!(
        ChainVerifier::new().finish(),
        LedgerSummary {
            entries: 0,
            agreements_verified: 0,
            last_hash: GENESIS_HASH.to_owned(),
        }
    );
    assert_eq!(GENESIS_HASH.len(), 64);
    assert!(GENESIS_HASH.bytes().all(|b| b == b'0'));
}

#[test]
fn the_export_lines_and_a_database_round_trip_keep_the_chain() {
    let entries = chain(&key());
    // One JSON line per entry, read back.
    let lines: Vec<String> = entries
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    assert!(lines.iter().all(|line| !line.contains('\n')));
    let first: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["at"], "2025-06-01T12:00:01.358023Z");
    assert_eq!(first["kind"], "offer-published");
    assert_eq!(first["prevHash"], GENESIS_HASH);
    assert_eq!(
        first.as_object().unwrap().keys().count(),
        7,
        "seq, at, kind, subject, payload, prevHash, hash"
    );
    let read: Vec<LedgerEntry> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(read, entries);
    verify_chain(&read).unwrap();

    // As a database keeps them: time as microseconds since the epoch, payload as JSON text, members in any order.
    let stored: Vec<LedgerEntry> = entries
        .iter()
        .map(|e| {
            let micros = e.at.timestamp_micros();
            let payload_text = serde_json::to_string_pretty(&e.payload).unwrap();
            LedgerEntry {
                at: DateTime::from_timestamp_micros(micros).unwrap(),
                payload: serde_json::from_str(&payload_text).unwrap(),
                ..e.clone()
            }
        })
        .collect();
    verify_chain(&stored).unwrap();

    // Any RFC 3339 offset is accepted when reading.
    let mut line: Value = serde_json::from_str(&lines[1]).unwrap();
    let at = entries[1]
        .at
        .with_timezone(&chrono::FixedOffset::east_opt(7200).unwrap());
    line["at"] = json!(at.to_rfc3339());
    let entry: LedgerEntry = serde_json::from_value(line).unwrap();
    assert_eq!(entry, entries[1]);
}

#[test]
fn append_numbers_links_and_truncates_to_microseconds() {
    let first = append(
        None,
        NewEntry {
            at: start(),
            kind: EntryKind::PolicyDecision,
            subject: "s".into(),
            payload: json!({"decision": "permit"}),
        },
    );
    assert_eq!(first.seq, 1);
    assert_eq!(first.prev_hash, GENESIS_HASH);
    assert_eq!(first.at.timestamp_subsec_nanos(), 123_456_000);
    assert_eq!(first.hash, first.expected_hash());
    let second = append(
        Some(&first),
        NewEntry {
            at: start(),
            kind: EntryKind::PolicyDecision,
            subject: "s".into(),
            payload: json!({"decision": "permit"}),
        },
    );
    assert_eq!(second.seq, 2);
    assert_eq!(second.prev_hash, first.hash);
    assert_ne!(second.hash, first.hash);
}

#[test]
fn entry_hash_is_sha256_of_the_canonical_entry() {
    let at = Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap();
    let payload = json!({"b": [1, 2], "a": "é\"x"});
    let object = json!({
        "seq": 3,
        "at": "2025-01-02T03:04:05.000000Z",
        "kind": "negotiation-state",
        "subject": "urn:uuid:p",
        "payload": payload,
        "prevHash": GENESIS_HASH,
    });
    let expected = hex(&Sha256::digest(canonical_json(&object).as_bytes()));
    let hash = entry_hash(
        3,
        at,
        EntryKind::NegotiationState,
        "urn:uuid:p",
        &payload,
        GENESIS_HASH,
    );
    assert_eq!(hash, expected);
    // Pinned: changing the hashed form invalidates every stored ledger.
    assert_eq!(
        hash,
        "2cdedb083f6ba17a99044e12037a699531c8ab8d3234185889cbe3b012b7546d"
    );
    // Sub-microsecond differences are not part of the hash (the database would drop them anyway).
    assert_eq!(
        entry_hash(
            3,
            at + Duration::nanoseconds(999),
            EntryKind::NegotiationState,
            "urn:uuid:p",
            &payload,
            GENESIS_HASH,
        ),
        hash
    );
}

#[test]
fn a_changed_payload_is_found_at_its_entry() {
    let mut entries = chain(&key());
    entries[16].payload["to"] = json!("TERMINATED");
    let fault = first_fault(&entries);
    assert_eq!(fault.seq, 17);
    assert_eq!(
        fault.to_string(),
        "entry 17: hash mismatch — the row was changed after it was written"
    );
}

#[test]
fn a_changed_time_kind_or_subject_is_found_at_its_entry() {
    let clean = chain(&key());

    let mut entries = clean.clone();
    entries[8].at += Duration::microseconds(1);
    assert_eq!(first_fault(&entries).seq, 9);

    let mut entries = clean.clone();
    entries[10].kind = EntryKind::ConsentEvent;
    assert_eq!(first_fault(&entries).seq, 11);

    let mut entries = clean.clone();
    entries[2].subject.push('x');
    assert_eq!(first_fault(&entries).seq, 3);

    let mut entries = clean.clone();
    entries[3].seq = 40;
    assert_eq!(first_fault(&entries).seq, 4);

    let mut entries = clean;
    entries[0].prev_hash = entries[1].hash.clone();
    let fault = first_fault(&entries);
    assert_eq!(fault.seq, 1);
    assert!(fault.reason.contains("genesis"), "{fault}");
}

#[test]
fn a_rewritten_entry_with_a_recomputed_hash_breaks_the_next_link() {
    let mut entries = chain(&key());
    entries[7].payload["to"] = json!("TERMINATED");
    entries[7].hash = entries[7].expected_hash();
    let fault = first_fault(&entries);
    assert_eq!(fault.seq, 9);
    assert!(
        fault
            .reason
            .contains("prevHash does not match the hash of entry 8"),
        "{fault}"
    );
}

#[test]
fn a_removed_entry_is_named() {
    let mut entries = chain(&key());
    entries.remove(4);
    let fault = first_fault(&entries);
    assert_eq!(fault.seq, 5);
    assert!(fault.reason.starts_with("missing"), "{fault}");
    assert!(fault.reason.contains("entry 6"), "{fault}");

    // The last entry removed cannot be seen in the chain itself, only by its head.
    let mut entries = chain(&key());
    let head = entries.pop().unwrap().hash;
    assert_ne!(verify_chain(&entries).unwrap().last_hash, head);

    // Removed and the rest renumbered: the link breaks where the gap was.
    let mut entries = chain(&key());
    entries.remove(4);
    for entry in &mut entries[4..] {
        entry.seq -= 1;
    }
    assert_eq!(first_fault(&entries).seq, 5);
}

#[test]
fn reordered_entries_are_found() {
    let clean = chain(&key());

    // Streamed out of order.
    let mut entries = clean.clone();
    entries.swap(11, 12);
    let fault_at = first_fault(&entries);
    assert_eq!(fault_at.seq, 12);

    // Renumbered in the database (the rows swap their seq, so they are read in the new order).
    let mut entries = clean.clone();
    entries.swap(11, 12);
    entries[11].seq = 12;
    entries[12].seq = 13;
    let fault_at = first_fault(&entries);
    assert_eq!(fault_at.seq, 12);
    assert!(fault_at.reason.contains("prevHash"), "{fault_at}");

    // A repeated entry.
    let mut entries = clean;
    entries.insert(6, entries[5].clone());
    let fault_at = first_fault(&entries);
    assert_eq!(fault_at.seq, 7);
    assert!(fault_at.reason.starts_with("out of order"), "{fault_at}");
}

#[test]
fn a_swapped_agreement_is_found_even_in_a_recomputed_chain() {
    let clean = chain(&key());
    assert_eq!(clean[5].kind, EntryKind::AgreementSigned);
    assert_eq!(clean[13].kind, EntryKind::AgreementSigned);

    // The agreement changed, and the forger recomputed every hash from there on.
    let mut entries = clean.clone();
    entries[13].payload["agreement"]["permission"] = json!([{"action": "distribute"}]);
    rechain(&mut entries, 13);
    let fault_at = first_fault(&entries);
    assert_eq!(fault_at.seq, 14);
    assert!(
        fault_at.reason.starts_with("agreement signature:")
            && fault_at.reason.contains("changed after it was signed"),
        "{fault_at}"
    );

    // Another agreement's record put in its place.
    let mut entries = clean.clone();
    entries[13].payload = entries[5].payload.clone();
    entries[13].payload["jws"] = clean[13].payload["jws"].clone();
    rechain(&mut entries, 13);
    assert_eq!(first_fault(&entries).seq, 14);

    // Re-signed by another key, but the record still names the original signer.
    let mut entries = clean.clone();
    let forged = AgreementRecord::sign(agreement(99), &key()).unwrap();
    entries[5].payload["agreement"] = forged.agreement;
    entries[5].payload["jws"] = json!(forged.jws);
    rechain(&mut entries, 5);
    let fault_at = first_fault(&entries);
    assert_eq!(fault_at.seq, 6);
    assert!(fault_at.reason.contains("does not verify"), "{fault_at}");

    // A payload that is no agreement record.
    let mut entries = clean;
    entries[5].payload = json!({"agreement": {}, "jws": 5});
    rechain(&mut entries, 5);
    let fault_at = first_fault(&entries);
    assert_eq!(fault_at.seq, 6);
    assert!(
        fault_at.reason.contains("not an agreement record"),
        "{fault_at}"
    );
}

#[test]
fn the_verifier_stops_at_the_first_fault() {
    let mut entries = chain(&key());
    entries[2].payload = json!("changed");
    let mut verifier = ChainVerifier::new();
    verifier.push(&entries[0]).unwrap();
    verifier.push(&entries[1]).unwrap();
    assert_eq!(verifier.push(&entries[2]).unwrap_err().seq, 3);
    // It did not advance: the same entry fails again, and the summary counts what verified.
    assert_eq!(verifier.push(&entries[2]).unwrap_err().seq, 3);
    let summary = verifier.finish();
    assert_eq!(summary.entries, 2);
    assert_eq!(summary.last_hash, entries[1].hash);
}

#[test]
fn agreement_records_round_trip_as_payloads() {
    let record = AgreementRecord::sign(agreement(1), &key()).unwrap();
    let payload = record.to_payload();
    let mut members: Vec<&str> = payload
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    members.sort_unstable();
    assert_eq!(members, ["agreement", "jws", "signerJwk"]);
    assert_eq!(serde_json::to_value(&record).unwrap(), payload);
    assert_eq!(AgreementRecord::from_payload(&payload).unwrap(), record);
    assert!(record.signer_jwk.get("d").is_none(), "the public key only");
    assert_eq!(record.signer_jwk["kid"], "did:web:provider.example#key-1");
    record.verify().unwrap();
    let entry = NewEntry::agreement_signed(start(), &record);
    assert_eq!(entry.kind, EntryKind::AgreementSigned);
    assert_eq!(entry.subject, "urn:uuid:agreement-1");
    assert_eq!(entry.payload, payload);
}

#[test]
fn entry_kinds_have_one_name_each() {
    for kind in EntryKind::all() {
        assert_eq!(kind.as_str().parse::<EntryKind>(), Ok(kind));
        assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.as_str()));
        assert_eq!(kind.to_string(), kind.as_str());
    }
    assert_eq!(EntryKind::AgreementSigned.as_str(), "agreement-signed");
    assert_eq!(
        "AgreementSigned".parse::<EntryKind>(),
        Err(UnknownEntryKind("AgreementSigned".into()))
    );
}
