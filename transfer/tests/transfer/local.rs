//! Exports written to a local directory and read back; the directory's safety.

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::Path as FsPath;
use std::sync::Arc;

use dynabox_transfer::Item;
use dynabox_transfer::destination::{Destination, DestinationError, LocalDirectory};
use dynabox_transfer::export::{Change, ExportError, ExportFormat, ExportType, ExportViewType, ExportWriter};
use dynabox_transfer::import::{CsvOptions, InputCompressionType, InputFormat, ItemReader, ScalarAttributeType};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::json;
use tempfile::TempDir;

use crate::common::*;

fn bucket(dir: &TempDir, name: &str) -> Arc<dyn ObjectStore> {
    Destination::Local(LocalDirectory::new(dir.path()).unwrap()).bucket(name).unwrap()
}

/// Every file under `dir`, by its path relative to it.
fn files(dir: &FsPath) -> BTreeSet<String> {
    fn walk(root: &FsPath, dir: &FsPath, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.insert(path.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

fn input_format(format: ExportFormat) -> InputFormat {
    match format {
        ExportFormat::DynamoDbJson => InputFormat::DynamoDbJson,
        ExportFormat::Ion => InputFormat::Ion,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_export_of_every_type_round_trips() {
    let items = items(7, 10_000);
    for format in [ExportFormat::DynamoDbJson, ExportFormat::Ion] {
        let dir = TempDir::new().unwrap();
        let store = bucket(&dir, "exports-bucket");
        let mut spec = spec("exports-bucket", Some("daily/2024"), format, full(1_700_000_000));
        spec.max_data_file_bytes = 1 << 20;
        let mut writer = ExportWriter::start(store.clone(), spec).await.unwrap();
        for item in &items {
            writer.write_item(item).await.unwrap();
        }
        let summary = writer.finish().await.unwrap();
        assert_eq!(summary.item_count, 10_000);
        assert!(summary.data_files > 2, "{} data files", summary.data_files);
        assert!(summary.billed_size_bytes > 1_000_000);

        let checked = check_export(store.as_ref(), &summary, FULL_MEMBERS).await;
        let export_dir = "daily/2024/AWSDynamoDB/01700000000000-0a1b2c3d";
        assert_eq!(summary.manifest_summary_key, format!("{export_dir}/manifest-summary.json"));
        assert_eq!(
            checked.summary,
            json!({
                "version": "2020-06-30",
                "exportArn": format!("{TABLE_ARN}/export/01700000000000-0a1b2c3d"),
                "startTime": "2023-11-14T22:15:00.000Z",
                "endTime": checked.summary["endTime"],
                "tableArn": TABLE_ARN,
                "tableId": "2f7d3c9e-0000-4000-8000-000000000001",
                "exportTime": "2023-11-14T22:13:20.000Z",
                "s3Bucket": "exports-bucket",
                "s3Prefix": "daily/2024",
                "s3SseAlgorithm": "AES256",
                "s3SseKmsKeyId": null,
                "manifestFilesS3Key": format!("{export_dir}/manifest-files.json"),
                "billedSizeBytes": summary.billed_size_bytes,
                "itemCount": 10_000,
                "outputFormat": format.as_str(),
                "exportType": "FULL_EXPORT",
            })
        );

        // On disk: exactly AWS's objects, data files named as AWS names them, nothing staged left.
        let extension = if format == ExportFormat::Ion { ".ion.gz" } else { ".json.gz" };
        let mut expected: BTreeSet<String> =
            ["_started", "manifest-files.json", "manifest-files.md5", "manifest-summary.json", "manifest-summary.md5"]
                .iter()
                .map(|name| format!("exports-bucket/{export_dir}/{name}"))
                .collect();
        for file in &checked.files {
            let name = file.data_file_s3_key.strip_prefix(&format!("{export_dir}/data/")).unwrap();
            let stem = name.strip_suffix(extension).unwrap();
            assert!(stem.len() == 26 && stem.bytes().all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)));
            expected.insert(format!("exports-bucket/{}", file.data_file_s3_key));
        }
        assert_eq!(files(dir.path()), expected);

        let back = read_items(&store, &checked.files, input_format(format)).await;
        assert_eq!(back.len(), items.len());
        for (back, item) in back.iter().zip(&items) {
            assert_eq!(back, item);
        }
    }
}

#[tokio::test]
async fn an_export_of_nothing_has_one_empty_data_file() {
    let dir = TempDir::new().unwrap();
    let store = bucket(&dir, "empty-bucket");
    let writer = ExportWriter::start(store.clone(), spec("empty-bucket", None, ExportFormat::DynamoDbJson, full(5)))
        .await
        .unwrap();
    let summary = writer.finish().await.unwrap();
    assert_eq!((summary.item_count, summary.data_files, summary.billed_size_bytes), (0, 1, 0));
    let checked = check_export(store.as_ref(), &summary, FULL_MEMBERS).await;
    assert_eq!(checked.summary["s3Prefix"], json!(null));
    assert_eq!(checked.summary["itemCount"], json!(0));
    assert!(checked.files[0].data_file_s3_key.starts_with("AWSDynamoDB/01700000000000-0a1b2c3d/data/"));
    assert!(gunzip(&get(store.as_ref(), &checked.files[0].data_file_s3_key).await).is_empty());
}

fn changes() -> Vec<Change> {
    let mut rng = Rng::new(11);
    let key = |id: &str| Item::from_iter([("id".to_owned(), json!({ "S": id }))]);
    let with_key = |id: &str, mut item: Item| {
        item.insert("id".into(), json!({ "S": id }));
        item
    };
    let created = with_key("created", item(&mut rng, 1));
    let (before, after) = (with_key("updated", item(&mut rng, 2)), with_key("updated", item(&mut rng, 3)));
    let deleted = with_key("deleted", item(&mut rng, 4));
    vec![
        Change {
            write_timestamp_micros: 1_700_000_000_000_001,
            keys: key("created"),
            new_image: Some(created),
            old_image: None,
        },
        Change {
            write_timestamp_micros: 1_700_000_000_000_002,
            keys: key("updated"),
            new_image: Some(after),
            old_image: Some(before),
        },
        Change {
            write_timestamp_micros: 1_700_000_000_000_003,
            keys: key("deleted"),
            new_image: None,
            old_image: Some(deleted),
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_export_round_trips() {
    let changes = changes();
    for format in [ExportFormat::DynamoDbJson, ExportFormat::Ion] {
        for view_type in [ExportViewType::NewImage, ExportViewType::NewAndOldImages] {
            let dir = TempDir::new().unwrap();
            let store = bucket(&dir, "changes");
            let incremental =
                ExportType::Incremental { from_time: time(1_699_990_000), to_time: time(1_700_000_000), view_type };
            let mut writer =
                ExportWriter::start(store.clone(), spec("changes", Some("cdc"), format, incremental)).await.unwrap();
            for change in &changes {
                writer.write_change(change).await.unwrap();
            }
            let summary = writer.finish().await.unwrap();
            let checked = check_export(store.as_ref(), &summary, INCREMENTAL_MEMBERS).await;
            assert_eq!(checked.summary["version"], "2023-08-01");
            assert_eq!(checked.summary["exportFromTime"], "2023-11-14T19:26:40.000Z");
            assert_eq!(checked.summary["exportToTime"], "2023-11-14T22:13:20.000Z");
            assert_eq!(checked.summary["outputView"], view_type.as_str());
            assert_eq!(checked.summary["exportType"], "INCREMENTAL_EXPORT");
            assert_eq!(summary.manifest_summary_key, "cdc/AWSDynamoDB/01700000000000-0a1b2c3d/manifest-summary.json");
            // Incremental exports to a prefix share one data folder.
            assert!(checked.files.iter().all(|f| f.data_file_s3_key.starts_with("cdc/AWSDynamoDB/data/")));

            let back = read_changes(&store, &checked.files, format).await;
            let expected: Vec<Change> = match view_type {
                ExportViewType::NewAndOldImages => changes.clone(),
                ExportViewType::NewImage => changes.iter().map(|c| Change { old_image: None, ..c.clone() }).collect(),
            };
            assert_eq!(back, expected, "{format:?} {view_type:?}");

            if format == ExportFormat::DynamoDbJson {
                let text =
                    String::from_utf8(gunzip(&get(store.as_ref(), &checked.files[0].data_file_s3_key).await)).unwrap();
                let first = text.lines().next().unwrap();
                assert!(
                    first.starts_with(r#"{"Metadata":{"WriteTimestampMicros":{"N":"1700000000000001"}},"Keys":{"id":{"S":"created"}},"NewImage":{"#),
                    "{first}"
                );
                let deleted = text.lines().nth(2).unwrap();
                assert_eq!(deleted.contains("\"OldImage\""), view_type == ExportViewType::NewAndOldImages);
                assert!(!deleted.contains("\"NewImage\""));
            }
        }
    }
}

#[tokio::test]
async fn writers_refuse_what_they_cannot_write() {
    let dir = TempDir::new().unwrap();
    let store = bucket(&dir, "refusals");
    let mut writer =
        ExportWriter::start(store.clone(), spec("refusals", None, ExportFormat::Ion, full(0))).await.unwrap();
    let change = changes().remove(0);
    assert!(matches!(writer.write_change(&change).await, Err(ExportError::WrongExportType(_))));
    let bad = Item::from_iter([("id".to_owned(), json!({ "N": "not a number" }))]);
    assert!(matches!(writer.write_item(&bad).await, Err(ExportError::InvalidItem(_))));
    let summary = writer.finish().await.unwrap();
    assert_eq!(summary.item_count, 0);

    let incremental =
        ExportType::Incremental { from_time: time(0), to_time: time(1), view_type: ExportViewType::NewImage };
    let mut writer =
        ExportWriter::start(store.clone(), spec("refusals", Some("inc"), ExportFormat::DynamoDbJson, incremental))
            .await
            .unwrap();
    assert!(matches!(writer.write_item(&bad).await, Err(ExportError::WrongExportType(_))));

    for (bucket_name, prefix, id) in [
        ("Bad_Bucket", None, "1-a"),
        ("ok-bucket", Some("../up"), "1-a"),
        ("ok-bucket", Some("/abs"), "1-a"),
        ("ok-bucket", None, "../x"),
    ] {
        let mut spec = spec(bucket_name, prefix, ExportFormat::DynamoDbJson, full(0));
        spec.export_id = id.into();
        let refused = ExportWriter::start(store.clone(), spec).await;
        assert!(matches!(refused, Err(ExportError::InvalidSpec(_))), "{bucket_name} {prefix:?} {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_export_leaves_no_partial_data_file() {
    let dir = TempDir::new().unwrap();
    let store = bucket(&dir, "aborted");
    let mut writer =
        ExportWriter::start(store.clone(), spec("aborted", None, ExportFormat::DynamoDbJson, full(0))).await.unwrap();
    // Incompressible items past one upload part (8 MiB), so that a multipart upload is under way.
    let mut rng = Rng::new(3);
    for id in 0..30 {
        writer.write_item(&big_item(&mut rng, id, 300 << 10)).await.unwrap();
    }
    writer.abort().await.unwrap();
    assert_eq!(files(dir.path()), BTreeSet::from(["aborted/AWSDynamoDB/01700000000000-0a1b2c3d/_started".to_owned()]));
}

fn json_lines(items: &[Item]) -> Vec<u8> {
    items.iter().flat_map(|item| format!("{}\n", json!({ "Item": item })).into_bytes()).collect()
}

fn read_all(input: Vec<u8>, format: InputFormat, compression: InputCompressionType) -> Vec<Item> {
    let reader = ItemReader::new(std::io::Cursor::new(input), format, compression).unwrap();
    reader.map(|line| line.unwrap().unwrap()).collect()
}

#[test]
fn imports_read_gzip_zstd_and_plain() {
    let items = items(5, 300);
    let plain = json_lines(&items);
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(&plain).unwrap();
    let gzip = gzip.finish().unwrap();
    let zstd = zstd::encode_all(plain.as_slice(), 3).unwrap();
    assert_eq!(read_all(plain, InputFormat::DynamoDbJson, InputCompressionType::None), items);
    assert_eq!(read_all(gzip.clone(), InputFormat::DynamoDbJson, InputCompressionType::Gzip), items);
    assert_eq!(read_all(zstd, InputFormat::DynamoDbJson, InputCompressionType::Zstd), items);
    // Two gzip files one after the other read as one, as gunzip reads them.
    let twice = [gzip.clone(), gzip].concat();
    assert_eq!(read_all(twice, InputFormat::DynamoDbJson, InputCompressionType::Gzip).len(), 600);

    let csv = "id;score;note\n1;2.50;\"a;b\"\n2;3;\n".as_bytes();
    let options = CsvOptions {
        delimiter: b';',
        header_list: None,
        key_types: vec![("id".into(), ScalarAttributeType::S), ("score".into(), ScalarAttributeType::N)],
    };
    let expected = vec![
        Item::from_iter([
            ("id".to_owned(), json!({"S": "1"})),
            ("score".to_owned(), json!({"N": "2.5"})),
            ("note".to_owned(), json!({"S": "a;b"})),
        ]),
        Item::from_iter([("id".to_owned(), json!({"S": "2"})), ("score".to_owned(), json!({"N": "3"}))]),
    ];
    let zstd_csv = zstd::encode_all(csv, 1).unwrap();
    assert_eq!(read_all(zstd_csv, InputFormat::Csv(options), InputCompressionType::Zstd), expected);
}

#[test]
fn a_corrupt_stream_ends_the_reading_with_an_error() {
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(&json_lines(&items(1, 50))).unwrap();
    let mut corrupt = gzip.finish().unwrap();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    let reader =
        ItemReader::new(std::io::Cursor::new(corrupt), InputFormat::DynamoDbJson, InputCompressionType::Gzip).unwrap();
    let results: Vec<_> = reader.collect();
    assert!(results.last().unwrap().is_err(), "the I/O error is the last thing read");
}

#[tokio::test]
async fn bucket_names_and_prefixes_are_refused() {
    let dir = TempDir::new().unwrap();
    let local = LocalDirectory::new(dir.path()).unwrap();
    for name in ["..", "../escape", "a", "UPPER", "under_score", "has/slash", ".hidden"] {
        assert!(matches!(local.bucket(name), Err(DestinationError::InvalidBucketName(_))), "{name}");
    }
    assert!(files(dir.path()).is_empty());
    assert!(LocalDirectory::new(dir.path().join("missing")).is_err());
}

#[tokio::test]
async fn symbolic_links_out_of_the_directory_are_not_followed() {
    let dir = TempDir::new().unwrap();
    let outside = TempDir::new().unwrap();
    std::fs::write(outside.path().join("secret.json"), b"{\"Item\":{}}\n").unwrap();
    let local = LocalDirectory::new(dir.path()).unwrap();

    // The bucket's directory itself a link.
    symlink(outside.path(), dir.path().join("linked-bucket")).unwrap();
    assert!(matches!(local.bucket("linked-bucket"), Err(DestinationError::Refused(_))));

    // A link where the export's prefix or its AWSDynamoDB folder would be.
    let store = local.bucket("victim").unwrap();
    symlink(outside.path(), dir.path().join("victim/exports")).unwrap();
    let export =
        ExportWriter::start(store.clone(), spec("victim", Some("exports/daily"), ExportFormat::DynamoDbJson, full(0)))
            .await;
    assert!(matches!(export, Err(ExportError::Store(object_store::Error::PermissionDenied { .. }))));
    std::fs::create_dir(dir.path().join("victim/other")).unwrap();
    symlink(outside.path(), dir.path().join("victim/other/AWSDynamoDB")).unwrap();
    let export =
        ExportWriter::start(store.clone(), spec("victim", Some("other"), ExportFormat::DynamoDbJson, full(0))).await;
    assert!(matches!(export, Err(ExportError::Store(object_store::Error::PermissionDenied { .. }))));
    assert_eq!(files(outside.path()), BTreeSet::from(["secret.json".to_owned()]));

    // Reading through a link, to a file or a directory outside, is refused too.
    symlink(outside.path().join("secret.json"), dir.path().join("victim/leak.json")).unwrap();
    let read = store.get(&Path::from("leak.json")).await;
    assert!(matches!(read, Err(object_store::Error::PermissionDenied { .. })), "{read:?}");
    let read = store.get(&Path::from("exports/secret.json")).await;
    assert!(matches!(read, Err(object_store::Error::PermissionDenied { .. })), "{read:?}");
    let listed: Vec<_> = futures::StreamExt::collect(store.list(None)).await;
    assert!(!listed.is_empty() && listed.iter().all(|meta| meta.is_err()), "{listed:?}");
    assert!(store.list_with_delimiter(Some(&Path::from("exports"))).await.is_err());

    // An honest export next to them is written as usual.
    let writer = ExportWriter::start(store.clone(), spec("victim", Some("fine"), ExportFormat::DynamoDbJson, full(0)))
        .await
        .unwrap();
    let summary = writer.finish().await.unwrap();
    check_export(store.as_ref(), &summary, FULL_MEMBERS).await;
}
