//! Writing an export in DynamoDB's layout, streaming: memory holds one record, one compressed
//! chunk and one upload part, however large the table.
//!
//! Under `<prefix>/AWSDynamoDB/<ExportId>/` (the prefix and its `/` left out when there is none):
//!
//! - `_started`: empty, written first, to show the bucket takes writes;
//! - `data/<random>.json.gz` or `.ion.gz`: the records, gzipped, one per line, a new file each
//!   [`ExportSpec::max_data_file_bytes`] of records; an export of nothing still has one (empty)
//!   file. An incremental export's data files go to `<prefix>/AWSDynamoDB/data/`, shared by the
//!   incremental exports to that prefix;
//! - `manifest-files.json`: a JSON line per data file (`itemCount`, `md5Checksum` the base64 MD5 of
//!   the gzipped file, `etag` as the store gave it, `dataFileS3Key`), and `manifest-files.md5`;
//! - `manifest-summary.json`, written last, and `manifest-summary.md5`. Each `.md5` file holds the
//!   base64 MD5 of its JSON file's bytes, as AWS writes them (24 bytes, no newline).
//!
//! Records: a full export's line is `{"Item":{...}}`, or in Ion `$ion_1_0 {Item:{...}}`. An
//! incremental export's line is `{"Metadata":{"WriteTimestampMicros":{"N":"..."}},"Keys":{...},
//! "NewImage":{...},"OldImage":{...}}`: `NewImage` unless the item was deleted, `OldImage` (with
//! the view type NEW_AND_OLD_IMAGES only) unless it was created.

use std::fmt;
use std::io::{self, Write};
use std::mem;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use flate2::Compression;
use flate2::write::GzEncoder;
use md5::{Digest, Md5};
use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::destination::{self, DestinationError};
use crate::value::{check_item, encode_binary, item_size};
use crate::{Item, ion};

/// A new data file is begun once this many bytes of records (before compression) are in one.
pub const DEFAULT_MAX_DATA_FILE_BYTES: u64 = 128 << 20;
/// Bytes of an upload part: S3 wants parts of at least 5 MiB but the last.
const PART_BYTES: usize = 8 << 20;
/// Compressed bytes taken from the encoder at a time.
const CHUNK_BYTES: usize = 256 << 10;

/// ExportFormat: how records are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    DynamoDbJson,
    Ion,
}

impl ExportFormat {
    /// The name the API and the manifest use: `DYNAMODB_JSON` or `ION`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::DynamoDbJson => "DYNAMODB_JSON",
            ExportFormat::Ion => "ION",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            ExportFormat::DynamoDbJson => "json.gz",
            ExportFormat::Ion => "ion.gz",
        }
    }
}

impl FromStr for ExportFormat {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "DYNAMODB_JSON" => Ok(ExportFormat::DynamoDbJson),
            "ION" => Ok(ExportFormat::Ion),
            _ => Err(format!("unknown export format {name:?}")),
        }
    }
}

/// ExportViewType: what an incremental export's records show of a changed item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportViewType {
    NewImage,
    NewAndOldImages,
}

impl ExportViewType {
    /// The name the API and the manifest (`outputView`) use.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportViewType::NewImage => "NEW_IMAGE",
            ExportViewType::NewAndOldImages => "NEW_AND_OLD_IMAGES",
        }
    }
}

impl FromStr for ExportViewType {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "NEW_IMAGE" => Ok(ExportViewType::NewImage),
            "NEW_AND_OLD_IMAGES" => Ok(ExportViewType::NewAndOldImages),
            _ => Err(format!("unknown export view type {name:?}")),
        }
    }
}

/// ExportType, with what each kind is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportType {
    /// The table's items as they were at `export_time`: written with [`ExportWriter::write_item`].
    Full { export_time: SystemTime },
    /// The items changed from `from_time` (inclusive) to `to_time` (exclusive): written with
    /// [`ExportWriter::write_change`].
    Incremental { from_time: SystemTime, to_time: SystemTime, view_type: ExportViewType },
}

/// What an export is: its table, its destination, its format, as its request and job set them.
#[derive(Clone, Debug)]
pub struct ExportSpec {
    pub table_arn: String,
    pub table_id: String,
    /// The export's id, the last part of its ARN; see [`export_id`].
    pub export_id: String,
    /// The bucket's name, for the manifest (the store given to [`ExportWriter::start`] is that bucket).
    pub s3_bucket: String,
    pub s3_prefix: Option<String>,
    /// As the request gave them (`AES256`, `KMS`); the manifest shows them, nothing encrypts here.
    pub s3_sse_algorithm: Option<String>,
    pub s3_sse_kms_key_id: Option<String>,
    pub format: ExportFormat,
    pub export_type: ExportType,
    /// When the export began, for the manifest's `startTime`.
    pub start_time: SystemTime,
    /// See [`DEFAULT_MAX_DATA_FILE_BYTES`].
    pub max_data_file_bytes: u64,
}

impl ExportSpec {
    /// `<table ARN>/export/<export id>`.
    pub fn export_arn(&self) -> String {
        format!("{}/export/{}", self.table_arn, self.export_id)
    }
}

/// An export id in AWS's shape: the milliseconds since the epoch in 14 digits, a dash and 8 hex
/// digits (`01693685827463-2d8752fd`), from the caller's clock and randomness.
pub fn export_id(now: SystemTime, random: u32) -> String {
    let millis = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    format!("{millis:014}-{random:08x}")
}

/// One changed item of an incremental export.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// When the change was written, in microseconds since the epoch.
    pub write_timestamp_micros: u64,
    /// The item's key attributes.
    pub keys: Item,
    /// The item after the change; none when it was deleted.
    pub new_image: Option<Item>,
    /// The item before the change; none when it was created. Written with NEW_AND_OLD_IMAGES only.
    pub old_image: Option<Item>,
}

/// One line of `manifest-files.json`: a data file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestFileEntry {
    pub item_count: u64,
    /// The base64 MD5 of the (gzipped) file.
    pub md5_checksum: String,
    pub etag: String,
    pub data_file_s3_key: String,
}

/// What a finished export was, for DescribeExport.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportSummary {
    pub export_arn: String,
    pub item_count: u64,
    /// The records' size as DynamoDB counts items (an incremental export: its keys and images).
    pub billed_size_bytes: u64,
    pub start_time: SystemTime,
    pub end_time: SystemTime,
    pub data_files: u64,
    /// The key of `manifest-summary.json`: DescribeExport's `ExportManifest`.
    pub manifest_summary_key: String,
    pub manifest_files_key: String,
}

/// Why an export could not be written.
#[derive(Debug)]
pub enum ExportError {
    /// The spec cannot be written as given (a bad bucket name, prefix or export id).
    InvalidSpec(String),
    /// A record is not well-formed DynamoDB JSON; nothing of it was written.
    InvalidItem(String),
    /// An item given to an incremental export, or a change to a full one.
    WrongExportType(&'static str),
    Store(object_store::Error),
    Io(io::Error),
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExportError::InvalidSpec(reason) => write!(f, "invalid export: {reason}"),
            ExportError::InvalidItem(reason) => write!(f, "invalid item: {reason}"),
            ExportError::WrongExportType(reason) => f.write_str(reason),
            ExportError::Store(e) => write!(f, "export destination: {e}"),
            ExportError::Io(e) => write!(f, "export: {e}"),
        }
    }
}

impl std::error::Error for ExportError {}

impl From<object_store::Error> for ExportError {
    fn from(e: object_store::Error) -> Self {
        ExportError::Store(e)
    }
}

impl From<io::Error> for ExportError {
    fn from(e: io::Error) -> Self {
        ExportError::Io(e)
    }
}

impl From<DestinationError> for ExportError {
    fn from(e: DestinationError) -> Self {
        ExportError::InvalidSpec(e.to_string())
    }
}

/// Writes one export: [`start`](Self::start), records, then [`finish`](Self::finish) (or
/// [`abort`](Self::abort)). Until `finish` there is no `manifest-summary.json`, which is how a
/// reader tells an export that did not complete. After a store or I/O error the export cannot be
/// finished: abort it. A refused record (`InvalidItem`, `WrongExportType`) changes nothing.
pub struct ExportWriter {
    store: Arc<dyn ObjectStore>,
    spec: ExportSpec,
    export_dir: Path,
    data_dir: Path,
    data_file: Option<DataFile>,
    manifest: Upload,
    data_files: u64,
    item_count: u64,
    billed_size_bytes: u64,
    line: String,
}

impl ExportWriter {
    /// Checks the spec and writes `_started` to `store`, the destination bucket.
    pub async fn start(store: Arc<dyn ObjectStore>, spec: ExportSpec) -> Result<ExportWriter, ExportError> {
        destination::check_bucket_name(&spec.s3_bucket)?;
        let id = &spec.export_id;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(ExportError::InvalidSpec(format!("export id {id:?} is not letters, digits and dashes")));
        }
        if spec.max_data_file_bytes == 0 {
            return Err(ExportError::InvalidSpec("max_data_file_bytes is 0".into()));
        }
        let root = match &spec.s3_prefix {
            Some(prefix) => destination::parse_prefix(prefix)?.join("AWSDynamoDB"),
            None => Path::from("AWSDynamoDB"),
        };
        let export_dir = root.clone().join(id.as_str());
        let data_dir = match spec.export_type {
            ExportType::Full { .. } => export_dir.clone().join("data"),
            ExportType::Incremental { .. } => root.join("data"),
        };
        store.put(&export_dir.clone().join("_started"), PutPayload::default()).await?;
        let manifest = Upload::new(store.clone(), export_dir.clone().join("manifest-files.json"));
        Ok(ExportWriter {
            store,
            spec,
            export_dir,
            data_dir,
            data_file: None,
            manifest,
            data_files: 0,
            item_count: 0,
            billed_size_bytes: 0,
            line: String::new(),
        })
    }

    /// Adds an item to a full export.
    pub async fn write_item(&mut self, item: &Item) -> Result<(), ExportError> {
        if !matches!(self.spec.export_type, ExportType::Full { .. }) {
            return Err(ExportError::WrongExportType("an incremental export takes changes, not items"));
        }
        check_item(item).map_err(ExportError::InvalidItem)?;
        self.write_record(&[("Item", item)]).await?;
        self.billed_size_bytes += item_size(item);
        Ok(())
    }

    /// Adds a changed item to an incremental export, with the members its view type shows.
    pub async fn write_change(&mut self, change: &Change) -> Result<(), ExportError> {
        let ExportType::Incremental { view_type, .. } = self.spec.export_type else {
            return Err(ExportError::WrongExportType("a full export takes items, not changes"));
        };
        let metadata = Item::from_iter([(
            "WriteTimestampMicros".into(),
            json!({ "N": change.write_timestamp_micros.to_string() }),
        )]);
        let mut members = vec![("Metadata", &metadata), ("Keys", &change.keys)];
        if let Some(image) = &change.new_image {
            members.push(("NewImage", image));
        }
        if let (ExportViewType::NewAndOldImages, Some(image)) = (view_type, &change.old_image) {
            members.push(("OldImage", image));
        }
        for (name, item) in &members[1..] {
            check_item(item).map_err(|reason| ExportError::InvalidItem(format!("{name}: {reason}")))?;
        }
        self.write_record(&members).await?;
        self.billed_size_bytes += members[1..].iter().map(|(_, item)| item_size(item)).sum::<u64>();
        Ok(())
    }

    async fn write_record(&mut self, members: &[(&str, &Item)]) -> Result<(), ExportError> {
        self.line.clear();
        match self.spec.format {
            ExportFormat::DynamoDbJson => write_json_record(&mut self.line, members),
            ExportFormat::Ion => ion::write_record(&mut self.line, members),
        }
        .map_err(ExportError::InvalidItem)?;
        self.line.push('\n');
        let file = match &mut self.data_file {
            Some(file) => file,
            None => self.data_file.insert(DataFile::new(&self.store, &self.data_dir, self.spec.format)?),
        };
        file.write(self.line.as_bytes()).await?;
        self.item_count += 1;
        if file.raw_bytes >= self.spec.max_data_file_bytes {
            self.finish_data_file().await?;
        }
        Ok(())
    }

    async fn finish_data_file(&mut self) -> Result<(), ExportError> {
        let Some(file) = self.data_file.take() else { return Ok(()) };
        let entry = file.finish().await?;
        let mut line = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        line.push(b'\n');
        self.manifest.write(&line).await?;
        self.data_files += 1;
        Ok(())
    }

    /// Closes the last data file and writes the manifests; the export is complete when this returns.
    pub async fn finish(mut self) -> Result<ExportSummary, ExportError> {
        if self.data_file.is_none() && self.data_files == 0 {
            self.data_file = Some(DataFile::new(&self.store, &self.data_dir, self.spec.format)?);
        }
        self.finish_data_file().await?;
        let manifest_files_key = self.manifest.location.to_string();
        let files_md5 = self.manifest.finish().await?.md5;
        self.store.put(&self.export_dir.clone().join("manifest-files.md5"), encode_binary(&files_md5).into()).await?;

        let end_time = SystemTime::now();
        let spec = &self.spec;
        let export_arn = spec.export_arn();
        let (version, export_time, from_time, to_time, view, export_type) = match spec.export_type {
            ExportType::Full { export_time } => ("2020-06-30", Some(export_time), None, None, None, "FULL_EXPORT"),
            ExportType::Incremental { from_time, to_time, view_type } => {
                ("2023-08-01", None, Some(from_time), Some(to_time), Some(view_type.as_str()), "INCREMENTAL_EXPORT")
            }
        };
        let summary = ManifestSummary {
            version,
            export_arn: &export_arn,
            start_time: iso_time(spec.start_time),
            end_time: iso_time(end_time),
            table_arn: &spec.table_arn,
            table_id: &spec.table_id,
            export_time: export_time.map(iso_time),
            export_from_time: from_time.map(iso_time),
            export_to_time: to_time.map(iso_time),
            s3_bucket: &spec.s3_bucket,
            s3_prefix: spec.s3_prefix.as_deref(),
            s3_sse_algorithm: spec.s3_sse_algorithm.as_deref(),
            s3_sse_kms_key_id: spec.s3_sse_kms_key_id.as_deref(),
            manifest_files_s3_key: &manifest_files_key,
            billed_size_bytes: self.billed_size_bytes,
            item_count: self.item_count,
            output_format: spec.format.as_str(),
            output_view: view,
            export_type,
        };
        let summary = serde_json::to_vec(&summary).map_err(io::Error::other)?;
        let summary_md5: [u8; 16] = Md5::digest(&summary).into();
        let manifest_summary = self.export_dir.clone().join("manifest-summary.json");
        self.store.put(&manifest_summary, summary.into()).await?;
        self.store
            .put(&self.export_dir.clone().join("manifest-summary.md5"), encode_binary(&summary_md5).into())
            .await?;
        Ok(ExportSummary {
            export_arn,
            item_count: self.item_count,
            billed_size_bytes: self.billed_size_bytes,
            start_time: self.spec.start_time,
            end_time,
            data_files: self.data_files,
            manifest_summary_key: manifest_summary.to_string(),
            manifest_files_key,
        })
    }

    /// Gives the export up: uploads in progress are aborted (so S3 keeps no parts of them); data
    /// files already finished stay, as AWS leaves those of a failed export.
    pub async fn abort(self) -> Result<(), ExportError> {
        if let Some(file) = self.data_file {
            file.upload.abort().await?;
        }
        self.manifest.abort().await?;
        Ok(())
    }
}

/// `manifest-summary.json`, its members in the order AWS writes them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ManifestSummary<'a> {
    version: &'a str,
    export_arn: &'a str,
    start_time: String,
    end_time: String,
    table_arn: &'a str,
    table_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    export_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    export_from_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    export_to_time: Option<String>,
    s3_bucket: &'a str,
    s3_prefix: Option<&'a str>,
    s3_sse_algorithm: Option<&'a str>,
    s3_sse_kms_key_id: Option<&'a str>,
    manifest_files_s3_key: &'a str,
    billed_size_bytes: u64,
    item_count: u64,
    output_format: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_view: Option<&'a str>,
    export_type: &'a str,
}

fn write_json_record(out: &mut String, members: &[(&str, &Item)]) -> Result<(), String> {
    out.push('{');
    for (i, (name, item)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("\"{name}\":"));
        out.push_str(&serde_json::to_string(item).map_err(|e| e.to_string())?);
    }
    out.push('}');
    Ok(())
}

/// A data file being written: records gzipped into an upload.
struct DataFile {
    gzip: GzEncoder<Vec<u8>>,
    upload: Upload,
    items: u64,
    raw_bytes: u64,
}

impl DataFile {
    fn new(store: &Arc<dyn ObjectStore>, dir: &Path, format: ExportFormat) -> Result<DataFile, ExportError> {
        let name = format!("{}.{}", random_name()?, format.extension());
        Ok(DataFile {
            gzip: GzEncoder::new(Vec::new(), Compression::default()),
            upload: Upload::new(store.clone(), dir.clone().join(name.as_str())),
            items: 0,
            raw_bytes: 0,
        })
    }

    async fn write(&mut self, record: &[u8]) -> Result<(), ExportError> {
        self.gzip.write_all(record)?;
        self.items += 1;
        self.raw_bytes += record.len() as u64;
        if self.gzip.get_ref().len() >= CHUNK_BYTES {
            let chunk = mem::take(self.gzip.get_mut());
            self.upload.write(&chunk).await?;
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<ManifestFileEntry, ExportError> {
        let rest = self.gzip.finish()?;
        self.upload.write(&rest).await?;
        let key = self.upload.location.to_string();
        let uploaded = self.upload.finish().await?;
        Ok(ManifestFileEntry {
            item_count: self.items,
            md5_checksum: encode_binary(&uploaded.md5),
            etag: uploaded.etag,
            data_file_s3_key: key,
        })
    }
}

/// An object written as its bytes come: one PUT if they stay within a part, a multipart upload
/// once they pass it.
struct Upload {
    store: Arc<dyn ObjectStore>,
    location: Path,
    buffer: Vec<u8>,
    multipart: Option<Box<dyn MultipartUpload>>,
    md5: Md5,
}

struct Uploaded {
    md5: [u8; 16],
    etag: String,
}

impl Upload {
    fn new(store: Arc<dyn ObjectStore>, location: Path) -> Upload {
        Upload { store, location, buffer: Vec::new(), multipart: None, md5: Md5::new() }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), object_store::Error> {
        self.md5.update(bytes);
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= PART_BYTES {
            let upload = match &mut self.multipart {
                Some(upload) => upload,
                None => self.multipart.insert(self.store.put_multipart(&self.location).await?),
            };
            upload.put_part(mem::take(&mut self.buffer).into()).await?;
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<Uploaded, object_store::Error> {
        let rest = PutPayload::from(mem::take(&mut self.buffer));
        let result = match self.multipart.take() {
            None => self.store.put(&self.location, rest).await?,
            Some(mut upload) => {
                let done = async {
                    if rest.content_length() > 0 {
                        upload.put_part(rest).await?;
                    }
                    upload.complete().await
                }
                .await;
                if done.is_err() {
                    // Best effort: the error worth reporting is the one that stopped the upload.
                    let _ = upload.abort().await;
                }
                done?
            }
        };
        let md5: [u8; 16] = self.md5.finalize().into();
        // A store that gives no ETag (none here does) gets the one S3 gives a single-part object.
        let etag = result
            .e_tag
            .map_or_else(|| md5.iter().map(|b| format!("{b:02x}")).collect(), |tag| tag.trim_matches('"').to_owned());
        Ok(Uploaded { md5, etag })
    }

    async fn abort(self) -> Result<(), object_store::Error> {
        match self.multipart {
            Some(mut upload) => upload.abort().await,
            None => Ok(()),
        }
    }
}

/// A data file's name as AWS makes them: 128 random bits in 26 lowercase base32 characters.
fn random_name() -> Result<String, ExportError> {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| io::Error::other(e.to_string()))?;
    let bits = u128::from_be_bytes(bytes);
    Ok((0..26).map(|i| char::from(ALPHABET[(bits >> (i * 5)) as usize & 31])).collect())
}

/// `2020-11-04T07:28:34.028Z`: UTC with milliseconds, as the manifests show times.
fn iso_time(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (secs, millis) = (since.as_secs(), since.subsec_millis());
    // Days to a civil date: Howard Hinnant's `civil_from_days`, for days since 1970-01-01.
    let z = (secs / 86_400) as i64 + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let time_of_day = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        time_of_day / 3600,
        time_of_day / 60 % 60,
        time_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_are_iso_with_milliseconds() {
        let at = |millis: u64| iso_time(UNIX_EPOCH + Duration::from_millis(millis));
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(1_604_474_914_028), "2020-11-04T07:28:34.028Z");
        assert_eq!(at(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
    }

    #[test]
    fn export_ids_have_aws_shape() {
        let now = UNIX_EPOCH + Duration::from_millis(1_693_685_827_463);
        assert_eq!(export_id(now, 0x2d87_52fd), "01693685827463-2d8752fd");
    }

    #[test]
    fn data_file_names_are_random_base32() {
        let (a, b) = (random_name().unwrap(), random_name().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 26);
        assert!(a.bytes().all(|c| c.is_ascii_lowercase() || (b'2'..=b'7').contains(&c)));
    }

    #[test]
    fn names_parse_back() {
        for format in [ExportFormat::DynamoDbJson, ExportFormat::Ion] {
            assert_eq!(format.as_str().parse(), Ok(format));
        }
        for view in [ExportViewType::NewImage, ExportViewType::NewAndOldImages] {
            assert_eq!(view.as_str().parse(), Ok(view));
        }
        assert!("CSV".parse::<ExportFormat>().is_err());
        assert!("OLD_IMAGE".parse::<ExportViewType>().is_err());
    }
}
