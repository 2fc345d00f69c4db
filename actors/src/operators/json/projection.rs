//! [`Projection`]: a new JSON object holding only chosen fields of a value (`select`).

use serde_json::{Map, Value};

use super::path::FieldPath;
use crate::operators::error::OperatorError;

/// The fields to keep. Applied to a value, it builds a new object where each field found sits
/// at its path: nested paths become nested objects (`"customer.city"` gives
/// `{"customer": {"city": ...}}`, and an array index segment becomes an object key:
/// `"items.0"` gives `{"items": {"0": ...}}`). Missing fields are omitted, so a value with none
/// of them projects to `{}`. When one field lies inside another (`"a"` and `"a.b"`), the outer
/// one's whole value is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projection {
    fields: Vec<FieldPath>,
}

impl Projection {
    /// A projection of `fields`; none is [`OperatorError::Invalid`].
    pub fn new(fields: Vec<FieldPath>) -> Result<Self, OperatorError> {
        if fields.is_empty() {
            return Err(OperatorError::Invalid {
                operator: "projection",
                why: "no fields to keep".to_owned(),
            });
        }
        Ok(Projection { fields })
    }

    /// A projection of fields written as paths (`["id", "customer.city"]`).
    pub fn parse<'a>(fields: impl IntoIterator<Item = &'a str>) -> Result<Self, OperatorError> {
        let fields = fields
            .into_iter()
            .map(FieldPath::parse)
            .collect::<Result<_, _>>()?;
        Projection::new(fields)
    }

    /// The new object of the fields of `value`.
    pub fn apply(&self, value: &Value) -> Value {
        let mut out = Map::new();
        for path in &self.fields {
            if let Some(field) = path.get(value) {
                insert(&mut out, path, field);
            }
        }
        Value::Object(out)
    }

    /// The fields kept, as given.
    pub fn fields(&self) -> &[FieldPath] {
        &self.fields
    }
}

/// Puts a copy of `field` at `path` in `out`, making the objects on the way. A non-object on the
/// way is an outer field kept whole, which holds this one already.
fn insert(out: &mut Map<String, Value>, path: &FieldPath, field: &Value) {
    let mut object = out;
    let mut names = path.segments().peekable();
    while let Some(name) = names.next() {
        if names.peek().is_none() {
            object.insert(name.to_owned(), field.clone());
            return;
        }
        let inner = object
            .entry(name)
            .or_insert_with(|| Value::Object(Map::new()));
        match inner {
            Value::Object(inner) => object = inner,
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn project(fields: &[&str], value: &Value) -> Value {
        let projection = Projection::parse(fields.iter().copied()).expect("valid fields");
        projection.apply(value)
    }

    fn order() -> Value {
        json!({
            "id": "o-1",
            "amount": 1200,
            "customer": { "name": "Ana", "city": "Lyon", "vip": true },
            "items": [ { "sku": "a" }, { "sku": "b" } ]
        })
    }

    #[test]
    fn keeps_top_level_fields() {
        assert_eq!(
            project(&["id", "amount"], &order()),
            json!({ "id": "o-1", "amount": 1200 })
        );
    }

    #[test]
    fn nested_paths_become_nested_objects() {
        assert_eq!(
            project(&["customer.city", "customer.vip", "id"], &order()),
            json!({ "id": "o-1", "customer": { "city": "Lyon", "vip": true } })
        );
        assert_eq!(
            project(&["items.1.sku"], &order()),
            json!({ "items": { "1": { "sku": "b" } } })
        );
    }

    #[test]
    fn missing_fields_are_omitted() {
        assert_eq!(
            project(&["id", "absent", "customer.phone"], &order()),
            json!({ "id": "o-1" })
        );
        assert_eq!(project(&["id"], &json!([1, 2])), json!({}));
    }

    #[test]
    fn an_outer_field_is_kept_whole() {
        let whole = json!({ "customer": { "name": "Ana", "city": "Lyon", "vip": true } });
        assert_eq!(project(&["customer", "customer.city"], &order()), whole);
        assert_eq!(project(&["customer.city", "customer"], &order()), whole);
        let items = json!({ "items": [ { "sku": "a" }, { "sku": "b" } ] });
        assert_eq!(project(&["items", "items.0.sku"], &order()), items);
    }

    #[test]
    fn needs_a_field() {
        assert_eq!(
            Projection::parse([]),
            Err(OperatorError::Invalid {
                operator: "projection",
                why: "no fields to keep".to_owned()
            })
        );
        assert!(matches!(
            Projection::parse(["id", "a..b"]),
            Err(OperatorError::FieldPath { path, .. }) if path == "a..b"
        ));
    }
}
