//! How `caap catalog search` and `caap catalog sources` print the management API's answers: tables.

use std::fmt::Write;

use serde_json::Value;

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

/// At most `width` characters of `s` (an ellipsis marks a cut).
fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// `2026-12-07T00:10:00.123Z` as `2026-12-07 00:10`.
fn when(v: &Value) -> String {
    v.as_str()
        .map(|t| t.replace('T', " ").chars().take(16).collect())
        .unwrap_or_else(|| "-".into())
}

/// A page of search results: the hits as a table, then the facets, then how to get the next page.
pub fn search(r: &Value) -> String {
    let mut out = String::new();
    let items = r["items"].as_array().cloned().unwrap_or_default();
    let total = r["total"].as_u64().unwrap_or(items.len() as u64);
    let _ = writeln!(
        out,
        "{total} hit(s){}",
        if (items.len() as u64) < total {
            format!(", {} on this page", items.len())
        } else {
            String::new()
        }
    );
    if !items.is_empty() {
        let _ = writeln!(
            out,
            "  {:>5}  {:<14} {:<40} {:<22} {:<10} {:<16} ID",
            "SCORE", "CITY", "TITLE", "DATA MODEL", "ACCESS", "FETCHED"
        );
    }
    for h in &items {
        let _ = writeln!(
            out,
            "  {:>5}  {:<14} {:<40} {:<22} {:<10} {:<16} {}{}",
            h["score"],
            cut(text(&h["city"]), 14),
            cut(text(&h["dataset"]["title"]), 40),
            cut(text(&h["dataset"]["dataModel"]), 22),
            text(&h["access"]),
            when(&h["fetchedAt"]),
            text(&h["dataset"]["id"]),
            if h["stale"].as_bool() == Some(true) {
                "  (stale: its source's last crawl failed)"
            } else {
                ""
            }
        );
    }
    let facets = &r["facets"];
    if facets.is_object() {
        let _ = writeln!(out, "facets:");
        for (name, label) in [
            ("city", "city"),
            ("dataModel", "data model"),
            ("theme", "theme"),
            ("licence", "licence"),
            ("access", "access"),
        ] {
            let values: Vec<String> = facets[name]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .take(12)
                .map(|f| format!("{} ({})", text(&f["value"]), f["count"]))
                .collect();
            if !values.is_empty() {
                let _ = writeln!(out, "  {label:<11} {}", values.join(", "));
            }
        }
    }
    if let Some(next) = r["next"].as_str() {
        let _ = writeln!(out, "next page: --cursor {next}");
    }
    out
}

/// The catalog sources with their crawl state.
pub fn sources(r: &Value) -> String {
    let mut out = String::new();
    let d = &r["directory"];
    if let Some(url) = d["url"].as_str() {
        let _ = match d["lastError"].as_str() {
            Some(error) => writeln!(
                out,
                "member directory {url}: failing ({} time(s), last read {}): {error}",
                d["failures"],
                when(&d["readAt"])
            ),
            None => writeln!(
                out,
                "member directory {url}: {} member(s), read {}",
                d["members"],
                when(&d["readAt"])
            ),
        };
    }
    let items = r["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        let _ = writeln!(
            out,
            "no catalog sources: add one with `caap catalog fetch URL`, or set [federation] directory"
        );
        return out;
    }
    let _ = writeln!(
        out,
        "  {:<14} {:<8} {:<9} {:>8}  {:<16} {:>8}  {:<40} LAST ERROR",
        "CITY", "STATE", "ORIGIN", "DATASETS", "LAST SUCCESS", "FAILURES", "ADDRESS"
    );
    for s in &items {
        let _ = writeln!(
            out,
            "  {:<14} {:<8} {:<9} {:>8}  {:<16} {:>8}  {:<40} {}",
            cut(text(&s["city"]), 14),
            text(&s["state"]),
            text(&s["origin"]),
            s["datasetCount"],
            when(&s["fetchedAt"]),
            s["failures"],
            text(&s["counterPartyAddress"]),
            s["lastError"].as_str().unwrap_or("")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn search_prints_hits_facets_and_the_next_page() {
        let page = json!({
            "total": 3,
            "items": [{"score": 11, "city": "Lund", "access": "open", "stale": true,
                       "fetchedAt": "2026-12-07T00:10:00.123Z",
                       "dataset": {"id": "urn:x", "title": "Parkeringar", "dataModel": "OffStreetParking"}}],
            "next": "abc",
            "facets": {"city": [{"value": "Lund", "count": 2}, {"value": "Malmö", "count": 1}],
                       "access": [{"value": "open", "count": 3}]}
        });
        let out = super::search(&page);
        assert!(out.starts_with("3 hit(s), 1 on this page\n"), "{out}");
        assert!(
            out.contains("Parkeringar")
                && out.contains("2026-12-07 00:10")
                && out.contains("stale"),
            "{out}"
        );
        assert!(out.contains("city        Lund (2), Malmö (1)"), "{out}");
        assert!(out.contains("next page: --cursor abc"), "{out}");
    }

    #[test]
    fn sources_print_a_directory_that_cannot_be_read() {
        let out = super::sources(&json!({"items": [], "directory": {
            "url": "https://anchor/directory", "attemptedAt": "2026-12-07T00:10:00Z",
            "members": 0, "failures": 3, "lastError": "answered 502"}}));
        assert!(
            out.starts_with("member directory https://anchor/directory: failing (3 time(s), last read -): answered 502\n"),
            "{out}"
        );
    }

    #[test]
    fn sources_print_state_and_last_error() {
        let out = super::sources(
            &json!({"items": [{"city": "Lund", "state": "stale", "origin": "directory",
            "datasetCount": 4, "fetchedAt": "2026-12-07T00:10:00Z", "failures": 2,
            "counterPartyAddress": "http://lund/dsp", "lastError": "answered 503"}]}),
        );
        assert!(
            out.contains("stale") && out.contains("answered 503") && out.contains("directory"),
            "{out}"
        );
    }
}
