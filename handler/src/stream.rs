//! DynamoDB Streams on a table's change log: the stream settings a table's record keeps, and the
//! change record every item write appends in its own atomic group.
//!
//! A stream is a run of the table's change log: it begins at the first sequence number given
//! after it was enabled and ends where the table's next stream begins (no record is appended
//! while no stream is enabled, because every item write is guarded by the table's version).
//! Shards are fixed runs of [`SHARD_RECORDS`] sequence numbers within a stream, each the parent
//! of the next, so a stream rolls over to a new shard without anything stored.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::catalog::Table;
use crate::error::{ApiError, ApiResult};
use crate::input::{Input, Violations};
use crate::model::size::item_size;
use crate::model::value::{Item, item_to_json};
use crate::storage::Write;
use crate::time::extended_iso8601_millis;
use crate::time::now_seconds;

pub const VIEW_TYPES: &[&str] = &["NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY"];
/// Sequence numbers one shard holds before the stream rolls over to the next.
pub const SHARD_RECORDS: u64 = 1000;
/// How long change records are kept, in seconds: DynamoDB's 24 hours.
pub const RETENTION_SECONDS: u64 = 24 * 3600;

/// One stream of a table, as its catalog record keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Stream {
    pub view_type: String,
    /// When it was enabled, as the ARN's last part (`2026-11-30T13:46:54.123`).
    pub label: String,
    /// Seconds since the epoch.
    pub created: f64,
    /// The first sequence number of the table's change log that belongs to this stream.
    pub first_sequence: u64,
    /// Seconds since the epoch; none while the stream records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<f64>,
}

/// Who made a change: a client's request, or the service expiring an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Request,
    TimeToLive,
}

/// A request's `StreamSpecification`.
pub struct Specification<'a> {
    enabled: Option<bool>,
    view_type: Option<&'a str>,
}

impl<'a> Specification<'a> {
    pub fn read(input: Input<'a>) -> ApiResult<Option<Specification<'a>>> {
        let Some(spec) = input.structure("StreamSpecification")? else { return Ok(None) };
        Ok(Some(Specification { enabled: spec.boolean("StreamEnabled")?, view_type: spec.string("StreamViewType")? }))
    }

    pub fn check(&self, violations: &mut Violations) {
        violations.not_null(self.enabled, "streamSpecification.streamEnabled");
        violations.one_of(self.view_type, "streamSpecification.streamViewType", VIEW_TYPES);
    }

    /// Applies the specification to a table's record. Enabling starts a new stream whose first
    /// record will be `next_sequence`; disabling ends the recording one. `at_creation`: a new
    /// table, which may also say it wants no stream.
    pub fn apply(&self, table: &mut Table, next_sequence: u64, now: f64, at_creation: bool) -> ApiResult<()> {
        let name = &table.table_name;
        match (self.enabled.unwrap_or(false), table.recording_stream().is_some()) {
            (true, true) => {
                Err(ApiError::validation(format!("Table already has an enabled stream: TableName: {name}")))
            }
            (true, false) => {
                let Some(view_type) = self.view_type else {
                    return Err(ApiError::validation("StreamViewType is required when StreamEnabled is true"));
                };
                // Streams disabled for longer than their records are kept are gone.
                let horizon = now - RETENTION_SECONDS as f64;
                table.streams.retain(|s| s.disabled_at.is_none_or(|at| at > horizon));
                // Labels name streams: a stream enabled within the same millisecond as the one
                // before it gets the next one.
                let created = table.streams.last().map_or(now, |last| now.max(last.created + 0.001));
                table.streams.push(Stream {
                    view_type: view_type.to_string(),
                    label: extended_iso8601_millis(created),
                    created,
                    first_sequence: next_sequence,
                    disabled_at: None,
                });
                Ok(())
            }
            (false, false) if at_creation => Ok(()),
            (false, false) => {
                Err(ApiError::validation(format!("Table does not have an enabled stream: TableName: {name}")))
            }
            (false, true) => {
                table.streams.last_mut().expect("a recording stream").disabled_at = Some(now);
                Ok(())
            }
        }
    }
}

impl Table {
    /// The stream that records this table's changes now, if any.
    pub fn recording_stream(&self) -> Option<&Stream> {
        self.streams.last().filter(|s| s.disabled_at.is_none())
    }

    pub fn stream_arn(&self, stream: &Stream) -> String {
        format!("{}/stream/{}", self.table_arn, stream.label)
    }

    /// The sequence numbers of `stream`'s records: from its first to just before the next
    /// stream's first (open while it is the last).
    pub fn stream_end(&self, stream: &Stream) -> Option<u64> {
        let next = self.streams.iter().skip_while(|s| s.label != stream.label).nth(1);
        next.map(|next| next.first_sequence - 1)
    }

    /// The stream members of a `TableDescription`.
    pub fn describe_stream(&self, description: &mut Value) {
        if let Some(latest) = self.streams.last() {
            description["LatestStreamArn"] = json!(self.stream_arn(latest));
            description["LatestStreamLabel"] = json!(latest.label);
        }
        if let Some(stream) = self.recording_stream() {
            description["StreamSpecification"] = json!({"StreamEnabled": true, "StreamViewType": stream.view_type});
        }
    }
}

/// The change record of a write that turns `old` into `new`, as the table's recording stream
/// shows it; none when nothing records, or nothing changed (a put of an identical item, a delete
/// of nothing).
pub fn change_record(
    table: &Table,
    old: Option<&Item>,
    new: Option<&Item>,
    origin: Origin,
) -> ApiResult<Option<Write>> {
    let Some(stream) = table.recording_stream() else { return Ok(None) };
    let event = match (old, new) {
        (None, Some(_)) => "INSERT",
        (Some(old), Some(new)) if old != new => "MODIFY",
        (Some(_), None) => "REMOVE",
        _ => return Ok(None),
    };
    let item = new.or(old).expect("one of them exists");
    let keys: Item =
        table.key_attributes().filter_map(|k| item.get(&k.name).map(|v| (k.name.clone(), v.clone()))).collect();
    let mut size = item_size(&keys);
    let mut record = json!({"ApproximateCreationDateTime": now_seconds().floor(), "Keys": item_to_json(&keys),
                            "StreamViewType": stream.view_type});
    let (with_new, with_old) = match stream.view_type.as_str() {
        "NEW_IMAGE" => (true, false),
        "OLD_IMAGE" => (false, true),
        "NEW_AND_OLD_IMAGES" => (true, true),
        _ => (false, false),
    };
    for (wanted, image, member) in [(with_new, new, "NewImage"), (with_old, old, "OldImage")] {
        if let Some(image) = image.filter(|_| wanted) {
            size += item_size(image);
            record[member] = item_to_json(image);
        }
    }
    record["SizeBytes"] = json!(size);
    let mut change = json!({"eventName": event, "dynamodb": record});
    if origin == Origin::TimeToLive {
        change["userIdentity"] = json!({"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"});
    }
    let record = serde_json::to_vec(&change).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Some(Write::AppendChange { table: table.table_name.clone(), record }))
}
