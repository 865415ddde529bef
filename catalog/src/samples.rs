//! Demo datasets that caap generates itself: a city's air-quality stations and car parks,
//! described with Smart Data Models types (`AirQualityObserved`, `OffStreetParking`), plus the two
//! ODRL policies and the offers the demo publishes them under.
//!
//! Everything here is generated from a small table of real Swedish place names and coordinates;
//! no file is read. The data addresses point at `source_base`, where the connector's built-in
//! sensor simulator answers.

use serde_json::{Value, json};

use crate::asset::{Asset, DataAddress, StreamSource};
use crate::offer::Offer;

/// A city the demo knows, with a few real places to put sensors at.
#[derive(Debug, Clone, Copy)]
pub struct SampleCity {
    /// Display name, e.g. `Malmö`.
    pub name: &'static str,
    /// A short lower-case slug used in ids, e.g. `malmo`.
    pub slug: &'static str,
    /// Swedish municipality code (SCB), e.g. `1280`.
    pub municipality_code: &'static str,
    /// Places for air-quality stations: (name, latitude, longitude).
    pub stations: &'static [(&'static str, f64, f64)],
    /// Car parks: (name, latitude, longitude, total spots).
    pub car_parks: &'static [(&'static str, f64, f64, u32)],
}

/// The cities the demo can run.
pub const CITIES: [SampleCity; 3] = [
    SampleCity {
        name: "Malmö",
        slug: "malmo",
        municipality_code: "1280",
        stations: &[
            ("Rådhuset", 55.6059, 13.0007),
            ("Dalaplan", 55.5907, 13.0045),
            ("Hornsgatan", 55.5938, 12.9994),
        ],
        car_parks: &[
            ("P-hus Anna", 55.6087, 12.9969, 560),
            ("P-hus Triangeln", 55.5941, 13.0001, 480),
        ],
    },
    SampleCity {
        name: "Lund",
        slug: "lund",
        municipality_code: "1281",
        stations: &[
            ("Stortorget", 55.7047, 13.1910),
            ("Getingevägen", 55.7130, 13.2043),
        ],
        car_parks: &[
            ("P-hus Färgaren", 55.7018, 13.1956, 420),
            ("P-hus Druvan", 55.7052, 13.1872, 220),
        ],
    },
    SampleCity {
        name: "Göteborg",
        slug: "goteborg",
        municipality_code: "1480",
        stations: &[
            ("Femman", 57.7089, 11.9699),
            ("Gårda", 57.7019, 11.9994),
            ("Mölndalsvägen", 57.6921, 11.9917),
        ],
        car_parks: &[
            ("P-hus Nordstaden", 57.7095, 11.9702, 1100),
            ("P-hus Heden", 57.7003, 11.9806, 650),
        ],
    },
];

/// Smart Data Models schema of `AirQualityObserved`.
pub const AIR_QUALITY_SCHEMA: &str =
    "https://smart-data-models.github.io/dataModel.Environment/AirQualityObserved/schema.json";
/// Smart Data Models schema of `OffStreetParking`.
pub const PARKING_SCHEMA: &str =
    "https://smart-data-models.github.io/dataModel.Parking/OffStreetParking/schema.json";
/// Id of the open-data policy (anyone may use, CC BY 4.0).
pub const OPEN_POLICY_ID: &str = "open-data-cc-by";
/// Id of the policy that limits use to a public-service purpose.
pub const PUBLIC_SERVICE_POLICY_ID: &str = "public-service-use";

fn slugify(s: &str) -> String {
    let mut out = String::new();
    for c in s.to_lowercase().chars() {
        let c = match c {
            'å' | 'ä' => 'a',
            'ö' => 'o',
            'é' => 'e',
            c => c,
        };
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

/// The assets a city publishes in the demo: one live air-quality stream per station and one
/// occupancy API per car park.
pub fn assets(city: &SampleCity, source_base: &str) -> Vec<Asset> {
    let base = source_base.trim_end_matches('/');
    let mut out = Vec::new();
    for (place, lat, lon) in city.stations {
        let slug = slugify(place);
        out.push(Asset {
            id: format!("{}-air-quality-{slug}", city.slug),
            title: format!("Air quality at {place}, {}", city.name),
            description: format!(
                "Live NO2, PM10, PM2.5 and O3 readings from the monitoring station at {place} \
                 ({lat:.4}, {lon:.4}), every minute, as Smart Data Models AirQualityObserved entities."
            ),
            keywords: vec![
                "air quality".into(),
                "NO2".into(),
                "PM10".into(),
                "PM2.5".into(),
                "environment".into(),
            ],
            themes: vec!["environment".into()],
            spatial: Some(city.name.into()),
            data_model: Some("AirQualityObserved".into()),
            data_model_schema: Some(AIR_QUALITY_SCHEMA.into()),
            license: Some("https://creativecommons.org/licenses/by/4.0/".into()),
            media_type: Some("application/ld+json".into()),
            personal_data: None,
            data_address: DataAddress::LiveStream {
                source: StreamSource::Sse,
                url: format!("{base}/sim/{}/air-quality/{slug}/stream", city.slug),
                interval_secs: None,
            },
        });
    }
    for (name, lat, lon, spots) in city.car_parks {
        let slug = slugify(name);
        out.push(Asset {
            id: format!("{}-parking-{slug}", city.slug),
            title: format!("Parking occupancy, {name}, {}", city.name),
            description: format!(
                "Free and occupied spots of the car park {name} ({spots} spots, at {lat:.4}, {lon:.4}), \
                 as Smart Data Models OffStreetParking entities."
            ),
            keywords: vec!["parking".into(), "occupancy".into(), "mobility".into()],
            themes: vec!["mobility".into()],
            spatial: Some(city.name.into()),
            data_model: Some("OffStreetParking".into()),
            data_model_schema: Some(PARKING_SCHEMA.into()),
            license: None,
            media_type: Some("application/ld+json".into()),
            personal_data: None,
            data_address: DataAddress::HttpApi {
                url: format!("{base}/sim/{}/parking/{slug}", city.slug),
                method: "GET".into(),
                credentials: None,
            },
        });
    }
    out
}

/// The demo's ODRL policies: open data (CC BY 4.0) and use for a public service only.
pub fn policies() -> Vec<(String, Value)> {
    vec![
        (
            OPEN_POLICY_ID.into(),
            json!({
                "@context": "http://www.w3.org/ns/odrl.jsonld",
                "@type": "Set",
                "uid": format!("urn:caap:policy:{OPEN_POLICY_ID}"),
                "permission": [{"action": "use"}],
                "obligation": [{"action": "attribute"}]
            }),
        ),
        (
            PUBLIC_SERVICE_POLICY_ID.into(),
            json!({
                "@context": "http://www.w3.org/ns/odrl.jsonld",
                "@type": "Set",
                "uid": format!("urn:caap:policy:{PUBLIC_SERVICE_POLICY_ID}"),
                "permission": [{
                    "action": "use",
                    "constraint": [{
                        "leftOperand": "purpose",
                        "operator": "eq",
                        "rightOperand": "dpv:PublicBenefit"
                    }]
                }]
            }),
        ),
    ]
}

/// The demo's offers: air quality as open data, parking for public-service use.
pub fn offers(city: &SampleCity, assets: &[Asset]) -> Vec<Offer> {
    let ids = |model: &str| -> Vec<String> {
        assets
            .iter()
            .filter(|a| a.data_model.as_deref() == Some(model))
            .map(|a| a.id.clone())
            .collect()
    };
    vec![
        Offer {
            id: format!("{}-air-quality-open", city.slug),
            assets: ids("AirQualityObserved"),
            access_policy: OPEN_POLICY_ID.into(),
            contract_policy: OPEN_POLICY_ID.into(),
            approval: Default::default(),
            public: true,
        },
        Offer {
            id: format!("{}-parking-public-service", city.slug),
            assets: ids("OffStreetParking"),
            access_policy: OPEN_POLICY_ID.into(),
            contract_policy: PUBLIC_SERVICE_POLICY_ID.into(),
            approval: Default::default(),
            public: false,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_asset_and_offer_is_valid() {
        for city in &CITIES {
            let assets = assets(city, "http://127.0.0.1:9/");
            assert!(assets.len() >= 4);
            for a in &assets {
                assert_eq!(a.validate(), vec![], "{}", a.id);
            }
            for o in offers(city, &assets) {
                assert_eq!(o.validate(), vec![], "{}", o.id);
            }
        }
        assert_eq!(slugify("P-hus Färgaren"), "p-hus-fargaren");
    }
}
