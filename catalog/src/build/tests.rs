use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use serde_json::json;

use super::*;
use crate::filter::Filter;
use crate::offer::Offer;
use crate::page::Cursor;
use crate::samples;

#[path = "../../../tests/support/dsp_schema.rs"]
mod dsp_schema;

/// The in-memory source is always ready, so one poll finishes each future.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("in-memory source returned Pending"),
    }
}

struct Mem {
    assets: Vec<Asset>,
    offers: Vec<ResolvedOffer>,
}

impl CatalogSource for Mem {
    async fn assets(&self, cursor: &Cursor, limit: u32) -> Result<Vec<Asset>, CatalogFault> {
        let mut all = self.assets.clone();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        let out: Vec<Asset> = match cursor {
            Cursor::Start => all,
            Cursor::After(id) => all.into_iter().filter(|a| &a.id > id).collect(),
            Cursor::Before(id) => all.into_iter().rev().filter(|a| &a.id < id).collect(),
        };
        Ok(out.into_iter().take(limit as usize).collect())
    }
    async fn asset(&self, id: &str) -> Result<Option<Asset>, CatalogFault> {
        Ok(self.assets.iter().find(|a| a.id == id).cloned())
    }
    async fn offers_for(&self, ids: &[String]) -> Result<Vec<ResolvedOffer>, CatalogFault> {
        Ok(self
            .offers
            .iter()
            .filter(|o| o.offer.assets.iter().any(|a| ids.contains(a)))
            .cloned()
            .collect())
    }
}

fn ident() -> CatalogIdentity {
    CatalogIdentity {
        participant_id: "did:web:malmo.example".into(),
        catalog_id: "urn:caap:catalog:malmo".into(),
        publisher: "Malmö".into(),
        dsp_base: "https://malmo.example/dsp/2025-1".into(),
        version_url: "https://malmo.example/.well-known/dspace-version".into(),
        open_url: "https://malmo.example/open/v1".into(),
    }
}

fn demo(n_extra: usize) -> Mem {
    let city = &samples::CITIES[0];
    let mut assets = samples::assets(city, "https://malmo.example");
    for i in 0..n_extra {
        let mut a = assets[0].clone();
        a.id = format!("zz-extra-{i:04}");
        assets.push(a);
    }
    let policies: std::collections::HashMap<_, _> = samples::policies().into_iter().collect();
    let mut offers: Vec<ResolvedOffer> = samples::offers(city, &assets)
        .into_iter()
        .map(|offer| ResolvedOffer {
            access_policy: policies[&offer.access_policy].clone(),
            contract_policy: policies[&offer.contract_policy].clone(),
            offer,
        })
        .collect();
    offers.push(ResolvedOffer {
        offer: Offer {
            id: "extra".into(),
            assets: (0..n_extra).map(|i| format!("zz-extra-{i:04}")).collect(),
            access_policy: "x".into(),
            contract_policy: "x".into(),
            approval: Default::default(),
            public: false,
        },
        access_policy: json!({}),
        contract_policy: json!({"permission": [{"action": "use"}]}),
    });
    Mem { assets, offers }
}

fn page(mem: &Mem, cursor: Cursor, limit: u32, filter: Filter) -> CatalogPage {
    let req = PageRequest {
        cursor,
        limit,
        filter,
    };
    ready(catalog_page(mem, &ident(), &req, |_| true)).unwrap()
}

#[test]
fn catalogs_and_datasets_validate_against_the_official_schemas() {
    let mem = demo(0);
    let cat = page(&mem, Cursor::Start, 50, Filter::default()).catalog;
    assert_eq!(cat.dataset.len(), mem.assets.len());
    let ds = ready(dataset_by_id(&mem, &ident(), &mem.assets[0].id, |_| true)).unwrap();
    let empty = page(
        &mem,
        Cursor::Start,
        50,
        Filter::parse(Some(&[json!({"q": "nothing-matches"})])).unwrap(),
    )
    .catalog;
    assert!(empty.dataset.is_empty());
    match dsp_schema::load() {
        dsp_schema::Shared::Skipped(_) => {}
        dsp_schema::Shared::Found(schemas) => {
            schemas.assert_valid(
                "catalog/catalog-schema.json",
                &serde_json::to_value(&cat).unwrap(),
            );
            schemas.assert_valid(
                "catalog/catalog-schema.json",
                &serde_json::to_value(&empty).unwrap(),
            );
            schemas.assert_valid(
                "catalog/dataset-schema.json",
                &serde_json::to_value(&ds).unwrap(),
            );
            let err = serde_json::to_value(crate::dcat::CatalogError::new("404", "no")).unwrap();
            schemas.assert_valid("catalog/catalog-error-schema.json", &err);
        }
    }
}

#[test]
fn paging_walks_forward_and_back_over_every_dataset_once() {
    let mem = demo(23);
    let total = mem.assets.len();
    let mut seen = Vec::new();
    let mut cursor = Cursor::Start;
    let mut tokens = Vec::new();
    loop {
        let p = page(&mem, cursor.clone(), 4, Filter::default());
        seen.extend(p.catalog.dataset.iter().map(|d| d.id.clone()));
        tokens.push(p.previous.clone());
        match p.next {
            Some(t) => cursor = Cursor::from_token(Some(&t)).unwrap(),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
    assert_eq!(seen.len(), total);
    assert!(tokens[0].is_none() && tokens[1].is_some());
    // Going back from the second page gives the first.
    let back = Cursor::from_token(tokens[1].as_deref()).unwrap();
    let p = page(&mem, back, 4, Filter::default());
    assert_eq!(
        p.catalog
            .dataset
            .iter()
            .map(|d| d.id.clone())
            .collect::<Vec<_>>(),
        seen[..4]
    );
    assert!(p.previous.is_none());
}

#[test]
fn filters_and_visibility_shape_the_catalog() {
    let mem = demo(40);
    let parking = Filter::parse(Some(&[json!({"dataModel": "OffStreetParking"})])).unwrap();
    let p = page(&mem, Cursor::Start, 50, parking);
    assert!(p.catalog.dataset.iter().all(|d| d.id.contains("parking")));
    assert_eq!(p.catalog.dataset.len(), 2);
    // A requester who may see no offer gets an empty (but valid) catalog and 404 on datasets.
    let req = PageRequest {
        cursor: Cursor::Start,
        limit: 10,
        filter: Filter::default(),
    };
    let none = ready(catalog_page(&mem, &ident(), &req, |_| false)).unwrap();
    assert!(none.catalog.dataset.is_empty() && none.next.is_none());
    let hidden = ready(dataset_by_id(&mem, &ident(), &mem.assets[0].id, |_| false));
    assert!(matches!(hidden, Err(CatalogFault::NotFound(_))));
    // Offers in the catalog never carry a target.
    let all = page(&mem, Cursor::Start, 5, Filter::default());
    for d in &all.catalog.dataset {
        for o in &d.has_policy {
            assert!(o.get("target").is_none());
        }
    }
}
