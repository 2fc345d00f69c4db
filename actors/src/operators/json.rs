//! JSON field access for the TOML built-in operators: [`FieldPath`]s (`"a.b.c"`, `"items.0"`),
//! [`Predicate`]s for `filter` (`where = { field = "amount", gt = 1000 }`), [`Projection`]s
//! for `select`, and a field's value as a key ([`write_key`]) or a number
//! ([`number_of`]) for `key_by` and the aggregates.
//!
//! - [`path`]: parsing a field path and finding its value.
//! - [`predicate`]: comparisons of a field with a constant.
//! - [`projection`]: a new object of chosen fields.
//! - [`field`]: a field's value as a key or a number.

pub(crate) mod field;
pub(crate) mod path;
pub(crate) mod predicate;
pub(crate) mod projection;

pub(crate) use field::number_of;
pub use field::write_key;
pub use path::FieldPath;
pub use predicate::Predicate;
pub use projection::Projection;
