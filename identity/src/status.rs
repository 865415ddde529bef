//! Bitstring Status List (W3C, also read for StatusList2021): the bitstring (GZIP, then
//! multibase base64url), the status list credential an issuer publishes, and the check of a
//! credential's status entry against it. Fetching lists goes through [`StatusListSource`]; the
//! default [`HttpStatusLists`] fetches over [`HttpGet`], verifies the list credential and caches it.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};

use crate::auth::BoxFuture;
use crate::resolve::{DidResolve, HttpGet};
use crate::vc::{Credential, CredentialError, NewCredential, StatusEntry, VerifyOptions};

/// The minimum list length the spec asks for (16 KiB of bits), for herd privacy.
pub const MIN_BITSTRING_BITS: usize = 131_072;
/// Decoded lists larger than this are refused (a zip bomb guard): 16 MiB of bits.
pub const MAX_BITSTRING_BYTES: usize = 16 * 1024 * 1024;

/// Why a status could not be established.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatusError {
    /// The encoded list or the list credential is malformed.
    #[error("malformed status list: {0}")]
    Malformed(String),
    /// The index is past the end of the list.
    #[error("status index {index} is outside the list of {len} entries")]
    IndexOutOfRange {
        /// The index.
        index: u64,
        /// The list length in bits.
        len: usize,
    },
    /// The list is for another purpose than the entry.
    #[error("the entry is for `{entry}` but the list is for `{list}`")]
    PurposeMismatch {
        /// The entry's purpose.
        entry: String,
        /// The list's purpose.
        list: String,
    },
    /// The list was issued by someone else than the credential.
    #[error("the status list is issued by `{list}`, the credential by `{credential}`")]
    IssuerMismatch {
        /// The list's issuer.
        list: String,
        /// The credential's issuer.
        credential: String,
    },
    /// Entries with `statusSize` > 1, or a list type caap does not read.
    #[error("unsupported status list: {0}")]
    Unsupported(String),
    /// The list could not be fetched.
    #[error("the status list {url} could not be fetched: {reason}")]
    Unavailable {
        /// The list URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The list credential does not verify.
    #[error("the status list credential does not verify: {0}")]
    Credential(#[from] CredentialError),
}

/// A status bitstring; bit 0 is the most significant bit of the first byte.
#[derive(Clone, PartialEq, Eq)]
pub struct Bitstring {
    bytes: Vec<u8>,
}

impl std::fmt::Debug for Bitstring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self
            .bytes
            .iter()
            .map(|b| b.count_ones() as usize)
            .sum::<usize>();
        f.debug_struct("Bitstring")
            .field("len", &self.len())
            .field("set", &set)
            .finish()
    }
}

impl Bitstring {
    /// A list of at least `len` bits (rounded up to whole bytes and to [`MIN_BITSTRING_BITS`]),
    /// all clear.
    pub fn new(len: usize) -> Self {
        Bitstring {
            bytes: vec![0; len.max(MIN_BITSTRING_BITS).div_ceil(8)],
        }
    }

    /// The length in bits.
    pub fn len(&self) -> usize {
        self.bytes.len() * 8
    }

    /// True for a zero-length list.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The bit at `index`.
    pub fn get(&self, index: u64) -> Result<bool, StatusError> {
        let (byte, mask) = self.locate(index)?;
        Ok(self.bytes[byte] & mask != 0)
    }

    /// Sets or clears the bit at `index` (revoke: `true`).
    pub fn set(&mut self, index: u64, value: bool) -> Result<(), StatusError> {
        let (byte, mask) = self.locate(index)?;
        if value {
            self.bytes[byte] |= mask;
        } else {
            self.bytes[byte] &= !mask;
        }
        Ok(())
    }

    fn locate(&self, index: u64) -> Result<(usize, u8), StatusError> {
        let out = StatusError::IndexOutOfRange {
            index,
            len: self.len(),
        };
        let i = usize::try_from(index).map_err(|_| out.clone())?;
        if i >= self.len() {
            return Err(out);
        }
        Ok((i / 8, 0x80 >> (i % 8)))
    }

    /// The `encodedList`: `u` + base64url (no padding) of the GZIP-compressed bits.
    pub fn encode(&self) -> Result<String, StatusError> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&self.bytes)
            .map_err(|e| StatusError::Malformed(e.to_string()))?;
        let compressed = gz
            .finish()
            .map_err(|e| StatusError::Malformed(e.to_string()))?;
        Ok(format!("u{}", URL_SAFE_NO_PAD.encode(compressed)))
    }

    /// Reads an `encodedList`: with the multibase `u` prefix (Bitstring Status List) or without
    /// it (StatusList2021, whose GZIP data starts `H4sI`).
    pub fn decode(encoded: &str) -> Result<Self, StatusError> {
        let b64 = encoded.strip_prefix('u').unwrap_or(encoded);
        let b64 = b64.trim_end_matches('=');
        let compressed = URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|_| StatusError::Malformed("encodedList is not base64url".into()))?;
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(compressed.as_slice())
            .take(MAX_BITSTRING_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|_| StatusError::Malformed("encodedList is not GZIP data".into()))?;
        if bytes.len() > MAX_BITSTRING_BYTES {
            return Err(StatusError::Malformed("the list is too large".into()));
        }
        Ok(Bitstring { bytes })
    }
}

/// The status list credential to issue (sign it with [`crate::vc::issue_credential`] in the same
/// format as the credentials that point at it): `BitstringStatusListCredential` with a
/// `BitstringStatusList` subject, published at `list_url`.
pub fn status_list_credential(
    issuer: &str,
    list_url: &str,
    purpose: &str,
    bits: &Bitstring,
    valid_from: DateTime<Utc>,
    valid_until: Option<DateTime<Utc>>,
) -> Result<NewCredential, StatusError> {
    let mut subject = Map::new();
    subject.insert("id".into(), Value::from(format!("{list_url}#list")));
    subject.insert("type".into(), Value::from("BitstringStatusList"));
    subject.insert("statusPurpose".into(), Value::from(purpose));
    subject.insert("encodedList".into(), Value::from(bits.encode()?));
    Ok(NewCredential {
        id: Some(list_url.to_owned()),
        types: vec!["BitstringStatusListCredential".into()],
        issuer: issuer.to_owned(),
        subject,
        valid_from,
        valid_until,
        status: Vec::new(),
        schemas: Vec::new(),
        contexts: Vec::new(),
    })
}

/// A verified status list.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusList {
    /// Who issued it.
    pub issuer: String,
    /// `revocation`, `suspension`, …
    pub purpose: String,
    /// The bits.
    pub bits: Bitstring,
    /// Until when it may be used (then fetch again).
    pub valid_until: Option<DateTime<Utc>>,
}

impl StatusList {
    /// Reads a verified status list credential (Bitstring or StatusList2021).
    pub fn from_credential(credential: &Credential) -> Result<Self, StatusError> {
        if !(credential.has_type("BitstringStatusListCredential")
            || credential.has_type("StatusList2021Credential"))
        {
            return Err(StatusError::Unsupported(format!(
                "a credential of types {:?} is not a status list",
                credential.types
            )));
        }
        let s = &credential.subject;
        let purpose = s
            .get("statusPurpose")
            .and_then(Value::as_str)
            .ok_or_else(|| StatusError::Malformed("no statusPurpose".into()))?;
        let encoded = s
            .get("encodedList")
            .and_then(Value::as_str)
            .ok_or_else(|| StatusError::Malformed("no encodedList".into()))?;
        Ok(StatusList {
            issuer: credential.issuer.clone(),
            purpose: purpose.to_owned(),
            bits: Bitstring::decode(encoded)?,
            valid_until: credential.valid_until,
        })
    }
}

/// The status of one entry: `Ok(true)` when the bit is set (revoked, or suspended).
pub fn check_status(
    entry: &StatusEntry,
    list: &StatusList,
    credential_issuer: &str,
) -> Result<bool, StatusError> {
    if list.issuer != credential_issuer {
        return Err(StatusError::IssuerMismatch {
            list: list.issuer.clone(),
            credential: credential_issuer.to_owned(),
        });
    }
    if list.purpose != entry.status_purpose {
        return Err(StatusError::PurposeMismatch {
            entry: entry.status_purpose.clone(),
            list: list.purpose.clone(),
        });
    }
    list.bits.get(entry.status_list_index)
}

/// Gives verified status lists by URL.
pub trait StatusListSource: Send + Sync + std::fmt::Debug {
    /// The list at `url`, as of `now`.
    fn status_list<'a>(
        &'a self,
        url: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Arc<StatusList>, StatusError>>;
}

#[derive(Debug)]
struct CachedList {
    list: Arc<StatusList>,
    expires_at: DateTime<Utc>,
}

/// Fetches status list credentials (JWTs) over [`HttpGet`], verifies them with the resolver, and
/// caches them for `ttl` (at most until the list's `validUntil`).
#[derive(Debug)]
pub struct HttpStatusLists<H> {
    http: H,
    resolver: Arc<dyn DidResolve>,
    ttl: Duration,
    cache: Mutex<HashMap<String, CachedList>>,
}

impl<H: HttpGet> HttpStatusLists<H> {
    /// A source fetching with `http`, verifying with `resolver`, caching for `ttl`.
    pub fn new(http: H, resolver: Arc<dyn DidResolve>, ttl: Duration) -> Self {
        HttpStatusLists {
            http,
            resolver,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedList>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn fetch(&self, url: &str, now: DateTime<Utc>) -> Result<Arc<StatusList>, StatusError> {
        if let Some(hit) = self.lock().get(url)
            && hit.expires_at > now
        {
            return Ok(hit.list.clone());
        }
        let unavailable = |reason: String| StatusError::Unavailable {
            url: url.to_owned(),
            reason,
        };
        let response = self.http.get(url).await.map_err(|e| unavailable(e.0))?;
        if response.status != 200 {
            return Err(unavailable(format!("HTTP {}", response.status)));
        }
        let body = String::from_utf8(response.body)
            .map_err(|_| StatusError::Malformed("the list is not text".into()))?;
        let body = body.trim();
        // Served as a bare JWT, or (EDC) as a JSON string or {"credential": jwt}.
        let jwt = match serde_json::from_str::<Value>(body) {
            Ok(Value::String(s)) => s,
            Ok(Value::Object(o)) => o
                .get("credential")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| {
                    StatusError::Unsupported("only JWT-secured status lists are read".into())
                })?,
            _ => body.to_owned(),
        };
        let credential =
            crate::vc::verify_credential(&jwt, self.resolver.as_ref(), &VerifyOptions::at(now))
                .await?;
        if credential.id.as_deref().is_some_and(|id| id != url) {
            return Err(StatusError::Malformed(format!(
                "the list at {url} says its id is {:?}",
                credential.id
            )));
        }
        let list = Arc::new(StatusList::from_credential(&credential)?);
        let mut expires_at = now + self.ttl;
        if let Some(until) = list.valid_until {
            expires_at = expires_at.min(until);
        }
        self.lock().insert(
            url.to_owned(),
            CachedList {
                list: list.clone(),
                expires_at,
            },
        );
        Ok(list)
    }
}

impl<H: HttpGet> StatusListSource for HttpStatusLists<H> {
    fn status_list<'a>(
        &'a self,
        url: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Arc<StatusList>, StatusError>> {
        Box::pin(self.fetch(url, now))
    }
}

/// Fixed lists (tests, an issuer checking its own lists).
#[derive(Debug, Clone, Default)]
pub struct StaticStatusLists {
    lists: HashMap<String, Arc<StatusList>>,
}

impl StaticStatusLists {
    /// No lists.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds (or replaces) the list at `url`.
    pub fn insert(&mut self, url: &str, list: StatusList) {
        self.lists.insert(url.to_owned(), Arc::new(list));
    }
}

impl StatusListSource for StaticStatusLists {
    fn status_list<'a>(
        &'a self,
        url: &'a str,
        _now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Arc<StatusList>, StatusError>> {
        let result = self
            .lists
            .get(url)
            .cloned()
            .ok_or_else(|| StatusError::Unavailable {
                url: url.to_owned(),
                reason: "unknown list".into(),
            });
        Box::pin(std::future::ready(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyAlgorithm;
    use crate::resolve::tests::FakeWeb;
    use crate::testutil::{block_on, t0};
    use crate::vc::tests::{AUTHORITY, MALMO, World};
    use crate::vc::{CredentialFormat, issue_credential};

    #[test]
    fn bitstrings_round_trip_and_use_msb_first() {
        let mut bits = Bitstring::new(10);
        assert_eq!(bits.len(), MIN_BITSTRING_BITS);
        bits.set(0, true).unwrap();
        bits.set(94567, true).unwrap();
        assert!(bits.get(0).unwrap() && bits.get(94567).unwrap() && !bits.get(1).unwrap());
        let encoded = bits.encode().unwrap();
        assert!(encoded.starts_with("uH4sI"), "{encoded}");
        let back = Bitstring::decode(&encoded).unwrap();
        assert_eq!(back, bits);
        assert_eq!(back.bytes[0], 0x80);
        // StatusList2021 style (no multibase prefix) decodes too.
        assert_eq!(Bitstring::decode(&encoded[1..]).unwrap(), bits);
        bits.set(0, false).unwrap();
        assert!(!bits.get(0).unwrap());
        assert!(matches!(
            bits.get(MIN_BITSTRING_BITS as u64),
            Err(StatusError::IndexOutOfRange { .. })
        ));
        assert!(Bitstring::decode("u!!!").is_err());
        assert!(Bitstring::decode("uAAAA").is_err());
    }

    /// The spec's example list: an empty 16 KiB list (`uH4sIAAAAAAAAA-3BMQEAAADCoPVPbQwfoAAAAAAAAAAAAAAAAAAAAIC3AYbSVKsAQAAA`).
    #[test]
    fn the_spec_example_list_decodes_empty() {
        let example = "uH4sIAAAAAAAAA-3BMQEAAADCoPVPbQwfoAAAAAAAAAAAAAAAAAAAAIC3AYbSVKsAQAAA";
        let bits = Bitstring::decode(example).unwrap();
        assert_eq!(bits.len(), MIN_BITSTRING_BITS);
        assert!((0..bits.len() as u64).all(|i| !bits.get(i).unwrap()));
    }

    #[test]
    fn a_status_list_credential_is_issued_fetched_verified_and_checked() {
        let w = World::new(KeyAlgorithm::Es256);
        let url = "https://authority.example/status/1";
        let mut bits = Bitstring::new(0);
        bits.set(7, true).unwrap();
        let new = status_list_credential(AUTHORITY, url, "revocation", &bits, t0(), None).unwrap();
        let jwt = issue_credential(&new, CredentialFormat::Vc20Jose, w.key(AUTHORITY)).unwrap();
        let web = Arc::new(FakeWeb::default());
        web.put(url, jwt.into_bytes());
        let dids: Arc<dyn DidResolve> = Arc::new(w.dids.clone());
        let lists = HttpStatusLists::new(web.clone(), dids, Duration::minutes(5));
        let list = block_on(lists.status_list(url, t0())).unwrap();
        assert_eq!(list.purpose, "revocation");
        let revoked = StatusEntry::bitstring(url, 7, "revocation");
        let fine = StatusEntry::bitstring(url, 8, "revocation");
        assert!(check_status(&revoked, &list, AUTHORITY).unwrap());
        assert!(!check_status(&fine, &list, AUTHORITY).unwrap());
        assert!(matches!(
            check_status(&fine, &list, MALMO),
            Err(StatusError::IssuerMismatch { .. })
        ));
        let suspension = StatusEntry::bitstring(url, 7, "suspension");
        assert!(matches!(
            check_status(&suspension, &list, AUTHORITY),
            Err(StatusError::PurposeMismatch { .. })
        ));
        // Cached.
        block_on(lists.status_list(url, t0() + Duration::minutes(1))).unwrap();
        assert_eq!(web.hits.load(std::sync::atomic::Ordering::SeqCst), 1);
        // A list signed by a non-issuer key does not verify.
        let forged = crate::keys::ParticipantKey::generate(&format!("{AUTHORITY}#key-1")).unwrap();
        let other = "https://authority.example/status/2";
        let new =
            status_list_credential(AUTHORITY, other, "revocation", &bits, t0(), None).unwrap();
        web.put(
            other,
            issue_credential(&new, CredentialFormat::Vc11Jwt, &forged)
                .unwrap()
                .into_bytes(),
        );
        assert!(matches!(
            block_on(lists.status_list(other, t0())),
            Err(StatusError::Credential(_))
        ));
        assert!(matches!(
            block_on(lists.status_list("https://authority.example/none", t0())),
            Err(StatusError::Unavailable { .. })
        ));
    }
}
