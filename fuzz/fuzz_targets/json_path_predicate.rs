#![no_main]
//! JSON field paths, predicates and projections of the TOML operators (`FieldPath`,
//! `Predicate::from_table`, `Projection`, `write_key`). Input: a line of comma-separated field
//! paths, a line holding a predicate table as JSON (`{"field": "amount", "gt": 1000}`), then a
//! JSON record (a record that does not parse is `null`).

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use streamvisor::actors::{write_key, FieldPath, Predicate, Projection};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |byte| *byte == b'\n');
    let (paths, table, record) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let record = serde_json::from_slice(record).unwrap_or(Value::Null);
    if let Ok(paths) = std::str::from_utf8(paths) {
        for text in paths.split(',') {
            check_path(text, &record);
        }
        if let Ok(projection) = Projection::parse(paths.split(',')) {
            check_projection(&projection, &record);
        }
    }
    if let Ok(Value::Object(table)) = serde_json::from_slice(table) {
        check_predicate(&table, &record);
    }
});

/// A path parses unless it is empty or has an empty segment, reads back as written, and gives a
/// key exactly when its field is a string or a number.
fn check_path(text: &str, record: &Value) {
    let empty_segment = text.split('.').any(str::is_empty);
    let Ok(path) = FieldPath::parse(text) else {
        assert!(empty_segment, "{text:?} refused");
        return;
    };
    assert!(!empty_segment, "{text:?} taken");
    assert_eq!(path.as_str(), text);
    assert_eq!(path.to_string(), text);
    assert_eq!(path.segments().collect::<Vec<_>>().join("."), text);
    let mut key = b"left over".to_vec();
    let keyed = write_key(record, &path, &mut key);
    let keyable = matches!(path.get(record), Some(Value::String(_) | Value::Number(_)));
    assert_eq!(keyed, keyable, "a key of {text:?}");
    assert!(
        keyed || key.is_empty(),
        "no key of {text:?} leaves the buffer empty"
    );
}

/// Each field found in `record` is found, the same, in its projection.
fn check_projection(projection: &Projection, record: &Value) {
    let projected = projection.apply(record);
    for path in projection.fields() {
        if let Some(field) = path.get(record) {
            assert_eq!(path.get(&projected), Some(field), "{path} projected");
        }
    }
}

/// Each comparison and its opposite (`eq`/`ne`, `gt`/`le`, `ge`/`lt`).
const OPPOSITES: [(&str, &str); 6] = [
    ("eq", "ne"),
    ("ne", "eq"),
    ("gt", "le"),
    ("le", "gt"),
    ("ge", "lt"),
    ("lt", "ge"),
];

/// A predicate and its opposite: exactly one holds for a field they can compare (any field for
/// `eq`/`ne`, a number with a number or a string with a string for the orderings), neither for a
/// missing field or one of another type.
fn check_predicate(table: &Map<String, Value>, record: &Value) {
    let Ok(predicate) = Predicate::from_table(table) else {
        return;
    };
    let (comparison, opposite) = OPPOSITES
        .into_iter()
        .find(|(comparison, _)| table.contains_key(*comparison))
        .expect("a valid predicate has a comparison");
    let mut flipped = table.clone();
    let operand = flipped.remove(comparison).expect("the operand");
    flipped.insert(opposite.to_owned(), operand);
    let negated = Predicate::from_table(&flipped).expect("the opposite of a valid predicate");

    let operand = predicate.operand();
    let comparable = match predicate.path().get(record) {
        None => false,
        Some(_) if matches!(comparison, "eq" | "ne") => true,
        Some(field) => {
            (field.as_f64().is_some() && operand.as_f64().is_some())
                || (field.is_string() && operand.is_string())
        }
    };
    let holds = (predicate.matches(record), negated.matches(record));
    if comparable {
        assert!(
            holds.0 != holds.1,
            "{table:?} and its opposite on {record}: {holds:?}"
        );
    } else {
        assert_eq!(
            holds,
            (false, false),
            "{table:?} and its opposite on {record}"
        );
    }
}
