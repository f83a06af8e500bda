//! A JSON tree that borrows its strings from the text it was parsed from.
//!
//! Three stages parse every stored order (contacts, invoices, payments). Into a
//! `serde_json::Value` that costs an owned `String` per key and an `IndexMap` per object
//! (`preserve_order` is on for the simulators' field order), which profiling put at a tenth
//! of the engine's CPU in a backfill. This tree keeps keys and unescaped strings as slices of
//! the record and objects as short vectors searched in order: an order has about forty
//! members, fewer than a hash pays for. Numbers stay text, exactly as in `Value`.

use super::json_view::{JsonView, Kind};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use std::borrow::Cow;
use std::fmt;

/// serde_json hands an `arbitrary_precision` number to `deserialize_any` as a one-entry map
/// under this key, its value the number's text.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    Number(Cow<'a, str>),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl<'a> Json<'a> {
    pub fn parse(text: &'a str) -> Result<Json<'a>, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The same tree as an owned `serde_json::Value` (numbers keep their text).
    pub fn to_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => {
                Value::Number(serde_json::Number::from_string_unchecked(n.to_string()))
            }
            Json::String(s) => Value::String(s.to_string()),
            Json::Array(items) => Value::Array(items.iter().map(Json::to_value).collect()),
            Json::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_value()))
                    .collect(),
            ),
        }
    }
}

impl JsonView for Json<'_> {
    fn kind(&self) -> Kind<'_> {
        match self {
            Json::Null => Kind::Null,
            Json::Bool(b) => Kind::Bool(*b),
            Json::Number(n) => Kind::Number(n),
            Json::String(s) => Kind::String(s),
            Json::Array(_) => Kind::Array,
            Json::Object(_) => Kind::Object,
        }
    }

    fn member(&self, key: &str) -> Option<&Self> {
        match self {
            Json::Object(members) => members.iter().rev().find(|(k, _)| k == key).map(|m| &m.1),
            _ => None,
        }
    }

    fn elements(&self) -> Option<&[Self]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }
}

impl fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Number(n) => {
                serde_json::Number::from_string_unchecked(n.to_string()).serialize(s)
            }
            Json::String(text) => s.serialize_str(text),
            Json::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(members) => {
                let mut map = s.serialize_map(Some(members.len()))?;
                for (k, v) in members {
                    map.serialize_entry(k.as_ref(), v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Json<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor(std::marker::PhantomData))
    }
}

struct JsonVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for JsonVisitor<'a> {
    type Value = Json<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json<'a>, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Json<'a>, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Json<'a>, E> {
        Ok(Json::Bool(b))
    }

    // Reached only through a deserializer without `arbitrary_precision` semantics; kept
    // exact for integers. A float would already have lost its text, so it is refused.
    fn visit_i64<E>(self, v: i64) -> Result<Json<'a>, E> {
        Ok(Json::Number(Cow::Owned(v.to_string())))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json<'a>, E> {
        Ok(Json::Number(Cow::Owned(v.to_string())))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Json<'a>, E> {
        Err(E::custom("a number reached the parser as a float"))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Json<'a>, E> {
        Ok(Json::String(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Json<'a>, E> {
        Ok(Json::String(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<Json<'a>, E> {
        Ok(Json::String(Cow::Owned(s)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'a>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'a>, A::Error> {
        let Some(Key(first)) = map.next_key()? else {
            return Ok(Json::Object(Vec::new()));
        };
        if first == NUMBER_TOKEN {
            let text: String = map.next_value()?;
            return Ok(Json::Number(Cow::Owned(text)));
        }
        let mut members = Vec::with_capacity(16);
        members.push((first, map.next_value()?));
        while let Some(Key(k)) = map.next_key()? {
            members.push((k, map.next_value()?));
        }
        Ok(Json::Object(members))
    }
}

/// An object key, borrowed from the text when it has no escapes (serde's own `Cow<str>`
/// always copies).
pub(crate) struct Key<'a>(pub(crate) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for KeyVisitor<'a> {
            type Value = Key<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(KeyVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const SAMPLE: &str =
        r#"{"a":10.10,"b":"x\"y","c":[1,-2.5e3,null,true,{"d":"é"}],"a":7,"e":{},"f":[]}"#;

    #[test]
    fn numbers_keep_their_text_and_strings_borrow_when_they_can() {
        let text = r#"{"grand_total":10.10,"sku":"A-1","note":"x\"y","big":1e400}"#;
        let j = Json::parse(text).unwrap();
        assert_eq!(
            j.member("grand_total").unwrap().kind(),
            Kind::Number("10.10")
        );
        // Exponents come out as serde_json writes them for `Value` too.
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            j.member("big").unwrap().kind(),
            v.member("big").unwrap().kind()
        );
        assert!(matches!(
            j.member("sku"),
            Some(Json::String(Cow::Borrowed("A-1")))
        ));
        assert_eq!(j.member("note").unwrap().text(), Some("x\"y"));
    }

    #[test]
    fn reads_like_a_serde_json_value() {
        let j = Json::parse(SAMPLE).unwrap();
        let v: Value = serde_json::from_str(SAMPLE).unwrap();
        // Same text out (the repeated key resolves to the last value in both).
        assert_eq!(
            j.member("a").unwrap().to_string(),
            v.member("a").unwrap().to_string()
        );
        assert_eq!(
            j.at("/c/4/d").unwrap().text(),
            v.at("/c/4/d").unwrap().text()
        );
        assert_eq!(j.at("/c/1").unwrap().kind(), v.at("/c/1").unwrap().kind());
        assert!(j.at("/c/2").unwrap().null() && v.at("/c/2").unwrap().null());
        assert_eq!(j.at("/c/9"), None);
        assert!(
            j.member("e").unwrap().object()
                && j.member("f").unwrap().elements().unwrap().is_empty()
        );
        assert_eq!(j.member("zz"), None);
        assert_eq!(Json::parse("[1]").unwrap().member("a"), None);
    }

    #[test]
    fn converts_to_the_value_serde_json_parses() {
        let text = SAMPLE;
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(Json::parse(text).unwrap().to_value(), v);
        assert_eq!(
            Json::parse(text).unwrap().to_value().to_string(),
            v.to_string()
        );
    }

    #[test]
    fn displays_as_compact_json_like_value() {
        for text in [
            SAMPLE.replace(r#""a":7,"#, ""),
            "\"  7.25 \"".into(),
            "null".into(),
        ] {
            let j = Json::parse(&text).unwrap();
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(j.to_string(), v.to_string(), "{text}");
        }
    }
}
