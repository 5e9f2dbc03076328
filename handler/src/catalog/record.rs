//! The catalog's records: what is stored of a table and its indexes, as JSON an operator can
//! read, and the names dynabox keeps for itself.

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::storage::{Keyspace, Request, Storage};

/// A key attribute of a table: its name and scalar type ("S", "N" or "B").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyAttribute {
    pub name: String,
    pub attribute_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Throughput {
    pub read_capacity_units: i64,
    pub write_capacity_units: i64,
}

/// What an index holds of each item besides the keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Projection {
    All,
    KeysOnly,
    /// The keys and these attributes.
    Include(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexStatus {
    /// Being filled with the entries of the items the table held when the index was created.
    Creating,
    Active,
}

/// A secondary index as the catalog records it. Its entries live in the keyspace
/// `Keyspace::index(table, index_name)`, keyed by `model::key::index_entry_key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Index {
    pub index_name: String,
    /// A global secondary index; a local one otherwise (same hash key as the table).
    pub global: bool,
    pub hash_key: KeyAttribute,
    pub range_key: Option<KeyAttribute>,
    pub projection: Projection,
    pub status: IndexStatus,
    /// For global indexes of provisioned tables.
    pub provisioned: Option<Throughput>,
    /// While CREATING: the last base-table key (partition, sort) whose entry the backfill wrote;
    /// the next step resumes after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfill_after: Option<(Vec<u8>, Vec<u8>)>,
}

/// A table's tag, as the tagging operations read and list it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// The catalog's record of a table. Stored as JSON in the catalog so an operator can read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Table {
    pub table_name: String,
    pub table_arn: String,
    pub table_id: String,
    /// Seconds since the epoch.
    pub creation_date_time: f64,
    pub hash_key: KeyAttribute,
    pub range_key: Option<KeyAttribute>,
    /// `None` for on-demand (PAY_PER_REQUEST) tables.
    pub provisioned: Option<Throughput>,
    /// Local and global secondary indexes, in the order they were declared or added.
    #[serde(default)]
    pub indexes: Vec<Index>,
    #[serde(default)]
    pub deletion_protection: bool,
    /// In the order they were first set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// The attribute whose epoch seconds expire an item, while time to live is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_live_attribute: Option<String>,
    /// While set, the expiry sweep still has to visit the items written before time to live was
    /// enabled, which the store holds without their expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_live_backfill: Option<ExpiryBackfill>,
    /// Its streams, oldest first: the last records changes unless it was disabled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<Stream>,
    /// STANDARD or STANDARD_INFREQUENT_ACCESS, once set at creation or by UpdateTable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_class: Option<String>,
    /// Set on a table restored from a backup; in progress until its indexes are filled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreSummary>,
    /// While an import (ImportTable, by this ARN) loads the table's items: the table is CREATING
    /// and its indexes wait for the import to end before they are filled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub importing: Option<String>,
    /// While point-in-time recovery is enabled: the store keeps the table's history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point_in_time_recovery: Option<PointInTimeRecovery>,
    /// The stored record's version (not part of the record itself), for guarded updates.
    #[serde(skip)]
    pub version: u64,
}

/// Where a restored table came from (DynamoDB's `RestoreSummary`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestoreSummary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_backup_arn: Option<String>,
    pub source_table_arn: String,
    /// Seconds since the epoch.
    pub restore_date_time: f64,
    pub restore_in_progress: bool,
}

/// A table's point-in-time recovery setting. Times in milliseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PointInTimeRecovery {
    pub recovery_period_in_days: u32,
    /// No earlier moment can be restored: when recovery was enabled, or how far a shorter
    /// recovery period may have let the history be folded.
    pub restorable_since: u64,
}

const DAY_MILLIS: u64 = 24 * 60 * 60 * 1000;

impl PointInTimeRecovery {
    /// The earliest moment that can be restored at `now`.
    pub fn earliest(&self, now: u64) -> u64 {
        self.restorable_since.max(self.horizon(now))
    }

    /// The moment before which the history needs nothing but what restoring to it needs: the
    /// recovery period back from `now`.
    pub fn horizon(&self, now: u64) -> u64 {
        now.saturating_sub(u64::from(self.recovery_period_in_days) * DAY_MILLIS)
    }
}

/// How far the expiry sweep has visited a table's items since time to live was enabled.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExpiryBackfill {
    /// The last base-table key (partition, sort) visited, if any.
    #[serde(default)]
    pub after: Option<(Vec<u8>, Vec<u8>)>,
}

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

impl Table {
    /// Loads a table's record; a missing table is DynamoDB's `ResourceNotFoundException`.
    pub fn load(storage: &mut impl Storage, account: &str, name: &str) -> ApiResult<Table> {
        let stored = storage.ask(account, Request::describe_table(name))?;
        let stored = stored.ok_or_else(|| ApiError::resource_not_found("Requested resource not found"))?;
        let table: Table = serde_json::from_slice(&stored.description)
            .map_err(|e| ApiError::internal(format!("corrupt catalog entry for {name}: {e}")))?;
        Ok(Table { version: stored.version, ..table })
    }

    /// A restore is over once no index of the table is still being filled.
    pub fn finish_restore_when_indexed(&mut self) {
        let filling = self.indexes.iter().any(|index| index.status == IndexStatus::Creating);
        if let Some(restore) = self.restore.as_mut().filter(|_| !filling) {
            restore.restore_in_progress = false;
        }
    }

    pub fn index(&self, name: &str) -> Option<&Index> {
        self.indexes.iter().find(|index| index.index_name == name)
    }

    /// The keyspace of the table's items.
    pub fn keyspace(&self) -> Keyspace {
        Keyspace::table(&self.table_name)
    }

    pub fn key_attributes(&self) -> impl Iterator<Item = &KeyAttribute> {
        std::iter::once(&self.hash_key).chain(&self.range_key)
    }
}

impl Index {
    pub fn key_attributes(&self) -> impl Iterator<Item = &KeyAttribute> {
        std::iter::once(&self.hash_key).chain(&self.range_key)
    }

    /// The keyspace of the index's entries.
    pub fn keyspace(&self, table: &str) -> Keyspace {
        Keyspace::index(table, &self.index_name)
    }
}

/// Tables dynabox keeps for itself in an account's catalog (remembered ClientRequestTokens) have
/// names that start with '#': outside DynamoDB's table-name alphabet, so no request can name them,
/// and sorting before every valid name, so ListTables, which lists names after
/// [`FIRST_LISTED_NAME_BOUND`], never shows them.
pub const CLIENT_TOKENS_TABLE: &str = "#client-request-tokens";
/// Above every internal name, below every valid one (valid names start at '-').
pub const FIRST_LISTED_NAME_BOUND: &str = "$";
