//! The catalog: each table's stored record (`record`), what `CreateTable` accepts (`create`), the
//! rules on tags (`tags`), its streams' settings (`streams`) and the `TableDescription` DynamoDB
//! returns (`description`).

mod create;
mod description;
mod jobs;
mod record;
mod streams;
mod tags;

pub use create::{
    IndexRequest, Pairs, Placement, TABLE_CLASSES, ThroughputRequest, check_defined, check_definitions,
    check_global_count, check_throughput, index_name_violations, key_names, read_indexes, read_pairs, read_throughput,
    table_from_create_request,
};
pub use description::Stats;
pub(crate) use description::key_schema;
pub use jobs::{
    ExportJob, Failure, ImportJob, IncrementalWindow, JOBS_TABLE, Job, JobStatus, LEASE_MILLIS, Lease, job_key,
    jobs_keyspace, jobs_scan,
};
pub use record::{
    CLIENT_TOKENS_TABLE, ExpiryBackfill, FIRST_LISTED_NAME_BOUND, Index, IndexStatus, KeyAttribute,
    PointInTimeRecovery, Projection, RestoreSummary, Stream, Table, Tag, Throughput,
};
pub use streams::{RETENTION_SECONDS, Specification};
pub use tags::{MAX_TAG_KEY_CHARS, check_reserved, check_tags, read_tags};
