//! The storage contract as the handler sees it: a small ordered, versioned store of keyspaces,
//! byte keys and opaque documents that knows nothing of DynamoDB.
//!
//! The contract is data: each operation is a [`Request`], answered by an [`Answer`] or a
//! [`Failure`], and a store is one function, [`Storage::call`]. The same values cross the WIT
//! boundary (`wit/dynabox.wit`, interface `storage`, one `call` carrying them encoded by
//! [`wire`]), so the component's `component.rs` and the host's imports forward every operation,
//! the ones to come included, without knowing them. Natively (unit tests, Spin) any Rust value
//! can implement [`Storage`]; the host's stores answer the same requests.
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

use std::borrow::Cow;
use std::marker::PhantomData;
use std::ops::Bound;

use serde::{Deserialize, Serialize};

/// Names one keyspace: a table's items (`index: None`) or the entries of one of its indexes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ItemKey {
    #[serde(with = "serde_bytes")]
    pub partition: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub sort: Vec<u8>,
}

/// An item as stored: its key, its document (DynamoDB JSON of the whole item, or an index
/// entry's projection) and its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredItem {
    pub key: ItemKey,
    #[serde(with = "serde_bytes")]
    pub document: Vec<u8>,
    pub version: u64,
}

/// A table's stored description and its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRecord {
    #[serde(with = "serde_bytes")]
    pub description: Vec<u8>,
    pub version: u64,
}

/// An on-demand backup as the store keeps it: its ARN (its name in the account) and the record
/// the handler wrote (what DescribeBackup says of it, with the table's description).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBackup {
    pub arn: String,
    #[serde(with = "serde_bytes")]
    pub record: Vec<u8>,
}

/// A key as a table's history tells it for a window of time, for exports: the item at its end
/// (`new`, stamped `at`) and at its start (`old`); none where the key held no item. Not part of
/// the contract: the host reads it (see `SqlStore::read_history`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub key: ItemKey,
    /// The stamp (ms) of the entry that left `new`.
    pub at: u64,
    #[serde(with = "serde_bytes")]
    pub old: Option<Vec<u8>>,
    #[serde(with = "serde_bytes")]
    pub new: Option<Vec<u8>>,
}

/// One page of a read: items in read order. `more` is true when the store stopped because of the
/// limit or the byte budget, so items may follow the last one.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Page {
    pub items: Vec<StoredItem>,
    pub more: bool,
}

/// Which sort keys of a partition a [`QueryRequest`] reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortRange {
    All,
    /// Sort keys that start with these bytes (`begins_with`).
    Prefix(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Sort keys between the bounds, each inclusive, exclusive or open.
    Between(Bound<Vec<u8>>, Bound<Vec<u8>>),
}

/// Reads one partition of a keyspace in sort-key order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryRequest {
    pub keyspace: Keyspace,
    #[serde(with = "serde_bytes")]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Write {
    Put {
        keyspace: Keyspace,
        key: ItemKey,
        #[serde(with = "serde_bytes")]
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
        #[serde(with = "serde_bytes")]
        record: Vec<u8>,
    },
    /// Records the item at `key` of the table's base keyspace, as the group's earlier writes leave
    /// it (absent: deleted), in the table's history, which must have been started (see
    /// [`HistoryChange`]). The store stamps it with its clock in milliseconds, one stamp for the
    /// whole group, and later than the stamp of every group it waited for (one that wrote or
    /// checked its keys before it), so the entries up to any moment are a state the table
    /// could pass through: each key's changes in commit order, a group's all or none.
    AppendHistory {
        table: String,
        key: ItemKey,
    },
}

/// One record of a table's change log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    pub sequence: u64,
    #[serde(with = "serde_bytes")]
    pub record: Vec<u8>,
}

/// Records of a change log in sequence order, and the highest sequence number the log has given
/// (0 before its first record), committed or read.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ChangePage {
    pub changes: Vec<ChangeRecord>,
    pub last_sequence: u64,
}

/// What a committed group reports: the sequence numbers of its `AppendChange`s, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Committed {
    pub change_sequences: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StorageError {
    /// The keyspace or table does not exist (it was deleted, or never created).
    NoSuchKeyspace,
    /// Anything else; the text is for logs, never for clients.
    Internal(String),
    /// A write group's commit was sent and whether it took effect could not be found out: unlike
    /// every other failure, the group may have been applied.
    OutcomeUnknown,
}

/// A table's description and the index keyspaces to create or drop with it, applied together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableChange<'a> {
    #[serde(borrow, with = "serde_bytes")]
    pub description: Cow<'a, [u8]>,
    pub create_indexes: Cow<'a, [String]>,
    pub drop_indexes: Cow<'a, [String]>,
    pub history: HistoryChange,
}

/// What a table change does to the table's history of item changes (point-in-time recovery).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum HistoryChange {
    #[default]
    Keep,
    /// Starts the history with every item the table holds, as of before any stamp (so a moment
    /// at or after the change finds them), in the same transaction as the change.
    Start,
    /// Drops the history.
    Stop,
}

impl<'a> TableChange<'a> {
    /// A new description, with no keyspace created or dropped.
    pub fn record_only(description: &'a [u8]) -> Self {
        TableChange {
            description: description.into(),
            create_indexes: Cow::Borrowed(&[]),
            drop_indexes: Cow::Borrowed(&[]),
            history: HistoryChange::Keep,
        }
    }
}

/// One operation of the contract: what crosses the WIT boundary (encoded by [`wire`]) and what
/// every store answers in its one [`Storage::call`]. Borrowed where the caller has the data, so a
/// call in the same process copies nothing.
///
/// A new operation is a variant here (with its [`Answer`] and a typed constructor below), an arm
/// in `memory.rs` and one in `dynabox_sql::SqlStore::call`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request<'a> {
    /// Creates the table's base keyspace and one keyspace per index in `indexes`, and records its
    /// description, atomically. Description versions, like item versions, never repeat: not even
    /// for a table deleted and made again under its name. Answers [`Answer::Flag`]: false when a
    /// table of that name exists already (nothing changes then).
    CreateTable {
        name: Cow<'a, str>,
        #[serde(borrow, with = "serde_bytes")]
        description: Cow<'a, [u8]>,
        indexes: Cow<'a, [String]>,
    },
    /// The stored description, if the table exists ([`Answer::Table`]).
    DescribeTable { name: Cow<'a, str> },
    /// Replaces the description and creates and drops index keyspaces, atomically, if the table
    /// is still at `expected_version`: [`Answer::Version`] with the new version, or none when it
    /// is not.
    UpdateTable {
        name: Cow<'a, str>,
        expected_version: u64,
        #[serde(borrow)]
        change: TableChange<'a>,
    },
    /// Table names in byte order, strictly after `start_after`, at most `limit` ([`Answer::Names`]).
    ListTables { start_after: Option<Cow<'a, str>>, limit: u32 },
    /// Drops the table with all its keyspaces, its change log and its history ([`Answer::Flag`]:
    /// false when there was no such table). With `keep`, its items as of the deletion are kept
    /// first as that backup (ARN, record), in the same transaction, so no write committed before
    /// the deletion is missing from it.
    DeleteTable {
        name: Cow<'a, str>,
        #[serde(borrow)]
        keep: Option<(Cow<'a, str>, Cow<'a, [u8]>)>,
    },
    /// Item count and the sum of document sizes in bytes of a keyspace ([`Answer::Stats`]).
    KeyspaceStats { keyspace: Cow<'a, Keyspace> },
    /// The item at `key` ([`Answer::Item`]). `for_write` announces that the caller decides a
    /// write of the key on what it reads: the store may hold back other callers announcing the
    /// same key until this caller's next `Write` (or its request's end), so that writers of a hot
    /// key queue rather than fail their guards. One key at a time: announcing another gives up
    /// the first. Only a hint; guards alone keep writes correct.
    Get { keyspace: Cow<'a, Keyspace>, key: Cow<'a, ItemKey>, for_write: bool },
    /// One partition in sort-key order ([`Answer::Page`]).
    Query(Cow<'a, QueryRequest>),
    /// One segment of a keyspace ([`Answer::Page`]).
    Scan(Cow<'a, ScanRequest>),
    /// Applies every write or none: if any guard fails, nothing is written and the call fails
    /// with [`Failure::GuardFailed`] ([`Answer::Committed`]).
    Write(Cow<'a, [Write]>),
    /// The table's change-log records with sequence numbers above `after`, in order, at most
    /// `limit` ([`Answer::Changes`]). Sequence numbers are given in commit order without gaps, so
    /// a reader that has seen `n` misses nothing by asking for what follows `n`; a gap means
    /// records were trimmed.
    ReadChanges { table: Cow<'a, str>, after: u64, limit: u32 },
    /// Keys of the keyspace's items whose expiry time is at or before `now` (seconds since the
    /// epoch), earliest first, at most `limit`: found on the store's expiry index, not by a scan
    /// ([`Answer::Keys`]).
    Expired { keyspace: Cow<'a, Keyspace>, now: u64, limit: u32 },
    /// Copies the table's items (its base keyspace, as of one moment) into a new backup named
    /// `arn` with `record`, if the table is still at `version` ([`Answer::Flag`]: false when it
    /// is not, or is gone). The backup outlives the table.
    CreateBackup {
        table: Cow<'a, str>,
        version: u64,
        arn: Cow<'a, str>,
        #[serde(borrow, with = "serde_bytes")]
        record: Cow<'a, [u8]>,
    },
    /// The backup named `arn`, if the account has it ([`Answer::Backup`]).
    DescribeBackup { arn: Cow<'a, str> },
    /// The account's backups in ARN order, strictly after `start_after`, at most `limit`
    /// ([`Answer::Backups`]).
    ListBackups { start_after: Option<Cow<'a, str>>, limit: u32 },
    /// Drops a backup and its items ([`Answer::Backup`]: what it was, none when there was none).
    DeleteBackup { arn: Cow<'a, str> },
    /// Creates table `name` as `CreateTable` does, with the backup's items in its base keyspace
    /// (its index keyspaces start empty), atomically ([`Answer::Flag`]: false when a table of
    /// that name exists). A backup that is gone is [`StorageError::NoSuchKeyspace`].
    RestoreBackup {
        arn: Cow<'a, str>,
        name: Cow<'a, str>,
        #[serde(borrow, with = "serde_bytes")]
        description: Cow<'a, [u8]>,
        indexes: Cow<'a, [String]>,
    },
    /// Creates table `name` as `CreateTable` does, with the items `source`'s history holds as of
    /// `moment` (milliseconds since the epoch, inclusive: every group stamped at or before it, no
    /// other) in its base keyspace (its index keyspaces start empty). Afterwards `source`'s
    /// history stamps nothing at or before `moment`. [`Answer::Flag`]: false when a table of
    /// that name exists; a source that is gone or keeps no history is
    /// [`StorageError::NoSuchKeyspace`].
    RestoreMoment {
        source: Cow<'a, str>,
        moment: u64,
        name: Cow<'a, str>,
        #[serde(borrow, with = "serde_bytes")]
        description: Cow<'a, [u8]>,
        indexes: Cow<'a, [String]>,
    },
}

impl Request<'_> {
    /// The table the operation acts on, if one.
    pub fn table(&self) -> Option<&str> {
        match self {
            Request::CreateTable { name, .. }
            | Request::DescribeTable { name }
            | Request::UpdateTable { name, .. }
            | Request::DeleteTable { name, .. } => Some(name),
            Request::KeyspaceStats { keyspace } | Request::Get { keyspace, .. } | Request::Expired { keyspace, .. } => {
                Some(&keyspace.table)
            }
            Request::Query(request) => Some(&request.keyspace.table),
            Request::Scan(request) => Some(&request.keyspace.table),
            Request::ReadChanges { table, .. } | Request::CreateBackup { table, .. } => Some(table),
            Request::RestoreBackup { name, .. } | Request::RestoreMoment { name, .. } => Some(name),
            Request::ListTables { .. }
            | Request::Write(_)
            | Request::DescribeBackup { .. }
            | Request::ListBackups { .. }
            | Request::DeleteBackup { .. } => None,
        }
    }

    /// The operation's name, for metrics and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Request::CreateTable { .. } => "CreateTable",
            Request::DescribeTable { .. } => "DescribeTable",
            Request::UpdateTable { .. } => "UpdateTable",
            Request::ListTables { .. } => "ListTables",
            Request::DeleteTable { .. } => "DeleteTable",
            Request::KeyspaceStats { .. } => "KeyspaceStats",
            Request::Get { for_write: false, .. } => "Get",
            Request::Get { for_write: true, .. } => "GetForWrite",
            Request::Query(_) => "Query",
            Request::Scan(_) => "Scan",
            Request::Write(_) => "Write",
            Request::ReadChanges { .. } => "ReadChanges",
            Request::Expired { .. } => "Expired",
            Request::CreateBackup { .. } => "CreateBackup",
            Request::DescribeBackup { .. } => "DescribeBackup",
            Request::ListBackups { .. } => "ListBackups",
            Request::DeleteBackup { .. } => "DeleteBackup",
            Request::RestoreBackup { .. } => "RestoreBackup",
            Request::RestoreMoment { .. } => "RestoreMoment",
        }
    }

    /// Whether the operation creates, changes or drops a table's description.
    pub fn changes_table(&self) -> bool {
        matches!(
            self,
            Request::CreateTable { .. }
                | Request::UpdateTable { .. }
                | Request::DeleteTable { .. }
                | Request::RestoreBackup { .. }
                | Request::RestoreMoment { .. }
        )
    }
}

/// Declares [`Answer`], one variant per payload type, with the conversions that let a typed caller
/// take its payload out (`TryFrom<Answer>`, the answer itself back when it is another kind).
macro_rules! answers {
    ($($(#[$doc:meta])* $variant:ident($payload:ty),)*) => {
        /// What a store answers to a [`Request`] (each request's documentation says which).
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        pub enum Answer {
            $($(#[$doc])* $variant($payload),)*
        }

        $(
            impl From<$payload> for Answer {
                fn from(payload: $payload) -> Answer {
                    Answer::$variant(payload)
                }
            }

            impl TryFrom<Answer> for $payload {
                type Error = Answer;

                fn try_from(answer: Answer) -> Result<Self, Answer> {
                    match answer {
                        Answer::$variant(payload) => Ok(payload),
                        other => Err(other),
                    }
                }
            }
        )*
    };
}

answers! {
    /// Whether the request took effect: a table or backup created, restored or dropped.
    Flag(bool),
    Table(Option<TableRecord>),
    /// A table's new description version, or none when it was not at the expected one.
    Version(Option<u64>),
    Names(Vec<String>),
    /// (item count, document bytes).
    Stats((u64, u64)),
    Item(Option<StoredItem>),
    Page(Page),
    Committed(Committed),
    Changes(ChangePage),
    Keys(Vec<ItemKey>),
    Backup(Option<StoredBackup>),
    Backups(Vec<StoredBackup>),
}

/// A failed call: a guard that did not hold, or the store's own failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Failure {
    /// The guard of the write at this index (in the group) did not hold; nothing was written.
    GuardFailed(u32),
    Storage(StorageError),
}

impl From<StorageError> for Failure {
    fn from(e: StorageError) -> Self {
        Failure::Storage(e)
    }
}

/// The error a typed call reports: [`Failure`] where a guard may fail (writes), [`StorageError`]
/// elsewhere, where a guard failure can only be the store's fault.
pub trait CallError: From<StorageError> {
    fn from_failure(failure: Failure) -> Self;
}

impl CallError for StorageError {
    fn from_failure(failure: Failure) -> Self {
        match failure {
            Failure::Storage(e) => e,
            guard => unexpected(&guard),
        }
    }
}

impl CallError for Failure {
    fn from_failure(failure: Failure) -> Self {
        failure
    }
}

fn unexpected(answer: &impl std::fmt::Debug) -> StorageError {
    StorageError::Internal(format!("the store answered {answer:?} to another request"))
}

/// A request with the types of its answer and error, as the constructors below make it, for
/// [`Storage::ask`] (and the host's asynchronous `ask`).
pub struct Asking<'a, T, E = StorageError> {
    pub request: Request<'a>,
    answer: PhantomData<fn() -> Result<T, E>>,
}

impl<T: TryFrom<Answer, Error = Answer>, E: CallError> Asking<'_, T, E> {
    /// The payload of the answer this request expects; any other answer is the store's fault.
    pub fn expect(result: Result<Answer, Failure>) -> Result<T, E> {
        match result {
            Ok(answer) => answer.try_into().map_err(|other| unexpected(&other).into()),
            Err(failure) => Err(E::from_failure(failure)),
        }
    }
}

fn asking<T, E>(request: Request<'_>) -> Asking<'_, T, E> {
    Asking { request, answer: PhantomData }
}

/// Typed constructors, one per operation (see the variants for what each does).
impl<'a> Request<'a> {
    pub fn create_table(name: &'a str, description: &'a [u8], indexes: &'a [String]) -> Asking<'a, bool> {
        asking(Request::CreateTable { name: name.into(), description: description.into(), indexes: indexes.into() })
    }

    pub fn describe_table(name: &'a str) -> Asking<'a, Option<TableRecord>> {
        asking(Request::DescribeTable { name: name.into() })
    }

    pub fn update_table(name: &'a str, expected_version: u64, change: &'a TableChange<'_>) -> Asking<'a, Option<u64>> {
        let change = TableChange {
            description: Cow::Borrowed(&change.description),
            create_indexes: Cow::Borrowed(&change.create_indexes),
            drop_indexes: Cow::Borrowed(&change.drop_indexes),
            history: change.history,
        };
        asking(Request::UpdateTable { name: name.into(), expected_version, change })
    }

    pub fn list_tables(start_after: Option<&'a str>, limit: u32) -> Asking<'a, Vec<String>> {
        asking(Request::ListTables { start_after: start_after.map(Cow::Borrowed), limit })
    }

    pub fn delete_table(name: &'a str) -> Asking<'a, bool> {
        asking(Request::DeleteTable { name: name.into(), keep: None })
    }

    /// Deletes the table, keeping its items as backup `arn` with `record`.
    pub fn delete_table_keeping(name: &'a str, arn: &'a str, record: &'a [u8]) -> Asking<'a, bool> {
        asking(Request::DeleteTable { name: name.into(), keep: Some((arn.into(), record.into())) })
    }

    pub fn keyspace_stats(keyspace: &'a Keyspace) -> Asking<'a, (u64, u64)> {
        asking(Request::KeyspaceStats { keyspace: Cow::Borrowed(keyspace) })
    }

    pub fn get(keyspace: &'a Keyspace, key: &'a ItemKey) -> Asking<'a, Option<StoredItem>> {
        asking(Request::Get { keyspace: Cow::Borrowed(keyspace), key: Cow::Borrowed(key), for_write: false })
    }

    pub fn get_for_write(keyspace: &'a Keyspace, key: &'a ItemKey) -> Asking<'a, Option<StoredItem>> {
        asking(Request::Get { keyspace: Cow::Borrowed(keyspace), key: Cow::Borrowed(key), for_write: true })
    }

    pub fn query(request: &'a QueryRequest) -> Asking<'a, Page> {
        asking(Request::Query(Cow::Borrowed(request)))
    }

    pub fn scan(request: &'a ScanRequest) -> Asking<'a, Page> {
        asking(Request::Scan(Cow::Borrowed(request)))
    }

    pub fn write(writes: &'a [Write]) -> Asking<'a, Committed, Failure> {
        asking(Request::Write(Cow::Borrowed(writes)))
    }

    pub fn read_changes(table: &'a str, after: u64, limit: u32) -> Asking<'a, ChangePage> {
        asking(Request::ReadChanges { table: table.into(), after, limit })
    }

    pub fn expired(keyspace: &'a Keyspace, now: u64, limit: u32) -> Asking<'a, Vec<ItemKey>> {
        asking(Request::Expired { keyspace: Cow::Borrowed(keyspace), now, limit })
    }

    pub fn create_backup(table: &'a str, version: u64, arn: &'a str, record: &'a [u8]) -> Asking<'a, bool> {
        asking(Request::CreateBackup { table: table.into(), version, arn: arn.into(), record: record.into() })
    }

    pub fn describe_backup(arn: &'a str) -> Asking<'a, Option<StoredBackup>> {
        asking(Request::DescribeBackup { arn: arn.into() })
    }

    pub fn list_backups(start_after: Option<&'a str>, limit: u32) -> Asking<'a, Vec<StoredBackup>> {
        asking(Request::ListBackups { start_after: start_after.map(Cow::Borrowed), limit })
    }

    pub fn delete_backup(arn: &'a str) -> Asking<'a, Option<StoredBackup>> {
        asking(Request::DeleteBackup { arn: arn.into() })
    }

    pub fn restore_backup(
        arn: &'a str,
        name: &'a str,
        description: &'a [u8],
        indexes: &'a [String],
    ) -> Asking<'a, bool> {
        asking(Request::RestoreBackup {
            arn: arn.into(),
            name: name.into(),
            description: description.into(),
            indexes: indexes.into(),
        })
    }

    pub fn restore_moment(
        source: &'a str,
        moment: u64,
        name: &'a str,
        description: &'a [u8],
        indexes: &'a [String],
    ) -> Asking<'a, bool> {
        asking(Request::RestoreMoment {
            source: source.into(),
            moment,
            name: name.into(),
            description: description.into(),
            indexes: indexes.into(),
        })
    }
}

/// The store, as one request sees it: one operation at a time ([`Request`]), each naming the
/// account it acts for.
pub trait Storage {
    fn call(&mut self, account: &str, request: Request<'_>) -> Result<Answer, Failure>;

    /// [`Storage::call`] with a typed request: `storage.ask(account, Request::get(&keyspace, &key))`.
    fn ask<T, E>(&mut self, account: &str, asking: Asking<'_, T, E>) -> Result<T, E>
    where
        T: TryFrom<Answer, Error = Answer>,
        E: CallError,
    {
        Asking::<T, E>::expect(self.call(account, asking.request))
    }

    /// Whether a worker beside this store takes up exports and imports (jobs the handler records
    /// for it), which need a bucket the handler cannot reach: the host's worker does; under Spin,
    /// nothing does.
    fn runs_transfers(&self) -> bool {
        false
    }
}

/// The encoding of requests and answers across the WIT boundary: postcard, a compact serde
/// format with a published specification. Both sides are built from this crate, so they agree.
pub mod wire {
    use serde::{Deserialize, Serialize};

    pub fn encode(value: &impl Serialize) -> Vec<u8> {
        // Serialising these types into a Vec cannot fail: no maps, no unbounded sequences.
        postcard::to_allocvec(value).expect("storage types always encode")
    }

    pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
        postcard::from_bytes(bytes).map_err(|e| format!("undecodable storage message: {e}"))
    }
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

    /// What the component encodes, the host decodes unchanged, and back: every request and
    /// answer shape, with bytes of every value (the documents are raw bytes on the wire).
    #[test]
    fn requests_and_answers_cross_the_wire_unchanged() {
        let keyspace = Keyspace::index("t", "by-x");
        let key = ItemKey { partition: vec![0, 255, 1], sort: (0..=255).collect() };
        let item = StoredItem {
            key: key.clone(),
            document: "{\"a\":{\"S\":\"\u{1F600}\"}}".as_bytes().to_vec(),
            version: u64::MAX,
        };
        let query = QueryRequest {
            keyspace: keyspace.clone(),
            partition: vec![7],
            sort: SortRange::Between(Bound::Included(vec![1]), Bound::Excluded(vec![2])),
            forward: false,
            after: Some(key.clone()),
            limit: 10,
            byte_budget: 1 << 20,
        };
        let scan = ScanRequest {
            keyspace: keyspace.clone(),
            segment: 3,
            total_segments: 4,
            after: None,
            limit: 1,
            byte_budget: 2,
        };
        let writes = [
            Write::Put {
                keyspace: keyspace.clone(),
                key: key.clone(),
                document: vec![9; 300],
                expect: Expect::Version(5),
                expires_at: Some(99),
            },
            Write::Delete { keyspace: keyspace.clone(), key: key.clone(), expect: Expect::Absent },
            Write::Check { keyspace: keyspace.clone(), key: key.clone(), expect: Expect::Anything },
            Write::TableAt { table: "t".into(), version: 3 },
            Write::AppendChange { table: "t".into(), record: vec![0; 3] },
            Write::AppendHistory { table: "t".into(), key: key.clone() },
        ];
        let change = TableChange {
            description: b"{}".as_slice().into(),
            create_indexes: vec!["a".to_string()].into(),
            drop_indexes: Cow::Borrowed(&[]),
            history: HistoryChange::Start,
        };
        let indexes = ["x".to_string()];
        let requests = [
            Request::create_table("t", b"{}", &indexes).request,
            Request::describe_table("t").request,
            Request::update_table("t", 4, &change).request,
            Request::list_tables(Some("a"), 5).request,
            Request::delete_table("t").request,
            Request::delete_table_keeping("t", "arn", b"{}").request,
            Request::restore_moment("t", 1_700_000_000_000, "u", b"{}", &indexes).request,
            Request::keyspace_stats(&keyspace).request,
            Request::get(&keyspace, &key).request,
            Request::get_for_write(&keyspace, &key).request,
            Request::query(&query).request,
            Request::scan(&scan).request,
            Request::write(&writes).request,
            Request::read_changes("t", 1, 2).request,
            Request::expired(&keyspace, 100, 3).request,
        ];
        for request in requests {
            assert_eq!(wire::decode::<Request>(&wire::encode(&request)), Ok(request));
        }
        let answers: [Result<Answer, Failure>; 6] = [
            Ok(Some(item.clone()).into()),
            Ok(Page { items: vec![item], more: true }.into()),
            Ok((1, 2).into()),
            Ok(ChangePage { changes: vec![ChangeRecord { sequence: 1, record: vec![1] }], last_sequence: 1 }.into()),
            Err(Failure::GuardFailed(7)),
            Err(StorageError::Internal(String::new()).into()),
        ];
        for answer in answers {
            assert_eq!(wire::decode::<Result<Answer, Failure>>(&wire::encode(&answer)), Ok(answer));
        }
        assert!(wire::decode::<Request>(&[0xff, 0xff]).is_err(), "garbage does not decode");
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
