//! Canonical JSON, from the `caap-canonical` leaf crate (the consent records of `caap-policy` hash with it too).

pub use caap_canonical::{canonical_json, write_string, write_value};
