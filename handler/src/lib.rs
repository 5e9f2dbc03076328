//! All DynamoDB semantics of dynabox. Ordinary Rust behind the [`storage::Storage`] and
//! [`auth::Auth`] traits, so it runs natively in tests and benchmarks; `component` binds those
//! traits to the WIT imports when built for `wasm32-unknown-unknown` with the feature `component`.

pub mod auth;
pub mod background;
pub mod capacity;
pub mod catalog;
pub mod content_coding;
pub mod cors;
pub mod error;
pub mod expr;
pub mod front_door;
pub mod http;
pub mod index;
mod input;
pub mod model;
mod ops;
pub use ops::{expire_step, import_put, imported};
pub mod protocol;
pub mod random;
pub mod report;
pub mod sigv4;
pub mod storage;
pub mod stream;
pub mod time;

#[cfg(all(target_arch = "wasm32", feature = "component"))]
mod component;
// The component's global allocator; natively only its size-class arithmetic, for the tests.
#[cfg(any(test, all(target_arch = "wasm32", feature = "component")))]
mod allocator;

pub use protocol::{handle, handle_reporting};
