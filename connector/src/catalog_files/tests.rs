use std::path::Path;

use serde_json::json;

use super::*;

const POLICIES: &str = r#"
[[policy]]
id = "open-data"
description = "Anyone, any use."
[policy.policy]
"@context" = "http://www.w3.org/ns/odrl.jsonld"
"@type" = "Set"
permission = [{ action = "use" }]

[[policy]]
id = "public-service"
policy_file = "public-service.jsonld"
"#;

const PUBLIC_SERVICE: &str = r#"{
  "@context": "http://www.w3.org/ns/odrl.jsonld",
  "@type": "Set",
  "permission": [{
    "action": "use",
    "constraint": [{"leftOperand": "purpose", "operator": "eq", "rightOperand": "dpv:PublicBenefit"}]
  }]
}
"#;

const ASSETS: &str = r#"
[[asset]]
id = "lund-parking-druvan"
title = "Parking occupancy, P-hus Druvan"
keywords = ["parking"]
data_model = "OffStreetParking"

[asset.data_address]
type = "HttpApi"
url = "${env:SENSORS}/sim/lund/parking/p-hus-druvan?apikey=${env:LUND_KEY}"

[[asset]]
id = "lund-air"
title = "Air quality"

[asset.data_address]
type = "LiveStream"
source = "Sse"
url = "https://lund.example/air"
"#;

const OFFERS: &str = r#"
[[offer]]
id = "lund-parking-public-service"
assets = ["lund-parking-druvan"]
access_policy = "open-data"
contract_policy = "public-service"

[[offer]]
id = "lund-air-open"
assets = ["lund-air"]
access_policy = "open-data"
contract_policy = "open-data"
"#;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn catalog() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "policies.toml", POLICIES);
    write(dir.path(), "public-service.jsonld", PUBLIC_SERVICE);
    write(dir.path(), "assets.toml", ASSETS);
    write(dir.path(), "offers.toml", OFFERS);
    dir
}

fn env(name: &str) -> Option<String> {
    match name {
        "SENSORS" => Some("http://127.0.0.1:9".into()),
        "LUND_KEY" => Some("k3y".into()),
        _ => None,
    }
}

fn live_of(desired: &Desired) -> Live {
    desired
        .entries
        .iter()
        .map(|e| ((e.kind, e.id.clone()), e.body.clone()))
        .collect()
}

#[test]
fn a_catalog_folder_loads_plans_and_round_trips() {
    let dir = catalog();
    let desired = load(dir.path()).unwrap();
    assert_eq!(desired.entries.len(), 6);
    let parking = desired.get(Kind::Asset, "lund-parking-druvan").unwrap();
    assert_eq!(
        parking.resolved(&env).unwrap()["dataAddress"]["url"],
        "http://127.0.0.1:9/sim/lund/parking/p-hus-druvan?apikey=k3y"
    );
    assert_eq!(parking.body["dataAddress"]["method"], "GET");
    let kinds: Vec<Kind> = desired.in_creation_order().map(|e| e.kind).collect();
    assert!(kinds.is_sorted(), "{kinds:?}");

    // Nothing live: everything is created, policies first, offers last.
    let p = plan(&desired, &Live::new(), true);
    assert_eq!(p.counts(), (6, 0, 0));
    assert_eq!(p.changes[0].to_string(), "+ policy open-data");
    assert_eq!(p.changes[5].kind, Kind::Offer);

    // Live equals the files (the connector stores references as written): nothing to do.
    let mut live = live_of(&desired);
    assert!(plan(&desired, &live, true).is_empty());

    // One field changed, a constraint changed, one extra offer: one update each, one delete with prune.
    live.get_mut(&(Kind::Asset, "lund-air".into())).unwrap()["title"] = json!("Old title");
    live.get_mut(&(Kind::Policy, "public-service".into()))
        .unwrap()["policy"]["permission"][0]["constraint"][0]["rightOperand"] =
        json!("dpv:Marketing");
    live.insert(
        (Kind::Offer, "old-offer".into()),
        json!({"id": "old-offer"}),
    );
    live.get_mut(&(Kind::Asset, "lund-parking-druvan".into()))
        .unwrap()["dataAddress"]["url"] = json!("http://127.0.0.1:9/sim/lund/parking/x?apikey=k3y");
    let p = plan(&desired, &live, true);
    let text = p.to_string();
    assert_eq!(
        text,
        "~ policy public-service: purpose constraint changed\n\
         ~ asset lund-parking-druvan: data address changed\n\
         ~ asset lund-air: title changed\n\
         - offer old-offer\n"
    );
    assert!(!text.contains("k3y"));
    assert_eq!(plan(&desired, &live, false).counts(), (0, 3, 0));

    // Export of what is live, loaded again: no change.
    let live = live_of(&desired);
    let (files, names) = export(&live, "test").unwrap();
    assert!(names.is_empty(), "{names:?}");
    let out = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(out.path().join("policies")).unwrap();
    for f in &files {
        std::fs::write(out.path().join(&f.path), &f.text).unwrap();
    }
    let again = load(out.path()).unwrap();
    let p = plan(&again, &live, true);
    assert!(p.is_empty(), "{p}");

    // A key stored in clear (through the API) is exported as a reference, never as its value.
    let mut live = live;
    live.get_mut(&(Kind::Asset, "lund-parking-druvan".into()))
        .unwrap()["dataAddress"]["url"] =
        json!("http://127.0.0.1:9/sim/lund/parking/p-hus-druvan?apikey=k3y");
    let (files, names) = export(&live, "test").unwrap();
    assert_eq!(names, ["LUND_PARKING_DRUVAN_APIKEY"]);
    for f in &files {
        assert!(!f.text.contains("k3y"), "{}", f.text);
    }
}

#[test]
fn every_problem_of_every_file_is_reported_with_its_line() {
    let dir = catalog();
    write(
        dir.path(),
        "assets.toml",
        &ASSETS
            .replace(
                "keywords = [\"parking\"]",
                "keywords = [\"parking\"]\ncolour = \"red\"",
            )
            .replace("source = \"Sse\"", "source = \"Sse\"\nbogus = 1")
            .replace("${env:LUND_KEY}", "abc123"),
    );
    write(
        dir.path(),
        "public-service.jsonld",
        &PUBLIC_SERVICE.replace("\"eq\"", "\"roughly\""),
    );
    write(
        dir.path(),
        "offers.toml",
        &format!(
            "{OFFERS}\n[[offer]]\nid = \"ghost\"\nassets = [\"nowhere\"]\naccess_policy = \"open-data\"\n\
             contract_policy = \"missing\"\n"
        ),
    );
    write(dir.path(), "z.toml", "[[dataset]]\nid = 1\n");
    let problems = load(dir.path()).unwrap_err();
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let has = |file: &str, line: usize, needle: &str| {
        assert!(
            problems
                .iter()
                .any(|p| p.file.ends_with(file) && p.line == line && p.message.contains(needle)),
            "no {file}:{line} {needle:?} in {text:#?}"
        );
    };
    has("assets.toml", 6, "unknown field `colour`");
    has("assets.toml", 11, "the apikey is a secret");
    has("assets.toml", 20, "unknown field `bogus`");
    has(
        "public-service.jsonld",
        6,
        "/permission/0/constraint/0/operator",
    );
    has("offers.toml", 16, "no asset `nowhere`");
    has("offers.toml", 18, "no policy `missing`");
    has("z.toml", 1, "unknown key `dataset`");
    assert!(!text.join("\n").contains("abc123"), "{text:#?}");
    // Offers naming a broken asset or policy are not reported again.
    assert_eq!(problems.len(), 7, "{text:#?}");
}

#[test]
fn personal_data_under_an_open_policy_and_duplicates_are_refused() {
    let dir = catalog();
    write(
        dir.path(),
        "assets.toml",
        &ASSETS.replace(
            "title = \"Air quality\"",
            "title = \"Air quality\"\n\n[asset.personal_data]\nsubject_field = \"refCitizen\"\n\
             categories = []\npurposes = [\"dpv:ServiceProvision\"]\n",
        ),
    );
    write(
        dir.path(),
        "more.toml",
        "[[offer]]\nid = \"lund-air-open\"\nassets = [\"lund-air\"]\naccess_policy = \"open-data\"\ncontract_policy = \"public-service\"\n",
    );
    let problems = load(dir.path()).unwrap_err();
    let text = problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        text.contains("offers.toml:10: assets: `lund-air` declares personal data"),
        "{text}"
    );
    assert!(
        text.contains("offers.toml:9: offer `lund-air-open` is already defined at"),
        "{text}"
    );
}
