//! A first pass over a request body that keeps nothing, made before the body becomes a JSON tree.
//!
//! A generic tree costs about 700 bytes for each small JSON object (a B-tree node per map), so a
//! body of a million `{"S":"a"}` list elements, 12 MB on the wire, would need most of a gigabyte:
//! more than the sandbox has. Such a request is invalid in DynamoDB (that list alone is far over
//! the 400 KB item limit), and this pass finds it out from the bytes, in memory bounded by the
//! request's real size. A body whose tree would not fit the sandbox for any other reason (say
//! a member the operation ignores, holding a million tiny objects) is refused too, as too large.

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::{ApiError, ErrorKind};
use crate::model::size::{CONTAINER_OVERHEAD, ELEMENT_OVERHEAD, MAX_ITEM_BYTES, item_too_large};

/// Trees up to this size are built whatever the body holds, so every request of ordinary size
/// keeps DynamoDB's order of validation; only beyond it does this pass judge.
const TREE_BUDGET: usize = 16 << 20;
/// A tree takes at most this many bytes per byte of JSON (`{"a":0},`: 8 bytes, one map node), so
/// smaller bodies need no pass.
const MAX_TREE_BYTES_PER_BODY_BYTE: usize = 100;

/// The most a tree may take: the sandbox's default memory (256 MiB) must still hold the body, the
/// items a request reads and its response beside it.
const MAX_TREE_BYTES: usize = 96 << 20;

/// Why a body too large to parse as a tree is refused before it is parsed: it holds an attribute
/// value (or an item, a key) over DynamoDB's item limit, a request DynamoDB refuses; or its tree
/// would not fit the sandbox's memory whatever it holds.
pub fn refusal(body: &[u8]) -> Option<ApiError> {
    if body.len() <= TREE_BUDGET / MAX_TREE_BYTES_PER_BODY_BYTE {
        return None;
    }
    let weight = weigh(body)?;
    if weight.tree_bytes <= TREE_BUDGET {
        None
    } else if weight.largest_value_bytes > MAX_ITEM_BYTES {
        Some(item_too_large())
    } else if weight.tree_bytes > MAX_TREE_BYTES {
        Some(ApiError::new(
            ErrorKind::RequestEntityTooLarge,
            format!("Request too complex: its JSON would take more than {} MiB to process", MAX_TREE_BYTES >> 20),
        ))
    } else {
        None
    }
}

/// What the pass found.
#[derive(Debug, PartialEq)]
struct Weight {
    /// Roughly what the parsed tree would allocate.
    tree_bytes: usize,
    /// The largest size, as DynamoDB counts item sizes, of anything shaped like an attribute value
    /// or like a map of them (an item, a key), counted low: every number as one byte.
    largest_value_bytes: usize,
}

/// `None` when the body is not JSON: the parse that follows says so in DynamoDB's words.
fn weigh(body: &[u8]) -> Option<Weight> {
    let mut weight = Weight { tree_bytes: 0, largest_value_bytes: 0 };
    let mut reader = serde_json::Deserializer::from_slice(body);
    Pass { weight: &mut weight }.deserialize(&mut reader).ok()?;
    reader.end().ok()?;
    Some(weight)
}

/// A `serde_json::Value` inline, and what a B-tree leaf of up to 11 members allocates.
const VALUE_BYTES: usize = 32;
const MAP_NODE_BYTES: usize = 640;
const MAP_NODE_MEMBERS: usize = 11;

/// One JSON value as the pass saw it.
#[derive(Clone, Copy)]
enum Shape {
    Null,
    Bool,
    Other,
    String(usize),
    Array {
        len: usize,
        /// Σ (1 + size) when every element is shaped like an attribute value (an `L`'s content).
        values: Option<usize>,
        /// Σ length when every element is a string (a set's content).
        strings: Option<usize>,
    },
    Object {
        /// The size, when the object is shaped like an attribute value (`{"S": "x"}`, `{"L": [..]}`).
        value: Option<usize>,
        /// Σ (name + size) and the count, when every member is shaped like an attribute value.
        attributes: Option<(usize, usize)>,
    },
}

impl Shape {
    fn value_size(self) -> Option<usize> {
        match self {
            Shape::Object { value, .. } => value,
            _ => None,
        }
    }
}

/// The size of `{tag: member}` when that is an attribute value.
fn attribute_value_size(tag: &str, member: Shape) -> Option<usize> {
    let decoded = |base64_len: usize| base64_len / 4 * 3;
    match (tag, member) {
        ("S", Shape::String(len)) => Some(len),
        ("B", Shape::String(len)) => Some(decoded(len)),
        ("N", Shape::String(_)) | ("BOOL" | "NULL", Shape::Bool) => Some(1),
        ("L", Shape::Array { values: Some(sum), .. }) => Some(CONTAINER_OVERHEAD + sum),
        ("M", Shape::Object { attributes: Some((sum, count)), .. }) => {
            Some(CONTAINER_OVERHEAD + count * ELEMENT_OVERHEAD + sum)
        }
        ("SS", Shape::Array { strings: Some(sum), .. }) => Some(sum),
        ("BS", Shape::Array { strings: Some(sum), .. }) => Some(decoded(sum)),
        ("NS", Shape::Array { len, strings: Some(_), .. }) => Some(len),
        _ => None,
    }
}

struct Pass<'w> {
    weight: &'w mut Weight,
}

impl Pass<'_> {
    fn record(&mut self, shape: Shape) -> Shape {
        if let Shape::Object { value, attributes } = shape {
            let largest = value.into_iter().chain(attributes.map(|(sum, _)| sum)).max().unwrap_or(0);
            self.weight.largest_value_bytes = self.weight.largest_value_bytes.max(largest);
        }
        shape
    }
}

impl<'de> DeserializeSeed<'de> for Pass<'_> {
    type Value = Shape;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Shape, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Pass<'_> {
    type Value = Shape;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("JSON")
    }

    fn visit_unit<E>(self) -> Result<Shape, E> {
        Ok(Shape::Null)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Bool)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_str<E>(self, text: &str) -> Result<Shape, E> {
        self.weight.tree_bytes += text.len();
        Ok(Shape::String(text.len()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut elements: A) -> Result<Shape, A::Error> {
        let (mut len, mut values, mut strings) = (0, Some(0), Some(0));
        while let Some(element) = elements.next_element_seed(Pass { weight: &mut *self.weight })? {
            len += 1;
            values = values.zip(element.value_size()).map(|(sum, size)| sum + ELEMENT_OVERHEAD + size);
            strings = match element {
                Shape::String(l) => strings.map(|sum| sum + l),
                _ => None,
            };
        }
        // Vectors grow by doubling: half again, on average, of what they hold.
        self.weight.tree_bytes += len * VALUE_BYTES * 3 / 2;
        Ok(Shape::Array { len, values, strings })
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut members: A) -> Result<Shape, A::Error> {
        let (mut len, mut present, mut attributes, mut first) = (0usize, 0, Some((0, 0)), None);
        while let Some(name) = members.next_key::<Name>()? {
            let member = members.next_value_seed(Pass { weight: &mut *self.weight })?;
            self.weight.tree_bytes += name.len;
            len += 1;
            // JSON null counts as absent, as in DynamoDB's decoder.
            if matches!(member, Shape::Null) {
                continue;
            }
            present += 1;
            first = first.or(Some((name.tag, member)));
            attributes =
                attributes.zip(member.value_size()).map(|((sum, count), size)| (sum + name.len + size, count + 1));
        }
        self.weight.tree_bytes += len.div_ceil(MAP_NODE_MEMBERS) * MAP_NODE_BYTES;
        let value = match (present, first) {
            (1, Some((Some(tag), member))) => attribute_value_size(tag, member),
            _ => None,
        };
        Ok(self.record(Shape::Object { value, attributes }))
    }
}

/// A member name: its length, and which attribute value tag it is, if any.
struct Name {
    len: usize,
    tag: Option<&'static str>,
}

const TAGS: [&str; 10] = ["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"];

impl<'de> serde::Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Name, D::Error> {
        struct NameVisitor;
        impl Visitor<'_> for NameVisitor {
            type Value = Name;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a member name")
            }
            fn visit_str<E>(self, name: &str) -> Result<Name, E> {
                Ok(Name { len: name.len(), tag: TAGS.iter().find(|tag| **tag == name).copied() })
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list_of(count: usize, element: &str) -> Vec<u8> {
        let elements = vec![element; count].join(",");
        format!(r#"{{"TableName":"t","Item":{{"k":{{"S":"1"}},"big":{{"L":[{elements}]}}}}}}"#).into_bytes()
    }

    #[test]
    fn sizes_are_counted_as_dynamodb_counts_them() {
        let body = br#"{"TableName":"t","Item":{"a":{"S":"xyz"},"b":{"L":[{"NULL":true}]},"c":null}}"#;
        // a: 1 + 3; b: 1 + (3 + 1 + 1); the body itself is no item (TableName is no value).
        assert_eq!(weigh(body).unwrap().largest_value_bytes, 10);
        let set = br#"{"M":{"s":{"SS":["ab","c"]},"n":{"NS":["10","2"]}}}"#;
        // 3 + 2 members + (1 + 3) + (1 + 2, numbers counted as one byte each).
        assert_eq!(weigh(set).unwrap().largest_value_bytes, 12);
        assert_eq!(weigh(b"{\"a\":"), None);
    }

    #[test]
    fn a_million_tiny_list_elements_are_refused_unparsed() {
        let body = list_of(1_000_000, r#"{"S":"a"}"#);
        assert!(body.len() > 9_000_000);
        let weight = weigh(&body).unwrap();
        assert!(weight.tree_bytes > 500 << 20, "{weight:?}");
        assert!(refusal(&body).is_some_and(|e| e.message.contains("Item size has exceeded")));
    }

    #[test]
    fn a_dense_member_the_operation_ignores_is_refused_as_too_large() {
        // 800,000 tiny objects outside any item: no value over the limit, but ~550 MB as a tree.
        let elements = vec![r#"{"S":"a"}"#; 800_000].join(",");
        let body = format!(r#"{{"TableName":"t","Key":{{"k":{{"S":"1"}}}},"Ignored":[{elements}]}}"#);
        let refused = refusal(body.as_bytes()).expect("refused");
        assert_eq!((refused.kind, refused.kind.status()), (ErrorKind::RequestEntityTooLarge, 413));
    }

    #[test]
    fn an_item_of_a_million_attributes_is_refused_unparsed() {
        let attributes: Vec<String> = (0..1_000_000).map(|i| format!(r#""a{i}":{{"N":"1"}}"#)).collect();
        let body = format!(r#"{{"TableName":"t","Item":{{{}}}}}"#, attributes.join(","));
        assert!(refusal(body.as_bytes()).is_some());
    }

    #[test]
    fn dense_items_within_the_limit_are_parsed() {
        // 3 + 40,000 * 2 bytes: within 400 KB, though its tree is over the budget.
        let body = list_of(40_000, r#"{"N":"1"}"#);
        let weight = weigh(&body).unwrap();
        assert!(weight.tree_bytes > TREE_BUDGET && weight.largest_value_bytes < MAX_ITEM_BYTES, "{weight:?}");
        assert!(refusal(&body).is_none());
    }

    #[test]
    fn large_values_in_small_trees_keep_the_usual_validation_order() {
        // One 500 KB string: over the limit, but its tree is small, so the operation judges it.
        let body = format!(r#"{{"Item":{{"s":{{"S":"{}"}}}}}}"#, "x".repeat(500 << 10));
        assert!(refusal(body.as_bytes()).is_none());
    }
}
