//! The simulator's data: deterministic readings of made-up sensors at real places, as Smart Data
//! Models entities (NGSI-LD, normalized), CSV rows and key-value JSON. Pure functions of the place
//! and the time; no IO and no clock.

use caap_catalog::samples::CITIES;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

/// Smart Data Models context of `AirQualityObserved` (dataModel.Environment).
pub const ENVIRONMENT_CONTEXT: &str = "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld";
/// Smart Data Models context of `OffStreetParking` (dataModel.Parking).
pub const PARKING_CONTEXT: &str =
    "https://raw.githubusercontent.com/smart-data-models/dataModel.Parking/master/context.jsonld";
/// The NGSI-LD core context.
pub const NGSI_LD_CORE_CONTEXT: &str =
    "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld";
/// What every entity says about itself.
pub const DESCRIPTION: &str =
    "Simulated by caap's built-in sensor simulator: generated values, not real measurements.";

/// What a sensor measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An air-quality station (`AirQualityObserved`).
    AirQuality,
    /// A car park's occupancy (`OffStreetParking`).
    Parking,
}

impl Kind {
    /// The Smart Data Models type.
    pub fn entity_type(self) -> &'static str {
        match self {
            Kind::AirQuality => "AirQualityObserved",
            Kind::Parking => "OffStreetParking",
        }
    }
    /// The kind of an entity type.
    pub fn from_type(t: &str) -> Option<Kind> {
        match t {
            "AirQualityObserved" => Some(Kind::AirQuality),
            "OffStreetParking" => Some(Kind::Parking),
            _ => None,
        }
    }
    fn context(self) -> Value {
        let model = match self {
            Kind::AirQuality => ENVIRONMENT_CONTEXT,
            Kind::Parking => PARKING_CONTEXT,
        };
        json!([model, NGSI_LD_CORE_CONTEXT])
    }
    fn path(self) -> &'static str {
        match self {
            Kind::AirQuality => "air-quality",
            Kind::Parking => "parking",
        }
    }
}

/// A simulated sensor at a place.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    /// What it measures.
    pub kind: Kind,
    /// City slug, e.g. `lund`.
    pub city: String,
    /// City display name, e.g. `Lund`.
    pub city_name: String,
    /// Place slug, e.g. `stortorget`.
    pub slug: String,
    /// Place name, e.g. `Stortorget`.
    pub name: String,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// Total spots (car parks).
    pub spots: u32,
}

/// The same slugs as the demo's data addresses (`caap_catalog::samples`).
pub fn slugify(s: &str) -> String {
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

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Every place of the demo's cities that has a sensor of `kind`.
pub fn known_places(kind: Kind) -> Vec<Place> {
    let mut out = Vec::new();
    for city in &CITIES {
        match kind {
            Kind::AirQuality => {
                for (name, lat, lon) in city.stations {
                    out.push(Place {
                        kind,
                        city: city.slug.into(),
                        city_name: city.name.into(),
                        slug: slugify(name),
                        name: (*name).into(),
                        lat: *lat,
                        lon: *lon,
                        spots: 0,
                    });
                }
            }
            Kind::Parking => {
                for (name, lat, lon, spots) in city.car_parks {
                    out.push(Place {
                        kind,
                        city: city.slug.into(),
                        city_name: city.name.into(),
                        slug: slugify(name),
                        name: (*name).into(),
                        lat: *lat,
                        lon: *lon,
                        spots: *spots,
                    });
                }
            }
        }
    }
    out
}

/// The sensor at `city`/`slug`: a demo place with its real name and coordinates, or (for any other
/// slug) a made-up sensor whose position and size follow from its name. `None` for a malformed slug.
pub fn place(kind: Kind, city: &str, slug: &str) -> Option<Place> {
    if !is_slug(city) || !is_slug(slug) {
        return None;
    }
    if let Some(p) = known_places(kind)
        .into_iter()
        .find(|p| p.city == city && p.slug == slug)
    {
        return Some(p);
    }
    let h = hash(&[city, kind.path(), slug]);
    let city_name = CITIES
        .iter()
        .find(|c| c.slug == city)
        .map(|c| c.name.to_owned())
        .unwrap_or_else(|| city.to_owned());
    Some(Place {
        kind,
        city: city.into(),
        city_name,
        slug: slug.into(),
        name: slug.into(),
        lat: 55.3 + 2.5 * unit(h, 1),
        lon: 11.8 + 2.0 * unit(h, 2),
        spots: match kind {
            Kind::AirQuality => 0,
            Kind::Parking => 100 + u32::try_from(mix(h ^ 3) % 900).unwrap_or(0),
        },
    })
}

/// FNV-1a over the parts (separated), for seeds.
fn hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// splitmix64's finalizer.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A number in [0, 1) from a seed and a salt.
fn unit(seed: u64, salt: u64) -> f64 {
    (mix(seed ^ mix(salt)) >> 11) as f64 / (1u64 << 53) as f64
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// One reading of an air-quality station.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AirReading {
    /// NO2, µg/m³.
    pub no2: f64,
    /// PM10, µg/m³.
    pub pm10: f64,
    /// PM2.5, µg/m³.
    pub pm25: f64,
    /// Air temperature, °C.
    pub temperature: f64,
}

/// One reading of a car park.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParkingReading {
    /// Spots in total.
    pub total: u32,
    /// Free spots.
    pub available: u32,
    /// Occupied share, 0 to 1.
    pub occupancy: f64,
}

/// Hour of day (UTC, fractional) of a time in milliseconds.
fn hour(at_ms: i64) -> f64 {
    at_ms.rem_euclid(86_400_000) as f64 / 3_600_000.0
}

/// Morning and evening rush (0 to about 1), UTC hours shifted to Swedish local time.
fn rush(at_ms: i64) -> f64 {
    let h = (hour(at_ms) + 1.0) % 24.0;
    let peak = |c: f64| (-(h - c).powi(2) / 3.0).exp();
    (peak(8.0) + peak(17.0)).min(1.0)
}

/// The air-quality reading of `place` at `at_ms` (milliseconds since the Unix epoch).
pub fn air_reading(place: &Place, at_ms: i64) -> AirReading {
    let seed = hash(&[&place.city, "air-quality", &place.slug]);
    let noise = |salt: u64| unit(seed ^ mix(at_ms as u64), salt) - 0.5;
    let base = 8.0 + 14.0 * unit(seed, 10);
    let r = rush(at_ms);
    let no2 = (base + 35.0 * r + 8.0 * noise(11)).max(0.5);
    let pm10 = (9.0 + 6.0 * unit(seed, 12) + 12.0 * r + 5.0 * noise(13)).max(0.5);
    let pm25 = pm10 * (0.45 + 0.2 * unit(seed ^ mix(at_ms as u64), 14));
    let day = hour(at_ms) / 24.0;
    let temperature =
        7.0 + 6.0 * (2.0 * std::f64::consts::PI * (day - 0.375)).sin() + 1.5 * noise(15);
    AirReading {
        no2: round1(no2),
        pm10: round1(pm10),
        pm25: round1(pm25),
        temperature: round1(temperature),
    }
}

/// The occupancy of car park `place` at `at_ms`.
pub fn parking_reading(place: &Place, at_ms: i64) -> ParkingReading {
    let seed = hash(&[&place.city, "parking", &place.slug]);
    let h = (hour(at_ms) + 1.0) % 24.0;
    let daytime = (-(h - 13.0).powi(2) / 18.0).exp();
    let noise = unit(seed ^ mix(at_ms as u64), 21) - 0.5;
    let occupancy = (0.15 + 0.7 * daytime + 0.1 * noise).clamp(0.0, 1.0);
    let total = place.spots.max(1);
    let occupied = ((f64::from(total) * occupancy).round() as u32).min(total);
    ParkingReading {
        total,
        available: total - occupied,
        occupancy: (f64::from(occupied) / f64::from(total) * 1000.0).round() / 1000.0,
    }
}

/// RFC 3339 time of `at_ms`, UTC.
pub fn timestamp(at_ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(at_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The entity id of a sensor.
pub fn entity_id(place: &Place) -> String {
    format!(
        "urn:ngsi-ld:{}:caap-sim:{}:{}",
        place.kind.entity_type(),
        place.city,
        place.slug
    )
}

fn property(value: Value) -> Value {
    json!({"type": "Property", "value": value})
}

fn measure(value: f64, unit: &str, observed: &str) -> Value {
    json!({"type": "Property", "value": value, "unitCode": unit, "observedAt": observed})
}

/// The reading of `place` at `at_ms` as a normalized NGSI-LD entity (JSON-LD, with the Smart Data
/// Models context).
pub fn entity(place: &Place, at_ms: i64) -> Value {
    let observed = timestamp(at_ms);
    let mut e = Map::new();
    e.insert("@context".into(), place.kind.context());
    e.insert("id".into(), Value::String(entity_id(place)));
    e.insert(
        "type".into(),
        Value::String(place.kind.entity_type().into()),
    );
    e.insert("name".into(), property(Value::String(place.name.clone())));
    e.insert(
        "description".into(),
        property(Value::String(DESCRIPTION.into())),
    );
    e.insert(
        "dataProvider".into(),
        property(Value::String("caap simulator".into())),
    );
    e.insert(
        "areaServed".into(),
        property(Value::String(place.city_name.clone())),
    );
    e.insert(
        "dateObserved".into(),
        property(json!({"@type": "DateTime", "@value": observed})),
    );
    e.insert(
        "location".into(),
        json!({"type": "GeoProperty", "value": {"type": "Point", "coordinates": [place.lon, place.lat]}}),
    );
    match place.kind {
        Kind::AirQuality => {
            let r = air_reading(place, at_ms);
            // Smart Data Models names: no2, pm10, pm25 (PM2.5); GQ = µg/m³, CEL = °C.
            e.insert("no2".into(), measure(r.no2, "GQ", &observed));
            e.insert("pm10".into(), measure(r.pm10, "GQ", &observed));
            e.insert("pm25".into(), measure(r.pm25, "GQ", &observed));
            e.insert(
                "temperature".into(),
                measure(r.temperature, "CEL", &observed),
            );
        }
        Kind::Parking => {
            let r = parking_reading(place, at_ms);
            e.insert("category".into(), property(json!(["public"])));
            e.insert("status".into(), property(json!(["open"])));
            e.insert("totalSpotNumber".into(), property(json!(r.total)));
            e.insert(
                "availableSpotNumber".into(),
                json!({"type": "Property", "value": r.available, "observedAt": observed}),
            );
            e.insert(
                "occupiedSpotNumber".into(),
                json!({"type": "Property", "value": r.total - r.available, "observedAt": observed}),
            );
            e.insert(
                "occupancy".into(),
                json!({"type": "Property", "value": r.occupancy, "observedAt": observed}),
            );
        }
    }
    Value::Object(e)
}

/// The numeric value of an entity's attribute (normalized form), for `q` filters.
pub fn attribute_number(entity: &Value, attr: &str) -> Option<f64> {
    entity.get(attr)?.get("value")?.as_f64()
}

/// A parsed NGSI-LD `q`: clauses joined by `;` (and), each `attribute op number` with op one of
/// `==`, `!=`, `>=`, `<=`, `>`, `<`. The simulator understands this subset only.
#[derive(Debug, Clone, PartialEq)]
pub struct Query(Vec<(String, &'static str, f64)>);

impl Query {
    /// Parses `q`.
    pub fn parse(q: &str) -> Result<Query, String> {
        let mut clauses = Vec::new();
        for clause in q.split(';').map(str::trim).filter(|c| !c.is_empty()) {
            let Some((at, op)) = ["==", "!=", ">=", "<=", ">", "<"]
                .iter()
                .find_map(|op| clause.find(op).map(|at| (at, *op)))
            else {
                return Err(format!(
                    "`{clause}`: the simulator understands `attribute op number` clauses joined by `;` (op: == != >= <= > <)"
                ));
            };
            let attr = clause[..at].trim();
            let value = clause[at + op.len()..].trim();
            let value: f64 = value
                .parse()
                .map_err(|_| format!("`{clause}`: `{value}` is not a number"))?;
            if attr.is_empty() {
                return Err(format!("`{clause}`: no attribute before `{op}`"));
            }
            clauses.push((attr.to_owned(), op, value));
        }
        Ok(Query(clauses))
    }

    /// Whether an entity matches every clause (an entity without the attribute does not).
    pub fn matches(&self, entity: &Value) -> bool {
        self.0.iter().all(|(attr, op, v)| {
            attribute_number(entity, attr).is_some_and(|x| match *op {
                "==" => x == *v,
                "!=" => x != *v,
                ">=" => x >= *v,
                "<=" => x <= *v,
                ">" => x > *v,
                _ => x < *v,
            })
        })
    }
}

/// A generated dataset file (`/sim/files/{name}.csv|.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataset {
    /// Hourly readings of every demo air-quality station.
    AirQuality,
    /// Hourly occupancy of every demo car park.
    Parking,
}

/// The first hour of the generated datasets (2025-01-01T00:00:00Z).
pub const DATASET_START_MS: i64 = 1_735_689_600_000;

impl Dataset {
    /// The dataset called `name`.
    pub fn named(name: &str) -> Option<Dataset> {
        match name {
            "air-quality" => Some(Dataset::AirQuality),
            "parking" => Some(Dataset::Parking),
            _ => None,
        }
    }
    /// Its places.
    pub fn places(self) -> Vec<Place> {
        known_places(match self {
            Dataset::AirQuality => Kind::AirQuality,
            Dataset::Parking => Kind::Parking,
        })
    }
    /// The CSV header line.
    pub fn csv_header(self) -> &'static str {
        match self {
            Dataset::AirQuality => "city,station,dateObserved,no2,pm10,pm25,temperature\n",
            Dataset::Parking => {
                "city,carPark,dateObserved,totalSpotNumber,availableSpotNumber,occupancy\n"
            }
        }
    }
    /// Row `row` (0-based): place `row % places`, hour `row / places` from [`DATASET_START_MS`].
    fn at(places: &[Place], row: u64) -> (&Place, i64) {
        let n = places.len().max(1) as u64;
        let place = &places[usize::try_from(row % n).unwrap_or(0)];
        let hour = i64::try_from(row / n).unwrap_or(i64::MAX / 3_600_001);
        (place, DATASET_START_MS + hour * 3_600_000)
    }
    /// Row `row` as a CSV line.
    pub fn csv_row(places: &[Place], row: u64) -> String {
        let (p, at) = Dataset::at(places, row);
        let t = timestamp(at);
        match p.kind {
            Kind::AirQuality => {
                let r = air_reading(p, at);
                format!(
                    "{},{},{t},{},{},{},{}\n",
                    csv_field(&p.city_name),
                    csv_field(&p.name),
                    r.no2,
                    r.pm10,
                    r.pm25,
                    r.temperature
                )
            }
            Kind::Parking => {
                let r = parking_reading(p, at);
                format!(
                    "{},{},{t},{},{},{}\n",
                    csv_field(&p.city_name),
                    csv_field(&p.name),
                    r.total,
                    r.available,
                    r.occupancy
                )
            }
        }
    }
    /// Row `row` as a key-value entity (NGSI-LD `keyValues` form).
    pub fn json_row(places: &[Place], row: u64) -> Value {
        let (p, at) = Dataset::at(places, row);
        let t = timestamp(at);
        match p.kind {
            Kind::AirQuality => {
                let r = air_reading(p, at);
                json!({"id": entity_id(p), "type": "AirQualityObserved", "name": p.name,
                       "areaServed": p.city_name, "dateObserved": t, "no2": r.no2, "pm10": r.pm10,
                       "pm25": r.pm25, "temperature": r.temperature,
                       "location": {"type": "Point", "coordinates": [p.lon, p.lat]}})
            }
            Kind::Parking => {
                let r = parking_reading(p, at);
                json!({"id": entity_id(p), "type": "OffStreetParking", "name": p.name,
                       "areaServed": p.city_name, "dateObserved": t, "totalSpotNumber": r.total,
                       "availableSpotNumber": r.available, "occupancy": r.occupancy,
                       "location": {"type": "Point", "coordinates": [p.lon, p.lat]}})
            }
        }
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The deterministic bytes of `/sim/files/bytes`: byte `i` of the file is `block[i % block.len()]`.
pub fn byte_block(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut i = 0u64;
    while out.len() < len {
        out.extend_from_slice(&mix(i).to_le_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_are_deterministic_and_vary() {
        let p = place(Kind::AirQuality, "lund", "stortorget").unwrap();
        assert_eq!(p.name, "Stortorget");
        let t = DATASET_START_MS + 8 * 3_600_000;
        assert_eq!(entity(&p, t), entity(&p, t));
        assert_ne!(air_reading(&p, t), air_reading(&p, t + 1000));
        let other = place(Kind::AirQuality, "lund", "getingevagen").unwrap();
        assert_ne!(air_reading(&p, t), air_reading(&other, t));
        let e = entity(&p, t);
        assert_eq!(e["type"], "AirQualityObserved");
        assert_eq!(e["@context"][0], ENVIRONMENT_CONTEXT);
        assert_eq!(
            e["dateObserved"]["value"]["@value"],
            "2025-01-01T08:00:00.000Z"
        );
        assert_eq!(e["location"]["value"]["coordinates"][1], 55.7047);
        assert!(
            e["description"]["value"]
                .as_str()
                .unwrap()
                .contains("Simulated")
        );
        for attr in ["no2", "pm10", "pm25", "temperature"] {
            assert!(attribute_number(&e, attr).is_some(), "{attr}");
        }
        // A made-up station is as deterministic as a real one.
        assert_eq!(
            place(Kind::Parking, "ystad", "p-torget"),
            place(Kind::Parking, "ystad", "p-torget")
        );
        assert!(place(Kind::Parking, "Ystad", "x").is_none());
        assert!(place(Kind::Parking, "ystad", "../x").is_none());
    }

    #[test]
    fn parking_adds_up() {
        for p in known_places(Kind::Parking) {
            for h in 0..24 {
                let r = parking_reading(&p, DATASET_START_MS + h * 3_600_000);
                assert_eq!(r.total, p.spots);
                assert!(r.available <= r.total);
                assert!((0.0..=1.0).contains(&r.occupancy));
            }
        }
        // The demo's data addresses name these car parks.
        assert!(
            place(Kind::Parking, "lund", "p-hus-fargaren")
                .unwrap()
                .spots
                == 420
        );
    }

    #[test]
    fn queries() {
        let p = place(Kind::AirQuality, "malmo", "dalaplan").unwrap();
        let e = entity(&p, DATASET_START_MS);
        let no2 = attribute_number(&e, "no2").unwrap();
        assert!(Query::parse(&format!("no2>={no2}")).unwrap().matches(&e));
        assert!(!Query::parse(&format!("no2>{no2}")).unwrap().matches(&e));
        assert!(
            Query::parse(&format!("no2=={no2};pm10>0"))
                .unwrap()
                .matches(&e)
        );
        assert!(!Query::parse("colour>1").unwrap().matches(&e));
        assert!(Query::parse("no2~1").is_err());
        assert!(Query::parse("no2>x").is_err());
    }

    #[test]
    fn datasets_are_stable() {
        let places = Dataset::AirQuality.places();
        assert_eq!(places.len(), 8);
        let first = Dataset::csv_row(&places, 0);
        assert!(
            first.starts_with("Malmö,Rådhuset,2025-01-01T00:00:00.000Z,"),
            "{first}"
        );
        assert_eq!(first, Dataset::csv_row(&places, 0));
        assert!(Dataset::csv_row(&places, 8).contains("2025-01-01T01:00:00.000Z"));
        assert_eq!(Dataset::json_row(&places, 5)["name"], "Femman");
        assert_eq!(byte_block(1000), byte_block(1000));
        assert_eq!(&byte_block(1000)[..100], &byte_block(100)[..]);
    }
}
