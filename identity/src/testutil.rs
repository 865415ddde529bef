//! Test helpers: the shared vectors folder, a tiny executor for the crate's futures (the test
//! fetchers complete at once), and fixed times.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::task::{Context, Poll, Waker};

use chrono::{DateTime, TimeZone, Utc};

/// The content of `<shared>/<rel>`, or `None` (after printing `SKIPPED:`) when the shared folder
/// is missing and `CAAP_REQUIRE_SHARED` is not `1`. The shared folder is `$CAAP_SHARED_DIR`, or
/// `<workspace>/../shared`.
pub(crate) fn shared_file(rel: &str) -> Option<String> {
    let shared = match std::env::var_os("CAAP_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or(Path::new("."))
            .join("../shared"),
    };
    let path = shared.join(rel);
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Some(text);
    }
    let required = std::env::var("CAAP_REQUIRE_SHARED").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "CAAP_REQUIRE_SHARED=1 but {} is missing",
        path.display()
    );
    println!("SKIPPED: shared file {} not found", path.display());
    None
}

/// Runs a future that never waits on real IO (in-memory fetchers) to completion.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000_000 {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("the future did not complete: the test fetchers must be immediate")
}

/// 2026-03-01T12:00:00Z.
pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}
