//! Evaluation of condition, filter and key-condition expressions against an item, with the rules
//! DynamoDB applies at run time:
//!
//! - A missing attribute (or an item that does not exist) makes every comparison false except
//!   `<>`, which is true: a missing value is unequal to everything, even another missing value.
//! - Values of different types are never equal and never ordered: the comparison is false, not an
//!   error. `<`, `<=`, `>`, `>=` and BETWEEN order S by UTF-8 bytes, B by unsigned bytes and N by
//!   value; every other type is unordered, so they are false on it.
//! - `=`, `<>` and IN compare deeply, sets as sets (in any order), numbers by value.
//! - `size()` is a UTF-16 length for S (what Java's `String.length()` counts), a byte count for B
//!   and an element count for sets, lists and maps. It has no value for N, BOOL and NULL, which
//!   therefore behave like a missing attribute.
//!
//! Operands of the wrong type written in the expression itself (`a < :list`, `begins_with(a, :n)`,
//! `attribute_type(a, :unknown)`, BETWEEN bounds out of order) are ValidationExceptions that
//! DynamoDB raises when it validates the expression, before reading any item; that is the
//! parser's business. Here every type mismatch simply makes the condition false, so evaluation
//! itself never fails.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashSet;
use std::hash::Hash;

use super::ast::{Comparator, Condition, Operand, Path, PathElement};
use crate::error::ApiResult;
use crate::model::{AttributeValue, Item, Number};

/// Whether `condition` holds for `item` (`None`: the item does not exist).
pub fn evaluate(condition: &Condition, item: Option<&Item>) -> ApiResult<bool> {
    Ok(holds(condition, item))
}

/// The value at a document path, if every step of it exists: names step into maps, indexes into
/// lists, and any other step (or an index past the end) finds nothing.
pub fn resolve<'a>(item: &'a Item, path: &Path) -> Option<&'a AttributeValue> {
    let (PathElement::Name(first), rest) = path.0.split_first()? else {
        return None;
    };
    rest.iter().try_fold(item.get(first)?, |value, element| match (value, element) {
        (AttributeValue::M(map), PathElement::Name(key)) => map.get(key),
        (AttributeValue::L(list), PathElement::Index(index)) => list.get(*index as usize),
        _ => None,
    })
}

fn holds(condition: &Condition, item: Option<&Item>) -> bool {
    match condition {
        Condition::Compare(a, comparator, b) => compare(value(a, item), *comparator, value(b, item)),
        Condition::Between(a, low, high) => match (value(a, item), value(low, item), value(high, item)) {
            (Some(a), Some(low), Some(high)) => {
                matches!(order(&a, &low), Some(Ordering::Greater | Ordering::Equal))
                    && matches!(order(&a, &high), Some(Ordering::Less | Ordering::Equal))
            }
            _ => false,
        },
        Condition::In(a, candidates) => value(a, item)
            .is_some_and(|a| candidates.iter().any(|candidate| value(candidate, item).is_some_and(|c| equal(&a, &c)))),
        Condition::And(a, b) => holds(a, item) && holds(b, item),
        Condition::Or(a, b) => holds(a, item) || holds(b, item),
        Condition::Not(a) => !holds(a, item),
        Condition::AttributeExists(path) => item.and_then(|item| resolve(item, path)).is_some(),
        Condition::AttributeNotExists(path) => item.and_then(|item| resolve(item, path)).is_none(),
        Condition::AttributeType(path, expected) => {
            match (item.and_then(|item| resolve(item, path)), value(expected, item)) {
                (Some(found), Some(expected)) => {
                    matches!(&*expected, AttributeValue::S(name) if name == found.type_name())
                }
                _ => false,
            }
        }
        Condition::BeginsWith(a, prefix) => match (value(a, item), value(prefix, item)) {
            (Some(a), Some(prefix)) => match (&*a, &*prefix) {
                (AttributeValue::S(a), AttributeValue::S(prefix)) => a.starts_with(prefix.as_str()),
                (AttributeValue::B(a), AttributeValue::B(prefix)) => a.starts_with(prefix),
                _ => false,
            },
            _ => false,
        },
        Condition::Contains(a, b) => match (value(a, item), value(b, item)) {
            (Some(a), Some(b)) => contains(&a, &b),
            _ => false,
        },
    }
}

/// An operand's value; `None` when it refers to nothing (or to the size of something sizeless).
fn value<'a>(operand: &'a Operand, item: Option<&'a Item>) -> Option<Cow<'a, AttributeValue>> {
    match operand {
        Operand::Value(value) => Some(Cow::Borrowed(value)),
        Operand::Path(path) => item.and_then(|item| resolve(item, path)).map(Cow::Borrowed),
        Operand::Size(path) => {
            let size = size(item.and_then(|item| resolve(item, path))?)?;
            Some(Cow::Owned(AttributeValue::N(size)))
        }
    }
}

fn size(value: &AttributeValue) -> Option<Number> {
    let size = match value {
        AttributeValue::S(s) => s.encode_utf16().count(),
        AttributeValue::B(b) => b.len(),
        AttributeValue::Ss(set) => set.len(),
        AttributeValue::Ns(set) => set.len(),
        AttributeValue::Bs(set) => set.len(),
        AttributeValue::L(list) => list.len(),
        AttributeValue::M(map) => map.len(),
        AttributeValue::N(_) | AttributeValue::Bool(_) | AttributeValue::Null => return None,
    };
    Some(Number::from(size))
}

fn compare(a: Option<Cow<'_, AttributeValue>>, comparator: Comparator, b: Option<Cow<'_, AttributeValue>>) -> bool {
    let (Some(a), Some(b)) = (a, b) else {
        return comparator == Comparator::Ne;
    };
    let order = || order(&a, &b);
    match comparator {
        Comparator::Eq => equal(&a, &b),
        Comparator::Ne => !equal(&a, &b),
        Comparator::Lt => order() == Some(Ordering::Less),
        Comparator::Le => matches!(order(), Some(Ordering::Less | Ordering::Equal)),
        Comparator::Gt => order() == Some(Ordering::Greater),
        Comparator::Ge => matches!(order(), Some(Ordering::Greater | Ordering::Equal)),
    }
}

/// The order of two values of the same orderable type (S, N, B); `None` otherwise.
fn order(a: &AttributeValue, b: &AttributeValue) -> Option<Ordering> {
    match (a, b) {
        // Rust orders strings by their UTF-8 bytes, as DynamoDB does.
        (AttributeValue::S(a), AttributeValue::S(b)) => Some(a.cmp(b)),
        (AttributeValue::N(a), AttributeValue::N(b)) => Some(a.cmp(b)),
        (AttributeValue::B(a), AttributeValue::B(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

/// DynamoDB's equality: same type and same value, sets in any order, lists and maps element by
/// element with the same rule.
pub(super) fn equal(a: &AttributeValue, b: &AttributeValue) -> bool {
    match (a, b) {
        (AttributeValue::Ss(a), AttributeValue::Ss(b)) => same_set(a, b),
        (AttributeValue::Ns(a), AttributeValue::Ns(b)) => same_set(a, b),
        (AttributeValue::Bs(a), AttributeValue::Bs(b)) => same_set(a, b),
        (AttributeValue::L(a), AttributeValue::L(b)) => a.len() == b.len() && a.iter().zip(b).all(|(a, b)| equal(a, b)),
        // Both maps iterate in key order, so equal maps pair up entry by entry.
        (AttributeValue::M(a), AttributeValue::M(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|((ka, va), (kb, vb))| ka == kb && equal(va, vb))
        }
        _ => a == b,
    }
}

/// Set equality; sets never hold duplicates, so equal sizes and inclusion suffice.
fn same_set<T: Eq + Hash>(a: &[T], b: &[T]) -> bool {
    a.len() == b.len() && {
        let b = b.iter().collect::<HashSet<_>>();
        a.iter().all(|element| b.contains(element))
    }
}

/// `contains(a, b)`: a substring of S or B, an element of a set of b's type, or an element of a
/// list (of any type, compared deeply).
fn contains(a: &AttributeValue, b: &AttributeValue) -> bool {
    match (a, b) {
        (AttributeValue::S(a), AttributeValue::S(b)) => a.contains(b.as_str()),
        (AttributeValue::B(a), AttributeValue::B(b)) => {
            b.is_empty() || a.windows(b.len()).any(|window| window == b.as_slice())
        }
        (AttributeValue::Ss(set), AttributeValue::S(b)) => set.contains(b),
        (AttributeValue::Ns(set), AttributeValue::N(b)) => set.contains(b),
        (AttributeValue::Bs(set), AttributeValue::B(b)) => set.contains(b),
        (AttributeValue::L(list), b) => list.iter().any(|element| equal(element, b)),
        _ => false,
    }
}

/// Test helpers shared by the expression modules' tests: paths written the way expressions
/// write them, values and items written as DynamoDB JSON.
#[cfg(test)]
pub(super) mod test_support {
    use serde_json::Value;

    use super::{Path, PathElement};
    use crate::model::{AttributeValue, Item, item_from_json};

    /// `"a.b[2][0].c"` as a path (no `#name` substitution: names are taken literally).
    pub fn path(text: &str) -> Path {
        let mut elements = Vec::new();
        for part in text.split('.') {
            let (name, indexes) = part.split_once('[').map_or((part, ""), |(n, i)| (n, i));
            elements.push(PathElement::Name(name.to_owned()));
            for index in indexes.split('[').filter(|i| !i.is_empty()) {
                elements.push(PathElement::Index(index.trim_end_matches(']').parse().unwrap()));
            }
        }
        Path(elements)
    }

    pub fn value(json: Value) -> AttributeValue {
        AttributeValue::from_json(&json).unwrap()
    }

    pub fn item(json: Value) -> Item {
        item_from_json(&json).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::test_support::{item, path, value};
    use super::*;

    fn p(text: &str) -> Operand {
        Operand::Path(path(text))
    }

    fn v(json: serde_json::Value) -> Operand {
        Operand::Value(value(json))
    }

    fn size_of(text: &str) -> Operand {
        Operand::Size(path(text))
    }

    fn cmp(a: Operand, comparator: Comparator, b: Operand) -> Condition {
        Condition::Compare(a, comparator, b)
    }

    fn check(condition: &Condition, item: &Item) -> bool {
        evaluate(condition, Some(item)).unwrap()
    }

    /// An item with one attribute of every type, plus nesting.
    fn sample() -> Item {
        item(json!({
            "s": {"S": "hello"},
            "n": {"N": "5"},
            "b": {"B": "aGkgdGhlcmU="},
            "t": {"BOOL": true},
            "z": {"NULL": true},
            "ss": {"SS": ["dog", "cat", "mouse"]},
            "ns": {"NS": ["2", "4", "7"]},
            "bs": {"BS": ["AQ==", "Ag=="]},
            "l": {"L": [{"N": "2"}, {"S": "dog"}, {"N": "7"}, {"NS": ["1", "2"]}, {"L": [{"N": "3"}]}]},
            "m": {"M": {"x": {"N": "1"}, "y": {"L": [{"N": "-1"}, {"N": "2"}, {"N": "0"}]},
                        "deep": {"M": {"er": {"S": "bottom"}}}}},
            "e": {"S": ""},
        }))
    }

    #[test]
    fn resolves_document_paths() {
        let it = sample();
        assert_eq!(resolve(&it, &path("s")), Some(&value(json!({"S": "hello"}))));
        assert_eq!(resolve(&it, &path("m.x")), Some(&value(json!({"N": "1"}))));
        assert_eq!(resolve(&it, &path("m.y[1]")), Some(&value(json!({"N": "2"}))));
        assert_eq!(resolve(&it, &path("m.deep.er")), Some(&value(json!({"S": "bottom"}))));
        assert_eq!(resolve(&it, &path("l[4][0]")), Some(&value(json!({"N": "3"}))));
        for missing in
            ["q", "m.q", "m.y[3]", "m.y[4294967295]", "s.x", "s[0]", "m[0]", "l.x", "m.x.y", "l[1][0]", "q.r.s"]
        {
            assert_eq!(resolve(&it, &path(missing)), None, "{missing}");
        }
        // A path must start with a name; an empty one finds nothing.
        assert_eq!(resolve(&it, &Path(vec![PathElement::Index(0)])), None);
        assert_eq!(resolve(&it, &Path(vec![])), None);
    }

    #[test]
    fn equality_is_deep_and_typed() {
        let it = sample();
        for (attr, same) in [
            ("s", json!({"S": "hello"})),
            ("n", json!({"N": "5.00"})),
            ("b", json!({"B": "aGkgdGhlcmU="})),
            ("t", json!({"BOOL": true})),
            ("z", json!({"NULL": true})),
            ("ss", json!({"SS": ["mouse", "dog", "cat"]})),
            ("ns", json!({"NS": ["7", "2.0", "4"]})),
            ("bs", json!({"BS": ["Ag==", "AQ=="]})),
            ("l", json!({"L": [{"N": "2"}, {"S": "dog"}, {"N": "7"}, {"NS": ["2", "1"]}, {"L": [{"N": "3"}]}]})),
            (
                "m",
                json!({"M": {"deep": {"M": {"er": {"S": "bottom"}}}, "x": {"N": "1.0"},
                               "y": {"L": [{"N": "-1"}, {"N": "2"}, {"N": "0"}]}}}),
            ),
            ("e", json!({"S": ""})),
        ] {
            assert!(check(&cmp(p(attr), Comparator::Eq, v(same.clone())), &it), "{attr} = {same}");
            assert!(!check(&cmp(p(attr), Comparator::Ne, v(same.clone())), &it), "{attr} <> {same}");
            assert!(check(&cmp(v(same.clone()), Comparator::Eq, p(attr)), &it), "{same} = {attr}");
            assert!(check(&Condition::In(p(attr), vec![v(json!({"S": "x"})), v(same)]), &it));
        }
        for (attr, other) in [
            ("s", json!({"S": "hellO"})),
            ("n", json!({"S": "5"})),
            ("s", json!({"SS": ["hello"]})),
            ("n", json!({"NS": ["5"]})),
            ("b", json!({"S": "hi there"})),
            ("t", json!({"BOOL": false})),
            ("t", json!({"N": "1"})),
            ("z", json!({"BOOL": false})),
            ("ss", json!({"SS": ["dog", "cat"]})),
            ("ss", json!({"SS": ["dog", "cat", "rat"]})),
            ("ns", json!({"SS": ["2", "4", "7"]})),
            ("l", json!({"L": [{"N": "2"}, {"S": "dog"}, {"N": "7"}, {"NS": ["1", "2"]}]})),
            ("l", json!({"L": [{"S": "dog"}, {"N": "2"}, {"N": "7"}, {"NS": ["1", "2"]}, {"L": [{"N": "3"}]}]})),
            ("m", json!({"M": {"x": {"N": "1"}}})),
            ("e", json!({"NULL": true})),
        ] {
            assert!(!check(&cmp(p(attr), Comparator::Eq, v(other.clone())), &it), "{attr} = {other}");
            assert!(check(&cmp(p(attr), Comparator::Ne, v(other.clone())), &it), "{attr} <> {other}");
            assert!(!check(&Condition::In(p(attr), vec![v(other)]), &it));
        }
        // Two attributes of the item.
        let two = item(json!({"a": {"SS": ["x", "y"]}, "b": {"SS": ["y", "x"]}, "c": {"N": "1"}}));
        assert!(check(&cmp(p("a"), Comparator::Eq, p("b")), &two));
        assert!(!check(&cmp(p("a"), Comparator::Eq, p("c")), &two));
    }

    #[test]
    fn missing_attributes_fail_every_comparison_but_not_equal() {
        let it = sample();
        let one = || v(json!({"N": "1"}));
        for comparator in [Comparator::Eq, Comparator::Lt, Comparator::Le, Comparator::Gt, Comparator::Ge] {
            assert!(!check(&cmp(p("q"), comparator, one()), &it), "{comparator:?}");
            assert!(!check(&cmp(one(), comparator, p("q")), &it), "{comparator:?}");
            assert!(!check(&cmp(p("q"), comparator, p("r")), &it), "{comparator:?}");
            assert!(!check(&cmp(p("m.q"), comparator, p("m.y[100]")), &it), "{comparator:?}");
        }
        assert!(check(&cmp(p("q"), Comparator::Ne, one()), &it));
        assert!(check(&cmp(one(), Comparator::Ne, p("q")), &it));
        // Two missing attributes are not equal to each other either.
        assert!(check(&cmp(p("q"), Comparator::Ne, p("r")), &it));
        assert!(check(&cmp(p("q"), Comparator::Ne, p("q")), &it));
        assert!(!check(&cmp(p("q"), Comparator::Eq, p("q")), &it));
        assert!(!check(&Condition::Between(p("q"), one(), one()), &it));
        assert!(!check(&Condition::Between(p("q"), p("r"), p("x")), &it));
        assert!(!check(&Condition::Between(p("n"), p("r"), one()), &it));
        assert!(!check(&Condition::In(p("q"), vec![one(), p("r")]), &it));
        assert!(!check(&Condition::In(p("n"), vec![p("r")]), &it));
        assert!(!check(&Condition::BeginsWith(p("q"), v(json!({"S": ""}))), &it));
        assert!(!check(&Condition::Contains(p("q"), v(json!({"S": ""}))), &it));
        assert!(!check(&Condition::Contains(p("l"), p("q")), &it));
        assert!(!check(&Condition::AttributeType(path("q"), v(json!({"S": "S"}))), &it));
    }

    #[test]
    fn a_missing_item_has_no_attributes() {
        let one = || v(json!({"N": "1"}));
        let none = |condition: &Condition| evaluate(condition, None).unwrap();
        assert!(!none(&cmp(p("a"), Comparator::Eq, one())));
        assert!(none(&cmp(p("a"), Comparator::Ne, one())));
        assert!(!none(&Condition::AttributeExists(path("a"))));
        assert!(none(&Condition::AttributeNotExists(path("a"))));
        assert!(none(&Condition::Not(Box::new(Condition::AttributeExists(path("a.b[1]"))))));
        assert!(!none(&cmp(size_of("a"), Comparator::Ge, v(json!({"N": "0"})))));
        // Constants alone still compare.
        assert!(none(&cmp(one(), Comparator::Eq, one())));
        assert!(none(&cmp(one(), Comparator::Lt, v(json!({"N": "2"})))));
    }

    #[test]
    fn orders_strings_by_utf8_bytes_binaries_unsigned_numbers_by_value() {
        let it = item(json!({
            "s": {"S": "abc"}, "u": {"S": "\u{e9}"}, "k": {"S": "\u{ff61}"}, "g": {"S": "\u{1f600}"},
            "n": {"N": "-0.5"}, "big": {"N": "1E125"}, "b": {"B": "gA=="}, "b2": {"B": "fw=="},
        }));
        let lt = |a, b| check(&cmp(a, Comparator::Lt, b), &it);
        assert!(lt(p("s"), v(json!({"S": "abd"}))));
        assert!(lt(p("s"), v(json!({"S": "abc\u{0}"}))));
        assert!(lt(v(json!({"S": "ab"})), p("s")));
        assert!(!lt(p("s"), v(json!({"S": "ABC"}))));
        // U+FF61 (EF BD A1) sorts before U+1F600 (F0 9F 98 80) by UTF-8 bytes, though its UTF-16
        // code unit is the larger one.
        assert!(lt(p("k"), p("g")));
        assert!(lt(p("u"), p("k")));
        assert!(lt(p("n"), v(json!({"N": "0"}))));
        assert!(lt(v(json!({"N": "-1"})), p("n")));
        assert!(lt(v(json!({"N": "99999999999999999999999999999999999999"})), p("big")));
        // 0x7f < 0x80 unsigned.
        assert!(lt(p("b2"), p("b")));
        assert!(lt(p("b"), v(json!({"B": "gAA="}))));
        for (comparator, expected) in [
            (Comparator::Lt, false),
            (Comparator::Le, true),
            (Comparator::Gt, false),
            (Comparator::Ge, true),
            (Comparator::Eq, true),
            (Comparator::Ne, false),
        ] {
            assert_eq!(check(&cmp(p("n"), comparator, v(json!({"N": "-5e-1"}))), &it), expected);
            assert_eq!(check(&cmp(p("s"), comparator, v(json!({"S": "abc"}))), &it), expected);
            assert_eq!(check(&cmp(p("b"), comparator, v(json!({"B": "gA=="}))), &it), expected);
        }
        assert!(check(&cmp(p("s"), Comparator::Gt, v(json!({"S": "abb"}))), &it));
        assert!(check(&cmp(p("s"), Comparator::Ge, v(json!({"S": "ab"}))), &it));
        assert!(check(&cmp(p("s"), Comparator::Le, v(json!({"S": "b"}))), &it));
    }

    #[test]
    fn ordering_other_types_or_mixed_types_is_false() {
        let it = sample();
        for comparator in [Comparator::Lt, Comparator::Le, Comparator::Gt, Comparator::Ge] {
            for (a, b) in [
                (p("n"), v(json!({"S": "17"}))),
                (p("s"), v(json!({"B": "aGVsbG8="}))),
                (p("l"), v(json!({"N": "1"}))),
                (v(json!({"N": "1"})), p("l")),
                (p("t"), p("t")),
                (p("z"), p("z")),
                (p("ss"), p("ss")),
                (p("l"), p("l")),
                (p("m"), p("m")),
            ] {
                assert!(!check(&cmp(a, comparator, b), &it), "{comparator:?}");
            }
        }
    }

    #[test]
    fn between_is_inclusive_and_typed() {
        let it = sample();
        let n = |x: &str| v(json!({"N": x}));
        let s = |x: &str| v(json!({"S": x}));
        assert!(check(&Condition::Between(p("n"), n("0"), n("7")), &it));
        assert!(check(&Condition::Between(p("n"), n("5"), n("5")), &it));
        assert!(!check(&Condition::Between(p("n"), n("5.1"), n("7")), &it));
        assert!(!check(&Condition::Between(p("n"), n("0"), n("4.9")), &it));
        assert!(check(&Condition::Between(p("s"), s("aardvark"), s("hello")), &it));
        assert!(!check(&Condition::Between(p("s"), s("hello!"), s("zebra")), &it));
        assert!(check(&Condition::Between(p("b"), v(json!({"B": "aA=="})), v(json!({"B": "aQ=="}))), &it));
        // Different types, or bounds from the item in the wrong order: simply false.
        assert!(!check(&Condition::Between(p("n"), s("0"), s("7")), &it));
        assert!(!check(&Condition::Between(p("n"), n("0"), s("7")), &it));
        assert!(!check(&Condition::Between(p("n"), p("m.x"), n("0")), &it));
        assert!(!check(&Condition::Between(p("l"), p("l"), p("l")), &it));
        // All three operands may be attributes.
        assert!(check(&Condition::Between(p("m.x"), p("m.y[0]"), p("m.y[1]")), &it));
    }

    #[test]
    fn in_accepts_mixed_types() {
        let it = sample();
        let candidates = vec![v(json!({"S": "dog"})), p("q"), v(json!({"N": "5"}))];
        assert!(check(&Condition::In(p("n"), candidates.clone()), &it));
        assert!(!check(&Condition::In(p("s"), candidates.clone()), &it));
        assert!(check(&Condition::In(p("l[1]"), candidates), &it));
        assert!(check(&Condition::In(p("m.x"), vec![p("m.y[2]"), p("m.y[0]"), p("t"), p("m.x")]), &it));
    }

    #[test]
    fn boolean_logic() {
        let it = sample();
        let yes = || cmp(p("n"), Comparator::Eq, v(json!({"N": "5"})));
        let no = || cmp(p("n"), Comparator::Eq, v(json!({"N": "6"})));
        let and = |a, b| Condition::And(Box::new(a), Box::new(b));
        let or = |a, b| Condition::Or(Box::new(a), Box::new(b));
        let not = |a| Condition::Not(Box::new(a));
        assert!(check(&and(yes(), yes()), &it));
        assert!(!check(&and(yes(), no()), &it));
        assert!(!check(&and(no(), yes()), &it));
        assert!(check(&or(no(), yes()), &it));
        assert!(!check(&or(no(), no()), &it));
        assert!(check(&not(no()), &it));
        assert!(check(&not(not(not(not(yes())))), &it));
        // a < b OR c < b AND b < c, AND binding tighter (the parser builds this shape).
        assert!(check(&or(yes(), and(no(), yes())), &it));
        // NOT of a missing-attribute comparison is true.
        assert!(check(&not(cmp(p("q"), Comparator::Eq, p("n"))), &it));
        // Deep nesting does not trouble evaluation.
        let mut deep = yes();
        for _ in 0..500 {
            deep = not(not(deep));
        }
        assert!(check(&deep, &it));
    }

    #[test]
    fn existence() {
        let it = sample();
        for present in ["s", "z", "m.x", "m.y[2]", "l[3]", "m.deep.er", "e"] {
            assert!(check(&Condition::AttributeExists(path(present)), &it), "{present}");
            assert!(!check(&Condition::AttributeNotExists(path(present)), &it), "{present}");
        }
        for absent in ["q", "m.q", "m.y[3]", "s.x", "l.x", "m[0]"] {
            assert!(!check(&Condition::AttributeExists(path(absent)), &it), "{absent}");
            assert!(check(&Condition::AttributeNotExists(path(absent)), &it), "{absent}");
        }
    }

    #[test]
    fn attribute_type_names_every_type() {
        let it = sample();
        let all = ["S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS", "L", "M"];
        for (attr, expected) in [
            ("s", "S"),
            ("n", "N"),
            ("b", "B"),
            ("t", "BOOL"),
            ("z", "NULL"),
            ("ss", "SS"),
            ("ns", "NS"),
            ("bs", "BS"),
            ("l", "L"),
            ("m", "M"),
            ("m.y", "L"),
            ("l[3]", "NS"),
        ] {
            for name in all {
                let condition = Condition::AttributeType(path(attr), v(json!({"S": name})));
                assert_eq!(check(&condition, &it), name == expected, "{attr} {name}");
            }
        }
        // The type name must be an S naming the type exactly.
        assert!(!check(&Condition::AttributeType(path("s"), v(json!({"S": "s"}))), &it));
        assert!(!check(&Condition::AttributeType(path("ss"), v(json!({"SS": ["SS"]}))), &it));
    }

    #[test]
    fn begins_with_strings_and_binaries() {
        let it = sample();
        let begins = |a, b| check(&Condition::BeginsWith(a, b), &it);
        assert!(begins(p("s"), v(json!({"S": "hell"}))));
        assert!(begins(p("s"), v(json!({"S": "hello"}))));
        assert!(begins(p("s"), v(json!({"S": ""}))));
        assert!(!begins(p("s"), v(json!({"S": "hello!"}))));
        assert!(!begins(p("s"), v(json!({"S": "ello"}))));
        assert!(!begins(p("s"), v(json!({"S": "Hell"}))));
        assert!(begins(p("b"), v(json!({"B": "aGk="}))));
        assert!(!begins(p("b"), v(json!({"B": "aGVy"}))));
        // Mismatched types, or values that are neither S nor B, are false.
        assert!(!begins(p("s"), v(json!({"B": "aGVs"}))));
        assert!(!begins(p("n"), v(json!({"S": "5"}))));
        assert!(!begins(p("ss"), v(json!({"S": "dog"}))));
        assert!(!begins(p("l"), v(json!({"N": "2"}))));
        // Either operand may come from the item.
        assert!(begins(v(json!({"S": "hellohi"})), p("s")));
        assert!(begins(p("m.deep.er"), p("e")));
    }

    #[test]
    fn contains_substrings_and_members() {
        let it = sample();
        let contains = |a, b| check(&Condition::Contains(a, b), &it);
        assert!(contains(p("s"), v(json!({"S": "ell"}))));
        assert!(contains(p("s"), v(json!({"S": ""}))));
        assert!(!contains(p("s"), v(json!({"S": "elo"}))));
        assert!(contains(p("b"), v(json!({"B": "aGVyZQ=="}))));
        assert!(contains(p("b"), v(json!({"B": ""}))));
        assert!(!contains(p("b"), v(json!({"B": "ZG9n"}))));
        assert!(contains(p("ss"), v(json!({"S": "cat"}))));
        assert!(!contains(p("ss"), v(json!({"S": "ca"}))));
        assert!(contains(p("ns"), v(json!({"N": "4.0"}))));
        assert!(!contains(p("ns"), v(json!({"S": "4"}))));
        assert!(contains(p("bs"), v(json!({"B": "Ag=="}))));
        assert!(!contains(p("bs"), v(json!({"B": "Aw=="}))));
        // Lists hold anything, compared deeply.
        assert!(contains(p("l"), v(json!({"N": "7"}))));
        assert!(contains(p("l"), v(json!({"S": "dog"}))));
        assert!(contains(p("l"), v(json!({"NS": ["2", "1"]}))));
        assert!(contains(p("l"), v(json!({"L": [{"N": "3"}]}))));
        assert!(!contains(p("l"), v(json!({"S": "7"}))));
        assert!(!contains(p("l"), v(json!({"S": "do"}))));
        // Sets are not searched for subsets, nor strings in numbers, nor anything in maps.
        assert!(!contains(p("ss"), v(json!({"SS": ["cat"]}))));
        assert!(!contains(p("b"), v(json!({"BS": ["aGk="]}))));
        assert!(!contains(p("n"), v(json!({"N": "5"}))));
        assert!(!contains(p("m"), v(json!({"S": "x"}))));
        assert!(!contains(p("s"), v(json!({"B": "ZWxs"}))));
        // The needle may come from the item.
        assert!(contains(p("ss"), p("l[1]")));
        assert!(contains(p("l"), p("m.y[1]")));
    }

    #[test]
    fn size_of_each_type() {
        let it = item(json!({
            "s": {"S": "hello"},
            "u": {"S": "ab\u{ff}"},
            "e": {"S": "\u{e9}\u{1d11e}"},
            "b": {"B": "aGkgdGhlcmU="},
            "ss": {"SS": ["a", "b", "c"]},
            "ns": {"NS": ["2", "4", "7"]},
            "bs": {"BS": ["AQ=="]},
            "l": {"L": [{"N": "2"}, {"S": "dog"}, {"N": "7"}]},
            "m": {"M": {"x": {"N": "2"}, "y": {"M": {"m": {"N": "3"}, "n": {"N": "4"}}}}},
            "empty": {"L": []},
            "n": {"N": "5"}, "t": {"BOOL": true}, "z": {"NULL": true},
        }));
        let size_is =
            |attr: &str, expected: &str| check(&cmp(size_of(attr), Comparator::Eq, v(json!({"N": expected}))), &it);
        // S counts UTF-16 code units: "é𝄞" is 1 + 2 (a surrogate pair), not 6 UTF-8 bytes.
        for (attr, size) in [
            ("s", "5"),
            ("u", "3"),
            ("e", "3"),
            ("b", "8"),
            ("ss", "3"),
            ("ns", "3"),
            ("bs", "1"),
            ("l", "3"),
            ("m", "2"),
            ("m.y", "2"),
            ("empty", "0"),
        ] {
            assert!(size_is(attr, size), "size({attr}) = {size}");
            assert!(!size_is(attr, "4"), "size({attr}) <> 4");
        }
        // N, BOOL and NULL have no size: every comparison fails.
        for attr in ["n", "t", "z", "q"] {
            for size in ["0", "1", "5"] {
                assert!(!size_is(attr, size), "size({attr}) = {size}");
            }
            assert!(!check(&cmp(size_of(attr), Comparator::Ge, v(json!({"N": "0"}))), &it));
        }
        // Compared with a non-number it is just false; with item attributes it works.
        assert!(!check(&cmp(size_of("s"), Comparator::Eq, v(json!({"S": "5"}))), &it));
        let it2 = item(json!({"a": {"S": "hello"}, "f": {"N": "5"}}));
        assert!(check(&cmp(size_of("a"), Comparator::Eq, p("f")), &it2));
        for (comparator, bound, expected) in [
            (Comparator::Ne, "4", true),
            (Comparator::Lt, "7", true),
            (Comparator::Le, "5", true),
            (Comparator::Gt, "2", true),
            (Comparator::Ge, "6", false),
        ] {
            assert_eq!(check(&cmp(size_of("a"), comparator, v(json!({"N": bound}))), &it2), expected);
        }
        assert!(check(&Condition::Between(size_of("a"), v(json!({"N": "1"})), v(json!({"N": "10"}))), &it2));
        assert!(check(&Condition::In(size_of("a"), vec![v(json!({"N": "5"}))]), &it2));
    }

    /// The Developer Guide's examples ("Condition and filter expressions, operators, and
    /// functions"), on its ProductCatalog item.
    #[test]
    fn developer_guide_examples() {
        let product = item(json!({
            "Id": {"N": "456"},
            "ProductCategory": {"S": "Sporting Goods"},
            "Price": {"N": "650"},
            "Color": {"SS": ["Red", "Black"]},
            "Brand": {"S": "Acme"},
            "Pictures": {"M": {
                "FrontView": {"S": "http://example.com/products/456_front.jpg"},
                "SideView": {"S": "http://example.com/products/456_left_side.jpg"},
            }},
            "ProductReviews": {"M": {
                "OneStar": {"L": [{"S": "Terrible product!"}]},
                "FiveStar": {"L": [{"S": "Excellent product"}]},
            }},
            "VideoClip": {"S": "http://example.com/products/456_video"},
        }));
        let n = |x: &str| v(json!({"N": x}));
        let s = |x: &str| v(json!({"S": x}));
        // attribute_not_exists (Price)
        assert!(!check(&Condition::AttributeNotExists(path("Price")), &product));
        // attribute_exists (#Pictures.#SideView)
        assert!(check(&Condition::AttributeExists(path("Pictures.SideView")), &product));
        // attribute_type (ProductReviews.FiveStar, :v_sub) with :v_sub = L
        assert!(check(&Condition::AttributeType(path("ProductReviews.FiveStar"), s("L")), &product));
        // begins_with (Pictures.FrontView, :v_sub) with :v_sub = http://
        assert!(check(&Condition::BeginsWith(p("Pictures.FrontView"), s("http://")), &product));
        // contains (Color, :v_sub) with :v_sub = Red
        assert!(check(&Condition::Contains(p("Color"), s("Red")), &product));
        // size (VideoClip) > :v_sub with :v_sub = 64: the URL is 37 characters.
        assert!(!check(&cmp(size_of("VideoClip"), Comparator::Gt, n("64")), &product));
        assert!(check(&cmp(size_of("VideoClip"), Comparator::Eq, n("37")), &product));
        // Price BETWEEN :lo AND :hi, Price IN (...), ProductCategory IN (...)
        assert!(check(&Condition::Between(p("Price"), n("500"), n("750")), &product));
        assert!(check(
            &Condition::In(p("ProductCategory"), vec![s("Sporting Goods"), s("Gardening Supplies")]),
            &product
        ));
        // (ProductCategory IN (:cat1, :cat2)) and (Price between :lo and :hi)
        let both = Condition::And(
            Box::new(Condition::In(p("ProductCategory"), vec![s("Sporting Goods"), s("Gardening Supplies")])),
            Box::new(Condition::Between(p("Price"), n("500"), n("600"))),
        );
        assert!(!check(&both, &product));
        // Price <= :p with :p = 500 fails; attribute_not_exists(Id) fails (conditional put).
        assert!(!check(&cmp(p("Price"), Comparator::Le, n("500")), &product));
        assert!(evaluate(&Condition::AttributeNotExists(path("Id")), None).unwrap());
    }
}
