//! The configuration's keys, found from its types: a serde `Deserializer` that reads no input and
//! instead records, for every field of every (nested) config struct, its dotted key and how an
//! environment variable spells its value. The `CAAP_*` overrides are derived from this list, so a
//! key added to [`super::Config`] can be overridden without anyone keeping a table.

use serde::Deserialize;
use serde::de::value::{Error, StrDeserializer};
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

/// How an environment variable spells a key's value (found from the key's type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvKind {
    /// Taken as is (strings, paths, addresses, secrets, enums).
    Text,
    /// A whole number.
    Integer,
    /// A number.
    Float,
    /// `true` or `false` (also `1`/`0`).
    Boolean,
    /// Comma-separated values, e.g. `a.pem,b.pem`.
    List,
    /// A TOML inline value, for lists of tables and free-form tables, e.g.
    /// `[{ issuer = "did:web:trust.example", types = ["*"] }]`.
    Toml,
}

/// One overridable key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigKey {
    /// The dotted key, e.g. `dsp.bind`.
    pub key: String,
    /// How its environment variable spells the value.
    pub kind: EnvKind,
}

impl ConfigKey {
    /// The environment variable: `CAAP_` + the dotted key in upper case with `.` as `_`.
    pub fn env_name(&self) -> String {
        format!("CAAP_{}", self.key.replace('.', "_").to_uppercase())
    }
}

/// Every key of `T`, in declaration order. Fails only when a type refuses the sample values the
/// walk hands it (a unit test walks the whole [`super::Config`]).
pub fn keys_of<'de, T: Deserialize<'de>>() -> Result<Vec<ConfigKey>, Error> {
    let mut out = Vec::new();
    T::deserialize(Walker {
        path: String::new(),
        out: &mut out,
    })?;
    Ok(out)
}

/// A string every string-like config type accepts (`String`, `PathBuf`, `Secret`, `SocketAddr`).
const SAMPLE_TEXT: &str = "127.0.0.1:0";

struct Walker<'a> {
    path: String,
    out: &'a mut Vec<ConfigKey>,
}

impl Walker<'_> {
    fn record(&mut self, kind: EnvKind) {
        if !self.path.is_empty() {
            self.out.push(ConfigKey {
                key: self.path.clone(),
                kind,
            });
        }
    }
}

macro_rules! leaf {
    ($kind:ident, $visit:ident($sample:expr), $($method:ident),*) => {
        $(fn $method<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Error> {
            self.record(EnvKind::$kind);
            visitor.$visit($sample)
        })*
    };
}

impl<'de> de::Deserializer<'de> for Walker<'_> {
    type Error = Error;

    leaf!(Boolean, visit_bool(false), deserialize_bool);
    leaf!(
        Integer,
        visit_u8(0),
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128
    );
    leaf!(Float, visit_f64(0.0), deserialize_f32, deserialize_f64);
    leaf!(
        Text,
        visit_str(SAMPLE_TEXT),
        deserialize_any,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_identifier
    );

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.elements(1, visitor)
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        self.elements(len, visitor)
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.elements(len, visitor)
    }
    fn deserialize_map<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Error> {
        self.record(EnvKind::Toml);
        visitor.visit_map(de::value::MapDeserializer::new(std::iter::empty::<(
            &str,
            &str,
        )>()))
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_map(Fields {
            fields: fields.iter(),
            path: self.path,
            current: String::new(),
            out: self.out,
        })
    }
    fn deserialize_enum<V: Visitor<'de>>(
        mut self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.record(EnvKind::Text);
        let first = variants.first().copied().unwrap_or_default();
        visitor.visit_enum::<StrDeserializer<'_, Error>>(first.into_deserializer())
    }
}

impl<'de> Walker<'_> {
    /// A list: of scalars (comma-separated in the environment) or of tables (TOML).
    fn elements<V: Visitor<'de>>(mut self, len: usize, visitor: V) -> Result<V::Value, Error> {
        let mut inner = Vec::new();
        let value = visitor.visit_seq(Elements {
            left: len,
            path: self.path.clone(),
            out: &mut inner,
        })?;
        let scalar = inner.iter().all(|k| {
            k.key == self.path
                && matches!(k.kind, EnvKind::Text | EnvKind::Integer | EnvKind::Float)
        });
        self.record(if scalar { EnvKind::List } else { EnvKind::Toml });
        Ok(value)
    }
}

struct Elements<'a> {
    left: usize,
    path: String,
    out: &'a mut Vec<ConfigKey>,
}

impl<'de> de::SeqAccess<'de> for Elements<'_> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(Walker {
            path: self.path.clone(),
            out: self.out,
        })
        .map(Some)
    }
}

struct Fields<'a> {
    fields: std::slice::Iter<'static, &'static str>,
    path: String,
    current: String,
    out: &'a mut Vec<ConfigKey>,
}

impl<'de> de::MapAccess<'de> for Fields<'_> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some(field) = self.fields.next() else {
            return Ok(None);
        };
        self.current = if self.path.is_empty() {
            (*field).to_owned()
        } else {
            format!("{}.{field}", self.path)
        };
        seed.deserialize::<StrDeserializer<'_, Error>>(field.into_deserializer())
            .map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        seed.deserialize(Walker {
            path: std::mem::take(&mut self.current),
            out: self.out,
        })
    }
}
