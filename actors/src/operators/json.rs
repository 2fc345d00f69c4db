//! JSON field access for the TOML built-in operators: [`FieldPath`]s (`"a.b.c"`, `"items.0"`),
//! [`Predicate`]s for `filter` (`where = { field = "amount", gt = 1000 }`), [`Projection`]s
//! for `select`, and a field's value as a key ([`key_of`], [`write_key`]) or a number
//! ([`number_of`]) for `key_by` and the aggregates.
//!
//! - [`path`]: parsing a field path and finding its value.
//! - [`predicate`]: comparisons of a field with a constant.
//! - [`projection`]: a new object of chosen fields.
//! - [`field`]: a field's value as a key or a number.

pub mod field;
pub mod path;
pub mod predicate;
pub mod projection;

pub use field::{key_of, number_of, write_key};
pub use path::FieldPath;
pub use predicate::{Comparison, Predicate};
pub use projection::Projection;
