//! Applying an update expression (or translated `AttributeUpdates`) to an item.
//!
//! DynamoDB applies the whole update to the item as it was before the update: every SET right-hand
//! side reads the old item, and every list index means a position in the old list (`REMOVE a[1]
//! SET a[3] = :v` sets the element that was at 3). So the update is first planned against the
//! untouched item, which also finds every error before anything changes, and then carried out:
//! replacements in place, then appends (elements SET or ADDed past a list's end go to its end,
//! in index order), then removals (from the last position backwards, so earlier ones stay put).
//!
//! Overlapping and conflicting paths (`SET a = :v REMOVE a`, `SET a.b = :v, a[1] = :w`), operand
//! types written in the expression itself (`ADD a :string`, `SET a = :list + b`) and updates of
//! key attributes are rejected when the request is validated, before the item is read.

use std::collections::HashSet;
use std::hash::Hash;

use super::ast::{Path, PathElement, SetOperand, SetValue, Update};
use super::eval::resolve;
use crate::error::{ApiError, ApiResult};
use crate::model::{AttributeValue, Item};

const INVALID_PATH: &str = "The document path provided in the update expression is invalid for update";
const WRONG_TYPE: &str = "An operand in the update expression has an incorrect data type";
const MISSING: &str = "The provided expression refers to an attribute that does not exist in the item";

/// Applies `update` to `item` (for an item that does not exist yet, its key attributes alone).
/// Every error is found before the item changes, as long as no two paths overlap (validation
/// rejects those); with overlapping paths it may fail half-way, but never panics.
pub fn apply_update(update: &Update, item: &mut Item) -> ApiResult<()> {
    let plan = Plan::new(update, item)?;
    plan.carry_out(item)
}

/// Every path an update writes or removes, for ReturnValues UPDATED_OLD and UPDATED_NEW (which
/// project the item before, or after, the update onto them).
pub fn updated_paths(update: &Update) -> Vec<Path> {
    let set = update.set.iter().map(|(path, _)| path);
    let add = update.add.iter().map(|(path, _)| path);
    let delete = update.delete.iter().map(|(path, _)| path);
    set.chain(&update.remove).chain(add).chain(delete).cloned().collect()
}

/// What an update does, worked out against the item before it changes.
#[derive(Default)]
struct Plan<'u> {
    /// Values for existing list elements and for map keys, present or not.
    puts: Vec<(&'u Path, AttributeValue)>,
    /// Values for list positions past the end.
    appends: Vec<(&'u Path, AttributeValue)>,
    /// Existing elements to remove.
    removals: Vec<&'u Path>,
}

/// What a path designates in the item before the update.
enum Target<'a> {
    Present(&'a AttributeValue),
    /// A key missing from a map.
    Absent,
    /// A position past the end of a list.
    PastEnd,
}

impl<'u> Plan<'u> {
    fn new(update: &'u Update, item: &Item) -> ApiResult<Plan<'u>> {
        // Operand types first: DynamoDB checks them with the expression, before the item.
        for (_, value) in &update.add {
            add_operand(value)?;
        }
        for (_, value) in &update.delete {
            delete_operand(value)?;
        }
        // Then all right-hand sides, against the old item: their errors come before any
        // document path's.
        let values = update.set.iter().map(|(_, value)| set_value(value, item)).collect::<ApiResult<Vec<_>>>()?;
        let mut plan = Plan::default();
        for ((path, _), value) in update.set.iter().zip(values) {
            plan.write(path, target(item, path)?, value);
        }
        for path in &update.remove {
            if let Target::Present(_) = target(item, path)? {
                plan.removals.push(path);
            }
        }
        for (path, value) in &update.add {
            let target = target(item, path)?;
            let existing = match target {
                Target::Present(existing) => Some(existing),
                Target::Absent | Target::PastEnd => None,
            };
            plan.write(path, target, add(existing, value)?);
        }
        for (path, value) in &update.delete {
            // Nothing to delete from a missing attribute.
            if let Target::Present(existing) = target(item, path)? {
                match difference(existing, value)? {
                    Some(rest) => plan.puts.push((path, rest)),
                    // An emptied set is no set: the attribute goes.
                    None => plan.removals.push(path),
                }
            }
        }
        Ok(plan)
    }

    fn write(&mut self, path: &'u Path, target: Target<'_>, value: AttributeValue) {
        match target {
            Target::PastEnd => self.appends.push((path, value)),
            Target::Present(_) | Target::Absent => self.puts.push((path, value)),
        }
    }

    fn carry_out(mut self, item: &mut Item) -> ApiResult<()> {
        // Every path was checked against the item, and the steps below leave each other's
        // containers in place, so they all find their parents.
        let invalid = || ApiError::validation(INVALID_PATH);
        for (path, value) in self.puts {
            match parent_mut(item, path).ok_or_else(invalid)? {
                (Container::Map(map), PathElement::Name(key)) => {
                    map.insert(key.clone(), value);
                }
                (Container::List(list), PathElement::Index(index)) => {
                    let element = list.get_mut(*index as usize).ok_or_else(invalid)?;
                    *element = value;
                }
                _ => return Err(invalid()),
            }
        }
        // Sorting by path puts each list's appends together, in index order.
        self.appends.sort_by_key(|(path, _)| *path);
        for (path, value) in self.appends {
            match parent_mut(item, path).ok_or_else(invalid)? {
                (Container::List(list), PathElement::Index(_)) => list.push(value),
                _ => return Err(invalid()),
            }
        }
        // Last positions first: removing an element shifts only those after it, and any path
        // through a later position of the same list sorts, and so goes, before it.
        self.removals.sort_by(|a, b| b.cmp(a));
        for path in self.removals {
            match parent_mut(item, path).ok_or_else(invalid)? {
                (Container::Map(map), PathElement::Name(key)) => {
                    map.remove(key);
                }
                (Container::List(list), PathElement::Index(index)) => {
                    let index = *index as usize;
                    if index < list.len() {
                        list.remove(index);
                    }
                }
                _ => return Err(invalid()),
            }
        }
        Ok(())
    }
}

/// Finds what `path` designates. Every step but the last must exist and be a map (for a name)
/// or a list (for an index); the last may be missing.
fn target<'a>(item: &'a Item, path: &Path) -> ApiResult<Target<'a>> {
    let invalid = || ApiError::validation(INVALID_PATH);
    let (last, parents) = path.0.split_last().ok_or_else(invalid)?;
    let mut container: Container<&Item, &Vec<AttributeValue>> = Container::Map(item);
    for element in parents {
        let child = match (container, element) {
            (Container::Map(map), PathElement::Name(key)) => map.get(key),
            (Container::List(list), PathElement::Index(index)) => list.get(*index as usize),
            _ => None,
        };
        container = match child.ok_or_else(invalid)? {
            AttributeValue::M(map) => Container::Map(map),
            AttributeValue::L(list) => Container::List(list),
            _ => return Err(invalid()),
        };
    }
    Ok(match (container, last) {
        (Container::Map(map), PathElement::Name(key)) => map.get(key).map_or(Target::Absent, Target::Present),
        (Container::List(list), PathElement::Index(index)) => {
            list.get(*index as usize).map_or(Target::PastEnd, Target::Present)
        }
        _ => return Err(invalid()),
    })
}

/// A map (an item's top level included) or a list.
enum Container<M, L> {
    Map(M),
    List(L),
}

/// The container holding the last step of `path`, with that step.
fn parent_mut<'a, 'p>(
    item: &'a mut Item,
    path: &'p Path,
) -> Option<(Container<&'a mut Item, &'a mut Vec<AttributeValue>>, &'p PathElement)> {
    let (last, parents) = path.0.split_last()?;
    let mut container: Container<&mut Item, &mut Vec<AttributeValue>> = Container::Map(item);
    for element in parents {
        let child = match (container, element) {
            (Container::Map(map), PathElement::Name(key)) => map.get_mut(key)?,
            (Container::List(list), PathElement::Index(index)) => list.get_mut(*index as usize)?,
            _ => return None,
        };
        container = match child {
            AttributeValue::M(map) => Container::Map(map),
            AttributeValue::L(list) => Container::List(list),
            _ => return None,
        };
    }
    Some((container, last))
}

fn set_value(value: &SetValue, item: &Item) -> ApiResult<AttributeValue> {
    let number = |operand| match set_operand(operand, item)? {
        AttributeValue::N(n) => Ok(n),
        _ => Err(ApiError::validation(WRONG_TYPE)),
    };
    match value {
        SetValue::Operand(operand) => set_operand(operand, item),
        SetValue::Plus(a, b) => Ok(AttributeValue::N(number(a)?.add(&number(b)?)?)),
        SetValue::Minus(a, b) => Ok(AttributeValue::N(number(a)?.sub(&number(b)?)?)),
    }
}

fn set_operand(operand: &SetOperand, item: &Item) -> ApiResult<AttributeValue> {
    match operand {
        SetOperand::Path(path) => resolve(item, path).cloned().ok_or_else(|| ApiError::validation(MISSING)),
        SetOperand::Value(value) => Ok(value.clone()),
        SetOperand::IfNotExists(path, otherwise) => match resolve(item, path) {
            Some(value) => Ok(value.clone()),
            None => set_operand(otherwise, item),
        },
        SetOperand::ListAppend(a, b) => {
            let list = |operand| match set_operand(operand, item)? {
                AttributeValue::L(list) => Ok(list),
                _ => Err(ApiError::validation(WRONG_TYPE)),
            };
            let mut joined = list(a)?;
            joined.extend(list(b)?);
            Ok(AttributeValue::L(joined))
        }
    }
}

/// ADD takes numbers and sets (`AttributeUpdates`' ADD of a list arrives as a list_append).
fn add_operand(value: &AttributeValue) -> ApiResult<()> {
    match value {
        AttributeValue::N(_) | AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_) => Ok(()),
        _ => Err(incorrect_operand("ADD", value)),
    }
}

/// DELETE takes sets.
fn delete_operand(value: &AttributeValue) -> ApiResult<()> {
    match value {
        AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_) => Ok(()),
        _ => Err(incorrect_operand("DELETE", value)),
    }
}

/// ADD: a number to a number, a set into a set of the same type; a missing target takes the
/// value as it is (as if added to 0 or to an empty set).
fn add(existing: Option<&AttributeValue>, value: &AttributeValue) -> ApiResult<AttributeValue> {
    use AttributeValue::{Bs, N, Ns, Ss};
    Ok(match (existing, value) {
        (None, _) => value.clone(),
        (Some(N(a)), N(b)) => N(a.add(b)?),
        (Some(Ss(a)), Ss(b)) => Ss(union(a, b)),
        (Some(Ns(a)), Ns(b)) => Ns(union(a, b)),
        (Some(Bs(a)), Bs(b)) => Bs(union(a, b)),
        (Some(_), _) => return Err(ApiError::validation(WRONG_TYPE)),
    })
}

/// `existing` without `elements` (a set of the same type); `None` when nothing is left.
fn difference(existing: &AttributeValue, elements: &AttributeValue) -> ApiResult<Option<AttributeValue>> {
    use AttributeValue::{Bs, Ns, Ss};
    let rest = match (existing, elements) {
        (Ss(a), Ss(b)) => Ss(without(a, b)),
        (Ns(a), Ns(b)) => Ns(without(a, b)),
        (Bs(a), Bs(b)) => Bs(without(a, b)),
        _ => return Err(ApiError::validation(WRONG_TYPE)),
    };
    let emptied = matches!(&rest, Ss(s) if s.is_empty())
        || matches!(&rest, Ns(s) if s.is_empty())
        || matches!(&rest, Bs(s) if s.is_empty());
    Ok((!emptied).then_some(rest))
}

/// `a` then the elements of `b` it lacks.
fn union<T: Clone + Eq + Hash>(a: &[T], b: &[T]) -> Vec<T> {
    let mut seen = a.iter().collect::<HashSet<_>>();
    let added = b.iter().filter(|element| seen.insert(*element)).cloned().collect::<Vec<_>>();
    a.iter().cloned().chain(added).collect()
}

/// The elements of `a` not in `b`, in `a`'s order.
fn without<T: Clone + Eq + Hash>(a: &[T], b: &[T]) -> Vec<T> {
    let b = b.iter().collect::<HashSet<_>>();
    a.iter().filter(|element| !b.contains(element)).cloned().collect()
}

/// DynamoDB's message for an ADD or DELETE operand of a type the action does not take.
fn incorrect_operand(action: &str, value: &AttributeValue) -> ApiError {
    let type_name = match value {
        AttributeValue::S(_) => "STRING",
        AttributeValue::N(_) => "NUMBER",
        AttributeValue::B(_) => "BINARY",
        AttributeValue::Bool(_) => "BOOLEAN",
        AttributeValue::L(_) => "LIST",
        AttributeValue::M(_) => "MAP",
        other => other.type_name(),
    };
    ApiError::validation(format!(
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: {action}, operand type: {type_name}"
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::eval::test_support::{item, path, value};
    use super::*;

    fn set(text: &str, value: SetValue) -> (Path, SetValue) {
        (path(text), value)
    }

    fn val(json: Value) -> SetOperand {
        SetOperand::Value(value(json))
    }

    fn at(text: &str) -> SetOperand {
        SetOperand::Path(path(text))
    }

    fn operand(operand: SetOperand) -> SetValue {
        SetValue::Operand(operand)
    }

    fn sets(actions: Vec<(Path, SetValue)>) -> Update {
        Update { set: actions, ..Update::default() }
    }

    fn removes(paths: &[&str]) -> Update {
        Update { remove: paths.iter().map(|p| path(p)).collect(), ..Update::default() }
    }

    fn adds(actions: &[(&str, Value)]) -> Update {
        Update { add: actions.iter().map(|(p, v)| (path(p), value(v.clone()))).collect(), ..Update::default() }
    }

    fn deletes(actions: &[(&str, Value)]) -> Update {
        Update { delete: actions.iter().map(|(p, v)| (path(p), value(v.clone()))).collect(), ..Update::default() }
    }

    /// Applies `update` to `before` and returns the result.
    fn after(update: &Update, before: Value) -> Item {
        let mut it = item(before);
        apply_update(update, &mut it).unwrap();
        it
    }

    /// Applies `update` to `before`, expecting `message`, and checks the item did not change.
    fn fails(update: &Update, before: Value, message: &str) {
        let original = item(before);
        let mut it = original.clone();
        let error = apply_update(update, &mut it).unwrap_err();
        assert_eq!(error.kind, crate::error::ErrorKind::Validation);
        assert_eq!(error.message, message);
        assert_eq!(it, original);
    }

    fn n(x: &str) -> Value {
        json!({"N": x})
    }

    fn s(x: &str) -> Value {
        json!({"S": x})
    }

    #[test]
    fn set_creates_and_replaces_attributes() {
        let update = sets(vec![set("b", operand(val(n("4")))), set("a", operand(val(s("hey"))))]);
        assert_eq!(
            after(&update, json!({"p": s("k"), "a": s("hi")})),
            item(json!({"p": s("k"), "a": s("hey"), "b": n("4")}))
        );
        // Any type replaces any type, nested documents included.
        let update = sets(vec![set("a.c", operand(val(n("7"))))]);
        assert_eq!(
            after(&update, json!({"a": {"M": {"b": n("3"), "c": {"M": {"one": n("1")}}}}})),
            item(json!({"a": {"M": {"b": n("3"), "c": n("7")}}}))
        );
        // Empty lists, maps, strings and binaries are values like others.
        let update = sets(vec![
            set("d", operand(val(json!({"L": []})))),
            set("e", operand(val(json!({"M": {}})))),
            set("f", operand(val(s("")))),
            set("g", operand(val(json!({"B": ""})))),
        ]);
        assert_eq!(
            after(&update, json!({})),
            item(json!({"d": {"L": []}, "e": {"M": {}}, "f": s(""), "g": {"B": ""}}))
        );
    }

    #[test]
    fn set_reads_the_item_before_the_update() {
        // SET a = :v, b = a: b gets the old a.
        let update = sets(vec![set("a", operand(val(n("2")))), set("b", operand(at("a")))]);
        assert_eq!(after(&update, json!({"a": n("1")})), item(json!({"a": n("2"), "b": n("1")})));
        // REMOVE a SET b = a, and SET c = b REMOVE b.
        let update = Update { remove: vec![path("a")], ..sets(vec![set("b", operand(at("a")))]) };
        assert_eq!(after(&update, json!({"a": s("hello")})), item(json!({"b": s("hello")})));
        // Swapping two attributes.
        let update = sets(vec![set("x", operand(at("y"))), set("y", operand(at("x")))]);
        assert_eq!(after(&update, json!({"x": n("1"), "y": n("2")})), item(json!({"x": n("2"), "y": n("1")})));
        // SET a = a does nothing.
        let update = sets(vec![set("a", operand(at("a")))]);
        assert_eq!(after(&update, json!({"a": s("hello")})), item(json!({"a": s("hello")})));
    }

    #[test]
    fn set_from_a_missing_attribute_fails() {
        let missing = "The provided expression refers to an attribute that does not exist in the item";
        fails(&sets(vec![set("c", operand(at("z")))]), json!({"a": n("1")}), missing);
        fails(&sets(vec![set("z", operand(at("z")))]), json!({}), missing);
        fails(&sets(vec![set("c", operand(at("a.b")))]), json!({"a": n("1")}), missing);
        fails(&sets(vec![set("c", operand(at("l[5]")))]), json!({"l": {"L": [n("1")]}}), missing);
        // SET x = :v, y = x where x did not exist before.
        fails(&sets(vec![set("x", operand(val(n("4")))), set("y", operand(at("x")))]), json!({}), missing);
        fails(&sets(vec![set("e", SetValue::Plus(at("q"), val(n("1"))))]), json!({"a": n("1")}), missing);
        fails(
            &sets(vec![set("e", operand(SetOperand::ListAppend(Box::new(at("b")), Box::new(at("c")))))]),
            json!({}),
            missing,
        );
    }

    #[test]
    fn arithmetic() {
        let it = json!({"a": n("2"), "s": s("x"), "m": {"M": {}}, "l": {"L": []}});
        let plus = |a, b| sets(vec![set("r", SetValue::Plus(a, b))]);
        let minus = |a, b| sets(vec![set("r", SetValue::Minus(a, b))]);
        let result = |update: &Update| after(update, it.clone()).remove("r").unwrap();
        assert_eq!(result(&plus(at("a"), val(n("3")))), value(n("5")));
        assert_eq!(result(&plus(val(n("4")), at("a"))), value(n("6")));
        assert_eq!(result(&minus(val(n("7")), at("a"))), value(n("5")));
        assert_eq!(result(&minus(at("a"), val(n("2.5")))), value(n("-0.5")));
        assert_eq!(result(&plus(at("a"), at("a"))), value(n("4")));
        assert_eq!(result(&plus(val(n("1")), val(n("10000000000000000000000")))), value(n("10000000000000000000001")));
        // The if_not_exists(b, :start) + :step counter idiom.
        let counter = plus(SetOperand::IfNotExists(path("r"), Box::new(val(n("0")))), val(n("1")));
        assert_eq!(after(&counter, json!({})), item(json!({"r": n("1")})));
        assert_eq!(after(&counter, json!({"r": n("41")})), item(json!({"r": n("42")})));
        // Only numbers add up.
        let wrong = "An operand in the update expression has an incorrect data type";
        for operand in ["s", "m", "l"] {
            fails(&plus(at(operand), val(n("1"))), it.clone(), wrong);
            fails(&minus(val(n("1")), at(operand)), it.clone(), wrong);
        }
        fails(&plus(at("a"), val(s("1"))), it.clone(), wrong);
        // Out of range, or beyond 38 digits: DynamoDB's number errors.
        let overflow = "Number overflow. Attempting to store a number with magnitude larger than supported range";
        fails(&plus(val(n("9e125")), val(n("9e125"))), it.clone(), overflow);
        fails(&minus(val(n("1e50")), val(n("1"))), it.clone(), overflow);
        fails(&plus(at("a"), val(n("1e50"))), it, overflow);
    }

    #[test]
    fn list_append_and_if_not_exists() {
        let it = json!({"a": {"L": [s("hi"), n("2")]}, "n": n("1")});
        let append = |a, b| sets(vec![set("r", operand(SetOperand::ListAppend(Box::new(a), Box::new(b))))]);
        let result = |update: &Update| after(update, it.clone()).remove("r").unwrap();
        assert_eq!(
            result(&append(at("a"), val(json!({"L": [n("4")]})))),
            value(json!({"L": [s("hi"), n("2"), n("4")]}))
        );
        assert_eq!(
            result(&append(val(json!({"L": [s("dog")]})), at("a"))),
            value(json!({"L": [s("dog"), s("hi"), n("2")]}))
        );
        assert_eq!(result(&append(at("a"), at("a"))), value(json!({"L": [s("hi"), n("2"), s("hi"), n("2")]})));
        assert_eq!(result(&append(val(json!({"L": []})), val(json!({"L": []})))), value(json!({"L": []})));
        // list_append(if_not_exists(r, :empty), :new): the append-or-create idiom.
        let create =
            append(SetOperand::IfNotExists(path("r"), Box::new(val(json!({"L": []})))), val(json!({"L": [n("9")]})));
        assert_eq!(result(&create), value(json!({"L": [n("9")]})));
        let wrong = "An operand in the update expression has an incorrect data type";
        fails(&append(at("n"), at("a")), it.clone(), wrong);
        fails(&append(at("a"), val(json!({"SS": ["x"]}))), it.clone(), wrong);
        fails(&append(at("a"), val(json!({"M": {}}))), it.clone(), wrong);
        // if_not_exists keeps what exists, whatever its type.
        let keep = sets(vec![set("b", operand(SetOperand::IfNotExists(path("n"), Box::new(val(s("x"))))))]);
        assert_eq!(after(&keep, it.clone()).remove("b"), Some(value(n("1"))));
        let fill = sets(vec![set("b", operand(SetOperand::IfNotExists(path("q.r"), Box::new(at("n")))))]);
        assert_eq!(after(&fill, it.clone()).remove("b"), Some(value(n("1"))));
        let nested = sets(vec![set(
            "b",
            operand(SetOperand::IfNotExists(
                path("x"),
                Box::new(SetOperand::IfNotExists(path("y"), Box::new(val(n("3"))))),
            )),
        )]);
        assert_eq!(after(&nested, it).remove("b"), Some(value(n("3"))));
    }

    #[test]
    fn nested_set_needs_existing_parents() {
        let it = json!({
            "a": s("hello"),
            "b": {"L": [s("hi")]},
            "c": {"M": {"1": s("a")}},
            "d": {"L": [s("a"), s("b")]},
        });
        let invalid = "The document path provided in the update expression is invalid for update";
        for target in ["a.c", "b.c", "z.c", "a[0]", "z[0]", "c[1]", "d.1", "b[0].x", "b[5].x", "c.x.y", "d[1][0]"] {
            fails(&sets(vec![set(target, operand(val(n("7"))))]), it.clone(), invalid);
            fails(&adds(&[(target, n("1"))]), it.clone(), invalid);
            fails(&deletes(&[(target, json!({"SS": ["a"]}))]), it.clone(), invalid);
            fails(&removes(&[target]), it.clone(), invalid);
        }
        // The final element may be new: a key in an existing map.
        let update = sets(vec![set("c.new", operand(val(n("7"))))]);
        assert_eq!(after(&update, it.clone())["c"], value(json!({"M": {"1": s("a"), "new": n("7")}})));
        // An item that does not exist has only its key attributes.
        fails(&sets(vec![set("b.a", operand(at("p")))]), json!({"p": s("k")}), invalid);
        fails(&sets(vec![set("b[1]", operand(at("p")))]), json!({"p": s("k")}), invalid);
        // A path must start with a name.
        fails(&sets(vec![(Path(vec![PathElement::Index(0)]), operand(val(n("1"))))]), json!({}), invalid);
        // An invalid path anywhere leaves the item untouched, even with valid actions before it.
        fails(&sets(vec![set("ok", operand(val(n("1")))), set("a.c", operand(val(n("2"))))]), it, invalid);
    }

    #[test]
    fn nested_updates() {
        // The Scylla/DynamoDB compatibility examples: a.b and a.c.d set, a.x and b.y removed.
        let update = Update {
            remove: vec![path("a.x"), path("b.y")],
            ..sets(vec![
                set("a.b", operand(val(n("10")))),
                set("a.c.d", operand(val(s("dog")))),
                set("b.x", operand(val(n("17")))),
            ])
        };
        assert_eq!(
            after(
                &update,
                json!({"a": {"M": {"x": n("3"), "y": n("4"), "c": {"M": {"y": n("3")}}}}, "b": {"M": {"x": n("1"), "y": n("2")}}})
            ),
            item(
                json!({"a": {"M": {"y": n("4"), "b": n("10"), "c": {"M": {"y": n("3"), "d": s("dog")}}}}, "b": {"M": {"x": n("17")}}})
            )
        );
        let update = sets(vec![set("a.c[1].x.y[1]", operand(val(n("9"))))]);
        assert_eq!(
            after(
                &update,
                json!({"a": {"M": {"b": n("3"), "c": {"L": [s("hi"), {"M": {"x": {"M": {"y": {"L": [n("3"), n("5"), n("7")]}}}}}]}}}})
            ),
            item(
                json!({"a": {"M": {"b": n("3"), "c": {"L": [s("hi"), {"M": {"x": {"M": {"y": {"L": [n("3"), n("9"), n("7")]}}}}}]}}}})
            )
        );
        let update = removes(&["a.c[1].x.y[1]", "a.c[1].q"]);
        assert_eq!(
            after(
                &update,
                json!({"a": {"M": {"c": {"L": [s("hi"), {"M": {"x": {"M": {"y": {"L": [n("3"), n("5"), n("7")]}}}, "q": n("2")}}]}}}})
            ),
            item(json!({"a": {"M": {"c": {"L": [s("hi"), {"M": {"x": {"M": {"y": {"L": [n("3"), n("7")]}}}}}]}}}}))
        );
    }

    #[test]
    fn set_past_the_end_of_a_list_appends_in_index_order() {
        let update = sets(vec![set("a[7]", operand(val(s("hello"))))]);
        let it = after(&update, json!({"a": {"L": [s("one"), s("two"), s("three")]}}));
        assert_eq!(it["a"], value(json!({"L": [s("one"), s("two"), s("three"), s("hello")]})));
        let update = sets(vec![
            set("a[84]", operand(val(s("a1")))),
            set("a[37]", operand(val(s("a2")))),
            set("a[17]", operand(val(s("a3")))),
            set("a[50]", operand(val(s("a4")))),
        ]);
        let mut it = it;
        apply_update(&update, &mut it).unwrap();
        assert_eq!(
            it["a"],
            value(json!({"L": [s("one"), s("two"), s("three"), s("hello"), s("a3"), s("a2"), s("a4"), s("a1")]}))
        );
        // The largest index there is.
        let update = sets(vec![set("a[4294967295]", operand(val(s("z"))))]);
        assert_eq!(after(&update, json!({"a": {"L": []}}))["a"], value(json!({"L": [s("z")]})));
    }

    /// dynalite's "should update nested attributes", recorded against DynamoDB: in-place SETs,
    /// SETs and ADDs past the end in index order, every right-hand side on the old item.
    #[test]
    fn mixed_list_updates_use_original_positions() {
        let key = s("K");
        let before = json!({
            "a": key,
            "b": {"M": {"a": n("1"), "b": n("2"), "c": n("3")}},
            "c": {"L": [n("1"), n("3")]},
        });
        // set b.c=((c[1])+(b.a)), b.a = a, c[1] = a, c[4] = b.a - b.b, c[2] = b.c
        // add c[8] :b, c[6] :a   with :a = 2, :b = {SS: [a]}
        let update = Update {
            set: vec![
                set("b.c", SetValue::Plus(at("c[1]"), at("b.a"))),
                set("b.a", operand(at("a"))),
                set("c[1]", operand(at("a"))),
                set("c[4]", SetValue::Minus(at("b.a"), at("b.b"))),
                set("c[2]", operand(at("b.c"))),
            ],
            add: vec![(path("c[8]"), value(json!({"SS": ["a"]}))), (path("c[6]"), value(n("2")))],
            ..Update::default()
        };
        let it = after(&update, before);
        assert_eq!(
            it,
            item(json!({
                "a": key,
                "b": {"M": {"a": key, "b": n("2"), "c": n("4")}},
                "c": {"L": [n("1"), key, n("3"), n("-1"), n("2"), {"SS": ["a"]}]},
            }))
        );
        // UPDATED_NEW: the updated paths projected on the new item.
        assert_eq!(
            super::super::project(&it, &updated_paths(&update)),
            item(json!({"b": {"M": {"a": key, "c": n("4")}}, "c": {"L": [key, n("3"), n("2")]}}))
        );
    }

    #[test]
    fn remove() {
        let update = removes(&["a"]);
        assert_eq!(after(&update, json!({"a": s("hello"), "b": s("hi")})), item(json!({"b": s("hi")})));
        // Missing attributes, keys and positions are no-ops...
        let it = json!({"a": {"M": {"x": n("3")}}, "b": {"L": [s("hi")]}});
        assert_eq!(after(&removes(&["a.y", "b[7]", "c"]), it.clone()), item(it));
        // ...but their parents must exist.
        let invalid = "The document path provided in the update expression is invalid for update";
        fails(&removes(&["c.c"]), json!({"a": s("hello")}), invalid);
        fails(&removes(&["a.c"]), json!({"a": s("hello")}), invalid);
        fails(&removes(&["a[0]"]), json!({"a": s("hello")}), invalid);
        // Removing the last member leaves an empty map or list.
        assert_eq!(after(&removes(&["a.b"]), json!({"a": {"M": {"b": n("1")}}})), item(json!({"a": {"M": {}}})));
        assert_eq!(after(&removes(&["a[0]"]), json!({"a": {"L": [n("1")]}})), item(json!({"a": {"L": []}})));
    }

    #[test]
    fn removing_list_elements_uses_original_positions() {
        let list = json!({"a": {"L": [n("2"), n("3"), n("4"), n("5"), n("6"), n("7")]}});
        // REMOVE a[1] SET a[3] = :val
        let update = Update { remove: vec![path("a[1]")], ..sets(vec![set("a[3]", operand(val(n("17"))))]) };
        assert_eq!(after(&update, list.clone())["a"], value(json!({"L": [n("2"), n("4"), n("17"), n("6"), n("7")]})));
        // Several removals, in any order, name the original elements.
        for order in [["a[1]", "a[3]", "a[4]"], ["a[4]", "a[1]", "a[3]"], ["a[3]", "a[4]", "a[1]"]] {
            assert_eq!(after(&removes(&order), list.clone())["a"], value(json!({"L": [n("2"), n("4"), n("7")]})));
        }
        // Removals with an append: positions are still the original ones.
        let update =
            Update { remove: vec![path("a[0]"), path("a[9]")], ..sets(vec![set("a[6]", operand(val(n("8"))))]) };
        assert_eq!(
            after(&update, list.clone())["a"],
            value(json!({"L": [n("3"), n("4"), n("5"), n("6"), n("7"), n("8")]}))
        );
        // A removal inside a later element of a list also losing an earlier one.
        let nested = json!({"a": {"L": [n("0"), {"M": {"x": n("1"), "y": n("2")}}]}});
        assert_eq!(after(&removes(&["a[0]", "a[1].x"]), nested)["a"], value(json!({"L": [{"M": {"y": n("2")}}]})));
        // A position past the end stays a no-op even when an append fills it.
        let update = Update { remove: vec![path("a[6]")], ..sets(vec![set("a[9]", operand(val(n("8"))))]) };
        assert_eq!(
            after(&update, list)["a"],
            value(json!({"L": [n("2"), n("3"), n("4"), n("5"), n("6"), n("7"), n("8")]}))
        );
    }

    #[test]
    fn add_numbers_and_sets() {
        let it = json!({
            "a": n("3"),
            "b": s("hi"),
            "ss": {"SS": ["dog", "cat", "mouse"]},
            "ns": {"NS": ["1", "2"]},
            "bs": {"BS": ["AQI=", "Ag=="]},
            "l": {"L": [n("1")]},
        });
        let added = |attr: &str, v: Value| after(&adds(&[(attr, v)]), it.clone()).remove(attr).unwrap();
        assert_eq!(added("a", n("4")), value(n("7")));
        assert_eq!(added("a", n("-3")), value(n("0")));
        // A missing attribute starts from 0 or the empty set.
        assert_eq!(added("new", n("8")), value(n("8")));
        assert_eq!(added("new", json!({"SS": ["cat"]})), value(json!({"SS": ["cat"]})));
        // Sets unite, without duplicates.
        assert_eq!(added("ss", json!({"SS": ["pig"]})), value(json!({"SS": ["dog", "cat", "mouse", "pig"]})));
        assert_eq!(
            added("ss", json!({"SS": ["mouse", "badger", "dog"]})),
            value(json!({"SS": ["dog", "cat", "mouse", "badger"]}))
        );
        assert_eq!(added("ns", json!({"NS": ["2.0", "3", "4"]})), value(json!({"NS": ["1", "2", "3", "4"]})));
        assert_eq!(added("bs", json!({"BS": ["Ag==", "AQ=="]})), value(json!({"BS": ["AQI=", "Ag==", "AQ=="]})));
        // The ADDed value must match the attribute's type.
        let wrong = "An operand in the update expression has an incorrect data type";
        for (attr, v) in [
            ("b", n("1")),
            ("ss", n("1")),
            ("a", json!({"NS": ["1"]})),
            ("ss", json!({"NS": ["1"]})),
            ("ns", json!({"SS": ["1"]})),
            ("bs", json!({"SS": ["1"]})),
            ("l", json!({"NS": ["1"]})),
        ] {
            fails(&adds(&[(attr, v)]), it.clone(), wrong);
        }
        // Operand types ADD does not take at all.
        for (v, type_name) in [
            (s("1"), "STRING"),
            (json!({"B": "YQ=="}), "BINARY"),
            (json!({"BOOL": true}), "BOOLEAN"),
            (json!({"NULL": true}), "NULL"),
            (json!({"M": {}}), "MAP"),
            (json!({"L": [n("1")]}), "LIST"),
        ] {
            fails(
                &adds(&[("a", v)]),
                it.clone(),
                &format!(
                    "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: {type_name}"
                ),
            );
        }
        // Numbers add exactly and within DynamoDB's limits.
        fails(
            &adds(&[("a", n("1e50"))]),
            it,
            "Number overflow. Attempting to store a number with magnitude larger than supported range",
        );
    }

    #[test]
    fn delete_from_sets() {
        let it = json!({
            "a": {"SS": ["dog", "cat", "mouse"]},
            "b": s("hi"),
            "ns": {"NS": ["1", "2", "3"]},
            "bs": {"BS": ["AQ==", "Ag=="]},
            "m": {"M": {"s": {"SS": ["x"]}}},
            "l": {"L": [{"SS": ["x"]}, {"SS": ["y", "z"]}, n("1")]},
        });
        let deleted = |attr: &str, v: Value| after(&deletes(&[(attr, v)]), it.clone()).remove(attr);
        assert_eq!(deleted("a", json!({"SS": ["cat", "mouse"]})), Some(value(json!({"SS": ["dog"]}))));
        // Elements not in the set are ignored.
        assert_eq!(deleted("a", json!({"SS": ["pig"]})), Some(value(json!({"SS": ["dog", "cat", "mouse"]}))));
        assert_eq!(deleted("ns", json!({"NS": ["1.0", "4"]})), Some(value(json!({"NS": ["2", "3"]}))));
        assert_eq!(deleted("bs", json!({"BS": ["AQ=="]})), Some(value(json!({"BS": ["Ag=="]}))));
        // Emptying a set removes the attribute.
        assert_eq!(deleted("a", json!({"SS": ["dog", "cat", "mouse", "pig"]})), None);
        assert_eq!(after(&deletes(&[("ns", json!({"NS": ["1", "2", "3"]}))]), it.clone()), {
            let mut expected = item(it.clone());
            expected.remove("ns");
            expected
        });
        // Nested: an emptied set leaves its map, or its list (shifting what follows).
        assert_eq!(after(&deletes(&[("m.s", json!({"SS": ["x"]}))]), it.clone())["m"], value(json!({"M": {}})));
        assert_eq!(
            after(&deletes(&[("l[0]", json!({"SS": ["x"]})), ("l[1]", json!({"SS": ["y"]}))]), it.clone())["l"],
            value(json!({"L": [{"SS": ["z"]}, n("1")]}))
        );
        // Deleting from nothing does nothing.
        assert_eq!(
            after(&deletes(&[("q", json!({"SS": ["dog"]})), ("l[9]", json!({"SS": ["x"]}))]), it.clone()),
            item(it.clone())
        );
        // The set must match the attribute's type.
        let wrong = "An operand in the update expression has an incorrect data type";
        for (attr, v) in [
            ("a", json!({"NS": ["1"]})),
            ("ns", json!({"SS": ["1"]})),
            ("b", json!({"SS": ["hi"]})),
            ("m", json!({"SS": ["x"]})),
            ("l[2]", json!({"NS": ["1"]})),
        ] {
            fails(&deletes(&[(attr, v)]), it.clone(), wrong);
        }
        // Operand types DELETE does not take at all.
        for (v, type_name) in [
            (s("1"), "STRING"),
            (n("1"), "NUMBER"),
            (json!({"B": "YQ=="}), "BINARY"),
            (json!({"BOOL": false}), "BOOLEAN"),
            (json!({"NULL": true}), "NULL"),
            (json!({"M": {}}), "MAP"),
            (json!({"L": [n("1")]}), "LIST"),
        ] {
            fails(
                &deletes(&[("a", v)]),
                it.clone(),
                &format!(
                    "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: {type_name}"
                ),
            );
        }
    }

    /// dynalite's "should just add valid ADD actions if nothing exists", recorded against
    /// DynamoDB: REMOVE b DELETE c :c ADD d :d, e :e SET f = :f on a new item.
    #[test]
    fn every_action_on_a_new_item() {
        let update = Update {
            set: vec![set("f", operand(val(json!({"L": [s("a"), n("1")]}))))],
            remove: vec![path("b")],
            add: vec![(path("d"), value(n("5"))), (path("e"), value(json!({"SS": ["a", "b"]})))],
            delete: vec![(path("c"), value(json!({"SS": ["a", "b"]})))],
        };
        let it = after(&update, json!({"a": s("key")}));
        assert_eq!(
            it,
            item(json!({"a": s("key"), "d": n("5"), "e": {"SS": ["a", "b"]}, "f": {"L": [s("a"), n("1")]}}))
        );
        assert_eq!(
            super::super::project(&it, &updated_paths(&update)),
            item(json!({"d": n("5"), "e": {"SS": ["a", "b"]}, "f": {"L": [s("a"), n("1")]}}))
        );
    }

    #[test]
    fn updated_paths_lists_every_action() {
        let update = Update {
            set: vec![set("a.b", operand(val(n("1"))))],
            remove: vec![path("c[2]")],
            add: vec![(path("d"), value(n("1")))],
            delete: vec![(path("e"), value(json!({"SS": ["x"]})))],
        };
        assert_eq!(updated_paths(&update), vec![path("a.b"), path("c[2]"), path("d"), path("e")]);
        assert_eq!(updated_paths(&Update::default()), Vec::<Path>::new());
    }

    /// The Developer Guide's update examples on its ProductCatalog item.
    #[test]
    fn developer_guide_examples() {
        let mut it = item(json!({
            "Id": n("789"),
            "ProductCategory": s("Home Improvement"),
            "Price": n("52"),
            "InStock": {"BOOL": true},
            "Brand": s("Acme"),
        }));
        // SET ProductCategory = :c, Price = :p
        // SET RelatedItems = :ri, ProductReviews = :pr
        apply_update(
            &sets(vec![
                set("ProductCategory", operand(val(s("Hardware")))),
                set("Price", operand(val(n("60")))),
                set("RelatedItems", operand(val(json!({"L": [s("Hammer")]})))),
                set("ProductReviews", operand(val(json!({"M": {"FiveStar": {"L": [s("Best product ever!")]}}})))),
            ]),
            &mut it,
        )
        .unwrap();
        // SET #ri[1] = :ri, #pr.#5star[1] = :r5, #pr.#3star = :r3
        apply_update(
            &sets(vec![
                set("RelatedItems[1]", operand(val(s("Nails")))),
                set("ProductReviews.FiveStar[1]", operand(val(s("Very happy with my purchase")))),
                set("ProductReviews.ThreeStar", operand(val(json!({"L": [s("Just OK - not that great")]})))),
            ]),
            &mut it,
        )
        .unwrap();
        // SET Price = Price - :p (15)
        apply_update(&sets(vec![set("Price", SetValue::Minus(at("Price"), val(n("15"))))]), &mut it).unwrap();
        // SET #ri = list_append(#ri, :vals), then list_append(:vals, #ri)
        apply_update(
            &sets(vec![set(
                "RelatedItems",
                operand(SetOperand::ListAppend(
                    Box::new(at("RelatedItems")),
                    Box::new(val(json!({"L": [s("Screwdriver"), s("Hacksaw")]}))),
                )),
            )]),
            &mut it,
        )
        .unwrap();
        apply_update(
            &sets(vec![set(
                "RelatedItems",
                operand(SetOperand::ListAppend(
                    Box::new(val(json!({"L": [s("Chisel")]}))),
                    Box::new(at("RelatedItems")),
                )),
            )]),
            &mut it,
        )
        .unwrap();
        // SET Price = if_not_exists(Price, :p) leaves the price.
        apply_update(
            &sets(vec![set("Price", operand(SetOperand::IfNotExists(path("Price"), Box::new(val(n("100"))))))]),
            &mut it,
        )
        .unwrap();
        // REMOVE Brand, InStock, QuantityOnHand; REMOVE RelatedItems[1], RelatedItems[2]
        apply_update(&removes(&["Brand", "InStock", "QuantityOnHand", "RelatedItems[1]", "RelatedItems[2]"]), &mut it)
            .unwrap();
        // ADD QuantityOnHand :q (5); ADD Color :c (SS Orange, Purple); DELETE Color :p (SS Yellow, Purple)
        apply_update(&adds(&[("QuantityOnHand", n("5")), ("Color", json!({"SS": ["Orange", "Purple"]}))]), &mut it)
            .unwrap();
        apply_update(&deletes(&[("Color", json!({"SS": ["Yellow", "Purple"]}))]), &mut it).unwrap();
        assert_eq!(
            it,
            item(json!({
                "Id": n("789"),
                "ProductCategory": s("Hardware"),
                "Price": n("45"),
                "RelatedItems": {"L": [s("Chisel"), s("Screwdriver"), s("Hacksaw")]},
                "ProductReviews": {"M": {
                    "FiveStar": {"L": [s("Best product ever!"), s("Very happy with my purchase")]},
                    "ThreeStar": {"L": [s("Just OK - not that great")]},
                }},
                "QuantityOnHand": n("5"),
                "Color": {"SS": ["Orange"]},
            }))
        );
    }

    #[test]
    fn survives_deep_items() {
        // 31 nested maps, updated and removed at the bottom.
        let mut deep = json!({"S": "bottom"});
        for _ in 0..31 {
            deep = json!({"M": {"k": deep}});
        }
        let bottom = ["a"].into_iter().chain(["k"; 31]).collect::<Vec<_>>().join(".");
        let update = sets(vec![set(&bottom, operand(val(n("1"))))]);
        let it = after(&update, json!({"a": deep.clone()}));
        assert_eq!(resolve(&it, &path(&bottom)), Some(&value(n("1"))));
        let it = after(&removes(&[&bottom]), json!({"a": deep}));
        assert_eq!(resolve(&it, &path(&bottom)), None);
        // A path far deeper than anything in the item is just invalid.
        let far = ["a"; 5000].join(".");
        fails(
            &sets(vec![set(&far, operand(val(n("1"))))]),
            json!({"a": {"M": {}}}),
            "The document path provided in the update expression is invalid for update",
        );
    }
}
