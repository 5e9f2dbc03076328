//! What the integration tests share: items of every type, export specs, and a check of an export's
//! layout that reads it back through the import readers.

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use dynabox_transfer::Item;
use dynabox_transfer::destination;
use dynabox_transfer::export::{
    Change, DEFAULT_MAX_DATA_FILE_BYTES, ExportFormat, ExportSpec, ExportSummary, ExportType, ManifestFileEntry,
};
use dynabox_transfer::import::{BadLine, ChangeReader, InputCompressionType, InputFormat, ItemReader};
use md5::{Digest, Md5};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::{Value, json};

pub const TABLE_ARN: &str = "arn:aws:dynamodb:us-east-1:000000000000:table/Things";

/// A small deterministic generator (xorshift64*), so a failure can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Strings that are hard to carry: empty, non-ASCII, quotes, escapes, control characters, and
/// text that looks like Ion or JSON syntax.
const STRINGS: &[&str] = &[
    "",
    "a",
    "héllo wörld",
    "日本語のテキスト",
    "😀🎉 emoji",
    "e\u{301} combining",
    "quote\"s",
    "back\\slash",
    "new\nline\r\n",
    "tab\there",
    "\u{0}nul and \u{1f} unit separator",
    "\u{7f}delete",
    "'single'",
    "'''triple'''",
    "$ion_1_0",
    "null",
    "{{AAE=}}",
    "[[[ /* not a comment */ // nor this",
    "{\"Item\":{}}",
    "\u{2028}line separator\u{2029}",
];

/// A number in DynamoDB's canonical form (what it answers with), from 1E-130 to 1E125 and with
/// up to 38 significant digits, so that reading it back gives the same text.
pub fn number(rng: &mut Rng) -> String {
    let text = match rng.below(6) {
        0 => "0".to_owned(),
        1 => (rng.next() >> rng.below(63)).to_string(),
        2 => {
            let decimal = format!("{}.{:03}", rng.below(100_000), rng.below(1000));
            decimal.trim_end_matches('0').trim_end_matches('.').to_owned()
        }
        3 => {
            // 38 digits, neither the first nor the last a zero.
            let mut digits = (1 + rng.below(9)).to_string();
            digits.extend((0..36).map(|_| char::from(b'0' + rng.below(10) as u8)));
            digits.push(char::from(b'1' + rng.below(9) as u8));
            let point = rng.below(38) as usize;
            if point > 0 {
                digits.insert(point, '.');
            }
            digits
        }
        4 => format!("{}{}", 1 + rng.below(9), "0".repeat(rng.below(126) as usize)),
        _ => format!("0.{}{}", "0".repeat(rng.below(130) as usize), 1 + rng.below(9)),
    };
    if text != "0" && rng.below(2) == 0 { format!("-{text}") } else { text }
}

pub fn string(rng: &mut Rng) -> String {
    let word = STRINGS[rng.below(STRINGS.len() as u64) as usize];
    if rng.below(3) == 0 { format!("{word}{}", rng.below(1000)) } else { word.to_owned() }
}

pub fn binary(rng: &mut Rng, max: u64) -> String {
    let len = rng.below(max + 1) as usize;
    STANDARD.encode(rng.bytes(len))
}

/// From 1 to `most` distinct values from `make`: a set's members.
fn distinct(rng: &mut Rng, most: u64, make: impl Fn(&mut Rng) -> String) -> Vec<Value> {
    let count = 1 + rng.below(most);
    let mut members: Vec<String> = Vec::new();
    while (members.len() as u64) < count {
        let member = make(rng);
        if !members.contains(&member) {
            members.push(member);
        }
    }
    members.into_iter().map(Value::String).collect()
}

/// A value of any type, lists and maps nested up to `depth` more levels.
pub fn value(rng: &mut Rng, depth: u32) -> Value {
    let containers = if depth > 0 { 10 } else { 8 };
    match rng.below(containers) {
        0 => json!({ "S": string(rng) }),
        1 => json!({ "N": number(rng) }),
        2 => json!({ "B": binary(rng, 24) }),
        3 => json!({ "BOOL": rng.below(2) == 0 }),
        4 => json!({ "NULL": true }),
        5 => json!({ "SS": distinct(rng, 4, string) }),
        6 => json!({ "NS": distinct(rng, 4, number) }),
        7 => json!({ "BS": distinct(rng, 4, |rng| binary(rng, 8)) }),
        8 => json!({ "L": (0..rng.below(4)).map(|_| value(rng, depth - 1)).collect::<Vec<_>>() }),
        _ => json!({ "M": Item::from_iter((0..rng.below(4)).map(|_| (string(rng), value(rng, depth - 1)))) }),
    }
}

/// An item with a unique key, one attribute of each of the ten types (empty strings and binaries
/// inside its sets and list included), and a few more of any type under awkward names.
pub fn item(rng: &mut Rng, id: usize) -> Item {
    let mut item = Item::from_iter([
        ("id".to_owned(), json!({ "S": format!("item-{id:05}") })),
        ("s".to_owned(), json!({ "S": string(rng) })),
        ("n".to_owned(), json!({ "N": number(rng) })),
        ("b".to_owned(), json!({ "B": binary(rng, 32) })),
        ("bool".to_owned(), json!({ "BOOL": rng.below(2) == 1 })),
        ("null".to_owned(), json!({ "NULL": true })),
        ("ss".to_owned(), json!({ "SS": ["", string(rng) + "x"] })),
        ("ns".to_owned(), json!({ "NS": distinct(rng, 5, number) })),
        ("bs".to_owned(), json!({ "BS": ["", binary(rng, 0) + "AAE="] })),
        ("l".to_owned(), json!({ "L": [{ "S": "" }, value(rng, 2), value(rng, 2)] })),
        ("m".to_owned(), json!({ "M": { "": { "S": "" }, "nested": value(rng, 3) } })),
    ]);
    for _ in 0..rng.below(4) {
        let name = format!("{}{}", string(rng), rng.below(100));
        item.insert(name, value(rng, 2));
    }
    item
}

pub fn items(seed: u64, count: usize) -> Vec<Item> {
    let mut rng = Rng::new(seed);
    (0..count).map(|id| item(&mut rng, id)).collect()
}

/// An item of `bytes` of random (incompressible) binary; 300 KiB are 400 KiB of base64.
pub fn big_item(rng: &mut Rng, id: usize, bytes: usize) -> Item {
    Item::from_iter([
        ("id".to_owned(), json!({ "S": format!("big-{id:05}") })),
        ("blob".to_owned(), json!({ "B": STANDARD.encode(rng.bytes(bytes)) })),
    ])
}

pub fn time(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

pub fn spec(bucket: &str, prefix: Option<&str>, format: ExportFormat, export_type: ExportType) -> ExportSpec {
    ExportSpec {
        table_arn: TABLE_ARN.into(),
        table_id: "2f7d3c9e-0000-4000-8000-000000000001".into(),
        export_id: "01700000000000-0a1b2c3d".into(),
        s3_bucket: bucket.into(),
        s3_prefix: prefix.map(str::to_owned),
        s3_sse_algorithm: Some("AES256".into()),
        s3_sse_kms_key_id: None,
        format,
        export_type,
        start_time: time(1_700_000_100),
        max_data_file_bytes: DEFAULT_MAX_DATA_FILE_BYTES,
    }
}

pub fn full(export_time: u64) -> ExportType {
    ExportType::Full { export_time: time(export_time) }
}

pub fn md5_base64(bytes: &[u8]) -> String {
    STANDARD.encode(Md5::digest(bytes))
}

pub async fn get(store: &dyn ObjectStore, key: &str) -> Vec<u8> {
    let object = store.get(&Path::from(key)).await.unwrap_or_else(|e| panic!("{key}: {e}"));
    object.bytes().await.unwrap().to_vec()
}

pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

/// What [`check_export`] found.
pub struct Checked {
    pub summary: Value,
    pub files: Vec<ManifestFileEntry>,
}

/// Checks an export as AWS's own readers would: `_started` there and empty, both `.md5` files the
/// base64 MD5 of their manifests, the summary's members in AWS's order, every data file listed
/// with its MD5, an ETag and its item count, and the counts adding up.
pub async fn check_export(store: &dyn ObjectStore, summary: &ExportSummary, members: &[&str]) -> Checked {
    let export_dir = summary.manifest_summary_key.trim_end_matches("manifest-summary.json");
    assert!(get(store, &format!("{export_dir}_started")).await.is_empty());

    let summary_bytes = get(store, &summary.manifest_summary_key).await;
    let summary_md5 = get(store, &format!("{export_dir}manifest-summary.md5")).await;
    assert_eq!(String::from_utf8(summary_md5).unwrap(), md5_base64(&summary_bytes));
    let text = String::from_utf8(summary_bytes.clone()).unwrap();
    let positions: Vec<usize> =
        members.iter().map(|m| text.find(&format!("\"{m}\":")).unwrap_or_else(|| panic!("no {m} in {text}"))).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "members out of order: {text}");
    let summary_json: Value = serde_json::from_slice(&summary_bytes).unwrap();
    assert_eq!(summary_json.as_object().unwrap().len(), members.len(), "{text}");
    assert_eq!(summary_json["manifestFilesS3Key"], json!(summary.manifest_files_key));
    assert_eq!(summary_json["itemCount"], json!(summary.item_count));
    assert_eq!(summary_json["billedSizeBytes"], json!(summary.billed_size_bytes));
    assert_eq!(summary_json["exportArn"], json!(summary.export_arn));

    let files_bytes = get(store, &summary.manifest_files_key).await;
    let files_md5 = get(store, &format!("{export_dir}manifest-files.md5")).await;
    assert_eq!(String::from_utf8(files_md5).unwrap(), md5_base64(&files_bytes));
    assert!(files_bytes.ends_with(b"\n"));
    let files: Vec<ManifestFileEntry> = files_bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(files.len() as u64, summary.data_files);
    let mut total = 0;
    for file in &files {
        let data = get(store, &file.data_file_s3_key).await;
        assert_eq!(file.md5_checksum, md5_base64(&data), "{}", file.data_file_s3_key);
        assert!(!file.etag.is_empty() && !file.etag.contains('"'));
        let lines = gunzip(&data).split(|&b| b == b'\n').filter(|l| !l.is_empty()).count() as u64;
        assert_eq!(lines, file.item_count, "{}", file.data_file_s3_key);
        total += lines;
    }
    assert_eq!(total, summary.item_count);
    Checked { summary: summary_json, files }
}

/// The items of an export's data files, in manifest order, read through the import reader from a
/// streamed GET on a blocking thread.
pub async fn read_items(store: &Arc<dyn ObjectStore>, files: &[ManifestFileEntry], format: InputFormat) -> Vec<Item> {
    let mut items = Vec::new();
    for file in files {
        let input = destination::open(store.as_ref(), &Path::from(file.data_file_s3_key.as_str())).await.unwrap();
        let format = format.clone();
        let read = tokio::task::spawn_blocking(move || {
            let reader = ItemReader::new(input, format, InputCompressionType::Gzip).unwrap();
            reader.collect::<std::io::Result<Vec<Result<Item, BadLine>>>>().unwrap()
        });
        for result in read.await.unwrap() {
            items.push(result.unwrap_or_else(|bad| panic!("{}: {bad}", file.data_file_s3_key)));
        }
    }
    items
}

pub async fn read_changes(
    store: &Arc<dyn ObjectStore>,
    files: &[ManifestFileEntry],
    format: ExportFormat,
) -> Vec<Change> {
    let mut changes = Vec::new();
    for file in files {
        let input = destination::open(store.as_ref(), &Path::from(file.data_file_s3_key.as_str())).await.unwrap();
        let read = tokio::task::spawn_blocking(move || {
            let reader = ChangeReader::new(input, format, InputCompressionType::Gzip).unwrap();
            reader.collect::<std::io::Result<Vec<Result<Change, BadLine>>>>().unwrap()
        });
        changes.extend(read.await.unwrap().into_iter().map(|result| result.unwrap()));
    }
    changes
}

/// The members of a full export's `manifest-summary.json`, in AWS's order.
pub const FULL_MEMBERS: &[&str] = &[
    "version",
    "exportArn",
    "startTime",
    "endTime",
    "tableArn",
    "tableId",
    "exportTime",
    "s3Bucket",
    "s3Prefix",
    "s3SseAlgorithm",
    "s3SseKmsKeyId",
    "manifestFilesS3Key",
    "billedSizeBytes",
    "itemCount",
    "outputFormat",
    "exportType",
];

/// The members of an incremental export's `manifest-summary.json`, in AWS's order.
pub const INCREMENTAL_MEMBERS: &[&str] = &[
    "version",
    "exportArn",
    "startTime",
    "endTime",
    "tableArn",
    "tableId",
    "exportFromTime",
    "exportToTime",
    "s3Bucket",
    "s3Prefix",
    "s3SseAlgorithm",
    "s3SseKmsKeyId",
    "manifestFilesS3Key",
    "billedSizeBytes",
    "itemCount",
    "outputFormat",
    "outputView",
    "exportType",
];
