//! The last stage of parsing: the syntax tree with its placeholders substituted, checked the way
//! DynamoDB checks it (operands, functions, paths, limits) and turned into the [`super::ast`]
//! types.
//!
//! DynamoDB validates an expression by walking it bottom-up, children left to right before the
//! operator that holds them, substituting as it goes, so the first problem met in that walk is
//! the one reported. An update expression is walked as a list of its actions from the last back
//! to the first, twice: first the paths it writes (with their `#name`s), then the values.

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

use std::collections::BTreeSet;

use super::ast::{Comparator, Condition, Operand, Path, PathElement, SetOperand, SetValue, Update};
use super::java_order::{bucket, java_hash, map_buckets};
use super::substitution::Substitutions;
use super::syntax::{
    Arith, Function, RawAction, RawCall, RawCondition, RawElement, RawOperand, RawPath, RawSection, RawSetValue,
    condition_only_function, invalid_function, list_index, misplaced_function, update_only_function,
};
use crate::error::{ApiError, ApiResult};
use crate::model::size::value_size;
use crate::model::{AttributeValue, Number};

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
        let value = self.subs.value(key).cloned().ok_or_else(|| {
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
        let (low, high) = (self.subs.shown_value(low_key), self.subs.shown_value(high_key));
        Err(format!("{problem}; lower bound operand: {low}, upper bound operand: {high}"))
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
