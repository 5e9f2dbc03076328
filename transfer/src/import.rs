//! Reading ImportTable's input files, and exports back, record by record in bounded memory.
//!
//! A malformed record (bad JSON or Ion, an unknown type, bad base64, a line longer than the
//! limit) comes out as a [`BadLine`] and reading goes on with the next one, as ImportTable counts
//! an item error and goes on. An I/O error (a corrupt gzip stream, a broken connection) ends the
//! reading: the iterators yield `io::Result<Result<_, BadLine>>`, so `line?` hands I/O errors on
//! and the inner result is the record or what was wrong with it. So does a CSV header that cannot
//! be read (an `InvalidData` error): without it no row can be.
//!
//! Formats, per the Developer Guide:
//! - DYNAMODB_JSON: a line per item, `{"Item":{...}}` (what a full export writes);
//! - ION: a line per item, `$ion_1_0 {Item:{...}}`, the export's Ion mapping;
//! - CSV: a record per item; the first record names the columns unless `header_list` does (then
//!   the first record is data). Every column is imported as a string (S) but the table's and its
//!   indexes' key attributes, which take their defined types ([`CsvOptions::key_types`]).

use std::collections::HashSet;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};

use csv_core::{ReadRecordResult, ReaderBuilder};
use flate2::read::MultiGzDecoder;
use serde_json::{Map, Value, json};

use crate::export::{Change, ExportFormat};
use crate::value::{Number, check_item, decode_binary};
use crate::{Item, ion};

/// The longest line (or CSV record) read: DynamoDB's 400 KB item limit, and room for what JSON
/// and base64 add to it. A longer line is a [`BadLine`], skipped without being held in memory.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;
/// The most columns a CSV record may have (HeaderList allows 255).
const MAX_CSV_FIELDS: usize = 1024;

/// InputFormat, with CSV's options.
#[derive(Clone, Debug, PartialEq)]
pub enum InputFormat {
    DynamoDbJson,
    Ion,
    Csv(CsvOptions),
}

/// CsvOptions, and the key attributes' types, which an import takes from the table's definition.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvOptions {
    /// One of `,` `\t` `:` `;` `|` and space.
    pub delimiter: u8,
    /// The columns' names, for files whose first line is data; none when it names them.
    pub header_list: Option<Vec<String>>,
    /// The attributes imported as their type rather than as strings: the table's and its indexes'
    /// keys.
    pub key_types: Vec<(String, ScalarAttributeType)>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions { delimiter: b',', header_list: None, key_types: Vec::new() }
    }
}

/// The types a key attribute can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarAttributeType {
    S,
    N,
    B,
}

/// InputCompressionType.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputCompressionType {
    Gzip,
    Zstd,
    None,
}

impl std::str::FromStr for InputCompressionType {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "GZIP" => Ok(InputCompressionType::Gzip),
            "ZSTD" => Ok(InputCompressionType::Zstd),
            "NONE" => Ok(InputCompressionType::None),
            _ => Err(format!("unknown input compression type {name:?}")),
        }
    }
}

/// A record that could not be read, which the reading skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    /// Its 1-based line number; for CSV, its record number, the header's included.
    pub line: u64,
    pub reason: String,
}

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for BadLine {}

/// The items of one input file.
pub struct ItemReader {
    records: Records,
    ended: bool,
}

enum Records {
    Lines { lines: Lines, ion: bool },
    Csv { rows: Box<CsvRows>, header: Option<Vec<String>>, key_types: Vec<(String, ScalarAttributeType)> },
}

impl ItemReader {
    /// Reads `input`, decompressed as `compression` says, in `format`. Fails only for CSV options
    /// ImportTable would refuse (a delimiter it does not take, a header list that is empty or
    /// names a column twice).
    pub fn new(
        input: impl Read + Send + 'static,
        format: InputFormat,
        compression: InputCompressionType,
    ) -> io::Result<ItemReader> {
        let input = decompress(input, compression)?;
        let records = match format {
            InputFormat::DynamoDbJson => Records::Lines { lines: Lines::new(input), ion: false },
            InputFormat::Ion => Records::Lines { lines: Lines::new(input), ion: true },
            InputFormat::Csv(options) => {
                if !b",\t:;| ".contains(&options.delimiter) {
                    return Err(invalid_input(format!(
                        "{:?} is not a CSV delimiter ImportTable takes",
                        options.delimiter as char
                    )));
                }
                if let Some(header) = &options.header_list {
                    check_header(header).map_err(invalid_input)?;
                }
                Records::Csv {
                    rows: Box::new(CsvRows::new(input, options.delimiter)),
                    header: options.header_list,
                    key_types: options.key_types,
                }
            }
        };
        Ok(ItemReader { records, ended: false })
    }

    /// Sets the longest line read (default [`DEFAULT_MAX_LINE_BYTES`]).
    pub fn with_max_line_bytes(mut self, max: usize) -> ItemReader {
        match &mut self.records {
            Records::Lines { lines, .. } => lines.max = max,
            // csv-core needs room for a byte to go on.
            Records::Csv { rows, .. } => rows.out.resize(max.max(1), 0),
        }
        self
    }

    fn next_item(&mut self) -> io::Result<Option<Result<Item, BadLine>>> {
        match &mut self.records {
            Records::Lines { lines, ion } => {
                let Some((line, record)) = lines.next_record(*ion)? else { return Ok(None) };
                Ok(Some(record.and_then(item_record).map_err(|reason| BadLine { line, reason })))
            }
            Records::Csv { rows, header, key_types } => loop {
                let Some((line, row)) = rows.next_row()? else { return Ok(None) };
                let Some(names) = header else {
                    let names = row.and_then(|names| check_header(&names).map(|()| names));
                    *header = Some(names.map_err(|reason| {
                        io::Error::new(io::ErrorKind::InvalidData, format!("CSV header (line {line}): {reason}"))
                    })?);
                    continue;
                };
                let item = row.and_then(|fields| csv_item(names, key_types, fields));
                return Ok(Some(item.map_err(|reason| BadLine { line, reason })));
            },
        }
    }
}

impl Iterator for ItemReader {
    type Item = io::Result<Result<Item, BadLine>>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        let next = self.next_item().transpose();
        self.ended = matches!(next, None | Some(Err(_)));
        next
    }
}

/// The changes of an incremental export's data file.
pub struct ChangeReader {
    lines: Lines,
    ion: bool,
    ended: bool,
}

impl ChangeReader {
    /// Reads `input`, decompressed as `compression` says (an export's data files are gzipped).
    pub fn new(
        input: impl Read + Send + 'static,
        format: ExportFormat,
        compression: InputCompressionType,
    ) -> io::Result<ChangeReader> {
        let lines = Lines::new(decompress(input, compression)?);
        Ok(ChangeReader { lines, ion: format == ExportFormat::Ion, ended: false })
    }
}

impl Iterator for ChangeReader {
    type Item = io::Result<Result<Change, BadLine>>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        let next = self.lines.next_record(self.ion).transpose().map(|record| {
            record.map(|(line, record)| record.and_then(change_record).map_err(|reason| BadLine { line, reason }))
        });
        self.ended = matches!(next, None | Some(Err(_)));
        next
    }
}

fn decompress(
    input: impl Read + Send + 'static,
    compression: InputCompressionType,
) -> io::Result<Box<dyn BufRead + Send>> {
    Ok(match compression {
        // Multi-member: concatenated gzip files are one gzip stream to `gunzip` too.
        InputCompressionType::Gzip => Box::new(BufReader::new(MultiGzDecoder::new(input))),
        InputCompressionType::Zstd => Box::new(BufReader::new(zstd::Decoder::new(input)?)),
        InputCompressionType::None => Box::new(BufReader::new(input)),
    })
}

fn invalid_input(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, reason)
}

/// `{"Item": {...}}` and nothing else.
fn item_record(mut record: Map<String, Value>) -> Result<Item, String> {
    let item = match record.remove("Item") {
        Some(Value::Object(item)) if record.is_empty() => item,
        _ => return Err("a line must be an object with the one member \"Item\"".into()),
    };
    check_item(&item)?;
    Ok(item)
}

/// `{"Metadata": {"WriteTimestampMicros": {"N": ...}}, "Keys": ..., "NewImage": ..., "OldImage": ...}`.
fn change_record(mut record: Map<String, Value>) -> Result<Change, String> {
    let mut member = |name: &str| match record.remove(name) {
        Some(Value::Object(item)) => check_item(&item).map(|()| Some(item)).map_err(|e| format!("{name}: {e}")),
        Some(_) => Err(format!("{name} is not an object")),
        None => Ok(None),
    };
    let metadata = member("Metadata")?.ok_or("a change has no Metadata")?;
    let keys = member("Keys")?.ok_or("a change has no Keys")?;
    let (new_image, old_image) = (member("NewImage")?, member("OldImage")?);
    if let Some(name) = record.keys().next() {
        return Err(format!("a change has an unknown member {name:?}"));
    }
    let micros = metadata.get("WriteTimestampMicros").and_then(|v| v.get("N")).and_then(Value::as_str);
    let write_timestamp_micros =
        micros.and_then(|text| text.parse().ok()).ok_or("Metadata has no WriteTimestampMicros")?;
    Ok(Change { write_timestamp_micros, keys, new_image, old_image })
}

fn check_header(names: &[String]) -> Result<(), String> {
    let mut seen = HashSet::new();
    if names.is_empty() {
        return Err("the header names no column".into());
    }
    for name in names {
        if name.is_empty() {
            return Err("the header has an empty column name".into());
        }
        if !seen.insert(name) {
            return Err(format!("the header names {name:?} twice"));
        }
    }
    Ok(())
}

/// A CSV row as an item: strings but for the keys; empty fields left out, for CSV cannot tell an
/// absent attribute from an empty one and sparse tables export as empty fields.
fn csv_item(
    names: &[String],
    key_types: &[(String, ScalarAttributeType)],
    fields: Vec<String>,
) -> Result<Item, String> {
    if fields.len() != names.len() {
        return Err(format!("{} fields, but the header has {}", fields.len(), names.len()));
    }
    let mut item = Item::new();
    for (name, field) in names.iter().zip(fields) {
        if field.is_empty() {
            continue;
        }
        let key_type = key_types.iter().find(|(key, _)| key == name).map(|(_, t)| *t);
        let value = match key_type {
            None | Some(ScalarAttributeType::S) => json!({ "S": field }),
            Some(ScalarAttributeType::N) => {
                json!({ "N": Number::parse(&field).map_err(|e| format!("{name}: {e}"))?.canonical() })
            }
            Some(ScalarAttributeType::B) => {
                decode_binary(&field).map_err(|e| format!("{name}: {e}"))?;
                json!({ "B": field })
            }
        };
        item.insert(name.clone(), value);
    }
    Ok(item)
}

/// A line's (or CSV record's) number, and what was read from it or why it could not be.
type Numbered<T> = (u64, Result<T, String>);

/// Lines of a stream, each at most `max` bytes kept: a longer one is read past, not stored.
struct Lines {
    input: Box<dyn BufRead + Send>,
    line: Vec<u8>,
    number: u64,
    max: usize,
}

impl Lines {
    fn new(input: Box<dyn BufRead + Send>) -> Lines {
        Lines { input, line: Vec::new(), number: 0, max: DEFAULT_MAX_LINE_BYTES }
    }

    /// The next line that is not blank, as a record's members (JSON, or Ion made JSON).
    fn next_record(&mut self, ion: bool) -> io::Result<Option<Numbered<Map<String, Value>>>> {
        loop {
            let Some(fits) = self.next_line()? else { return Ok(None) };
            if !fits {
                return Ok(Some((self.number, Err(format!("longer than {} bytes", self.max)))));
            }
            if self.line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let record = if ion {
                ion::read_record(&self.line)
            } else {
                serde_json::from_slice(&self.line).map_err(|e| format!("bad JSON: {e}"))
            };
            return Ok(Some((self.number, record)));
        }
    }

    /// Reads a line into `self.line`; whether it fit, or none at the end.
    fn next_line(&mut self) -> io::Result<Option<bool>> {
        self.line.clear();
        let (mut fits, mut any) = (true, false);
        loop {
            let buffer = match self.input.fill_buf() {
                Ok(buffer) => buffer,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buffer.is_empty() {
                break;
            }
            any = true;
            let end = buffer.iter().position(|&b| b == b'\n');
            let text = &buffer[..end.unwrap_or(buffer.len())];
            if fits && self.line.len() + text.len() <= self.max {
                self.line.extend_from_slice(text);
            } else {
                fits = false;
                self.line.clear();
            }
            let used = end.map_or(buffer.len(), |end| end + 1);
            self.input.consume(used);
            if end.is_some() {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        self.number += 1;
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        Ok(Some(fits))
    }
}

/// CSV records of a stream (quoted fields may hold delimiters, quotes and newlines), each at most
/// `out.len()` bytes of fields kept.
struct CsvRows {
    input: Box<dyn BufRead + Send>,
    parser: csv_core::Reader,
    out: Vec<u8>,
    ends: Vec<usize>,
    number: u64,
}

impl CsvRows {
    fn new(input: Box<dyn BufRead + Send>, delimiter: u8) -> CsvRows {
        CsvRows {
            input,
            parser: ReaderBuilder::new().delimiter(delimiter).build(),
            out: vec![0; DEFAULT_MAX_LINE_BYTES],
            ends: vec![0; MAX_CSV_FIELDS],
            number: 0,
        }
    }

    /// The next record's fields, or why it was skipped; none at the end.
    fn next_row(&mut self) -> io::Result<Option<Numbered<Vec<String>>>> {
        let (mut out_len, mut ends_len, mut overflow) = (0, 0, None);
        loop {
            let input = match self.input.fill_buf() {
                Ok(input) => input,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            // Past the limit the rest of the record is parsed into the start of the buffers and
            // dropped, only to find where it ends.
            let (out, ends) = match overflow {
                None => (&mut self.out[out_len..], &mut self.ends[ends_len..]),
                Some(_) => (&mut self.out[..], &mut self.ends[..]),
            };
            let (result, read, wrote, ended) = self.parser.read_record(input, out, ends);
            self.input.consume(read);
            if overflow.is_none() {
                out_len += wrote;
                ends_len += ended;
            }
            match result {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => {
                    overflow.get_or_insert_with(|| format!("longer than {} bytes", self.out.len()));
                }
                ReadRecordResult::OutputEndsFull => {
                    overflow.get_or_insert_with(|| format!("more than {MAX_CSV_FIELDS} fields"));
                }
                ReadRecordResult::Record => {
                    self.number += 1;
                    let row = match overflow {
                        Some(reason) => Err(reason),
                        None => self.fields(out_len, ends_len),
                    };
                    return Ok(Some((self.number, row)));
                }
                ReadRecordResult::End => return Ok(None),
            }
        }
    }

    fn fields(&self, out_len: usize, ends_len: usize) -> Result<Vec<String>, String> {
        let text = std::str::from_utf8(&self.out[..out_len]).map_err(|_| "not UTF-8".to_owned())?;
        let mut start = 0;
        Ok(self.ends[..ends_len]
            .iter()
            .map(|&end| {
                let field = text.get(start..end).unwrap_or_default().to_owned();
                start = end;
                field
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn read(text: &str, format: InputFormat) -> Vec<Result<Item, BadLine>> {
        let reader =
            ItemReader::new(Cursor::new(text.as_bytes().to_vec()), format, InputCompressionType::None).unwrap();
        reader.collect::<io::Result<Vec<_>>>().unwrap()
    }

    fn item(value: Value) -> Item {
        value.as_object().cloned().unwrap_or_default()
    }

    fn bad(line: u64, reason: &str) -> impl Fn(&Result<Item, BadLine>) -> bool + '_ {
        move |result| matches!(result, Err(e) if e.line == line && e.reason.contains(reason))
    }

    #[test]
    fn malformed_lines_are_reported_and_skipped() {
        let text = concat!(
            "{\"Item\":{\"a\":{\"S\":\"1\"}}}\n",
            "{\"Item\":{\"a\":{\"S\":\"2\"}}\n",
            "{\"Item\":{\"a\":{\"X\":\"3\"}}}\n",
            "\r\n",
            "{\"Item\":{\"a\":{\"B\":\"@@\"}}}\n",
            "{\"Items\":{}}\n",
            "[1]\n",
            "{\"Item\":{\"a\":{\"N\":\"1e999\"}}}\n",
            "{\"Item\":{\"a\":{\"S\":\"4\"}}}\r\n",
            "{\"Item\":{\"a\":{\"S\":\"5\"}}}",
        );
        let results = read(text, InputFormat::DynamoDbJson);
        assert_eq!(results.len(), 9);
        assert_eq!(results[0], Ok(item(json!({"a": {"S": "1"}}))));
        assert!(bad(2, "bad JSON")(&results[1]));
        assert!(bad(3, "unknown type")(&results[2]));
        assert!(bad(5, "bad base64")(&results[3]));
        assert!(bad(6, "one member \"Item\"")(&results[4]));
        assert!(bad(7, "expected a map")(&results[5]));
        assert!(bad(8, "larger than")(&results[6]));
        assert_eq!(results[7], Ok(item(json!({"a": {"S": "4"}}))));
        assert_eq!(results[8], Ok(item(json!({"a": {"S": "5"}}))));
    }

    #[test]
    fn long_lines_are_skipped_without_being_kept() {
        let long = format!("{{\"Item\":{{\"a\":{{\"S\":\"{}\"}}}}}}\n", "x".repeat(5000));
        let text = format!("{long}{{\"Item\":{{\"a\":{{\"S\":\"short\"}}}}}}\n{long}");
        // A small buffer: each line spans many reads.
        let mut lines = Lines::new(Box::new(BufReader::with_capacity(64, Cursor::new(text.into_bytes()))));
        lines.max = 1000;
        let next = |lines: &mut Lines| {
            lines.next_record(false).unwrap().map(|(number, record)| (number, record.map(Value::Object)))
        };
        assert_eq!(next(&mut lines), Some((1, Err("longer than 1000 bytes".into()))));
        assert!(lines.line.capacity() <= 1000 + 64, "the long line was not kept");
        assert_eq!(next(&mut lines), Some((2, Ok(json!({"Item": {"a": {"S": "short"}}})))));
        assert_eq!(next(&mut lines), Some((3, Err("longer than 1000 bytes".into()))));
        assert_eq!(next(&mut lines), None);
    }

    #[test]
    fn ion_lines_are_read_and_bad_ones_skipped() {
        let text = "$ion_1_0 {Item:{a:\"x\",n:6d2}}\n$ion_1_0 {Item:{a:1.5e0}}\n{Item:{b:{{AAE=}}}}\n";
        let results = read(text, InputFormat::Ion);
        assert_eq!(results[0], Ok(item(json!({"a": {"S": "x"}, "n": {"N": "600"}}))));
        assert!(bad(2, "float")(&results[1]));
        assert_eq!(results[2], Ok(item(json!({"b": {"B": "AAE="}}))));
    }

    fn csv(delimiter: u8, header_list: Option<&[&str]>) -> InputFormat {
        InputFormat::Csv(CsvOptions {
            delimiter,
            header_list: header_list.map(|names| names.iter().map(|n| n.to_string()).collect()),
            key_types: vec![("id".into(), ScalarAttributeType::N), ("bin".into(), ScalarAttributeType::B)],
        })
    }

    #[test]
    fn csv_takes_its_header_from_the_first_line() {
        let text = "id,name,bin\n1,alice,AAE=\n2.50,\"bob, \"\"the\"\" builder\njr\",\n3,x\nx,y,z\n4,,\n";
        let results = read(text, csv(b',', None));
        assert_eq!(results.len(), 5);
        assert_eq!(results[0], Ok(item(json!({"id": {"N": "1"}, "name": {"S": "alice"}, "bin": {"B": "AAE="}}))));
        assert_eq!(results[1], Ok(item(json!({"id": {"N": "2.5"}, "name": {"S": "bob, \"the\" builder\njr"}}))));
        assert!(bad(4, "2 fields, but the header has 3")(&results[2]));
        assert!(bad(5, "id: \"x\" is not a number")(&results[3]));
        assert_eq!(results[4], Ok(item(json!({"id": {"N": "4"}}))));
    }

    #[test]
    fn csv_header_list_makes_the_first_line_data() {
        let results = read("1|a\n2|b\n", csv(b'|', Some(&["id", "name"])));
        assert_eq!(
            results,
            vec![
                Ok(item(json!({"id": {"N": "1"}, "name": {"S": "a"}}))),
                Ok(item(json!({"id": {"N": "2"}, "name": {"S": "b"}})))
            ]
        );
        let tabbed = read("id\tnote\n7\tsaid \"hi\"\n", csv(b'\t', None));
        assert_eq!(tabbed, vec![Ok(item(json!({"id": {"N": "7"}, "note": {"S": "said \"hi\""}})))]);
    }

    #[test]
    fn csv_records_past_the_limit_are_skipped() {
        let text = format!("id,name\n1,\"{}\"\n2,ok\n3,{}\n4,é\n", "x\n".repeat(600), "y".repeat(2000));
        let reader = ItemReader::new(Cursor::new(text.into_bytes()), csv(b',', None), InputCompressionType::None)
            .unwrap()
            .with_max_line_bytes(1000);
        let results = reader.collect::<io::Result<Vec<_>>>().unwrap();
        assert_eq!(results.len(), 4);
        assert!(bad(2, "longer than 1000 bytes")(&results[0]));
        assert_eq!(results[1], Ok(item(json!({"id": {"N": "2"}, "name": {"S": "ok"}}))));
        assert!(bad(4, "longer than")(&results[2]));
        assert_eq!(results[3], Ok(item(json!({"id": {"N": "4"}, "name": {"S": "é"}}))));
        let wide = format!("{}\n", (0..2000).map(|i| format!("c{i}")).collect::<Vec<_>>().join(","));
        let reader =
            ItemReader::new(Cursor::new(wide.into_bytes()), csv(b',', None), InputCompressionType::None).unwrap();
        let error = reader.collect::<io::Result<Vec<_>>>().unwrap_err();
        assert!(error.to_string().contains("more than 1024 fields"), "{error}");
    }

    #[test]
    fn csv_options_are_checked() {
        let reader = |format| ItemReader::new(Cursor::new(Vec::new()), format, InputCompressionType::None).err();
        assert!(reader(csv(b'#', None)).is_some());
        assert!(reader(csv(b',', Some(&[]))).is_some());
        assert!(reader(csv(b',', Some(&["a", "a"]))).is_some());
        assert!(reader(csv(b';', Some(&["a", "b"]))).is_none());
        let error =
            ItemReader::new(Cursor::new(b"a,,b\n1,2,3\n".to_vec()), csv(b',', None), InputCompressionType::None)
                .unwrap()
                .collect::<io::Result<Vec<_>>>()
                .unwrap_err();
        assert!(error.to_string().contains("empty column name"), "{error}");
    }

    #[test]
    fn changes_are_read_with_their_members() {
        let text = concat!(
            "{\"Metadata\":{\"WriteTimestampMicros\":{\"N\":\"17\"}},\"Keys\":{\"k\":{\"S\":\"a\"}},\"NewImage\":{\"k\":{\"S\":\"a\"}}}\n",
            "{\"Metadata\":{\"WriteTimestampMicros\":{\"N\":\"18\"}},\"Keys\":{\"k\":{\"S\":\"b\"}}}\n",
            "{\"Keys\":{\"k\":{\"S\":\"b\"}}}\n",
            "{\"Metadata\":{\"WriteTimestampMicros\":{\"N\":\"19\"}},\"Keys\":{\"k\":{\"S\":\"b\"}},\"Other\":{}}\n",
        );
        let reader = ChangeReader::new(
            Cursor::new(text.as_bytes().to_vec()),
            ExportFormat::DynamoDbJson,
            InputCompressionType::None,
        )
        .unwrap();
        let results = reader.collect::<io::Result<Vec<_>>>().unwrap();
        let keys = |k: &str| item(json!({"k": {"S": k}}));
        assert_eq!(
            results[0],
            Ok(Change { write_timestamp_micros: 17, keys: keys("a"), new_image: Some(keys("a")), old_image: None })
        );
        assert_eq!(
            results[1],
            Ok(Change { write_timestamp_micros: 18, keys: keys("b"), new_image: None, old_image: None })
        );
        assert!(matches!(&results[2], Err(e) if e.reason.contains("no Metadata")));
        assert!(matches!(&results[3], Err(e) if e.reason.contains("unknown member \"Other\"")));
    }

    #[test]
    fn compression_types_parse() {
        assert_eq!("GZIP".parse(), Ok(InputCompressionType::Gzip));
        assert_eq!("ZSTD".parse(), Ok(InputCompressionType::Zstd));
        assert_eq!("NONE".parse(), Ok(InputCompressionType::None));
        assert!("BZIP2".parse::<InputCompressionType>().is_err());
    }
}
