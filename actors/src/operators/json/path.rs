//! [`FieldPath`]: a dotted path to a field of a JSON value (`"customer.address.city"`), whose
//! segments name object keys or, on arrays, index them (`"items.0.sku"`).

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use serde_json::Value;

use crate::operators::error::OperatorError;

/// A parsed path to a field: non-empty segments separated by dots.
///
/// A segment of digits without a leading zero (`0`, `17`) indexes an array; on an object it is
/// a key like any other. There is no escape for keys that hold a dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct FieldPath {
    path: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Segment {
    name: String,
    /// The array index this segment spells, if it spells one.
    index: Option<usize>,
}

impl FieldPath {
    /// Parses `"a.b.c"`; an empty path or an empty segment (`"a..b"`, `".a"`, `"a."`) is
    /// [`OperatorError::FieldPath`] naming the path.
    pub fn parse(path: &str) -> Result<Self, OperatorError> {
        let invalid = |why: String| OperatorError::FieldPath {
            path: path.to_owned(),
            why,
        };
        if path.is_empty() {
            return Err(invalid("the path is empty".to_owned()));
        }
        let mut segments = Vec::new();
        for (position, name) in (1..).zip(path.split('.')) {
            if name.is_empty() {
                return Err(invalid(format!("segment {position} is empty")));
            }
            segments.push(Segment::new(name));
        }
        Ok(FieldPath {
            path: path.to_owned(),
            segments,
        })
    }

    /// The field's value in `value`, if every segment finds one.
    pub fn get<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        self.segments
            .iter()
            .try_fold(value, |value, segment| segment.step(value))
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.path
    }

    /// The segments, outermost first.
    pub fn segments(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.segments.iter().map(|segment| segment.name.as_str())
    }
}

impl Segment {
    fn new(name: &str) -> Self {
        let digits = name.bytes().all(|byte| byte.is_ascii_digit());
        let leading_zero = name.len() > 1 && name.starts_with('0');
        let index = if digits && !leading_zero {
            name.parse().ok()
        } else {
            None
        };
        Segment {
            name: name.to_owned(),
            index,
        }
    }

    fn step<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        match value {
            Value::Object(object) => object.get(&self.name),
            Value::Array(items) => items.get(self.index?),
            _ => None,
        }
    }
}

impl FromStr for FieldPath {
    type Err = OperatorError;

    fn from_str(path: &str) -> Result<Self, Self::Err> {
        FieldPath::parse(path)
    }
}

impl TryFrom<String> for FieldPath {
    type Error = OperatorError;

    fn try_from(path: String) -> Result<Self, Self::Error> {
        FieldPath::parse(&path)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn path(path: &str) -> FieldPath {
        FieldPath::parse(path).expect("a valid path")
    }

    fn order() -> Value {
        json!({
            "id": "o-1",
            "customer": { "address": { "city": "Lyon" } },
            "items": [ { "sku": "a", "qty": 2 }, { "sku": "b", "qty": 1 } ],
            "by_slot": { "0": "zero" },
            "nothing": null
        })
    }

    #[test]
    fn finds_nested_fields_and_array_items() {
        let order = order();
        assert_eq!(path("id").get(&order), Some(&json!("o-1")));
        assert_eq!(
            path("customer.address.city").get(&order),
            Some(&json!("Lyon"))
        );
        assert_eq!(path("items.1.sku").get(&order), Some(&json!("b")));
        assert_eq!(
            path("items.0").get(&order),
            Some(&json!({ "sku": "a", "qty": 2 }))
        );
        assert_eq!(path("by_slot.0").get(&order), Some(&json!("zero")));
        assert_eq!(path("nothing").get(&order), Some(&Value::Null));
    }

    #[test]
    fn missing_fields_are_none() {
        let order = order();
        for missing in [
            "absent",
            "customer.phone",
            "items.2.sku",
            "items.sku",
            "items.01",
            "id.length",
            "nothing.below",
        ] {
            assert_eq!(path(missing).get(&order), None, "{missing}");
        }
        assert_eq!(path("a").get(&json!(3)), None);
    }

    #[test]
    fn empty_paths_and_segments_are_refused() {
        let error = |path: &str, why: &str| {
            Err(OperatorError::FieldPath {
                path: path.to_owned(),
                why: why.to_owned(),
            })
        };
        assert_eq!(FieldPath::parse(""), error("", "the path is empty"));
        assert_eq!(
            FieldPath::parse("a..b"),
            error("a..b", "segment 2 is empty")
        );
        assert_eq!(FieldPath::parse(".a"), error(".a", "segment 1 is empty"));
        assert_eq!(FieldPath::parse("a."), error("a.", "segment 2 is empty"));
        let message = FieldPath::parse("a..b")
            .expect_err("empty segment")
            .to_string();
        assert_eq!(message, "field path \"a..b\": segment 2 is empty");
    }

    #[test]
    fn written_as_parsed() {
        let parsed: FieldPath = "items.0.sku".parse().expect("a valid path");
        assert_eq!(parsed.to_string(), "items.0.sku");
        assert_eq!(parsed.as_str(), "items.0.sku");
        assert_eq!(parsed.segments().collect::<Vec<_>>(), ["items", "0", "sku"]);
    }

    #[test]
    fn deserializes_from_a_string() {
        let parsed: FieldPath = serde_json::from_value(json!("a.b")).expect("a valid path");
        assert_eq!(parsed, path("a.b"));
        let error = serde_json::from_value::<FieldPath>(json!("a.")).expect_err("empty segment");
        assert_eq!(error.to_string(), "field path \"a.\": segment 2 is empty");
    }
}
