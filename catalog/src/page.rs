//! Keyset paging with opaque continuation tokens, shared by the DSP catalog and the management API.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use crate::error::CatalogFault;

/// Default page size when the caller names none.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Largest page a caller may ask for.
pub const MAX_PAGE_SIZE: u32 = 500;

/// Where a page starts. Items are ordered by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// The first page.
    Start,
    /// Items with an id greater than this one (the next page).
    After(String),
    /// Items with an id smaller than this one (the previous page), nearest first.
    Before(String),
}

impl Cursor {
    /// The opaque token for this cursor (`None` for the first page).
    pub fn token(&self) -> Option<String> {
        match self {
            Cursor::Start => None,
            Cursor::After(id) => Some(URL_SAFE_NO_PAD.encode(format!("a:{id}"))),
            Cursor::Before(id) => Some(URL_SAFE_NO_PAD.encode(format!("b:{id}"))),
        }
    }

    /// Reads a token this connector issued.
    pub fn from_token(token: Option<&str>) -> Result<Cursor, CatalogFault> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Ok(Cursor::Start);
        };
        let bad = || {
            CatalogFault::BadRequest(
                "the continuation token was not issued by this connector; start again without one"
                    .into(),
            )
        };
        let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        match raw.split_once(':') {
            Some(("a", id)) if !id.is_empty() => Ok(Cursor::After(id.to_owned())),
            Some(("b", id)) if !id.is_empty() => Ok(Cursor::Before(id.to_owned())),
            _ => Err(bad()),
        }
    }
}

/// Checks a requested page size.
pub fn page_size(requested: Option<u32>) -> Result<u32, CatalogFault> {
    match requested {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
        Some(n) => Err(CatalogFault::BadRequest(format!(
            "limit {n} is out of range; ask for 1 to {MAX_PAGE_SIZE} items"
        ))),
    }
}

/// One page of items with the tokens of its neighbours.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    /// The items, ordered by id.
    pub items: Vec<T>,
    /// Token of the next page, if there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// Token of the previous page, if there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` items fetched from `cursor` in scan order (ascending
    /// for `Start`/`After`, descending for `Before`), `id` naming each item's key.
    pub fn from_scan(
        mut scanned: Vec<T>,
        cursor: &Cursor,
        limit: u32,
        id: impl Fn(&T) -> String,
    ) -> Page<T> {
        let limit = limit as usize;
        let more = scanned.len() > limit;
        scanned.truncate(limit);
        if matches!(cursor, Cursor::Before(_)) {
            scanned.reverse();
        }
        let first = scanned.first().map(&id);
        let last = scanned.last().map(&id);
        let (has_next, has_previous) = match cursor {
            Cursor::Start => (more, false),
            Cursor::After(_) => (more, true),
            Cursor::Before(_) => (true, more),
        };
        Page {
            next: last
                .filter(|_| has_next)
                .and_then(|id| Cursor::After(id).token()),
            previous: first
                .filter(|_| has_previous)
                .and_then(|id| Cursor::Before(id).token()),
            items: scanned,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_foreign_tokens_are_refused() {
        for c in [Cursor::After("x:1".into()), Cursor::Before("b".into())] {
            assert_eq!(Cursor::from_token(c.token().as_deref()).unwrap(), c);
        }
        assert_eq!(Cursor::from_token(None).unwrap(), Cursor::Start);
        assert!(Cursor::from_token(Some("!!")).is_err());
        assert!(Cursor::from_token(Some(&URL_SAFE_NO_PAD.encode("z:1"))).is_err());
    }

    #[test]
    fn pages_know_their_neighbours() {
        let ids = |p: &Page<u32>| p.items.clone();
        let first = Page::from_scan(vec![1, 2, 3], &Cursor::Start, 2, u32::to_string);
        assert_eq!(ids(&first), [1, 2]);
        assert!(first.previous.is_none());
        assert_eq!(
            Cursor::from_token(first.next.as_deref()).unwrap(),
            Cursor::After("2".into())
        );
        let back = Page::from_scan(vec![2, 1], &Cursor::Before("3".into()), 2, u32::to_string);
        assert_eq!(ids(&back), [1, 2]);
        assert!(back.previous.is_none());
        assert!(back.next.is_some());
        assert!(page_size(Some(0)).is_err());
    }
}
