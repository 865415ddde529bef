//! JSON-LD plumbing shared by the DSP bodies of this crate.

/// The DSP 2025-1 JSON-LD context every message carries in `@context`, and `[that context]`: defined once,
/// in `caap-canonical`, with caap's own context for the messages that carry policies.
pub(crate) use caap_canonical::dsp::{DSP_CONTEXT, dsp_context, policy_context};

/// Defines a zero-sized type that (de)serializes as exactly one JSON-LD `@type` string and rejects any other.
macro_rules! type_tag {
    ($(#[$meta:meta])* $name:ident = $value:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name;

        impl $name {
            /// The `@type` string.
            pub const VALUE: &'static str = $value;
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str($value)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let found = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                if found == $value {
                    Ok($name)
                } else {
                    Err(<D::Error as serde::de::Error>::invalid_value(
                        serde::de::Unexpected::Str(&found),
                        &concat!("\"", $value, "\""),
                    ))
                }
            }
        }
    };
}

pub(crate) use type_tag;
