//! The citizen portal with the real thing behind it: two `caap serve` processes (Malmö provides resident
//! parking permits on the basis of consent and runs its portal; Lund negotiates them), the real OIDC provider
//! of tests/oidc with an interactive login, and headless Chromium (`tests/portal/walk.mjs`, one phase at a
//! time so that this test acts between them):
//!
//! 1. Lund's agreement asks every citizen in the dataset; Anna logs in, sees the pending request, grants.
//! 2. Lund pulls: only Anna's records arrive; the portal shows Anna that Lund received them. She withdraws.
//! 3. The withdrawal notice reaches Lund, which deletes, acknowledges and confirms; Anna sees the
//!    acknowledgement and the confirmed deletion in the portal, in Swedish and in English. Bo, who has a
//!    pending request for the same dataset, sees none of Anna's records; forged form posts are refused.
//!
//! Skipped without node, Chromium or the npm folders, like `portal::*` (required under `CI` or
//! `CAAP_REQUIRE_SHARED=1`).

use serde_json::Value;

use crate::consent::{
    ANNA, BO, LUND, MALMO, citizens, deletion_confirmed, delivered, permit_cities, publish,
    request_consent,
};
use crate::negotiation::eventually;
use crate::portal::{Provider, portal_settings, portal_url, screenshot_dir, tools_present, walk};
use crate::transfers::{fetch, finalized_agreement, started_transfer};

/// The permits' title as the portal shows it.
const PERMITS: &str = "Resident parking permits (synthetic)";

#[test]
fn a_citizen_grants_in_the_browser_only_her_data_flows_and_the_recipients_acknowledgement_appears()
{
    if !tools_present("the portal with two connectors in a real browser") {
        return;
    }
    let oidc = Provider::start();
    let (malmo_node, lund_node) = permit_cities(portal_settings(&oidc));
    let malmo = malmo_node.start(&[("CAAP_PARTICIPANT_ID", MALMO)]);
    let lund = lund_node.start(&[("CAAP_PARTICIPANT_ID", LUND)]);
    let portal = portal_url(&malmo);
    publish(&malmo);
    let agreement = finalized_agreement(&lund, &malmo.dsp, "permits");

    // The agreement asked every citizen the dataset holds: Anna's and Bo's requests wait in the portal.
    eventually(10, "consent requests for every citizen", || {
        let l = malmo.api("GET", "/api/v1/consents", None).body;
        (l["items"].as_array()?.len() == 3).then_some(())
    });
    let record = request_consent(&malmo, ANNA);
    let shots = screenshot_dir().join("two-connectors");
    let phase = |phase: &str, extra: &[(&str, &str)]| {
        let mut env = vec![
            ("PHASE", phase),
            ("CITIZEN_A", ANNA),
            ("CITIZEN_B", BO),
            ("A_REQUEST", PERMITS),
            ("B_REQUEST", PERMITS),
            ("A_RECORD", record.as_str()),
        ];
        env.extend_from_slice(extra);
        walk(&portal, &env, &shots.join(phase), Some(&malmo));
    };

    // 1. Anna grants in the browser.
    phase("grant", &[]);
    assert_eq!(standing(&malmo, &record), "active");

    // 2. Data flows, for her only; the transfer log tells the portal who received it.
    let pull = started_transfer(&lund, &agreement);
    let pull = pull["id"].as_str().unwrap().to_owned();
    assert_eq!(citizens(&fetch(&lund, &pull)), [ANNA, ANNA]);
    delivered(&malmo, &record, 2);
    phase("withdraw", &[("EXPECT_RECIPIENT", "lund")]);
    assert_eq!(standing(&malmo, &record), "withdrawn");

    // 3. The notice reaches Lund, which deletes and confirms, signed; then Anna sees it in the portal.
    deletion_confirmed(&malmo);
    let received = lund
        .api("GET", "/api/v1/consent-notices/received", None)
        .body;
    assert_eq!(received["items"][0]["state"], "DELETED", "{received}");
    phase("acknowledged", &[]);
    // Nothing of Anna's flows any more; Bo never answered, so nothing of his flowed at all.
    let again = started_transfer(&lund, &agreement);
    assert!(fetch(&lund, again["id"].as_str().unwrap()).is_empty());
    malmo.stop();
    lund.stop();
}

/// The standing of a consent record, from the provider's management API.
fn standing(provider: &crate::support::Server, record: &str) -> String {
    let r = provider.api("GET", "/api/v1/consents", None);
    assert_eq!(r.status, 200, "{}", r.body);
    let items = r.body["items"].as_array().cloned().unwrap_or_default();
    let found: Option<&Value> = items.iter().find(|i| i["id"] == record);
    found
        .and_then(|i| i["standing"].as_str())
        .unwrap_or_default()
        .to_owned()
}
