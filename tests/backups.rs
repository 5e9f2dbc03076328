//! On-demand backups end to end, as an operator uses them: the real binary on both stores, the AWS
//! SDK for Rust. Back up, write more, restore (with its indexes rebuilt), restore with overrides
//! after the table is gone, and see DynamoDB's errors.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BackupStatus, BackupType, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, LocalSecondaryIndex, Projection, ProjectionType, ProvisionedThroughput, ScalarAttributeType, TableStatus,
};
use support::{Server, stores, unique};

type Item = HashMap<String, AttributeValue>;

fn key(name: &str, key_type: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder().attribute_name(name).key_type(key_type).build().unwrap()
}

fn definition(name: &str, attribute_type: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder().attribute_name(name).attribute_type(attribute_type).build().unwrap()
}

fn all() -> Projection {
    Projection::builder().projection_type(ProjectionType::All).build()
}

/// Item `i`: partition `p{i % 3}`, sort key `i`, `kind` even or odd (the global index's
/// partition), `score` (the local index's sort key), and `version`.
fn item(i: u32, version: u32) -> Item {
    let kind = if i.is_multiple_of(2) { "even" } else { "odd" };
    HashMap::from([
        ("pk".to_string(), AttributeValue::S(format!("p{}", i % 3))),
        ("sk".to_string(), AttributeValue::N(i.to_string())),
        ("kind".to_string(), AttributeValue::S(kind.to_string())),
        ("score".to_string(), AttributeValue::N((100 - i).to_string())),
        ("version".to_string(), AttributeValue::N(version.to_string())),
    ])
}

async fn create_indexed_table(client: &Client, name: &str) {
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .attribute_definitions(definition("pk", ScalarAttributeType::S))
        .attribute_definitions(definition("sk", ScalarAttributeType::N))
        .attribute_definitions(definition("kind", ScalarAttributeType::S))
        .attribute_definitions(definition("score", ScalarAttributeType::N))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("byKind")
                .key_schema(key("kind", KeyType::Hash))
                .key_schema(key("sk", KeyType::Range))
                .projection(all())
                .build()
                .unwrap(),
        )
        .local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name("byScore")
                .key_schema(key("pk", KeyType::Hash))
                .key_schema(key("score", KeyType::Range))
                .projection(all())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create table");
}

async fn put(client: &Client, table: &str, item: Item) {
    client.put_item().table_name(table).set_item(Some(item)).send().await.expect("put");
}

/// Every item of the table (or of one of its indexes), sorted by sort key.
async fn scan_all(client: &Client, table: &str, index: Option<&str>) -> Vec<Item> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .set_index_name(index.map(str::to_string))
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        items.extend(page.items().iter().cloned());
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    items.sort_by_key(|item| item["sk"].as_n().unwrap().parse::<u32>().unwrap());
    items
}

/// Waits for the restored table to become ACTIVE (its indexes filled in the background).
async fn active(client: &Client, table: &str) -> aws_sdk_dynamodb::types::TableDescription {
    let started = Instant::now();
    loop {
        let described = client.describe_table().table_name(table).send().await.expect("describe");
        let table = described.table().unwrap().clone();
        if table.table_status() == Some(&TableStatus::Active) {
            return table;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{table:?} is still not ACTIVE");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn backups_restore_the_moment_they_were_taken() {
    for store in stores() {
        let server = Server::start(&store);
        let client = server.client();
        let table = unique("orders");
        create_indexed_table(&client, &table).await;
        for i in 0..30 {
            put(&client, &table, item(i, 1)).await;
        }
        let at_backup = scan_all(&client, &table, None).await;

        // The backup, then more writes it does not hold.
        let created = client.create_backup().table_name(&table).backup_name("nightly").send().await.expect("backup");
        let details = created.backup_details().unwrap();
        let arn = details.backup_arn().to_string();
        assert!(arn.starts_with(&format!("arn:aws:dynamodb:us-east-1:000000000000:table/{table}/backup/")), "{arn}");
        assert_eq!((details.backup_name(), details.backup_status()), ("nightly", &BackupStatus::Available));
        assert_eq!(details.backup_type(), &BackupType::User);
        for i in 30..40 {
            put(&client, &table, item(i, 1)).await;
        }
        put(&client, &table, item(1, 2)).await;
        client
            .delete_item()
            .table_name(&table)
            .key("pk", AttributeValue::S("p0".into()))
            .key("sk", AttributeValue::N("0".into()))
            .send()
            .await
            .unwrap();

        // Described and listed with its table as it was.
        let described = client.describe_backup().backup_arn(&arn).send().await.expect("describe backup");
        let description = described.backup_description().unwrap();
        let source = description.source_table_details().unwrap();
        assert_eq!((source.table_name(), source.item_count()), (table.as_str(), Some(30)), "{store:?}");
        assert!(source.table_size_bytes().is_some_and(|bytes| bytes > 0));
        let features = description.source_table_feature_details().unwrap();
        assert_eq!(features.global_secondary_indexes()[0].index_name(), Some("byKind"));
        assert_eq!(features.local_secondary_indexes()[0].index_name(), Some("byScore"));
        let second = client.create_backup().table_name(&table).backup_name("later").send().await.unwrap();
        let second_arn = second.backup_details().unwrap().backup_arn().to_string();
        let listed = client.list_backups().table_name(&table).send().await.unwrap();
        let arns: Vec<&str> = listed.backup_summaries().iter().filter_map(|b| b.backup_arn()).collect();
        assert_eq!(arns, [arn.as_str(), second_arn.as_str()]);
        let first_page = client.list_backups().table_name(&table).limit(1).send().await.unwrap();
        assert_eq!(first_page.last_evaluated_backup_arn(), Some(arn.as_str()));
        let next = client.list_backups().table_name(&table).exclusive_start_backup_arn(&arn).send().await.unwrap();
        assert_eq!(next.backup_summaries()[0].backup_arn(), Some(second_arn.as_str()));
        assert_eq!(next.last_evaluated_backup_arn(), None);
        let before_any = aws_sdk_dynamodb::primitives::DateTime::from_secs(1_000_000_000);
        let none = client.list_backups().table_name(&table).time_range_upper_bound(before_any).send().await.unwrap();
        assert!(none.backup_summaries().is_empty());
        client.delete_backup().backup_arn(&second_arn).send().await.unwrap();

        // Restored: CREATING until its indexes are filled, then exactly the backup's items, in
        // the table and through both indexes.
        let restored = unique("orders-restored");
        let answer =
            client.restore_table_from_backup().target_table_name(&restored).backup_arn(&arn).send().await.unwrap();
        let answered = answer.table_description().unwrap();
        assert_eq!(answered.table_status(), Some(&TableStatus::Creating));
        assert_eq!(answered.restore_summary().map(|r| r.restore_in_progress()), Some(true));
        let restored_table = active(&client, &restored).await;
        let summary = restored_table.restore_summary().unwrap();
        assert_eq!(summary.source_backup_arn(), Some(arn.as_str()));
        assert!(!summary.restore_in_progress());
        assert_eq!(scan_all(&client, &restored, None).await, at_backup, "{store:?}");
        assert_eq!(scan_all(&client, &restored, Some("byKind")).await, at_backup);
        assert_eq!(scan_all(&client, &restored, Some("byScore")).await, at_backup);
        let evens = client
            .query()
            .table_name(&restored)
            .index_name("byKind")
            .key_condition_expression("kind = :k")
            .expression_attribute_values(":k", AttributeValue::S("even".into()))
            .send()
            .await
            .unwrap();
        assert_eq!(evens.count(), 15);

        // DynamoDB's errors, each changing nothing.
        let taken = client.restore_table_from_backup().target_table_name(&restored).backup_arn(&arn).send().await;
        let taken = taken.unwrap_err();
        assert_eq!(taken.code(), Some("TableAlreadyExistsException"));
        assert_eq!(taken.message(), Some(format!("Table already exists: {restored}").as_str()));
        let bogus = format!("{arn}0");
        let missing = client.describe_backup().backup_arn(&bogus).send().await.unwrap_err();
        assert_eq!(missing.code(), Some("BackupNotFoundException"));
        assert_eq!(missing.message(), Some(format!("Backup not found: {bogus}").as_str()));
        let no_table = client.create_backup().table_name("no-such-table").backup_name("b123").send().await.unwrap_err();
        assert_eq!(no_table.code(), Some("TableNotFoundException"));
        assert_eq!(no_table.message(), Some("Table not found: no-such-table"));
        let bad_name = client.create_backup().table_name(&table).backup_name("a b").send().await.unwrap_err();
        assert_eq!(bad_name.code(), Some("ValidationException"));

        // The backup outlives its table, and restores with overrides: provisioned, without the
        // global index.
        client.delete_table().table_name(&table).send().await.unwrap();
        let lean = unique("orders-lean");
        client
            .restore_table_from_backup()
            .target_table_name(&lean)
            .backup_arn(&arn)
            .billing_mode_override(BillingMode::Provisioned)
            .provisioned_throughput_override(
                ProvisionedThroughput::builder().read_capacity_units(4).write_capacity_units(2).build().unwrap(),
            )
            .set_global_secondary_index_override(Some(Vec::new()))
            .send()
            .await
            .expect("restore with overrides");
        let lean_table = active(&client, &lean).await;
        assert!(lean_table.global_secondary_indexes().is_empty());
        assert_eq!(lean_table.local_secondary_indexes().len(), 1);
        assert_eq!(lean_table.provisioned_throughput().and_then(|p| p.read_capacity_units()), Some(4));
        assert_eq!(scan_all(&client, &lean, None).await, at_backup);

        // Deleted, it is gone.
        let deleted = client.delete_backup().backup_arn(&arn).send().await.unwrap();
        let status = deleted.backup_description().and_then(|d| d.backup_details()).map(|d| d.backup_status().clone());
        assert_eq!(status, Some(BackupStatus::Deleted));
        let gone = client.restore_table_from_backup().target_table_name(unique("never")).backup_arn(&arn).send().await;
        assert_eq!(gone.unwrap_err().code(), Some("BackupNotFoundException"));
        for name in [&restored, &lean] {
            client.delete_table().table_name(name).send().await.unwrap();
        }
    }
}

/// `length` hexadecimal digits no store compresses away.
fn noise(length: usize) -> String {
    let mut state = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    let mut text = String::with_capacity(length + 16);
    while text.len() < length {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        text.push_str(&format!("{state:016x}"));
    }
    text.truncate(length);
    text
}

/// A backup and a restore copy the table in one statement, which takes as long as the table is
/// large: PostgreSQL's per-statement limit (`--storage-timeout-ms`) must not cut it short.
#[tokio::test(flavor = "multi_thread")]
async fn a_backup_takes_as_long_as_its_table_needs() {
    for store in stores() {
        let server = Server::start_with(&store, &["--storage-timeout-ms", "100", "--slow-request-ms", "50"]);
        let client = server.client();
        let table = support::create_hash_table(&client, "large", "pk").await;
        let writers = (0..8).map(|writer| {
            let (client, table) = (client.clone(), table.clone());
            tokio::spawn(async move {
                for batch in 0..50 {
                    let writes = (0..25).map(|i| {
                        let item = HashMap::from([
                            ("pk".to_string(), AttributeValue::S(format!("{writer}-{batch}-{i}"))),
                            ("padding".to_string(), AttributeValue::S(noise(8_000))),
                        ]);
                        let put = aws_sdk_dynamodb::types::PutRequest::builder().set_item(Some(item)).build().unwrap();
                        aws_sdk_dynamodb::types::WriteRequest::builder().put_request(put).build()
                    });
                    let written = client.batch_write_item().request_items(&table, writes.collect()).send().await;
                    assert!(written.expect("batch").unprocessed_items().is_none_or(|u| u.is_empty()));
                }
            })
        });
        for writer in writers.collect::<Vec<_>>() {
            writer.await.unwrap();
        }
        let backup = client.create_backup().table_name(&table).backup_name("large").send().await;
        let arn = backup.expect("a backup of 10,000 items of 8 KB").backup_details().unwrap().backup_arn().to_string();
        let restored = unique("large-restored");
        client.restore_table_from_backup().target_table_name(&restored).backup_arn(&arn).send().await.expect("restore");
        assert_eq!(active(&client, &restored).await.item_count(), Some(10_000), "{store:?}");
        client.delete_backup().backup_arn(&arn).send().await.unwrap();
        for name in [&table, &restored] {
            client.delete_table().table_name(name).send().await.unwrap();
        }
    }
}
