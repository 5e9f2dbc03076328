//! Projection: the parts of an item that a ProjectionExpression (or AttributesToGet, or
//! ReturnValues UPDATED_OLD / UPDATED_NEW with the updated paths) asks for.
//!
//! Each path keeps its place in the item's structure: `a.b` comes back as `{a: {b: ...}}`, and
//! list elements picked by index come back as a list of just those elements, in index order
//! (`a[2], a[0]` gives `[a0, a2]`). Paths that lead nowhere (missing attributes, indexes past the
//! end, names into lists, indexes into maps) are skipped, so the result may be empty.

use std::collections::BTreeMap;

use super::ast::{Path, PathElement};
use super::eval::resolve;
use crate::model::{AttributeValue, Item};

/// The parts of `item` at `paths`.
pub fn project(item: &Item, paths: &[Path]) -> Item {
    // Only paths that resolve go in the tree, so its depth is the item's, and every step of it
    // exists.
    let mut tree = Tree::default();
    for path in paths.iter().filter(|path| resolve(item, path).is_some()) {
        path.0.iter().fold(&mut tree, |node, element| node.steps.entry(element).or_default()).whole = true;
    }
    tree.steps
        .iter()
        .filter_map(|(element, node)| match element {
            PathElement::Name(name) => Some((name.clone(), node.pick(item.get(name)?)?)),
            PathElement::Index(_) => None,
        })
        .collect()
}

/// The requested paths merged: the steps taken from one place in the item, in order (names, then
/// indexes by position).
#[derive(Default)]
struct Tree<'p> {
    /// Everything from here down is wanted.
    whole: bool,
    steps: BTreeMap<&'p PathElement, Tree<'p>>,
}

impl Tree<'_> {
    /// The wanted part of `value`; `None` when nothing of it is wanted.
    fn pick(&self, value: &AttributeValue) -> Option<AttributeValue> {
        if self.whole {
            return Some(value.clone());
        }
        let picked = match value {
            AttributeValue::M(map) => AttributeValue::M(
                self.steps
                    .iter()
                    .filter_map(|(element, node)| match element {
                        PathElement::Name(key) => Some((key.clone(), node.pick(map.get(key)?)?)),
                        PathElement::Index(_) => None,
                    })
                    .collect::<Item>(),
            ),
            AttributeValue::L(list) => AttributeValue::L(
                self.steps
                    .iter()
                    .filter_map(|(element, node)| match element {
                        PathElement::Index(index) => node.pick(list.get(*index as usize)?),
                        PathElement::Name(_) => None,
                    })
                    .collect(),
            ),
            _ => return None,
        };
        let empty = matches!(&picked, AttributeValue::M(m) if m.is_empty())
            || matches!(&picked, AttributeValue::L(l) if l.is_empty());
        (!empty).then_some(picked)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::eval::test_support::{item, path};
    use super::*;

    fn projected(it: &Item, paths: &[&str]) -> Item {
        project(it, &paths.iter().map(|p| path(p)).collect::<Vec<_>>())
    }

    #[test]
    fn top_level_attributes() {
        let it = item(json!({"p": {"S": "k"}, "c": {"S": "r"}, "a": {"S": "hello"}, "b": {"S": "hi"}}));
        assert_eq!(projected(&it, &["a"]), item(json!({"a": {"S": "hello"}})));
        assert_eq!(projected(&it, &["c", "a"]), item(json!({"a": {"S": "hello"}, "c": {"S": "r"}})));
        assert_eq!(projected(&it, &["p", "c"]), item(json!({"p": {"S": "k"}, "c": {"S": "r"}})));
        assert_eq!(projected(&it, &["nonexistent"]), Item::new());
        assert_eq!(projected(&it, &[]), Item::new());
        assert_eq!(projected(&Item::new(), &["a"]), Item::new());
    }

    #[test]
    fn document_paths_keep_their_place() {
        let it = item(json!({
            "a": {"M": {"b": {"L": [{"N": "2"}, {"N": "4"}, {"M": {"x": {"S": "hi"}, "y": {"S": "yo"}}}]}, "c": {"N": "5"}}},
            "b": {"S": "hello"},
        }));
        let whole_a = json!({"M": {"b": {"L": [{"N": "2"}, {"N": "4"}, {"M": {"x": {"S": "hi"}, "y": {"S": "yo"}}}]}, "c": {"N": "5"}}});
        assert_eq!(projected(&it, &["a"]), item(json!({"a": whole_a})));
        assert_eq!(
            projected(&it, &["a.b"]),
            item(
                json!({"a": {"M": {"b": {"L": [{"N": "2"}, {"N": "4"}, {"M": {"x": {"S": "hi"}, "y": {"S": "yo"}}}]}}}})
            )
        );
        assert_eq!(projected(&it, &["a.b[0]"]), item(json!({"a": {"M": {"b": {"L": [{"N": "2"}]}}}})));
        assert_eq!(
            projected(&it, &["a.b[2]"]),
            item(json!({"a": {"M": {"b": {"L": [{"M": {"x": {"S": "hi"}, "y": {"S": "yo"}}}]}}}}))
        );
        assert_eq!(projected(&it, &["a.b[2].y"]), item(json!({"a": {"M": {"b": {"L": [{"M": {"y": {"S": "yo"}}}]}}}})));
        // Paths that lead nowhere give nothing.
        for nowhere in
            ["x", "a.b[3]", "a.x", "a.x.y", "a.b[3].x", "a.b.x", "a[0]", "a.b[0].x", "a.b[0][0]", "b.c", "b[0]"]
        {
            assert_eq!(projected(&it, &[nowhere]), Item::new(), "{nowhere}");
        }
        // Several paths merge into one document.
        assert_eq!(
            projected(&it, &["a.b[0]", "a.b[1]"]),
            item(json!({"a": {"M": {"b": {"L": [{"N": "2"}, {"N": "4"}]}}}}))
        );
        assert_eq!(
            projected(&it, &["a.b[0]", "a.c"]),
            item(json!({"a": {"M": {"b": {"L": [{"N": "2"}]}, "c": {"N": "5"}}}}))
        );
        assert_eq!(projected(&it, &["a.c", "b"]), item(json!({"a": {"M": {"c": {"N": "5"}}}, "b": {"S": "hello"}})));
        assert_eq!(
            projected(&it, &["a.x", "a.b[0]", "x", "a.b[3].x"]),
            item(json!({"a": {"M": {"b": {"L": [{"N": "2"}]}}}}))
        );
        assert_eq!(
            projected(&it, &["a.b[2].y", "a.b[2].x"]),
            item(json!({"a": {"M": {"b": {"L": [{"M": {"x": {"S": "hi"}, "y": {"S": "yo"}}}]}}}}))
        );
    }

    #[test]
    fn list_elements_come_back_in_index_order() {
        let it = item(json!({"phones": {"L": [{"S": "p0"}, {"S": "p1"}, {"S": "p2"}, {"S": "p3"}]}}));
        assert_eq!(
            projected(&it, &["phones[0]", "phones[2]"]),
            item(json!({"phones": {"L": [{"S": "p0"}, {"S": "p2"}]}}))
        );
        assert_eq!(
            projected(&it, &["phones[3]", "phones[1]", "phones[9]"]),
            item(json!({"phones": {"L": [{"S": "p1"}, {"S": "p3"}]}}))
        );
        // Indexes order by value, not as text.
        let long = item(json!({"l": {"L": (0..12).map(|i| json!({"N": i.to_string()})).collect::<Vec<_>>()}}));
        assert_eq!(
            projected(&long, &["l[10]", "l[9]", "l[2]"]),
            item(json!({"l": {"L": [{"N": "2"}, {"N": "9"}, {"N": "10"}]}}))
        );
    }

    #[test]
    fn names_are_literal() {
        let it = item(json!({"a.b": {"S": "hi"}, "a": {"M": {"b": {"S": "yo"}, "c": {"S": "jo"}}}}));
        assert_eq!(projected(&it, &["a.b"]), item(json!({"a": {"M": {"b": {"S": "yo"}}}})));
        let literal = Path(vec![PathElement::Name("a.b".to_owned())]);
        assert_eq!(project(&it, &[literal]), item(json!({"a.b": {"S": "hi"}})));
    }

    #[test]
    fn overlapping_paths_take_the_whole() {
        // Validation refuses these; projection still answers sensibly.
        let it = item(json!({"a": {"M": {"b": {"N": "1"}, "c": {"N": "2"}}}}));
        let whole = item(json!({"a": {"M": {"b": {"N": "1"}, "c": {"N": "2"}}}}));
        assert_eq!(projected(&it, &["a", "a.b"]), whole);
        assert_eq!(projected(&it, &["a.b", "a"]), whole);
        assert_eq!(projected(&it, &["a", "a"]), whole);
        // A path starting with an index, or empty, picks nothing.
        assert_eq!(project(&it, &[Path(vec![PathElement::Index(0)]), Path(vec![])]), Item::new());
    }

    /// The Developer Guide's projection examples on its ProductCatalog item.
    #[test]
    fn developer_guide_examples() {
        let it = item(json!({
            "Id": {"N": "123"},
            "Title": {"S": "Bicycle 123"},
            "Description": {"S": "123 description"},
            "Price": {"N": "500"},
            "RelatedItems": {"L": [{"N": "341"}, {"N": "472"}, {"N": "649"}]},
            "ProductReviews": {"M": {
                "FiveStar": {"L": [
                    {"S": "Excellent! Can't recommend it highly enough! Buy it!"},
                    {"S": "Do yourself a favor and buy this."},
                ]},
                "OneStar": {"L": [{"S": "Terrible product! Do not buy this."}]},
            }},
        }));
        assert_eq!(
            projected(&it, &["Description", "RelatedItems[0]", "ProductReviews.FiveStar"]),
            item(json!({
                "Description": {"S": "123 description"},
                "RelatedItems": {"L": [{"N": "341"}]},
                "ProductReviews": {"M": {"FiveStar": {"L": [
                    {"S": "Excellent! Can't recommend it highly enough! Buy it!"},
                    {"S": "Do yourself a favor and buy this."},
                ]}}},
            }))
        );
    }
}
