//! The one AST every expression parses into: condition, filter, key-condition, projection and
//! update expressions, and the legacy parameters (`Expected`, `AttributeUpdates`,
//! `AttributesToGet`, ...) translated into the same shapes. Names and values are already
//! substituted: no `#name` or `:value` survives parsing.

use crate::model::AttributeValue;

/// One step of a document path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathElement {
    /// An attribute name (first element) or a map key (later elements).
    Name(String),
    /// A list index, `[n]`.
    Index(u32),
}

/// A document path such as `profile.phones[1]`. Never empty; the first element is a `Name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Path(pub Vec<PathElement>);

/// Something a condition compares or a function takes.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Path(Path),
    Value(AttributeValue),
    /// `size(path)`.
    Size(Path),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A condition, filter or key-condition expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Compare(Operand, Comparator, Operand),
    /// `a BETWEEN low AND high`
    Between(Operand, Operand, Operand),
    /// `a IN (b, c, ...)`
    In(Operand, Vec<Operand>),
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    Not(Box<Condition>),
    AttributeExists(Path),
    AttributeNotExists(Path),
    /// `attribute_type(path, :type)`; the operand holds the type name ("S", "SS", "NULL", ...).
    AttributeType(Path, Operand),
    BeginsWith(Operand, Operand),
    Contains(Operand, Operand),
}

/// The right-hand side of a SET action.
#[derive(Debug, Clone, PartialEq)]
pub enum SetValue {
    Operand(SetOperand),
    Plus(SetOperand, SetOperand),
    Minus(SetOperand, SetOperand),
}

#[derive(Debug, Clone, PartialEq)]
pub enum SetOperand {
    Path(Path),
    Value(AttributeValue),
    /// `if_not_exists(path, operand)`
    IfNotExists(Path, Box<SetOperand>),
    /// `list_append(a, b)`
    ListAppend(Box<SetOperand>, Box<SetOperand>),
}

/// An update expression (or translated `AttributeUpdates`), actions in the order written.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Update {
    pub set: Vec<(Path, SetValue)>,
    pub remove: Vec<Path>,
    /// ADD path value: numbers are added, sets united.
    pub add: Vec<(Path, AttributeValue)>,
    /// DELETE path set: elements removed from a set.
    pub delete: Vec<(Path, AttributeValue)>,
}

impl Update {
    /// No action at all: UpdateItem without UpdateExpression, or with empty AttributeUpdates.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty() && self.add.is_empty() && self.delete.is_empty()
    }
}
