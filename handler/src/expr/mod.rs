//! Expressions: one tokenizer, parser and AST for condition, filter, key-condition, projection
//! and update expressions, their evaluation against items, and the legacy parameters translated
//! into the same AST.

mod ast;
mod eval;
mod java_order;
pub mod legacy;
mod lexer;
mod parser;
mod projection;
mod reserved;
mod resolve;
mod substitution;
mod syntax;
mod update;

pub use ast::*;
pub use eval::{evaluate, resolve};
pub(crate) use java_order::{in_map_order, java_hash};
pub use parser::{ExpressionKind, parse_condition, parse_key_condition, parse_projection, parse_update};
pub use projection::project;
pub use substitution::Substitutions;
pub use update::{apply_update, updated_paths};
