//! Pseudonymous data subjects: the connector never keeps a citizen's identifier (in Sweden a personal identity
//! number from the city's e-ID provider), only its keyed hash, HMAC-SHA-256 under a connector secret. The portal
//! hashes the identifier its login gives; the data plane hashes the data-subject field of each record with the
//! same key; consent records name the subject by the hash alone.

use std::fmt;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::ConsentError;

/// The shortest connector secret accepted for subject pseudonyms, in bytes (the HMAC-SHA-256 output size).
pub const MIN_SUBJECT_KEY_LEN: usize = 32;

/// The prefix of a pseudonymous subject's IRI in consent records and receipts.
pub const SUBJECT_IRI_PREFIX: &str = "urn:caap:subject:";

/// The connector secret that turns subject identifiers into [`SubjectHash`]es. It keeps only the keyed HMAC
/// state, never the secret bytes, and its `Debug` shows nothing of either.
#[derive(Clone)]
pub struct SubjectKey {
    mac: Hmac<Sha256>,
}

impl SubjectKey {
    /// A key from the connector's secret (at least [`MIN_SUBJECT_KEY_LEN`] random bytes).
    pub fn new(secret: &[u8]) -> Result<Self, ConsentError> {
        if secret.len() < MIN_SUBJECT_KEY_LEN {
            return Err(ConsentError::WeakSubjectKey {
                len: secret.len(),
                min: MIN_SUBJECT_KEY_LEN,
            });
        }
        let mac =
            Hmac::<Sha256>::new_from_slice(secret).map_err(|_| ConsentError::WeakSubjectKey {
                len: secret.len(),
                min: MIN_SUBJECT_KEY_LEN,
            })?;
        Ok(Self { mac })
    }

    /// The pseudonym of `subject_identifier` (the identifier as the e-ID login or the record's data-subject
    /// field gives it, byte for byte). The identifier is not kept.
    pub fn pseudonym(&self, subject_identifier: &str) -> SubjectHash {
        let mut mac = self.mac.clone();
        mac.update(subject_identifier.as_bytes());
        SubjectHash(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SubjectKey(redacted)")
    }
}

/// A pseudonymous data subject: the keyed hash of a subject identifier. Written as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubjectHash([u8; 32]);

impl SubjectHash {
    /// From the 32 hash bytes (e.g. as stored).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 hash bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(hex: &str) -> Option<Self> {
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let digit = |b: u8| (b as char).to_digit(16);
            out[i] = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
        }
        Some(Self(out))
    }

    /// The subject's IRI in consent records: `urn:caap:subject:<hex>`.
    pub fn iri(&self) -> String {
        format!("{SUBJECT_IRI_PREFIX}{self}")
    }

    /// The first eight bytes as a number: the hash is uniformly distributed and keyed, so this is a good
    /// hash-table hash that nobody without the key can steer.
    pub(crate) fn prefix_u64(&self) -> u64 {
        let mut head = [0u8; 8];
        head.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(head)
    }
}

impl fmt::Display for SubjectHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for SubjectHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubjectHash({self})")
    }
}

impl Serialize for SubjectHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SubjectHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        SubjectHash::from_hex(&text)
            .ok_or_else(|| serde::de::Error::custom("a subject hash is 64 hexadecimal digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pseudonym_is_hmac_sha256_rfc_4231() {
        // RFC 4231 test case 6: a 131-byte key, hashed first.
        let key = SubjectKey::new(&[0xaa; 131]).unwrap();
        assert_eq!(
            key.pseudonym("Test Using Larger Than Block-Size Key - Hash Key First")
                .to_string(),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn same_identifier_same_pseudonym_other_key_other_pseudonym() {
        let a = SubjectKey::new(&[1; 32]).unwrap();
        let b = SubjectKey::new(&[2; 32]).unwrap();
        assert_eq!(a.pseudonym("19121212-1212"), a.pseudonym("19121212-1212"));
        assert_ne!(a.pseudonym("19121212-1212"), a.pseudonym("19121212-1213"));
        assert_ne!(a.pseudonym("19121212-1212"), b.pseudonym("19121212-1212"));
    }

    #[test]
    fn short_secrets_are_refused_and_nothing_leaks_through_debug() {
        assert!(matches!(
            SubjectKey::new(&[7; 31]),
            Err(ConsentError::WeakSubjectKey { len: 31, min: 32 })
        ));
        let key = SubjectKey::new(b"0123456789abcdef0123456789abcdef").unwrap();
        let debug = format!("{key:?}");
        assert_eq!(debug, "SubjectKey(redacted)");
        let hash = key.pseudonym("19121212-1212");
        let shown = format!("{hash:?} {hash} {}", hash.iri());
        assert!(!shown.contains("19121212"), "{shown}");
        assert!(!shown.contains("0123456789abcdef0123"), "{shown}");
    }

    #[test]
    fn hex_round_trips_and_bad_hex_is_refused() {
        let hash = SubjectKey::new(&[3; 32]).unwrap().pseudonym("x");
        let text = hash.to_string();
        assert_eq!(SubjectHash::from_hex(&text), Some(hash));
        assert_eq!(SubjectHash::from_hex(&text.to_uppercase()), Some(hash));
        assert_eq!(
            serde_json::from_value::<SubjectHash>(serde_json::to_value(hash).unwrap()).unwrap(),
            hash
        );
        for bad in ["", "00", &"g".repeat(64), &"0".repeat(63), &"0".repeat(65)] {
            assert_eq!(SubjectHash::from_hex(bad), None, "{bad}");
        }
        assert!(hash.iri().starts_with("urn:caap:subject:"));
    }
}
