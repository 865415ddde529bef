//! The DSP catalog protocol of a running `caap serve`, validated against the official schemas.

use serde_json::json;

use caap_catalog::iri::Namespace;

use crate::dsp_schema::{self, Shared};
use crate::support::*;

fn schemas() -> Option<dsp_schema::DspSchemas> {
    match dsp_schema::load() {
        Shared::Found(s) => Some(s),
        Shared::Skipped(_) => None,
    }
}

#[test]
fn catalog_dataset_version_and_errors_follow_dsp_2025_1() {
    let node = Node::init("Malmö", &token_table("did:web:lund.example"));
    let server = node.start(&[]);
    let ids = publish_sample(&server, 0);
    let schemas = schemas();
    let check = |schema: &str, v: &serde_json::Value| {
        if let Some(s) = &schemas {
            s.assert_valid(schema, v);
        }
    };

    // Version discovery: unauthenticated.
    let v = request(
        "GET",
        &format!("{}/.well-known/dspace-version", server.dsp),
        None,
        None,
        "",
    );
    assert_eq!(v.status, 200);
    check("common/protocol-version-schema.json", &v.body);
    assert_eq!(v.body["protocolVersions"][0]["version"], "2025-1");
    assert_eq!(v.body["protocolVersions"][0]["path"], "/dsp");

    // The catalog.
    let msg = json!({"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"], "@type": "CatalogRequestMessage"});
    let c = dsp_catalog_request(&server, "", &msg);
    assert_eq!(c.status, 200, "{}", c.body);
    check("catalog/catalog-schema.json", &c.body);
    assert_eq!(c.body["dataset"].as_array().unwrap().len(), ids.len());
    assert!(
        c.body["participantId"]
            .as_str()
            .unwrap()
            .starts_with("did:web:127.0.0.1")
    );

    // One dataset.
    let d = request(
        "GET",
        &format!("{}/dsp/catalog/datasets/{}", server.dsp, ids[0]),
        Some(&format!("Bearer {TOKEN}")),
        None,
        "",
    );
    assert_eq!(d.status, 200, "{}", d.body);
    check("catalog/dataset-schema.json", &d.body);
    // Published under an absolute IRI (the dataset endpoint's URL), the same in the catalog.
    let iri = Namespace::new(&format!("{}/dsp", server.dsp)).dataset(&ids[0]);
    assert_eq!(d.body["@id"], iri.as_str());
    assert!(
        c.body["dataset"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["@id"] == iri.as_str())
    );
    // The dataset endpoint also answers to the IRI itself (percent-encoded as one path segment).
    let by_iri = request(
        "GET",
        &format!(
            "{}/dsp/catalog/datasets/{}",
            server.dsp,
            caap_catalog::iri::encode_segment(&iri)
        ),
        Some(&format!("Bearer {TOKEN}")),
        None,
        "",
    );
    assert_eq!(by_iri.status, 200, "{}", by_iri.body);
    assert_eq!(by_iri.body, d.body);

    // Unknown dataset: 404 with a CatalogError.
    let nf = request(
        "GET",
        &format!("{}/dsp/catalog/datasets/no-such-dataset", server.dsp),
        Some(&format!("Bearer {TOKEN}")),
        None,
        "",
    );
    assert_eq!(nf.status, 404);
    assert_eq!(nf.body["@type"], "CatalogError");
    check("catalog/catalog-error-schema.json", &nf.body);

    // Unsupported filter: 400 with a CatalogError.
    let mut filtered = msg.clone();
    filtered["filter"] = json!([{"colour": "red"}]);
    let bad = dsp_catalog_request(&server, "", &filtered);
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["@type"], "CatalogError");
    assert!(bad.body["reason"][0].as_str().unwrap().contains("colour"));
    check("catalog/catalog-error-schema.json", &bad.body);

    // A supported filter.
    filtered["filter"] = json!([{"dataModel": "OffStreetParking"}]);
    let ok = dsp_catalog_request(&server, "", &filtered);
    assert_eq!(ok.status, 200);
    check("catalog/catalog-schema.json", &ok.body);
    assert_eq!(ok.body["dataset"].as_array().unwrap().len(), 2);

    // No or a wrong token: refused with a CatalogError.
    for auth in [None, Some("Bearer wrong-token-wrong-token")] {
        let r = request(
            "POST",
            &format!("{}/dsp/catalog/request", server.dsp),
            auth,
            Some(&msg.to_string()),
            "application/json",
        );
        assert_eq!(r.status, 401);
        check("catalog/catalog-error-schema.json", &r.body);
    }
    assert!(server.stop().success(), "graceful shutdown exits 0");
}

#[test]
fn catalog_pages_carry_link_headers() {
    let node = Node::init("Lund", &token_table("did:web:malmo.example"));
    let server = node.start(&[]);
    let mut ids = publish_sample(&server, 2);
    ids.sort();
    let msg = json!({"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"], "@type": "CatalogRequestMessage"});
    let mut query = "?limit=2".to_owned();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let r = dsp_catalog_request(&server, &query, &msg);
        assert_eq!(r.status, 200, "{}", r.body);
        pages += 1;
        if let Shared::Found(s) = dsp_schema::load() {
            s.assert_valid("catalog/catalog-schema.json", &r.body);
        }
        for d in r.body["dataset"].as_array().unwrap() {
            seen.push(d["@id"].as_str().unwrap().to_owned());
        }
        let link = r
            .headers
            .get("link")
            .map(|l| l.to_str().unwrap().to_owned());
        if pages > 1 {
            assert!(link.as_deref().unwrap().contains("rel=\"previous\""));
        }
        match link
            .as_deref()
            .and_then(|l| l.split(", ").find(|p| p.ends_with("rel=\"next\"")))
        {
            Some(next) => {
                let url = next.split(';').next().unwrap().trim_matches(['<', '>']);
                query = format!("?{}", url.split_once('?').unwrap().1);
            }
            None => break,
        }
    }
    let ns = Namespace::new(&format!("{}/dsp", server.dsp));
    assert_eq!(
        seen,
        ids.iter().map(|id| ns.dataset(id)).collect::<Vec<_>>()
    );
    assert_eq!(pages, ids.len().div_ceil(2));
    let bad = dsp_catalog_request(&server, "?continuationToken=forged", &msg);
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["@type"], "CatalogError");
}
