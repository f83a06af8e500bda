//! What the order parser needs from a JSON tree, so one parser serves both trees the engine
//! holds: `serde_json::Value` (a Magento response, a test's `json!`) and the borrowed
//! [`Json`](super::json::Json) a stage builds from a stored record.
//!
//! One parser, not two: the field-by-field checks that name a bad field in the dead-letter
//! queue are the part that must never drift between the two paths.

use serde_json::Value;
use std::fmt;

/// A node's kind, with the text of a leaf. A number is its literal text (serde_json
/// `arbitrary_precision`), never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind<'v> {
    Null,
    Bool(bool),
    Number(&'v str),
    String(&'v str),
    Array,
    Object,
}

/// Read access to a JSON tree. `Display` is the compact JSON text, used in error messages.
pub trait JsonView: fmt::Display + Sized {
    fn kind(&self) -> Kind<'_>;
    /// The member `key` of an object (the last one, if the text repeats it, as serde_json
    /// keeps); `None` for a missing key or a non-object.
    fn member(&self, key: &str) -> Option<&Self>;
    fn elements(&self) -> Option<&[Self]>;

    fn text(&self) -> Option<&str> {
        match self.kind() {
            Kind::String(s) => Some(s),
            _ => None,
        }
    }

    fn null(&self) -> bool {
        self.kind() == Kind::Null
    }

    fn object(&self) -> bool {
        self.kind() == Kind::Object
    }

    /// A JSON pointer (`/a/0/b`) without `~` escapes, which no path the parser uses needs.
    fn at(&self, pointer: &str) -> Option<&Self> {
        let mut node = self;
        for part in pointer.split('/').skip(1) {
            node = match node.kind() {
                Kind::Object => node.member(part)?,
                Kind::Array => node.elements()?.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(node)
    }
}

impl JsonView for Value {
    fn kind(&self) -> Kind<'_> {
        match self {
            Value::Null => Kind::Null,
            Value::Bool(b) => Kind::Bool(*b),
            Value::Number(n) => Kind::Number(n.as_str()),
            Value::String(s) => Kind::String(s),
            Value::Array(_) => Kind::Array,
            Value::Object(_) => Kind::Object,
        }
    }

    fn member(&self, key: &str) -> Option<&Value> {
        self.as_object()?.get(key)
    }

    fn elements(&self) -> Option<&[Value]> {
        self.as_array().map(Vec::as_slice)
    }
}
