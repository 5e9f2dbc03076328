//! The storage contract on BTreeMaps: the reference implementation, small enough to read as the
//! contract's definition. The handler's tests run on it, and it passes the same conformance suite
//! as the host's backends (`tests/storage_conformance.rs`).

use std::collections::BTreeMap;
use std::ops::Bound;

use super::{
    Answer, ChangePage, ChangeRecord, Committed, Expect, Failure, HistoryChange, HistoryEntry, ItemKey, Keyspace, Page,
    Request, SortRange, Storage, StorageError, StoredBackup, StoredItem, TableRecord, Write, partition_hash,
    segment_hashes,
};

type Items = BTreeMap<ItemKey, Entry>;

/// (key, sequence number) → (stamp, the item then, none if deleted).
type History = BTreeMap<(ItemKey, u64), (u64, Option<Entry>)>;

#[derive(Debug, Clone)]
struct Entry {
    document: Vec<u8>,
    version: u64,
    expires_at: Option<u64>,
}

#[derive(Debug, Clone, Default)]
struct Table {
    record: Option<TableRecord>,
    /// The base keyspace under `None`, each index under its name.
    keyspaces: BTreeMap<Option<String>, Items>,
    /// The last sequence number the change log gave.
    changes: u64,
    /// Sequence number → (record, seconds since the epoch when it was written).
    log: BTreeMap<u64, (Vec<u8>, u64)>,
    /// While history is kept. The items of when it started are under sequence number 0, stamped 0.
    history: Option<History>,
    /// The last sequence number and the latest stamp the history gave.
    history_sequence: u64,
    history_stamp: u64,
}

impl Table {
    /// The base keyspace's items as the history holds them at `moment`.
    fn items_at(&self, moment: u64) -> Option<Items> {
        let mut items = Items::new();
        for ((key, _), (stamp, entry)) in self.history.as_ref()? {
            if *stamp <= moment {
                match entry {
                    Some(entry) => items.insert(key.clone(), entry.clone()),
                    None => items.remove(key),
                };
            }
        }
        Some(items)
    }

    /// Makes the history's next stamp later than `moment`, so that what it holds then is final.
    fn settle(&mut self, moment: u64) {
        self.history_stamp = self.history_stamp.max(moment + 1);
    }
}

/// Every account's tables, in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    tables: BTreeMap<(String, String), Table>,
    /// (account, ARN) → the backup and the table's items it holds.
    backups: BTreeMap<(String, String), (StoredBackup, Items)>,
    /// The last version given, to an item or a table description: one clock for all, so versions
    /// never repeat.
    clock: u64,
}

impl MemoryStore {
    fn table(&self, account: &str, name: &str) -> Option<&Table> {
        self.tables.get(&(account.to_string(), name.to_string()))
    }

    fn items(&self, account: &str, keyspace: &Keyspace) -> Result<&Items, StorageError> {
        let table = self.table(account, &keyspace.table).ok_or(StorageError::NoSuchKeyspace)?;
        table.keyspaces.get(&keyspace.index).ok_or(StorageError::NoSuchKeyspace)
    }

    fn items_mut(&mut self, account: &str, keyspace: &Keyspace) -> Result<&mut Items, StorageError> {
        let table = self.tables.get_mut(&(account.to_string(), keyspace.table.clone()));
        table.and_then(|t| t.keyspaces.get_mut(&keyspace.index)).ok_or(StorageError::NoSuchKeyspace)
    }

    /// A new table with empty keyspaces; none when the name is taken.
    fn create_table(
        &mut self,
        account: &str,
        name: &str,
        description: &[u8],
        indexes: &[String],
    ) -> Option<&mut Table> {
        let id = (account.to_string(), name.to_string());
        if self.tables.contains_key(&id) {
            return None;
        }
        self.clock += 1;
        let record = TableRecord { description: description.to_vec(), version: self.clock };
        let mut table = Table { record: Some(record), ..Table::default() };
        table.keyspaces.insert(None, Items::new());
        for index in indexes {
            table.keyspaces.insert(Some(index.clone()), Items::new());
        }
        Some(self.tables.entry(id).or_insert(table))
    }

    /// The accounts that have a table named `name`, in order (see `SqlStore::accounts_with_table`).
    pub fn accounts_with_table(&self, name: &str) -> Vec<String> {
        self.tables.keys().filter(|(_, table)| table == name).map(|(account, _)| account.clone()).collect()
    }

    /// Drops up to `limit` change records written before `before` (seconds since the epoch),
    /// oldest first: (how many it dropped, how many such records it left).
    pub fn trim_changes(&mut self, before: u64, limit: u64) -> (u64, u64) {
        let mut stale: Vec<(u64, (String, String), u64)> = self
            .tables
            .iter()
            .flat_map(|(name, table)| {
                let old = table.log.iter().filter(|(_, (_, written))| *written < before);
                old.map(|(sequence, (_, written))| (*written, name.clone(), *sequence))
            })
            .collect();
        stale.sort();
        let dropped = stale.len().min(usize::try_from(limit).unwrap_or(usize::MAX));
        for (_, name, sequence) in &stale[..dropped] {
            self.tables.get_mut(name).expect("a table just listed").log.remove(sequence);
        }
        (dropped as u64, (stale.len() - dropped) as u64)
    }

    /// Forgets history stamped at or before `before` (milliseconds) that no moment after it
    /// needs: entries another entry of their key at or before it replaced, and deletions with
    /// nothing earlier left to hide. At most `limit`; how many it forgot.
    pub fn fold_history(&mut self, account: &str, table: &str, before: u64, limit: u64) -> u64 {
        let Some(history) =
            self.tables.get_mut(&(account.to_string(), table.to_string())).and_then(|t| t.history.as_mut())
        else {
            return 0;
        };
        let entries: Vec<_> =
            history.iter().map(|((key, seq), (stamp, entry))| (key.clone(), *seq, *stamp, entry.is_none())).collect();
        let mut forgotten = Vec::new();
        for (i, (key, seq, stamp, deleted)) in entries.iter().enumerate() {
            let same_key = |other: &&(ItemKey, u64, u64, bool)| other.0 == *key;
            let replaced = entries[i + 1..].iter().take_while(same_key).any(|later| later.2 <= before);
            let first = i == 0 || entries[i - 1].0 != *key;
            if *stamp <= before && (replaced || (*deleted && first)) {
                forgotten.push((key.clone(), *seq));
            }
        }
        forgotten.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        for entry in &forgotten {
            history.remove(entry);
        }
        forgotten.len() as u64
    }

    /// A page of the table's history for exports, in key order, strictly after `after`, at most
    /// `limit` keys: with `from`, each key with an entry stamped in (from, to], with its items at
    /// `from` and at `to`, left out when it had none at either; without, each item restoring to
    /// `to` gives (see `SqlStore::read_history`). The first page settles `to`, as RestoreMoment
    /// does.
    pub fn read_history(
        &mut self,
        account: &str,
        table: &str,
        from: Option<u64>,
        to: u64,
        after: Option<&ItemKey>,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>, StorageError> {
        let table =
            self.tables.get_mut(&(account.to_string(), table.to_string())).ok_or(StorageError::NoSuchKeyspace)?;
        let history = table.history.as_ref().ok_or(StorageError::NoSuchKeyspace)?;
        let start = after.map_or(Bound::Unbounded, |key| Bound::Excluded((key.clone(), u64::MAX)));
        let mut keys: Vec<&ItemKey> = history.range((start, Bound::Unbounded)).map(|((key, _), _)| key).collect();
        keys.dedup();
        let changes = keys.into_iter().filter_map(|key| {
            let entries = || history.range((key.clone(), 0)..=(key.clone(), u64::MAX)).map(|(_, entry)| entry);
            let latest = |moment: u64| entries().rev().find(|(stamp, _)| *stamp <= moment);
            let changed = from.is_none_or(|from| entries().any(|(stamp, _)| from < *stamp && *stamp <= to));
            let (at, new) = latest(to).filter(|_| changed)?;
            let old = from.and_then(latest).and_then(|(_, old)| old.as_ref());
            let document = |entry: &Entry| entry.document.clone();
            let entry =
                HistoryEntry { key: key.clone(), at: *at, old: old.map(document), new: new.as_ref().map(document) };
            (old.is_some() || new.is_some()).then_some(entry)
        });
        let page = changes.take(limit as usize).collect();
        if after.is_none() {
            table.settle(to);
        }
        Ok(page)
    }

    /// Applies every write of a group in order, each guard seeing the earlier writes; a failure
    /// restores the state from before the group.
    fn write_group(&mut self, account: &str, writes: &[Write]) -> Result<Committed, Failure> {
        let before = self.clone();
        let mut committed = Committed::default();
        let now = crate::time::now_millis() as u64;
        for (index, write) in writes.iter().enumerate() {
            match self.apply(account, write, now, &mut committed) {
                Ok(true) => {}
                Ok(false) => {
                    *self = before;
                    return Err(Failure::GuardFailed(index as u32));
                }
                Err(e) => {
                    *self = before;
                    return Err(Failure::Storage(e));
                }
            }
        }
        Ok(committed)
    }

    /// Applies one write of a group stamped `now` to this state; whether its guard held.
    fn apply(
        &mut self,
        account: &str,
        write: &Write,
        now: u64,
        committed: &mut Committed,
    ) -> Result<bool, StorageError> {
        let holds = |items: &Items, key: &ItemKey, expect: Expect| {
            let current = items.get(key).map(|e| e.version);
            match expect {
                Expect::Anything => true,
                Expect::Absent => current.is_none(),
                Expect::Version(version) => current == Some(version),
            }
        };
        match write {
            Write::Put { keyspace, key, document, expect, expires_at } => {
                self.clock += 1;
                let version = self.clock;
                let items = self.items_mut(account, keyspace)?;
                if !holds(items, key, *expect) {
                    return Ok(false);
                }
                let entry = Entry { document: document.clone(), version, expires_at: *expires_at };
                items.insert(key.clone(), entry);
            }
            Write::Delete { keyspace, key, expect } => {
                let items = self.items_mut(account, keyspace)?;
                if !holds(items, key, *expect) {
                    return Ok(false);
                }
                items.remove(key);
            }
            Write::Check { keyspace, key, expect } => return Ok(holds(self.items(account, keyspace)?, key, *expect)),
            Write::TableAt { table, version } => {
                let record = self.table(account, table).and_then(|t| t.record.as_ref());
                return Ok(record.ok_or(StorageError::NoSuchKeyspace)?.version == *version);
            }
            Write::AppendChange { table, record } => {
                let table = self.tables.get_mut(&(account.to_string(), table.clone()));
                let table = table.ok_or(StorageError::NoSuchKeyspace)?;
                table.changes += 1;
                table.log.insert(table.changes, (record.clone(), crate::time::now_seconds() as u64));
                committed.change_sequences.push(table.changes);
            }
            Write::AppendHistory { table, key } => {
                let table = self.tables.get_mut(&(account.to_string(), table.clone()));
                let table = table.ok_or(StorageError::NoSuchKeyspace)?;
                let entry = table.keyspaces.get(&None).and_then(|items| items.get(key)).cloned();
                let history = table.history.as_mut().ok_or(StorageError::NoSuchKeyspace)?;
                table.history_sequence += 1;
                table.history_stamp = table.history_stamp.max(now);
                history.insert((key.clone(), table.history_sequence), (table.history_stamp, entry));
            }
        }
        Ok(true)
    }
}

/// Collects a page in read order until the limit or the byte budget ends it.
fn page<'a>(entries: impl Iterator<Item = (&'a ItemKey, &'a Entry)>, limit: u32, byte_budget: u32) -> Page {
    let mut page = Page { items: Vec::new(), more: limit == 0 };
    let mut bytes = 0u64;
    for (key, entry) in entries {
        if page.more {
            break;
        }
        bytes += entry.document.len() as u64;
        page.items.push(StoredItem { key: key.clone(), document: entry.document.clone(), version: entry.version });
        page.more = page.items.len() as u64 >= u64::from(limit) || bytes >= u64::from(byte_budget);
    }
    page
}

fn sort_holds(range: &SortRange, sort: &[u8]) -> bool {
    match range {
        SortRange::All => true,
        SortRange::Prefix(prefix) => sort.starts_with(prefix),
        SortRange::Between(lower, upper) => {
            (match lower {
                Bound::Unbounded => true,
                Bound::Included(l) => sort >= l.as_slice(),
                Bound::Excluded(l) => sort > l.as_slice(),
            }) && (match upper {
                Bound::Unbounded => true,
                Bound::Included(u) => sort <= u.as_slice(),
                Bound::Excluded(u) => sort < u.as_slice(),
            })
        }
    }
}

impl Storage for MemoryStore {
    fn call(&mut self, account: &str, request: Request<'_>) -> Result<Answer, Failure> {
        Ok(match request {
            Request::CreateTable { name, description, indexes } => {
                self.create_table(account, &name, &description, &indexes).is_some().into()
            }
            Request::DescribeTable { name } => self.table(account, &name).and_then(|t| t.record.clone()).into(),
            Request::UpdateTable { name, expected_version, change } => {
                let table = self.tables.get_mut(&(account.to_string(), name.into_owned()));
                let table = table.ok_or(StorageError::NoSuchKeyspace)?;
                let record = table.record.as_mut().ok_or(StorageError::NoSuchKeyspace)?;
                if record.version != expected_version {
                    return Ok(None::<u64>.into());
                }
                self.clock += 1;
                record.version = self.clock;
                record.description = change.description.into_owned();
                for index in change.drop_indexes.iter() {
                    table.keyspaces.remove(&Some(index.clone()));
                }
                for index in change.create_indexes.iter() {
                    table.keyspaces.insert(Some(index.clone()), Items::new());
                }
                match change.history {
                    HistoryChange::Keep => {}
                    HistoryChange::Start => {
                        let items = table.keyspaces.get(&None).into_iter().flatten();
                        let start = items.map(|(key, entry)| ((key.clone(), 0), (0, Some(entry.clone()))));
                        table.history = Some(start.collect());
                    }
                    HistoryChange::Stop => table.history = None,
                }
                Some(self.clock).into()
            }
            Request::ListTables { start_after, limit } => {
                let names = self.tables.keys().filter(|(a, _)| a == account).map(|(_, name)| name);
                let names =
                    names.filter(|name| start_after.as_ref().is_none_or(|after| name.as_bytes() > after.as_bytes()));
                names.take(limit as usize).cloned().collect::<Vec<_>>().into()
            }
            Request::DeleteTable { name, keep } => {
                let Some(mut table) = self.tables.remove(&(account.to_string(), name.into_owned())) else {
                    return Ok(false.into());
                };
                if let Some((arn, record)) = keep {
                    let backup = StoredBackup { arn: arn.into_owned(), record: record.into_owned() };
                    let items = table.keyspaces.remove(&None).unwrap_or_default();
                    self.backups.insert((account.to_string(), backup.arn.clone()), (backup, items));
                }
                true.into()
            }
            Request::KeyspaceStats { keyspace } => {
                let items = self.items(account, &keyspace)?;
                (items.len() as u64, items.values().map(|e| e.document.len() as u64).sum::<u64>()).into()
            }
            Request::Get { keyspace, key, .. } => {
                let entry = self.items(account, &keyspace)?.get(&*key);
                entry
                    .map(|e| StoredItem { key: key.into_owned(), document: e.document.clone(), version: e.version })
                    .into()
            }
            Request::Query(request) => {
                let items = self.items(account, &request.keyspace)?;
                let partition = |key: &ItemKey| key.partition == request.partition;
                let wanted = |(key, _): &(&ItemKey, &Entry)| partition(key) && sort_holds(&request.sort, &key.sort);
                let after = request.after.as_ref();
                let entries: Vec<_> = match request.forward {
                    true => items.iter().filter(wanted).filter(|(k, _)| after.is_none_or(|a| *k > a)).collect(),
                    false => items.iter().rev().filter(wanted).filter(|(k, _)| after.is_none_or(|a| *k < a)).collect(),
                };
                page(entries.into_iter(), request.limit, request.byte_budget).into()
            }
            Request::Scan(request) => {
                let items = self.items(account, &request.keyspace)?;
                let (start, end) = segment_hashes(request.segment, request.total_segments);
                let segmented = request.total_segments > 1;
                let position =
                    |key: &ItemKey| (if segmented { partition_hash(&key.partition) } else { 0 }, key.clone());
                let mut entries: Vec<_> = items
                    .iter()
                    .filter(|(key, _)| (start..end).contains(&u64::from(partition_hash(&key.partition))))
                    .collect();
                entries.sort_by_key(|(key, _)| position(key));
                let after = request.after.as_ref().map(position);
                let entries = entries.into_iter().filter(|(key, _)| after.as_ref().is_none_or(|a| position(key) > *a));
                page(entries, request.limit, request.byte_budget).into()
            }
            Request::Write(writes) => self.write_group(account, &writes)?.into(),
            Request::ReadChanges { table, after, limit } => {
                let table = self.table(account, &table).ok_or(StorageError::NoSuchKeyspace)?;
                let records = table.log.range(after.saturating_add(1)..).take(limit as usize);
                let changes = records
                    .map(|(sequence, (record, _))| ChangeRecord { sequence: *sequence, record: record.clone() })
                    .collect();
                ChangePage { changes, last_sequence: table.changes }.into()
            }
            Request::Expired { keyspace, now, limit } => {
                let items = self.items(account, &keyspace)?;
                let mut expired: Vec<_> = items
                    .iter()
                    .filter_map(|(key, entry)| entry.expires_at.filter(|at| *at <= now).map(|at| (at, key)))
                    .collect();
                expired.sort();
                expired.into_iter().take(limit as usize).map(|(_, key)| key.clone()).collect::<Vec<_>>().into()
            }
            Request::CreateBackup { table, version, arn, record } => {
                let table =
                    self.table(account, &table).filter(|t| t.record.as_ref().is_some_and(|r| r.version == version));
                let Some(items) = table.and_then(|t| t.keyspaces.get(&None)).cloned() else { return Ok(false.into()) };
                let backup = StoredBackup { arn: arn.into_owned(), record: record.into_owned() };
                self.backups.insert((account.to_string(), backup.arn.clone()), (backup, items));
                true.into()
            }
            Request::DescribeBackup { arn } => {
                self.backups.get(&(account.to_string(), arn.into_owned())).map(|(backup, _)| backup.clone()).into()
            }
            Request::ListBackups { start_after, limit } => {
                let mine = self.backups.iter().filter(|((a, _), _)| a == account);
                let after =
                    mine.filter(|((_, arn), _)| start_after.as_deref().is_none_or(|after| arn.as_str() > after));
                after.take(limit as usize).map(|(_, (backup, _))| backup.clone()).collect::<Vec<_>>().into()
            }
            Request::DeleteBackup { arn } => {
                self.backups.remove(&(account.to_string(), arn.into_owned())).map(|(backup, _)| backup).into()
            }
            Request::RestoreBackup { arn, name, description, indexes } => {
                let backup = self.backups.get(&(account.to_string(), arn.into_owned()));
                let items = backup.ok_or(StorageError::NoSuchKeyspace)?.1.clone();
                let Some(table) = self.create_table(account, &name, &description, &indexes) else {
                    return Ok(false.into());
                };
                table.keyspaces.insert(None, items);
                true.into()
            }
            Request::RestoreMoment { source, moment, name, description, indexes } => {
                let source = self.tables.get_mut(&(account.to_string(), source.into_owned()));
                let source = source.ok_or(StorageError::NoSuchKeyspace)?;
                let items = source.items_at(moment).ok_or(StorageError::NoSuchKeyspace)?;
                source.settle(moment);
                let Some(table) = self.create_table(account, &name, &description, &indexes) else {
                    return Ok(false.into());
                };
                table.keyspaces.insert(None, items);
                true.into()
            }
        })
    }
}
