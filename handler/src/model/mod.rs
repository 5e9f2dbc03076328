//! DynamoDB's data model: attribute values as they arrive in DynamoDB JSON, exact decimal
//! numbers, the order-preserving encoding of key values, and item sizes.

pub mod key;
pub mod number;
pub mod size;
pub mod value;

pub use number::Number;
pub use value::{AttributeValue, Item, item_from_json, item_to_json};
