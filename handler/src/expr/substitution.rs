//! ExpressionAttributeNames and ExpressionAttributeValues, and the last stage of parsing: the
//! parsed expression with its placeholders substituted, checked the way DynamoDB checks it
//! (operands, functions, paths, limits), turned into the [`super::ast`] types.
//!
//! DynamoDB validates an expression by walking it bottom-up, children left to right before the
//! operator that holds them, substituting as it goes, so the first problem met in that walk is
//! the one reported. An update expression is walked as a list of its actions from the last back
//! to the first, twice: first the paths it writes (with their `#name`s), then the values.
//!
//! Where DynamoDB lists several keys, or picks the first of several, it follows the iteration
//! order of a Java `HashMap`; this module reproduces that order ([`java_order`]).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::ast::{Comparator, Condition, Operand, Path, PathElement, SetOperand, SetValue, Update};
use super::lexer::{Kind, Tokens};
use super::parser::{
    Arith, Function, RawAction, RawCall, RawCondition, RawElement, RawOperand, RawPath, RawSection, RawSetValue,
    condition_only_function, invalid_function, list_index, misplaced_function, update_only_function,
};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::input::mismatch;
use crate::model::size::value_size;
use crate::model::value::check_attribute_name;
use crate::model::{AttributeValue, Number};

/// Longest placeholder key, in UTF-16 units.
const MAX_KEY_LENGTH: usize = 255;
/// Each of the two maps, and both together, in bytes (keys plus names or values).
const MAX_MAPS_SIZE: usize = 2 * 1024 * 1024;
/// An expression's length plus the sizes of the placeholders it uses, each time it uses them.
const MAX_SUBSTITUTED_SIZE: usize = 1024 * 1024;
/// Names and values an update writes with SET and ADD.
const MAX_UPDATE_SIZE: usize = 400 * 1024;
const MAX_OPERATORS: usize = 300;
const MAX_PATH_DEPTH: usize = 32;
/// IN takes at most this many operands after the first.
const MAX_IN_OPERANDS: usize = 100;

/// The possible types of an operand DynamoDB prints when it cannot be more precise: its Java
/// set of every type (internal ones included), in the order DynamoDB printed it when observed.
const ANY_TYPE: &str =
    "{SS,M,DECIMAL,DOUBLESET,HDS,N,B,DICT,INTSET,BOOL,HD,BS,INT,DECIMALSET,NULL,FLOAT,FS,S,L,NS,DOUBLE}";
/// The type names attribute_type accepts, as DynamoDB lists them.
const TYPE_NAMES: &str = "{N,BS,L,B,NULL,M,S,SS,NS,BOOL}";

/// ExpressionAttributeNames / ExpressionAttributeValues of one request, shared by all its
/// expressions; records which entries were used.
pub struct Substitutions {
    names: Placeholders<String>,
    values: Placeholders<Placeholder>,
}

struct Placeholders<T> {
    entries: BTreeMap<String, T>,
    used: BTreeSet<String>,
    /// The keys in the order DynamoDB lists unused ones.
    report_order: Vec<String>,
}

struct Placeholder {
    value: AttributeValue,
    /// A number as the client wrote it, which is how DynamoDB prints it back in errors.
    written: Option<String>,
}

impl Placeholder {
    /// The value as DynamoDB prints it in a BETWEEN error (only S, N and B get there).
    fn shown(&self) -> String {
        let text = match (&self.value, &self.written) {
            (_, Some(written)) => written.clone(),
            (AttributeValue::S(s), _) => s.clone(),
            (AttributeValue::B(b), _) => {
                format!("java.nio.HeapByteBuffer[pos=0 lim={0} cap={0}]", b.len())
            }
            (other, _) => other.to_json().to_string(),
        };
        format!("AttributeValue: {{{}:{text}}}", self.value.type_name())
    }
}

impl Substitutions {
    /// Validates the maps themselves, in DynamoDB's order: JSON types (all of them, as DynamoDB
    /// decodes the whole request first), then the names' keys, the values' keys, the values,
    /// the names, and the sizes. JSON nulls count as absent entries.
    pub fn new(names: Option<&Map<String, Value>>, values: Option<&Map<String, Value>>) -> ApiResult<Substitutions> {
        let names: Option<Vec<(&String, &String)>> = names
            .map(|map| present(map).map(|(key, name)| string(name).map(|name| (key, name))).collect())
            .transpose()?;
        let values: Option<Vec<(&String, &Value, ApiResult<AttributeValue>)>> = values
            .map(|map| {
                present(map)
                    .map(|(key, json)| match AttributeValue::from_json(json) {
                        Err(e) if e.kind == ErrorKind::Serialization => Err(e),
                        decoded => Ok((key, json, decoded)),
                    })
                    .collect()
            })
            .transpose()?;
        if let Some(names) = &names {
            check_keys("ExpressionAttributeNames", names.iter().map(|&(key, _)| key).collect(), Kind::NameSub)?;
        }
        let values = values.map(check_values).transpose()?.unwrap_or_default();
        let names = names.map(check_names).transpose()?.unwrap_or_default();
        check_sizes(&names, &values)?;
        // DynamoDB lists unused keys from a Java set copied from the map; for values, from the
        // presized map it first copies the values into.
        let (n, v) = (names.len(), values.len());
        Ok(Substitutions {
            names: Placeholders::new(names, &[copy_buckets(n)]),
            values: Placeholders::new(values, &[buckets_after_puts(v.next_power_of_two(), v), copy_buckets(v)]),
        })
    }

    /// After all of a request's expressions are parsed: unused entries are errors, names first.
    pub fn finish(&self) -> ApiResult<()> {
        let unused = |label: &str, keys: Vec<&str>| {
            if keys.is_empty() {
                return Ok(());
            }
            Err(ApiError::validation(format!(
                "Value provided in {label} unused in expressions: keys: {{{}}}",
                keys.join(", ")
            )))
        };
        unused("ExpressionAttributeNames", self.names.unused())?;
        unused("ExpressionAttributeValues", self.values.unused())
    }

    fn name(&mut self, key: &str) -> Option<&str> {
        self.names.get(key).map(String::as_str)
    }

    fn value(&mut self, key: &str) -> Option<&Placeholder> {
        self.values.get(key)
    }
}

impl<T> Placeholders<T> {
    /// `entries` in the order of the request's map; `copies` the bucket counts of the Java maps
    /// DynamoDB copies the keys through, one after the other, to list the unused ones.
    fn new(entries: Vec<(String, T)>, copies: &[usize]) -> Placeholders<T> {
        let mut report_order: Vec<String> = entries.iter().map(|(key, _)| key.clone()).collect();
        for &buckets in copies {
            java_order(&mut report_order, buckets, |key| java_hash(key));
        }
        Placeholders { entries: entries.into_iter().collect(), used: BTreeSet::new(), report_order }
    }

    fn get(&mut self, key: &str) -> Option<&T> {
        self.used.insert(key.to_string());
        self.entries.get(key)
    }

    fn unused(&self) -> Vec<&str> {
        self.report_order.iter().filter(|key| !self.used.contains(*key)).map(String::as_str).collect()
    }
}

fn present(map: &Map<String, Value>) -> impl Iterator<Item = (&String, &Value)> {
    map.iter().filter(|(_, value)| !value.is_null())
}

fn string(value: &Value) -> ApiResult<&String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(mismatch(other, "String")),
    }
}

/// The map's keys must each be one placeholder token (surrounding whitespace is tolerated, as
/// DynamoDB's lexer skips it), short enough, checked in the map's order.
fn check_keys(label: &str, mut keys: Vec<&String>, kind: Kind) -> ApiResult<()> {
    if keys.is_empty() {
        return Err(ApiError::validation(format!("{label} must not be empty")));
    }
    in_map_order(&mut keys, |key| java_hash(key));
    for key in keys {
        let length = key.encode_utf16().count();
        let problem = if key.is_empty() {
            "The expression attribute map contains an empty key;".to_string()
        } else if length > MAX_KEY_LENGTH && kind == Kind::NameSub {
            format!("The expression attribute map contains a key that is too long; size of key: {length}")
        } else if length > MAX_KEY_LENGTH {
            // Sic: DynamoDB gives the size only for names.
            "The expression attribute map contains a key that is too long;".to_string()
        } else if !is_placeholder(key, kind) {
            format!("Syntax error; key: \"{key}\"")
        } else {
            continue;
        };
        return Err(ApiError::validation(format!("{label} contains invalid key: {problem}")));
    }
    Ok(())
}

fn is_placeholder(key: &str, kind: Kind) -> bool {
    let tokens = Tokens::new(key);
    tokens.len() == 2 && tokens.get(0).kind == kind
}

/// Keys, then the values themselves; returns them in the map's order.
fn check_values(values: Vec<(&String, &Value, ApiResult<AttributeValue>)>) -> ApiResult<Vec<(String, Placeholder)>> {
    check_keys("ExpressionAttributeValues", values.iter().map(|(key, _, _)| *key).collect(), Kind::ValueSub)?;
    let mut values = values;
    in_map_order(&mut values, |(key, _, _)| java_hash(key));
    values
        .into_iter()
        .map(|(key, json, decoded)| match decoded {
            Ok(value) => {
                let written = json.get("N").and_then(Value::as_str).map(str::to_string);
                Ok((key.clone(), Placeholder { value, written }))
            }
            Err(e) => Err(ApiError::validation(format!(
                "ExpressionAttributeValues contains invalid value: {} for key {key}",
                e.message
            ))),
        })
        .collect()
}

fn check_names(names: Vec<(&String, &String)>) -> ApiResult<Vec<(String, String)>> {
    let mut names = names;
    in_map_order(&mut names, |(key, _)| java_hash(key));
    names
        .into_iter()
        .map(|(key, name)| match check_attribute_name(name) {
            Ok(()) => Ok((key.clone(), name.clone())),
            Err(problem) => Err(ApiError::validation(format!(
                "ExpressionAttributeNames contains invalid value: {problem} for key {key}"
            ))),
        })
        .collect()
}

fn check_sizes(names: &[(String, String)], values: &[(String, Placeholder)]) -> ApiResult<()> {
    let names_size: usize = names.iter().map(|(key, name)| key.len() + name.len()).sum();
    let values_size: usize = values.iter().map(|(key, p)| key.len() + value_size(&p.value)).sum();
    let problem = if names_size > MAX_MAPS_SIZE {
        "ExpressionAttributeNames exceeds max size"
    } else if values_size > MAX_MAPS_SIZE {
        "ExpressionAttributeValues exceeds max size"
    } else if names_size + values_size > MAX_MAPS_SIZE {
        "Combined size of ExpressionAttributeNames and ExpressionAttributeValues exceeds max size"
    } else {
        return Ok(());
    };
    Err(ApiError::validation(problem))
}

// ---- Java's hash order ----

/// `java.lang.String#hashCode`, over UTF-16 units.
fn java_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(i32::from(unit)))
}

/// The bucket `java.util.HashMap` files a key hash under.
fn bucket(hash: i32, buckets: usize) -> usize {
    let h = hash as u32;
    (h ^ (h >> 16)) as usize & (buckets - 1)
}

/// The buckets of a Java hash map that starts with `initial` and holds `n` keys (it doubles
/// past three quarters full).
fn buckets_after_puts(initial: usize, n: usize) -> usize {
    let mut buckets = initial.max(1);
    while n > buckets * 3 / 4 {
        buckets *= 2;
    }
    buckets
}

/// The buckets of a Java `HashMap` built key by key, as the request's maps are.
fn map_buckets(n: usize) -> usize {
    buckets_after_puts(16, n)
}

/// Reorders the entries of a request's map as DynamoDB iterates them.
fn in_map_order<T>(items: &mut [T], hash: impl Fn(&T) -> i32) {
    let buckets = map_buckets(items.len());
    java_order(items, buckets, hash);
}

/// The buckets of a Java `HashSet` copied from a collection of `n`.
fn copy_buckets(n: usize) -> usize {
    (n * 4 / 3 + 1).max(16).next_power_of_two()
}

/// Reorders `items` (given in the order they were put in) as a Java `HashMap` with `buckets`
/// buckets iterates them: by bucket, and within a bucket in the order they came.
fn java_order<T>(items: &mut [T], buckets: usize, hash: impl Fn(&T) -> i32) {
    items.sort_by_key(|item| bucket(hash(item), buckets));
}

// ---- Validation and substitution ----

/// One expression's walk: placeholders substituted and marked used, DynamoDB's checks in
/// DynamoDB's order.
pub(super) struct Resolver<'s> {
    subs: &'s mut Substitutions,
    operators: usize,
    /// What the placeholders add to the expression's size, each time they are used.
    substituted: usize,
}

/// An operand after substitution, before it is known what it is an operand of.
enum Node {
    Path(Path),
    Value(String, AttributeValue),
    Call(Function, Vec<Node>),
}

/// The operators and functions DynamoDB checks the operands of.
#[derive(Clone, Copy)]
enum Operator {
    Compare(Comparator),
    Between,
    In,
    Arith(Arith),
    Function(Function),
}

/// Sets of DynamoDB types, by the names DynamoDB prints.
const ALL: &[&str] = &["S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS", "L", "M"];
const ORDERED: &[&str] = &["S", "N", "B"];
const STRING_BINARY: &[&str] = &["S", "B"];
const ITERABLE: &[&str] = &["S", "B", "SS", "NS", "BS", "L", "M"];
const NUMBER: &[&str] = &["N"];
const LIST: &[&str] = &["L"];
const BOOLEAN: &[&str] = &["BOOL"];

impl Operator {
    fn name(self) -> &'static str {
        match self {
            Operator::Compare(Comparator::Eq) => "=",
            Operator::Compare(Comparator::Ne) => "<>",
            Operator::Compare(Comparator::Lt) => "<",
            Operator::Compare(Comparator::Le) => "<=",
            Operator::Compare(Comparator::Gt) => ">",
            Operator::Compare(Comparator::Ge) => ">=",
            Operator::Between => "BETWEEN",
            Operator::In => "IN",
            Operator::Arith(Arith::Plus) => "+",
            Operator::Arith(Arith::Minus) => "-",
            Operator::Function(f) => f.name(),
        }
    }

    fn operand_types(self) -> &'static [&'static str] {
        match self {
            Operator::Compare(Comparator::Eq | Comparator::Ne) | Operator::In => ALL,
            Operator::Compare(_) | Operator::Between => ORDERED,
            Operator::Arith(_) => NUMBER,
            Operator::Function(Function::BeginsWith) => STRING_BINARY,
            Operator::Function(Function::Size) => ITERABLE,
            Operator::Function(Function::ListAppend) => LIST,
            Operator::Function(_) => ALL,
        }
    }

    /// Operands required; IN takes any number.
    fn arity(self) -> Option<usize> {
        match self {
            Operator::Compare(_) | Operator::Arith(_) => Some(2),
            Operator::Between => Some(3),
            Operator::In => None,
            Operator::Function(Function::AttributeExists | Function::AttributeNotExists | Function::Size) => Some(1),
            Operator::Function(_) => Some(2),
        }
    }

    /// Whether DynamoDB refuses the first operand's path among the others.
    fn wants_distinct(self) -> bool {
        !matches!(self, Operator::Arith(_) | Operator::Function(Function::ListAppend))
    }
}

fn returns(function: Function) -> &'static [&'static str] {
    match function {
        Function::Size => NUMBER,
        Function::ListAppend => LIST,
        Function::IfNotExists => ALL,
        _ => BOOLEAN,
    }
}

/// How DynamoDB names an operand's type in "Incorrect operand type".
fn type_shown(node: &Node) -> String {
    match node {
        Node::Value(_, value) => value.type_name().to_string(),
        Node::Call(f, _) if returns(*f).len() == 1 => returns(*f)[0].to_string(),
        _ => ANY_TYPE.to_string(),
    }
}

fn accepts(types: &[&str], node: &Node) -> bool {
    match node {
        Node::Path(_) => true,
        Node::Value(_, value) => types.contains(&value.type_name()),
        Node::Call(f, _) => returns(*f).iter().any(|t| types.contains(t)),
    }
}

fn wrong_type(operator: &str, shown: &str) -> String {
    format!("Incorrect operand type for operator or function; operator or function: {operator}, operand type: {shown}")
}

fn requires_path(function: Function) -> String {
    format!("Operator or function requires a document path; operator or function: {}", function.name())
}

fn path_text(path: &Path) -> String {
    let elements: Vec<String> = path
        .0
        .iter()
        .map(|e| match e {
            PathElement::Name(name) => name.clone(),
            PathElement::Index(i) => format!("[{i}]"),
        })
        .collect();
    format!("[{}]", elements.join(", "))
}

impl<'s> Resolver<'s> {
    pub fn new(subs: &'s mut Substitutions) -> Resolver<'s> {
        Resolver { subs, operators: 0, substituted: 0 }
    }

    /// DynamoDB's limit on an expression with its placeholders substituted.
    pub fn check_size(&self, text: &str) -> Result<(), String> {
        if text.encode_utf16().count() + self.substituted > MAX_SUBSTITUTED_SIZE {
            return Err("Expression size has exceeded the maximum allowed size;".to_string());
        }
        Ok(())
    }

    fn count_operator(&mut self) -> Result<(), String> {
        self.operators += 1;
        if self.operators > MAX_OPERATORS {
            return Err(format!("The expression contains too many operators; operator count: {}", self.operators));
        }
        Ok(())
    }

    fn path(&mut self, raw: &RawPath) -> Result<Path, String> {
        if raw.0.len() > MAX_PATH_DEPTH {
            return Err(format!("The document path has too many nesting levels; nesting levels: {}", raw.0.len()));
        }
        let mut elements = Vec::with_capacity(raw.0.len());
        for element in &raw.0 {
            elements.push(match element {
                RawElement::Id(name) => PathElement::Name(name.clone()),
                RawElement::Name(key) => {
                    let name = self.subs.name(key).map(str::to_string).ok_or_else(|| {
                        format!("An expression attribute name used in the document path is not defined; attribute name: {key}")
                    })?;
                    self.substituted += name.len();
                    PathElement::Name(name)
                }
                RawElement::Value(key) => {
                    return Err(format!(
                        "The document path cannot contain attribute value parameters; attribute value: {key}"
                    ));
                }
                RawElement::Index(digits) => PathElement::Index(list_index(digits)?),
            });
        }
        Ok(Path(elements))
    }

    fn value(&mut self, key: &str) -> Result<AttributeValue, String> {
        let value = self.subs.value(key).map(|p| p.value.clone()).ok_or_else(|| {
            format!("An expression attribute value used in expression is not defined; attribute value: {key}")
        })?;
        self.substituted += value_size(&value);
        Ok(value)
    }

    fn node(&mut self, raw: &RawOperand) -> Result<Node, String> {
        match raw {
            RawOperand::Path(path) => Ok(Node::Path(self.path(path)?)),
            RawOperand::Value(key) => Ok(Node::Value(key.clone(), self.value(key)?)),
            RawOperand::Call(call) => {
                let (function, args) = self.call(call)?;
                Ok(Node::Call(function, args))
            }
        }
    }

    fn call(&mut self, call: &RawCall) -> Result<(Function, Vec<Node>), String> {
        let args = call.args.iter().map(|arg| self.node(arg)).collect::<Result<Vec<_>, _>>()?;
        let function = Function::from_name(&call.name).ok_or_else(|| invalid_function(&call.name))?;
        self.check(Operator::Function(function), &args)?;
        Ok((function, args))
    }

    /// DynamoDB's checks on an operator's operands, after the operands' own: their number,
    /// their types, a first path repeated among them, the operator's own rules.
    fn check(&mut self, operator: Operator, operands: &[Node]) -> Result<(), String> {
        if operator.arity().is_some_and(|n| n != operands.len()) {
            return Err(format!(
                "Incorrect number of operands for operator or function; operator or function: {}, number of operands: {}",
                operator.name(),
                operands.len()
            ));
        }
        if let Some(wrong) = operands.iter().find(|o| !accepts(operator.operand_types(), o)) {
            return Err(wrong_type(operator.name(), &type_shown(wrong)));
        }
        if let [Node::Path(first), rest @ ..] = operands
            && operator.wants_distinct()
            && rest.iter().any(|o| matches!(o, Node::Path(p) if p == first))
        {
            return Err(format!(
                "The first operand must be distinct from the remaining operands for this operator or function; operator: {}, first operand: {}",
                operator.name(),
                path_text(first)
            ));
        }
        match (operator, operands) {
            (Operator::Between, [_, Node::Value(low, l), Node::Value(high, h)]) => {
                self.check_bounds(low, l, high, h)?
            }
            (Operator::In, [_, rest @ ..]) if rest.len() > MAX_IN_OPERANDS => {
                return Err(format!(
                    "The IN operator is provided with too many operands; number of operands: {}",
                    rest.len()
                ));
            }
            (
                Operator::Function(
                    f @ (Function::AttributeExists | Function::AttributeNotExists | Function::IfNotExists),
                ),
                [first, ..],
            ) if !matches!(first, Node::Path(_)) => return Err(requires_path(f)),
            (Operator::Function(Function::AttributeType), [_, type_name]) => check_type_name(type_name)?,
            _ => {}
        }
        self.count_operator()
    }

    fn check_bounds(
        &self,
        low_key: &str,
        low: &AttributeValue,
        high_key: &str,
        high: &AttributeValue,
    ) -> Result<(), String> {
        let problem = if low.type_name() != high.type_name() {
            "The BETWEEN operator requires same data type for lower and upper bounds"
        } else if greater(low, high) {
            "The BETWEEN operator requires upper bound to be greater than or equal to lower bound"
        } else {
            return Ok(());
        };
        let shown = |key: &str| self.subs.values.entries.get(key).map(Placeholder::shown).unwrap_or_default();
        Err(format!("{problem}; lower bound operand: {}, upper bound operand: {}", shown(low_key), shown(high_key)))
    }

    // -- conditions --

    pub fn condition(&mut self, raw: &RawCondition) -> Result<Condition, String> {
        let (first, joints) = raw.chain();
        let mut condition = self.negated(first)?;
        for (and, right) in joints {
            let right = Box::new(self.negated(right)?);
            self.count_operator()?;
            let left = Box::new(condition);
            condition = if and { Condition::And(left, right) } else { Condition::Or(left, right) };
        }
        Ok(condition)
    }

    fn negated(&mut self, raw: &RawCondition) -> Result<Condition, String> {
        let (nots, inner) = raw.negated();
        let mut condition = match inner {
            RawCondition::And(..) | RawCondition::Or(..) => self.condition(inner)?,
            _ => self.single(inner)?,
        };
        for _ in 0..nots {
            self.count_operator()?;
            condition = Condition::Not(Box::new(condition));
        }
        Ok(condition)
    }

    /// A comparison or a function. Kept out of the recursion above, whose stack frames it would
    /// otherwise swell.
    #[inline(never)]
    fn single(&mut self, raw: &RawCondition) -> Result<Condition, String> {
        match raw {
            RawCondition::Compare(left, comparator, right) => {
                let nodes = [self.node(left)?, self.node(right)?];
                self.check(Operator::Compare(*comparator), &nodes)?;
                let [left, right] = nodes;
                Ok(Condition::Compare(operand(left)?, *comparator, operand(right)?))
            }
            RawCondition::Between(value, low, high) => {
                let nodes = [self.node(value)?, self.node(low)?, self.node(high)?];
                self.check(Operator::Between, &nodes)?;
                let [value, low, high] = nodes;
                Ok(Condition::Between(operand(value)?, operand(low)?, operand(high)?))
            }
            RawCondition::In(value, list) => {
                let mut nodes = vec![self.node(value)?];
                for item in list {
                    nodes.push(self.node(item)?);
                }
                self.check(Operator::In, &nodes)?;
                let mut operands = nodes.into_iter().map(operand).collect::<Result<Vec<_>, _>>()?;
                let first = operands.remove(0);
                Ok(Condition::In(first, operands))
            }
            RawCondition::Call(call) => {
                let (function, args) = self.call(call)?;
                function_condition(function, args)
            }
            chain => self.condition(chain),
        }
    }

    // -- projections and updates --

    pub fn projection(&mut self, raw: &[RawPath]) -> Result<Vec<Path>, String> {
        self.paths(&raw.iter().collect::<Vec<_>>())
    }

    /// The paths of a projection or of an update's actions, read from the last to the first,
    /// each substituted before it joins the others.
    fn paths(&mut self, raw: &[&RawPath]) -> Result<Vec<Path>, String> {
        let mut tree = PathTree::default();
        let mut paths = Vec::with_capacity(raw.len());
        for raw in raw.iter().rev() {
            let path = self.path(raw)?;
            tree.insert(&path, 0)?;
            paths.push(path);
        }
        paths.reverse();
        Ok(paths)
    }

    pub fn update(&mut self, sections: &[RawSection]) -> Result<Update, String> {
        let actions: Vec<&RawAction> = sections.iter().flat_map(|s| &s.actions).collect();
        let paths = self.paths(&actions.iter().map(|a| a.path()).collect::<Vec<_>>())?;
        let mut written = Vec::with_capacity(actions.len());
        for action in actions.iter().rev() {
            written.push(self.written(action)?);
        }
        let mut update = Update::default();
        for (path, written) in paths.into_iter().zip(written.into_iter().rev()) {
            match written {
                Written::Set(value) => update.set.push((path, value)),
                Written::Remove => update.remove.push(path),
                Written::Add(value) => update.add.push((path, value)),
                Written::Delete(value) => update.delete.push((path, value)),
            }
        }
        Ok(update)
    }

    fn written(&mut self, action: &RawAction) -> Result<Written, String> {
        Ok(match action {
            RawAction::Set(_, value) => Written::Set(self.set_value(value)?),
            RawAction::Remove(_) => Written::Remove,
            RawAction::Add(_, key) => Written::Add(self.typed_value(key, "ADD", &["N", "SS", "NS", "BS"])?),
            RawAction::Delete(_, key) => Written::Delete(self.typed_value(key, "DELETE", &["SS", "NS", "BS"])?),
        })
    }

    /// The value of an ADD or DELETE action, of a type the action takes.
    fn typed_value(&mut self, key: &str, action: &str, allowed: &[&str]) -> Result<AttributeValue, String> {
        let value = self.value(key)?;
        if !allowed.contains(&value.type_name()) {
            return Err(format!(
                "Incorrect operand type for operator or function; operator: {action}, operand type: {}, typeSet: ALLOWED_FOR_{action}_OPERAND",
                long_type_name(&value)
            ));
        }
        Ok(value)
    }

    fn set_value(&mut self, raw: &RawSetValue) -> Result<SetValue, String> {
        match raw {
            RawSetValue::Operand(raw) => Ok(SetValue::Operand(set_operand(self.node(raw)?)?)),
            RawSetValue::Arithmetic(left, op, right) => {
                let nodes = [self.node(left)?, self.node(right)?];
                self.check(Operator::Arith(*op), &nodes)?;
                let [left, right] = nodes;
                let (left, right) = (set_operand(left)?, set_operand(right)?);
                Ok(match op {
                    Arith::Plus => SetValue::Plus(left, right),
                    Arith::Minus => SetValue::Minus(left, right),
                })
            }
        }
    }
}

/// What an update action writes, once substituted.
enum Written {
    Set(SetValue),
    Remove,
    Add(AttributeValue),
    Delete(AttributeValue),
}

/// A function's arguments, counted already by [`Resolver::check`].
fn args<const N: usize>(function: Function, args: Vec<Node>) -> Result<[Node; N], String> {
    let count = args.len();
    <[Node; N]>::try_from(args).map_err(|_| {
        format!(
            "Incorrect number of operands for operator or function; operator or function: {}, number of operands: {count}",
            function.name()
        )
    })
}

/// DynamoDB's Java names of the types, in ADD and DELETE errors.
fn long_type_name(value: &AttributeValue) -> &'static str {
    match value {
        AttributeValue::S(_) => "STRING",
        AttributeValue::N(_) => "NUMBER",
        AttributeValue::B(_) => "BINARY",
        AttributeValue::Bool(_) => "BOOLEAN",
        AttributeValue::Null => "NULL",
        AttributeValue::M(_) => "MAP",
        AttributeValue::L(_) => "LIST",
        AttributeValue::Ss(_) => "STRING_SET",
        AttributeValue::Ns(_) => "NUMBER_SET",
        AttributeValue::Bs(_) => "BINARY_SET",
    }
}

/// Whether `low` sorts after `high`; both of one of the ordered types.
fn greater(low: &AttributeValue, high: &AttributeValue) -> bool {
    match (low, high) {
        (AttributeValue::N(l), AttributeValue::N(h)) => l > h,
        (AttributeValue::S(l), AttributeValue::S(h)) => l.as_bytes() > h.as_bytes(),
        (AttributeValue::B(l), AttributeValue::B(h)) => l > h,
        _ => false,
    }
}

/// attribute_type's second operand: a string value naming a type.
fn check_type_name(node: &Node) -> Result<(), String> {
    match node {
        Node::Value(_, AttributeValue::S(name)) if ALL.contains(&name.as_str()) => Ok(()),
        Node::Value(_, AttributeValue::S(name)) => {
            Err(format!("Invalid attribute type name found; type: {name}, valid types: {TYPE_NAMES}"))
        }
        other => Err(wrong_type(Function::AttributeType.name(), &type_shown(other))),
    }
}

/// A condition operand. The parse-time checks leave only paths, values and `size` here.
fn operand(node: Node) -> Result<Operand, String> {
    match node {
        Node::Path(path) => Ok(Operand::Path(path)),
        Node::Value(_, value) => Ok(Operand::Value(value)),
        Node::Call(Function::Size, arguments) => match args(Function::Size, arguments)? {
            [Node::Path(path)] => Ok(Operand::Size(path)),
            // The size of a literal is a constant.
            [Node::Value(_, value)] => size_of(&value)
                .map(|n| Operand::Value(AttributeValue::N(Number::from(n))))
                .ok_or_else(|| wrong_type("size", value.type_name())),
            [Node::Call(..)] => Err(wrong_type("size", NUMBER[0])),
        },
        Node::Call(function, _) => Err(misplaced_function(function.name())),
    }
}

/// DynamoDB's size(): characters (UTF-16 units) of a string, bytes of a binary, elements of a
/// set, list or map.
fn size_of(value: &AttributeValue) -> Option<usize> {
    Some(match value {
        AttributeValue::S(s) => s.encode_utf16().count(),
        AttributeValue::B(b) => b.len(),
        AttributeValue::Ss(v) => v.len(),
        AttributeValue::Ns(v) => v.len(),
        AttributeValue::Bs(v) => v.len(),
        AttributeValue::L(v) => v.len(),
        AttributeValue::M(v) => v.len(),
        _ => return None,
    })
}

/// A function used as a condition.
fn function_condition(function: Function, arguments: Vec<Node>) -> Result<Condition, String> {
    let two = |arguments| -> Result<(Operand, Operand), String> {
        let [first, second] = args(function, arguments)?;
        Ok((operand(first)?, operand(second)?))
    };
    Ok(match function {
        Function::AttributeExists | Function::AttributeNotExists => {
            let [Node::Path(path)] = args(function, arguments)? else {
                return Err(requires_path(function));
            };
            if function == Function::AttributeExists {
                Condition::AttributeExists(path)
            } else {
                Condition::AttributeNotExists(path)
            }
        }
        Function::AttributeType => {
            let (value, type_name) = two(arguments)?;
            let Operand::Value(AttributeValue::S(name)) = &type_name else {
                return Err(wrong_type(function.name(), ANY_TYPE));
            };
            match value {
                Operand::Path(path) => Condition::AttributeType(path, type_name),
                // On a literal the answer is known now; on size() it is "N" when size() has one.
                Operand::Value(value) => constant(value.type_name() == name),
                Operand::Size(path) if name == "N" => Condition::Compare(
                    Operand::Size(path),
                    Comparator::Ge,
                    Operand::Value(AttributeValue::N(Number::from(0))),
                ),
                Operand::Size(_) => constant(false),
            }
        }
        Function::BeginsWith => {
            let (value, prefix) = two(arguments)?;
            Condition::BeginsWith(value, prefix)
        }
        Function::Contains => {
            let (value, operand) = two(arguments)?;
            Condition::Contains(value, operand)
        }
        Function::Size => return Err(misplaced_function(function.name())),
        Function::IfNotExists | Function::ListAppend => {
            return Err(update_only_function(function.name()));
        }
    })
}

/// A condition that is always true or always false, in the AST's terms.
fn constant(truth: bool) -> Condition {
    let zero = || Operand::Value(AttributeValue::N(Number::from(0)));
    Condition::Compare(zero(), if truth { Comparator::Eq } else { Comparator::Ne }, zero())
}

/// An operand of a SET action. The parse-time checks leave only update functions here.
fn set_operand(node: Node) -> Result<SetOperand, String> {
    match node {
        Node::Path(path) => Ok(SetOperand::Path(path)),
        Node::Value(_, value) => Ok(SetOperand::Value(value)),
        Node::Call(Function::IfNotExists, arguments) => {
            let [Node::Path(path), fallback] = args(Function::IfNotExists, arguments)? else {
                return Err(requires_path(Function::IfNotExists));
            };
            Ok(SetOperand::IfNotExists(path, Box::new(set_operand(fallback)?)))
        }
        Node::Call(Function::ListAppend, arguments) => {
            let [first, second] = args(Function::ListAppend, arguments)?;
            Ok(SetOperand::ListAppend(Box::new(set_operand(first)?), Box::new(set_operand(second)?)))
        }
        Node::Call(function, _) => Err(condition_only_function(function.name())),
    }
}

/// DynamoDB's limit on what an update writes: the names in the paths SET and ADD write, and
/// the values they use, each time they use them. Not prefixed by the expression's name.
pub(super) fn check_update_size(update: &Update) -> ApiResult<()> {
    let names = |path: &Path| -> usize {
        let names: BTreeSet<&str> = path
            .0
            .iter()
            .filter_map(|e| match e {
                PathElement::Name(name) => Some(name.as_str()),
                PathElement::Index(_) => None,
            })
            .collect();
        names.iter().map(|name| name.len()).sum()
    };
    let set: usize = update.set.iter().map(|(path, value)| names(path) + set_value_size(value)).sum();
    let add: usize = update.add.iter().map(|(path, value)| names(path) + value_size(value)).sum();
    if set + add > MAX_UPDATE_SIZE {
        return Err(ApiError::validation("Item size to update has exceeded the maximum allowed size"));
    }
    Ok(())
}

fn set_value_size(value: &SetValue) -> usize {
    match value {
        SetValue::Operand(operand) => set_operand_size(operand),
        SetValue::Plus(left, right) | SetValue::Minus(left, right) => set_operand_size(left) + set_operand_size(right),
    }
}

fn set_operand_size(operand: &SetOperand) -> usize {
    match operand {
        SetOperand::Path(_) => 0,
        SetOperand::Value(value) => value_size(value),
        SetOperand::IfNotExists(_, fallback) => set_operand_size(fallback),
        SetOperand::ListAppend(first, second) => set_operand_size(first) + set_operand_size(second),
    }
}

// ---- Overlapping paths ----

/// The paths of a projection or an update, as DynamoDB files them to find two that overlap (one
/// is the other or inside it) or conflict (one uses an element as a map, the other as a list).
/// Children keep the order they came in: DynamoDB reports its "path two" by following the first
/// child of its Java hash map at each level.
#[derive(Default)]
struct PathTree {
    /// `None`: a path ends at this element.
    children: Vec<(PathElement, Option<PathTree>)>,
}

impl PathTree {
    fn insert(&mut self, path: &Path, depth: usize) -> Result<(), String> {
        let element = &path.0[depth];
        let Some(slot) = self.children.iter().position(|(e, _)| e == element) else {
            if self.first().is_some_and(|first| is_index(first) != is_index(element)) {
                return Err(clash("conflict", path, self.leaf_path(path, depth)));
            }
            self.children.push((element.clone(), PathTree::chain(&path.0[depth + 1..])));
            return Ok(());
        };
        if depth + 1 < path.0.len()
            && let Some(child) = &mut self.children[slot].1
        {
            return child.insert(path, depth + 1);
        }
        Err(clash("overlap", path, self.leaf_path(path, depth)))
    }

    fn chain(rest: &[PathElement]) -> Option<PathTree> {
        let (first, rest) = rest.split_first()?;
        Some(PathTree { children: vec![(first.clone(), PathTree::chain(rest))] })
    }

    /// The child a Java `HashMap` iterates first.
    fn first(&self) -> Option<&PathElement> {
        let buckets = map_buckets(self.children.len());
        self.children.iter().map(|(e, _)| e).min_by_key(|e| bucket(element_hash(e), buckets))
    }

    /// The path DynamoDB reports as "path two": `path` up to `depth`, then first children down
    /// to the end of a path.
    fn leaf_path(&self, path: &Path, depth: usize) -> Path {
        let mut elements = path.0[..depth].to_vec();
        let mut node = self;
        while let Some(first) = node.first() {
            elements.push(first.clone());
            match node.children.iter().find(|(e, _)| e == first) {
                Some((_, Some(child))) => node = child,
                _ => break,
            }
        }
        Path(elements)
    }
}

fn is_index(element: &PathElement) -> bool {
    matches!(element, PathElement::Index(_))
}

/// The hash DynamoDB's path elements have in Java (Apache's `HashCodeBuilder(8191, 127)` over the
/// name or the index).
fn element_hash(element: &PathElement) -> i32 {
    let seed = 8191i32 * 127;
    match element {
        PathElement::Name(name) => seed.wrapping_add(java_hash(name)),
        PathElement::Index(i) => seed.wrapping_add(*i as i32),
    }
}

fn clash(kind: &str, one: &Path, two: Path) -> String {
    format!(
        "Two document paths {kind} with each other; must remove or rewrite one of these paths; path one: {}, path two: {}",
        path_text(one),
        path_text(&two)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn new(names: Value, values: Value) -> ApiResult<Substitutions> {
        Substitutions::new(names.as_object(), values.as_object())
    }

    fn message(names: Value, values: Value) -> String {
        let error = new(names, values).err().expect("an error");
        assert_eq!(error.kind, ErrorKind::Validation, "{}", error.message);
        error.message
    }

    #[test]
    fn map_messages() {
        assert_eq!(message(json!({}), Value::Null), "ExpressionAttributeNames must not be empty");
        assert_eq!(message(Value::Null, json!({})), "ExpressionAttributeValues must not be empty");
        assert_eq!(message(json!({"#a": null}), Value::Null), "ExpressionAttributeNames must not be empty");
        assert_eq!(
            message(json!({"a": "a"}), Value::Null),
            r#"ExpressionAttributeNames contains invalid key: Syntax error; key: "a""#
        );
        for key in ["#", "#a-b", "#a b", ":a", "##a", "#a#"] {
            assert_eq!(
                message(json!({ key: "x" }), Value::Null),
                format!(r#"ExpressionAttributeNames contains invalid key: Syntax error; key: "{key}""#)
            );
        }
        assert_eq!(
            message(json!({"": "x"}), Value::Null),
            "ExpressionAttributeNames contains invalid key: The expression attribute map contains an empty key;"
        );
        let long = format!("#{}", "a".repeat(255));
        assert_eq!(
            message(json!({ long.clone(): "x" }), Value::Null),
            "ExpressionAttributeNames contains invalid key: The expression attribute map contains a key that is too long; size of key: 256"
        );
        assert!(message(json!({ format!("{long}-x"): "x" }), Value::Null).contains("size of key: 258"));
        assert_eq!(
            message(Value::Null, json!({ format!(":{}", "a".repeat(255)): {"S": "x"} })),
            "ExpressionAttributeValues contains invalid key: The expression attribute map contains a key that is too long;"
        );
        assert_eq!(
            message(Value::Null, json!({":b": {"a": ""}, "b": {"S": "a"}})),
            r#"ExpressionAttributeValues contains invalid key: Syntax error; key: "b""#
        );
        assert_eq!(
            message(Value::Null, json!({":b": {}})),
            "ExpressionAttributeValues contains invalid value: Supplied AttributeValue is empty, must contain exactly one of the supported datatypes for key :b"
        );
        assert_eq!(
            message(Value::Null, json!({":b": {"SS": []}})),
            "ExpressionAttributeValues contains invalid value: One or more parameter values were invalid: An string set  may not be empty for key :b"
        );
        assert_eq!(
            message(Value::Null, json!({":b": {"N": "b"}})),
            "ExpressionAttributeValues contains invalid value: The parameter cannot be converted to a numeric value: b for key :b"
        );
        assert_eq!(
            message(Value::Null, json!({":b": {"S": "a", "N": "1"}})),
            "ExpressionAttributeValues contains invalid value: Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes for key :b"
        );
        assert_eq!(
            message(json!({"#a": ""}), Value::Null),
            "ExpressionAttributeNames contains invalid value: Empty attribute name for key #a"
        );
        assert_eq!(
            message(json!({"#a": "a".repeat(65536)}), Value::Null),
            "ExpressionAttributeNames contains invalid value: Attribute name is too large, must be less than 65536 bytes for key #a"
        );
        // Values are checked before names' values, keys before both.
        assert!(
            message(json!({"#a": ""}), json!({":b": {}}))
                .starts_with("ExpressionAttributeValues contains invalid value")
        );
        assert!(
            message(json!({"#a": ""}), json!({"b": {}})).starts_with("ExpressionAttributeValues contains invalid key")
        );
        assert!(
            message(json!({"a": ""}), json!({"b": {}})).starts_with("ExpressionAttributeNames contains invalid key")
        );
        // Whitespace around a key is tolerated, as DynamoDB's lexer skips it.
        assert!(new(json!({" #a ": "a"}), json!({":v\n": {"S": "x"}})).is_ok());
        // JSON type mismatches are SerializationExceptions, ahead of everything.
        let error = new(json!({"#a": 5, "a": "x"}), Value::Null).err().unwrap();
        assert_eq!(
            (error.kind, error.message.as_str()),
            (ErrorKind::Serialization, "NUMBER_VALUE cannot be converted to String")
        );
        let error = new(json!({"a": "x"}), json!({":a": {"SS": []}, ":b": {"S": 5}})).err().unwrap();
        assert_eq!(error.kind, ErrorKind::Serialization);
    }

    #[test]
    fn map_sizes() {
        // Names are at most 64 KB each: 2 MB takes many.
        let names = |n: usize| -> Value {
            (0..n).map(|i| (format!("#n{i}"), Value::from("a".repeat(60_000)))).collect::<Map<_, _>>().into()
        };
        assert_eq!(message(names(36), Value::Null), "ExpressionAttributeNames exceeds max size");
        let big = "a".repeat(1024 * 1024);
        assert_eq!(
            message(Value::Null, json!({":a": {"S": big}, ":b": {"S": big}})),
            "ExpressionAttributeValues exceeds max size"
        );
        assert_eq!(
            message(names(20), json!({":a": {"S": big}})),
            "Combined size of ExpressionAttributeNames and ExpressionAttributeValues exceeds max size"
        );
        assert!(new(names(17), json!({":a": {"S": big}})).is_ok());
    }

    #[test]
    fn unused_keys_in_dynamodb_order() {
        let subs =
            new(json!({"#a": "a", "#b": "b"}), json!({":create_at_1_v1": {"N": "1"}, ":create_at_2_v1": {"N": "2"}}))
                .unwrap();
        assert_eq!(
            subs.finish().unwrap_err().message,
            "Value provided in ExpressionAttributeNames unused in expressions: keys: {#a, #b}"
        );
        let subs = new(Value::Null, json!({":create_at_1_v1": {"N": "1"}, ":create_at_2_v1": {"N": "2"}})).unwrap();
        // As DynamoDB answered (awspilot/dynamodb-oop#29).
        assert_eq!(
            subs.finish().unwrap_err().message,
            "Value provided in ExpressionAttributeValues unused in expressions: keys: {:create_at_2_v1, :create_at_1_v1}"
        );
        assert!(new(Value::Null, Value::Null).unwrap().finish().is_ok());
    }

    #[test]
    fn java_hashes() {
        assert_eq!(java_hash(""), 0);
        assert_eq!(java_hash("a"), 97);
        assert_eq!(java_hash("[3]"), 89125);
        // Overflow wraps as in Java: "polygenelubricants".hashCode() == Integer.MIN_VALUE.
        assert_eq!(java_hash("polygenelubricants"), i32::MIN);
        assert_eq!(java_hash("é"), 233);
        assert_eq!(bucket(1_040_257 + 97, 16), 13);
        assert_eq!(bucket(1_040_257 + 89125, 16), 7);
        assert_eq!(buckets_after_puts(16, 12), 16);
        assert_eq!(buckets_after_puts(16, 13), 32);
        assert_eq!(copy_buckets(11), 16);
        assert_eq!(copy_buckets(12), 32);
    }
}
