//! The storage contract as the handler sees it: a small ordered, versioned item store that knows
//! keyspaces, byte keys and opaque documents, and nothing of DynamoDB.
//!
//! These types mirror `wit/dynabox.wit` (interface `storage`) one to one. Inside the component,
//! `component.rs` implements [`Storage`] on the WIT imports; natively (unit tests, benchmarks) any
//! Rust value can implement it. The host's backends use these same types, so the WIT boundary is
//! a mechanical conversion on both sides.

/// The key of an item inside a keyspace. Both parts are order-preserving encodings
/// (`model::key`); `sort` is empty for tables without a sort key. Items are ordered by
/// `(partition, sort)`, comparing bytes unsigned.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ItemKey {
    pub partition: Vec<u8>,
    pub sort: Vec<u8>,
}

/// An item as stored: its key, its document (DynamoDB JSON of the whole item) and the version the
/// store gave it. Versions start at 1 and grow with every write of that key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredItem {
    pub key: ItemKey,
    pub document: Vec<u8>,
    pub version: u64,
}

/// One page of a scan: items in key order. `more` is true when the store stopped because of the
/// limit or the byte budget, so items may follow the last one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    pub items: Vec<StoredItem>,
    pub more: bool,
}

/// A scan over a whole keyspace in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRequest {
    pub keyspace: String,
    /// Resume strictly after this key.
    pub after: Option<ItemKey>,
    /// At most this many items.
    pub limit: u32,
    /// Stop after the item whose document makes the running total of document bytes reach this.
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

/// One write of an atomic group: a put when `document` is `Some`, a delete when `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub keyspace: String,
    pub key: ItemKey,
    pub document: Option<Vec<u8>>,
    pub expect: Expect,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageError {
    /// The keyspace does not exist (the table was deleted, or never created).
    NoSuchKeyspace,
    /// Anything else; the text is for logs, never for clients.
    Internal(String),
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

/// The store, as one request of one principal sees it. Table descriptions are opaque documents
/// (JSON of `catalog::TableDescription`); a table's items live in the keyspace named after it.
pub trait Storage {
    /// Creates the table's keyspace and records its description, atomically. `Ok(false)` when a
    /// table of that name exists already (nothing changes then).
    fn create_table(&mut self, name: &str, description: &[u8]) -> Result<bool, StorageError>;
    /// The stored description, if the table exists.
    fn describe_table(&mut self, name: &str) -> Result<Option<Vec<u8>>, StorageError>;
    /// Table names in byte order, strictly after `start_after`, at most `limit`.
    fn list_tables(&mut self, start_after: Option<&str>, limit: u32) -> Result<Vec<String>, StorageError>;
    /// Drops the table's keyspace and description. `Ok(false)` when there was no such table.
    fn delete_table(&mut self, name: &str) -> Result<bool, StorageError>;
    /// Item count and the sum of document sizes in bytes of a keyspace.
    fn keyspace_stats(&mut self, keyspace: &str) -> Result<(u64, u64), StorageError>;

    fn get(&mut self, keyspace: &str, key: &ItemKey) -> Result<Option<StoredItem>, StorageError>;
    fn scan(&mut self, request: &ScanRequest) -> Result<Page, StorageError>;
    /// Applies every write or none: if any guard fails, nothing is written.
    fn write(&mut self, writes: &[Write]) -> Result<(), WriteError>;
}
