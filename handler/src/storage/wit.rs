//! The one conversion between the storage contract's types and the bindings a WIT generator
//! makes of `wit/dynabox.wit`'s `storage` interface. Both generators in use (wit-bindgen in the
//! component, wasmtime's in the host) give those bindings the same names and shapes, but each
//! makes types of its own crate; so the conversion is written once, here, and each side expands
//! it over its bindings: `dynabox_handler::storage_conversions!(path::to::storage)`.

/// `From` impls, both ways, between `dynabox_handler::storage`'s types and the generated bindings
/// of the `storage` interface at `$wit`. Errors convert as they are; what the guest may see of an
/// internal error is the host's to decide before converting.
#[macro_export]
macro_rules! storage_conversions {
    ($wit:path) => {
        const _: () = {
            use std::ops::Bound;

            use $crate::storage as native;
            use $wit as wit;

            impl From<wit::Keyspace> for native::Keyspace {
                fn from(k: wit::Keyspace) -> Self {
                    native::Keyspace { table: k.table, index: k.index }
                }
            }

            impl From<native::Keyspace> for wit::Keyspace {
                fn from(k: native::Keyspace) -> Self {
                    wit::Keyspace { table: k.table, index: k.index }
                }
            }

            impl From<wit::ItemKey> for native::ItemKey {
                fn from(k: wit::ItemKey) -> Self {
                    native::ItemKey { partition: k.partition, sort: k.sort }
                }
            }

            impl From<native::ItemKey> for wit::ItemKey {
                fn from(k: native::ItemKey) -> Self {
                    wit::ItemKey { partition: k.partition, sort: k.sort }
                }
            }

            impl From<wit::Expect> for native::Expect {
                fn from(e: wit::Expect) -> Self {
                    match e {
                        wit::Expect::Anything => native::Expect::Anything,
                        wit::Expect::Absent => native::Expect::Absent,
                        wit::Expect::Version(v) => native::Expect::Version(v),
                    }
                }
            }

            impl From<native::Expect> for wit::Expect {
                fn from(e: native::Expect) -> Self {
                    match e {
                        native::Expect::Anything => wit::Expect::Anything,
                        native::Expect::Absent => wit::Expect::Absent,
                        native::Expect::Version(v) => wit::Expect::Version(v),
                    }
                }
            }

            impl From<wit::StoredItem> for native::StoredItem {
                fn from(i: wit::StoredItem) -> Self {
                    native::StoredItem { key: i.key.into(), document: i.document, version: i.version }
                }
            }

            impl From<native::StoredItem> for wit::StoredItem {
                fn from(i: native::StoredItem) -> Self {
                    wit::StoredItem { key: i.key.into(), document: i.document, version: i.version }
                }
            }

            impl From<wit::Page> for native::Page {
                fn from(page: wit::Page) -> Self {
                    native::Page { items: page.items.into_iter().map(Into::into).collect(), more: page.more }
                }
            }

            impl From<native::Page> for wit::Page {
                fn from(page: native::Page) -> Self {
                    wit::Page { items: page.items.into_iter().map(Into::into).collect(), more: page.more }
                }
            }

            impl From<wit::TableRecord> for native::TableRecord {
                fn from(r: wit::TableRecord) -> Self {
                    native::TableRecord { description: r.description, version: r.version }
                }
            }

            impl From<native::TableRecord> for wit::TableRecord {
                fn from(r: native::TableRecord) -> Self {
                    wit::TableRecord { description: r.description, version: r.version }
                }
            }

            impl<'a> From<&'a wit::TableChange> for native::TableChange<'a> {
                fn from(c: &'a wit::TableChange) -> Self {
                    native::TableChange {
                        description: &c.description,
                        create_indexes: &c.create_indexes,
                        drop_indexes: &c.drop_indexes,
                    }
                }
            }

            impl From<&native::TableChange<'_>> for wit::TableChange {
                fn from(c: &native::TableChange<'_>) -> Self {
                    wit::TableChange {
                        description: c.description.to_vec(),
                        create_indexes: c.create_indexes.to_vec(),
                        drop_indexes: c.drop_indexes.to_vec(),
                    }
                }
            }

            impl From<wit::Bound> for Bound<Vec<u8>> {
                fn from(b: wit::Bound) -> Self {
                    match b {
                        wit::Bound::Unbounded => Bound::Unbounded,
                        wit::Bound::Inclusive(b) => Bound::Included(b),
                        wit::Bound::Exclusive(b) => Bound::Excluded(b),
                    }
                }
            }

            impl From<Bound<Vec<u8>>> for wit::Bound {
                fn from(b: Bound<Vec<u8>>) -> Self {
                    match b {
                        Bound::Unbounded => wit::Bound::Unbounded,
                        Bound::Included(b) => wit::Bound::Inclusive(b),
                        Bound::Excluded(b) => wit::Bound::Exclusive(b),
                    }
                }
            }

            impl From<wit::SortRange> for native::SortRange {
                fn from(s: wit::SortRange) -> Self {
                    match s {
                        wit::SortRange::All => native::SortRange::All,
                        wit::SortRange::Prefix(prefix) => native::SortRange::Prefix(prefix),
                        wit::SortRange::Between((lower, upper)) => {
                            native::SortRange::Between(lower.into(), upper.into())
                        }
                    }
                }
            }

            impl From<native::SortRange> for wit::SortRange {
                fn from(s: native::SortRange) -> Self {
                    match s {
                        native::SortRange::All => wit::SortRange::All,
                        native::SortRange::Prefix(prefix) => wit::SortRange::Prefix(prefix),
                        native::SortRange::Between(lower, upper) => {
                            wit::SortRange::Between((lower.into(), upper.into()))
                        }
                    }
                }
            }

            impl From<wit::QueryRequest> for native::QueryRequest {
                fn from(r: wit::QueryRequest) -> Self {
                    native::QueryRequest {
                        keyspace: r.keyspace.into(),
                        partition: r.partition,
                        sort: r.sort.into(),
                        forward: r.forward,
                        after: r.after.map(Into::into),
                        limit: r.limit,
                        byte_budget: r.byte_budget,
                    }
                }
            }

            impl From<native::QueryRequest> for wit::QueryRequest {
                fn from(r: native::QueryRequest) -> Self {
                    wit::QueryRequest {
                        keyspace: r.keyspace.into(),
                        partition: r.partition,
                        sort: r.sort.into(),
                        forward: r.forward,
                        after: r.after.map(Into::into),
                        limit: r.limit,
                        byte_budget: r.byte_budget,
                    }
                }
            }

            impl From<wit::ScanRequest> for native::ScanRequest {
                fn from(r: wit::ScanRequest) -> Self {
                    native::ScanRequest {
                        keyspace: r.keyspace.into(),
                        segment: r.segment,
                        total_segments: r.total_segments,
                        after: r.after.map(Into::into),
                        limit: r.limit,
                        byte_budget: r.byte_budget,
                    }
                }
            }

            impl From<native::ScanRequest> for wit::ScanRequest {
                fn from(r: native::ScanRequest) -> Self {
                    wit::ScanRequest {
                        keyspace: r.keyspace.into(),
                        segment: r.segment,
                        total_segments: r.total_segments,
                        after: r.after.map(Into::into),
                        limit: r.limit,
                        byte_budget: r.byte_budget,
                    }
                }
            }

            impl From<wit::WriteOp> for native::Write {
                fn from(write: wit::WriteOp) -> Self {
                    match write {
                        wit::WriteOp::Put(p) => native::Write::Put {
                            keyspace: p.keyspace.into(),
                            key: p.key.into(),
                            document: p.document,
                            expect: p.expect.into(),
                            expires_at: p.expires_at,
                        },
                        wit::WriteOp::Delete(g) => native::Write::Delete {
                            keyspace: g.keyspace.into(),
                            key: g.key.into(),
                            expect: g.expect.into(),
                        },
                        wit::WriteOp::Check(g) => native::Write::Check {
                            keyspace: g.keyspace.into(),
                            key: g.key.into(),
                            expect: g.expect.into(),
                        },
                        wit::WriteOp::TableAt((table, version)) => native::Write::TableAt { table, version },
                        wit::WriteOp::AppendChange((table, record)) => native::Write::AppendChange { table, record },
                    }
                }
            }

            impl From<native::Write> for wit::WriteOp {
                fn from(write: native::Write) -> Self {
                    match write {
                        native::Write::Put { keyspace, key, document, expect, expires_at } => {
                            wit::WriteOp::Put(wit::Put {
                                keyspace: keyspace.into(),
                                key: key.into(),
                                document,
                                expect: expect.into(),
                                expires_at,
                            })
                        }
                        native::Write::Delete { keyspace, key, expect } => wit::WriteOp::Delete(wit::GuardedKey {
                            keyspace: keyspace.into(),
                            key: key.into(),
                            expect: expect.into(),
                        }),
                        native::Write::Check { keyspace, key, expect } => wit::WriteOp::Check(wit::GuardedKey {
                            keyspace: keyspace.into(),
                            key: key.into(),
                            expect: expect.into(),
                        }),
                        native::Write::TableAt { table, version } => wit::WriteOp::TableAt((table, version)),
                        native::Write::AppendChange { table, record } => wit::WriteOp::AppendChange((table, record)),
                    }
                }
            }

            impl From<wit::Committed> for native::Committed {
                fn from(c: wit::Committed) -> Self {
                    native::Committed { change_sequences: c.change_sequences }
                }
            }

            impl From<native::Committed> for wit::Committed {
                fn from(c: native::Committed) -> Self {
                    wit::Committed { change_sequences: c.change_sequences }
                }
            }

            impl From<wit::ChangePage> for native::ChangePage {
                fn from(page: wit::ChangePage) -> Self {
                    let changes = page.changes.into_iter();
                    native::ChangePage {
                        changes: changes
                            .map(|c| native::ChangeRecord { sequence: c.sequence, record: c.data })
                            .collect(),
                        last_sequence: page.last_sequence,
                    }
                }
            }

            impl From<native::ChangePage> for wit::ChangePage {
                fn from(page: native::ChangePage) -> Self {
                    let changes = page.changes.into_iter();
                    wit::ChangePage {
                        changes: changes.map(|c| wit::ChangeRecord { sequence: c.sequence, data: c.record }).collect(),
                        last_sequence: page.last_sequence,
                    }
                }
            }

            impl From<wit::StorageError> for native::StorageError {
                fn from(e: wit::StorageError) -> Self {
                    match e {
                        wit::StorageError::NoSuchKeyspace => native::StorageError::NoSuchKeyspace,
                        wit::StorageError::Internal(detail) => native::StorageError::Internal(detail),
                        wit::StorageError::OutcomeUnknown => native::StorageError::OutcomeUnknown,
                    }
                }
            }

            impl From<native::StorageError> for wit::StorageError {
                fn from(e: native::StorageError) -> Self {
                    match e {
                        native::StorageError::NoSuchKeyspace => wit::StorageError::NoSuchKeyspace,
                        native::StorageError::Internal(detail) => wit::StorageError::Internal(detail),
                        native::StorageError::OutcomeUnknown => wit::StorageError::OutcomeUnknown,
                    }
                }
            }

            impl From<wit::WriteError> for native::WriteError {
                fn from(e: wit::WriteError) -> Self {
                    match e {
                        wit::WriteError::GuardFailed(index) => native::WriteError::GuardFailed(index),
                        wit::WriteError::Storage(e) => native::WriteError::Storage(e.into()),
                    }
                }
            }

            impl From<native::WriteError> for wit::WriteError {
                fn from(e: native::WriteError) -> Self {
                    match e {
                        native::WriteError::GuardFailed(index) => wit::WriteError::GuardFailed(index),
                        native::WriteError::Storage(e) => wit::WriteError::Storage(e.into()),
                    }
                }
            }
        };
    };
}
