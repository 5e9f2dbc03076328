//! Parsing condition, filter, key-condition, projection and update expressions, in DynamoDB's
//! three stages and with its messages:
//!
//! 1. **Syntax.** DynamoDB's parser is an ANTLR grammar (see the lexer for the tokens):
//!    ```text
//!    condition  : operand comparator operand | operand IN '(' operand (',' operand)* ')'
//!               | operand BETWEEN operand AND operand | function | '(' condition ')'
//!               | NOT condition | condition AND condition | condition OR condition
//!    operand    : path | ':value' | function | '(' operand ')'
//!    function   : ID '(' operand (',' operand)* ')'
//!    path       : (ID | '#name') ('.' (ID | '#name' | ':value') | '[' INDEX ']')*
//!    update     : (SET set_action (',' set_action)* | REMOVE path (',' path)*
//!                 | ADD path ':value' (',' ...)* | DELETE path ':value' (',' ...)*)+
//!    set_action : path '=' (operand | arithmetic)
//!    arithmetic : operand ('+' | '-') operand | '(' arithmetic ')'
//!    projection : path (',' path)*
//!    ```
//!    with NOT binding tighter than AND, AND tighter than OR, both left-associative. A syntax
//!    error names the first token that cannot continue any valid expression. Parentheses
//!    directly around parentheses are refused as soon as the outer ones close.
//! 2. **Parse-time checks**, in the order of the text: reserved words as bare names, list
//!    indexes beyond Java's `int`, function names and where each function may appear, and
//!    repeated update sections ([`Walk`]).
//! 3. **Validation and substitution** of `#name`s and `:value`s, operand counts and types,
//!    overlapping paths and limits, in [`super::resolve`].
//!
//! The parser emits a syntax tree close to the text ([`super::syntax`]); the last stage turns it
//! into the [`super::ast`] types.

use super::ast::{Comparator, Condition, Path, Update};
use super::lexer::{Kind, Tokens};
use super::reserved::is_reserved;
use super::resolve::Resolver;
use super::substitution::Substitutions;
use super::syntax::*;
use crate::error::{ApiError, ApiResult};

/// Expression length limit, in UTF-16 units as DynamoDB (Java) counts string length.
const MAX_EXPRESSION_LENGTH: usize = 4096;

/// Parentheses and function calls the parser follows into; deeper nesting is a syntax error at
/// the token that goes too deep. Each level of a valid expression holds an operator of its own
/// (DynamoDB allows 300), so only contrived expressions nest this deep, and the bound keeps the
/// parser's stack, and the walks over what it builds, within about 200 KB.
const MAX_NESTING: usize = 256;

/// Which expression is being parsed; decides the "Invalid <Kind>: ..." prefix of errors and
/// which functions are allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpressionKind {
    Condition,
    Filter,
    KeyCondition,
    Projection,
    Update,
}

impl ExpressionKind {
    pub fn member_name(self) -> &'static str {
        match self {
            ExpressionKind::Condition => "ConditionExpression",
            ExpressionKind::Filter => "FilterExpression",
            ExpressionKind::KeyCondition => "KeyConditionExpression",
            ExpressionKind::Projection => "ProjectionExpression",
            ExpressionKind::Update => "UpdateExpression",
        }
    }

    /// DynamoDB reports the length of a too-long expression only for the condition family.
    fn too_long(self, length: usize) -> String {
        match self {
            ExpressionKind::Projection | ExpressionKind::Update => {
                "Expression size has exceeded the maximum allowed size;".to_string()
            }
            _ => format!("Expression size has exceeded the maximum allowed size; expression size: {length}"),
        }
    }
}

/// A condition or filter expression (`kind` picks the error prefix; a key condition parses the
/// same way, see [`parse_key_condition`]).
pub fn parse_condition(text: &str, kind: ExpressionKind, subs: &mut Substitutions) -> ApiResult<Condition> {
    prefixed(kind, || {
        let tokens = tokens(text, kind)?;
        let raw = parse_all(&tokens, Parser::condition)?;
        Walk::condition(&raw)?;
        let mut resolver = Resolver::new(subs);
        let condition = resolver.condition(&raw)?;
        resolver.check_size(text)?;
        Ok(condition)
    })
}

/// A key-condition expression, checked as any condition; the rules on its shape (one equality
/// on the partition key, ...) need the key schema and come later.
pub fn parse_key_condition(text: &str, subs: &mut Substitutions) -> ApiResult<Condition> {
    parse_condition(text, ExpressionKind::KeyCondition, subs)
}

/// A projection expression's paths, in the order written.
pub fn parse_projection(text: &str, subs: &mut Substitutions) -> ApiResult<Vec<Path>> {
    prefixed(ExpressionKind::Projection, || {
        let tokens = tokens(text, ExpressionKind::Projection)?;
        let raw = parse_all(&tokens, Parser::projection)?;
        raw.iter().try_for_each(Walk::path)?;
        let mut resolver = Resolver::new(subs);
        let paths = resolver.projection(&raw)?;
        resolver.check_size(text)?;
        Ok(paths)
    })
}

/// An update expression, its actions in the order written. Besides the "Invalid
/// UpdateExpression" errors, it may fail as DynamoDB does when what it writes is too big for an
/// item.
pub fn parse_update(text: &str, subs: &mut Substitutions) -> ApiResult<Update> {
    let update = prefixed(ExpressionKind::Update, || {
        let tokens = tokens(text, ExpressionKind::Update)?;
        let raw = parse_all(&tokens, Parser::update)?;
        Walk::update(&raw)?;
        let mut resolver = Resolver::new(subs);
        let update = resolver.update(&raw)?;
        resolver.check_size(text)?;
        Ok(update)
    })?;
    super::resolve::check_update_size(&update)?;
    Ok(update)
}

fn prefixed<T>(kind: ExpressionKind, run: impl FnOnce() -> Result<T, String>) -> ApiResult<T> {
    run().map_err(|message| ApiError::validation(format!("Invalid {}: {message}", kind.member_name())))
}

/// The checks DynamoDB makes on the text before parsing it.
fn tokens(text: &str, kind: ExpressionKind) -> Result<Tokens<'_>, String> {
    if text.is_empty() {
        return Err("The expression can not be empty;".to_string());
    }
    let length = text.encode_utf16().count();
    if length > MAX_EXPRESSION_LENGTH {
        return Err(kind.too_long(length));
    }
    Ok(Tokens::new(text))
}

/// Runs a grammar rule over the whole input.
fn parse_all<'t, T>(tokens: &'t Tokens<'t>, rule: impl FnOnce(&mut Parser<'t>) -> Parse<T>) -> Result<T, String> {
    let mut parser = Parser { tokens, at: 0, nesting: 0, last_group: None };
    let parsed = rule(&mut parser).and_then(|parsed| {
        parser.expect(Kind::Eof)?;
        Ok(parsed)
    });
    parsed.map_err(|failure| match failure {
        Failure::Syntax(at) => tokens.syntax_error(at),
        Failure::RedundantParentheses => "The expression has redundant parentheses;".to_string(),
    })
}

// ---- The grammar ----

type Parse<T> = Result<T, Failure>;

enum Failure {
    /// At this token.
    Syntax(usize),
    RedundantParentheses,
}

struct Parser<'t> {
    tokens: &'t Tokens<'t>,
    at: usize,
    nesting: usize,
    /// Tokens of the `(` and `)` of the group that closed last, to spot `((...))`.
    last_group: Option<(usize, usize)>,
}

/// What a parenthesis opening a condition holds before the text says which it is: a whole
/// condition, or the first operand of a comparison (`(a) = :v`). A function call can be either.
/// (Where the parser recurses it returns boxes, to keep its stack frames small.)
enum Grouped {
    Condition(Box<RawCondition>),
    Operand(Box<RawOperand>),
    Call(Box<RawCall>),
}

/// A SET value's first term: an operand, or a parenthesized arithmetic `(b + c)`.
enum Term {
    Operand(Box<RawOperand>),
    Arithmetic(RawSetValue),
}

impl Parser<'_> {
    fn peek(&self) -> Kind {
        self.peek_at(0)
    }

    fn peek_at(&self, ahead: usize) -> Kind {
        self.tokens.get(self.at + ahead).kind
    }

    /// Consumes the current token, returning its text.
    fn bump(&mut self) -> String {
        let text = self.tokens.text(self.at).to_string();
        self.at += 1;
        text
    }

    fn fail<T>(&self) -> Parse<T> {
        Err(Failure::Syntax(self.at))
    }

    fn expect(&mut self, kind: Kind) -> Parse<usize> {
        if self.peek() != kind {
            return self.fail();
        }
        self.at += 1;
        Ok(self.at - 1)
    }

    fn nested<T>(&mut self, inner: impl FnOnce(&mut Self) -> Parse<T>) -> Parse<T> {
        if self.nesting == MAX_NESTING {
            return self.fail();
        }
        self.nesting += 1;
        let parsed = inner(self);
        self.nesting -= 1;
        parsed
    }

    /// `( content )`, refusing parentheses whose whole content is a parenthesized group.
    fn group<T>(&mut self, content: impl FnOnce(&mut Self) -> Parse<T>) -> Parse<T> {
        let open = self.expect(Kind::LParen)?;
        let inner = self.nested(content)?;
        let close = self.expect(Kind::RParen)?;
        if self.last_group == Some((open + 1, close - 1)) {
            return Err(Failure::RedundantParentheses);
        }
        self.last_group = Some((open, close));
        Ok(inner)
    }

    // -- paths and operands --

    fn path(&mut self) -> Parse<RawPath> {
        let mut elements = vec![self.path_name()?];
        loop {
            match self.peek() {
                Kind::Dot => {
                    self.bump();
                    if self.peek() == Kind::ValueSub {
                        elements.push(RawElement::Value(self.bump()));
                    } else {
                        elements.push(self.path_name()?);
                    }
                }
                Kind::LBracket => {
                    self.bump();
                    let index = self.expect(Kind::Index)?;
                    self.expect(Kind::RBracket)?;
                    elements.push(RawElement::Index(self.tokens.text(index).to_string()));
                }
                _ => return Ok(RawPath(elements)),
            }
        }
    }

    fn path_name(&mut self) -> Parse<RawElement> {
        match self.peek() {
            Kind::Id => Ok(RawElement::Id(self.bump())),
            Kind::NameSub => Ok(RawElement::Name(self.bump())),
            _ => self.fail(),
        }
    }

    fn at_call(&self) -> bool {
        self.peek() == Kind::Id && self.peek_at(1) == Kind::LParen
    }

    fn operand(&mut self) -> Parse<Box<RawOperand>> {
        match self.peek() {
            Kind::ValueSub => Ok(Box::new(RawOperand::Value(self.bump()))),
            Kind::LParen => self.group(Self::operand),
            _ if self.at_call() => Ok(Box::new(RawOperand::Call(*self.call()?))),
            _ => Ok(Box::new(RawOperand::Path(self.path()?))),
        }
    }

    fn call(&mut self) -> Parse<Box<RawCall>> {
        let name = self.bump();
        self.expect(Kind::LParen)?;
        self.nested(|p| {
            let mut args = vec![*p.operand()?];
            while p.peek() == Kind::Comma {
                p.bump();
                args.push(*p.operand()?);
            }
            p.expect(Kind::RParen)?;
            Ok(Box::new(RawCall { name, args }))
        })
    }

    fn literal(&mut self) -> Parse<String> {
        self.expect(Kind::ValueSub).map(|at| self.tokens.text(at).to_string())
    }

    // -- conditions --

    fn condition(&mut self) -> Parse<Box<RawCondition>> {
        self.conditions(None)
    }

    /// Conditions joined by AND and OR, AND binding tighter, both to the left; `first` is a
    /// leading condition the caller has read already. A loop rather than one function per
    /// precedence level, so that only parentheses recurse.
    fn conditions(&mut self, mut first: Option<Box<RawCondition>>) -> Parse<Box<RawCondition>> {
        let mut ors: Option<Box<RawCondition>> = None;
        let mut ands: Option<Box<RawCondition>> = None;
        loop {
            let next = match first.take() {
                Some(first) => first,
                None => self.negation()?,
            };
            let and = join(ands.take(), next, RawCondition::And);
            match self.peek() {
                Kind::And => ands = Some(and),
                Kind::Or => ors = Some(join(ors.take(), and, RawCondition::Or)),
                _ => return Ok(join(ors, and, RawCondition::Or)),
            }
            self.bump();
        }
    }

    /// NOT applies to the primary right after it. Counted rather than recursed: a chain of
    /// NOTs can be as long as the text allows.
    fn negation(&mut self) -> Parse<Box<RawCondition>> {
        let mut nots = 0;
        while self.peek() == Kind::Not {
            self.bump();
            nots += 1;
        }
        let mut condition = match self.peek() {
            Kind::LParen => match self.group(Self::grouped)? {
                Grouped::Condition(condition) => condition,
                Grouped::Operand(operand) => self.comparison(*operand)?,
                Grouped::Call(call) => self.call_condition(*call)?,
            },
            _ => self.comparison_or_call()?,
        };
        for _ in 0..nots {
            condition = Box::new(RawCondition::Not(condition));
        }
        Ok(condition)
    }

    /// A condition not in parentheses. Kept out of the recursion through parentheses, whose
    /// stack frames it would otherwise swell.
    #[inline(never)]
    fn comparison_or_call(&mut self) -> Parse<Box<RawCondition>> {
        if self.at_call() {
            let call = self.call()?;
            return self.call_condition(*call);
        }
        let operand = self.operand()?;
        self.comparison(*operand)
    }

    /// A function call is a comparison's operand when a comparison follows, else a condition.
    fn call_condition(&mut self, call: RawCall) -> Parse<Box<RawCondition>> {
        if self.at_comparison() {
            self.comparison(RawOperand::Call(call))
        } else {
            Ok(Box::new(RawCondition::Call(call)))
        }
    }

    fn at_comparison(&self) -> bool {
        comparator(self.peek()).is_some() || matches!(self.peek(), Kind::Between | Kind::In)
    }

    fn comparison(&mut self, left: RawOperand) -> Parse<Box<RawCondition>> {
        if let Some(comparator) = comparator(self.peek()) {
            self.bump();
            return Ok(Box::new(RawCondition::Compare(left, comparator, *self.operand()?)));
        }
        match self.peek() {
            Kind::Between => {
                self.bump();
                let low = self.operand()?;
                self.expect(Kind::And)?;
                Ok(Box::new(RawCondition::Between(left, *low, *self.operand()?)))
            }
            Kind::In => {
                self.bump();
                self.expect(Kind::LParen)?;
                let mut list = vec![*self.operand()?];
                while self.peek() == Kind::Comma {
                    self.bump();
                    list.push(*self.operand()?);
                }
                self.expect(Kind::RParen)?;
                Ok(Box::new(RawCondition::In(left, list)))
            }
            _ => self.fail(),
        }
    }

    /// The content of a parenthesis where a condition may start.
    fn grouped(&mut self) -> Parse<Grouped> {
        let first = match self.peek() {
            Kind::Not => return Ok(Grouped::Condition(self.condition()?)),
            Kind::LParen => self.group(Self::grouped)?,
            _ if self.at_call() => Grouped::Call(self.call()?),
            _ => Grouped::Operand(self.operand()?),
        };
        let first = match first {
            Grouped::Condition(condition) => condition,
            Grouped::Operand(operand) if self.at_comparison() => self.comparison(*operand)?,
            Grouped::Call(call) if self.at_comparison() => self.comparison(RawOperand::Call(*call))?,
            Grouped::Call(call) if matches!(self.peek(), Kind::And | Kind::Or) => Box::new(RawCondition::Call(*call)),
            operand_or_call => return Ok(operand_or_call),
        };
        Ok(Grouped::Condition(self.conditions(Some(first))?))
    }

    // -- updates and projections --

    fn update(&mut self) -> Parse<Vec<RawSection>> {
        let mut sections = Vec::new();
        loop {
            let clause = match self.peek() {
                Kind::Set => Clause::Set,
                Kind::Remove => Clause::Remove,
                Kind::Add => Clause::Add,
                Kind::Delete => Clause::Delete,
                _ if sections.is_empty() => return self.fail(),
                _ => return Ok(sections),
            };
            self.bump();
            let mut actions = vec![self.action(clause)?];
            while self.peek() == Kind::Comma {
                self.bump();
                actions.push(self.action(clause)?);
            }
            sections.push(RawSection { clause, actions });
        }
    }

    fn action(&mut self, clause: Clause) -> Parse<RawAction> {
        let path = self.path()?;
        Ok(match clause {
            Clause::Set => {
                self.expect(Kind::Eq)?;
                RawAction::Set(path, self.set_value()?)
            }
            Clause::Remove => RawAction::Remove(path),
            Clause::Add => RawAction::Add(path, self.literal()?),
            Clause::Delete => RawAction::Delete(path, self.literal()?),
        })
    }

    fn set_value(&mut self) -> Parse<RawSetValue> {
        match self.term()? {
            Term::Arithmetic(arithmetic) => Ok(arithmetic),
            Term::Operand(left) => self.arithmetic(*left),
        }
    }

    fn arithmetic(&mut self, left: RawOperand) -> Parse<RawSetValue> {
        let op = match self.peek() {
            Kind::Plus => Arith::Plus,
            Kind::Minus => Arith::Minus,
            _ => return Ok(RawSetValue::Operand(left)),
        };
        self.bump();
        Ok(RawSetValue::Arithmetic(left, op, *self.operand()?))
    }

    fn term(&mut self) -> Parse<Term> {
        if self.peek() != Kind::LParen {
            return Ok(Term::Operand(self.operand()?));
        }
        self.group(|p| match p.term()? {
            Term::Operand(left) if matches!(p.peek(), Kind::Plus | Kind::Minus) => {
                Ok(Term::Arithmetic(p.arithmetic(*left)?))
            }
            term => Ok(term),
        })
    }

    fn projection(&mut self) -> Parse<Vec<RawPath>> {
        let mut paths = vec![self.path()?];
        while self.peek() == Kind::Comma {
            self.bump();
            paths.push(self.path()?);
        }
        Ok(paths)
    }
}

/// `left` joined to `right`, or `right` alone.
fn join(
    left: Option<Box<RawCondition>>,
    right: Box<RawCondition>,
    op: fn(Box<RawCondition>, Box<RawCondition>) -> RawCondition,
) -> Box<RawCondition> {
    match left {
        Some(left) => Box::new(op(left, right)),
        None => right,
    }
}

fn comparator(kind: Kind) -> Option<Comparator> {
    Some(match kind {
        Kind::Eq => Comparator::Eq,
        Kind::Ne => Comparator::Ne,
        Kind::Lt => Comparator::Lt,
        Kind::Le => Comparator::Le,
        Kind::Gt => Comparator::Gt,
        Kind::Ge => Comparator::Ge,
        _ => return None,
    })
}

// ---- Parse-time checks ----

/// The checks DynamoDB makes while walking the parsed expression, before it looks at any
/// placeholder, in the order of the text. A function's place is judged by its nesting: at the top
/// of a condition only a function returning a boolean fits, inside a comparison or a function
/// only `size` (conditions) or `if_not_exists` (updates).
struct Walk {
    update: bool,
}

impl Walk {
    fn condition(condition: &RawCondition) -> Result<(), String> {
        Walk { update: false }.condition_node(condition)
    }

    fn update(sections: &[RawSection]) -> Result<(), String> {
        let walk = Walk { update: true };
        let mut seen = Vec::new();
        for section in sections {
            for action in &section.actions {
                Walk::path(action.path())?;
                if let RawAction::Set(_, value) = action {
                    match value {
                        RawSetValue::Operand(operand) => walk.operand(operand, 0)?,
                        RawSetValue::Arithmetic(left, _, right) => {
                            walk.operand(left, 1)?;
                            walk.operand(right, 1)?;
                        }
                    }
                }
            }
            if seen.contains(&section.clause) {
                return Err(format!(
                    "The \"{}\" section can only be used once in an update expression;",
                    section.clause.keyword()
                ));
            }
            seen.push(section.clause);
        }
        Ok(())
    }

    fn path(path: &RawPath) -> Result<(), String> {
        path.0.iter().try_for_each(|element| match element {
            RawElement::Id(name) if is_reserved(name) => {
                Err(format!("Attribute name is a reserved keyword; reserved keyword: {name}"))
            }
            RawElement::Index(digits) => list_index(digits).map(drop),
            _ => Ok(()),
        })
    }

    fn condition_node(&self, condition: &RawCondition) -> Result<(), String> {
        let (first, joints) = condition.chain();
        self.negated(first)?;
        joints.into_iter().try_for_each(|(_, right)| self.negated(right))
    }

    fn negated(&self, condition: &RawCondition) -> Result<(), String> {
        match condition.negated().1 {
            RawCondition::Compare(left, _, right) => {
                self.operand(left, 1)?;
                self.operand(right, 1)
            }
            RawCondition::Between(value, low, high) => {
                [value, low, high].into_iter().try_for_each(|operand| self.operand(operand, 1))
            }
            RawCondition::In(value, list) => {
                self.operand(value, 1)?;
                list.iter().try_for_each(|operand| self.operand(operand, 1))
            }
            RawCondition::Call(call) => self.call(call, 0),
            chain @ (RawCondition::And(..) | RawCondition::Or(..)) => self.condition_node(chain),
            RawCondition::Not(_) => Ok(()),
        }
    }

    fn operand(&self, operand: &RawOperand, nesting: usize) -> Result<(), String> {
        match operand {
            RawOperand::Path(path) => Walk::path(path),
            RawOperand::Value(_) => Ok(()),
            RawOperand::Call(call) => self.call(call, nesting),
        }
    }

    fn call(&self, call: &RawCall, nesting: usize) -> Result<(), String> {
        let function = Function::from_name(&call.name).ok_or_else(|| invalid_function(&call.name))?;
        let fits = if self.update {
            if !function.in_update() {
                return Err(condition_only_function(&call.name));
            }
            nesting == 0 || function == Function::IfNotExists
        } else {
            if function.in_update() {
                return Err(update_only_function(&call.name));
            }
            // At the top only a function returning a boolean; nested only size.
            (nesting == 0) != (function == Function::Size)
        };
        if !fits {
            return Err(misplaced_function(&call.name));
        }
        call.args.iter().try_for_each(|arg| self.operand(arg, nesting + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::expr::ast::{Operand, PathElement, SetOperand, SetValue};
    use crate::model::AttributeValue;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn subs(names: Value, values: Value) -> Substitutions {
        Substitutions::new(names.as_object(), values.as_object()).unwrap()
    }

    fn none() -> Substitutions {
        subs(Value::Null, Value::Null)
    }

    /// Values :s (S "x"), :t (S "y"), :n (N "5"), :m (N "1"), :b (BOOL), :l (L), :ss (SS).
    fn values() -> Value {
        json!({
            ":s": {"S": "x"}, ":t": {"S": "y"}, ":n": {"N": "5"}, ":m": {"N": "1"},
            ":b": {"BOOL": true}, ":l": {"L": []}, ":ss": {"SS": ["a"]}, ":nul": {"NULL": true},
            ":bin": {"B": "AAEC"}, ":ns": {"NS": ["1"]}, ":map": {"M": {}}, ":bs": {"BS": ["AA=="]}
        })
    }

    fn cond(text: &str) -> ApiResult<Condition> {
        parse_condition(text, ExpressionKind::Condition, &mut subs(json!({"#n": "n", "#p": "p"}), values()))
    }

    fn cond_error(text: &str) -> String {
        let error = cond(text).expect_err(text);
        assert_eq!(error.kind, ErrorKind::Validation);
        error.message.strip_prefix("Invalid ConditionExpression: ").expect(&error.message).to_string()
    }

    fn update(text: &str) -> ApiResult<Update> {
        parse_update(text, &mut subs(json!({"#c": "c", "#d": "[3]", "#n": "n"}), values()))
    }

    fn update_error(text: &str) -> String {
        let error = update(text).expect_err(text);
        error.message.strip_prefix("Invalid UpdateExpression: ").expect(&error.message).to_string()
    }

    fn projection_error(text: &str, names: Value) -> String {
        let error = parse_projection(text, &mut subs(names, Value::Null)).expect_err(text);
        error.message.strip_prefix("Invalid ProjectionExpression: ").expect(&error.message).to_string()
    }

    fn path(names: &[&str]) -> Path {
        Path(names.iter().map(|n| PathElement::Name(n.to_string())).collect())
    }

    fn p(name: &str) -> Operand {
        Operand::Path(path(&[name]))
    }

    fn s(text: &str) -> AttributeValue {
        AttributeValue::S(text.to_string())
    }

    fn compare(name: &str, comparator: Comparator, value: &str) -> Condition {
        Condition::Compare(p(name), comparator, Operand::Value(s(value)))
    }

    fn b(condition: Condition) -> Box<Condition> {
        Box::new(condition)
    }

    #[test]
    fn precedence_and_associativity() {
        let (x, y, z) =
            (compare("a", Comparator::Eq, "x"), compare("b", Comparator::Eq, "y"), compare("c", Comparator::Eq, "x"));
        assert_eq!(
            cond("a = :s OR b = :t AND NOT c = :s").unwrap(),
            Condition::Or(b(x.clone()), b(Condition::And(b(y.clone()), b(Condition::Not(b(z.clone()))))))
        );
        assert_eq!(
            cond("a = :s AND b = :t OR c = :s").unwrap(),
            Condition::Or(b(Condition::And(b(x.clone()), b(y.clone()))), b(z.clone()))
        );
        // Left-associative; NOT takes the next primary only; parentheses group.
        assert_eq!(
            cond("a = :s OR b = :t OR c = :s").unwrap(),
            Condition::Or(b(Condition::Or(b(x.clone()), b(y.clone()))), b(z.clone()))
        );
        assert_eq!(
            cond("NOT a = :s AND b = :t").unwrap(),
            Condition::And(b(Condition::Not(b(x.clone()))), b(y.clone()))
        );
        assert_eq!(
            cond("NOT (a = :s AND b = :t)").unwrap(),
            Condition::Not(b(Condition::And(b(x.clone()), b(y.clone()))))
        );
        assert_eq!(
            cond("a = :s AND (b = :t OR c = :s)").unwrap(),
            Condition::And(b(x.clone()), b(Condition::Or(b(y.clone()), b(z.clone()))))
        );
        assert_eq!(cond("not not a = :s").unwrap(), Condition::Not(b(Condition::Not(b(x.clone())))));
        // Keywords in any case.
        assert_eq!(cond("a = :s and b = :t").unwrap(), Condition::And(b(x), b(y)));
    }

    #[test]
    fn condition_forms() {
        assert_eq!(
            cond("(a) BETWEEN :m AND (:n)").unwrap(),
            Condition::Between(
                p("a"),
                Operand::Value(AttributeValue::N(crate::model::Number::parse("1").unwrap())),
                Operand::Value(AttributeValue::N(crate::model::Number::parse("5").unwrap()))
            )
        );
        assert_eq!(
            cond("#n.b[2].#p IN (:s, :t)").unwrap(),
            Condition::In(
                Operand::Path(Path(vec![
                    PathElement::Name("n".into()),
                    PathElement::Name("b".into()),
                    PathElement::Index(2),
                    PathElement::Name("p".into()),
                ])),
                vec![Operand::Value(s("x")), Operand::Value(s("y"))]
            )
        );
        assert_eq!(
            cond("size(a) > :n AND attribute_exists(#n) AND contains(a, size(b))").unwrap(),
            Condition::And(
                b(Condition::And(
                    b(Condition::Compare(
                        Operand::Size(path(&["a"])),
                        Comparator::Gt,
                        Operand::Value(AttributeValue::N(crate::model::Number::parse("5").unwrap()))
                    )),
                    b(Condition::AttributeExists(path(&["n"])))
                )),
                b(Condition::Contains(p("a"), Operand::Size(path(&["b"]))))
            )
        );
        assert_eq!(cond("(begins_with(a, :s))").unwrap(), Condition::BeginsWith(p("a"), Operand::Value(s("x"))));
        assert_eq!(
            cond("attribute_type(a, :s) OR attribute_not_exists(b)").unwrap_err().message,
            "Invalid ConditionExpression: Invalid attribute type name found; type: x, valid types: {N,BS,L,B,NULL,M,S,SS,NS,BOOL}"
        );
        // size of a literal is folded to its number.
        assert_eq!(
            cond("size(:ss) = :m").unwrap(),
            Condition::Compare(
                Operand::Value(AttributeValue::N(crate::model::Number::from(1))),
                Comparator::Eq,
                Operand::Value(AttributeValue::N(crate::model::Number::parse("1").unwrap()))
            )
        );
        assert!(cond("(a) = :s").is_ok());
        assert!(cond("((a) = :s)").is_ok());
        assert!(cond("((a = :s) AND b = :t)").is_ok());
        assert!(cond("(size(a)) < (:n)").is_ok());
        assert!(cond("(attribute_exists(a)) AND (contains(a, :s))").is_ok());
    }

    #[test]
    fn syntax_errors() {
        let cases = [
            ("foo", "<EOF>", "foo"),
            ("a = :s )", ")", ":s )"),
            ("a = = :s", "=", "= = :s"),
            ("a IN ()", ")", "()"),
            ("a IN (:s,)", ")", ",)"),
            ("a BETWEEN :s OR :t", "OR", ":s OR :t"),
            ("a = \"x\"", "\"", "= \"x"),
            ("a != :s", "!", "a !="),
            ("a.b. = :s", "=", ". = :s"),
            ("a[01] = :s", "1", "01]"),
            ("a[-1] = :s", "-", "[-1"),
            ("(a = :s", "<EOF>", ":s"),
            ("(a) foo", "foo", ") foo"),
            ("(a = :s) = :t", "=", ") = :t"),
            ("begins_with(a = :s)", "=", "a = :s"),
            ("begins_with(a, :s) foo", "foo", ") foo"),
            ("NOT", "<EOF>", "NOT"),
            ("a = :s AND __typename = :t", "_", "AND __"),
            ("_a = :s", "_", "_a"),
            ("a = :s AND", "<EOF>", "AND"),
            ("a.:s = :t", "=", "= :t"),
        ];
        for (text, token, near) in cases {
            let expected = format!("Syntax error; token: \"{token}\", near: \"{near}\"");
            if text == "a.:s = :t" {
                // Valid syntax: the grammar takes a value after a dot; validation refuses it.
                assert_eq!(
                    cond_error(text),
                    "The document path cannot contain attribute value parameters; attribute value: :s"
                );
                continue;
            }
            assert_eq!(cond_error(text), expected, "{text}");
        }
        let syntax = |text: &str| update_error(text);
        assert_eq!(syntax("SET = :s"), r#"Syntax error; token: "=", near: "SET = :s""#);
        for text in [
            "whatever",
            "set a",
            "add a",
            "delete a",
            "set a=set",
            "remove a = b",
            "add a = b",
            "delete a = b",
            "delete a b",
            "add a if_not_exist(b)",
            "remove a b",
            "set a b",
            "set :a = b",
            "add :a b",
            "remove :a",
            "set a = b / c",
            "set a = b * c",
            "set a[1] = \"eight\"",
            "set a[1] = 1",
            "SET if_not_exist(a, b) = a",
            "set (a = (b + c))",
            "set a = (b.c).d + e",
            "set a = (b.c)[0] + e",
            "set a = b + c + d",
            "set a = (b + c) + d",
            "set a = b + (c + d)",
            "SET a = :s,",
            "SET a = :s SET",
            "add abort b",
        ] {
            assert!(syntax(text).starts_with("Syntax error; "), "{text}: {}", syntax(text));
        }
        assert_eq!(syntax("SET a = b +"), r#"Syntax error; token: "<EOF>", near: "+""#);
        assert_eq!(syntax("SET a = b / :s"), r#"Syntax error; token: "/", near: "b / :s""#);
        assert_eq!(syntax("SET a = if_not_exists(b, 0)"), r#"Syntax error; token: "0", near: ", 0)""#);
        for text in ["a,", ",a", "a,,b", "a b", "a.b(c)"] {
            assert!(projection_error(text, Value::Null).starts_with("Syntax error; "), "{text}");
        }
    }

    #[test]
    fn redundant_parentheses() {
        let redundant = "The expression has redundant parentheses;";
        for text in [
            "((a = :s))",
            "(((a = :s)))",
            "((a = :s AND b = :t))",
            "((NOT a = :s))",
            "((a)) = :s",
            "size(((a))) = :n",
            "((attribute_exists(a)))",
            "((size(a))) = :n",
        ] {
            assert_eq!(cond_error(text), redundant, "{text}");
        }
        for text in ["set a = ((b + c))", "set a = ((b))", "set a = (((b) + c))"] {
            assert_eq!(update_error(text), redundant, "{text}");
        }
        assert!(update("SET a = (b + c), d = (b) - c, e = ((b) + c)").is_ok());
        // A syntax error before the parentheses close comes first.
        assert!(cond_error("((a = :s +))").starts_with("Syntax error"));
    }

    #[test]
    fn parse_time_checks() {
        assert_eq!(cond_error("status = :s"), "Attribute name is a reserved keyword; reserved keyword: status");
        assert_eq!(cond_error("a.Name = :s"), "Attribute name is a reserved keyword; reserved keyword: Name");
        assert_eq!(
            update_error(" set #c = :s set abOrt = :t "),
            "Attribute name is a reserved keyword; reserved keyword: abOrt"
        );
        assert_eq!(
            update_error(" remove Absolute "),
            "Attribute name is a reserved keyword; reserved keyword: Absolute"
        );
        // size and convert are not reserved.
        assert!(cond("size = :s AND convert = :t").is_ok());
        assert_eq!(
            cond_error("a[2147483648] = :s"),
            "List index is not within the allowable range; index: [2147483648]"
        );
        assert!(cond("a[2147483647] = :s").is_ok());
        assert_eq!(cond_error("foo(a)"), "Invalid function name; function: foo");
        assert_eq!(cond_error("Size(a) = :n"), "Invalid function name; function: Size");
        assert_eq!(
            cond_error("if_not_exists(a, :s) = :t"),
            "The function is not allowed in a condition expression; function: if_not_exists"
        );
        assert_eq!(
            cond_error("size(a)"),
            "The function is not allowed to be used this way in an expression; function: size"
        );
        assert_eq!(
            cond_error("attribute_exists(a) = :b"),
            "The function is not allowed to be used this way in an expression; function: attribute_exists"
        );
        assert_eq!(
            cond_error("contains(attribute_exists(a), :s)"),
            "The function is not allowed to be used this way in an expression; function: attribute_exists"
        );
        assert_eq!(
            update_error("SET a = size(b)"),
            "The function is not allowed in an update expression; function: size"
        );
        assert_eq!(
            update_error("SET a = list_append(list_append(a, :l), :l)"),
            "The function is not allowed to be used this way in an expression; function: list_append"
        );
        assert_eq!(
            update_error("SET a = list_append(a, :l) + :n"),
            "The function is not allowed to be used this way in an expression; function: list_append"
        );
        assert_eq!(
            update_error("set #c = if_not_exist(:c) set c = d"),
            "Invalid function name; function: if_not_exist"
        );
        for (text, section) in [
            ("set a = #c set c = :s", "SET"),
            ("remove #d set a = b remove e", "REMOVE"),
            ("add #d :n set a = b add e :n", "ADD"),
            ("delete #d :ss set a = b delete #n :ss", "DELETE"),
        ] {
            assert_eq!(
                update_error(text),
                format!("The \"{section}\" section can only be used once in an update expression;")
            );
        }
        // In the order of the text: the reserved word before the function, the section last.
        assert_eq!(
            update_error("SET status = foo(a)"),
            "Attribute name is a reserved keyword; reserved keyword: status"
        );
        assert_eq!(update_error("SET a = foo(status)"), "Invalid function name; function: foo");
        assert_eq!(
            update_error("SET a = :s SET b = :t, path = :s"),
            "Attribute name is a reserved keyword; reserved keyword: path"
        );
        // Parse-time checks come before placeholders.
        assert_eq!(
            cond_error("#x = :s AND status = :s"),
            "Attribute name is a reserved keyword; reserved keyword: status"
        );
    }

    #[test]
    fn validation_messages() {
        let cases = [
            ("#x = :s", "An expression attribute name used in the document path is not defined; attribute name: #x"),
            ("a = :x", "An expression attribute value used in expression is not defined; attribute value: :x"),
            (
                "attribute_exists(a, b)",
                "Incorrect number of operands for operator or function; operator or function: attribute_exists, number of operands: 2",
            ),
            (
                "begins_with(a)",
                "Incorrect number of operands for operator or function; operator or function: begins_with, number of operands: 1",
            ),
            (
                "begins_with(a, :n)",
                "Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
            ),
            (
                "begins_with(size(a), :s)",
                "Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
            ),
            (
                "size(size(a)) = :n",
                "Incorrect operand type for operator or function; operator or function: size, operand type: N",
            ),
            (
                "size(:b) = :n",
                "Incorrect operand type for operator or function; operator or function: size, operand type: BOOL",
            ),
            ("a < :b", "Incorrect operand type for operator or function; operator or function: <, operand type: BOOL"),
            (
                "a BETWEEN :l AND :s",
                "Incorrect operand type for operator or function; operator or function: BETWEEN, operand type: L",
            ),
            (
                "attribute_exists(:s)",
                "Operator or function requires a document path; operator or function: attribute_exists",
            ),
            (
                "attribute_type(a, :n)",
                "Incorrect operand type for operator or function; operator or function: attribute_type, operand type: N",
            ),
            (
                "attribute_type(a, size(b))",
                "Incorrect operand type for operator or function; operator or function: attribute_type, operand type: N",
            ),
            (
                "attribute_type(a, b)",
                "Incorrect operand type for operator or function; operator or function: attribute_type, operand type: {SS,M,DECIMAL,DOUBLESET,HDS,N,B,DICT,INTSET,BOOL,HD,BS,INT,DECIMALSET,NULL,FLOAT,FS,S,L,NS,DOUBLE}",
            ),
            (
                "a = a",
                "The first operand must be distinct from the remaining operands for this operator or function; operator: =, first operand: [a]",
            ),
            (
                "#n.b <> n.b",
                "The first operand must be distinct from the remaining operands for this operator or function; operator: <>, first operand: [n, b]",
            ),
            (
                "a IN (:s, a)",
                "The first operand must be distinct from the remaining operands for this operator or function; operator: IN, first operand: [a]",
            ),
            (
                "a BETWEEN :s AND a",
                "The first operand must be distinct from the remaining operands for this operator or function; operator: BETWEEN, first operand: [a]",
            ),
            (
                "contains(a[1], a[1])",
                "The first operand must be distinct from the remaining operands for this operator or function; operator: contains, first operand: [a, [1]]",
            ),
            (
                "a BETWEEN :n AND :m",
                "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:5}, upper bound operand: AttributeValue: {N:1}",
            ),
            (
                "a BETWEEN :t AND :s",
                "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {S:y}, upper bound operand: AttributeValue: {S:x}",
            ),
            (
                "a BETWEEN :s AND :n",
                "The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {S:x}, upper bound operand: AttributeValue: {N:5}",
            ),
            (
                "a BETWEEN :bin AND :s",
                "The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {B:java.nio.HeapByteBuffer[pos=0 lim=3 cap=3]}, upper bound operand: AttributeValue: {S:x}",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(cond_error(text), message, "{text}");
        }
        assert!(cond("a BETWEEN :m AND :n AND b BETWEEN :s AND :s").is_ok());
        // Children first, left to right: the undefined value inside wins over the operator's count.
        assert_eq!(
            cond_error("attribute_exists(a, :x)"),
            "An expression attribute value used in expression is not defined; attribute value: :x"
        );
        assert_eq!(
            cond_error("#x = :x"),
            "An expression attribute name used in the document path is not defined; attribute name: #x"
        );
        // IN takes up to 100 operands after the first.
        let list = |n: usize| vec![":s"; n].join(", ");
        assert!(cond(&format!("a IN ({})", list(100))).is_ok());
        assert_eq!(
            cond_error(&format!("a IN ({})", list(101))),
            "The IN operator is provided with too many operands; number of operands: 101"
        );
        // Paths nest at most 32 deep.
        let deep = |n: usize| vec!["a"; n].join(".");
        assert!(cond(&format!("{} = :s", deep(32))).is_ok());
        assert_eq!(
            cond_error(&format!("{} = :s", deep(33))),
            "The document path has too many nesting levels; nesting levels: 33"
        );
        // 300 operators at most.
        let ors = |n: usize| vec!["a = :s"; n].join(" OR ");
        assert!(cond(&ors(150)).is_ok());
        assert_eq!(cond_error(&ors(151)), "The expression contains too many operators; operator count: 301");
        let nots = |n: usize| format!("{}a = :s", "NOT ".repeat(n));
        assert!(cond(&nots(299)).is_ok());
        assert_eq!(cond_error(&nots(300)), "The expression contains too many operators; operator count: 301");
        assert_eq!(
            cond_error(&format!("{}#x = :s", "NOT ".repeat(400))),
            "An expression attribute name used in the document path is not defined; attribute name: #x"
        );
    }

    #[test]
    fn limits_and_empty() {
        let error = |text: &str, kind: ExpressionKind| match kind {
            ExpressionKind::Update => parse_update(text, &mut none()).unwrap_err().message,
            ExpressionKind::Projection => parse_projection(text, &mut none()).unwrap_err().message,
            _ => parse_condition(text, kind, &mut none()).unwrap_err().message,
        };
        assert_eq!(error("", ExpressionKind::Update), "Invalid UpdateExpression: The expression can not be empty;");
        assert_eq!(
            error("", ExpressionKind::Condition),
            "Invalid ConditionExpression: The expression can not be empty;"
        );
        assert_eq!(error("", ExpressionKind::Filter), "Invalid FilterExpression: The expression can not be empty;");
        assert_eq!(
            error("", ExpressionKind::Projection),
            "Invalid ProjectionExpression: The expression can not be empty;"
        );
        assert_eq!(
            error("  ", ExpressionKind::KeyCondition),
            r#"Invalid KeyConditionExpression: Syntax error; token: "<EOF>", near: "  ""#
        );
        let long = format!("a = b AND {}", "c".repeat(5000));
        assert_eq!(
            error(&long, ExpressionKind::Condition),
            format!(
                "Invalid ConditionExpression: Expression size has exceeded the maximum allowed size; expression size: {}",
                long.len()
            )
        );
        assert_eq!(
            error(&"a".repeat(4097), ExpressionKind::Projection),
            "Invalid ProjectionExpression: Expression size has exceeded the maximum allowed size;"
        );
        assert_eq!(
            error(&format!("REMOVE {}", "a".repeat(4090)), ExpressionKind::Update),
            "Invalid UpdateExpression: Expression size has exceeded the maximum allowed size;"
        );
        // Length counts UTF-16 units: 4096 two-byte characters fit.
        let wide = format!("#{}", "é".repeat(4095));
        assert!(error(&wide, ExpressionKind::Projection).contains("Syntax error"));
    }

    #[test]
    fn updates() {
        let update = update(
            "set a = :s, #c.b[1] = if_not_exists(a, :n) + :m, l = list_append(:l, if_not_exists(l, :l)), \
             x = b - :n remove r[0] add n :n, s :ss delete d :ss",
        )
        .unwrap();
        let n = || AttributeValue::N(crate::model::Number::parse("5").unwrap());
        assert_eq!(update.set.len(), 4);
        assert_eq!(update.set[0], (path(&["a"]), SetValue::Operand(SetOperand::Value(s("x")))));
        assert_eq!(
            update.set[1],
            (
                Path(vec![PathElement::Name("c".into()), PathElement::Name("b".into()), PathElement::Index(1)]),
                SetValue::Plus(
                    SetOperand::IfNotExists(path(&["a"]), Box::new(SetOperand::Value(n()))),
                    SetOperand::Value(AttributeValue::N(crate::model::Number::parse("1").unwrap()))
                )
            )
        );
        assert_eq!(
            update.set[2].1,
            SetValue::Operand(SetOperand::ListAppend(
                Box::new(SetOperand::Value(AttributeValue::L(vec![]))),
                Box::new(SetOperand::IfNotExists(path(&["l"]), Box::new(SetOperand::Value(AttributeValue::L(vec![])))))
            ))
        );
        assert_eq!(update.set[3].1, SetValue::Minus(SetOperand::Path(path(&["b"])), SetOperand::Value(n())));
        assert_eq!(update.remove, vec![Path(vec![PathElement::Name("r".into()), PathElement::Index(0)])]);
        assert_eq!(update.add, vec![(path(&["n"]), n()), (path(&["s"]), AttributeValue::Ss(vec!["a".into()]))]);
        assert_eq!(update.delete, vec![(path(&["d"]), AttributeValue::Ss(vec!["a".into()]))]);
    }

    #[test]
    fn update_validation() {
        let cases = [
            (
                "SET a = if_not_exists(c)",
                "Incorrect number of operands for operator or function; operator or function: if_not_exists, number of operands: 1",
            ),
            (
                "SET a = list_append(c)",
                "Incorrect number of operands for operator or function; operator or function: list_append, number of operands: 1",
            ),
            (
                "SET a = if_not_exists(:s, c)",
                "Operator or function requires a document path; operator or function: if_not_exists",
            ),
            (
                "SET a = if_not_exists(if_not_exists(a, b), c)",
                "Operator or function requires a document path; operator or function: if_not_exists",
            ),
            (
                "SET a = if_not_exists(a, a)",
                "The first operand must be distinct from the remaining operands for this operator or function; operator: if_not_exists, first operand: [a]",
            ),
            (
                "SET a = list_append(:s, a)",
                "Incorrect operand type for operator or function; operator or function: list_append, operand type: S",
            ),
            (
                "SET a = list_append(a, :ss)",
                "Incorrect operand type for operator or function; operator or function: list_append, operand type: SS",
            ),
            (
                "SET a = a + :s",
                "Incorrect operand type for operator or function; operator or function: +, operand type: S",
            ),
            (
                "SET a = :bin - a",
                "Incorrect operand type for operator or function; operator or function: -, operand type: B",
            ),
            (
                "SET a = a - :l",
                "Incorrect operand type for operator or function; operator or function: -, operand type: L",
            ),
            (
                "ADD a.b :s",
                "Incorrect operand type for operator or function; operator: ADD, operand type: STRING, typeSet: ALLOWED_FOR_ADD_OPERAND",
            ),
            (
                "ADD a.b :nul",
                "Incorrect operand type for operator or function; operator: ADD, operand type: NULL, typeSet: ALLOWED_FOR_ADD_OPERAND",
            ),
            (
                "ADD a.b :b",
                "Incorrect operand type for operator or function; operator: ADD, operand type: BOOLEAN, typeSet: ALLOWED_FOR_ADD_OPERAND",
            ),
            (
                "ADD a.b :map",
                "Incorrect operand type for operator or function; operator: ADD, operand type: MAP, typeSet: ALLOWED_FOR_ADD_OPERAND",
            ),
            (
                "ADD a.b :l",
                "Incorrect operand type for operator or function; operator: ADD, operand type: LIST, typeSet: ALLOWED_FOR_ADD_OPERAND",
            ),
            (
                "DELETE a :n",
                "Incorrect operand type for operator or function; operator: DELETE, operand type: NUMBER, typeSet: ALLOWED_FOR_DELETE_OPERAND",
            ),
            (
                "DELETE a :bin",
                "Incorrect operand type for operator or function; operator: DELETE, operand type: BINARY, typeSet: ALLOWED_FOR_DELETE_OPERAND",
            ),
            (
                "SET #x = :s",
                "An expression attribute name used in the document path is not defined; attribute name: #x",
            ),
            (
                "SET #c = if_not_exists(:x)",
                "An expression attribute value used in expression is not defined; attribute value: :x",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(update_error(text), message, "{text}");
        }
        assert!(update("ADD a :n, b :ss, c :ns, d :bs DELETE e :ss, f :ns, g :bs").is_ok());
        // Actions are checked from the last back to the first: paths (with their #names) first,
        // then values.
        assert_eq!(
            update_error("SET a = :x, b = :y"),
            "An expression attribute value used in expression is not defined; attribute value: :y"
        );
        assert_eq!(
            update_error("SET a = :x, #x = :s"),
            "An expression attribute name used in the document path is not defined; attribute name: #x"
        );
        assert_eq!(
            update_error("set b = list_append(:s, a), c = if_not_exists(a) add a.b :s"),
            "Incorrect operand type for operator or function; operator: ADD, operand type: STRING, typeSet: ALLOWED_FOR_ADD_OPERAND"
        );
    }

    #[test]
    fn overlapping_paths() {
        let overlap = |one: &str, two: &str| {
            format!(
                "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: {one}, path two: {two}"
            )
        };
        let conflict = |one: &str, two: &str| {
            format!(
                "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: {one}, path two: {two}"
            )
        };
        // Paths are filed from the last action back to the first: "path one" is the earlier in
        // the text. These are DynamoDB's answers in dynalite's tests, run against it in 2015.
        assert_eq!(
            update_error("set d[1] = a, d.b = a, c[1].a = a, #c = if_not_exists(a, :s)"),
            overlap("[c, [1], a]", "[c]")
        );
        assert_eq!(update_error("set #c[3].#d = a, #c[3] = a"), overlap("[c, [3], [3]]", "[c, [3]]"));
        assert_eq!(
            update_error("set #c[3].#d = a, #c.#d[3] = if_not_exists(a, :s)"),
            conflict("[c, [3], [3]]", "[c, [3], [3]]")
        );
        assert_eq!(update_error("remove a.#c set a[1] = #d"), conflict("[a, c]", "[a, [1]]"));
        // "path two" follows the first entry of DynamoDB's hash map at each level, as DynamoDB
        // now does, so it is not always the path that clashes (2015 answered [c], [a], [c, a]
        // and [a] to these four; dynalite notes the change for "a,b,a" below).
        assert_eq!(update_error("set c.b.#c = a, c = a, #d = a"), overlap("[c, b, c]", "[[3]]"));
        assert_eq!(update_error("set a = b remove a, #c, #d"), overlap("[a]", "[[3]]"));
        assert_eq!(update_error("remove c, #c.a, #d"), overlap("[c]", "[[3]]"));
        assert_eq!(update_error("remove a, #c, a, #d"), overlap("[a]", "[[3]]"));
        let names = json!({"#a": "a", "#b": "[3]"});
        assert_eq!(projection_error("b[1], b.a, #a.b, a", names.clone()), overlap("[a, b]", "[a]"));
        assert_eq!(projection_error("a, #a[1]", names.clone()), overlap("[a]", "[a, [1]]"));
        assert_eq!(projection_error("a,b,a", names.clone()), overlap("[a]", "[b]"));
        assert_eq!(projection_error("a, a.c, a.b", names.clone()), overlap("[a]", "[a, c]"));
        assert_eq!(projection_error("a.b, #a[1], #b", names.clone()), conflict("[a, b]", "[a, [1]]"));
        assert_eq!(projection_error("a.b[1], #a[1], #b", names.clone()), conflict("[a, b, [1]]", "[a, [1]]"));
        assert_eq!(projection_error("a[3].b, #a.#b.b", names.clone()), conflict("[a, [3], b]", "[a, [3], b]"));
        // Paths are read from the last: its undefined #name is reported before the overlap.
        assert_eq!(
            projection_error("a,b,a,#a", Value::Null),
            "An expression attribute name used in the document path is not defined; attribute name: #a"
        );
        let paths = parse_projection("#a.b[2], c, #b", &mut subs(names, Value::Null)).unwrap();
        assert_eq!(
            paths,
            vec![
                Path(vec![PathElement::Name("a".into()), PathElement::Name("b".into()), PathElement::Index(2)]),
                path(&["c"]),
                path(&["[3]"]),
            ]
        );
    }

    #[test]
    fn sizes_with_substitutions() {
        // Placeholders count towards the 1 MB limit every time they are used.
        let big = json!({":v": {"S": "x".repeat(300_000)}});
        let fits = "a = :v OR b = :v OR c = :v";
        assert!(parse_condition(fits, ExpressionKind::Filter, &mut subs(Value::Null, big.clone())).is_ok());
        assert_eq!(
            parse_condition(&format!("{fits} OR d = :v"), ExpressionKind::Filter, &mut subs(Value::Null, big.clone()))
                .unwrap_err()
                .message,
            "Invalid FilterExpression: Expression size has exceeded the maximum allowed size;"
        );
        // Names and values written by SET and ADD count towards the 400 KB item limit.
        let half = json!({":v": {"S": "x".repeat(210_000)}});
        assert!(parse_update("SET a = :v", &mut subs(Value::Null, half.clone())).is_ok());
        let error = parse_update("SET a = :v, b = :v", &mut subs(Value::Null, half.clone())).unwrap_err();
        assert_eq!(error.message, "Item size to update has exceeded the maximum allowed size");
        assert!(parse_update("SET a = :v REMOVE b, c", &mut subs(Value::Null, half)).is_ok());
    }

    #[test]
    fn substitutions_are_marked_used_across_expressions() {
        let mut s = subs(json!({"#a": "a", "#b": "b"}), json!({":v": {"S": "x"}, ":w": {"S": "y"}}));
        parse_update("SET #a = :v", &mut s).unwrap();
        assert_eq!(
            s.finish().unwrap_err().message,
            "Value provided in ExpressionAttributeNames unused in expressions: keys: {#b}"
        );
        parse_condition("#b = :w", ExpressionKind::Condition, &mut s).unwrap();
        assert!(s.finish().is_ok());
    }

    /// The deepest inputs, on a stack smaller than the wasm component's (in release builds: debug
    /// builds use far bigger stack frames).
    #[test]
    #[cfg_attr(debug_assertions, ignore = "stack use is measured on release builds")]
    fn deep_inputs_fit_a_small_stack() {
        let run = || {
            let n = MAX_NESTING;
            let conditions = [
                format!("{}a = :s{}", "(NOT ".repeat(n - 1), ")".repeat(n - 1)),
                format!("{}a=:s{}", "((a=:s) AND ".repeat(n / 2), ")".repeat(n / 2)),
                format!("a = {}", "(".repeat(4000)),
                "(".repeat(4000),
                format!("{}a", "f(".repeat(2000)),
                format!("{}a", "(f(".repeat(1300)),
                format!("{}a = :s", "NOT ".repeat(1020)),
                vec!["a=:s"; 455].join(" AND "),
            ];
            for text in &conditions {
                let _ = cond(text);
            }
            let deep = format!("SET b = {}:s{}", "(if_not_exists(a,".repeat(n / 2), "))".repeat(n / 2));
            for text in [format!("SET b = {}", "(".repeat(4000)), deep] {
                let _ = update(&text);
            }
        };
        std::thread::Builder::new().stack_size(256 * 1024).spawn(run).unwrap().join().unwrap();
    }

    #[test]
    fn deep_nesting_is_bounded() {
        // Valid deep nesting parses; absurd nesting is a syntax error, never a crash.
        let depth = 200;
        let nested = format!("{}:s{}", "if_not_exists(a,".repeat(depth), ")".repeat(depth));
        assert!(update(&format!("SET b = {nested}")).is_ok());
        let text = format!("{}a = :s{}", "(NOT ".repeat(680), ")".repeat(680));
        assert!(cond_error(&text).starts_with("Syntax error"));
        let text = format!("{}a", "f(".repeat(1365));
        assert!(cond_error(&text).starts_with("Syntax error"));
    }

    /// Expression-like text: tokens of the grammar, placeholders (defined or not), junk.
    fn expression() -> impl Strategy<Value = String> {
        let token = prop::sample::select(vec![
            "a",
            "b",
            "#n",
            "#x",
            ":s",
            ":n",
            ":l",
            ":x",
            "status",
            "(",
            ")",
            "((",
            "))",
            ",",
            ".",
            "[",
            "]",
            "0",
            "1",
            "2147483648",
            "=",
            "<>",
            "<",
            "<=",
            ">",
            ">=",
            "+",
            "-",
            "IN",
            "BETWEEN",
            "AND",
            "OR",
            "NOT",
            "SET",
            "REMOVE",
            "ADD",
            "DELETE",
            "size",
            "contains",
            "begins_with",
            "attribute_exists",
            "attribute_type",
            "if_not_exists",
            "list_append",
            "foo",
            "\"",
            "!",
            "é",
            " ",
            "_",
        ]);
        let piece = prop_oneof![
            4 => token.prop_map(str::to_string),
            1 => any::<char>().prop_map(|c| c.to_string()),
        ];
        prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.join(" "))
    }

    proptest! {
        #[test]
        fn never_panics(text in expression(), bytes in prop::collection::vec(any::<u8>(), 0..60)) {
            let noise = String::from_utf8_lossy(&bytes).into_owned();
            for text in [text, noise] {
                let results = [
                    parse_condition(&text, ExpressionKind::Filter, &mut subs(json!({"#n": "n"}), values())).err(),
                    parse_update(&text, &mut subs(json!({"#n": "n"}), values())).err(),
                    parse_projection(&text, &mut subs(json!({"#n": "n"}), Value::Null)).err(),
                ];
                for error in results.into_iter().flatten() {
                    prop_assert_eq!(error.kind, ErrorKind::Validation);
                }
            }
        }
    }
}
