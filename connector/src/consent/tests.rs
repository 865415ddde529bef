//! The consent service on SQLite and PostgreSQL: tamper evidence of the stored chains, and a randomized run
//! of many citizens granting and withdrawing while records are filtered, which must never release a record
//! without a covering consent.

use std::collections::HashMap;
use std::sync::Arc;

use caap_catalog::asset::Asset;
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, Database};
use serde_json::json;

use super::records::{Format, RecordFilter};
use super::*;
use crate::clock::SystemClock;
use crate::store::tests::{Backend, backends, open};

const PURPOSE: &str = "dpv:ServiceProvision";
const LUND: &str = "did:web:lund.example";

async fn service(b: &Backend) -> (Consents, tempfile::TempDir) {
    service_at(b, Arc::new(SystemClock)).await
}

async fn service_at(
    b: &Backend,
    clock: Arc<dyn crate::clock::Clock>,
) -> (Consents, tempfile::TempDir) {
    let store = open(b).await;
    let asset: Asset = serde_json::from_value(json!({
        "id": "permits", "title": "Permits",
        "dataAddress": {"type": "File", "path": "p.ndjson", "mediaType": "application/x-ndjson"},
        "personalData": {"subjectField": "refCitizen", "categories": ["pd:Location"], "purposes": [PURPOSE],
                         "retention": "P6M", "jurisdiction": "loc:SE"}
    }))
    .unwrap();
    store
        .create(
            crate::store::DocKind::Asset,
            "permits",
            &serde_json::to_value(&asset).unwrap(),
            &[],
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::config::Config::parse(
        "[participant]\nname = \"Malmö\"\n[api]\nadmin_token = \"0123456789abcdef0123\"\n",
        "t.toml",
        std::iter::empty(),
    )
    .unwrap();
    config.data_dir = dir.path().to_owned();
    let identity = Arc::new(Identity {
        participant_id: "did:web:malmo.example".into(),
        name: "Malmö stad".into(),
        public_url: "http://127.0.0.1:1".into(),
        dsp_base: "http://127.0.0.1:1/dsp".into(),
        key: caap_identity::ParticipantKey::generate("did:web:malmo.example#key-1").unwrap(),
    });
    let consents = Consents::open(store, clock, identity, &config, Arc::default())
        .await
        .unwrap();
    (consents, dir)
}

async fn raw(b: &Backend, sql: &str) {
    let url = b.url();
    let db = Database::connect(url.expose()).await.unwrap();
    db.execute_unprepared(sql).await.unwrap();
    db.close().await.unwrap();
}

#[tokio::test]
async fn an_altered_or_dropped_event_is_named_by_verification() {
    for b in backends("consent_tamper").await {
        let (c, _dir) = service(&b).await;
        let anna = c.pseudonym("19990101-0001");
        let id = c.request(anna, "permits", PURPOSE, LUND).await.unwrap();
        c.record_event(&anna, &id, ConsentStatus::Given, "portal", None)
            .await
            .unwrap();
        c.record_event(&anna, &id, ConsentStatus::Withdrawn, "portal", None)
            .await
            .unwrap();
        let ok = c.verify().await.unwrap();
        assert_eq!(
            (ok.records, ok.events, ok.faults.len()),
            (1, 3, 0),
            "{ok:?}"
        );
        // The stored file holds no identity number.
        let listed = serde_json::to_string(&c.list(None).await.unwrap()).unwrap();
        assert!(!listed.contains("19990101"), "{listed}");

        // Turning the grant into a refusal breaks that event's hash.
        raw(
            &b,
            &format!(
                "UPDATE consent_revisions SET body = REPLACE(body, '\"given\"', '\"refused\"') \
                 WHERE record_id = '{id}' AND seq = 1"
            ),
        )
        .await;
        let bad = c.verify().await.unwrap();
        assert_eq!(bad.faults.len(), 1, "{bad:?}");
        assert!(
            bad.faults[0].contains(&id) && bad.faults[0].contains('1'),
            "{bad:?}"
        );
        raw(
            &b,
            &format!(
                "UPDATE consent_revisions SET body = REPLACE(body, '\"refused\"', '\"given\"') \
                 WHERE record_id = '{id}' AND seq = 1"
            ),
        )
        .await;
        assert!(c.verify().await.unwrap().faults.is_empty());
        // Dropping the withdrawal is noticed (the record's head remembers it).
        raw(
            &b,
            &format!("DELETE FROM consent_revisions WHERE record_id = '{id}' AND seq = 2"),
        )
        .await;
        let dropped = c.verify().await.unwrap();
        assert_eq!(dropped.faults.len(), 1, "{dropped:?}");
        assert!(dropped.faults[0].contains(&id), "{dropped:?}");
    }
}

#[tokio::test]
async fn a_stale_index_releases_nothing_until_refreshed() {
    for b in backends("consent_stale").await {
        let t0 = "2026-12-07T03:00:00Z".parse().unwrap();
        let clock = Arc::new(crate::clock::ManualClock::at(t0));
        let (c, _dir) = service_at(&b, clock.clone()).await;
        let scope = ReleaseScope {
            dataset: "permits".into(),
            purpose: PURPOSE.into(),
            recipient: LUND.into(),
            subject_field: "refCitizen".into(),
        };
        let subject = c.pseudonym("19990001-0000");
        let id = c.request(subject, "permits", PURPOSE, LUND).await.unwrap();
        c.record_event(&subject, &id, ConsentStatus::Given, "portal", None)
            .await
            .unwrap();
        assert!(c.decisions(&scope).releases(&subject));
        // No refresh for longer than `stale_after`: the consent may have been withdrawn on another replica.
        clock.set(t0 + c.stale_after + TimeDelta::seconds(1));
        assert!(!c.decisions(&scope).releases(&subject));
        assert!(!c.releases(&scope, &subject));
        c.refresh().await.unwrap();
        assert!(c.decisions(&scope).releases(&subject));
    }
}

#[tokio::test]
async fn no_record_is_released_without_a_covering_consent() {
    for b in backends("consent_random").await {
        let (c, _dir) = service(&b).await;
        let scope = ReleaseScope {
            dataset: "permits".into(),
            purpose: PURPOSE.into(),
            recipient: LUND.into(),
            subject_field: "refCitizen".into(),
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(27560);
        let people: Vec<String> = (0..40).map(|i| format!("1999{i:04}-0000")).collect();
        let mut records: HashMap<usize, String> = HashMap::new();
        // What the citizens decided last, as the oracle knows it.
        let mut active: HashMap<usize, bool> = HashMap::new();
        let mut released = 0u64;
        for round in 0..60 {
            // A few citizens act...
            for _ in 0..4 {
                let who = rng.random_range(0..people.len());
                let subject = c.pseudonym(&people[who]);
                let id = match records.get(&who) {
                    Some(id) => id.clone(),
                    None => {
                        let id = c.request(subject, "permits", PURPOSE, LUND).await.unwrap();
                        records.insert(who, id.clone());
                        id
                    }
                };
                let is_active = active.get(&who).copied().unwrap_or(false);
                let status = if is_active {
                    ConsentStatus::Withdrawn
                } else if rng.random_bool(0.7) {
                    ConsentStatus::Given
                } else {
                    ConsentStatus::Refused
                };
                if c.record_event(&subject, &id, status, "portal", None)
                    .await
                    .is_ok()
                {
                    active.insert(who, status == ConsentStatus::Given);
                }
            }
            // ...then a pull, record by record, in random chunks.
            let mut data = String::new();
            for (i, p) in people.iter().enumerate() {
                data.push_str(&json!({"n": round * 1000 + i, "refCitizen": p}).to_string());
                data.push('\n');
            }
            // The running connector refreshes the index every second (else it is stale and nothing flows;
            // a slow machine takes longer than `stale_after` for these rounds).
            c.refresh().await.unwrap();
            // Decided a chunk at a time, as the data plane does.
            let mut filter = RecordFilter::new(Format::Ndjson, &scope.subject_field);
            let mut out = Vec::new();
            let bytes = data.as_bytes();
            let mut at = 0;
            while at < bytes.len() {
                let n = rng.random_range(1..256).min(bytes.len() - at);
                let decisions = c.decisions(&scope);
                let mut keep = |s: &str| decisions.releases(&c.pseudonym(s));
                out.extend(filter.push(&bytes[at..at + n], &mut keep).unwrap());
                at += n;
            }
            let decisions = c.decisions(&scope);
            let mut keep = |s: &str| decisions.releases(&c.pseudonym(s));
            out.extend(filter.finish(&mut keep).unwrap());
            for line in String::from_utf8(out).unwrap().lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                let who = people
                    .iter()
                    .position(|p| v["refCitizen"] == p.as_str())
                    .unwrap();
                assert!(
                    active.get(&who).copied().unwrap_or(false),
                    "round {round}: a record of citizen {who} was released without an active consent"
                );
                released += 1;
            }
            // Everyone with an active consent got their record.
            let expected = active.values().filter(|a| **a).count() as u64;
            assert_eq!(filter.tally().kept, expected, "round {round}");
        }
        assert!(released > 100, "the run released some records ({released})");
    }
}
