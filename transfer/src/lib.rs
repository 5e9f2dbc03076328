//! DynamoDB's table export and import files, and where they are kept.
//!
//! - [`export`]: [`export::ExportWriter`] writes an export in AWS's layout (`_started`, gzipped data
//!   files, `manifest-files.json`, `manifest-summary.json` and their `.md5` files), streaming, in
//!   DynamoDB JSON or Ion, full (items) or incremental (changes).
//! - [`import`]: [`import::ItemReader`] reads ImportTable's inputs (DynamoDB JSON, Ion, CSV; gzip,
//!   zstd or plain) line by line, reporting a malformed line and going on;
//!   [`import::ChangeReader`] reads an incremental export back.
//! - [`destination`]: the [`object_store::ObjectStore`] an export goes to or an import comes from:
//!   a bucket under a local directory, kept from following symbolic links out of it, or a bucket of
//!   an S3-compatible server.
//!
//! Items go in and come out as DynamoDB JSON of a whole item, the form the DynamoDB API uses:
//! `{"id":{"S":"a"},"n":{"N":"1"},"b":{"B":"AAE="}}`.

pub mod destination;
pub mod export;
pub mod import;
mod ion;
mod value;

/// An item in DynamoDB JSON: attribute names to typed values such as `{"S":"a"}`.
pub type Item = serde_json::Map<String, serde_json::Value>;
