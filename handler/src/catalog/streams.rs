//! A table's streams: the `StreamSpecification` that CreateTable and UpdateTable apply to its
//! record, and which stream records and where each ends.
//!
//! A stream is a run of the table's change log: it begins at the first sequence number given
//! after it was enabled and ends where the table's next stream begins (no record is appended
//! while no stream is enabled, because every item write is guarded by the table's version).

use super::{Stream, Table};
use crate::error::{ApiError, ApiResult};
use crate::input::{Input, Violations};
use crate::time::extended_iso8601_millis;

const VIEW_TYPES: &[&str] = &["NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY"];
/// How long change records are kept, in seconds: DynamoDB's 24 hours.
pub const RETENTION_SECONDS: u64 = 24 * 3600;

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
}
