//! Signal values and their kinds.

use serde::{Deserialize, Serialize};

/// The kind of value a signal or property carries.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum ValueKind {
    #[default]
    Float,
    Int,
    Bool,
    String,
}

impl ValueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ValueKind::Float => "float",
            ValueKind::Int => "int",
            ValueKind::Bool => "bool",
            ValueKind::String => "string",
        }
    }
}

impl std::fmt::Display for ValueKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One value of a signal or property. Serialized as the bare JSON value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
}

impl Value {
    pub fn kind(&self) -> ValueKind {
        match self {
            Value::Bool(_) => ValueKind::Bool,
            Value::Int(_) => ValueKind::Int,
            Value::Float(_) => ValueKind::Float,
            Value::String(_) => ValueKind::String,
        }
    }

    /// Converts this value to `kind` where that loses nothing a user would care about: an
    /// integer is accepted for a float signal, an integral float (`3.0`) for an int signal.
    /// Non-finite floats are refused: they cannot be stored faithfully in JSON and are always
    /// a sensor or encoding fault.
    pub fn coerce(self, kind: ValueKind) -> Result<Value, String> {
        match (self, kind) {
            (Value::Float(f), _) if !f.is_finite() => Err(format!("{f} is not a finite number")),
            (v @ Value::Float(_), ValueKind::Float) => Ok(v),
            (Value::Int(i), ValueKind::Float) => Ok(Value::Float(i as f64)),
            (v @ Value::Int(_), ValueKind::Int) => Ok(v),
            (Value::Float(f), ValueKind::Int)
                if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 =>
            {
                Ok(Value::Int(f as i64))
            }
            (v @ Value::Bool(_), ValueKind::Bool) => Ok(v),
            (v @ Value::String(_), ValueKind::String) => Ok(v),
            (v, kind) => Err(format!("expected {kind}, got {} ({})", v.kind(), v.short())),
        }
    }

    /// The value as a float, for numeric analysis; booleans are 0/1, strings have none.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Value::String(_) => None,
        }
    }

    /// Converts a JSON value; objects, arrays and null are not signal values.
    pub fn from_json(v: &serde_json::Value) -> Result<Value, String> {
        match v {
            serde_json::Value::Bool(b) => Ok(Value::Bool(*b)),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(Value::Int(i))
                } else if let Some(f) = n.as_f64() {
                    Ok(Value::Float(f))
                } else {
                    Err(format!("number {n} is out of range"))
                }
            }
            serde_json::Value::String(s) => Ok(Value::String(s.clone())),
            serde_json::Value::Null => Err("null is not a value".into()),
            serde_json::Value::Array(_) => Err("an array is not a value".into()),
            serde_json::Value::Object(_) => Err("an object is not a value".into()),
        }
    }

    fn short(&self) -> String {
        let s = match self {
            Value::String(s) => format!("{s:?}"),
            other => serde_json::to_string(other).unwrap_or_default(),
        };
        if s.len() > 40 {
            format!("{}…", &s[..s.floor_char_boundary(40)])
        } else {
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn coercion_rules() {
        assert_eq!(
            Value::Int(3).coerce(ValueKind::Float),
            Ok(Value::Float(3.0))
        );
        assert_eq!(Value::Float(3.0).coerce(ValueKind::Int), Ok(Value::Int(3)));
        assert!(Value::Float(3.5).coerce(ValueKind::Int).is_err());
        assert!(Value::Bool(true).coerce(ValueKind::Float).is_err());
        assert!(Value::String("1".into()).coerce(ValueKind::Float).is_err());
        assert!(Value::Float(f64::NAN).coerce(ValueKind::Float).is_err());
        assert!(Value::Float(f64::INFINITY)
            .coerce(ValueKind::Float)
            .is_err());
    }

    #[test]
    fn json_round_trip_is_bare() {
        let v: Value = serde_json::from_str("71.5").unwrap();
        assert_eq!(v, Value::Float(71.5));
        let v: Value = serde_json::from_str("7").unwrap();
        assert_eq!(v, Value::Int(7));
        assert_eq!(serde_json::to_string(&Value::Bool(true)).unwrap(), "true");
    }

    proptest! {
        #[test]
        fn coerce_never_panics_and_keeps_kind(f in proptest::num::f64::ANY, i in any::<i64>(), s in ".{0,60}") {
            for v in [Value::Float(f), Value::Int(i), Value::String(s.clone()), Value::Bool(i % 2 == 0)] {
                for k in [ValueKind::Float, ValueKind::Int, ValueKind::Bool, ValueKind::String] {
                    if let Ok(c) = v.clone().coerce(k) {
                        prop_assert_eq!(c.kind(), k);
                    }
                }
            }
        }
    }
}
