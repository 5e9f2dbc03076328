//! Exports and imports end to end, as an operator uses them: the real binary on both stores, the
//! AWS SDK for Rust, files in AWS's layout on disk. Back up, write more, restore from the backup
//! and to a moment between two writes, export that moment, import the export into a new table,
//! and compare each table with what it must hold; malformed input counted and skipped; an export
//! left by a stopped server done by the next; incremental exports of a window; the command line.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::primitives::{Blob, DateTime};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ExportFormat, ExportStatus, GlobalSecondaryIndex, ImportStatus,
    InputCompressionType, InputFormat, KeySchemaElement, KeyType, PointInTimeRecoverySpecification, Projection,
    ProjectionType, S3BucketSource, ScalarAttributeType, TableCreationParameters, TableStatus,
};
use dynabox::storage::{postgres, sqlite};
use dynabox::transfers::{Transfers, Unwatched};
use dynabox_handler::auth::LOCAL_ACCOUNT_ID;
use dynabox_handler::catalog::{ExportJob, IncrementalWindow, JobStatus};
use dynabox_transfer::destination::{Destination, LocalDirectory};
use serde_json::Value;
use support::{Server, Store, contents, stores, temp_dir, unique};

type Item = HashMap<String, AttributeValue>;

const BUCKET: &str = "exports";

fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Item `i` at `version`: every kind of attribute an export must carry through.
fn item(i: u32, version: u32) -> Item {
    HashMap::from([
        ("id".to_string(), AttributeValue::S(format!("item-{i:03}"))),
        ("kind".to_string(), AttributeValue::S(if i.is_multiple_of(2) { "even" } else { "odd" }.into())),
        ("version".to_string(), AttributeValue::N(version.to_string())),
        ("ratio".to_string(), AttributeValue::N(format!("0.0{i}25"))),
        ("raw".to_string(), AttributeValue::B(Blob::new(vec![0, 1, i as u8, 255]))),
        ("tags".to_string(), AttributeValue::Ss(vec!["a".into(), format!("t{i}")])),
        (
            "nested".to_string(),
            AttributeValue::M(HashMap::from([(
                "list".to_string(),
                AttributeValue::L(vec![
                    AttributeValue::Bool(true),
                    AttributeValue::Null(true),
                    AttributeValue::N("1".into()),
                ]),
            )])),
        ),
    ])
}

fn key(name: &str, key_type: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder().attribute_name(name).key_type(key_type).build().unwrap()
}

fn definition(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build().unwrap()
}

fn by_kind() -> GlobalSecondaryIndex {
    let projection = Projection::builder().projection_type(ProjectionType::All).build();
    GlobalSecondaryIndex::builder()
        .index_name("byKind")
        .key_schema(key("kind", KeyType::Hash))
        .projection(projection)
        .build()
        .unwrap()
}

async fn create_table(client: &Client, name: &str) {
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("id", KeyType::Hash))
        .attribute_definitions(definition("id"))
        .attribute_definitions(definition("kind"))
        .global_secondary_indexes(by_kind())
        .send()
        .await
        .expect("create table");
    let specification =
        PointInTimeRecoverySpecification::builder().point_in_time_recovery_enabled(true).build().unwrap();
    let enable =
        client.update_continuous_backups().table_name(name).point_in_time_recovery_specification(specification);
    enable.send().await.expect("enable point-in-time recovery");
}

async fn put(client: &Client, table: &str, item: Item) {
    client.put_item().table_name(table).set_item(Some(item)).send().await.expect("put");
}

/// Waits until the table and every index of it are ACTIVE.
async fn active(client: &Client, table: &str) {
    let started = Instant::now();
    loop {
        let described = client.describe_table().table_name(table).send().await.expect("describe");
        let table_description = described.table().unwrap();
        let indexes_active = table_description
            .global_secondary_indexes()
            .iter()
            .all(|index| index.index_status() == Some(&aws_sdk_dynamodb::types::IndexStatus::Active));
        if table_description.table_status() == Some(&TableStatus::Active) && indexes_active {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{table} is still not ACTIVE");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn table_arn(client: &Client, table: &str) -> String {
    let described = client.describe_table().table_name(table).send().await.unwrap();
    described.table().unwrap().table_arn().unwrap().to_string()
}

/// Waits for the export to end; its description.
async fn exported(client: &Client, arn: &str) -> aws_sdk_dynamodb::types::ExportDescription {
    let started = Instant::now();
    loop {
        let described = client.describe_export().export_arn(arn).send().await.expect("describe export");
        let export = described.export_description().unwrap().clone();
        if export.export_status() != Some(&ExportStatus::InProgress) {
            return export;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "{arn} is still in progress");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for the import to end; its description.
async fn imported(client: &Client, arn: &str) -> aws_sdk_dynamodb::types::ImportTableDescription {
    let started = Instant::now();
    loop {
        let described = client.describe_import().import_arn(arn).send().await.expect("describe import");
        let import = described.import_table_description().unwrap().clone();
        if import.import_status() != Some(&ImportStatus::InProgress) {
            return import;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "{arn} is still in progress");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The TableCreationParameters of a table keyed by `id` (S), with the index `byKind` if `indexed`.
fn creation(name: &str, indexed: bool) -> TableCreationParameters {
    let mut parameters = TableCreationParameters::builder()
        .table_name(name)
        .key_schema(key("id", KeyType::Hash))
        .attribute_definitions(definition("id"))
        .billing_mode(BillingMode::PayPerRequest);
    if indexed {
        parameters = parameters.attribute_definitions(definition("kind")).global_secondary_indexes(by_kind());
    }
    parameters.build().unwrap()
}

/// ImportTable of the files under `prefix` of `bucket` into the table `parameters` makes.
fn import_request(
    client: &Client,
    (bucket, prefix): (&str, &str),
    format: InputFormat,
    compression: InputCompressionType,
    parameters: TableCreationParameters,
) -> aws_sdk_dynamodb::operation::import_table::builders::ImportTableFluentBuilder {
    let source = S3BucketSource::builder().s3_bucket(bucket).s3_key_prefix(prefix).build().unwrap();
    client
        .import_table()
        .s3_bucket_source(source)
        .input_format(format)
        .input_compression_type(compression)
        .table_creation_parameters(parameters)
}

/// Imports as [`import_request`] says and waits for the import to end; its ARN and description.
async fn import_and_wait(
    client: &Client,
    source: (&str, &str),
    format: InputFormat,
    compression: InputCompressionType,
    parameters: TableCreationParameters,
) -> (String, aws_sdk_dynamodb::types::ImportTableDescription) {
    let started = import_request(client, source, format, compression, parameters).send().await.expect("import");
    let arn = started.import_table_description().unwrap().import_arn().unwrap().to_string();
    let ended = imported(client, &arn).await;
    (arn, ended)
}

/// The items of an export's data files, read as AWS's readers read them: a JSON line
/// `{"Item": ...}` each, gzipped.
fn export_items(export_dir: &Path) -> Vec<Value> {
    let manifest: Vec<Value> = std::fs::read_to_string(export_dir.join("manifest-files.json"))
        .expect("manifest-files.json")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a manifest line"))
        .collect();
    let mut items = Vec::new();
    let bucket = export_dir.ancestors().find(|p| p.file_name().is_some_and(|n| n == BUCKET)).expect("the bucket");
    for file in &manifest {
        let path = bucket.join(file["dataFileS3Key"].as_str().unwrap());
        let mut text = String::new();
        use std::io::Read;
        flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap()).read_to_string(&mut text).unwrap();
        let lines: Vec<Value> =
            text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["Item"].clone()).collect();
        assert_eq!(lines.len() as u64, file["itemCount"].as_u64().unwrap(), "{}", path.display());
        items.extend(lines);
    }
    items.sort_by(|a, b| a["id"]["S"].as_str().cmp(&b["id"]["S"].as_str()));
    items
}

/// An item as DynamoDB JSON, as an export writes it.
fn as_json(item: &Item) -> Value {
    fn value(v: &AttributeValue) -> Value {
        match v {
            AttributeValue::S(s) => serde_json::json!({"S": s}),
            AttributeValue::N(n) => serde_json::json!({"N": n}),
            AttributeValue::B(b) => {
                use base64::Engine;
                serde_json::json!({"B": base64::engine::general_purpose::STANDARD.encode(b.as_ref())})
            }
            AttributeValue::Ss(s) => serde_json::json!({"SS": s}),
            AttributeValue::Bool(b) => serde_json::json!({"BOOL": b}),
            AttributeValue::Null(_) => serde_json::json!({"NULL": true}),
            AttributeValue::L(l) => serde_json::json!({"L": l.iter().map(value).collect::<Vec<_>>()}),
            AttributeValue::M(m) => {
                serde_json::json!({"M": m.iter().map(|(k, v)| (k.clone(), value(v))).collect::<serde_json::Map<_, _>>()})
            }
            other => panic!("not used here: {other:?}"),
        }
    }
    Value::Object(item.iter().map(|(k, v)| (k.clone(), value(v))).collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_backs_up_restores_exports_and_imports() {
    for store in stores() {
        let exports = support::export_dir();
        let server = Server::start_with(&store, &["--export-dir", exports.to_str().unwrap()]);
        let client = server.client();
        let table = unique("orders");
        create_table(&client, &table).await;
        for i in 0..20 {
            put(&client, &table, item(i, 1)).await;
        }
        let backup = client.create_backup().table_name(&table).backup_name("before").send().await.unwrap();
        let backup_arn = backup.backup_details().unwrap().backup_arn().to_string();
        let at_backup = contents(&client, &table, None).await;

        // Write more: a moment between two writes is what the export and a restore are of.
        for i in 10..25 {
            put(&client, &table, item(i, 2)).await;
        }
        client.delete_item().table_name(&table).key("id", AttributeValue::S("item-003".into())).send().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let moment = now_millis();
        let at_moment = contents(&client, &table, None).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        put(&client, &table, item(99, 3)).await;
        put(&client, &table, item(0, 3)).await;

        // Restores: from the backup, and to the moment.
        let from_backup = unique("from-backup");
        client
            .restore_table_from_backup()
            .backup_arn(&backup_arn)
            .target_table_name(&from_backup)
            .send()
            .await
            .unwrap();
        active(&client, &from_backup).await;
        assert_eq!(contents(&client, &from_backup, None).await, at_backup);
        let to_moment = unique("to-moment");
        let restore = client.restore_table_to_point_in_time().source_table_name(&table).target_table_name(&to_moment);
        restore.restore_date_time(DateTime::from_millis(moment)).send().await.unwrap();
        active(&client, &to_moment).await;
        assert_eq!(contents(&client, &to_moment, None).await, at_moment);

        // Export the moment, in AWS's layout.
        let arn = table_arn(&client, &table).await;
        let export = client
            .export_table_to_point_in_time()
            .table_arn(&arn)
            .s3_bucket(BUCKET)
            .s3_prefix("nightly/orders")
            .export_time(DateTime::from_millis(moment))
            .export_format(ExportFormat::DynamodbJson)
            .send()
            .await
            .expect("export");
        let started = export.export_description().unwrap();
        assert_eq!(started.export_status(), Some(&ExportStatus::InProgress));
        let export_arn = started.export_arn().unwrap().to_string();
        let export = exported(&client, &export_arn).await;
        assert_eq!(export.export_status(), Some(&ExportStatus::Completed), "{export:?}");
        assert_eq!(export.item_count(), Some(at_moment.len() as i64));
        let export_id = export_arn.rsplit('/').next().unwrap();
        let export_dir = exports.join(BUCKET).join("nightly/orders/AWSDynamoDB").join(export_id);
        assert_eq!(
            export.export_manifest(),
            Some(format!("nightly/orders/AWSDynamoDB/{export_id}/manifest-summary.json").as_str())
        );
        for file in
            ["_started", "manifest-summary.json", "manifest-summary.md5", "manifest-files.json", "manifest-files.md5"]
        {
            assert!(export_dir.join(file).is_file(), "{file} in {}", export_dir.display());
        }
        let summary: Value =
            serde_json::from_slice(&std::fs::read(export_dir.join("manifest-summary.json")).unwrap()).unwrap();
        assert_eq!(summary["itemCount"], at_moment.len());
        assert_eq!(summary["exportArn"], export_arn.as_str());
        assert_eq!(summary["outputFormat"], "DYNAMODB_JSON");
        assert_eq!(export_items(&export_dir), at_moment.iter().map(as_json).collect::<Vec<_>>());
        let listed = client.list_exports().table_arn(&arn).send().await.unwrap();
        assert!(listed.export_summaries().iter().any(|s| s.export_arn() == Some(export_arn.as_str())));

        // Import the export into a new table with the index, and compare.
        let copy = unique("imported");
        let prefix = format!("nightly/orders/AWSDynamoDB/{export_id}");
        let started = import_request(
            &client,
            (BUCKET, &prefix),
            InputFormat::DynamodbJson,
            InputCompressionType::Gzip,
            creation(&copy, true),
        );
        let started = started.send().await.expect("import");
        let import_arn = started.import_table_description().unwrap().import_arn().unwrap().to_string();
        let described = client.describe_table().table_name(&copy).send().await.unwrap();
        assert_eq!(described.table().unwrap().table_status(), Some(&TableStatus::Creating));
        let import = imported(&client, &import_arn).await;
        assert_eq!(import.import_status(), Some(&ImportStatus::Completed), "{import:?}");
        assert_eq!(import.imported_item_count(), at_moment.len() as i64);
        assert_eq!(import.error_count(), 0);
        active(&client, &copy).await;
        assert_eq!(contents(&client, &copy, None).await, at_moment);
        assert_eq!(contents(&client, &copy, Some("byKind")).await, at_moment);
        let listed = client.list_imports().table_arn(table_arn(&client, &copy).await).send().await.unwrap();
        assert!(listed.import_summary_list().iter().any(|s| s.import_arn() == Some(import_arn.as_str())));

        // DynamoDB's errors.
        let missing = format!("{arn}/export/01700000000000-deadbeef");
        let refused = client.describe_export().export_arn(&missing).send().await.unwrap_err();
        assert_eq!(refused.code(), Some("ExportNotFoundException"));
        let taken = import_request(
            &client,
            (BUCKET, "x"),
            InputFormat::DynamodbJson,
            InputCompressionType::None,
            creation(&table, false),
        );
        let refused = taken.send().await.unwrap_err();
        assert_eq!(refused.code(), Some("ResourceInUseException"));
        let early = client.export_table_to_point_in_time().table_arn(&arn).s3_bucket(BUCKET);
        let refused = early.export_time(DateTime::from_millis(moment - 3_600_000)).send().await.unwrap_err();
        assert_eq!(refused.code(), Some("InvalidExportTimeException"));
    }
}

/// Writes `lines` as the file `name` of the bucket directory under `dir`.
fn write_file(dir: &Path, name: &str, lines: &[String]) {
    let path = dir.join(BUCKET).join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_line_is_counted_and_skipped() {
    for store in stores() {
        let exports = support::export_dir();
        let (load, csv, nothing) = (unique("load"), unique("csv"), unique("nothing"));
        let good = |i: u32| format!(r#"{{"Item":{{"id":{{"S":"g{i}"}},"n":{{"N":"{i}"}}}}}}"#);
        let mut lines: Vec<String> = (0..10).map(good).collect();
        lines.insert(3, "{not json".into());
        lines.insert(5, r#"{"Item":{"other":{"S":"no key"}}}"#.into());
        lines.insert(7, r#"{"Item":{"id":{"N":"1"}}}"#.into());
        lines.insert(9, r#"{"Item":{"id":{"S":"bad"},"x":{"Q":"unknown type"}}}"#.into());
        write_file(exports, &format!("{load}/part-1.json"), &lines);
        write_file(exports, &format!("{load}/part-2.json"), &[good(10), good(11)]);
        let server = Server::start_with(&store, &["--export-dir", exports.to_str().unwrap()]);
        let client = server.client();
        let table = unique("loaded");
        let (_, import) = import_and_wait(
            &client,
            (BUCKET, &load),
            InputFormat::DynamodbJson,
            InputCompressionType::None,
            creation(&table, false),
        )
        .await;
        assert_eq!(import.import_status(), Some(&ImportStatus::Completed), "{import:?}");
        assert_eq!((import.processed_item_count(), import.imported_item_count(), import.error_count()), (16, 12, 4));
        active(&client, &table).await;
        let ids: Vec<String> =
            contents(&client, &table, None).await.iter().map(|i| i["id"].as_s().unwrap().clone()).collect();
        let mut expected: Vec<String> = (0..12).map(|i| format!("g{i}")).collect();
        expected.sort();
        assert_eq!(ids, expected);

        // CSV: the key takes its defined type, every other column is a string.
        write_file(
            exports,
            &format!("{csv}/rows.csv"),
            &["id,name,count".into(), "a,Ann,3".into(), "b,\"B, Jr.\",4".into()],
        );
        let csv_table = unique("csv");
        let (_, import) = import_and_wait(
            &client,
            (BUCKET, &csv),
            InputFormat::Csv,
            InputCompressionType::None,
            creation(&csv_table, false),
        )
        .await;
        assert_eq!(import.imported_item_count(), 2, "{import:?}");
        let rows = contents(&client, &csv_table, None).await;
        assert_eq!(rows[1]["name"], AttributeValue::S("B, Jr.".into()));
        assert_eq!(rows[1]["count"], AttributeValue::S("4".into()));

        // Nothing under the prefix: the import fails, and its table goes.
        let empty = unique("empty");
        let nothing = (BUCKET, nothing.as_str());
        let (_, import) = import_and_wait(
            &client,
            nothing,
            InputFormat::DynamodbJson,
            InputCompressionType::None,
            creation(&empty, false),
        )
        .await;
        assert_eq!(import.import_status(), Some(&ImportStatus::Failed));
        assert!(import.failure_code().is_some());
        let gone = client.describe_table().table_name(&empty).send().await.unwrap_err();
        assert_eq!(gone.code(), Some("ResourceNotFoundException"));
    }
}

/// A server stopped hard while an export is in progress: the next server on the store finds it
/// and does it, under the same ARN, once the stopped one's claim has run out.
#[tokio::test(flavor = "multi_thread")]
async fn an_export_left_by_a_stopped_server_is_done_by_the_next() {
    for store in stores() {
        let exports = support::export_dir();
        let flags = ["--export-dir", exports.to_str().unwrap()];
        let server = Server::start_with(&store, &flags);
        let client = server.client();
        let table = unique("big");
        create_table(&client, &table).await;
        for i in 0..300 {
            put(&client, &table, item(i, 1)).await;
        }
        let arn = table_arn(&client, &table).await;
        let export = client.export_table_to_point_in_time().table_arn(&arn).s3_bucket(BUCKET).send().await.unwrap();
        let export_arn = export.export_description().unwrap().export_arn().unwrap().to_string();
        drop(server); // SIGKILL: whatever it was doing stops there.
        let server = Server::start_with(&store, &flags);
        let export = exported(&server.client(), &export_arn).await;
        assert_eq!(export.export_status(), Some(&ExportStatus::Completed), "{export:?}");
        assert_eq!(export.item_count(), Some(300));
        let export_dir = exports.join(BUCKET).join("AWSDynamoDB").join(export_arn.rsplit('/').next().unwrap());
        assert_eq!(export_items(&export_dir).len(), 300);
    }
}

/// `dynabox export` and `dynabox import` against the store a server runs on, in Ion (the
/// import tells the format from the files' names).
#[tokio::test(flavor = "multi_thread")]
async fn the_command_line_exports_and_imports() {
    for store in stores() {
        let server = Server::start(&store);
        let client = server.client();
        let table = unique("cli");
        create_table(&client, &table).await;
        for i in 0..50 {
            put(&client, &table, item(i, 1)).await;
        }
        let expected = contents(&client, &table, None).await;
        if let Store::Embedded(_) = store {
            // The embedded store is one process's: the command runs once the server is gone.
            assert!(server.terminate());
        }
        let dir = temp_dir("cli-export");
        let run = |args: &[&str]| {
            let output = Command::new(env!("CARGO_BIN_EXE_dynabox"))
                .args(args)
                .args(store.flags())
                .env_remove("DATABASE_URL")
                .output()
                .unwrap();
            let (stdout, stderr) = (
                String::from_utf8_lossy(&output.stdout).to_string(),
                String::from_utf8_lossy(&output.stderr).to_string(),
            );
            assert!(output.status.success(), "{args:?}: {stdout} {stderr}");
            (stdout, stderr)
        };
        let (stdout, stderr) = run(&["export", &table, dir.to_str().unwrap(), "--format", "ion"]);
        assert!(stdout.starts_with("exported 50 items"), "{stdout}");
        assert!(stderr.contains("exported 50 items"), "plain progress lines off a terminal: {stderr}");
        let copy = unique("cli-copy");
        let (stdout, _) = run(&["import", dir.to_str().unwrap(), &copy, "--partition-key", "id:S"]);
        assert!(stdout.starts_with("imported 50 items"), "{stdout}");
        let server = Server::start(&store);
        let client = server.client();
        active(&client, &copy).await;
        assert_eq!(contents(&client, &copy, None).await, expected);
    }
}

/// The store a server ran on, opened by this process.
async fn open(store: &Store) -> Arc<dyn dynabox::storage::Store> {
    let timeout = Duration::from_secs(5);
    match store {
        Store::Embedded(dir) => Arc::new(sqlite::open(Some(dir), timeout).await.unwrap()),
        Store::Postgres(url) => Arc::new(postgres::connect(url, 2, timeout).await.unwrap()),
        Store::InMemory => unreachable!("an in-memory store is not shared"),
    }
}

/// An incremental export holds each key its window changed, once, with the images at the
/// window's ends. The API asks for windows of 15 minutes at least, so the window's writes are
/// made through the server and the export is run by the worker's own code on the same store.
#[tokio::test(flavor = "multi_thread")]
async fn an_incremental_export_holds_each_change_of_its_window() {
    for store in stores() {
        let server = Server::start(&store);
        let client = server.client();
        let table = unique("changes");
        create_table(&client, &table).await;
        for i in 0..3 {
            put(&client, &table, item(i, 1)).await;
        }
        let described = client.describe_table().table_name(&table).send().await.unwrap();
        let (arn, id) =
            (described.table().unwrap().table_arn().unwrap(), described.table().unwrap().table_id().unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
        let from = now_millis() as u64;
        put(&client, &table, item(0, 2)).await;
        client.delete_item().table_name(&table).key("id", AttributeValue::S("item-001".into())).send().await.unwrap();
        put(&client, &table, item(7, 1)).await;
        put(&client, &table, item(8, 1)).await;
        client.delete_item().table_name(&table).key("id", AttributeValue::S("item-008".into())).send().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let to = now_millis() as u64;
        tokio::time::sleep(Duration::from_millis(20)).await;
        put(&client, &table, item(2, 2)).await;
        if let Store::Embedded(_) = store {
            assert!(server.terminate());
        }

        let backend = open(&store).await;
        let dir = temp_dir("incremental");
        let local = LocalDirectory::new(&dir).unwrap();
        let transfers = Transfers::new(backend, Destination::Local(local.clone()));
        let job = ExportJob {
            export_arn: format!("{arn}/export/01700000000000-0000abcd"),
            status: JobStatus::InProgress,
            table_name: table.clone(),
            table_arn: arn.to_string(),
            table_id: id.to_string(),
            export_time: to,
            incremental: Some(IncrementalWindow { from, to, view_type: "NEW_AND_OLD_IMAGES".into() }),
            export_format: "DYNAMODB_JSON".into(),
            s3_bucket: BUCKET.into(),
            s3_bucket_owner: None,
            s3_prefix: None,
            s3_sse_algorithm: None,
            s3_sse_kms_key_id: None,
            client_token: None,
            request_digest: String::new(),
            start_time: to,
            end_time: None,
            item_count: None,
            billed_size_bytes: None,
            export_manifest: None,
            failure: None,
            lease: None,
        };
        let bucket = local.bucket(BUCKET).unwrap();
        let done = transfers.export(LOCAL_ACCOUNT_ID, job, bucket, None, &Unwatched).await.unwrap();
        assert_eq!((done.status, done.item_count), (JobStatus::Completed, Some(3)));

        // Each line: the key, its images at the window's ends, when it was written.
        let export_dir = dir.join(BUCKET).join("AWSDynamoDB/01700000000000-0000abcd");
        let mut changes = Vec::new();
        for file in std::fs::read_to_string(export_dir.join("manifest-files.json")).unwrap().lines() {
            let file: Value = serde_json::from_str(file).unwrap();
            let mut text = String::new();
            let data = std::fs::File::open(dir.join(BUCKET).join(file["dataFileS3Key"].as_str().unwrap())).unwrap();
            use std::io::Read;
            flate2::read::GzDecoder::new(data).read_to_string(&mut text).unwrap();
            changes.extend(text.lines().map(|line| serde_json::from_str::<Value>(line).unwrap()));
        }
        changes.sort_by(|a, b| a["Keys"]["id"]["S"].as_str().cmp(&b["Keys"]["id"]["S"].as_str()));
        let ids: Vec<&str> = changes.iter().map(|c| c["Keys"]["id"]["S"].as_str().unwrap()).collect();
        assert_eq!(ids, ["item-000", "item-001", "item-007"], "item-008 came and went, item-002 changed later");
        assert_eq!(changes[0]["NewImage"], as_json(&item(0, 2)));
        assert_eq!(changes[0]["OldImage"], as_json(&item(0, 1)));
        assert_eq!(changes[1].get("NewImage"), None, "deleted");
        assert_eq!(changes[1]["OldImage"], as_json(&item(1, 1)));
        assert_eq!(changes[2]["NewImage"], as_json(&item(7, 1)));
        assert_eq!(changes[2].get("OldImage"), None, "created");
        for change in &changes {
            let micros: u64 = change["Metadata"]["WriteTimestampMicros"]["N"].as_str().unwrap().parse().unwrap();
            assert!((from * 1000..to * 1000).contains(&micros), "{change}");
        }
    }
}

/// A fresh database `name` on the server of `url`; its URL.
async fn database_of_its_own(url: &str, name: &str) -> String {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.unwrap();
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    let (server, _) = url.rsplit_once('/').expect("a database in the URL");
    format!("{server}/{name}")
}

/// With `--s3-endpoint`, buckets are an S3-compatible store's (moto's here): an export goes there
/// and imports back from there.
#[tokio::test(flavor = "multi_thread")]
async fn exports_and_imports_go_through_an_s3_compatible_store() {
    let home = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("moto-venv");
    let moto = tokio::task::spawn_blocking(move || dynabox_testkit::moto::start(&home)).await.unwrap();
    moto.create_bucket("ddb-exports");
    for store in stores() {
        // Servers on one database take up each other's jobs, and the other tests' servers name
        // other buckets: on PostgreSQL this one gets a database of its own.
        let store = match store {
            Store::Postgres(url) => Store::Postgres(database_of_its_own(&url, "dynabox_test_s3").await),
            store => store,
        };
        let endpoint = moto.endpoint();
        let flags = ["--s3-endpoint", &endpoint, "--s3-access-key-id", "testing", "--s3-secret-access-key", "testing"];
        let server = Server::start_with(&store, &flags);
        let client = server.client();
        let table = unique("s3");
        create_table(&client, &table).await;
        for i in 0..30 {
            put(&client, &table, item(i, 1)).await;
        }
        let expected = contents(&client, &table, None).await;
        let arn = table_arn(&client, &table).await;
        let export = client.export_table_to_point_in_time().table_arn(&arn).s3_bucket("ddb-exports").s3_prefix(&table);
        let export_arn = export.send().await.unwrap().export_description().unwrap().export_arn().unwrap().to_string();
        let export = exported(&client, &export_arn).await;
        assert_eq!(export.export_status(), Some(&ExportStatus::Completed), "{export:?}\n{}", moto.log());
        assert_eq!(export.item_count(), Some(30));

        let copy = unique("s3-copy");
        let prefix = format!("{table}/AWSDynamoDB/{}/data", export_arn.rsplit('/').next().unwrap());
        let source = ("ddb-exports", prefix.as_str());
        let (_, import) = import_and_wait(
            &client,
            source,
            InputFormat::DynamodbJson,
            InputCompressionType::Gzip,
            creation(&copy, false),
        )
        .await;
        assert_eq!((import.imported_item_count(), import.error_count()), (30, 0), "{import:?}");
        active(&client, &copy).await;
        assert_eq!(contents(&client, &copy, None).await, expected);

        // A bucket the store does not have: the export fails and says so.
        let missing = client.export_table_to_point_in_time().table_arn(&arn).s3_bucket("no-such-bucket");
        let missing_arn = missing.send().await.unwrap().export_description().unwrap().export_arn().unwrap().to_string();
        let failed = exported(&client, &missing_arn).await;
        assert_eq!(failed.export_status(), Some(&ExportStatus::Failed));
        assert!(failed.failure_message().is_some_and(|m| !m.is_empty()), "{failed:?}");
    }
}

/// Under `--auth sigv4` each account has buckets of its own below `--export-dir`: what one
/// exports, another cannot import by naming the same bucket.
#[tokio::test(flavor = "multi_thread")]
async fn accounts_do_not_share_local_buckets() {
    for store in stores() {
        let (exports, keys) = (support::export_dir(), temp_dir("keys"));
        let key_file = keys.join("secret.key");
        let (alice, alice_secret) = support::new_account(&store, &key_file, "alice");
        let (bob, bob_secret) = support::new_account(&store, &key_file, "bob");
        let flags = [
            "--auth",
            "sigv4",
            "--secret-key-file",
            key_file.to_str().unwrap(),
            "--export-dir",
            exports.to_str().unwrap(),
        ];
        let server = Server::start_with(&store, &flags);
        let (alice, bob) =
            (server.client_as(&alice, &alice_secret, "us-east-1"), server.client_as(&bob, &bob_secret, "us-east-1"));
        let table = unique("private");
        create_table(&alice, &table).await;
        put(&alice, &table, item(1, 1)).await;
        let arn = table_arn(&alice, &table).await;
        let export = alice.export_table_to_point_in_time().table_arn(&arn).s3_bucket(BUCKET).s3_prefix("mine");
        let export_arn = export.send().await.unwrap().export_description().unwrap().export_arn().unwrap().to_string();
        assert_eq!(exported(&alice, &export_arn).await.export_status(), Some(&ExportStatus::Completed));
        let account_id = arn.split(':').nth(4).unwrap();
        assert!(exports.join(account_id).join(BUCKET).join("mine/AWSDynamoDB").is_dir());

        let (_, import) = import_and_wait(
            &bob,
            (BUCKET, "mine"),
            InputFormat::DynamodbJson,
            InputCompressionType::Gzip,
            creation(&unique("stolen"), false),
        )
        .await;
        assert_eq!(import.import_status(), Some(&ImportStatus::Failed), "{import:?}");
        assert_eq!(import.imported_item_count(), 0);
    }
}
