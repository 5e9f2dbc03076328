//! DynamoDB's table export and import files, and where they are kept.
//!
//! - [`destination`]: the [`object_store::ObjectStore`] an export goes to or an import comes from:
//!   a bucket under a local directory, kept from following symbolic links out of it, or a bucket of
//!   an S3-compatible server.

pub mod destination;
