//! Point-in-time recovery end to end: the real binary on both stores, the AWS SDK for Rust.
//! Enable it, write, restore to moments between writes (indexes rebuilt), restore to random
//! moments of a table under concurrent writers and transactions, delete the table and restore its
//! system backup, and see DynamoDB's errors.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::primitives::DateTime;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BackupTypeFilter, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, PointInTimeRecoverySpecification, PointInTimeRecoveryStatus, Projection, ProjectionType, Put,
    ScalarAttributeType, TableStatus, TransactWriteItem,
};
use support::{Server, contents, stores, unique};

type Item = HashMap<String, AttributeValue>;

fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn item(id: &str, kind: &str, value: i64) -> Item {
    HashMap::from([
        ("id".to_string(), AttributeValue::S(id.to_string())),
        ("kind".to_string(), AttributeValue::S(kind.to_string())),
        ("value".to_string(), AttributeValue::N(value.to_string())),
    ])
}

fn id_key(id: &str) -> Item {
    HashMap::from([("id".to_string(), AttributeValue::S(id.to_string()))])
}

async fn create_table(client: &Client, name: &str, indexed: bool) {
    let key = |name: &str| KeySchemaElement::builder().attribute_name(name).key_type(KeyType::Hash).build().unwrap();
    let definition = |name: &str| {
        AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build().unwrap()
    };
    let mut create = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("id"))
        .attribute_definitions(definition("id"));
    if indexed {
        let projection = Projection::builder().projection_type(ProjectionType::All).build();
        let index = GlobalSecondaryIndex::builder().index_name("byKind").key_schema(key("kind")).projection(projection);
        create = create.attribute_definitions(definition("kind")).global_secondary_indexes(index.build().unwrap());
    }
    create.send().await.expect("create table");
}

async fn enable(client: &Client, table: &str, days: Option<i32>) {
    let specification = PointInTimeRecoverySpecification::builder()
        .point_in_time_recovery_enabled(true)
        .set_recovery_period_in_days(days);
    let answer = client
        .update_continuous_backups()
        .table_name(table)
        .point_in_time_recovery_specification(specification.build().unwrap())
        .send()
        .await
        .expect("enable point-in-time recovery");
    let recovery = answer.continuous_backups_description().unwrap().point_in_time_recovery_description().unwrap();
    assert_eq!(recovery.point_in_time_recovery_status(), Some(&PointInTimeRecoveryStatus::Enabled));
}

async fn active(client: &Client, table: &str) {
    let started = Instant::now();
    loop {
        let described = client.describe_table().table_name(table).send().await.expect("describe");
        if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{table} is still not ACTIVE");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Restores `source` as it was at `moment` (ms) into a new table, once it is ACTIVE.
async fn restore_to(client: &Client, source: &str, moment: i64) -> String {
    let target = unique("moment");
    client
        .restore_table_to_point_in_time()
        .source_table_name(source)
        .target_table_name(&target)
        .restore_date_time(DateTime::from_millis(moment))
        .send()
        .await
        .unwrap_or_else(|e| panic!("restore to {moment}: {e:?}"));
    active(client, &target).await;
    target
}

/// The error type of a restore of `source` to its latest time, which must be refused.
async fn refused_latest(client: &Client, source: &str) -> Option<String> {
    let restore = client.restore_table_to_point_in_time().source_table_name(source).target_table_name(unique("never"));
    let refused = restore.use_latest_restorable_time(true).send().await.unwrap_err();
    refused.code().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread")]
async fn point_in_time_recovery_restores_the_moment_asked() {
    for store in stores() {
        let server = Server::start(&store);
        let client = server.client();
        let table = unique("ledger");
        create_table(&client, &table, true).await;
        for i in 0..5 {
            client.put_item().table_name(&table).set_item(Some(item(&format!("i{i}"), "old", i))).send().await.unwrap();
        }

        // Off at first: described so, and nothing to restore.
        let described = client.describe_continuous_backups().table_name(&table).send().await.unwrap();
        let recovery = described.continuous_backups_description().unwrap().point_in_time_recovery_description();
        assert_eq!(recovery.unwrap().point_in_time_recovery_status(), Some(&PointInTimeRecoveryStatus::Disabled));
        assert_eq!(refused_latest(&client, &table).await.as_deref(), Some("PointInTimeRecoveryUnavailableException"));

        let before_enabling = now_millis();
        tokio::time::sleep(Duration::from_millis(5)).await;
        enable(&client, &table, Some(7)).await;
        let described = client.describe_continuous_backups().table_name(&table).send().await.unwrap();
        let recovery =
            described.continuous_backups_description().unwrap().point_in_time_recovery_description().unwrap();
        assert_eq!(recovery.recovery_period_in_days(), Some(7));
        let earliest = recovery.earliest_restorable_date_time().unwrap().to_millis().unwrap();
        let latest = recovery.latest_restorable_date_time().unwrap().to_millis().unwrap();
        assert!(before_enabling < earliest && earliest <= latest && latest <= now_millis(), "{recovery:?}");

        // Writes of every kind, each followed by a moment and what the table held then.
        let mut moments = vec![(now_millis(), contents(&client, &table, None).await)];
        let step = async |moments: &mut Vec<(i64, Vec<Item>)>| {
            tokio::time::sleep(Duration::from_millis(3)).await;
            moments.push((now_millis(), contents(&client, &table, None).await));
            tokio::time::sleep(Duration::from_millis(3)).await;
        };
        client.put_item().table_name(&table).set_item(Some(item("i0", "new", 100))).send().await.unwrap();
        step(&mut moments).await;
        client.delete_item().table_name(&table).set_key(Some(id_key("i1"))).send().await.unwrap();
        step(&mut moments).await;
        client
            .update_item()
            .table_name(&table)
            .set_key(Some(id_key("i2")))
            .update_expression("SET #v = #v + :one")
            .expression_attribute_names("#v", "value")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .send()
            .await
            .unwrap();
        step(&mut moments).await;
        let put = |id: &str| {
            let put = Put::builder().table_name(&table).set_item(Some(item(id, "pair", 7))).build().unwrap();
            TransactWriteItem::builder().put(put).build()
        };
        client.transact_write_items().transact_items(put("t1")).transact_items(put("t2")).send().await.unwrap();
        step(&mut moments).await;

        for (moment, expected) in &moments {
            let restored = restore_to(&client, &table, *moment).await;
            assert_eq!(&contents(&client, &restored, None).await, expected, "{store:?} at {moment}");
            let mut through_index = contents(&client, &restored, Some("byKind")).await;
            through_index.sort_by(|a, b| a["id"].as_s().unwrap().cmp(b["id"].as_s().unwrap()));
            assert_eq!(&through_index, expected, "{store:?} at {moment}, through the index");
            let summary = client.describe_table().table_name(&restored).send().await.unwrap();
            let summary = summary.table().unwrap().restore_summary().unwrap().clone();
            // The SDK reads epoch seconds through a binary float: a millisecond may round down.
            let restored_at = summary.restore_date_time().to_millis().unwrap();
            assert!((restored_at - moment).abs() <= 1, "{restored_at} for {moment}");
            assert!(summary.source_backup_arn().is_none() && !summary.restore_in_progress());
            client.delete_table().table_name(&restored).send().await.unwrap();
        }

        // The latest restorable time, by the table's ARN.
        let arn = client
            .describe_table()
            .table_name(&table)
            .send()
            .await
            .unwrap()
            .table()
            .unwrap()
            .table_arn()
            .unwrap()
            .to_string();
        let latest = unique("latest");
        client
            .restore_table_to_point_in_time()
            .source_table_arn(&arn)
            .target_table_name(&latest)
            .use_latest_restorable_time(true)
            .send()
            .await
            .expect("restore to the latest time");
        active(&client, &latest).await;
        assert_eq!(contents(&client, &latest, None).await, contents(&client, &table, None).await);

        // DynamoDB's errors, each changing nothing.
        let too_early = client
            .restore_table_to_point_in_time()
            .source_table_name(&table)
            .target_table_name(unique("never"))
            .restore_date_time(DateTime::from_millis(before_enabling))
            .send()
            .await
            .unwrap_err();
        assert_eq!(too_early.code(), Some("InvalidRestoreTimeException"));
        let taken = client
            .restore_table_to_point_in_time()
            .source_table_name(&table)
            .target_table_name(&latest)
            .use_latest_restorable_time(true)
            .send()
            .await
            .unwrap_err();
        assert_eq!(taken.code(), Some("TableAlreadyExistsException"));
        let missing = client.describe_continuous_backups().table_name("no-such-table").send().await.unwrap_err();
        assert_eq!(
            (missing.code(), missing.message()),
            (Some("TableNotFoundException"), Some("Table not found: no-such-table"))
        );
        for days in [0, 36] {
            let specification = PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(true)
                .recovery_period_in_days(days)
                .build()
                .unwrap();
            let refused = client
                .update_continuous_backups()
                .table_name(&table)
                .point_in_time_recovery_specification(specification)
                .send()
                .await
                .unwrap_err();
            assert_eq!(refused.code(), Some("ValidationException"), "{days} days");
        }

        // Deleted, the table leaves a system backup of its last items.
        let last = contents(&client, &table, None).await;
        client.delete_table().table_name(&table).send().await.unwrap();
        let listed =
            client.list_backups().table_name(&table).backup_type(BackupTypeFilter::System).send().await.unwrap();
        let [system] = listed.backup_summaries() else { panic!("{listed:?}") };
        assert_eq!(system.backup_name(), Some(format!("{table}$DeletedTableBackup").as_str()));
        assert!(system.backup_expiry_date_time().is_some());
        let again = unique("again");
        let backup_arn = system.backup_arn().unwrap();
        client.restore_table_from_backup().target_table_name(&again).backup_arn(backup_arn).send().await.unwrap();
        active(&client, &again).await;
        assert_eq!(contents(&client, &again, None).await, last);

        // Disabled, there is nothing to restore.
        enable(&client, &again, None).await;
        let specification = PointInTimeRecoverySpecification::builder().point_in_time_recovery_enabled(false).build();
        client
            .update_continuous_backups()
            .table_name(&again)
            .point_in_time_recovery_specification(specification.unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(refused_latest(&client, &again).await.as_deref(), Some("PointInTimeRecoveryUnavailableException"));
        client.delete_backup().backup_arn(backup_arn).send().await.unwrap();
        for name in [&latest, &again] {
            client.delete_table().table_name(name).send().await.unwrap();
        }
    }
}

/// One write as its writer saw it: sent and answered (ms), and what it left at its keys.
struct Logged {
    keys: Vec<String>,
    sent: i64,
    answered: i64,
    value: Option<i64>,
}

/// What a restore to `moment` may hold at `key`: the value of the last write answered before it,
/// and, when the key's next write was under way at that moment, that write's value too (each key
/// has one writer, so at most one write of it is under way at a time).
fn possible(log: &[Logged], key: &str, moment: i64) -> Vec<Option<i64>> {
    let writes: Vec<&Logged> = log.iter().filter(|w| w.keys.iter().any(|k| k == key)).collect();
    let mut done = None;
    let mut under_way = None;
    for write in writes {
        if write.answered <= moment {
            done = write.value;
        } else if write.sent <= moment {
            under_way = Some(write.value);
        }
    }
    let mut possible = vec![done];
    possible.extend(under_way);
    possible
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restores_to_random_moments_under_concurrent_writes_hold_what_was_committed() {
    for store in stores() {
        let server = Server::start(&store);
        let client = server.client();
        let table = unique("busy");
        create_table(&client, &table, false).await;
        enable(&client, &table, None).await;
        let log = Arc::new(Mutex::new(Vec::<Logged>::new()));
        let started = now_millis();
        let run_until = Instant::now() + Duration::from_secs(3);
        let mut writers = Vec::new();
        // Three writers of single items, each with keys of its own; one of transactions, each
        // writing a pair of keys with one value.
        for writer in 0..4 {
            let (client, table, log) = (client.clone(), table.clone(), log.clone());
            writers.push(tokio::spawn(async move {
                let mut n = 0i64;
                while Instant::now() < run_until {
                    n += 1;
                    let sent = now_millis();
                    let (keys, value) = if writer == 3 {
                        let pair = n % 4;
                        let keys = vec![format!("t{pair}a"), format!("t{pair}b")];
                        let put = |id: &str| {
                            let put = Put::builder().table_name(&table).set_item(Some(item(id, "pair", n))).build();
                            TransactWriteItem::builder().put(put.unwrap()).build()
                        };
                        let mut transaction = client.transact_write_items();
                        for key in &keys {
                            transaction = transaction.transact_items(put(key));
                        }
                        transaction.send().await.expect("transaction");
                        (keys, Some(n))
                    } else {
                        let key = format!("w{writer}-{}", n % 5);
                        if n % 3 == 0 {
                            client.delete_item().table_name(&table).set_key(Some(id_key(&key))).send().await.unwrap();
                            (vec![key], None)
                        } else {
                            let put = client.put_item().table_name(&table).set_item(Some(item(&key, "single", n)));
                            put.send().await.unwrap();
                            (vec![key], Some(n))
                        }
                    };
                    log.lock().unwrap().push(Logged { keys, sent, answered: now_millis(), value });
                }
            }));
        }
        for writer in writers {
            writer.await.unwrap();
        }
        let finished = now_millis();
        let log = std::mem::take(&mut *log.lock().unwrap());
        let mut keys: Vec<String> = log.iter().flat_map(|w| w.keys.clone()).collect();
        keys.sort();
        keys.dedup();

        // 20 moments spread over the run, each at a pseudo-random point of its twentieth.
        let span = (finished - started) / 20;
        let (mut exact, mut checked) = (0, 0);
        for i in 0..20 {
            let moment = started + i * span + (i * 7919 + 13) % span.max(1);
            let restored = restore_to(&client, &table, moment).await;
            let held: HashMap<String, i64> = contents(&client, &restored, None)
                .await
                .into_iter()
                .map(|item| (item["id"].as_s().unwrap().clone(), item["value"].as_n().unwrap().parse().unwrap()))
                .collect();
            for key in &keys {
                let possible = possible(&log, key, moment);
                checked += 1;
                exact += usize::from(possible.len() == 1);
                let found = held.get(key).copied();
                assert!(
                    possible.contains(&found),
                    "{store:?} at {moment}: {key} holds {found:?}, not one of {possible:?}"
                );
            }
            // A transaction is in a moment whole or not at all.
            for pair in 0..4 {
                assert_eq!(held.get(&format!("t{pair}a")), held.get(&format!("t{pair}b")), "{store:?} at {moment}");
            }
            client.delete_table().table_name(&restored).send().await.unwrap();
        }
        let writes = log.len();
        println!("{store:?}: {writes} writes; 20 moments restored, {exact} of {checked} keys with no write under way");
        client.delete_table().table_name(&table).send().await.unwrap();
        let kept = client.list_backups().table_name(&table).backup_type(BackupTypeFilter::System).send().await.unwrap();
        for backup in kept.backup_summaries() {
            client.delete_backup().backup_arn(backup.backup_arn().unwrap()).send().await.unwrap();
        }
    }
}

/// On PostgreSQL a restore waits for the transactions that appended to the table's history, and
/// for no others: a long transaction elsewhere (here one that holds a transaction id and stays
/// open) does not hold it up until the storage timeout.
#[tokio::test(flavor = "multi_thread")]
async fn a_restore_is_not_held_up_by_unrelated_transactions() {
    for store in stores() {
        let support::Store::Postgres(url) = &store else { continue };
        let server = Server::start_with(&store, &["--storage-timeout-ms", "2000"]);
        let client = server.client();
        let table = unique("calm");
        create_table(&client, &table, false).await;
        enable(&client, &table, None).await;
        let (idle, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        idle.batch_execute("BEGIN; SELECT txid_current();").await.unwrap();
        // A write after it, so the open transaction is one of those a snapshot lists as running.
        client.put_item().table_name(&table).set_item(Some(item("a", "single", 1))).send().await.unwrap();
        let started = Instant::now();
        let restored = restore_to(&client, &table, now_millis()).await;
        assert!(started.elapsed() < Duration::from_secs(2), "the restore waited {:?}", started.elapsed());
        assert_eq!(contents(&client, &restored, None).await, contents(&client, &table, None).await);
        idle.batch_execute("ROLLBACK").await.unwrap();
        for name in [&restored, &table] {
            client.delete_table().table_name(name).send().await.unwrap();
        }
        let kept = client.list_backups().table_name(&table).backup_type(BackupTypeFilter::System).send().await.unwrap();
        for backup in kept.backup_summaries() {
            client.delete_backup().backup_arn(backup.backup_arn().unwrap()).send().await.unwrap();
        }
    }
}
