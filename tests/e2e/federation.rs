//! The federated catalog at scale (issue 18), end to end: a trust anchor publishes its signed member
//! directory; a member's crawler reads it, crawls every other member's catalog on schedule into its store,
//! keeps a member that fails with its last good datasets marked stale (the error visible in `caap catalog
//! sources`), and drops a member removed from the directory from its search results.

use serde_json::{Value, json};

use crate::identity::start_authority;
use crate::negotiation::eventually;
use crate::support::{Server, caap, publish_sample};

fn source<'a>(sources: &'a Value, city: &str) -> Option<&'a Value> {
    sources["items"]
        .as_array()?
        .iter()
        .find(|s| s["city"] == city)
}

fn search(server: &Server, query: &str) -> Value {
    let r = server.api("GET", &format!("/api/v1/catalogs/search?{query}"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

fn cities_of(page: &Value) -> Vec<String> {
    let mut c: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["city"].as_str().unwrap().to_owned())
        .collect();
    c.sort();
    c.dedup();
    c
}

#[test]
fn the_crawler_follows_the_member_directory_keeps_stale_catalogs_and_drops_departed_members() {
    let mut fed = start_authority();
    let municipality =
        |code: &str| Some((&["Municipality"][..], json!({"municipalityCode": code})));
    let (lund, lund_did) = fed.member("Lund", municipality("1281"));
    let (ystad, ystad_did) = fed.member("Ystad", municipality("1286"));
    publish_sample(&lund, 1);
    publish_sample(&ystad, 2);
    // Their connectors' addresses go into the directory.
    for (did, name, server) in [(&lund_did, "Lund", &lund), (&ystad_did, "Ystad", &ystad)] {
        let r = fed.authority.api(
            "POST",
            "/api/v1/authority/members",
            Some(&json!({"holder": did, "name": name, "roles": ["Municipality"], "dspAddress": server.dsp})),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    // The directory is a credential signed by the anchor.
    let directory = crate::support::request(
        "GET",
        &format!("{}/issuer/directory", fed.authority.dsp),
        None,
        None,
        "",
    );
    assert_eq!(directory.status, 200);

    let anchor = fed.authority_did.clone();
    let directory_url = format!("{}/issuer/directory", fed.authority.dsp);
    let (malmo, _) = fed.member_with(
        "Malmö",
        municipality("1280"),
        &[
            ("federation.directory", format!("\"{directory_url}\"")),
            ("federation.anchor", format!("\"{anchor}\"")),
            ("federation.interval_secs", "1".into()),
            ("federation.jitter_secs", "0".into()),
            ("federation.directory_interval_secs", "1".into()),
            ("federation.retry_base_secs", "1".into()),
            ("federation.retry_max_secs", "1".into()),
        ],
    );

    // The crawler finds both members and caches their catalogs; Malmö does not crawl itself.
    eventually(60, "both members crawled", || {
        let s = malmo.api("GET", "/api/v1/catalogs", None).body;
        let fresh = |c| {
            source(&s, c)
                .is_some_and(|x| x["state"] == "fresh" && x["datasetCount"].as_u64() > Some(0))
        };
        (fresh("Lund") && fresh("Ystad")).then_some(())
    });
    let sources = malmo.api("GET", "/api/v1/catalogs", None).body;
    let count = |c| {
        source(&sources, c).unwrap()["datasetCount"]
            .as_u64()
            .unwrap()
    };
    let (lund_count, ystad_count) = (count("Lund"), count("Ystad"));
    let page = search(&malmo, "limit=1");
    assert_eq!(page["total"], lund_count + ystad_count, "{page}");
    assert!(page["next"].is_string(), "{page}");
    assert_eq!(
        page["facets"]["city"].as_array().unwrap().len(),
        2,
        "{page}"
    );
    assert!(page["items"][0]["fetchedAt"].is_string(), "{page}");

    // Ystad goes down: its datasets stay, marked stale, and the error is shown.
    assert!(ystad.stop().success());
    eventually(60, "Ystad marked stale", || {
        let s = malmo.api("GET", "/api/v1/catalogs", None).body;
        source(&s, "Ystad")
            .is_some_and(|x| x["state"] == "stale" && x["lastError"].is_string())
            .then_some(())
    });
    let page = search(&malmo, "city=Ystad");
    assert_eq!(page["total"], ystad_count, "{page}");
    assert!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["stale"] == true),
        "{page}"
    );
    let out = caap()
        .args(["catalog", "sources", "--api-url", &malmo.api, "--config"])
        .arg(&fed._nodes.last().unwrap().config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Ystad") && stdout.contains("stale") && stdout.contains("directory"),
        "{stdout}"
    );

    // Lund leaves the federation: it disappears from the results.
    let encoded: String = url::form_urlencoded::byte_serialize(lund_did.as_bytes()).collect();
    let r = fed.authority.api(
        "DELETE",
        &format!("/api/v1/authority/members/{encoded}"),
        None,
    );
    assert_eq!(r.status, 204, "{}", r.body);
    eventually(60, "Lund removed", || {
        let page = search(&malmo, "limit=500");
        (cities_of(&page) == ["Ystad"]).then_some(())
    });
    let out = caap()
        .args([
            "catalog",
            "search",
            "--q",
            "parkering",
            "--api-url",
            &malmo.api,
            "--config",
        ])
        .arg(&fed._nodes.last().unwrap().config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("facets:"), "{stdout}");
    drop(lund);
}
