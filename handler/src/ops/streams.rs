//! The DynamoDB Streams API (`DynamoDBStreams_20120810`): ListStreams, DescribeStream,
//! GetShardIterator and GetRecords, read from the table's change log (see `crate::stream` for
//! how streams and shards map onto it).
//!
//! A shard iterator names the stream, the shard and the next sequence number to read, and when
//! it was issued; it carries no state of the server, so any server on the same store answers it.

use serde_json::{Value, json};

use super::Context;
use super::tables::not_found_named;
use crate::catalog::{FIRST_LISTED_NAME_BOUND, RETENTION_SECONDS, Stream, Table, key_schema};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::input::{Input, Violations};
use crate::storage::{ChangeRecord, Request, Storage, partition_hash};
use crate::stream::SHARD_RECORDS;
use crate::time::now_seconds;

pub const OPERATIONS: &[&str] = &["ListStreams", "DescribeStream", "GetShardIterator", "GetRecords"];

const ITERATOR_TYPES: &[&str] = &["TRIM_HORIZON", "LATEST", "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"];
/// A shard iterator is good for 15 minutes after it was issued.
const ITERATOR_LIFETIME_MILLIS: u64 = 15 * 60 * 1000;
const MAX_RECORDS: i64 = 1000;

pub fn list_streams<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let table_name = input.string("TableName")?;
    let limit = input.integer("Limit")?;
    let start = input.string("ExclusiveStartStreamArn")?;
    let mut violations = Violations::default();
    if table_name.is_some() {
        violations.table_name(table_name, "tableName");
    }
    if let Some(limit) = limit {
        violations.range(limit, "limit", 1, 100);
    }
    if let Some(start) = start {
        violations.length(start, "exclusiveStartStreamArn", 37, 1024);
    }
    violations.finish()?;
    let account = cx.principal.account_id.clone();
    let tables = match table_name {
        Some(name) => vec![Table::load(cx.storage, &account, name).map_err(|e| not_found_named(e, name))?],
        None => all_tables(cx.storage, &account)?,
    };
    let now = now_seconds();
    let mut streams: Vec<Value> = tables
        .iter()
        .flat_map(|table| table.streams.iter().filter(move |s| retained(s, now)).map(move |s| (table, s)))
        .map(|(table, stream)| {
            json!({"StreamArn": table.stream_arn(stream), "TableName": table.table_name, "StreamLabel": stream.label})
        })
        .collect();
    if let Some(start) = start {
        let after = streams.iter().position(|s| s["StreamArn"] == start).map_or(0, |at| at + 1);
        streams.drain(..after);
    }
    let limit = limit.unwrap_or(100) as usize;
    let mut response = json!({});
    if streams.len() > limit {
        streams.truncate(limit);
        response["LastEvaluatedStreamArn"] = streams[limit - 1]["StreamArn"].clone();
    }
    response["Streams"] = json!(streams);
    Ok(response)
}

/// Every table of the account, in name order (as ListTables, without dynabox's own tables).
fn all_tables(storage: &mut impl Storage, account: &str) -> ApiResult<Vec<Table>> {
    let (mut tables, mut after) = (Vec::new(), FIRST_LISTED_NAME_BOUND.to_string());
    loop {
        let names = storage.ask(account, Request::list_tables(Some(&after), 100))?;
        for name in &names {
            match Table::load(storage, account, name) {
                Err(e) if e.kind == ErrorKind::ResourceNotFound => {}
                table => tables.push(table?),
            }
        }
        match names.last() {
            Some(last) if names.len() == 100 => after = last.clone(),
            _ => return Ok(tables),
        }
    }
}

/// Whether a stream is still readable: recording, or disabled less than a day ago.
fn retained(stream: &Stream, now: f64) -> bool {
    stream.disabled_at.is_none_or(|at| at > now - RETENTION_SECONDS as f64)
}

pub fn describe_stream<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let arn = input.string("StreamArn")?;
    let limit = input.integer("Limit")?;
    let start = input.string("ExclusiveStartShardId")?;
    let mut violations = Violations::default();
    check_stream_arn(&mut violations, arn);
    if let Some(limit) = limit {
        violations.range(limit, "limit", 1, 100);
    }
    if let Some(start) = start {
        violations.length(start, "exclusiveStartShardId", 28, 65);
    }
    violations.finish()?;
    let (log, from_start) = StreamLog::load(cx, arn.expect("checked"), None, 1)?;
    let horizon = log.horizon(&from_start);
    let mut shards: Vec<Value> = log.shard_starts(horizon).map(|start| log.shard_description(start)).collect();
    if let Some(start) = start {
        let after = shards.iter().position(|s| s["ShardId"] == start).map_or(0, |at| at + 1);
        shards.drain(..after);
    }
    let limit = limit.unwrap_or(100) as usize;
    let (table, stream) = (&log.table, &log.stream);
    let mut description = json!({
        "StreamArn": table.stream_arn(stream),
        "StreamLabel": stream.label,
        "StreamStatus": if stream.disabled_at.is_none() { "ENABLED" } else { "DISABLED" },
        "StreamViewType": stream.view_type,
        "CreationRequestDateTime": stream.created,
        "TableName": table.table_name,
        "KeySchema": key_schema(&table.hash_key, table.range_key.as_ref()),
    });
    if shards.len() > limit {
        shards.truncate(limit);
        description["LastEvaluatedShardId"] = shards[limit - 1]["ShardId"].clone();
    }
    description["Shards"] = json!(shards);
    Ok(json!({"StreamDescription": description}))
}

pub fn get_shard_iterator<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let arn = input.string("StreamArn")?;
    let shard_id = input.string("ShardId")?;
    let kind = input.string("ShardIteratorType")?;
    let sequence = input.string("SequenceNumber")?;
    let mut violations = Violations::default();
    check_stream_arn(&mut violations, arn);
    if let Some(shard_id) = violations.not_null(shard_id, "shardId") {
        violations.length(shard_id, "shardId", 28, 65);
    }
    violations.not_null(kind, "shardIteratorType");
    violations.one_of(kind, "shardIteratorType", ITERATOR_TYPES);
    if let Some(sequence) = sequence {
        violations.length(sequence, "sequenceNumber", 21, 40);
    }
    violations.finish()?;
    let (arn, shard_id, kind) = (arn.expect("checked"), shard_id.expect("checked"), kind.expect("checked"));
    let (log, from_start) = StreamLog::load(cx, arn, None, 1)?;
    let horizon = log.horizon(&from_start);
    let start = log.shard_start(shard_id).ok_or_else(|| {
        ApiError::resource_not_found(format!("Requested resource not found: Shard does not exist: {shard_id}"))
    })?;
    let capacity_end = start + SHARD_RECORDS - 1;
    let position = match kind {
        "TRIM_HORIZON" => start.max(horizon),
        "LATEST" => (log.last + 1).clamp(start, capacity_end + 1),
        _ => {
            let Some(sequence) = sequence else {
                return Err(ApiError::validation("Must specify a sequence number for this shard iterator type"));
            };
            let invalid = || ApiError::validation(format!("Invalid SequenceNumber for shard {shard_id}: {sequence}"));
            let sequence: u64 = sequence.parse().map_err(|_| invalid())?;
            if !(start..=capacity_end).contains(&sequence) || sequence > log.last {
                return Err(invalid());
            }
            if sequence < horizon {
                return Err(trimmed());
            }
            if kind == "AT_SEQUENCE_NUMBER" { sequence } else { sequence + 1 }
        }
    };
    Ok(json!({"ShardIterator": Iterator { arn: arn.to_string(), shard_start: start, position, issued: now_millis() }
        .encode()}))
}

pub fn get_records<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let iterator = input.string("ShardIterator")?;
    let limit = input.integer("Limit")?;
    let mut violations = Violations::default();
    if let Some(iterator) = violations.not_null(iterator, "shardIterator") {
        violations.length(iterator, "shardIterator", 1, 2048);
    }
    if let Some(limit) = limit {
        violations.range(limit, "limit", 1, MAX_RECORDS);
    }
    violations.finish()?;
    let iterator = Iterator::decode(iterator.expect("checked"))?;
    let now = now_millis();
    if now > iterator.issued + ITERATOR_LIFETIME_MILLIS {
        return Err(ApiError::new(
            ErrorKind::ExpiredIterator,
            format!(
                "Iterator expired. The iterator was created at time {} while right now it is {} which is further \
                 in the future than the tolerated delay of {ITERATOR_LIFETIME_MILLIS} milliseconds.",
                iterator.issued, now
            ),
        ));
    }
    // Read with the stream in one call, up to what the shard can hold; records past where the
    // shard ended (its stream was disabled) are left out below.
    let capacity_end = iterator.shard_start + SHARD_RECORDS - 1;
    let wanted = u64::try_from(limit.unwrap_or(MAX_RECORDS)).unwrap_or(1);
    let limit = wanted.min((capacity_end + 1).saturating_sub(iterator.position)) as u32;
    let (log, read) = StreamLog::load(cx, &iterator.arn, Some(iterator.position - 1), limit)?;
    let shard_end = log.shard_end(iterator.shard_start);
    let mut records = Vec::new();
    if iterator.position <= shard_end.min(log.last) {
        // Sequence numbers have no gaps: a first record past the position means trimmed ones.
        if read.first().is_none_or(|first| first.sequence > iterator.position) {
            return Err(trimmed());
        }
        for change in read.into_iter().filter(|c| c.sequence <= shard_end) {
            records.push(log.record(change.sequence, &change.record, cx.region)?);
        }
    }
    let next = iterator.position + records.len() as u64;
    let mut response = json!({"Records": records});
    // A shard that can take no more records ends once it has been read to its end.
    if !(next > shard_end && log.shard_closed(iterator.shard_start)) {
        response["NextShardIterator"] = json!(Iterator { position: next, issued: now, ..iterator }.encode());
    }
    Ok(response)
}

fn trimmed() -> ApiError {
    ApiError::new(
        ErrorKind::TrimmedDataAccess,
        "The operation attempted to read past the oldest stream record in a shard.",
    )
}

fn now_millis() -> u64 {
    (now_seconds() * 1000.0) as u64
}

fn check_stream_arn(violations: &mut Violations, arn: Option<&str>) {
    if let Some(arn) = violations.not_null(arn, "streamArn") {
        violations.length(arn, "streamArn", 37, 1024);
    }
}

/// Where a reader is: the stream, its shard (by its first sequence number) and the next
/// sequence number to read.
struct Iterator {
    arn: String,
    shard_start: u64,
    position: u64,
    /// Milliseconds since the epoch.
    issued: u64,
}

impl Iterator {
    fn encode(&self) -> String {
        format!("{}|{}|{}|{}", self.arn, self.shard_start, self.position, self.issued)
    }

    fn decode(text: &str) -> ApiResult<Iterator> {
        let invalid = || ApiError::validation("Invalid ShardIterator");
        let mut parts = text.rsplitn(4, '|');
        let mut number = || parts.next().and_then(|p| p.parse::<u64>().ok()).ok_or_else(invalid);
        let (issued, position, shard_start) = (number()?, number()?, number()?);
        let arn = parts.next().filter(|arn| arn.contains("/stream/")).ok_or_else(invalid)?;
        if position < shard_start || position == 0 {
            return Err(invalid());
        }
        Ok(Iterator { arn: arn.to_string(), shard_start, position, issued })
    }
}

/// A stream as its readers see it now: the table, the stream, and the stretch of the change log
/// it holds.
struct StreamLog {
    table: Table,
    stream: Stream,
    /// The last sequence number written to this stream (below its first while it has none).
    last: u64,
    /// Whether the stream takes no more records: disabled, or followed by a newer one.
    ended: bool,
}

impl StreamLog {
    /// The caller's stream an ARN names (a stream that does not exist, or is not the caller's, is
    /// not found), and at most `limit` of the table's change records after `after` (by default
    /// from the stream's first), read in the same storage call that tells how far the log goes.
    fn load<S: Storage>(
        cx: &mut Context<'_, S>,
        arn: &str,
        after: Option<u64>,
        limit: u32,
    ) -> ApiResult<(StreamLog, Vec<ChangeRecord>)> {
        let not_found =
            || ApiError::resource_not_found(format!("Requested resource not found: Stream: {arn} not found"));
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let ["arn", _, "dynamodb", _, account, resource] = parts[..] else { return Err(not_found()) };
        let (table_name, label) = resource
            .strip_prefix("table/")
            .and_then(|rest| rest.split_once("/stream/"))
            .filter(|_| account == cx.principal.account_id)
            .ok_or_else(not_found)?;
        let table = Table::load(cx.storage, account, table_name).map_err(|e| match e.kind {
            ErrorKind::ResourceNotFound => not_found(),
            _ => e,
        })?;
        let stream = table.streams.iter().find(|s| s.label == label && retained(s, now_seconds()));
        let stream = stream.cloned().ok_or_else(not_found)?;
        let end = table.stream_end(&stream);
        let first = stream.first_sequence;
        let after = after.unwrap_or(first - 1);
        let page = cx.storage.ask(account, Request::read_changes(table_name, after, limit))?;
        let last = page.last_sequence.min(end.unwrap_or(u64::MAX));
        let ended = stream.disabled_at.is_some() || end.is_some();
        Ok((StreamLog { table, stream, last, ended }, page.changes))
    }

    /// The oldest sequence number of the stream not yet trimmed (past `last` when none is left),
    /// from the records read from the stream's first.
    fn horizon(&self, from_start: &[ChangeRecord]) -> u64 {
        let after_last = self.last + 1;
        from_start.first().map_or(after_last, |c| c.sequence).min(after_last).max(self.stream.first_sequence)
    }

    /// The first sequence numbers of the shards readers can still reach, oldest first: from the
    /// one holding the oldest record left (`horizon`) to the one the next record goes to.
    fn shard_starts(&self, horizon: u64) -> impl std::iter::Iterator<Item = u64> + '_ {
        let first = self.stream.first_sequence;
        let index = |sequence: u64| sequence.saturating_sub(first) / SHARD_RECORDS;
        let newest = if self.ended { index(self.last) } else { index(self.last + 1) };
        let oldest = index(horizon).min(newest);
        (oldest..=newest).map(move |i| first + i * SHARD_RECORDS)
    }

    /// The shard a shard id names, by its first sequence number, if it belongs to this stream.
    fn shard_start(&self, shard_id: &str) -> Option<u64> {
        let (start, tag) = shard_id.strip_prefix("shardId-")?.split_once('-')?;
        let start: u64 = start.parse().ok()?;
        let belongs = tag == self.tag() && start >= self.stream.first_sequence;
        (belongs && (start - self.stream.first_sequence).is_multiple_of(SHARD_RECORDS)).then_some(start)
    }

    fn shard_id(&self, start: u64) -> String {
        format!("shardId-{start:020}-{}", self.tag())
    }

    /// Ties shard ids to their stream.
    fn tag(&self) -> String {
        format!("{:08x}", partition_hash(self.table.stream_arn(&self.stream).as_bytes()))
    }

    /// The last sequence number the shard holds or will hold.
    fn shard_end(&self, start: u64) -> u64 {
        let full = start + SHARD_RECORDS - 1;
        if self.ended { full.min(self.last) } else { full }
    }

    /// Whether the shard takes no more records.
    fn shard_closed(&self, start: u64) -> bool {
        self.ended || self.last >= start + SHARD_RECORDS - 1
    }

    fn shard_description(&self, start: u64) -> Value {
        let mut range = json!({"StartingSequenceNumber": sequence_number(start)});
        if self.shard_closed(start) && self.shard_end(start) >= start {
            range["EndingSequenceNumber"] = json!(sequence_number(self.shard_end(start)));
        }
        let mut shard = json!({"ShardId": self.shard_id(start), "SequenceNumberRange": range});
        if start > self.stream.first_sequence {
            shard["ParentShardId"] = json!(self.shard_id(start - SHARD_RECORDS));
        }
        shard
    }

    /// A stored change record as GetRecords returns it.
    fn record(&self, sequence: u64, stored: &[u8], region: &str) -> ApiResult<Value> {
        let mut record: Value =
            serde_json::from_slice(stored).map_err(|e| ApiError::internal(format!("corrupt change record: {e}")))?;
        record["dynamodb"]["SequenceNumber"] = json!(sequence_number(sequence));
        record["eventID"] = json!(format!("{}{sequence:024x}", self.tag()));
        record["eventVersion"] = json!("1.1");
        record["eventSource"] = json!("aws:dynamodb");
        record["awsRegion"] = json!(region);
        Ok(record)
    }
}

/// Sequence numbers as DynamoDB Streams writes them: decimal strings of at least 21 digits.
fn sequence_number(sequence: u64) -> String {
    format!("{sequence:021}")
}
