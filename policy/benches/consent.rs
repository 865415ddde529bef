//! The per-record consent check of the data plane (issue 14; target: ≤ 2 µs median per record with
//! 1,000,000 consent records stored).
//!
//! The index holds 1,000,000 (subject, scope) consents: 250,000 citizens, each with consents for four
//! (dataset, purpose, recipient) scopes; 80 % given, 10 % withdrawn, 10 % given with a validity that has
//! run out. A transfer resolves its scope once and then checks each record; the probes are records of
//! random citizens (10 % unknown to the index), in random order, so most lookups miss the CPU caches as a
//! real stream would. Three measurements, same run:
//! - baseline: a plain `HashMap<[u8; 32], bool>` with the same 1,000,000 keys (std's SipHash), one lookup;
//! - `decide`: [`ConsentFilter::decide`] on the record's pseudonym (already hashed);
//! - `pseudonym + decide`: the whole per-record step from the record's raw subject field: HMAC-SHA-256 under
//!   the connector secret, then the lookup.
//!
//! `cargo bench -p caap-policy --bench consent` runs criterion and then prints the per-record median and
//! mean of each, with the ratio to the baseline. `--list` only lists the benchmarks.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use caap_policy::consent::{ConsentIndex, ConsentState, ConsentSummary, SubjectHash, SubjectKey};
use chrono::{DateTime, TimeZone, Utc};
use criterion::Criterion;

const CITIZENS: usize = 250_000;
const SCOPES: [(&str, &str, &str); 4] = [
    (
        "parking-permits",
        "dpv:ServiceProvision",
        "did:web:lund.example",
    ),
    (
        "parking-permits",
        "dpv:ResearchAndDevelopment",
        "did:web:lund.example",
    ),
    (
        "school-transport",
        "dpv:ServiceProvision",
        "did:web:lund.example",
    ),
    (
        "parking-permits",
        "dpv:ServiceProvision",
        "did:web:supplier.example",
    ),
];
const PROBES: usize = 100_000;
const BATCH: usize = 1_000;

struct Setup {
    key: SubjectKey,
    index: ConsentIndex,
    baseline: HashMap<[u8; 32], bool>,
    /// Raw subject fields of the probed records.
    raw: Vec<String>,
    /// Their pseudonyms.
    hashed: Vec<SubjectHash>,
    now: DateTime<Utc>,
}

fn citizen(i: usize) -> String {
    format!("19{:010}", i * 7_919 % 10_000_000_000)
}

fn setup() -> Setup {
    let key = SubjectKey::new(b"bench-connector-secret-32-bytes!").unwrap();
    let now = Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap();
    let from = now - chrono::TimeDelta::days(30);
    let mut index = ConsentIndex::with_capacity(CITIZENS * SCOPES.len());
    let mut baseline = HashMap::with_capacity(CITIZENS * SCOPES.len());
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for i in 0..CITIZENS {
        let subject = key.pseudonym(&citizen(i));
        for (s, (dataset, purpose, recipient)) in SCOPES.iter().enumerate() {
            let summary = match next() % 10 {
                0 => ConsentSummary {
                    state: ConsentState::Withdrawn,
                    window: None,
                },
                1 => ConsentSummary {
                    state: ConsentState::Given,
                    window: Some((from, Some(now - chrono::TimeDelta::days(1)))),
                },
                _ => ConsentSummary {
                    state: ConsentState::Given,
                    window: Some((from, None)),
                },
            };
            index.set(subject, dataset, purpose, recipient, summary);
            let mut k = *subject.as_bytes();
            k[31] ^= s as u8;
            baseline.insert(k, summary.window.is_some());
        }
    }
    assert_eq!(index.len(), 1_000_000);
    assert_eq!(baseline.len(), 1_000_000);
    let raw: Vec<String> = (0..PROBES)
        .map(|_| {
            let i = (next() % (CITIZENS as u64 * 10 / 9)) as usize;
            citizen(i) // i ≥ CITIZENS: a citizen without any consent
        })
        .collect();
    let hashed = raw.iter().map(|r| key.pseudonym(r)).collect();
    Setup {
        key,
        index,
        baseline,
        raw,
        hashed,
        now,
    }
}

fn benches(c: &mut Criterion, s: &Setup) {
    let (dataset, purpose, recipient) = SCOPES[0];
    let filter = s.index.filter(dataset, purpose, recipient, s.now);
    let mut group = c.benchmark_group("consent_per_record_1000");
    group.bench_function("baseline_hashmap_lookup", |b| {
        b.iter(|| {
            s.hashed[..BATCH]
                .iter()
                .filter(|h| s.baseline.get(h.as_bytes()).copied().unwrap_or(false))
                .count()
        })
    });
    group.bench_function("decide", |b| {
        b.iter(|| {
            s.hashed[..BATCH]
                .iter()
                .filter(|h| filter.releases(black_box(h)))
                .count()
        })
    });
    group.bench_function("pseudonym_and_decide", |b| {
        b.iter(|| {
            s.raw[..BATCH]
                .iter()
                .filter(|r| filter.releases_identifier(&s.key, black_box(r)))
                .count()
        })
    });
    group.finish();
}

/// Median and mean per record over batches of [`BATCH`] records, walking all probes.
fn per_record(mut step: impl FnMut(usize) -> bool) -> (Duration, Duration, usize) {
    let mut batches = Vec::new();
    let mut released = 0;
    for _round in 0..3 {
        for start in (0..PROBES).step_by(BATCH) {
            let t = Instant::now();
            for i in start..start + BATCH {
                released += usize::from(black_box(step(i)));
            }
            batches.push(t.elapsed());
        }
    }
    batches.sort_unstable();
    let total: Duration = batches.iter().sum();
    let median = batches[batches.len() / 2] / BATCH as u32;
    let mean = total / (batches.len() * BATCH) as u32;
    (median, mean, released)
}

fn report(s: &Setup) {
    let (dataset, purpose, recipient) = SCOPES[0];
    let filter = s.index.filter(dataset, purpose, recipient, s.now);
    let base = per_record(|i| {
        s.baseline
            .get(s.hashed[i].as_bytes())
            .copied()
            .unwrap_or(false)
    });
    let decide = per_record(|i| filter.releases(&s.hashed[i]));
    let full = per_record(|i| filter.releases_identifier(&s.key, &s.raw[i]));
    println!(
        "\nper-record consent check, 1,000,000 consents stored, {PROBES} random records × 3 (same run):"
    );
    let ratio = |d: Duration| d.as_secs_f64() / base.0.as_secs_f64().max(1e-12);
    for (name, (median, mean, released)) in [
        ("baseline HashMap<[u8;32], bool> lookup", base),
        ("ConsentFilter::decide (pseudonym given)", decide),
        ("pseudonym (HMAC) + decide", full),
    ] {
        let target = if median <= Duration::from_micros(2) {
            "target ≤ 2 µs: met"
        } else {
            "target ≤ 2 µs: NOT met"
        };
        println!(
            "  {name:<42} median {median:>8.1?}/record  mean {mean:>8.1?}/record  {:>5.2}× baseline  \
             released {released}  ({target})",
            ratio(median)
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listing = args.iter().any(|a| a == "--list");
    let measuring = args.iter().any(|a| a == "--bench") && !listing;
    let mut c = Criterion::default().configure_from_args();
    if listing {
        // Listing needs the names only, not a million consents.
        let empty = Setup {
            key: SubjectKey::new(&[0; 32]).unwrap(),
            index: ConsentIndex::new(),
            baseline: HashMap::new(),
            raw: vec![String::new(); BATCH],
            hashed: vec![SubjectHash::from_bytes([0; 32]); BATCH],
            now: Utc.timestamp_opt(0, 0).unwrap(),
        };
        benches(&mut c, &empty);
    } else {
        let s = setup();
        benches(&mut c, &s);
        c.final_summary();
        if measuring {
            report(&s);
        }
    }
}
