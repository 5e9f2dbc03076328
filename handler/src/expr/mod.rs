//! Expressions: one tokenizer, parser and AST for condition, filter, key-condition, projection
//! and update expressions, their evaluation against items, and the legacy parameters translated
//! into the same AST.

mod ast;

pub use ast::*;
