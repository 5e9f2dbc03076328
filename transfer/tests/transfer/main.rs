//! Exports written and read back through the import readers, in a local directory and on an
//! S3-compatible server.

mod common;
mod local;
mod s3;
