//! The store suite: the same tests on SQLite and on PostgreSQL.
//!
//! PostgreSQL runs when `CAAP_TEST_POSTGRES_URL` names a server (any database on it; each test
//! creates its own fresh database). Without it the PostgreSQL half prints `SKIPPED`, unless
//! `CAAP_TEST_REQUIRE_POSTGRES=1`, which makes it fail (the README's test command sets both).

use std::sync::Arc;

use caap_catalog::build::CatalogSource;
use caap_catalog::page::Cursor;
use caap_catalog::remote::RemoteDataset;
use caap_catalog::samples;
use sea_orm::{ConnectionTrait, Database};
use serde_json::json;

use super::*;
use crate::clock::SystemClock;

pub(crate) enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Backend {
    pub(crate) fn url(&self) -> Secret {
        match self {
            Backend::Sqlite(dir) => Secret::new(format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("nested/caap.db").display()
            )),
            Backend::Postgres(url) => Secret::new(url.clone()),
        }
    }
}

pub(crate) async fn backends(test: &str) -> Vec<Backend> {
    let mut out = vec![Backend::Sqlite(tempfile::tempdir().unwrap())];
    match std::env::var("CAAP_TEST_POSTGRES_URL") {
        Ok(admin) if !admin.is_empty() => {
            let name = format!("caap_{test}_{}", uuid::Uuid::new_v4().simple());
            let db = Database::connect(admin.as_str()).await.unwrap();
            db.execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            db.close().await.unwrap();
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            out.push(Backend::Postgres(format!("{base}/{name}")));
        }
        _ if std::env::var("CAAP_TEST_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!("CAAP_TEST_REQUIRE_POSTGRES=1 but CAAP_TEST_POSTGRES_URL is not set")
        }
        _ => println!("SKIPPED: store suite `{test}` on PostgreSQL (set CAAP_TEST_POSTGRES_URL)"),
    }
    out
}

pub(crate) async fn open(b: &Backend) -> Store {
    Store::open(&b.url(), 4, Arc::new(SystemClock))
        .await
        .unwrap()
}

/// A store that signs its ledger head (into `file`, if any) when the test says so, and the checks that
/// verify it.
async fn open_sealed(
    b: &Backend,
    key: &caap_identity::keys::ParticipantKey,
    file: Option<std::path::PathBuf>,
) -> (Store, crate::ledger::HeadChecks) {
    let store = open(b)
        .await
        .with_manual_ledger_seal(ledger_head::LedgerSeal::new(key.clone(), file.clone()));
    let checks = crate::ledger::HeadChecks {
        keys: vec![key.public_jwk().unwrap()],
        file,
    };
    (store, checks)
}

fn ledger_key() -> caap_identity::keys::ParticipantKey {
    caap_identity::keys::ParticipantKey::generate("did:web:example.org#key-1").unwrap()
}

fn policy_doc(id: &str) -> serde_json::Value {
    json!({"id": id, "policy": {"@type": "Set", "permission": [{"action": "use"}]}})
}

async fn seed(store: &Store) -> Vec<Asset> {
    let city = &samples::CITIES[1];
    let assets = samples::assets(city, "http://127.0.0.1:9");
    for a in &assets {
        store
            .create(
                DocKind::Asset,
                &a.id,
                &serde_json::to_value(a).unwrap(),
                &[],
            )
            .await
            .unwrap();
    }
    for (id, _) in samples::policies() {
        store
            .create(DocKind::Policy, &id, &policy_doc(&id), &[])
            .await
            .unwrap();
    }
    for o in samples::offers(city, &assets) {
        let refs = offer_refs(&o);
        store
            .create(
                DocKind::Offer,
                &o.id,
                &serde_json::to_value(&o).unwrap(),
                &refs,
            )
            .await
            .unwrap();
    }
    assets
}

fn offer_refs(o: &Offer) -> Vec<DocRef> {
    DocRef::of_offer(o)
}

#[tokio::test]
async fn migrations_go_up_down_and_up_again() {
    for b in backends("migrations").await {
        let store = open(&b).await;
        seed(&store).await;
        // Every pooled connection has read the schema, so each keeps its own copy of it (on SQLite) when
        // another connection drops and creates: migrations must not be spread over them.
        every_connection_reads(&store).await;
        store.migrate_down().await.unwrap();
        assert!(
            store.get(DocKind::Asset, "x").await.is_err(),
            "tables are gone after down"
        );
        store.migrate_up().await.unwrap();
        assert_eq!(count(&store, DocKind::Asset).await, 0);
        seed(&store).await;
        every_connection_reads(&store).await;
        store.migrate_down().await.unwrap();
        store.migrate_up().await.unwrap();
        seed(&store).await;
    }
}

#[tokio::test]
async fn replicas_that_start_together_on_an_empty_database_migrate_it_once() {
    for b in backends("start_together").await {
        let (one, two, three) = tokio::join!(open(&b), open(&b), open(&b));
        let assets = seed(&one).await;
        for store in [&two, &three] {
            assert_eq!(count(store, DocKind::Asset).await, assets.len());
        }
    }
}

/// How many documents of `kind` the store holds (up to 100).
async fn count(store: &Store, kind: DocKind) -> usize {
    store.scan(kind, &Cursor::Start, 100).await.unwrap().len()
}

/// Opens as many transactions as the test stores' pool has connections and reads a table in each.
async fn every_connection_reads(store: &Store) {
    let mut open = Vec::new();
    for _ in 0..4 {
        let txn = store.db.begin().await.unwrap();
        txn.execute_unprepared("SELECT count(*) FROM documents")
            .await
            .unwrap();
        open.push(txn);
    }
    for txn in open {
        txn.commit().await.unwrap();
    }
}

#[tokio::test]
async fn documents_survive_a_restart() {
    for b in backends("restart").await {
        let store = open(&b).await;
        let assets = seed(&store).await;
        store.close().await.unwrap();
        let store = open(&b).await;
        let back = store
            .get(DocKind::Asset, &assets[0].id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            serde_json::from_value::<Asset>(back.body).unwrap(),
            assets[0]
        );
        assert_eq!(count(&store, DocKind::Offer).await, 2);
    }
}

#[tokio::test]
async fn create_replace_delete_keep_references_whole() {
    for b in backends("crud").await {
        let store = open(&b).await;
        let assets = seed(&store).await;
        // Duplicate ids conflict.
        let dup = store
            .create(
                DocKind::Policy,
                samples::OPEN_POLICY_ID,
                &policy_doc("x"),
                &[],
            )
            .await;
        assert!(matches!(dup, Err(StoreError::Conflict(_))));
        // A dangling reference writes nothing.
        let bad = Offer {
            id: "bad".into(),
            assets: vec![assets[0].id.clone(), "missing".into()],
            access_policy: samples::OPEN_POLICY_ID.into(),
            contract_policy: samples::OPEN_POLICY_ID.into(),
            approval: Default::default(),
            public: false,
        };
        let err = store
            .create(
                DocKind::Offer,
                "bad",
                &serde_json::to_value(&bad).unwrap(),
                &offer_refs(&bad),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::MissingRef { pointer, .. } if pointer == "/assets/1"),
            "{err}"
        );
        assert!(store.get(DocKind::Offer, "bad").await.unwrap().is_none());
        // Assets and policies in use cannot be deleted; the message names the user.
        let err = store
            .delete(DocKind::Policy, samples::OPEN_POLICY_ID)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("offer"), "{err}");
        // Replace bumps the version and honours expected versions.
        let p = store
            .replace(
                DocKind::Policy,
                "public-service-use",
                &policy_doc("public-service-use"),
                &[],
                Some(1),
            )
            .await
            .unwrap();
        assert_eq!(p.version, 2);
        let stale = store
            .replace(
                DocKind::Policy,
                "public-service-use",
                &policy_doc("public-service-use"),
                &[],
                Some(1),
            )
            .await;
        assert!(matches!(stale, Err(StoreError::Conflict(_))));
        assert!(matches!(
            store
                .replace(DocKind::Policy, "nope", &policy_doc("nope"), &[], None)
                .await,
            Err(StoreError::NotFound { .. })
        ));
        // Deleting the offers frees the assets.
        for o in store
            .scan(DocKind::Offer, &Cursor::Start, 10)
            .await
            .unwrap()
        {
            store.delete(DocKind::Offer, &o.id).await.unwrap();
        }
        store.delete(DocKind::Asset, &assets[0].id).await.unwrap();
        assert!(matches!(
            store.delete(DocKind::Asset, &assets[0].id).await,
            Err(StoreError::NotFound { .. })
        ));
    }
}

#[tokio::test]
async fn catalog_source_pages_both_ways_and_resolves_offers() {
    for b in backends("catalog").await {
        let store = open(&b).await;
        let mut assets = seed(&store).await;
        assets.sort_by(|a, b| a.id.cmp(&b.id));
        let first = store.assets(&Cursor::Start, 2).await.unwrap();
        assert_eq!(
            first.iter().map(|a| &a.id).collect::<Vec<_>>(),
            [&assets[0].id, &assets[1].id]
        );
        let back = store
            .assets(&Cursor::Before(assets[2].id.clone()), 5)
            .await
            .unwrap();
        assert_eq!(
            back.iter().map(|a| &a.id).collect::<Vec<_>>(),
            [&assets[1].id, &assets[0].id]
        );
        let offers = store.offers_for(&[assets[0].id.clone()]).await.unwrap();
        assert_eq!(offers.len(), 1);
        assert!(offers[0].contract_policy.get("permission").is_some());
        assert!(store.asset("nope").await.unwrap().is_none());
    }
}

#[tokio::test]
async fn federated_cache_replaces_per_source() {
    for b in backends("cache").await {
        let store = open(&b).await;
        let ds = |id: &str| RemoteDataset {
            id: id.into(),
            title: Some(format!("title {id}")),
            description: None,
            keywords: vec![],
            themes: vec![],
            spatial: None,
            data_model: None,
            offer_ids: vec![],
            formats: vec![],
            raw: json!({"@id": id}),
        };
        store
            .replace_cached_catalog("http://a/dsp", "did:web:a", "Lund", &[ds("1"), ds("2")])
            .await
            .unwrap();
        store
            .replace_cached_catalog("http://b/dsp", "did:web:b", "Malmö", &[ds("1")])
            .await
            .unwrap();
        store
            .replace_cached_catalog("http://a/dsp", "did:web:a", "Lund", &[ds("3")])
            .await
            .unwrap();
        let all = store.cached_datasets().await.unwrap();
        let ids: Vec<_> = all
            .iter()
            .map(|c| (c.city.as_str(), c.dataset.id.as_str()))
            .collect();
        assert_eq!(ids, [("Lund", "3"), ("Malmö", "1")]);
        assert_eq!(store.catalog_sources().await.unwrap().len(), 2);
    }
}

fn sample_peer() -> crate::model::Peer {
    crate::model::Peer {
        id: "did:web:malmo.example".into(),
        address: "http://127.0.0.1:9/dsp".into(),
        pid: None,
    }
}

fn sample_negotiation(id: &str) -> crate::model::negotiation::Negotiation {
    use caap_contracts::process::Process;

    use crate::model::negotiation::{Negotiation, NegotiationBody, Step};
    let now = crate::clock::Clock::now(&SystemClock);
    let body = NegotiationBody {
        offer: json!({"@id": "o", "@type": "Offer", "target": "d", "permission": [{"action": "use"}]}),
        ..NegotiationBody::default()
    };
    let role = caap_contracts::Role::Consumer;
    let mut n = Negotiation::new(role, sample_peer(), None, "o".into(), "d".into(), body, now);
    n.id = id.to_owned();
    n.consumer_pid = Some(id.to_owned());
    n.owe(Step::Request, now - chrono::Duration::seconds(1));
    n
}

fn sample_transfer(id: &str) -> crate::model::transfer::Transfer {
    use caap_contracts::process::Process;

    use crate::model::transfer::{TStep, Transfer, TransferBody};
    let now = crate::clock::Clock::now(&SystemClock);
    let body = TransferBody {
        dataset_id: "d".into(),
        ..TransferBody::default()
    };
    let role = caap_contracts::Role::Consumer;
    let format = "HttpData-PULL".into();
    let mut t = Transfer::new(role, sample_peer(), None, "a".into(), format, body, now);
    t.id = id.to_owned();
    t.consumer_pid = Some(id.to_owned());
    t.owe(TStep::Request, now - chrono::Duration::seconds(1));
    t
}

fn entry(subject: &str) -> caap_contracts::ledger::NewEntry {
    caap_contracts::ledger::NewEntry {
        at: crate::clock::Clock::now(&SystemClock),
        kind: caap_contracts::ledger::EntryKind::NegotiationState,
        subject: subject.into(),
        payload: json!({"to": "REQUESTED", "note": "ünïcode"}),
    }
}

/// Two replicas claim a due process at once: exactly one gets it, a stale write is refused, and the
/// claimer's write goes through and releases the lease. The same for every process kind.
async fn due_work_is_claimed_once<P>(b: &Backend, p: P)
where
    P: processes::Stored + caap_contracts::process::Process + std::fmt::Debug,
{
    use crate::store::negotiations::Effects;
    let a = open(b).await;
    let other = open(b).await;
    let saved = a.save(&p, None, &Effects::default()).await.unwrap();
    assert_eq!(saved.version(), 1);
    let until = crate::clock::Clock::now(&SystemClock) + chrono::Duration::seconds(60);
    // Two replicas claim at once: exactly one gets it.
    let (x, y) = tokio::join!(
        a.claim_due::<P>("replica-a", until, 10),
        other.claim_due::<P>("replica-b", until, 10)
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.len() + y.len(), 1, "claimed by both or by none");
    // Leased: nobody claims it again until the lease is released.
    assert!(
        a.claim_due::<P>("replica-a", until, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = x.into_iter().chain(y).next().unwrap();
    assert_eq!(claimed.version(), 2);
    // A write based on the version before the claim is refused.
    assert!(matches!(
        a.save(&saved, Some(saved.version()), &Effects::default())
            .await,
        Err(StoreError::Conflict(_))
    ));
    // The claimer's write goes through and releases the lease.
    let mut done = claimed.clone();
    done.idle();
    let written = a
        .save(&done, Some(claimed.version()), &Effects::default())
        .await
        .unwrap();
    assert_eq!(written.version(), 3);
    assert!(a.next_due::<P>().await.unwrap().is_none());
    let back = other.process::<P>(p.id()).await.unwrap().unwrap();
    assert_eq!(back.pending(), None);
    assert_eq!(back.to_row().unwrap().body, p.to_row().unwrap().body);
    a.close().await.unwrap();
    other.close().await.unwrap();
}

#[tokio::test]
async fn due_negotiations_are_claimed_once_and_stale_writes_are_refused() {
    for b in backends("claims").await {
        due_work_is_claimed_once(&b, sample_negotiation("urn:uuid:n1")).await;
    }
}

#[tokio::test]
async fn a_restarted_instance_takes_its_crashed_runs_leases_back_at_once() {
    use crate::store::negotiations::Effects;
    for b in backends("lease_takeover").await {
        let a = open(&b).await;
        let n = sample_negotiation("urn:uuid:takeover");
        a.save(&n, None, &Effects::default()).await.unwrap();
        let until = crate::clock::Clock::now(&SystemClock) + chrono::Duration::seconds(60);
        let claim = |owner: &'static str| {
            let a = a.clone();
            async move {
                a.claim_due::<crate::model::negotiation::Negotiation>(owner, until, 10)
                    .await
                    .unwrap()
                    .len()
            }
        };
        assert_eq!(claim("instance-a/run-1").await, 1);
        // Another replica waits for the lease; so does the run that holds it.
        assert_eq!(claim("instance-b/run-1").await, 0);
        assert_eq!(claim("instance-a/run-1").await, 0);
        // The same instance restarted (a new run) takes it back without waiting for the expiry.
        assert_eq!(claim("instance-a/run-2").await, 1);
        assert_eq!(claim("instance-b/run-1").await, 0);
        a.close().await.unwrap();
    }
}

#[tokio::test]
async fn due_transfers_are_claimed_once_and_stale_writes_are_refused() {
    for b in backends("transfer_claims").await {
        due_work_is_claimed_once(&b, sample_transfer("urn:uuid:t1")).await;
    }
}

#[tokio::test]
async fn the_ledger_chains_across_concurrent_writers_and_detects_a_changed_row() {
    let key = ledger_key();
    for b in backends("ledger").await {
        let (a, checks) = open_sealed(&b, &key, None).await;
        // Replicas share PostgreSQL; SQLite is one process's (its writers take turns inside the store).
        let other = match b {
            Backend::Sqlite(_) => a.clone(),
            Backend::Postgres(_) => open_sealed(&b, &key, None).await.0,
        };
        let writes = (0..10).map(|i| {
            let s = if i % 2 == 0 { a.clone() } else { other.clone() };
            async move {
                s.append_ledger(&[entry(&format!("s{i}")), entry("x")])
                    .await
            }
        });
        for r in futures_util::future::join_all(writes).await {
            r.unwrap();
        }
        assert_eq!(a.seal_ledger_head().await.unwrap(), Some(20));
        let verified = crate::ledger::verify(&a, &checks).await.unwrap();
        assert_eq!(verified.summary.entries, 20);
        assert_eq!(verified.database_head, Some(20));
        let all = a.ledger(0, 100).await.unwrap();
        assert_eq!(
            all.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=20).collect::<Vec<_>>()
        );
        assert_eq!(a.ledger(15, 100).await.unwrap().len(), 5);
        a.execute_raw("UPDATE ledger SET subject = 'forged' WHERE seq = 7")
            .await
            .unwrap();
        let err = crate::ledger::verify(&a, &checks)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("entry 7"), "{err}");
        a.close().await.unwrap();
        other.close().await.unwrap();
    }
}

/// What an attacker with database access does to the ledger, and the failure `caap ledger verify` names.
const TRUNCATIONS: [(&str, &[&str], &str); 6] = [
    (
        "the last row",
        &["DELETE FROM ledger WHERE seq = 10"],
        "TRUNCATED",
    ),
    (
        "the last five rows",
        &["DELETE FROM ledger WHERE seq > 5"],
        "TRUNCATED",
    ),
    ("all rows", &["DELETE FROM ledger"], "TRUNCATED"),
    (
        "the last five rows and the checkpoint",
        &[
            "DELETE FROM ledger WHERE seq > 5",
            "DELETE FROM ledger_checkpoint",
        ],
        "TRUNCATED: the signed head in the head file",
    ),
    (
        "all rows and the checkpoint (only the head file is left)",
        &["DELETE FROM ledger", "DELETE FROM ledger_checkpoint"],
        "TRUNCATED: the signed head in the head file",
    ),
    (
        "the last five rows, the checkpoint replaced by an older signed one (only the head file is left)",
        &[
            "DELETE FROM ledger WHERE seq > 5",
            "UPDATE ledger_checkpoint SET jws = 'OLD', seq = 5",
        ],
        "TRUNCATED: the signed head in the head file",
    ),
];

#[tokio::test]
async fn a_truncated_ledger_is_detected_by_its_signed_heads() {
    let key = ledger_key();
    for (what, attack, failure) in TRUNCATIONS {
        for b in backends("ledger_truncated").await {
            let dir = tempfile::tempdir().unwrap();
            let (store, checks) =
                open_sealed(&b, &key, Some(dir.path().join(ledger_head::HEAD_FILE))).await;
            let mut old = String::new();
            for i in 1..=10 {
                store
                    .append_ledger(&[entry(&format!("s{i}"))])
                    .await
                    .unwrap();
                if i == 5 {
                    store.seal_ledger_head().await.unwrap();
                    old = store.ledger_checkpoint().await.unwrap().unwrap();
                }
            }
            store.seal_ledger_head().await.unwrap();
            let ok = crate::ledger::verify(&store, &checks).await.unwrap();
            assert_eq!(
                (ok.summary.entries, ok.database_head, ok.file_head),
                (10, Some(10), Some(10))
            );
            for sql in attack {
                store.execute_raw(&sql.replace("OLD", &old)).await.unwrap();
            }
            let err = crate::ledger::verify(&store, &checks)
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains(failure), "{what}: {err}");
            store.close().await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_rewritten_ledger_tail_and_unrecorded_processes_are_named() {
    let key = ledger_key();
    for b in backends("ledger_rewritten").await {
        let (store, checks) = open_sealed(&b, &key, None).await;
        for i in 1..=10 {
            store
                .append_ledger(&[entry(&format!("s{i}"))])
                .await
                .unwrap();
        }
        store.seal_ledger_head().await.unwrap();
        // An attacker who cannot sign deletes the tail and appends a new, correctly chained one.
        store
            .execute_raw("DELETE FROM ledger WHERE seq > 7")
            .await
            .unwrap();
        let unsealed = open(&b).await;
        for i in 8..=10 {
            unsealed
                .append_ledger(&[entry(&format!("forged{i}"))])
                .await
                .unwrap();
        }
        let err = crate::ledger::verify(&store, &checks)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("REWRITTEN: entry 10"), "{err}");
        unsealed.close().await.unwrap();
        store.close().await.unwrap();
    }
    for b in backends("ledger_unrecorded").await {
        let (store, checks) = open_sealed(&b, &key, None).await;
        store.append_ledger(&[entry("s1")]).await.unwrap();
        store.seal_ledger_head().await.unwrap();
        store
            .save_negotiation(
                &sample_negotiation("urn:uuid:n1"),
                None,
                &crate::store::negotiations::Effects::default(),
            )
            .await
            .unwrap();
        let err = crate::ledger::verify(&store, &checks)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("UNRECORDED: negotiation urn:uuid:n1"), "{err}");
        // Without a head file, a deleted checkpoint is named too.
        store
            .execute_raw("DELETE FROM ledger_checkpoint")
            .await
            .unwrap();
        let err = crate::ledger::verify(&store, &checks)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("CHECKPOINT MISSING"), "{err}");
        store.close().await.unwrap();
    }
}

#[tokio::test]
async fn offers_are_recorded_in_the_ledger_with_their_changes() {
    let key = ledger_key();
    for b in backends("offer_ledger").await {
        let (store, checks) = open_sealed(&b, &key, None).await;
        let assets = seed(&store).await;
        let offers = samples::offers(&samples::CITIES[1], &assets);
        let first = &offers[0];
        let mut changed = first.clone();
        changed.assets.truncate(1);
        store
            .replace(
                DocKind::Offer,
                &first.id,
                &serde_json::to_value(&changed).unwrap(),
                &DocRef::of_offer(&changed),
                None,
            )
            .await
            .unwrap();
        store.delete(DocKind::Offer, &first.id).await.unwrap();
        let entries = store.ledger(0, 100).await.unwrap();
        let mine: Vec<&str> = entries
            .iter()
            .filter(|e| e.subject == first.id)
            .map(|e| e.payload["change"].as_str().unwrap())
            .collect();
        assert_eq!(mine, ["published", "changed", "withdrawn"]);
        assert_eq!(entries.len(), offers.len() + 2);
        store.seal_ledger_head().await.unwrap();
        let summary = crate::ledger::verify(&store, &checks)
            .await
            .unwrap()
            .summary;
        assert_eq!(summary.entries, entries.len() as u64);
        store.close().await.unwrap();
    }
}

#[tokio::test]
async fn identity_tables_hold_credentials_jtis_callers_and_the_authority_register() {
    use crate::store::identity::{
        HeldCredential, IssuanceRequest, IssuedCredential, MemberProfile, PresentedCredential,
    };
    for b in backends("identity").await {
        let store = open(&b).await;
        let now = chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        // Held credentials: stored, replaced by id, listed newest first, forgotten.
        let held = |id: &str, at: i64| HeldCredential {
            id: id.into(),
            types: vec!["MembershipCredential".into()],
            issuer: "did:web:authority.example".into(),
            format: "VC2_0_JOSE".into(),
            jwt: format!("jwt-of-{id}"),
            valid_until: Some(now + chrono::Duration::days(1)),
            received_at: now + chrono::Duration::seconds(at),
        };
        store.put_held_credential(&held("a", 0)).await.unwrap();
        store.put_held_credential(&held("b", 1)).await.unwrap();
        store.put_held_credential(&held("a", 2)).await.unwrap();
        let all = store.held_credentials().await.unwrap();
        assert_eq!(
            all.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(all[0].jwt, "jwt-of-a");
        assert!(store.delete_held_credential("b").await.unwrap());
        assert!(!store.delete_held_credential("b").await.unwrap());

        // jtis: the first use wins, a replay is refused, an expired entry may be reused.
        let exp = now + chrono::Duration::minutes(5);
        assert!(store.first_jti_use("did:x\u{1f}1", exp, now).await.unwrap());
        assert!(!store.first_jti_use("did:x\u{1f}1", exp, now).await.unwrap());
        assert!(store.first_jti_use("did:x\u{1f}2", exp, now).await.unwrap());
        let later = exp + chrono::Duration::seconds(1);
        assert!(
            store
                .first_jti_use("did:x\u{1f}1", later + chrono::Duration::minutes(5), later)
                .await
                .unwrap()
        );

        // Verified callers.
        let presented = vec![PresentedCredential {
            id: "urn:uuid:1".into(),
            types: vec!["MembershipCredential".into()],
            issuer: "did:web:authority.example".into(),
            valid_until: None,
            status: vec![caap_identity::vc::StatusEntry::bitstring(
                "https://authority.example/status",
                7,
                "revocation",
            )],
        }];
        assert!(
            store
                .verified_caller("did:web:lund")
                .await
                .unwrap()
                .is_none()
        );
        store
            .put_verified_caller("did:web:lund", &presented, now)
            .await
            .unwrap();
        store
            .put_verified_caller("did:web:lund", &presented, now)
            .await
            .unwrap();
        let (back, at) = store
            .verified_caller("did:web:lund")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back, presented);
        assert_eq!(at, now);

        // The authority's register, requests, issued credentials and revocations.
        let member = MemberProfile {
            holder: "did:web:lund".into(),
            name: Some("Lund".into()),
            roles: vec!["Municipality".into()],
            dsp_address: None,
            attributes: json!({"municipalityCode": "1281"})
                .as_object()
                .cloned()
                .unwrap(),
        };
        store.put_member(&member, now).await.unwrap();
        assert_eq!(store.member("did:web:lund").await.unwrap(), Some(member));
        assert_eq!(store.members().await.unwrap().len(), 1);
        let request = IssuanceRequest {
            id: "r1".into(),
            holder: "did:web:lund".into(),
            holder_pid: "h1".into(),
            status: "RECEIVED".into(),
            reason: None,
            created_at: now,
            updated_at: now,
        };
        store.put_issuance_request(&request).await.unwrap();
        let issued = IssuanceRequest {
            status: "ISSUED".into(),
            ..request
        };
        store.put_issuance_request(&issued).await.unwrap();
        assert_eq!(store.issuance_request("r1").await.unwrap(), Some(issued));
        assert_eq!(store.next_status_index().await.unwrap(), 0);
        for (i, t) in ["MembershipCredential", "MunicipalityCredential"]
            .iter()
            .enumerate()
        {
            let index = store.next_status_index().await.unwrap();
            assert_eq!(index, i as u64);
            store
                .put_issued_credential(&IssuedCredential {
                    id: format!("urn:uuid:c{i}"),
                    holder: "did:web:lund".into(),
                    credential_type: (*t).into(),
                    status_index: index,
                    request_id: Some("r1".into()),
                    issued_at: now,
                    valid_until: now + chrono::Duration::days(365),
                    revoked_at: None,
                    revoke_reason: None,
                })
                .await
                .unwrap();
        }
        assert_eq!(
            store
                .revoke_issued("urn:uuid:c0", "lost key", now)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .revoke_issued("did:web:lund", "left", now)
                .await
                .unwrap(),
            1,
            "only the one not revoked yet"
        );
        let listed = store
            .issued_credentials(Some("did:web:lund"))
            .await
            .unwrap();
        assert!(listed.iter().all(|c| c.revoked_at == Some(now)));
        assert_eq!(listed[0].revoke_reason.as_deref(), Some("lost key"));
        store.close().await.unwrap();
    }
}

#[tokio::test]
async fn concurrent_uses_of_an_agreement_each_get_their_own_count() {
    for b in backends("usage").await {
        let store = open(&b).await;
        let period = chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let mut tasks = Vec::new();
        for _ in 0..40 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                s.record_agreement_use("a1", period, period).await.unwrap()
            }));
        }
        let mut seen: Vec<u64> = Vec::new();
        for t in tasks {
            seen.push(t.await.unwrap());
        }
        seen.sort_unstable();
        assert_eq!(seen, (1..=40).collect::<Vec<u64>>());
        store.release_agreement_use("a1", period).await.unwrap();
        assert_eq!(store.agreement_usage("a1", period).await.unwrap().0, 39);
        store.close().await.unwrap();
    }
}

/// The federated catalog's search index, sources and crawls (issue 18).
mod federated {
    use std::collections::HashSet;

    use super::*;
    use crate::store::federation::{
        FederatedQuery, NewSource, SourceOrigin, SourceState, new_generation,
    };

    fn dataset(id: &str, title: &str, model: &str, theme: &str, open: bool) -> RemoteDataset {
        let constraint = if open {
            json!([])
        } else {
            json!([{"leftOperand": "purpose", "operator": "eq", "rightOperand": "research"}])
        };
        RemoteDataset {
            id: id.into(),
            title: Some(title.into()),
            description: Some(format!("Beskrivning av {title}")),
            keywords: vec!["sensor".into()],
            themes: vec![theme.into()],
            spatial: None,
            data_model: Some(model.into()),
            offer_ids: vec![format!("{id}-offer")],
            formats: vec![],
            raw: json!({
                "@id": id,
                "dct:license": "https://creativecommons.org/licenses/by/4.0/",
                "hasPolicy": [{"permission": [{"action": "use", "constraint": constraint}]}]
            }),
        }
    }

    fn query(q: &str) -> FederatedQuery {
        FederatedQuery {
            q: Some(q.into()),
            ..Default::default()
        }
    }

    async fn ids(store: &Store, q: &FederatedQuery) -> Vec<String> {
        store
            .search_federated(q, 500)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|h| h.item.dataset.id)
            .collect()
    }

    #[tokio::test]
    async fn a_dataset_id_repeated_with_other_attributes_leaves_no_empty_facet_value() {
        for b in backends("fed_repeated_id").await {
            let store = open(&b).await;
            // The second `d1` is dropped (a source's ids are unique), so the bucket it would have made
            // (data model `B`) holds nothing and must not appear as a facet value.
            store
                .replace_cached_catalog(
                    "http://lund/dsp",
                    "did:web:lund",
                    "Lund",
                    &[
                        dataset("d1", "Parkering", "A", "transport", true),
                        dataset("d1", "Parkering", "B", "transport", true),
                    ],
                )
                .await
                .unwrap();
            for q in [FederatedQuery::default(), query("parkering")] {
                let page = store.search_federated(&q, 10).await.unwrap();
                assert_eq!(page.total, 1);
                let models: Vec<_> = page
                    .facets
                    .data_model
                    .iter()
                    .map(|f| f.value.clone())
                    .collect();
                assert_eq!(models, ["A"], "{q:?}");
            }
        }
    }

    #[tokio::test]
    async fn swedish_and_english_inflections_are_found_ranked_with_facets() {
        for b in backends("fed_words").await {
            let store = open(&b).await;
            store
                .replace_cached_catalog(
                    "http://lund/dsp",
                    "did:web:lund",
                    "Lund",
                    &[
                        dataset(
                            "p1",
                            "Parkeringar i centrum",
                            "OffStreetParking",
                            "transport",
                            false,
                        ),
                        dataset(
                            "p2",
                            "Luftkvalitet vid stationen",
                            "AirQualityObserved",
                            "environment",
                            true,
                        ),
                    ],
                )
                .await
                .unwrap();
            store
                .replace_cached_catalog(
                    "http://malmo/dsp",
                    "did:web:malmo",
                    "Malmö",
                    &[
                        dataset(
                            "m1",
                            "Parkering vid Triangeln",
                            "OffStreetParking",
                            "transport",
                            true,
                        ),
                        dataset(
                            "m2",
                            "Air quality stations",
                            "AirQualityObserved",
                            "environment",
                            false,
                        ),
                        dataset(
                            "m3",
                            "Bicycle counters",
                            "TrafficFlowObserved",
                            "transport",
                            true,
                        ),
                    ],
                )
                .await
                .unwrap();
            // Swedish: the singular finds the plural and the other way round.
            let mut found = ids(&store, &query("parkering")).await;
            found.sort();
            assert_eq!(found, ["m1", "p1"], "{}", store.backend());
            let mut found = ids(&store, &query("parkeringar")).await;
            found.sort();
            assert_eq!(found, ["m1", "p1"], "{}", store.backend());
            // English: a singular finds the plural (and Swedish the definite form).
            let mut found = ids(&store, &query("station")).await;
            found.sort();
            assert_eq!(found, ["m2", "p2"]);
            // A word of the data model (camel case) and a city.
            assert_eq!(ids(&store, &query("parking malmö")).await, ["m1"]);
            // Filters combine with text, and the facets count every hit.
            let page = store
                .search_federated(
                    &FederatedQuery {
                        data_model: Some("offstreetparking".into()),
                        ..Default::default()
                    },
                    1,
                )
                .await
                .unwrap();
            assert_eq!(page.total, 2);
            assert_eq!(page.items.len(), 1);
            assert!(page.next.is_some());
            let facet = |f: &[crate::store::federation::FacetCount]| {
                f.iter()
                    .map(|c| (c.value.clone(), c.count))
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                facet(&page.facets.city),
                [("Lund".to_owned(), 1), ("Malmö".to_owned(), 1)]
            );
            assert_eq!(
                facet(&page.facets.access),
                [("negotiable".to_owned(), 1), ("open".to_owned(), 1)]
            );
            assert_eq!(
                facet(&page.facets.licence),
                [("https://creativecommons.org/licenses/by/4.0/".to_owned(), 2)]
            );
            let open_transport = FederatedQuery {
                theme: Some("Transport".into()),
                access: Some("open".into()),
                ..Default::default()
            };
            let mut found = ids(&store, &open_transport).await;
            found.sort();
            assert_eq!(found, ["m1", "m3"]);
            let page = store.search_federated(&open_transport, 10).await.unwrap();
            assert_eq!(facet(&page.facets.theme), [("transport".to_owned(), 2)]);
            // Filters that no dataset passes together: nothing, with or without words.
            for q in [None, Some("air")] {
                let page = store
                    .search_federated(
                        &FederatedQuery {
                            q: q.map(str::to_owned),
                            city: Some("Malmö".into()),
                            data_model: Some("AirQualityObserved".into()),
                            access: Some("open".into()),
                            ..Default::default()
                        },
                        10,
                    )
                    .await
                    .unwrap();
                assert_eq!((page.total, page.items.len()), (0, 0));
                assert!(page.next.is_none() && page.facets.city.is_empty());
            }
            assert!(page.items.iter().all(|h| !h.stale && h.access == "open"));
            // Ranked: a title match comes before a description-only one.
            store
                .replace_cached_catalog(
                    "http://ystad/dsp",
                    "did:web:ystad",
                    "Ystad",
                    &[RemoteDataset {
                        description: Some("Data om parkering".into()),
                        ..dataset("y1", "Trafik", "TrafficFlowObserved", "transport", true)
                    }],
                )
                .await
                .unwrap();
            let hits = store
                .search_federated(&query("parkering"), 10)
                .await
                .unwrap()
                .items;
            assert_eq!(hits.last().unwrap().item.dataset.id, "y1");
            assert!(hits[0].score > hits.last().unwrap().score);
            // Bad input is refused, not searched.
            assert!(
                store
                    .search_federated(
                        &FederatedQuery {
                            access: Some("free".into()),
                            ..Default::default()
                        },
                        10
                    )
                    .await
                    .is_err()
            );
            assert!(
                store
                    .search_federated(
                        &FederatedQuery {
                            cursor: Some("xyz".into()),
                            ..Default::default()
                        },
                        10
                    )
                    .await
                    .is_err()
            );
            store.close().await.unwrap();
        }
    }

    /// Each process keeps the bucket directory; a commit, a removal or a renamed source on another
    /// replica shows in this one's next search.
    #[tokio::test]
    async fn a_replica_sees_another_replicas_crawl_at_its_next_search() {
        for b in backends("fed_replica_directory").await {
            let (one, two) = (open(&b).await, open(&b).await);
            // A crawl of `name`'s catalog, committed by the other replica.
            let crawl = async |name: &str, city: &str, datasets: &[RemoteDataset]| {
                let (address, did) = (format!("http://{name}/dsp"), format!("did:web:{name}"));
                two.replace_cached_catalog(&address, &did, city, datasets)
                    .await
                    .unwrap();
            };
            let lund = |title: &str| vec![dataset("urn:lund:1", title, "M", "t", true)];
            crawl("lund", "Lund", &lund("Parkering")).await;
            assert_eq!(ids(&one, &query("parkering")).await, vec!["urn:lund:1"]);
            assert_eq!(
                one.search_federated(&FederatedQuery::default(), 10)
                    .await
                    .unwrap()
                    .total,
                1
            );
            let malmo = [dataset("urn:malmo:1", "Parkering", "M", "t", true)];
            crawl("malmo", "Malmö", &malmo).await;
            crawl("lund", "Lund", &lund("Luft")).await;
            assert_eq!(ids(&one, &query("parkering")).await, vec!["urn:malmo:1"]);
            let page = one
                .search_federated(
                    &FederatedQuery {
                        city: Some("malmö".into()),
                        ..Default::default()
                    },
                    10,
                )
                .await
                .unwrap();
            assert_eq!(page.total, 1);
            assert!(two.remove_source("http://malmo/dsp").await.unwrap());
            assert!(ids(&one, &query("parkering")).await.is_empty());
            assert_eq!(ids(&one, &query("luft")).await, vec!["urn:lund:1"]);

            // Words with filters after a commit `one` has not seen: its directory names buckets that
            // are gone (Lund crawled again) or none that pass (Göteborg is new); the rows are read
            // again for the directory of the revision they were read at.
            let words_in = |q: &str, city: &str| FederatedQuery {
                q: Some(q.into()),
                city: Some(city.into()),
                ..Default::default()
            };
            crawl("lund", "Lund", &lund("Buller")).await;
            assert_eq!(
                ids(&one, &words_in("buller", "lund")).await,
                vec!["urn:lund:1"]
            );
            let goteborg = [dataset("urn:gbg:1", "Buller vid torget", "M", "t", true)];
            crawl("goteborg", "Göteborg", &goteborg).await;
            assert_eq!(
                ids(&one, &words_in("buller torget", "göteborg")).await,
                vec!["urn:gbg:1"]
            );
        }
    }

    /// The term index is an optimisation, not a second meaning: every search (words, prefixes,
    /// filters) pages through exactly the hits, scores and order that checking each live dataset against
    /// the words finds, with the same total and facets, over buckets that span several staged pages and
    /// after a source is crawled again.
    #[tokio::test]
    async fn the_term_index_finds_what_a_scan_of_every_dataset_finds() {
        use crate::store::federation::{SCORED_COLUMNS, column_terms, query_words};
        const VOCAB: &[&str] = &[
            "parkering",
            "parkeringar",
            "parkeringsplats",
            "luft",
            "luftkvalitet",
            "buller",
            "bullret",
            "station",
            "stationen",
            "stationer",
            "hamn",
            "hamnen",
            "torg",
            "torget",
            "cykel",
            "cyklar",
            "sensor",
            "park",
            "parken",
            "väg",
            "vägar",
            "OffStreetParking",
        ];
        const QUERIES: &[&str] = &[
            "park",
            "stat",
            "parkering",
            "stationen",
            "luft torget",
            "cyklar väg",
            "sensor",
            "hamnen hamn",
            "buller park",
            "vägarna",
            "parkeringsplatser",
            "street",
            "zzz",
            "p",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let text = |n: usize, next: &mut dyn FnMut(usize) -> usize| {
            (0..1 + next(n))
                .map(|_| VOCAB[next(VOCAB.len())])
                .collect::<Vec<_>>()
                .join(" ")
        };
        // (city, address, dataset) of every dataset the last crawls left.
        let mut live: Vec<(String, String, RemoteDataset)> = Vec::new();
        let mut crawls = Vec::new();
        for (city, n) in [("Lund", 230), ("Malmö", 140), ("Ystad", 90), ("Lund", 170)] {
            let datasets: Vec<RemoteDataset> = (0..n)
                .map(|i| {
                    let mut d = dataset(
                        &format!("urn:{city}:{i:03}"),
                        &text(3, &mut next),
                        ["ParkingSpot", "AirQualityObserved", "Road"][next(3)],
                        ["transport", "environment"][next(2)],
                        next(2) == 0,
                    );
                    d.description = Some(text(4, &mut next));
                    d.keywords = vec![text(2, &mut next)];
                    d
                })
                .collect();
            crawls.push((city, datasets));
        }
        // When the sources are next due (no crawler runs here: any fixed instant does).
        let later = chrono::DateTime::from_timestamp(4_102_444_800, 0).unwrap();
        for b in backends("fed_term_index").await {
            let store = open(&b).await;
            live.clear();
            for (city, datasets) in &crawls {
                let address = format!("http://{}/dsp", city.to_lowercase());
                store
                    .put_source(
                        &NewSource {
                            address: address.clone(),
                            participant_id: format!("did:web:{city}"),
                            city: (*city).to_owned(),
                        },
                        SourceOrigin::Manual,
                        later,
                    )
                    .await
                    .unwrap();
                let generation = new_generation();
                // Pages of 37: a bucket's datasets arrive over several pages.
                for page in datasets.chunks(37) {
                    store
                        .stage_page(&address, city, generation, page)
                        .await
                        .unwrap();
                }
                store
                    .commit_crawl(
                        &address,
                        generation,
                        &format!("did:web:{city}"),
                        city,
                        later,
                    )
                    .await
                    .unwrap()
                    .unwrap();
                live.retain(|(_, a, _)| *a != address);
                live.extend(
                    datasets
                        .iter()
                        .map(|d| ((*city).to_owned(), address.clone(), d.clone())),
                );
            }
            let filters: [fn(&mut FederatedQuery); 4] = [
                |_| {},
                |q| q.data_model = Some("parkingspot".into()),
                |q| q.access = Some("open".into()),
                |q| q.city = Some("LUND".into()),
            ];
            for text in QUERIES {
                for (f, filter) in filters.iter().enumerate() {
                    let mut q = query(text);
                    filter(&mut q);
                    let words = query_words(text);
                    // What a scan finds: every word starts an indexed term of some column; the score adds
                    // each column's weight for each word with a stem there.
                    let mut want: Vec<(i64, String, String, String, String)> = live
                        .iter()
                        .filter(|(city, _, d)| match f {
                            1 => d.data_model.as_deref() == Some("ParkingSpot"),
                            2 => d.raw["hasPolicy"][0]["permission"][0]["constraint"]
                                .as_array()
                                .is_some_and(Vec::is_empty),
                            3 => city == "Lund",
                            _ => true,
                        })
                        .filter_map(|(city, address, d)| {
                            let columns = column_terms(d, city);
                            let has = |column: &str, prefixes: &[&str]| {
                                column.split(' ').any(|t| {
                                    !t.is_empty() && prefixes.iter().any(|p| t.starts_with(p))
                                })
                            };
                            let mut score = 1;
                            for w in &words {
                                if !columns.iter().any(|c| has(c, &w.prefixes())) {
                                    return None;
                                }
                                for (c, (_, weight)) in columns.iter().zip(SCORED_COLUMNS) {
                                    if has(c, &w.stem_prefixes()) {
                                        score += weight;
                                    }
                                }
                            }
                            let model = d.data_model.clone().unwrap_or_default();
                            Some((-score, city.clone(), address.clone(), d.id.clone(), model))
                        })
                        .collect();
                    want.sort();
                    let mut got = Vec::new();
                    let mut cursor = None;
                    let first = loop {
                        let page = store
                            .search_federated(
                                &FederatedQuery {
                                    cursor,
                                    ..q.clone()
                                },
                                23,
                            )
                            .await
                            .unwrap();
                        got.extend(page.items.iter().map(|h| {
                            (
                                -h.score,
                                h.item.city.clone(),
                                h.item.counter_party_address.clone(),
                                h.item.dataset.id.clone(),
                                h.item.dataset.data_model.clone().unwrap_or_default(),
                            )
                        }));
                        cursor = page.next.clone();
                        if cursor.is_none() {
                            break page;
                        }
                    };
                    let differ = got.iter().zip(&want).position(|(g, w)| g != w);
                    assert!(
                        got.len() == want.len() && differ.is_none(),
                        "q={text} filter {f}: {} hits, want {}; first difference at {differ:?}: {:?} / {:?}",
                        got.len(),
                        want.len(),
                        differ.and_then(|i| got.get(i)),
                        differ.and_then(|i| want.get(i)),
                    );
                    let page = store.search_federated(&q, 23).await.unwrap();
                    assert_eq!(page.total, want.len() as u64, "q={text} filter {f}");
                    let mut models = std::collections::BTreeMap::new();
                    for w in &want {
                        *models.entry(w.4.clone()).or_insert(0u64) += 1;
                    }
                    let facet: std::collections::BTreeMap<String, u64> = page
                        .facets
                        .data_model
                        .iter()
                        .map(|c| (c.value.clone(), c.count))
                        .collect();
                    assert_eq!(facet, models, "q={text} filter {f}");
                    drop(first);
                }
            }
        }
    }

    #[tokio::test]
    async fn paging_is_stable_while_a_source_is_replaced() {
        for b in backends("fed_paging").await {
            let store = open(&b).await;
            let catalog = |city: &str, n: usize| -> Vec<RemoteDataset> {
                (0..n)
                    .map(|i| {
                        let title = if i % 3 == 0 { "Parkering" } else { "Luft" };
                        dataset(&format!("{city}-{i:02}"), title, "M", "t", i % 2 == 0)
                    })
                    .collect()
            };
            for city in ["a", "b", "c"] {
                store
                    .replace_cached_catalog(
                        &format!("http://{city}/dsp"),
                        city,
                        city,
                        &catalog(city, 20),
                    )
                    .await
                    .unwrap();
            }
            for q in [FederatedQuery::default(), query("parkering luft sensor")] {
                let total = store.search_federated(&q, 500).await.unwrap().total;
                let mut seen = Vec::new();
                let mut cursor = None;
                let mut round = 0;
                loop {
                    let page = store
                        .search_federated(
                            &FederatedQuery {
                                cursor,
                                limit: None,
                                ..q.clone()
                            },
                            7,
                        )
                        .await
                        .unwrap();
                    seen.extend(page.items.into_iter().map(|h| h.item.dataset.id));
                    // Between pages the crawler replaces source b (same datasets, a new generation).
                    round += 1;
                    let generation = new_generation();
                    store
                        .stage_page("http://b/dsp", "b", generation, &catalog("b", 20)[..10])
                        .await
                        .unwrap();
                    if round % 2 == 0 {
                        store
                            .stage_page("http://b/dsp", "b", generation, &catalog("b", 20)[10..])
                            .await
                            .unwrap();
                        store
                            .commit_crawl("http://b/dsp", generation, "b", "b", store.clock.now())
                            .await
                            .unwrap();
                    }
                    match page.next {
                        Some(n) => cursor = Some(n),
                        None => break,
                    }
                }
                let unique: HashSet<&String> = seen.iter().collect();
                assert_eq!(unique.len(), seen.len(), "no hit twice: {seen:?}");
                assert_eq!(seen.len() as u64, total, "no hit missed");
            }
            store.close().await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_failing_source_keeps_its_last_good_datasets_marked_stale() {
        for b in backends("fed_stale").await {
            let store = open(&b).await;
            let a = "http://lund/dsp";
            store
                .replace_cached_catalog(
                    a,
                    "did:web:lund",
                    "Lund",
                    &[dataset("d1", "Parkering", "M", "t", true)],
                )
                .await
                .unwrap();
            // A crawl that fails half-way: its staged page is dropped, the last good catalog stays.
            let generation = new_generation();
            store
                .stage_page(
                    a,
                    "Lund",
                    generation,
                    &[dataset("d2", "Parkering ny", "M", "t", true)],
                )
                .await
                .unwrap();
            let later = store.clock.now() + chrono::Duration::minutes(5);
            store
                .fail_crawl(
                    a,
                    generation,
                    "POST http://lund/dsp/catalog/request answered 503",
                    later,
                )
                .await
                .unwrap();
            let hits = store
                .search_federated(&query("parkering"), 10)
                .await
                .unwrap()
                .items;
            assert_eq!(hits.len(), 1);
            assert_eq!(hits[0].item.dataset.id, "d1");
            assert!(hits[0].stale);
            let source = store.catalog_source(a).await.unwrap().unwrap();
            assert_eq!(source.state, SourceState::Stale);
            assert_eq!(source.failures, 1);
            assert_eq!(source.dataset_count, 1);
            assert!(source.last_error.unwrap().contains("503"));
            assert!(source.fetched_at.is_some());
            // Not due again until the back-off is over.
            let lease = store.clock.now() + chrono::Duration::minutes(1);
            assert!(
                store
                    .claim_crawls("r1", lease, 10)
                    .await
                    .unwrap()
                    .is_empty()
            );
            // A success clears the error.
            store
                .replace_cached_catalog(
                    a,
                    "did:web:lund",
                    "Lund",
                    &[dataset("d3", "Parkering", "M", "t", true)],
                )
                .await
                .unwrap();
            let source = store.catalog_source(a).await.unwrap().unwrap();
            assert_eq!(
                (source.state, source.failures, source.last_error),
                (SourceState::Fresh, 0, None)
            );
            assert_eq!(ids(&store, &query("parkering")).await, ["d3"]);
            store.close().await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_directory_that_cannot_be_read_is_recorded_until_it_is_read() {
        for b in backends("fed_dir_status").await {
            let store = open(&b).await;
            let url = "https://anchor/directory";
            assert!(store.directory_status(url).await.unwrap().is_none());
            for _ in 0..2 {
                store
                    .record_directory_read(url, Err("answered 502"))
                    .await
                    .unwrap();
            }
            let status = store.directory_status(url).await.unwrap().unwrap();
            assert_eq!(
                (
                    status.failures,
                    status.last_error.as_deref(),
                    status.read_at
                ),
                (2, Some("answered 502"), None)
            );
            store.record_directory_read(url, Ok(3)).await.unwrap();
            let status = store.directory_status(url).await.unwrap().unwrap();
            assert_eq!((status.failures, status.members), (0, 3));
            assert!(status.last_error.is_none() && status.read_at.is_some());
            // A provider is found by its participant id, whatever the case.
            store
                .replace_cached_catalog("http://lund/dsp", "did:web:Lund", "Lund", &[])
                .await
                .unwrap();
            let found = store.source_of_participant("did:web:lund").await.unwrap();
            assert_eq!(found.unwrap().counter_party_address, "http://lund/dsp");
            store.close().await.unwrap();
        }
    }

    #[tokio::test]
    async fn directory_sources_are_claimed_once_and_removed_when_they_leave() {
        for b in backends("fed_directory").await {
            let store = open(&b).await;
            let now = store.clock.now();
            for (a, city) in [("http://lund/dsp", "Lund"), ("http://malmo/dsp", "Malmö")] {
                store
                    .put_source(
                        &NewSource {
                            address: a.into(),
                            participant_id: format!("did:web:{city}"),
                            city: city.into(),
                        },
                        SourceOrigin::Directory,
                        now,
                    )
                    .await
                    .unwrap();
            }
            store
                .replace_cached_catalog(
                    "http://ystad/dsp",
                    "did:web:ystad",
                    "Ystad",
                    &[dataset("y", "Parkering", "M", "t", true)],
                )
                .await
                .unwrap();
            // Two replicas claim: each due source goes to one of them.
            let lease = now + chrono::Duration::minutes(5);
            let (r1, r2) = tokio::join!(
                store.claim_crawls("r1", lease, 10),
                store.claim_crawls("r2", lease, 10)
            );
            let mut claimed: Vec<String> = r1
                .unwrap()
                .into_iter()
                .chain(r2.unwrap())
                .map(|s| s.counter_party_address)
                .collect();
            claimed.sort();
            assert_eq!(claimed, ["http://lund/dsp", "http://malmo/dsp"]);
            for (a, id) in [("http://lund/dsp", "l"), ("http://malmo/dsp", "m")] {
                let generation = new_generation();
                store
                    .stage_page(
                        a,
                        "x",
                        generation,
                        &[dataset(id, "Parkering", "M", "t", true)],
                    )
                    .await
                    .unwrap();
                let city = if id == "l" { "Lund" } else { "Malmö" };
                store
                    .commit_crawl(a, generation, &format!("did:web:{city}"), city, lease)
                    .await
                    .unwrap();
            }
            let mut found = ids(&store, &query("parkering")).await;
            found.sort();
            assert_eq!(found, ["l", "m", "y"]);
            // Malmö leaves the federation: its datasets go; Ystad, added by hand, stays.
            let departed = store
                .remove_departed(&["http://lund/dsp".to_owned()])
                .await
                .unwrap();
            assert_eq!(departed, ["http://malmo/dsp"]);
            let mut found = ids(&store, &query("parkering")).await;
            found.sort();
            assert_eq!(found, ["l", "y"]);
            assert_eq!(store.catalog_sources().await.unwrap().len(), 2);
            // A crawl that was under way when its source left is not made live.
            let generation = new_generation();
            store
                .stage_page(
                    "http://malmo/dsp",
                    "Malmö",
                    generation,
                    &[dataset("m", "Parkering", "M", "t", true)],
                )
                .await
                .unwrap();
            assert_eq!(
                store
                    .commit_crawl(
                        "http://malmo/dsp",
                        generation,
                        "did:web:malmo",
                        "Malmö",
                        lease
                    )
                    .await
                    .unwrap(),
                None
            );
            assert_eq!(ids(&store, &query("parkering")).await.len(), 2);
            store.close().await.unwrap();
        }
    }
}

/// Polls `check` every 10 ms until it holds (a hung sealer fails the test after 30 s, not the CI run).
async fn until_true<F: std::future::Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let give_up = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < give_up,
            "{what}: never happened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_background_sealer_checkpoints_new_heads_the_start_and_the_close() {
    let key = ledger_key();
    let jwk = key.public_jwk().unwrap();
    let checkpointed = |store: &Store| {
        let (store, jwk) = (store.clone(), jwk.clone());
        async move {
            store
                .ledger_checkpoint()
                .await
                .unwrap()
                .map(|jws| ledger_head::open_head(&jws, &[jwk]).unwrap().seq)
        }
    };
    for b in backends("ledger_sealer").await {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(ledger_head::HEAD_FILE);
        let seal = || ledger_head::LedgerSeal::new(key.clone(), Some(file.clone()));
        // Commits wake the sealer: every head ends up signed, in the database and in the file.
        let store = open(&b).await.with_ledger_seal(seal());
        for i in 1..=30 {
            store
                .append_ledger(&[entry(&format!("s{i}"))])
                .await
                .unwrap();
        }
        until_true("the head of 30 entries sealed", || async {
            checkpointed(&store).await == Some(30)
        })
        .await;
        let checks = crate::ledger::HeadChecks {
            keys: vec![jwk.clone()],
            file: Some(file.clone()),
        };
        until_true("the head file at entry 30", || async {
            crate::ledger::verify(&store, &checks)
                .await
                .unwrap()
                .file_head
                == Some(30)
        })
        .await;
        // A crash after a commit and before its seal (here: a writer with no seal): the next start seals it.
        store.close().await.unwrap();
        let crashed = open(&b).await;
        crashed.append_ledger(&[entry("s31")]).await.unwrap();
        crashed.close().await.unwrap();
        let restarted = open(&b).await.with_ledger_seal(seal());
        until_true("the head left by a crash sealed at start", || async {
            checkpointed(&restarted).await == Some(31)
        })
        .await;
        // Closing seals the last head at once.
        restarted.append_ledger(&[entry("s32")]).await.unwrap();
        restarted.close().await.unwrap();
        let reopened = open(&b).await;
        assert_eq!(checkpointed(&reopened).await, Some(32));
        let verified = crate::ledger::verify(&reopened, &checks).await.unwrap();
        assert_eq!(
            (verified.database_head, verified.file_head),
            (Some(32), Some(32))
        );
        reopened.close().await.unwrap();
    }
}
