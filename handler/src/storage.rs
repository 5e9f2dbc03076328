//! The storage contract as the handler sees it: a small ordered, versioned store of keyspaces,
//! byte keys and opaque documents that knows nothing of DynamoDB.
//!
//! These types carry what `wit/dynabox.wit` (interface `storage`) carries, shaped for Rust: ranges
//! are `std::ops::Bound`s, the WIT's tuples are named fields (`Write::TableAt`,
//! `Write::AppendChange`), a table change borrows its parts. Inside the component,
//! `component.rs` implements [`Storage`] on the WIT imports; natively (unit tests) any Rust value
//! can implement it. The host's stores use these
//! same types, so the WIT boundary is a conversion on both sides, written once
//! ([`storage_conversions!`](crate::storage_conversions)).
//!
//! What the store holds, per account (the host binds every call to the account it authenticated
//! and refuses any other):
//! - Tables: a name, an opaque description (JSON of `catalog::Table`) and the description's
//!   version, new with every change (never one the name had before), so updates of the
//!   description and writes decided on it can be guarded.
//! - Keyspaces: every table has its base keyspace (its items) and one keyspace per index, created
//!   and dropped with the table or the index. Only tables are listed.
//! - Items: in a keyspace, a key (partition and sort bytes, ordered unsigned, partition first), a
//!   document and a version that the key never had before (versions never repeat for a key, also
//!   after a delete), and optionally an expiry time the host can find cheaply.
//! - Change logs: one per table, appended to in a write group; the store numbers the records in
//!   commit order and keeps the time each was written, so that old records can be trimmed.

pub mod memory;
mod wit;

use std::ops::Bound;

/// Names one keyspace: a table's items (`index: None`) or the entries of one of its indexes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Keyspace {
    pub table: String,
    pub index: Option<String>,
}

impl Keyspace {
    pub fn table(table: &str) -> Keyspace {
        Keyspace { table: table.to_string(), index: None }
    }

    pub fn index(table: &str, index: &str) -> Keyspace {
        Keyspace { table: table.to_string(), index: Some(index.to_string()) }
    }
}

/// The key of an item inside a keyspace. Both parts are order-preserving encodings
/// (`model::key`); `sort` is empty for tables without a sort key. Items are ordered by
/// `(partition, sort)`, comparing bytes unsigned.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ItemKey {
    pub partition: Vec<u8>,
    pub sort: Vec<u8>,
}

/// An item as stored: its key, its document (DynamoDB JSON of the whole item, or an index
/// entry's projection) and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredItem {
    pub key: ItemKey,
    pub document: Vec<u8>,
    pub version: u64,
}

/// A table's stored description and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRecord {
    pub description: Vec<u8>,
    pub version: u64,
}

/// One page of a read: items in read order. `more` is true when the store stopped because of the
/// limit or the byte budget, so items may follow the last one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    pub items: Vec<StoredItem>,
    pub more: bool,
}

/// Which sort keys of a partition a [`QueryRequest`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortRange {
    All,
    /// Sort keys that start with these bytes (`begins_with`).
    Prefix(Vec<u8>),
    /// Sort keys between the bounds, each inclusive, exclusive or open.
    Between(Bound<Vec<u8>>, Bound<Vec<u8>>),
}

/// Reads one partition of a keyspace in sort-key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRequest {
    pub keyspace: Keyspace,
    pub partition: Vec<u8>,
    pub sort: SortRange,
    /// Ascending sort keys when true, descending when false.
    pub forward: bool,
    /// Resume strictly after this key, in the direction read.
    pub after: Option<ItemKey>,
    /// At most this many items.
    pub limit: u32,
    /// Stop after the item whose document makes the running total of document bytes reach this.
    pub byte_budget: u32,
}

/// Reads one segment of a keyspace. Segment `s` of `n` holds the partitions whose hash falls in
/// the `s`th of `n` equal slices of the hash space: segments are disjoint, together hold every
/// item, and a segment's read touches only its own rows. A whole keyspace (`n` = 1) is read in
/// key order; a segment of several in (hash, partition, sort) order. Either way a partition's
/// items are together and in sort order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRequest {
    pub keyspace: Keyspace,
    pub segment: u32,
    /// At least 1; 1 reads the whole keyspace.
    pub total_segments: u32,
    /// Resume strictly after this key (which must belong to the segment).
    pub after: Option<ItemKey>,
    pub limit: u32,
    pub byte_budget: u32,
}

/// What a guarded write expects to find before it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No guard: write whatever is there.
    Anything,
    /// The key must not exist.
    Absent,
    /// The key must exist at exactly this version.
    Version(u64),
}

impl Expect {
    /// The key as it was read: at that version, or absent.
    pub fn matching(stored: Option<&StoredItem>) -> Expect {
        stored.map_or(Expect::Absent, |stored| Expect::Version(stored.version))
    }
}

/// One write of an atomic group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Put {
        keyspace: Keyspace,
        key: ItemKey,
        document: Vec<u8>,
        expect: Expect,
        expires_at: Option<u64>,
    },
    Delete {
        keyspace: Keyspace,
        key: ItemKey,
        expect: Expect,
    },
    /// A guard alone (TransactWriteItems' ConditionCheck): writes nothing.
    Check {
        keyspace: Keyspace,
        key: ItemKey,
        expect: Expect,
    },
    /// A guard on a table's description: the group applies only while the table is at this
    /// version, so no write can miss an index added meanwhile.
    TableAt {
        table: String,
        version: u64,
    },
    /// Appends a record to the table's change log; the store assigns its sequence number.
    AppendChange {
        table: String,
        record: Vec<u8>,
    },
}

/// One record of a table's change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    pub sequence: u64,
    pub record: Vec<u8>,
}

/// Records of a change log in sequence order, and the highest sequence number the log has given
/// (0 before its first record), committed or read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangePage {
    pub changes: Vec<ChangeRecord>,
    pub last_sequence: u64,
}

/// What a committed group reports: the sequence numbers of its `AppendChange`s, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Committed {
    pub change_sequences: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageError {
    /// The keyspace or table does not exist (it was deleted, or never created).
    NoSuchKeyspace,
    /// Anything else; the text is for logs, never for clients.
    Internal(String),
    /// A write group's commit was sent and whether it took effect could not be found out: unlike
    /// every other failure, the group may have been applied.
    OutcomeUnknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// The guard of the write at this index (in the group) did not hold; nothing was written.
    GuardFailed(u32),
    Storage(StorageError),
}

impl From<StorageError> for WriteError {
    fn from(e: StorageError) -> Self {
        WriteError::Storage(e)
    }
}

/// A table's description and the index keyspaces to create or drop with it, applied together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableChange<'a> {
    pub description: &'a [u8],
    pub create_indexes: &'a [String],
    pub drop_indexes: &'a [String],
}

/// The store, as one request sees it. Every call names the account it acts for.
pub trait Storage {
    /// Creates the table's base keyspace and one keyspace per index in `indexes`, and records its
    /// description, atomically. Description versions, like item versions, never repeat: not even
    /// for a table deleted and made again under its name. `Ok(false)` when a table of that name exists already
    /// (nothing changes then).
    fn create_table(
        &mut self,
        account: &str,
        name: &str,
        description: &[u8],
        indexes: &[String],
    ) -> Result<bool, StorageError>;
    /// The stored description, if the table exists.
    fn describe_table(&mut self, account: &str, name: &str) -> Result<Option<TableRecord>, StorageError>;
    /// Replaces the description and creates and drops index keyspaces, atomically, if the table is
    /// still at `expected_version`: `Ok(Some(new version))`, or `Ok(None)` when it is not.
    fn update_table(
        &mut self,
        account: &str,
        name: &str,
        expected_version: u64,
        change: &TableChange<'_>,
    ) -> Result<Option<u64>, StorageError>;
    /// Table names in byte order, strictly after `start_after`, at most `limit`.
    fn list_tables(
        &mut self,
        account: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StorageError>;
    /// Drops the table with all its keyspaces and its change log. `Ok(false)` when there was no
    /// such table.
    fn delete_table(&mut self, account: &str, name: &str) -> Result<bool, StorageError>;
    /// Item count and the sum of document sizes in bytes of a keyspace.
    fn keyspace_stats(&mut self, account: &str, keyspace: &Keyspace) -> Result<(u64, u64), StorageError>;

    fn get(&mut self, account: &str, keyspace: &Keyspace, key: &ItemKey) -> Result<Option<StoredItem>, StorageError>;
    /// As [`Storage::get`], announcing that the caller decides a write of the key on what it
    /// reads: the store may hold back other callers announcing the same key until this caller's
    /// next [`Storage::write`] (or its request's end), so that writers of a hot key queue rather
    /// than fail their guards. One key at a time: announcing another gives up the first. Only a
    /// hint; guards alone keep writes correct, so a store may treat this as a plain read.
    fn get_for_write(
        &mut self,
        account: &str,
        keyspace: &Keyspace,
        key: &ItemKey,
    ) -> Result<Option<StoredItem>, StorageError> {
        self.get(account, keyspace, key)
    }
    fn query(&mut self, account: &str, request: &QueryRequest) -> Result<Page, StorageError>;
    fn scan(&mut self, account: &str, request: &ScanRequest) -> Result<Page, StorageError>;
    /// Applies every write or none: if any guard fails, nothing is written.
    fn write(&mut self, account: &str, writes: &[Write]) -> Result<Committed, WriteError>;
    /// The table's change-log records with sequence numbers above `after`, in order, at most
    /// `limit`. Sequence numbers are given in commit order without gaps, so a reader that has
    /// seen `n` misses nothing by asking for what follows `n`; a gap means records were trimmed.
    fn read_changes(&mut self, account: &str, table: &str, after: u64, limit: u32) -> Result<ChangePage, StorageError>;
    /// Keys of the keyspace's items whose expiry time is at or before `now` (seconds since the
    /// epoch), earliest first, at most `limit`: found on the store's expiry index, not by a scan.
    fn expired(
        &mut self,
        account: &str,
        keyspace: &Keyspace,
        now: u64,
        limit: u32,
    ) -> Result<Vec<ItemKey>, StorageError>;
}

/// The hash that places a partition in a scan segment: FNV-1a over the partition bytes. Every
/// store uses this one function, so segments are the same whichever store answers.
pub fn partition_hash(partition: &[u8]) -> u32 {
    partition.iter().fold(0x811c_9dc5u32, |hash, byte| (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193))
}

/// The hashes segment `segment` of `total` holds: `[start, end)`, as u64 so that the last
/// segment's end (2^32) fits. A hash `h` is in segment `h * total / 2^32` (rounded down).
pub fn segment_hashes(segment: u32, total: u32) -> (u64, u64) {
    let total = u64::from(total.max(1));
    let start = |s: u32| (u64::from(s) << 32).div_ceil(total);
    (start(segment), start(segment + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Every hash falls in exactly one segment, whatever the number of segments.
        #[test]
        fn segments_partition_the_hash_space(partition in proptest::collection::vec(any::<u8>(), 0..16), total in 1u32..=1_000_000) {
            let hash = u64::from(partition_hash(&partition));
            let holding: Vec<u32> = [0, total / 2, total - 1]
                .into_iter()
                .filter(|&s| { let (start, end) = segment_hashes(s, total); start <= hash && hash < end })
                .collect();
            prop_assert!(holding.len() <= 1);
            let segment = ((hash * u64::from(total)) >> 32) as u32;
            let (start, end) = segment_hashes(segment, total);
            prop_assert!(start <= hash && hash < end, "hash {hash} not in segment {segment} [{start}, {end})");
        }
    }

    #[test]
    fn segments_cover_the_hash_space_without_gaps() {
        for total in [1, 2, 3, 7, 1000, 1_000_000] {
            assert_eq!(segment_hashes(0, total).0, 0);
            assert_eq!(segment_hashes(total - 1, total).1, 1 << 32);
            for s in 1..total.min(1000) {
                assert_eq!(segment_hashes(s - 1, total).1, segment_hashes(s, total).0);
            }
        }
    }
}
