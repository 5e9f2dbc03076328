//! What only dynabox's tests and its benchmark use, kept out of the `dynabox` binary: stores
//! that are not production stores but hold the contract to account (the conformance suite runs
//! them beside the real ones) or isolate a cost (`dynabox-bench` measures the sandbox over the
//! reference store).
//!
//! - [`reference::Reference`]: the handler's reference store (`dynabox_handler::storage::memory`),
//!   the definition of the contract, as a host store.
//! - [`per_request::PerRequest`]: the Spin component's storage code run natively: a fresh
//!   `SqlStore` per call, its statements sent one at a time, on a SQLite file or on PostgreSQL,
//!   which is what Spin's interfaces are on Spin's side.
//! - [`moto`]: moto's S3-compatible server, where exports go and imports come from in tests.

pub mod moto;
pub mod per_request;
pub mod reference;
