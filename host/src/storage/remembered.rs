//! Remembered descriptions: a decorator over a [`Store`] that answers `describe-table` from
//! memory, and the one place that knows how such an answer is confirmed.
//!
//! Every item operation starts by reading its table's description. On PostgreSQL that was a round
//! trip of its own, so the descriptions this process read or wrote are remembered and given to a
//! request without a round trip, but only as a claim the request must confirm before anything
//! depends on it:
//!
//! - `get` (also for write) and `query` on the table confirm it in their own round trip
//!   (pipelined: "the description is still at this version", a primary-key lookup).
//! - A write group confirms a description by a `TableAt` guard at its version (a failed guard
//!   makes the handler read the description again, and the memory has forgotten it); any other
//!   unconfirmed description is confirmed before the group is sent, and after a commit the
//!   request reads descriptions only from the store. So no write ever commits on a stale
//!   description, and a request that wrote never needs to run again.
//! - Any other call on the table, and the end of the request, confirm with a statement of their
//!   own; a call that changes a table (CreateTable, UpdateTable, DeleteTable) confirms everything
//!   first, and the memory forgets the table.
//!
//! A description that proves stale ends the request with [`Stale`], before its answer is sent,
//! and the runtime runs it again with every description read from the store. Versions never
//! repeat, so the check is exact: a table deleted and made again, an index added, or any
//! UpdateTable by another process is seen at once.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use dynabox_handler::storage::{
    Answer, Failure, ItemKey, Keyspace, QueryRequest, Request, StorageError, TableRecord, Write,
};

use super::{Ask, Store};

/// Descriptions remembered at most; beyond, the memory starts afresh.
const MAX_REMEMBERED_DESCRIPTIONS: usize = 10_000;

/// A store with the descriptions this process last read or wrote, per (account, table).
pub struct Remembered {
    store: Arc<dyn Store>,
    /// None when the store reads its own descriptions cheaply (see
    /// [`Store::worth_remembering_descriptions`]): then every request reads them from the store.
    memory: Option<RwLock<HashMap<(String, String), TableRecord>>>,
}

/// A description given from memory proved stale: the request must run again, reading every
/// description from the store. Nothing it did has been written.
#[derive(Debug)]
pub struct Stale;

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a table's description changed after this process read it")
    }
}

impl std::error::Error for Stale {}

/// A call's outcome, or [`Stale`].
pub type Confirmed<T, E = StorageError> = Result<Result<T, E>, Stale>;

impl Remembered {
    pub fn new(store: Arc<dyn Store>) -> Remembered {
        let memory = store.worth_remembering_descriptions().then(RwLock::default);
        Remembered { store, memory }
    }

    /// The storage of one request; `fresh` when it takes no description from memory (its second
    /// run, or work the host started).
    pub fn request(self: &Arc<Self>, fresh: bool) -> RequestStorage {
        RequestStorage { remembered: self.clone(), unconfirmed: Vec::new(), fresh }
    }

    fn recall(&self, account: &str, name: &str) -> Option<TableRecord> {
        let memory = self.memory.as_ref()?.read().unwrap_or_else(PoisonError::into_inner);
        memory.get(&(account.to_string(), name.to_string())).cloned()
    }

    /// Remembers what the store said of a table (`None`: no such table, or no longer known).
    /// Takes the record by reference: a store whose descriptions are not remembered copies
    /// nothing.
    fn remember(&self, account: &str, name: &str, record: Option<&TableRecord>) {
        let Some(memory) = &self.memory else { return };
        let key = (account.to_string(), name.to_string());
        let mut memory = memory.write().unwrap_or_else(PoisonError::into_inner);
        match record {
            Some(record) => {
                // Memory stays bounded however many tables pass through.
                if memory.len() >= MAX_REMEMBERED_DESCRIPTIONS && !memory.contains_key(&key) {
                    memory.clear();
                }
                memory.insert(key, record.clone());
            }
            None => {
                memory.remove(&key);
            }
        }
    }
}

/// One request's storage: the store's calls, with the descriptions given from memory that this
/// request has not confirmed yet.
pub struct RequestStorage {
    remembered: Arc<Remembered>,
    /// (table, version) given from memory, not yet confirmed.
    unconfirmed: Vec<(String, u64)>,
    /// Every description is read from the store: this is the request's second run, or a write
    /// of it committed (so it must not run again).
    fresh: bool,
}

impl RequestStorage {
    fn store(&self) -> &dyn Store {
        self.remembered.store.as_ref()
    }

    /// The version of the description of `table` given from memory, if it is not confirmed yet;
    /// no longer counted as unconfirmed (put it back if the check fails).
    fn take_unconfirmed(&mut self, table: &str) -> Option<u64> {
        let at = self.unconfirmed.iter().position(|(t, _)| t == table)?;
        Some(self.unconfirmed.swap_remove(at).1)
    }

    /// Confirms, one statement each, the unconfirmed descriptions `which` selects.
    async fn confirm(&mut self, account: &str, which: impl Fn(&str, u64) -> bool) -> Confirmed<()> {
        while let Some(at) = self.unconfirmed.iter().position(|(table, version)| which(table, *version)) {
            let (table, version) = self.unconfirmed.swap_remove(at);
            match self.store().description_is(account, &table, version).await {
                Ok(true) => {}
                Ok(false) => return Err(self.stale(account, &table)),
                Err(e) => {
                    self.unconfirmed.push((table, version));
                    return Ok(Err(e));
                }
            }
        }
        Ok(Ok(()))
    }

    fn stale(&self, account: &str, table: &str) -> Stale {
        self.remembered.remember(account, table, None);
        Stale
    }

    /// Before CreateTable, UpdateTable or DeleteTable's change: every description given so far
    /// confirmed, and from now on read from the store, since the request must not run again.
    async fn before_table_change(&mut self, account: &str) -> Confirmed<()> {
        let confirmed = self.confirm(account, |_, _| true).await?;
        self.fresh = true;
        Ok(confirmed)
    }

    /// At the end of a request: whether every description it was given from memory still holds.
    /// A store that cannot tell lets the answer stand (it reports its own failures).
    pub async fn finish(&mut self, account: &str) -> Result<(), Stale> {
        self.confirm(account, |_, _| true).await.map(drop)
    }

    /// Runs one operation of the request, answering descriptions from memory and confirming them
    /// as the module's documentation says.
    pub async fn call(&mut self, account: &str, request: Request<'_>) -> Confirmed<Answer, Failure> {
        match request {
            Request::DescribeTable { name } => {
                Ok(self.describe_table(account, &name).await.map(Answer::from).map_err(Failure::from))
            }
            Request::Get { keyspace, key, for_write } => self.get(account, &keyspace, &key, for_write).await,
            Request::Query(query) => self.query(account, &query).await,
            Request::Write(writes) => self.write(account, &writes).await,
            request if request.changes_table() => {
                if let Err(e) = self.before_table_change(account).await? {
                    return Ok(Err(e.into()));
                }
                let name = request.table().map(str::to_string);
                let answer = self.store().call(account, request).await;
                if let Some(name) = name {
                    self.remembered.remember(account, &name, None);
                }
                Ok(answer)
            }
            request => {
                if let Some(table) = request.table()
                    && let Err(e) = self.confirm(account, |t, _| t == table).await?
                {
                    return Ok(Err(e.into()));
                }
                Ok(self.store().call(account, request).await)
            }
        }
    }

    async fn describe_table(&mut self, account: &str, name: &str) -> Result<Option<TableRecord>, StorageError> {
        if !self.fresh
            && let Some(record) = self.remembered.recall(account, name)
        {
            self.unconfirmed.retain(|(table, _)| table != name);
            self.unconfirmed.push((name.to_string(), record.version));
            return Ok(Some(record));
        }
        let record = self.store().ask(account, Request::describe_table(name)).await?;
        self.remembered.remember(account, name, record.as_ref());
        Ok(record)
    }

    async fn get(
        &mut self,
        account: &str,
        keyspace: &Keyspace,
        key: &ItemKey,
        for_write: bool,
    ) -> Confirmed<Answer, Failure> {
        let Some(version) = self.take_unconfirmed(&keyspace.table) else {
            let request = Request::Get { keyspace: Cow::Borrowed(keyspace), key: Cow::Borrowed(key), for_write };
            return Ok(self.store().call(account, request).await);
        };
        match self.store().get_confirming(account, keyspace, key, version).await {
            Ok((_, false)) => Err(self.stale(account, &keyspace.table)),
            Ok((item, true)) => Ok(Ok(item.into())),
            Err(e) => {
                self.unconfirmed.push((keyspace.table.clone(), version));
                Ok(Err(e.into()))
            }
        }
    }

    async fn query(&mut self, account: &str, request: &QueryRequest) -> Confirmed<Answer, Failure> {
        let table = &request.keyspace.table;
        let Some(version) = self.take_unconfirmed(table) else {
            return Ok(self.store().call(account, Request::Query(Cow::Borrowed(request))).await);
        };
        match self.store().query_confirming(account, request, version).await {
            Ok((_, false)) => Err(self.stale(account, table)),
            Ok((page, true)) => Ok(Ok(page.into())),
            Err(e) => {
                self.unconfirmed.push((table.clone(), version));
                Ok(Err(e.into()))
            }
        }
    }

    async fn write(&mut self, account: &str, writes: &[Write]) -> Confirmed<Answer, Failure> {
        let guarded = |table: &str, version: u64| {
            writes.iter().any(|w| matches!(w, Write::TableAt { table: t, version: v } if t == table && *v == version))
        };
        if let Err(e) = self.confirm(account, |t, v| !guarded(t, v)).await? {
            return Ok(Err(e.into()));
        }
        let written = self.store().call(account, Request::Write(Cow::Borrowed(writes))).await;
        match &written {
            Ok(_) => {
                // The guards held, and the request must not run again.
                self.unconfirmed.clear();
                self.fresh = true;
            }
            // Stale, and the handler reads it again.
            Err(Failure::GuardFailed(index)) => {
                if let Some(Write::TableAt { table, .. }) = writes.get(*index as usize) {
                    self.unconfirmed.retain(|(t, _)| t != table);
                    self.remembered.remember(account, table, None);
                }
            }
            Err(Failure::Storage(_)) => {}
        }
        Ok(written)
    }
}
