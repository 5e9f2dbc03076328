//! Scan: a whole table or index keyspace, or one segment of it, in the store's order (partitions
//! in hash order); the reading itself is shared with Query (`read.rs`).

use serde_json::Value;

use super::Context;
use super::read::{ReadExpressions, ReadMembers, Reading, Source, condition_paths};
use crate::catalog::Table;
use crate::error::{ApiError, ApiResult};
use crate::input::{Input, Violations};
use crate::storage::{Request, ScanRequest, Storage, partition_hash, segment_hashes};

const MAX_TOTAL_SEGMENTS: i64 = 1_000_000;

pub fn scan<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let segment = input.integer("Segment")?;
    let total = input.integer("TotalSegments")?;
    let mut violations = Violations::default();
    let members = ReadMembers::read(input, &mut violations, "ScanFilter")?;
    if let Some(segment) = segment {
        violations.range(segment, "segment", 0, MAX_TOTAL_SEGMENTS - 1);
    }
    if let Some(total) = total {
        violations.range(total, "totalSegments", 1, MAX_TOTAL_SEGMENTS);
    }
    violations.finish()?;
    let mut segments = (0, 1);
    let expressions = ReadExpressions::parse(input, false, "ScanFilter", || {
        segments = match (segment, total) {
            (None, None) => (0, 1),
            (Some(_), None) => {
                return Err(ApiError::validation(
                    "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
                ));
            }
            (None, Some(_)) => {
                return Err(ApiError::validation(
                    "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
                ));
            }
            (Some(segment), Some(total)) if segment >= total => {
                return Err(ApiError::validation(format!(
                    "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: {segment} is not less than TotalSegments: {total}"
                )));
            }
            (Some(segment), Some(total)) => (segment as u32, total as u32),
        };
        Ok(())
    })?;
    let (segment, total) = segments;
    let select = members.select(expressions.projection_member)?;
    let start = &expressions.start;

    let table = Table::load(cx.storage, &cx.principal.account_id, members.table_name)?;
    let source = Source::new(&table, members.index_name, members.consistent)?;
    let after = start.as_ref().map(|start| source.start_key(start, false)).transpose()?;
    source.check_select(select)?;
    if let Some(after) = &after {
        let (low, high) = segment_hashes(segment, total);
        if !(low..high).contains(&u64::from(partition_hash(&after.partition))) {
            return Err(ApiError::validation(format!(
                "The provided starting key is invalid: Invalid ExclusiveStartKey. Please use ExclusiveStartKey with correct Segment. TotalSegments: {total} Segment: {segment}"
            )));
        }
    }
    if let Some(paths) = &expressions.projection {
        source.check_key_paths(&paths.iter().collect::<Vec<_>>())?;
    }
    if let Some(filter) = &expressions.filter {
        source.check_key_paths(&condition_paths(filter))?;
    }

    let keyspace = source.keyspace();
    let reading = Reading::new(source, expressions, select, &members);
    let account = cx.principal.account_id.clone();
    reading.run(cx.storage, cx.report, &account, after, |storage, limit, byte_budget, after| {
        let request =
            ScanRequest { keyspace: keyspace.clone(), segment, total_segments: total, after, limit, byte_budget };
        storage.ask(&account, Request::scan(&request))
    })
}
