//! An order-preserving JSON value and QEMU-style JSON output.
//!
//! QMP input is parsed into [`Json`] rather than `serde_json::Value` because the order of
//! object members matters to us (`object-add` properties keep the client's order, like the
//! command line) and because `serde_json::Map` is a `BTreeMap` unless a workspace-wide feature
//! is switched on. Output follows QEMU's `qobject_to_json()`: `": "` and `", "` separators,
//! ASCII only (everything else as `\uXXXX`), so `nc -U` users see what QEMU would print.

use std::fmt::Write as _;

/// A JSON number as QEMU's parser classifies it: signed if it fits, else unsigned, else double.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    /// An integer that fits in `i64`.
    Int(i64),
    /// A non-negative integer above `i64::MAX` that fits in `u64`.
    UInt(u64),
    /// Anything else (fractions, exponents, huge integers).
    Float(f64),
}

/// A JSON value whose objects keep member order.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number.
    Number(Number),
    /// A string (always valid UTF-8 after parsing).
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, members in input order (duplicates are rejected by the parser).
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// QAPI's name for this value's type, as used in "expected: ..." messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "boolean",
            Json::Number(Number::Float(_)) => "number",
            Json::Number(_) => "integer",
            Json::String(_) => "string",
            Json::Array(_) => "array",
            Json::Object(_) => "object",
        }
    }

    /// Serialises the way QEMU does (compact, `": "` and `", "`, ASCII only).
    pub fn to_qemu_string(&self) -> String {
        let mut s = String::new();
        write_json(&mut s, self);
        s
    }

    /// Converts to a `serde_json::Value` (member order may be lost).
    pub fn to_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(Number::Int(i)) => Value::from(*i),
            Json::Number(Number::UInt(u)) => Value::from(*u),
            Json::Number(Number::Float(f)) => {
                serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
            Json::String(s) => Value::String(s.clone()),
            Json::Array(a) => Value::Array(a.iter().map(Json::to_value).collect()),
            Json::Object(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_value())).collect())
            }
        }
    }
}

impl From<&serde_json::Value> for Json {
    fn from(v: &serde_json::Value) -> Self {
        use serde_json::Value;
        match v {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => Json::Number(if let Some(i) = n.as_i64() {
                Number::Int(i)
            } else if let Some(u) = n.as_u64() {
                Number::UInt(u)
            } else {
                Number::Float(n.as_f64().unwrap_or(0.0))
            }),
            Value::String(s) => Json::String(s.clone()),
            Value::Array(a) => Json::Array(a.iter().map(Json::from).collect()),
            Value::Object(m) => {
                Json::Object(m.iter().map(|(k, v)| (k.clone(), v.into())).collect())
            }
        }
    }
}

impl From<serde_json::Value> for Json {
    fn from(v: serde_json::Value) -> Self {
        Json::from(&v)
    }
}

impl From<&str> for Json {
    fn from(s: &str) -> Self {
        Json::String(s.to_string())
    }
}

/// Builds an object from `(key, value)` pairs, keeping their order.
pub fn object<I, K>(members: I) -> Json
where
    I: IntoIterator<Item = (K, Json)>,
    K: Into<String>,
{
    Json::Object(members.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

/// Formats a number the way QEMU prints it (integers exact, doubles shortest round-trip).
pub fn format_number(n: Number) -> String {
    match n {
        Number::Int(i) => i.to_string(),
        Number::UInt(u) => u.to_string(),
        // `{:?}` gives the shortest representation that round-trips ("1.5", "100.0",
        // "1e300"), all valid JSON.
        Number::Float(f) if f.is_finite() => format!("{f:?}"),
        // Not representable in JSON; QEMU never produces these either.
        Number::Float(_) => "null".to_string(),
    }
}

fn write_json(out: &mut String, v: &Json) {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(true) => out.push_str("true"),
        Json::Bool(false) => out.push_str("false"),
        Json::Number(n) => out.push_str(&format_number(*n)),
        Json::String(s) => write_string(out, s),
        Json::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json(out, e);
            }
            out.push(']');
        }
        Json::Object(m) => {
            out.push('{');
            for (i, (k, e)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(out, k);
                out.push_str(": ");
                write_json(out, e);
            }
            out.push('}');
        }
    }
}

/// Writes `s` as a JSON string literal in ASCII (non-ASCII as `\uXXXX`, surrogate pairs above
/// the BMP), like QEMU's `to_json()`.
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            _ => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    // Writing to a String cannot fail.
                    let _ = write!(out, "\\u{unit:04X}");
                }
            }
        }
    }
    out.push('"');
}

/// Serialises a `serde_json::Value` the way QEMU does (see [`Json::to_qemu_string`]).
pub fn value_to_qemu_string(v: &serde_json::Value) -> String {
    Json::from(v).to_qemu_string()
}
