//! [`Predicate`]: a comparison of a JSON field with a constant, as written in a TOML `filter`
//! stage: `where = { field = "amount", gt = 1000 }`.
//!
//! - Numbers compare as `f64` (so `1` equals `1.0`; integers beyond 2^53 lose precision).
//! - [`Comparison::Eq`] and [`Comparison::Ne`] take any JSON operand: values of different
//!   types are not equal (`"5"` ne `5` holds), arrays and objects are equal when their
//!   elements are, numbers inside them compared as `f64`.
//! - Ordering comparisons ([`Comparison::Gt`], `Ge`, `Lt`, `Le`) take a number or a string
//!   operand (checked when the predicate is built); strings order lexicographically by bytes.
//!   A field of another type than the operand's matches none of them.
//! - A missing field matches no predicate, `ne` included: a record without the field is not
//!   kept by `{ field = "status", ne = "done" }`.

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Value};

use super::path::FieldPath;
use crate::operators::error::OperatorError;

/// How a field compares with the operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comparison {
    /// Equal (`eq`).
    Eq,
    /// Not equal (`ne`).
    Ne,
    /// Greater than (`gt`).
    Gt,
    /// Greater than or equal (`ge`).
    Ge,
    /// Less than (`lt`).
    Lt,
    /// Less than or equal (`le`).
    Le,
}

impl Comparison {
    /// Every comparison, in the order of its documentation.
    pub const ALL: [Comparison; 6] = [
        Comparison::Eq,
        Comparison::Ne,
        Comparison::Gt,
        Comparison::Ge,
        Comparison::Lt,
        Comparison::Le,
    ];

    /// Its key in a predicate table (`eq`, `ne`, `gt`, `ge`, `lt`, `le`).
    pub fn key(self) -> &'static str {
        match self {
            Comparison::Eq => "eq",
            Comparison::Ne => "ne",
            Comparison::Gt => "gt",
            Comparison::Ge => "ge",
            Comparison::Lt => "lt",
            Comparison::Le => "le",
        }
    }

    /// The comparison of a predicate table key, if it is one.
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|comparison| comparison.key() == key)
    }

    /// Whether it orders (rather than tests equality).
    fn orders(self) -> bool {
        !matches!(self, Comparison::Eq | Comparison::Ne)
    }

    /// Whether a field that compares `ordering` to the operand passes.
    fn accepts(self, ordering: Ordering) -> bool {
        match self {
            Comparison::Eq => ordering.is_eq(),
            Comparison::Ne => ordering.is_ne(),
            Comparison::Gt => ordering.is_gt(),
            Comparison::Ge => ordering.is_ge(),
            Comparison::Lt => ordering.is_lt(),
            Comparison::Le => ordering.is_le(),
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A field, a comparison and a constant operand: `field <comparison> operand`.
#[derive(Debug, Clone, PartialEq)]
pub struct Predicate {
    path: FieldPath,
    comparison: Comparison,
    operand: Value,
}

const OPERATOR: &str = "predicate";
const KEYS: &str = "eq, ne, gt, ge, lt, le";

fn invalid(why: String) -> OperatorError {
    OperatorError::Invalid {
        operator: OPERATOR,
        why,
    }
}

impl Predicate {
    /// `path <comparison> operand`; an ordering comparison with an operand that is neither a
    /// number nor a string is [`OperatorError::Invalid`].
    pub fn new(
        path: FieldPath,
        comparison: Comparison,
        operand: Value,
    ) -> Result<Self, OperatorError> {
        if comparison.orders() && !(operand.is_number() || operand.is_string()) {
            return Err(invalid(format!(
                "`{comparison}` compares with a number or a string, not {operand}"
            )));
        }
        Ok(Predicate {
            path,
            comparison,
            operand,
        })
    }

    /// A predicate from its table, `{ field = "amount", gt = 1000 }`: a string `field` and
    /// exactly one comparison key. Anything else is [`OperatorError::Invalid`] naming the
    /// offending key (or [`OperatorError::FieldPath`] for a bad path).
    pub fn from_table(table: &Map<String, Value>) -> Result<Self, OperatorError> {
        let mut comparison = None;
        for (key, operand) in table {
            if key == "field" {
                continue;
            }
            let found = Comparison::from_key(key).ok_or_else(|| {
                invalid(format!(
                    "unknown key `{key}`, expected `field` and one of {KEYS}"
                ))
            })?;
            if let Some((first, _)) = comparison.replace((found, operand)) {
                return Err(invalid(format!(
                    "more than one comparison (`{first}` and `{found}`), expected exactly one"
                )));
            }
        }
        let (comparison, operand) =
            comparison.ok_or_else(|| invalid(format!("no comparison, expected one of {KEYS}")))?;
        Predicate::new(field_of(table)?, comparison, operand.clone())
    }

    /// Whether `value`'s field passes the comparison (see the module documentation).
    pub fn matches(&self, value: &Value) -> bool {
        let Some(field) = self.path.get(value) else {
            return false;
        };
        match self.comparison {
            Comparison::Eq => json_eq(field, &self.operand),
            Comparison::Ne => !json_eq(field, &self.operand),
            ordering => order(field, &self.operand).is_some_and(|o| ordering.accepts(o)),
        }
    }

    /// The field compared.
    pub fn path(&self) -> &FieldPath {
        &self.path
    }

    /// How it compares.
    pub fn comparison(&self) -> Comparison {
        self.comparison
    }

    /// The constant it compares with.
    pub fn operand(&self) -> &Value {
        &self.operand
    }
}

/// The `field` of a predicate table, parsed.
fn field_of(table: &Map<String, Value>) -> Result<FieldPath, OperatorError> {
    match table.get("field") {
        Some(Value::String(path)) => FieldPath::parse(path),
        Some(other) => Err(invalid(format!(
            "`field` must be a string (a field path), not {other}"
        ))),
        None => Err(invalid(
            "missing `field` (the field path to compare)".to_owned(),
        )),
    }
}

/// Two numbers as `f64`, or two strings by bytes; `None` for anything else.
fn order(field: &Value, operand: &Value) -> Option<Ordering> {
    match (field, operand) {
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

/// JSON equality with numbers compared as `f64`, at any depth.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => order(a, b).is_some_and(Ordering::is_eq),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(key, a)| b.get(key).is_some_and(|b| json_eq(a, b)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn predicate(table: Value) -> Predicate {
        let Value::Object(table) = table else {
            panic!("a table is a JSON object");
        };
        Predicate::from_table(&table).expect("a valid predicate")
    }

    fn error(table: Value) -> String {
        let Value::Object(table) = table else {
            panic!("a table is a JSON object");
        };
        Predicate::from_table(&table)
            .expect_err("an invalid predicate")
            .to_string()
    }

    /// Which of `records` the predicate keeps, by their `id`.
    fn kept(table: Value, records: &[Value]) -> Vec<u64> {
        let predicate = predicate(table);
        records
            .iter()
            .filter(|record| predicate.matches(record))
            .filter_map(|record| record["id"].as_u64())
            .collect()
    }

    fn amounts() -> Vec<Value> {
        vec![
            json!({ "id": 1, "amount": 999 }),
            json!({ "id": 2, "amount": 1000 }),
            json!({ "id": 3, "amount": 1000.5 }),
            json!({ "id": 4, "amount": "2000" }),
            json!({ "id": 5 }),
            json!({ "id": 6, "amount": null }),
        ]
    }

    #[test]
    fn each_comparison_of_numbers() {
        let records = amounts();
        assert_eq!(
            kept(json!({ "field": "amount", "eq": 1000 }), &records),
            [2]
        );
        assert_eq!(
            kept(json!({ "field": "amount", "eq": 1000.0 }), &records),
            [2]
        );
        assert_eq!(
            kept(json!({ "field": "amount", "ne": 1000 }), &records),
            [1, 3, 4, 6]
        );
        assert_eq!(
            kept(json!({ "field": "amount", "gt": 1000 }), &records),
            [3]
        );
        assert_eq!(
            kept(json!({ "field": "amount", "ge": 1000 }), &records),
            [2, 3]
        );
        assert_eq!(
            kept(json!({ "field": "amount", "lt": 1000 }), &records),
            [1]
        );
        assert_eq!(
            kept(json!({ "field": "amount", "le": 1000 }), &records),
            [1, 2]
        );
    }

    #[test]
    fn strings_order_lexicographically() {
        let records = [
            json!({ "id": 1, "name": "apple" }),
            json!({ "id": 2, "name": "banana" }),
            json!({ "id": 3, "name": "Banana" }),
            json!({ "id": 4, "name": 7 }),
        ];
        assert_eq!(kept(json!({ "field": "name", "ge": "b" }), &records), [2]);
        assert_eq!(
            kept(json!({ "field": "name", "lt": "banana" }), &records),
            [1, 3]
        );
        assert_eq!(
            kept(json!({ "field": "name", "eq": "banana" }), &records),
            [2]
        );
    }

    #[test]
    fn equality_on_any_json() {
        let records = [
            json!({ "id": 1, "tags": ["a", 1] }),
            json!({ "id": 2, "tags": ["a", 1.0] }),
            json!({ "id": 3, "tags": ["a"] }),
            json!({ "id": 4, "tags": { "a": 1 } }),
            json!({ "id": 5, "tags": true }),
            json!({ "id": 6, "tags": null }),
        ];
        assert_eq!(
            kept(json!({ "field": "tags", "eq": ["a", 1] }), &records),
            [1, 2]
        );
        assert_eq!(
            kept(json!({ "field": "tags", "eq": { "a": 1.0 } }), &records),
            [4]
        );
        assert_eq!(kept(json!({ "field": "tags", "eq": true }), &records), [5]);
        assert_eq!(kept(json!({ "field": "tags", "eq": null }), &records), [6]);
        assert_eq!(
            kept(json!({ "field": "tags", "ne": true }), &records),
            [1, 2, 3, 4, 6]
        );
    }

    #[test]
    fn nested_fields() {
        let records = [
            json!({ "id": 1, "customer": { "tier": "gold" } }),
            json!({ "id": 2, "customer": { "tier": "silver" } }),
            json!({ "id": 3, "customer": "gold" }),
        ];
        let table = json!({ "field": "customer.tier", "eq": "gold" });
        assert_eq!(kept(table, &records), [1]);
    }

    #[test]
    fn the_table_is_read_back() {
        let parsed = predicate(json!({ "field": "a.b", "le": -2 }));
        assert_eq!(parsed.path().as_str(), "a.b");
        assert_eq!(parsed.comparison(), Comparison::Le);
        assert_eq!(parsed.operand(), &json!(-2));
        for comparison in Comparison::ALL {
            assert_eq!(Comparison::from_key(comparison.key()), Some(comparison));
        }
        assert_eq!(Comparison::from_key("gte"), None);
    }

    #[test]
    fn invalid_tables_say_why() {
        assert_eq!(
            error(json!({ "field": "amount" })),
            "predicate: no comparison, expected one of eq, ne, gt, ge, lt, le"
        );
        assert_eq!(
            error(json!({ "field": "amount", "gt": 1, "lt": 9 })),
            "predicate: more than one comparison (`gt` and `lt`), expected exactly one"
        );
        assert_eq!(
            error(json!({ "field": "amount", "gte": 1 })),
            "predicate: unknown key `gte`, expected `field` and one of eq, ne, gt, ge, lt, le"
        );
        assert_eq!(
            error(json!({ "gt": 1 })),
            "predicate: missing `field` (the field path to compare)"
        );
        assert_eq!(
            error(json!({ "field": 3, "gt": 1 })),
            "predicate: `field` must be a string (a field path), not 3"
        );
        assert_eq!(
            error(json!({ "field": "a..b", "gt": 1 })),
            "field path \"a..b\": segment 2 is empty"
        );
        assert_eq!(
            error(json!({ "field": "amount", "gt": true })),
            "predicate: `gt` compares with a number or a string, not true"
        );
    }
}
