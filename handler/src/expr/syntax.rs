//! The syntax tree the parser emits: close to the text, placeholders not yet substituted. The
//! resolver (`super::resolve`) turns it into the [`super::ast`] types. Also the names of the
//! functions and the messages about where each may appear, which both stages use.

use super::ast::Comparator;

/// A document path as written: placeholders not yet substituted.
#[derive(Debug)]
pub(super) struct RawPath(pub Vec<RawElement>);

#[derive(Debug)]
pub(super) enum RawElement {
    /// A bare attribute name or map key.
    Id(String),
    /// `#name`.
    Name(String),
    /// `.:value`, which the grammar takes but DynamoDB refuses later.
    Value(String),
    /// `[digits]`.
    Index(String),
}

#[derive(Debug)]
pub(super) enum RawOperand {
    Path(RawPath),
    Value(String),
    Call(RawCall),
}

#[derive(Debug)]
pub(super) struct RawCall {
    pub name: String,
    pub args: Vec<RawOperand>,
}

#[derive(Debug)]
pub(super) enum RawCondition {
    Compare(RawOperand, Comparator, RawOperand),
    Between(RawOperand, RawOperand, RawOperand),
    In(RawOperand, Vec<RawOperand>),
    Call(RawCall),
    Not(Box<RawCondition>),
    And(Box<RawCondition>, Box<RawCondition>),
    Or(Box<RawCondition>, Box<RawCondition>),
}

impl RawCondition {
    /// An AND/OR chain from its left end: the first condition, then each operator (`true` for
    /// AND) with the condition on its right. Chains are walked this way, without recursion: they
    /// can be as long as the text.
    pub fn chain(&self) -> (&RawCondition, Vec<(bool, &RawCondition)>) {
        let mut joints = Vec::new();
        let mut first = self;
        while let RawCondition::And(left, right) | RawCondition::Or(left, right) = first {
            joints.push((matches!(first, RawCondition::And(..)), &**right));
            first = left;
        }
        joints.reverse();
        (first, joints)
    }

    /// The NOTs in front of a condition (also walked without recursion), and the condition.
    pub fn negated(&self) -> (usize, &RawCondition) {
        let (mut nots, mut inner) = (0, self);
        while let RawCondition::Not(next) = inner {
            nots += 1;
            inner = next;
        }
        (nots, inner)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Arith {
    Plus,
    Minus,
}

#[derive(Debug)]
pub(super) enum RawSetValue {
    Operand(RawOperand),
    Arithmetic(RawOperand, Arith, RawOperand),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Clause {
    Set,
    Remove,
    Add,
    Delete,
}

impl Clause {
    pub fn keyword(self) -> &'static str {
        match self {
            Clause::Set => "SET",
            Clause::Remove => "REMOVE",
            Clause::Add => "ADD",
            Clause::Delete => "DELETE",
        }
    }
}

#[derive(Debug)]
pub(super) enum RawAction {
    Set(RawPath, RawSetValue),
    Remove(RawPath),
    /// The `:value` key.
    Add(RawPath, String),
    Delete(RawPath, String),
}

impl RawAction {
    pub fn path(&self) -> &RawPath {
        match self {
            RawAction::Set(path, _)
            | RawAction::Remove(path)
            | RawAction::Add(path, _)
            | RawAction::Delete(path, _) => path,
        }
    }
}

#[derive(Debug)]
pub(super) struct RawSection {
    pub clause: Clause,
    pub actions: Vec<RawAction>,
}

/// The functions expressions may call. Names are case-sensitive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Function {
    AttributeExists,
    AttributeNotExists,
    AttributeType,
    BeginsWith,
    Contains,
    Size,
    IfNotExists,
    ListAppend,
}

impl Function {
    const ALL: [Function; 8] = [
        Function::AttributeExists,
        Function::AttributeNotExists,
        Function::AttributeType,
        Function::BeginsWith,
        Function::Contains,
        Function::Size,
        Function::IfNotExists,
        Function::ListAppend,
    ];

    pub fn from_name(name: &str) -> Option<Function> {
        Function::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Function::AttributeExists => "attribute_exists",
            Function::AttributeNotExists => "attribute_not_exists",
            Function::AttributeType => "attribute_type",
            Function::BeginsWith => "begins_with",
            Function::Contains => "contains",
            Function::Size => "size",
            Function::IfNotExists => "if_not_exists",
            Function::ListAppend => "list_append",
        }
    }

    /// Update functions; the others belong to conditions.
    pub fn in_update(self) -> bool {
        matches!(self, Function::IfNotExists | Function::ListAppend)
    }
}

pub(super) fn invalid_function(name: &str) -> String {
    format!("Invalid function name; function: {name}")
}

pub(super) fn misplaced_function(name: &str) -> String {
    format!("The function is not allowed to be used this way in an expression; function: {name}")
}

pub(super) fn condition_only_function(name: &str) -> String {
    format!("The function is not allowed in an update expression; function: {name}")
}

pub(super) fn update_only_function(name: &str) -> String {
    format!("The function is not allowed in a condition expression; function: {name}")
}

/// A list index as DynamoDB reads it: into a Java `int`.
pub(super) fn list_index(digits: &str) -> Result<u32, String> {
    digits
        .parse::<i32>()
        .map(i32::unsigned_abs)
        .map_err(|_| format!("List index is not within the allowable range; index: [{digits}]"))
}
