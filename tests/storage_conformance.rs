//! One conformance suite, run against every storage backend: the embedded store on disk and in
//! memory, and PostgreSQL at `DATABASE_URL`. Without `DATABASE_URL` the PostgreSQL tests print a
//! notice and pass, unless `DYNABOX_REQUIRE_POSTGRES=1` (CI), which makes them fail.
//!
//! Tests run in parallel, also against one shared database, so every table gets a unique name.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use dynabox::storage::{Ask, DEFAULT_WAIT_TIMEOUT, Store as Backend, sqlite};
use dynabox_handler::storage::{
    Expect, Failure, HistoryChange, HistoryEntry, ItemKey, Keyspace, Page, QueryRequest, Request, ScanRequest,
    SortRange, StorageError, StoredBackup, StoredItem, TableChange, Write, partition_hash,
};
use dynabox_sql::store::TrimmedChanges;
use dynabox_testkit::per_request::PerRequest;
use dynabox_testkit::reference::Reference;
use serde_json::{Value, json};

macro_rules! suite {
    ($($scenario:ident),* $(,)?) => {
        suite!(@backend embedded_on_disk, OnDisk, $($scenario),*);
        suite!(@backend embedded_in_memory, InMemory, $($scenario),*);
        suite!(@backend postgres, Postgres, $($scenario),*);
        suite!(@backend reference, Reference, $($scenario),*);
        suite!(@backend spin_sqlite, SpinSqlite, $($scenario),*);
        suite!(@backend spin_postgres, SpinPostgres, $($scenario),*);
    };
    (@backend $module:ident, $kind:ident, $($scenario:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    super::run(super::Kind::$kind, super::$scenario).await;
                }
            )*
        }
    };
}

suite!(
    describes_itself,
    table_lifecycle,
    list_tables_in_byte_order_with_paging,
    put_get_overwrite_delete,
    guards,
    groups_are_atomic,
    scan_order_after_limit_and_budget,
    keyspace_stats,
    deleted_table_is_gone,
    table_deleted_by_another_process,
    concurrent_optimistic_increments,
    versions_never_repeat_for_a_key,
    versions_never_repeat_across_handles,
    every_valid_document_is_stored,
    queries_read_one_partition_in_either_direction,
    segments_split_a_keyspace,
    index_keyspaces_live_and_die_with_their_table,
    table_versions_guard_changes_and_never_repeat,
    checks_and_change_logs,
    expiry_is_found_on_an_index,
    accounts_are_separate,
    tables_are_found_by_name_across_accounts,
    backups_copy_one_moment_and_outlive_their_table,
    history_restores_every_moment_and_folds_what_is_past,
    history_reads_whole_moments_and_windows_in_pages,
);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    OnDisk,
    InMemory,
    Postgres,
    /// The handler's reference store: the contract's definition passes its own suite.
    Reference,
    /// The Spin component's storage code (a fresh store per call) on a SQLite file, as on Spin's
    /// SQLite interface.
    SpinSqlite,
    /// The Spin component's storage code on PostgreSQL at `DATABASE_URL`, as on Spin's
    /// PostgreSQL interface.
    SpinPostgres,
}

/// The account every test acts for, unless it is about accounts.
const ACCOUNT: &str = "000000000000";

/// One account's view of a backend, with the base keyspace of a table named by the table: what
/// most scenarios need, in few words. Scenarios about indexes, queries and accounts use the
/// backend itself.
struct Tenant {
    backend: Box<dyn Backend>,
    account: String,
}

impl Tenant {
    fn local(backend: Box<dyn Backend>) -> Tenant {
        Tenant { backend, account: ACCOUNT.to_string() }
    }

    fn describe(&self) -> String {
        self.backend.describe()
    }

    async fn create_table(&self, name: &str, description: &[u8]) -> Result<bool, StorageError> {
        self.backend.ask(&self.account, Request::create_table(name, description, &[])).await
    }

    async fn describe_table(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.backend.ask(&self.account, Request::describe_table(name)).await?.map(|record| record.description))
    }

    async fn list_tables(&self, start_after: Option<&str>, limit: u32) -> Result<Vec<String>, StorageError> {
        self.backend.ask(&self.account, Request::list_tables(start_after, limit)).await
    }

    async fn delete_table(&self, name: &str) -> Result<bool, StorageError> {
        self.backend.ask(&self.account, Request::delete_table(name)).await
    }

    async fn keyspace_stats(&self, table: &str) -> Result<(u64, u64), StorageError> {
        self.backend.ask(&self.account, Request::keyspace_stats(&Keyspace::table(table))).await
    }

    async fn get(&self, table: &str, key: &ItemKey) -> Result<Option<StoredItem>, StorageError> {
        self.backend.ask(&self.account, Request::get(&Keyspace::table(table), key)).await
    }

    async fn scan(&self, request: &ScanRequest) -> Result<Page, StorageError> {
        self.backend.ask(&self.account, Request::scan(request)).await
    }

    async fn write(&self, writes: &[Write]) -> Result<(), Failure> {
        self.backend.ask(&self.account, Request::write(writes)).await.map(|_| ())
    }
}

/// A query on table `t`'s base keyspace.
fn query(
    t: &str,
    partition: &[u8],
    sort: SortRange,
    forward: bool,
    after: Option<&ItemKey>,
    limit: u32,
) -> QueryRequest {
    QueryRequest {
        keyspace: Keyspace::table(t),
        partition: partition.to_vec(),
        sort,
        forward,
        after: after.cloned(),
        limit,
        byte_budget: u32::MAX,
    }
}

/// A backend under test, plus what it takes to open a second handle on the same data.
struct Store {
    backend: Arc<Tenant>,
    kind: Kind,
    dir: Option<TempDir>,
    url: Option<String>,
    /// Tables to delete at the end, so the shared database does not fill up.
    created: Mutex<Vec<String>>,
}

impl Store {
    /// `None` when PostgreSQL is not configured (and not required).
    async fn open(kind: Kind) -> Option<Store> {
        let (backend, dir, url) = match kind {
            Kind::OnDisk => {
                // Two levels that do not exist yet: open_embedded creates them.
                let dir = TempDir::new();
                (embedded(Some(&dir.path().join("store"))).await, Some(dir), None)
            }
            Kind::InMemory => (embedded(None).await, None, None),
            Kind::Postgres => {
                let url = postgres_url()?;
                (connect_postgres(&url).await, None, Some(url))
            }
            Kind::Reference => (Box::new(Reference::default()) as Box<dyn Backend>, None, None),
            Kind::SpinSqlite => {
                let dir = TempDir::new();
                std::fs::create_dir_all(dir.path()).unwrap();
                (Box::new(PerRequest::sqlite(dir.path().join("spin.db"))) as Box<dyn Backend>, Some(dir), None)
            }
            Kind::SpinPostgres => {
                let url = postgres_url()?;
                (spin_postgres(&url).await, None, Some(url))
            }
        };
        Some(Store { backend: Arc::new(Tenant::local(backend)), kind, dir, url, created: Mutex::default() })
    }

    /// A second handle on the same data with its own caches, as another server process would
    /// have; `None` in memory, where there is no such thing.
    async fn another_handle(&self) -> Option<Tenant> {
        let backend = match self.kind {
            Kind::OnDisk => Some(embedded(Some(&self.dir.as_ref()?.path().join("store"))).await),
            Kind::InMemory => None,
            Kind::Postgres => Some(connect_postgres(self.url.as_ref()?).await),
            Kind::Reference => None,
            Kind::SpinSqlite => {
                Some(Box::new(PerRequest::sqlite(self.dir.as_ref()?.path().join("spin.db"))) as Box<dyn Backend>)
            }
            Kind::SpinPostgres => Some(spin_postgres(self.url.as_ref()?).await),
        };
        backend.map(Tenant::local)
    }

    /// Creates a table with a unique name.
    async fn table(&self) -> String {
        let name = unique("t");
        assert_eq!(self.backend.create_table(&name, &description(&name)).await, Ok(true));
        self.created.lock().unwrap().push(name.clone());
        name
    }
}

async fn run(kind: Kind, scenario: impl AsyncFnOnce(&Store)) {
    let Some(store) = Store::open(kind).await else { return };
    scenario(&store).await;
    let created = std::mem::take(&mut *store.created.lock().unwrap());
    for name in created {
        store.backend.delete_table(&name).await.unwrap();
    }
}

fn postgres_url() -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var("DYNABOX_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!(
                "DYNABOX_REQUIRE_POSTGRES=1 but DATABASE_URL is not set: cannot run the PostgreSQL conformance tests"
            )
        }
        Err(_) => {
            eprintln!("skipping: set DATABASE_URL to run the PostgreSQL conformance tests");
            None
        }
    }
}

async fn connect_postgres(url: &str) -> Box<dyn Backend> {
    // Small pools: many tests run at once against one server.
    Box::new(dynabox::storage::postgres::connect(url, 4, DEFAULT_WAIT_TIMEOUT).await.unwrap())
}

async fn spin_postgres(url: &str) -> Box<dyn Backend> {
    Box::new(PerRequest::postgres(url).await.unwrap())
}

/// The embedded store in `dir`, or in memory.
async fn embedded(dir: Option<&Path>) -> Box<dyn Backend> {
    Box::new(sqlite::open(dir, DEFAULT_WAIT_TIMEOUT).await.unwrap())
}

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        TempDir(std::env::temp_dir().join(unique("dynabox-conformance")))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A name no other test, nor another run in parallel, uses.
fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{nanos}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

fn description(name: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"TableName": name, "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}]})).unwrap()
}

fn key(partition: &[u8], sort: &[u8]) -> ItemKey {
    ItemKey { partition: partition.to_vec(), sort: sort.to_vec() }
}

fn doc(label: &str, n: i64) -> Vec<u8> {
    serde_json::to_vec(&json!({"id": {"S": label}, "n": {"N": n.to_string()}})).unwrap()
}

fn json(document: &[u8]) -> Value {
    serde_json::from_slice(document).unwrap()
}

fn counter(document: &[u8]) -> i64 {
    json(document)["n"]["N"].as_str().unwrap().parse().unwrap()
}

fn put(table: &str, key: &ItemKey, document: Vec<u8>, expect: Expect) -> Write {
    Write::Put { keyspace: Keyspace::table(table), key: key.clone(), document, expect, expires_at: None }
}

fn delete(table: &str, key: &ItemKey, expect: Expect) -> Write {
    Write::Delete { keyspace: Keyspace::table(table), key: key.clone(), expect }
}

/// The document (as JSON) and version stored at `key`, if any.
async fn stored(backend: &Tenant, keyspace: &str, key: &ItemKey) -> Option<(Value, u64)> {
    let item = backend.get(keyspace, key).await.unwrap()?;
    assert_eq!(&item.key, key);
    Some((json(&item.document), item.version))
}

async fn scan(backend: &Tenant, keyspace: &str, after: Option<&ItemKey>, limit: u32, byte_budget: u32) -> Page {
    let request = ScanRequest {
        keyspace: Keyspace::table(keyspace),
        segment: 0,
        total_segments: 1,
        after: after.cloned(),
        limit,
        byte_budget,
    };
    backend.scan(&request).await.unwrap()
}

fn keys(items: &[StoredItem]) -> Vec<ItemKey> {
    items.iter().map(|i| i.key.clone()).collect()
}

async fn describes_itself(store: &Store) {
    let described = store.backend.describe();
    match store.kind {
        Kind::OnDisk => {
            assert_eq!(
                described,
                format!("embedded store at {}", store.dir.as_ref().unwrap().path().join("store").display())
            )
        }
        Kind::InMemory => assert_eq!(described, "in-memory store"),
        Kind::Reference => assert_eq!(described, "reference store"),
        Kind::SpinSqlite => {
            let file = store.dir.as_ref().unwrap().path().join("spin.db");
            assert_eq!(described, format!("per-request store on SQLite at {}", file.display()))
        }
        Kind::SpinPostgres => assert_eq!(described, "per-request store on PostgreSQL"),
        Kind::Postgres => {
            let config: tokio_postgres::Config = store.url.as_ref().unwrap().parse().unwrap();
            assert!(described.starts_with("PostgreSQL at "), "{described}");
            assert!(described.ends_with(&format!("/{}", config.get_dbname().unwrap_or("postgres"))), "{described}");
            if let Some(password) = config.get_password() {
                assert!(!described.contains(&*String::from_utf8_lossy(password)), "password in {described:?}");
            }
        }
    }
}

async fn table_lifecycle(store: &Store) {
    let backend = &store.backend;
    let name = unique("life");
    let first = description(&name);
    assert_eq!(backend.describe_table(&name).await, Ok(None));
    assert_eq!(backend.create_table(&name, &first).await, Ok(true));
    store.created.lock().unwrap().push(name.clone());
    assert_eq!(json(&backend.describe_table(&name).await.unwrap().unwrap()), json(&first));

    // A second create changes nothing.
    let second = serde_json::to_vec(&json!({"TableName": name, "Other": true})).unwrap();
    assert_eq!(backend.create_table(&name, &second).await, Ok(false));
    assert_eq!(json(&backend.describe_table(&name).await.unwrap().unwrap()), json(&first));
    // Also as the catalog has it, not only this handle's cache.
    if let Some(other) = store.another_handle().await {
        assert_eq!(json(&other.describe_table(&name).await.unwrap().unwrap()), json(&first));
    }

    assert_eq!(backend.delete_table(&name).await, Ok(true));
    assert_eq!(backend.describe_table(&name).await, Ok(None));
    assert_eq!(backend.delete_table(&name).await, Ok(false));
    assert_eq!(backend.delete_table(&unique("never")).await, Ok(false));
    assert!(!backend.list_tables(None, u32::MAX).await.unwrap().contains(&name));
}

async fn list_tables_in_byte_order_with_paging(store: &Store) {
    let backend = &store.backend;
    // Every name starting with `prefix` is ours, and all of them sort right after `prefix`
    // itself, whatever other tests create meanwhile. The suffixes are in byte order; a
    // locale-aware collation would put "a" before "B" and ignore punctuation.
    let prefix = unique("ls");
    let suffixes = ["-z", ".y", "0x", "B", "_b", "a"];
    for suffix in suffixes.iter().rev() {
        let name = format!("{prefix}{suffix}");
        assert_eq!(backend.create_table(&name, &description(&name)).await, Ok(true));
        store.created.lock().unwrap().push(name);
    }
    let expected: Vec<String> = suffixes.iter().map(|s| format!("{prefix}{s}")).collect();

    let listed = backend.list_tables(Some(&prefix), 100).await.unwrap();
    assert_eq!(listed.into_iter().take(expected.len()).collect::<Vec<_>>(), expected);

    // Paging by `limit` and `start_after` (later pages may hold other tests' tables).
    assert_eq!(backend.list_tables(Some(&prefix), 4).await.unwrap(), expected[..4]);
    let page = backend.list_tables(Some(&expected[3]), 4).await.unwrap();
    assert!(page.len() <= 4);
    assert_eq!(page.into_iter().filter(|n| n.starts_with(&prefix)).collect::<Vec<_>>(), expected[4..]);

    // Strictly after: the name given is not repeated.
    assert_eq!(backend.list_tables(Some(&expected[2]), 1).await.unwrap(), [expected[3].clone()]);
    assert_eq!(backend.list_tables(Some(&prefix), 0).await.unwrap(), Vec::<String>::new());

    let all = backend.list_tables(None, u32::MAX).await.unwrap();
    assert!(all.is_sorted_by(|a, b| a.as_bytes() < b.as_bytes()), "not in byte order: {all:?}");
    assert!(expected.iter().all(|name| all.contains(name)));
}

async fn put_get_overwrite_delete(store: &Store) {
    let backend = &store.backend;
    let t = store.table().await;
    let k = key(b"p", b"");
    let sorted = key(b"p", b"s");
    assert_eq!(stored(backend, &t, &k).await, None);

    let mut versions = Vec::new();
    for n in 1..=3 {
        backend.write(&[put(&t, &k, doc("k", n), Expect::Anything)]).await.unwrap();
        let (document, version) = stored(backend, &t, &k).await.unwrap();
        assert_eq!(document, json(&doc("k", n)));
        versions.push(version);
    }
    assert!(versions.is_sorted_by(|a, b| a < b), "versions grow with every write: {versions:?}");
    backend.write(&[put(&t, &sorted, doc("sorted", 7), Expect::Anything)]).await.unwrap();
    let sorted_version = stored(backend, &t, &sorted).await.unwrap().1;
    assert_eq!(stored(backend, &t, &k).await, Some((json(&doc("k", 3)), versions[2])));

    // Documents come back byte for byte.
    assert_eq!(backend.get(&t, &k).await.unwrap().unwrap().document, doc("k", 3));

    backend.write(&[delete(&t, &k, Expect::Anything)]).await.unwrap();
    assert_eq!(stored(backend, &t, &k).await, None);
    assert_eq!(stored(backend, &t, &sorted).await, Some((json(&doc("sorted", 7)), sorted_version)));
    // Deleting what is not there is fine.
    backend.write(&[delete(&t, &k, Expect::Anything)]).await.unwrap();
    // A key written again after a delete gets a version it never had.
    backend.write(&[put(&t, &k, doc("k", 4), Expect::Anything)]).await.unwrap();
    let (document, version) = stored(backend, &t, &k).await.unwrap();
    assert_eq!(document, json(&doc("k", 4)));
    assert!(!versions.contains(&version), "version {version} repeats one of {versions:?}");
}

async fn guards(store: &Store) {
    let backend = &store.backend;
    let t = store.table().await;
    let k = key(b"k", b"");
    let missing = key(b"missing", b"");
    let failed = Err(Failure::GuardFailed(0));

    backend.write(&[put(&t, &k, doc("a", 1), Expect::Absent)]).await.unwrap();
    assert_eq!(backend.write(&[put(&t, &k, doc("b", 2), Expect::Absent)]).await, failed);
    let (document, first) = stored(backend, &t, &k).await.unwrap();
    assert_eq!(document, json(&doc("a", 1)));

    backend.write(&[put(&t, &k, doc("b", 2), Expect::Version(first))]).await.unwrap();
    let (document, second) = stored(backend, &t, &k).await.unwrap();
    assert_eq!(document, json(&doc("b", 2)));
    assert!(second > first);
    for stale in [first, second + 1, u64::MAX] {
        assert_eq!(backend.write(&[put(&t, &k, doc("c", 3), Expect::Version(stale))]).await, failed);
    }
    assert_eq!(stored(backend, &t, &k).await, Some((json(&doc("b", 2)), second)));

    assert_eq!(backend.write(&[put(&t, &missing, doc("m", 1), Expect::Version(first))]).await, failed);
    assert_eq!(stored(backend, &t, &missing).await, None);

    assert_eq!(backend.write(&[delete(&t, &k, Expect::Version(first))]).await, failed);
    assert_eq!(backend.write(&[delete(&t, &k, Expect::Absent)]).await, failed);
    assert_eq!(stored(backend, &t, &k).await, Some((json(&doc("b", 2)), second)));
    backend.write(&[delete(&t, &k, Expect::Version(second))]).await.unwrap();
    assert_eq!(stored(backend, &t, &k).await, None);

    backend.write(&[delete(&t, &k, Expect::Absent)]).await.unwrap();
    assert_eq!(backend.write(&[delete(&t, &k, Expect::Version(second))]).await, failed);
}

async fn groups_are_atomic(store: &Store) {
    let backend = &store.backend;
    let (t1, t2) = (store.table().await, store.table().await);
    let [a, b, c, x, y] = [b"a", b"b", b"c", b"x", b"y"].map(|p| key(p, b""));
    backend.write(&[put(&t1, &a, doc("a", 1), Expect::Anything)]).await.unwrap();
    let a1 = stored(backend, &t1, &a).await.unwrap().1;

    // Across two tables, all guards holding.
    backend
        .write(&[
            put(&t1, &b, doc("b", 1), Expect::Absent),
            put(&t2, &c, doc("c", 1), Expect::Anything),
            put(&t1, &a, doc("a", 2), Expect::Version(a1)),
        ])
        .await
        .unwrap();
    let a2 = stored(backend, &t1, &a).await.unwrap();
    assert_eq!(a2.0, json(&doc("a", 2)));
    let b1 = stored(backend, &t1, &b).await.unwrap();
    assert_eq!(b1.0, json(&doc("b", 1)));
    let c1 = stored(backend, &t2, &c).await.unwrap();
    assert_eq!(c1.0, json(&doc("c", 1)));

    // Writes 2 and 3 fail their guards: the error names 2, and nothing is written.
    let group = [
        put(&t1, &x, doc("x", 1), Expect::Anything),
        put(&t2, &y, doc("y", 1), Expect::Absent),
        put(&t1, &a, doc("a", 3), Expect::Version(a1)),
        put(&t1, &b, doc("b", 2), Expect::Absent),
    ];
    assert_eq!(backend.write(&group).await, Err(Failure::GuardFailed(2)));
    assert_eq!(stored(backend, &t1, &x).await, None);
    assert_eq!(stored(backend, &t2, &y).await, None);
    assert_eq!(stored(backend, &t1, &a).await, Some(a2.clone()));

    // A failing delete guard undoes an earlier delete and put of the group.
    let group = [
        delete(&t1, &b, Expect::Anything),
        put(&t2, &c, doc("c", 2), Expect::Version(c1.1)),
        delete(&t2, &c, Expect::Version(c1.1)),
    ];
    assert_eq!(backend.write(&group).await, Err(Failure::GuardFailed(2)));
    assert_eq!(stored(backend, &t1, &b).await, Some(b1));
    assert_eq!(stored(backend, &t2, &c).await, Some(c1));

    // The first write failing.
    let group = [put(&t1, &a, doc("a", 3), Expect::Absent), put(&t1, &x, doc("x", 1), Expect::Anything)];
    assert_eq!(backend.write(&group).await, Err(Failure::GuardFailed(0)));
    assert_eq!(stored(backend, &t1, &x).await, None);

    // A missing keyspace anywhere in the group: nothing is written either.
    let group =
        [put(&t1, &x, doc("x", 1), Expect::Anything), put(&unique("missing"), &y, doc("y", 1), Expect::Anything)];
    assert_eq!(backend.write(&group).await, Err(Failure::Storage(StorageError::NoSuchKeyspace)));
    assert_eq!(stored(backend, &t1, &x).await, None);

    // Writes apply in order: a guard sees the earlier writes of its group. The version a write
    // gives is not known before it commits, so the second write can only expect presence by
    // guarding on what it cannot be: the key exists (an Absent put would fail).
    let group = [put(&t1, &x, doc("x", 1), Expect::Absent), put(&t1, &x, doc("x", 2), Expect::Absent)];
    assert_eq!(backend.write(&group).await, Err(Failure::GuardFailed(1)));
    assert_eq!(stored(backend, &t1, &x).await, None);
    let group = [put(&t1, &x, doc("x", 1), Expect::Absent), delete(&t1, &x, Expect::Anything)];
    backend.write(&group).await.unwrap();
    assert_eq!(stored(backend, &t1, &x).await, None);

    // Groups as large as a transaction's (a store may send them in parts): a guard late in the
    // group undoes all the writes before it; without it, all apply.
    let keys: Vec<ItemKey> = (0..70).map(|i| key(format!("many{i}").as_bytes(), b"")).collect();
    let mut group: Vec<Write> = keys.iter().map(|k| put(&t1, k, doc("m", 1), Expect::Absent)).collect();
    group.push(put(&t1, &a, doc("a", 3), Expect::Version(a1)));
    assert_eq!(backend.write(&group).await, Err(Failure::GuardFailed(70)));
    assert_eq!(stored(backend, &t1, &keys[0]).await, None);
    assert_eq!(stored(backend, &t1, &keys[69]).await, None);
    group.pop();
    backend.write(&group).await.unwrap();
    assert_eq!(stored(backend, &t1, &keys[69]).await.unwrap().0, json(&doc("m", 1)));

    backend.write(&[]).await.unwrap();
}

async fn scan_order_after_limit_and_budget(store: &Store) {
    let backend = &store.backend;
    let t = store.table().await;
    // Bytes ≥ 0x80 must sort after 0x7f (unsigned), a shorter key before its extensions, and the
    // partition before the sort key.
    let partitions: [&[u8]; 7] = [&[0x00], &[0x01], &[0x01, 0x00], &[0x7f], &[0x80], &[0xff], &[0xff, 0xff]];
    let sorts: [&[u8]; 3] = [&[], &[0x7f, 0xff], &[0x80]];
    let mut expected: Vec<ItemKey> = partitions.iter().flat_map(|p| sorts.iter().map(|s| key(p, s))).collect();
    // A whole keyspace is read in key order. Written out of order; the label is the key's
    // position in the order.
    expected.sort();
    for (i, k) in expected.iter().enumerate().rev() {
        backend.write(&[put(&t, k, doc(&format!("item {i}"), i as i64), Expect::Anything)]).await.unwrap();
    }
    let total = expected.len() as u32;

    let all = scan(backend, &t, None, 1000, u32::MAX).await;
    assert_eq!(keys(&all.items), expected);
    assert!(!all.more);
    for (i, item) in all.items.iter().enumerate() {
        assert_eq!(counter(&item.document), i as i64);
    }

    // Pages of 4: full pages say `more`, the last, short one does not.
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = scan(backend, &t, after.as_ref(), 4, u32::MAX).await;
        paged.extend(keys(&page.items));
        after = paged.last().cloned();
        if !page.more {
            assert!(page.items.len() < 4);
            break;
        }
        assert_eq!(page.items.len(), 4);
    }
    assert_eq!(paged, expected);

    // Stopped by the limit at the very last item: `more`, then an empty page without.
    let page = scan(backend, &t, None, total, u32::MAX).await;
    assert_eq!((page.items.len(), page.more), (expected.len(), true));
    let page = scan(backend, &t, expected.last(), total, u32::MAX).await;
    assert_eq!(page, Page { items: vec![], more: false });
    let page = scan(backend, &t, None, 0, u32::MAX).await;
    assert_eq!(page, Page { items: vec![], more: true });

    // Strictly after a stored key, and after a key between two stored ones.
    let page = scan(backend, &t, Some(&expected[5]), 2, u32::MAX).await;
    assert_eq!(keys(&page.items), expected[6..8]);
    let between = key(&[0x7f], &[0x7f]);
    let next = expected.iter().position(|k| *k > between).unwrap();
    assert_eq!(expected[next], key(&[0x7f], &[0x7f, 0xff]));
    let page = scan(backend, &t, Some(&between), 1, u32::MAX).await;
    assert_eq!(keys(&page.items), expected[next..=next]);

    // The byte budget: a page ends with the item that makes the total reach it.
    let size: Vec<u32> = all.items.iter().map(|i| i.document.len() as u32).collect();
    let all_bytes: u32 = size.iter().sum();
    for (budget, items, more) in [
        (0, 1, true),
        (size[0], 1, true),
        (size[0] + 1, 2, true),
        (size[0] + size[1], 2, true),
        (size[0] + size[1] + 1, 3, true),
        (all_bytes, expected.len(), true),
        (all_bytes + 1, expected.len(), false),
    ] {
        let page = scan(backend, &t, None, 1000, budget).await;
        assert_eq!((page.items.len(), page.more), (items, more), "budget {budget}");
        assert_eq!(keys(&page.items), expected[..items]);
    }
    let page = scan(backend, &t, Some(&expected[3]), 1000, size[4] + 1).await;
    assert_eq!((keys(&page.items), page.more), (expected[4..6].to_vec(), true));
}

async fn keyspace_stats(store: &Store) {
    let backend = &store.backend;
    let t = store.table().await;
    assert_eq!(backend.keyspace_stats(&t).await, Ok((0, 0)));

    // Multi-byte characters: sizes are bytes, not characters.
    let wide = serde_json::to_vec(&json!({"id": {"S": "é€😀"}})).unwrap();
    assert!(String::from_utf8(wide.clone()).unwrap().chars().count() < wide.len());
    let [a, b, c] = [b"a", b"b", b"c"].map(|p| key(p, b""));
    backend.write(&[put(&t, &a, wide, Expect::Anything)]).await.unwrap();
    backend.write(&[put(&t, &b, doc("b", 1), Expect::Anything)]).await.unwrap();
    backend.write(&[put(&t, &c, doc("c", 1), Expect::Anything)]).await.unwrap();
    backend.write(&[put(&t, &c, doc("c, now longer", 12345), Expect::Anything)]).await.unwrap();

    let bytes = async |keys: &[&ItemKey]| {
        let mut sum = 0;
        for k in keys {
            sum += backend.get(&t, k).await.unwrap().unwrap().document.len() as u64;
        }
        sum
    };
    assert_eq!(backend.keyspace_stats(&t).await, Ok((3, bytes(&[&a, &b, &c]).await)));
    backend.write(&[delete(&t, &b, Expect::Anything)]).await.unwrap();
    assert_eq!(backend.keyspace_stats(&t).await, Ok((2, bytes(&[&a, &c]).await)));
}

async fn deleted_table_is_gone(store: &Store) {
    let backend = &store.backend;
    let t = store.table().await;
    let k = key(b"k", b"");
    backend.write(&[put(&t, &k, doc("k", 1), Expect::Anything)]).await.unwrap();
    assert_eq!(backend.delete_table(&t).await, Ok(true));

    let gone = StorageError::NoSuchKeyspace;
    assert_eq!(backend.write(&[put(&t, &k, doc("k", 2), Expect::Anything)]).await, Err(Failure::Storage(gone.clone())));
    assert_eq!(backend.get(&t, &k).await, Err(gone.clone()));
    let request = ScanRequest {
        keyspace: Keyspace::table(&t),
        segment: 0,
        total_segments: 1,
        after: None,
        limit: 10,
        byte_budget: 1000,
    };
    assert_eq!(backend.scan(&request).await, Err(gone.clone()));
    assert_eq!(backend.keyspace_stats(&t).await, Err(gone.clone()));
    let never = unique("never");
    assert_eq!(backend.write(&[delete(&never, &k, Expect::Anything)]).await, Err(Failure::Storage(gone.clone())));

    // Created again under the same name, the table starts empty.
    assert_eq!(backend.create_table(&t, &description(&t)).await, Ok(true));
    assert_eq!(stored(backend, &t, &k).await, None);
    assert_eq!(scan(backend, &t, None, 10, 1000).await, Page::default());
    assert_eq!(backend.keyspace_stats(&t).await, Ok((0, 0)));
    backend.write(&[put(&t, &k, doc("k", 3), Expect::Absent)]).await.unwrap();
    assert_eq!(stored(backend, &t, &k).await.map(|(document, _)| document), Some(json(&doc("k", 3))));
}

async fn table_deleted_by_another_process(store: &Store) {
    let Some(other) = store.another_handle().await else {
        return eprintln!("an in-memory store has no other process");
    };
    let backend = &store.backend;
    let t = store.table().await;
    let k = key(b"k", b"");
    // This handle caches the table; the other one deletes it.
    backend.write(&[put(&t, &k, doc("k", 1), Expect::Anything)]).await.unwrap();
    assert_eq!(other.delete_table(&t).await, Ok(true));

    let gone = StorageError::NoSuchKeyspace;
    assert_eq!(backend.write(&[put(&t, &k, doc("k", 2), Expect::Anything)]).await, Err(Failure::Storage(gone.clone())));
    assert_eq!(backend.get(&t, &k).await, Err(gone.clone()));
    assert_eq!(backend.describe_table(&t).await, Ok(None));

    // Re-created by the other process: seen here, empty.
    assert_eq!(other.create_table(&t, &description(&t)).await, Ok(true));
    assert_eq!(stored(backend, &t, &k).await, None);
    backend.write(&[put(&t, &k, doc("k", 3), Expect::Anything)]).await.unwrap();
    assert_eq!(stored(&other, &t, &k).await.map(|(document, _)| document), Some(json(&doc("k", 3))));
}

async fn concurrent_optimistic_increments(store: &Store) {
    const TASKS: i64 = 16;
    const INCREMENTS: i64 = 50;
    let t = store.table().await;
    let k = key(b"counter", b"");
    store.backend.write(&[put(&t, &k, doc("counter", 0), Expect::Absent)]).await.unwrap();

    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (backend, t, k) = (store.backend.clone(), t.clone(), k.clone());
            tokio::spawn(async move {
                for _ in 0..INCREMENTS {
                    loop {
                        let item = backend.get(&t, &k).await.unwrap().unwrap();
                        let next = doc("counter", counter(&item.document) + 1);
                        match backend.write(&[put(&t, &k, next, Expect::Version(item.version))]).await {
                            Ok(()) => break,
                            Err(Failure::GuardFailed(0)) => continue,
                            Err(e) => panic!("increment failed: {e:?}"),
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let item = store.backend.get(&t, &k).await.unwrap().unwrap();
    assert_eq!(counter(&item.document), TASKS * INCREMENTS);
}

/// The lost write that repeating versions allow: a writer reads the item at some version, the
/// key is deleted and written again (and that write acknowledged), and the first writer's guard
/// must not mistake the new item for the one it read.
async fn versions_never_repeat_for_a_key(store: &Store) {
    let backend = &store.backend;
    let t = store.table().await;
    let k = key(b"k", b"s");
    backend.write(&[put(&t, &k, doc("old", 1), Expect::Anything)]).await.unwrap();
    let read = backend.get(&t, &k).await.unwrap().unwrap();

    backend.write(&[delete(&t, &k, Expect::Anything)]).await.unwrap();
    backend.write(&[put(&t, &k, doc("acknowledged", 2), Expect::Absent)]).await.unwrap();

    let stale = put(&t, &k, doc("decided on the old item", 3), Expect::Version(read.version));
    assert_eq!(backend.write(&[stale]).await, Err(Failure::GuardFailed(0)));
    let stale = delete(&t, &k, Expect::Version(read.version));
    assert_eq!(backend.write(&[stale]).await, Err(Failure::GuardFailed(0)));
    assert_eq!(stored(backend, &t, &k).await.unwrap().0, json(&doc("acknowledged", 2)));

    // Every way of writing the key gives it a new version, also in a group.
    let mut seen = vec![read.version];
    for write in [
        put(&t, &k, doc("k", 4), Expect::Anything),
        delete(&t, &k, Expect::Anything),
        put(&t, &k, doc("k", 5), Expect::Absent),
        put(&t, &k, doc("k", 6), Expect::Version(u64::MAX)),
    ] {
        let current = stored(backend, &t, &k).await.map(|(_, version)| version);
        // The last put expects the version the key has when it runs.
        let write = match write {
            Write::Put { expect: Expect::Version(_), .. } => {
                put(&t, &k, doc("k", 6), Expect::Version(current.unwrap()))
            }
            write => write,
        };
        backend.write(&[write, put(&t, &key(b"other", b""), doc("other", 0), Expect::Anything)]).await.unwrap();
        if let Some((_, version)) = stored(backend, &t, &k).await {
            assert!(!seen.contains(&version), "version {version} repeats one of {seen:?}");
            seen.push(version);
        }
    }
}

/// Two handles on one store (two server processes) never give the same version to one key.
async fn versions_never_repeat_across_handles(store: &Store) {
    let Some(other) = store.another_handle().await else { return };
    let backend = &store.backend;
    let t = store.table().await;
    let k = key(b"k", b"");
    let mut seen = Vec::new();
    for round in 0..20 {
        let writer = if round % 2 == 0 { backend } else { &other };
        writer.write(&[put(&t, &k, doc("k", round), Expect::Anything)]).await.unwrap();
        let version = stored(backend, &t, &k).await.unwrap().1;
        assert!(!seen.contains(&version), "version {version} repeats one of {seen:?}");
        seen.push(version);
        writer.write(&[delete(&t, &k, Expect::Anything)]).await.unwrap();
    }
}

/// Any valid item can be stored, whatever its strings hold: U+0000 included, which PostgreSQL's
/// jsonb cannot represent.
async fn every_valid_document_is_stored(store: &Store) {
    let backend = &store.backend;
    let t = store.table().await;
    let k = key(b"nul", b"");
    let document = serde_json::to_vec(&json!({
        "id": {"S": "a\u{0}b"},
        "name\u{0}with nul": {"SS": ["\u{0}", "x\u{0}"]},
        "nested": {"M": {"\u{0}": {"L": [{"S": "\u{0}\u{1}\u{1f}\"\\é😀"}]}}},
    }))
    .unwrap();
    backend.write(&[put(&t, &k, document.clone(), Expect::Absent)]).await.unwrap();
    assert_eq!(stored(backend, &t, &k).await.unwrap().0, json(&document));
    let page = scan(backend, &t, None, 10, u32::MAX).await;
    assert_eq!(page.items.iter().map(|i| json(&i.document)).collect::<Vec<_>>(), [json(&document)]);
    let (count, bytes) = backend.keyspace_stats(&t).await.unwrap();
    assert_eq!(count, 1);
    assert!(bytes > 0);
}

#[tokio::test]
async fn embedded_data_survives_reopen() {
    let dir = TempDir::new();
    let (t, k) = ("survivor", key(b"k", b"s"));
    {
        let backend = Tenant::local(embedded(Some(dir.path())).await);
        assert_eq!(backend.create_table(t, &description(t)).await, Ok(true));
        backend.write(&[put(t, &k, doc("k", 1), Expect::Anything)]).await.unwrap();
        backend.write(&[put(t, &k, doc("k", 2), Expect::Anything)]).await.unwrap();
    }
    let backend = Tenant::local(embedded(Some(dir.path())).await);
    assert_eq!(backend.list_tables(None, 10).await.unwrap(), [t]);
    assert_eq!(json(&backend.describe_table(t).await.unwrap().unwrap()), json(&description(t)));
    let (document, before) = stored(&backend, t, &k).await.unwrap();
    assert_eq!(document, json(&doc("k", 2)));
    backend.write(&[put(t, &k, doc("k", 3), Expect::Version(before))]).await.unwrap();
    let (document, after) = stored(&backend, t, &k).await.unwrap();
    assert_eq!(document, json(&doc("k", 3)));

    // Versions handed out before the restart are never handed out again, even to a key deleted
    // and written anew.
    backend.write(&[delete(t, &k, Expect::Anything)]).await.unwrap();
    drop(backend);
    let backend = Tenant::local(embedded(Some(dir.path())).await);
    backend.write(&[put(t, &k, doc("k", 4), Expect::Absent)]).await.unwrap();
    let (_, reborn) = stored(&backend, t, &k).await.unwrap();
    assert!(reborn > after, "version {reborn} after a restart, {after} before it");
}

#[tokio::test]
async fn in_memory_stores_are_separate() {
    let first = Tenant::local(embedded(None).await);
    assert_eq!(first.create_table("only-here", b"{}").await, Ok(true));
    let second = Tenant::local(embedded(None).await);
    assert_eq!(second.describe_table("only-here").await, Ok(None));
    assert_eq!(second.list_tables(None, 10).await, Ok(vec![]));
}

/// A store written before versions came from one clock (each key counted from 1) is upgraded
/// with its clock above every stored version, so no key can meet an old version again.
#[tokio::test]
async fn embedded_upgrade_starts_the_version_clock_above_stored_versions() {
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.path()).unwrap();
    {
        let conn = rusqlite::Connection::open(dir.path().join("dynabox.sqlite3")).unwrap();
        conn.execute_batch(include_str!("../sql/migrations/sqlite/0001_catalog.sql")).unwrap();
        conn.execute_batch(
            r#"INSERT INTO tables (name, description) VALUES ('old', '{"TableName": "old"}');
               CREATE TABLE items_1 (pk BLOB NOT NULL, sk BLOB NOT NULL, doc TEXT NOT NULL,
                                     version INTEGER NOT NULL, PRIMARY KEY (pk, sk)) WITHOUT ROWID;
               INSERT INTO items_1 VALUES (x'6b', x'', '{"id": {"S": "k"}}', 7);
               PRAGMA user_version = 1;"#,
        )
        .unwrap();
    }
    let backend = Tenant::local(embedded(Some(dir.path())).await);
    let (k, other) = (key(b"k", b""), key(b"other", b""));
    assert_eq!(stored(&backend, "old", &k).await.unwrap().1, 7);
    backend.write(&[put("old", &other, doc("other", 1), Expect::Absent)]).await.unwrap();
    assert!(stored(&backend, "old", &other).await.unwrap().1 > 7);
    backend.write(&[delete("old", &k, Expect::Version(7))]).await.unwrap();
    backend.write(&[put("old", &k, doc("k", 2), Expect::Absent)]).await.unwrap();
    assert!(stored(&backend, "old", &k).await.unwrap().1 > 7);
}

/// The same upgrade on PostgreSQL, in a database of its own (the schema name is fixed), from the
/// first schema, whose documents were `jsonb`: afterwards documents with U+0000 are stored too.
#[tokio::test]
async fn postgres_upgrade_keeps_items_and_starts_versions_above_them() {
    let Some(url) = postgres_url() else { return };
    let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let database = format!("dynabox_upgrade_{}", std::process::id());
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {database}")).await.unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {database}")).await.unwrap();
    let mut config: tokio_postgres::Config = url.parse().unwrap();
    config.dbname(&database);
    {
        let (old, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        old.batch_execute(
            "CREATE SCHEMA dynabox;
             CREATE TABLE dynabox.schema_migrations (version bigint PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now());
             INSERT INTO dynabox.schema_migrations (version) VALUES (1);",
        )
        .await
        .unwrap();
        old.batch_execute(include_str!("../sql/migrations/postgres/0001_catalog.sql")).await.unwrap();
        old.batch_execute(
            r#"INSERT INTO dynabox.tables (name, description) VALUES ('old', '{"TableName": "old"}');
               CREATE TABLE dynabox.items_1 (pk bytea NOT NULL, sk bytea NOT NULL, doc jsonb NOT NULL,
                                             version bigint NOT NULL, PRIMARY KEY (pk, sk));
               INSERT INTO dynabox.items_1 VALUES ('\x6b', '\x', '{"id": {"S": "k"}}', 7);"#,
        )
        .await
        .unwrap();
    }
    let upgraded_url = format!("{url_base}/{database}", url_base = url.rsplit_once('/').unwrap().0);
    let backend = Tenant::local(connect_postgres(&upgraded_url).await);
    let (k, nul) = (key(b"k", b""), key(b"nul", b""));
    assert_eq!(stored(&backend, "old", &k).await, Some((json(br#"{"id": {"S": "k"}}"#), 7)));
    backend.write(&[delete("old", &k, Expect::Version(7))]).await.unwrap();
    backend.write(&[put("old", &k, doc("k", 2), Expect::Absent)]).await.unwrap();
    assert!(stored(&backend, "old", &k).await.unwrap().1 > 7);
    let with_nul = serde_json::to_vec(&json!({"id": {"S": "a\u{0}"}})).unwrap();
    backend.write(&[put("old", &nul, with_nul.clone(), Expect::Absent)]).await.unwrap();
    assert_eq!(backend.get("old", &nul).await.unwrap().unwrap().document, with_nul);
    drop(backend);
    admin.batch_execute(&format!("DROP DATABASE {database} WITH (FORCE)")).await.unwrap();
}

/// A Spin deployment and a `dynabox` host pointed at one PostgreSQL database see the same tables
/// and items: the Spin component's storage code and the host's backend share schema and
/// statements, each seeing the other's writes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spin_store_and_host_share_one_postgres_database() {
    let Some(url) = postgres_url() else { return };
    let host = Tenant::local(connect_postgres(&url).await);
    let spin = Tenant::local(spin_postgres(&url).await);
    let (from_host, from_spin) = (unique("host"), unique("spin"));
    assert_eq!(host.create_table(&from_host, &description(&from_host)).await, Ok(true));
    assert_eq!(spin.create_table(&from_spin, &description(&from_spin)).await, Ok(true));
    assert_eq!(spin.describe_table(&from_host).await.unwrap(), Some(description(&from_host)));
    assert_eq!(host.describe_table(&from_spin).await.unwrap(), Some(description(&from_spin)));

    let k = key(b"k", b"s");
    host.write(&[put(&from_host, &k, doc("host", 1), Expect::Absent)]).await.unwrap();
    let (document, version) = stored(&spin, &from_host, &k).await.unwrap();
    assert_eq!(document, json(&doc("host", 1)));
    spin.write(&[put(&from_host, &k, doc("spin", 2), Expect::Version(version))]).await.unwrap();
    assert_eq!(stored(&host, &from_host, &k).await.unwrap().0, json(&doc("spin", 2)));
    assert_eq!(
        host.write(&[put(&from_host, &k, doc("stale", 3), Expect::Version(version))]).await,
        Err(Failure::GuardFailed(0))
    );

    assert_eq!(host.delete_table(&from_spin).await, Ok(true));
    assert_eq!(spin.describe_table(&from_spin).await.unwrap(), None);
    assert_eq!(spin.delete_table(&from_host).await, Ok(true));
    assert_eq!(host.get(&from_host, &k).await, Err(StorageError::NoSuchKeyspace));
}

async fn queries_read_one_partition_in_either_direction(store: &Store) {
    use std::ops::Bound::{Excluded, Included, Unbounded};
    let (tenant, backend) = (&store.backend, &store.backend.backend);
    let t = store.table().await;
    // Sort keys around the edges a bound must get right: a prefix of another, 0x00, 0xff.
    let sorts: [&[u8]; 7] = [b"", b"a", b"a\x00", b"ab", b"b", b"b\xff", b"\xff\xff"];
    for (i, sort) in sorts.iter().enumerate() {
        tenant.write(&[put(&t, &key(b"p", sort), doc("p", i as i64), Expect::Anything)]).await.unwrap();
    }
    // Neighbouring partitions that must never show up.
    for partition in [&b"o"[..], b"p\x00", b"q", b""] {
        tenant.write(&[put(&t, &key(partition, b"a"), doc("other", 99), Expect::Anything)]).await.unwrap();
    }
    let read = async |sort: SortRange, forward: bool, after: Option<&ItemKey>, limit: u32| {
        let page = backend.ask(ACCOUNT, Request::query(&query(&t, b"p", sort, forward, after, limit))).await.unwrap();
        assert!(page.items.iter().all(|i| i.key.partition == b"p"));
        (page.items.iter().map(|i| counter(&i.document)).collect::<Vec<_>>(), page.more)
    };
    let v = |b: &[u8]| b.to_vec();
    for (sort, expected) in [
        (SortRange::All, vec![0, 1, 2, 3, 4, 5, 6]),
        (SortRange::Prefix(v(b"a")), vec![1, 2, 3]),
        (SortRange::Prefix(v(b"b\xff")), vec![5]),
        (SortRange::Prefix(v(b"\xff")), vec![6]),
        (SortRange::Prefix(v(b"")), vec![0, 1, 2, 3, 4, 5, 6]),
        (SortRange::Between(Included(v(b"a")), Included(v(b"ab"))), vec![1, 2, 3]),
        (SortRange::Between(Excluded(v(b"a")), Excluded(v(b"ab"))), vec![2]),
        (SortRange::Between(Excluded(v(b"a\x00")), Unbounded), vec![3, 4, 5, 6]),
        (SortRange::Between(Unbounded, Included(v(b"a"))), vec![0, 1]),
        (SortRange::Between(Included(v(b"c")), Unbounded), vec![6]),
        (SortRange::Between(Included(v(b"b")), Excluded(v(b"b"))), vec![]),
    ] {
        assert_eq!(read(sort.clone(), true, None, 100).await, (expected.clone(), false), "{sort:?}");
        let backward: Vec<i64> = expected.iter().rev().copied().collect();
        assert_eq!(read(sort.clone(), false, None, 100).await, (backward, false), "{sort:?} backward");
    }
    // Limits and resuming, both ways.
    assert_eq!(read(SortRange::All, true, None, 3).await, (vec![0, 1, 2], true));
    assert_eq!(read(SortRange::All, true, Some(&key(b"p", b"a\x00")), 3).await, (vec![3, 4, 5], true));
    assert_eq!(read(SortRange::All, false, Some(&key(b"p", b"a\x00")), 3).await, (vec![1, 0], false));
    assert_eq!(read(SortRange::Prefix(v(b"a")), false, Some(&key(b"p", b"ab")), 1).await, (vec![2], true));
    // The byte budget ends the page with the item that reaches it.
    let first = backend.ask(ACCOUNT, Request::query(&query(&t, b"p", SortRange::All, true, None, 1))).await.unwrap();
    let budget = first.items[0].document.len() as u32 + 1;
    let limited = QueryRequest { byte_budget: budget, ..query(&t, b"p", SortRange::All, true, None, 100) };
    assert_eq!(backend.ask(ACCOUNT, Request::query(&limited)).await.unwrap().items.len(), 2);
    // A partition with nothing in it, and a keyspace that does not exist.
    let empty =
        backend.ask(ACCOUNT, Request::query(&query(&t, b"none", SortRange::All, true, None, 10))).await.unwrap();
    assert_eq!(empty, Page::default());
    let missing =
        backend.ask(ACCOUNT, Request::query(&query(&unique("missing"), b"p", SortRange::All, true, None, 10))).await;
    assert_eq!(missing, Err(StorageError::NoSuchKeyspace));
}

async fn segments_split_a_keyspace(store: &Store) {
    let (tenant, backend) = (&store.backend, &store.backend.backend);
    let t = store.table().await;
    let mut all: Vec<ItemKey> = (0..60u8).flat_map(|p| [key(&[p, p], b""), key(&[p, p], b"s")]).collect();
    for k in &all {
        tenant.write(&[put(&t, k, doc("k", 1), Expect::Anything)]).await.unwrap();
    }
    all.sort();
    for total in [1, 2, 3, 7, 1000] {
        let mut seen = Vec::new();
        for segment in 0..total {
            // Pages of 5, resumed after the last key, until the segment says it is done.
            let (mut after, mut keys_of_segment) = (None, Vec::new());
            loop {
                let request = ScanRequest {
                    keyspace: Keyspace::table(&t),
                    segment,
                    total_segments: total,
                    after: after.clone(),
                    limit: 5,
                    byte_budget: u32::MAX,
                };
                let page = backend.ask(ACCOUNT, Request::scan(&request)).await.unwrap();
                keys_of_segment.extend(keys(&page.items));
                after = keys_of_segment.last().cloned();
                if !page.more {
                    break;
                }
            }
            for k in &keys_of_segment {
                let hash = u64::from(partition_hash(&k.partition));
                assert_eq!(
                    (hash * u64::from(total)) >> 32,
                    u64::from(segment),
                    "{k:?} in segment {segment} of {total}"
                );
            }
            seen.extend(keys_of_segment);
        }
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), seen.len(), "segments of {total} overlap");
        assert_eq!(sorted, all, "segments of {total} miss items");
    }
}

async fn index_keyspaces_live_and_die_with_their_table(store: &Store) {
    let backend = &store.backend.backend;
    let name = unique("indexed");
    let indexes = ["by-a".to_string(), "by-b".to_string()];
    assert_eq!(backend.ask(ACCOUNT, Request::create_table(&name, &description(&name), &indexes)).await, Ok(true));
    store.created.lock().unwrap().push(name.clone());
    let k = key(b"p", b"s");
    let entry = |index: &str| Write::Put {
        keyspace: Keyspace::index(&name, index),
        key: k.clone(),
        document: doc(index, 1),
        expect: Expect::Absent,
        expires_at: None,
    };
    // An item and its entries in one group; only the table is listed.
    let group = [put(&name, &k, doc("item", 1), Expect::Absent), entry("by-a"), entry("by-b")];
    backend.ask(ACCOUNT, Request::write(&group)).await.unwrap();
    assert_eq!(
        backend.ask(ACCOUNT, Request::get(&Keyspace::index(&name, "by-a"), &k)).await.unwrap().unwrap().document,
        doc("by-a", 1)
    );
    assert_eq!(backend.ask(ACCOUNT, Request::keyspace_stats(&Keyspace::index(&name, "by-b"))).await.unwrap().0, 1);
    let listed = backend.ask(ACCOUNT, Request::list_tables(Some(&name[..name.len() - 1]), 100)).await.unwrap();
    assert_eq!(listed.iter().filter(|n| n.starts_with(&name)).collect::<Vec<_>>(), [&name]);
    let missing_index = Keyspace::index(&name, "nope");
    assert_eq!(backend.ask(ACCOUNT, Request::get(&missing_index, &k)).await, Err(StorageError::NoSuchKeyspace));

    // Dropping one index and creating another, with the description, at the table's version.
    let version = backend.ask(ACCOUNT, Request::describe_table(&name)).await.unwrap().unwrap().version;
    let change = TableChange {
        description: Cow::Borrowed(b"{\"changed\": true}"),
        create_indexes: Cow::Owned(vec!["by-c".to_string()]),
        drop_indexes: Cow::Owned(vec!["by-a".to_string()]),
        history: HistoryChange::Keep,
    };
    let updated = backend.ask(ACCOUNT, Request::update_table(&name, version, &change)).await.unwrap().unwrap();
    assert!(updated > version);
    let record = backend.ask(ACCOUNT, Request::describe_table(&name)).await.unwrap().unwrap();
    assert_eq!((json(&record.description), record.version), (json!({"changed": true}), updated));
    assert_eq!(
        backend.ask(ACCOUNT, Request::get(&Keyspace::index(&name, "by-a"), &k)).await,
        Err(StorageError::NoSuchKeyspace)
    );
    assert_eq!(backend.ask(ACCOUNT, Request::keyspace_stats(&Keyspace::index(&name, "by-c"))).await, Ok((0, 0)));
    assert_eq!(backend.ask(ACCOUNT, Request::keyspace_stats(&Keyspace::index(&name, "by-b"))).await.unwrap().0, 1);
    // Another process sees the change at once.
    if let Some(other) = store.another_handle().await {
        let seen = other.backend.ask(ACCOUNT, Request::describe_table(&name)).await.unwrap().unwrap();
        assert_eq!(seen.version, updated);
        let gone = other.backend.ask(ACCOUNT, Request::get(&Keyspace::index(&name, "by-a"), &k)).await;
        assert_eq!(gone, Err(StorageError::NoSuchKeyspace));
    }

    // The table takes its index keyspaces with it.
    assert_eq!(backend.ask(ACCOUNT, Request::delete_table(&name)).await, Ok(true));
    for index in ["by-b", "by-c"] {
        let gone = backend.ask(ACCOUNT, Request::keyspace_stats(&Keyspace::index(&name, index))).await;
        assert_eq!(gone, Err(StorageError::NoSuchKeyspace));
    }
}

async fn table_versions_guard_changes_and_never_repeat(store: &Store) {
    let backend = &store.backend.backend;
    let t = store.table().await;
    let first = backend.ask(ACCOUNT, Request::describe_table(&t)).await.unwrap().unwrap().version;
    // Another process that has read the description (and may keep it) sees the change at once.
    let other = store.another_handle().await;
    if let Some(other) = &other {
        assert_eq!(other.backend.ask(ACCOUNT, Request::describe_table(&t)).await.unwrap().unwrap().version, first);
    }
    let change = TableChange::record_only(b"{}");
    let second = backend.ask(ACCOUNT, Request::update_table(&t, first, &change)).await.unwrap().unwrap();
    if let Some(other) = &other {
        let seen = other.backend.ask(ACCOUNT, Request::describe_table(&t)).await.unwrap().unwrap();
        assert_eq!((seen.version, seen.description), (second, b"{}".to_vec()));
    }
    // A change decided on the old version, and a write guarded by it, are refused.
    assert_eq!(backend.ask(ACCOUNT, Request::update_table(&t, first, &change)).await, Ok(None));
    let k = key(b"k", b"");
    let guarded = [Write::TableAt { table: t.clone(), version: first }, put(&t, &k, doc("k", 1), Expect::Anything)];
    assert_eq!(backend.ask(ACCOUNT, Request::write(&guarded)).await, Err(Failure::GuardFailed(0)));
    assert_eq!(store.backend.get(&t, &k).await, Ok(None));
    let guarded = [Write::TableAt { table: t.clone(), version: second }, put(&t, &k, doc("k", 1), Expect::Anything)];
    backend.ask(ACCOUNT, Request::write(&guarded)).await.unwrap();
    // A table made again under the same name starts at a version the old one never had.
    assert_eq!(backend.ask(ACCOUNT, Request::delete_table(&t)).await, Ok(true));
    assert_eq!(
        backend.ask(ACCOUNT, Request::update_table(&t, second, &change)).await,
        Err(StorageError::NoSuchKeyspace)
    );
    assert_eq!(backend.ask(ACCOUNT, Request::create_table(&t, &description(&t), &[])).await, Ok(true));
    let again = backend.ask(ACCOUNT, Request::describe_table(&t)).await.unwrap().unwrap().version;
    assert!(again != first && again != second, "versions {first}, {second}, then {again}");
}

async fn checks_and_change_logs(store: &Store) {
    let backend = &store.backend.backend;
    let t = store.table().await;
    let (k, missing) = (key(b"k", b""), key(b"missing", b""));
    store.backend.write(&[put(&t, &k, doc("k", 1), Expect::Absent)]).await.unwrap();
    let version = store.backend.get(&t, &k).await.unwrap().unwrap().version;
    let check = |key: &ItemKey, expect| Write::Check { keyspace: Keyspace::table(&t), key: key.clone(), expect };
    let change = |record: &[u8]| Write::AppendChange { table: t.clone(), record: record.to_vec() };

    // Checks guard without writing; change records are numbered 1, 2, ... in commit order.
    let group = [check(&k, Expect::Version(version)), check(&missing, Expect::Absent), change(b"one"), change(b"two")];
    let committed = backend.ask(ACCOUNT, Request::write(&group)).await.unwrap();
    assert_eq!(committed.change_sequences, [1, 2]);
    assert_eq!(store.backend.get(&t, &k).await.unwrap().unwrap().version, version);
    for failing in
        [check(&k, Expect::Absent), check(&missing, Expect::Version(version)), check(&k, Expect::Version(version + 1))]
    {
        let group = [change(b"lost"), put(&t, &missing, doc("m", 1), Expect::Anything), failing];
        assert_eq!(backend.ask(ACCOUNT, Request::write(&group)).await, Err(Failure::GuardFailed(2)));
    }
    assert_eq!(store.backend.get(&t, &missing).await, Ok(None));
    // Failed groups used no sequence number.
    let committed =
        backend.ask(ACCOUNT, Request::write(&[check(&k, Expect::Anything), change(b"three")])).await.unwrap();
    assert_eq!(committed.change_sequences, [3]);
    let unknown = Write::AppendChange { table: unique("missing"), record: b"x".to_vec() };
    assert_eq!(
        backend.ask(ACCOUNT, Request::write(&[unknown])).await,
        Err(Failure::Storage(StorageError::NoSuchKeyspace))
    );

    // Records read back in order after a sequence number, with the log's last number.
    let page = backend.ask(ACCOUNT, Request::read_changes(&t, 1, 10)).await.unwrap();
    let read: Vec<(u64, &[u8])> = page.changes.iter().map(|c| (c.sequence, c.record.as_slice())).collect();
    assert_eq!(read, [(2, &b"two"[..]), (3, &b"three"[..])]);
    assert_eq!(page.last_sequence, 3);
    let page = backend.ask(ACCOUNT, Request::read_changes(&t, 0, 1)).await.unwrap();
    assert_eq!((page.changes.len(), page.last_sequence), (1, 3));
    let page = backend.ask(ACCOUNT, Request::read_changes(&t, u64::MAX, 0)).await.unwrap();
    assert_eq!((page.changes.len(), page.last_sequence), (0, 3));
    assert_eq!(
        backend.ask(ACCOUNT, Request::read_changes(&unique("missing"), 0, 1)).await,
        Err(StorageError::NoSuchKeyspace)
    );
    // Trimming drops records written before a time, leaving a gap readers see.
    assert_eq!(backend.trim_changes(0, 10).await.unwrap(), TrimmedChanges { deleted: 0, left: 0 });
    assert_eq!(backend.ask(ACCOUNT, Request::read_changes(&t, 0, 10)).await.unwrap().changes.len(), 3);
    // Trimming up to a time to come empties every log, a batch at a time, oldest first, and
    // counts what a full batch left: only where no other test shares the store.
    if matches!(store.kind, Kind::OnDisk | Kind::InMemory | Kind::Reference) {
        let first = backend.trim_changes(4_000_000_000, 2).await.unwrap();
        assert_eq!(first.deleted, 2);
        assert!(first.left >= 1, "{first:?}");
        while backend.trim_changes(4_000_000_000, 2).await.unwrap().left > 0 {}
        let page = backend.ask(ACCOUNT, Request::read_changes(&t, 0, 10)).await.unwrap();
        assert_eq!((page.changes.len(), page.last_sequence), (0, 3));
    }
}

async fn expiry_is_found_on_an_index(store: &Store) {
    let backend = &store.backend.backend;
    let t = store.table().await;
    let keyspace = Keyspace::table(&t);
    let expiring = |name: &[u8], at: Option<u64>| Write::Put {
        keyspace: keyspace.clone(),
        key: key(name, b""),
        document: doc("e", 1),
        expect: Expect::Anything,
        expires_at: at,
    };
    let group = [expiring(b"late", Some(300)), expiring(b"early", Some(100)), expiring(b"never", None)];
    backend.ask(ACCOUNT, Request::write(&group)).await.unwrap();
    backend.ask(ACCOUNT, Request::write(&[expiring(b"mid", Some(200))])).await.unwrap();
    assert_eq!(backend.ask(ACCOUNT, Request::expired(&keyspace, 99, 10)).await.unwrap(), []);
    assert_eq!(
        backend.ask(ACCOUNT, Request::expired(&keyspace, 200, 10)).await.unwrap(),
        [key(b"early", b""), key(b"mid", b"")]
    );
    assert_eq!(backend.ask(ACCOUNT, Request::expired(&keyspace, 1000, 1)).await.unwrap(), [key(b"early", b"")]);
    // A put without an expiry clears it; a delete removes the key.
    backend
        .ask(ACCOUNT, Request::write(&[expiring(b"early", None), delete(&t, &key(b"mid", b""), Expect::Anything)]))
        .await
        .unwrap();
    assert_eq!(backend.ask(ACCOUNT, Request::expired(&keyspace, 1000, 10)).await.unwrap(), [key(b"late", b"")]);
    let missing = Keyspace::table(&unique("missing"));
    assert_eq!(backend.ask(ACCOUNT, Request::expired(&missing, 1000, 10)).await, Err(StorageError::NoSuchKeyspace));
}

async fn accounts_are_separate(store: &Store) {
    let backend = &store.backend.backend;
    let name = unique("shared-name");
    let other_account = unique("account");
    for account in [ACCOUNT, &other_account] {
        assert_eq!(backend.ask(account, Request::create_table(&name, &description(account), &[])).await, Ok(true));
    }
    store.created.lock().unwrap().push(name.clone());
    let k = key(b"k", b"");
    let put_as = |label: &str| put(&name, &k, doc(label, 1), Expect::Absent);
    backend.ask(ACCOUNT, Request::write(&[put_as("mine")])).await.unwrap();
    backend.ask(&other_account, Request::write(&[put_as("theirs")])).await.unwrap();
    let read = async |account: &str| {
        backend.ask(account, Request::get(&Keyspace::table(&name), &k)).await.unwrap().unwrap().document
    };
    assert_eq!((read(ACCOUNT).await, read(&other_account).await), (doc("mine", 1), doc("theirs", 1)));
    let described = backend.ask(&other_account, Request::describe_table(&name)).await.unwrap().unwrap().description;
    assert_eq!(json(&described), json(&description(&other_account)));
    assert_eq!(
        backend.ask(&other_account, Request::list_tables(None, 100)).await.unwrap(),
        std::slice::from_ref(&name)
    );
    assert_eq!(backend.ask(&unique("nobody"), Request::list_tables(None, 100)).await.unwrap(), Vec::<String>::new());
    assert_eq!(backend.ask(&other_account, Request::delete_table(&name)).await, Ok(true));
    assert_eq!(read(ACCOUNT).await, doc("mine", 1));
}

async fn tables_are_found_by_name_across_accounts(store: &Store) {
    let backend = &store.backend.backend;
    let name = unique("shared-name");
    // Made out of order, found in order; a table of another name is not found.
    let (a, b) = (unique("account-a"), unique("account-b"));
    let tables = [
        (b.as_str(), name.clone()),
        (ACCOUNT, name.clone()),
        (a.as_str(), name.clone()),
        (a.as_str(), format!("{name}-other")),
    ];
    for (account, table) in &tables {
        assert_eq!(backend.ask(account, Request::create_table(table, &description(table), &[])).await, Ok(true));
    }
    assert_eq!(backend.accounts_with_table(&name).await, Ok(vec![ACCOUNT.to_string(), a.clone(), b.clone()]));
    assert_eq!(backend.accounts_with_table(&unique("nobody's")).await, Ok(Vec::new()));
    for (account, table) in &tables {
        assert_eq!(backend.ask(account, Request::delete_table(table)).await, Ok(true));
    }
    assert_eq!(backend.accounts_with_table(&name).await, Ok(Vec::new()));
}

async fn backups_copy_one_moment_and_outlive_their_table(store: &Store) {
    let backend = &store.backend.backend;
    let name = unique("backed");
    let arn = format!("arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{name}/backup/1");
    let (a, b, c) = (key(b"a", b""), key(b"b", b""), key(b"c", b""));
    assert_eq!(backend.ask(ACCOUNT, Request::create_table(&name, &description(&name), &[])).await, Ok(true));
    store.created.lock().unwrap().push(name.clone());
    let writes = [put(&name, &a, doc("a", 1), Expect::Absent), put(&name, &b, doc("b", 1), Expect::Absent)];
    backend.ask(ACCOUNT, Request::write(&writes)).await.unwrap();

    // Taken only at the version the caller read.
    let version = backend.ask(ACCOUNT, Request::describe_table(&name)).await.unwrap().unwrap().version;
    assert_eq!(backend.ask(ACCOUNT, Request::create_backup(&name, version + 1, &arn, b"{}")).await, Ok(false));
    assert_eq!(backend.ask(ACCOUNT, Request::describe_backup(&arn)).await, Ok(None));
    let record = br#"{"backup": 1}"#;
    assert_eq!(backend.ask(ACCOUNT, Request::create_backup(&name, version, &arn, record)).await, Ok(true));
    let missing = format!("{arn}-missing");
    assert_eq!(backend.ask(ACCOUNT, Request::create_backup(&missing, 1, &missing, record)).await, Ok(false));

    // Later writes are not in it.
    let later = [put(&name, &c, doc("c", 1), Expect::Absent), delete(&name, &a, Expect::Anything)];
    backend.ask(ACCOUNT, Request::write(&later)).await.unwrap();
    let stored = StoredBackup { arn: arn.clone(), record: record.to_vec() };
    assert_eq!(backend.ask(ACCOUNT, Request::describe_backup(&arn)).await, Ok(Some(stored.clone())));
    assert_eq!(backend.ask("999999999999", Request::describe_backup(&arn)).await, Ok(None), "another account's");
    let listed = backend.ask(ACCOUNT, Request::list_backups(Some(&arn[..arn.len() - 1]), 10)).await.unwrap();
    assert_eq!(listed.first(), Some(&stored));
    // After it, nothing of this table (other tests' backups may follow in a shared database).
    let after = backend.ask(ACCOUNT, Request::list_backups(Some(&arn), 10)).await.unwrap();
    assert!(after.iter().all(|b| !b.arn.starts_with(&arn[..arn.len() - 1])), "{after:?}");

    // A restore is a new table with the backup's items and empty index keyspaces; the backup
    // outlives its table.
    assert_eq!(backend.ask(ACCOUNT, Request::delete_table(&name)).await, Ok(true));
    let restored = unique("restored");
    let indexes = ["by-a".to_string()];
    let restored_description = description(&restored);
    let restoring = Request::restore_backup(&arn, &restored, &restored_description, &indexes);
    assert_eq!(backend.ask(ACCOUNT, restoring).await, Ok(true));
    store.created.lock().unwrap().push(restored.clone());
    let items = scan(&store.backend, &restored, None, 10, u32::MAX).await.items;
    assert_eq!(keys(&items), [a.clone(), b.clone()]);
    assert_eq!(items[0].document, doc("a", 1));
    assert_eq!(backend.ask(ACCOUNT, Request::keyspace_stats(&Keyspace::index(&restored, "by-a"))).await, Ok((0, 0)));
    // Its items take new writes as any table's do.
    let guarded = [put(&restored, &b, doc("b", 2), Expect::Version(items[1].version))];
    backend.ask(ACCOUNT, Request::write(&guarded)).await.unwrap();
    // A taken name changes nothing.
    let again = Request::restore_backup(&arn, &restored, b"{\"other\": 1}", &[]);
    assert_eq!(backend.ask(ACCOUNT, again).await, Ok(false));
    assert_eq!(
        json(&backend.ask(ACCOUNT, Request::describe_table(&restored)).await.unwrap().unwrap().description),
        json(&description(&restored))
    );

    // Deleted, it is gone: nothing to describe, list, delete or restore.
    assert_eq!(backend.ask(ACCOUNT, Request::delete_backup(&arn)).await, Ok(Some(stored)));
    assert_eq!(backend.ask(ACCOUNT, Request::delete_backup(&arn)).await, Ok(None));
    assert_eq!(backend.ask(ACCOUNT, Request::describe_backup(&arn)).await, Ok(None));
    let elsewhere = unique("never");
    let elsewhere_description = description(&elsewhere);
    let gone = Request::restore_backup(&arn, &elsewhere, &elsewhere_description, &[]);
    assert_eq!(backend.ask(ACCOUNT, gone).await, Err(StorageError::NoSuchKeyspace));
    assert_eq!(backend.ask(ACCOUNT, Request::describe_table(&elsewhere)).await, Ok(None));
}

/// Milliseconds since the epoch, the stores' clock for history stamps.
fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// (key, document) of every item of a table, in key order.
async fn contents(store: &Store, table: &str) -> Vec<(ItemKey, Value)> {
    let items = scan(&store.backend, table, None, u32::MAX, u32::MAX).await.items;
    items.into_iter().map(|item| (item.key, json(&item.document))).collect()
}

/// Restores `source` as it was at `moment` into a new table: its name.
async fn restore_moment(store: &Store, source: &str, moment: u64) -> Result<String, StorageError> {
    let target = unique("moment");
    let target_description = description(&target);
    let asked = Request::restore_moment(source, moment, &target, &target_description, &[]);
    let restored = store.backend.backend.ask(ACCOUNT, asked).await.map(|made| {
        assert!(made);
        target.clone()
    });
    store.created.lock().unwrap().push(target);
    restored
}

/// Starts or stops the table's history.
async fn change_history(store: &Store, table: &str, history: HistoryChange) {
    let backend = &store.backend.backend;
    let version = backend.ask(ACCOUNT, Request::describe_table(table)).await.unwrap().unwrap().version;
    let change = TableChange { history, ..TableChange::record_only(b"{}") };
    backend.ask(ACCOUNT, Request::update_table(table, version, &change)).await.unwrap().unwrap();
}

/// Starts the table's history, then writes the groups: each moment (the start, then right after
/// each group) with the table's contents then. The next group begins 2 ms later, so its stamp
/// (taken during it) is after the moment recorded.
async fn write_moments(store: &Store, table: &str, groups: &[Vec<Write>]) -> Vec<(u64, Vec<(ItemKey, Value)>)> {
    change_history(store, table, HistoryChange::Start).await;
    let mut moments = vec![(now_millis(), contents(store, table).await)];
    for group in groups {
        std::thread::sleep(std::time::Duration::from_millis(2));
        store.backend.backend.ask(ACCOUNT, Request::write(group)).await.unwrap();
        moments.push((now_millis(), contents(store, table).await));
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    moments
}

/// The write that records `key` in the table's history as its group leaves it.
fn recorded(table: &str, key: &ItemKey) -> Write {
    Write::AppendHistory { table: table.to_string(), key: key.clone() }
}

async fn history_restores_every_moment_and_folds_what_is_past(store: &Store) {
    let backend = &store.backend.backend;
    let name = unique("history");
    let (a, b, c) = (key(b"a", b""), key(b"b", b""), key(b"c", b""));
    assert_eq!(backend.ask(ACCOUNT, Request::create_table(&name, &description(&name), &[])).await, Ok(true));
    store.created.lock().unwrap().push(name.clone());
    let restore = async |moment: u64| restore_moment(store, &name, moment).await;
    // No history yet: nothing to restore.
    assert_eq!(restore(now_millis()).await, Err(StorageError::NoSuchKeyspace));
    backend.ask(ACCOUNT, Request::write(&[put(&name, &a, doc("a", 0), Expect::Absent)])).await.unwrap();

    // Started, the history holds the items of that moment, for every moment after; then groups
    // of writes, each recorded with the table's contents right after it.
    let groups: Vec<Vec<Write>> = vec![
        vec![put(&name, &b, doc("b", 1), Expect::Absent), recorded(&name, &b)],
        vec![put(&name, &a, doc("a", 2), Expect::Anything), recorded(&name, &a)],
        // One group, one moment: both or neither.
        vec![
            delete(&name, &a, Expect::Anything),
            put(&name, &c, doc("c", 3), Expect::Absent),
            recorded(&name, &a),
            recorded(&name, &c),
        ],
        vec![put(&name, &a, doc("a", 4), Expect::Absent), recorded(&name, &a)],
        vec![
            put(&name, &b, doc("b", 5), Expect::Anything),
            recorded(&name, &b),
            put(&name, &b, doc("b", 6), Expect::Anything),
            recorded(&name, &b),
        ],
        vec![delete(&name, &c, Expect::Anything), recorded(&name, &c)],
    ];
    let moments = write_moments(store, &name, &groups).await;
    for (moment, expected) in &moments {
        let restored = restore(*moment).await.unwrap();
        assert_eq!(&contents(store, &restored).await, expected, "restored to {moment}");
    }
    // Restored items take writes as any table's do.
    let restored = restore(now_millis()).await.unwrap();
    let item = backend.ask(ACCOUNT, Request::get(&Keyspace::table(&restored), &b)).await.unwrap().unwrap();
    let guarded = [put(&restored, &b, doc("b", 7), Expect::Version(item.version))];
    backend.ask(ACCOUNT, Request::write(&guarded)).await.unwrap();
    // A taken name changes nothing.
    let taken = Request::restore_moment(&name, now_millis(), &restored, b"{\"other\": 1}", &[]);
    assert_eq!(backend.ask(ACCOUNT, taken).await, Ok(false));

    // Folding up to a moment forgets entries, and no moment from it on restores differently.
    let fold_at = moments[3].0;
    let folded = backend.fold_history(ACCOUNT, &name, fold_at, 1000).await.unwrap();
    assert!(folded >= 2, "{} folded {folded}", store.backend.describe());
    backend.fold_history(ACCOUNT, &name, fold_at, 1000).await.unwrap();
    for (moment, expected) in &moments[3..] {
        let restored = restore(*moment).await.unwrap();
        assert_eq!(&contents(store, &restored).await, expected, "restored to {moment} after folding");
    }

    // Stopped, there is nothing to restore.
    change_history(store, &name, HistoryChange::Stop).await;
    assert_eq!(restore(now_millis()).await, Err(StorageError::NoSuchKeyspace));

    // Deleted keeping a backup, the table's last items outlive it.
    let arn = format!("arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{name}/backup/system");
    let expected = contents(store, &name).await;
    assert_eq!(backend.ask(ACCOUNT, Request::delete_table_keeping(&name, &arn, b"{}")).await, Ok(true));
    assert_eq!(backend.ask(ACCOUNT, Request::describe_table(&name)).await, Ok(None));
    let again = unique("kept");
    let again_description = description(&again);
    let restoring = Request::restore_backup(&arn, &again, &again_description, &[]);
    assert_eq!(backend.ask(ACCOUNT, restoring).await, Ok(true));
    store.created.lock().unwrap().push(again.clone());
    assert_eq!(contents(store, &again).await, expected);
    assert_eq!(backend.ask(ACCOUNT, Request::delete_table_keeping(&name, &arn, b"{}")).await, Ok(false));
    backend.ask(ACCOUNT, Request::delete_backup(&arn)).await.unwrap();
}

/// Every entry of the table's history from `from` to `to`, read in pages of `limit` until an
/// empty one, each page checked against the limit and the order.
async fn read_history(store: &Store, table: &str, from: Option<u64>, to: u64, limit: u32) -> Vec<HistoryEntry> {
    let mut entries: Vec<HistoryEntry> = Vec::new();
    loop {
        let after = entries.last().map(|entry| entry.key.clone());
        let page = store.backend.backend.read_history(ACCOUNT, table, from, to, after, limit).await.unwrap();
        assert!(page.len() <= limit as usize, "{} read {} entries", store.backend.describe(), page.len());
        if page.is_empty() {
            assert!(entries.windows(2).all(|pair| pair[0].key < pair[1].key), "{entries:?}");
            return entries;
        }
        entries.extend(page);
    }
}

/// (key, old, new) of history entries, the documents as JSON.
fn images(entries: &[HistoryEntry]) -> Vec<(ItemKey, Option<Value>, Option<Value>)> {
    let image = |document: &Option<Vec<u8>>| document.as_deref().map(json);
    entries.iter().map(|entry| (entry.key.clone(), image(&entry.old), image(&entry.new))).collect()
}

async fn history_reads_whole_moments_and_windows_in_pages(store: &Store) {
    let backend = &store.backend.backend;
    let name = unique("exported");
    let [a, b, c, d, e, f] = [b"a", b"b", b"c", b"d", b"e", b"f"].map(|k| key(k, b""));
    assert_eq!(backend.ask(ACCOUNT, Request::create_table(&name, &description(&name), &[])).await, Ok(true));
    store.created.lock().unwrap().push(name.clone());
    // No history yet, or no table: nothing to read.
    for table in [name.clone(), unique("missing")] {
        let read = backend.read_history(ACCOUNT, &table, None, now_millis(), None, 10).await;
        assert_eq!(read, Err(StorageError::NoSuchKeyspace), "{table}");
    }
    let before = [put(&name, &a, doc("a", 0), Expect::Absent), put(&name, &b, doc("b", 0), Expect::Absent)];
    backend.ask(ACCOUNT, Request::write(&before)).await.unwrap();

    let written = |k: &ItemKey, n: i64| vec![put(&name, k, doc("x", n), Expect::Anything), recorded(&name, k)];
    let deleted = |k: &ItemKey| vec![delete(&name, k, Expect::Anything), recorded(&name, k)];
    let groups: Vec<Vec<Write>> = vec![
        [written(&c, 1), written(&a, 1)].concat(),
        [deleted(&b), written(&d, 2)].concat(),
        // e is made in one group and deleted in the next; a changes twice in some windows.
        [written(&e, 3), written(&a, 3)].concat(),
        [deleted(&e), written(&c, 4), written(&f, 4)].concat(),
        [written(&b, 5), deleted(&d), deleted(&f)].concat(),
    ];
    let moments = write_moments(store, &name, &groups).await;

    // A whole moment is what restoring to it makes, whatever the page size.
    for (moment, expected) in &moments {
        let read = read_history(store, &name, None, *moment, 2).await;
        assert_eq!(read, read_history(store, &name, None, *moment, 1000).await);
        let restored = restore_moment(store, &name, *moment).await.unwrap();
        assert_eq!(&contents(store, &restored).await, expected, "restored to {moment}");
        let items: Vec<_> = images(&read).into_iter().map(|(key, old, new)| (key, old, new.unwrap())).collect();
        assert_eq!(items, expected.iter().map(|(key, item)| (key.clone(), None, item.clone())).collect::<Vec<_>>());
        assert!(read.iter().all(|entry| entry.at <= *moment), "{read:?} at {moment}");
    }

    // A window (from, to] holds the keys that differ between its ends, with the items at both:
    // untouched keys are absent, and so is e when it is made and deleted inside it.
    for (i, (from, at_from)) in moments.iter().enumerate() {
        for (to, at_to) in &moments[i + 1..] {
            let read = read_history(store, &name, Some(*from), *to, 2).await;
            let item = |items: &[(ItemKey, Value)], key: &ItemKey| {
                items.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
            };
            let keys: std::collections::BTreeSet<_> = at_from.iter().chain(at_to).map(|(key, _)| key.clone()).collect();
            let changed = |key: ItemKey| {
                let (old, new) = (item(at_from, &key), item(at_to, &key));
                (old != new).then_some((key, old, new))
            };
            let expected: Vec<_> = keys.into_iter().filter_map(changed).collect();
            assert_eq!(images(&read), expected, "from {from} to {to}");
            // Each at the stamp of its last change, as the table as of `to` has it.
            let whole = read_history(store, &name, None, *to, 1000).await;
            for entry in &read {
                assert!(*from < entry.at && entry.at <= *to, "{entry:?} in ({from}, {to}]");
                if entry.new.is_some() {
                    assert_eq!(whole.iter().find(|w| w.key == entry.key).map(|w| w.at), Some(entry.at));
                }
            }
        }
    }
    let window = read_history(store, &name, Some(moments[2].0), moments[4].0, 2).await;
    assert_eq!(window.into_iter().map(|entry| entry.key).collect::<Vec<_>>(), [a, c, f], "e is left out");

    // The first page settles its moment: a write right after it is not in the table as of then.
    let to = now_millis();
    let settled = read_history(store, &name, None, to, 2).await;
    backend.ask(ACCOUNT, Request::write(&written(&e, 6))).await.unwrap();
    assert_eq!(read_history(store, &name, None, to, 2).await, settled);
    std::thread::sleep(std::time::Duration::from_millis(2));
    assert_eq!(read_history(store, &name, Some(to), now_millis(), 2).await.len(), 1);

    // Stopped, there is nothing to read.
    change_history(store, &name, HistoryChange::Stop).await;
    let read = backend.read_history(ACCOUNT, &name, None, now_millis(), None, 10).await;
    assert_eq!(read, Err(StorageError::NoSuchKeyspace));
}
