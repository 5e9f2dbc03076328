//! What every page shares: the layout, responses (rendered, redirects, refusals), a table's
//! description as the pages show it, and the grid of items.

use std::sync::LazyLock;

use dynabox_handler::http::Response;
use minijinja::Environment;
use serde::Serialize;
use serde_json::{Map, Value};

use super::form::{self, Form};

/// The templates, built into the binary. Names ending in `.html` are HTML-escaped: every value a
/// page prints is escaped unless a template says otherwise (none does).
static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut templates = Environment::new();
    macro_rules! add {
        ($($name:literal),*) => {$(
            templates
                .add_template(concat!("console/", $name), include_str!(concat!("../../templates/console/", $name)))
                .expect("the console's templates parse");
        )*};
    }
    add!(
        "base.html",
        "error.html",
        "error_text.html",
        "grid.html",
        "message.html",
        "sign_in.html",
        "tables.html",
        "create_table.html",
        "table.html",
        "search.html",
        "item.html",
        "accounts.html",
        "metrics.html"
    );
    templates
});

/// What the layout of every page needs.
#[derive(Serialize)]
pub struct Layout {
    /// The signed-in account's name under `--auth sigv4` (None under open: no sign-out).
    pub account: Option<String>,
    pub csrf: String,
    /// Whether the visitor may see the server's metrics (the link in the header).
    pub metrics: bool,
}

#[derive(Serialize)]
pub struct SignIn {
    pub layout: Layout,
    pub name: String,
    pub error: Option<String>,
}

#[derive(Serialize)]
pub struct Message<'a> {
    pub layout: Layout,
    pub title: &'a str,
    pub text: &'a str,
}

/// The page of template `name` (in `templates/console/`) with `page`'s fields. Its policy allows
/// no script at all, and no framing.
pub fn render(status: u16, name: &str, page: &impl Serialize) -> Response {
    match TEMPLATES.get_template(&format!("console/{name}")).and_then(|template| template.render(page)) {
        Ok(html) => Response {
            status,
            headers: vec![
                ("content-type".into(), "text/html; charset=utf-8".into()),
                ("cache-control".into(), "no-store".into()),
                (
                    "content-security-policy".into(),
                    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
                        .into(),
                ),
                ("x-content-type-options".into(), "nosniff".into()),
                // Links carry item keys: other sites are not told them.
                ("referrer-policy".into(), "same-origin".into()),
            ],
            body: html.into_bytes(),
        },
        Err(e) => {
            eprintln!("dynabox: a console page failed to render: {e}");
            Response { status: 500, headers: Vec::new(), body: b"the console failed to render this page".to_vec() }
        }
    }
}

/// A page that says one thing (a refusal, something missing), with no session of its own.
pub fn message(status: u16, title: &str, text: &str) -> Response {
    render(
        status,
        "message.html",
        &Message { layout: Layout { account: None, csrf: String::new(), metrics: false }, title, text },
    )
}

pub fn not_found() -> Response {
    message(404, "Not found", "The console has no such page.")
}

/// After a form that changed something: the browser fetches `location` (303: with GET).
pub fn redirect(location: &str) -> Response {
    Response {
        status: 303,
        headers: vec![("location".into(), location.to_string()), ("cache-control".into(), "no-store".into())],
        body: Vec::new(),
    }
}

/// An option of a `<select>`.
#[derive(Serialize)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// The options `(value, label)`, the one of value `current` selected.
pub fn choices(options: &[(&str, &str)], current: &str) -> Vec<Choice> {
    let choice = |(value, label): &(&str, &str)| Choice {
        value: value.to_string(),
        label: label.to_string(),
        selected: *value == current,
    };
    options.iter().map(choice).collect()
}

/// The options of an index to read: the table itself, then each index.
pub fn index_choices(table: &TableInfo, current: &str) -> Vec<Choice> {
    let mut options = vec![("".to_string(), format!("the table {}", table.name))];
    options.extend(table.indexes.iter().map(|i| (i.name.clone(), format!("{} index {}", i.kind, i.name))));
    options.into_iter().map(|(value, label)| Choice { selected: value == current, value, label }).collect()
}

pub const KEY_TYPES: &[(&str, &str)] = &[("S", "String"), ("N", "Number"), ("B", "Binary")];

/// A key attribute: its name and type (S, N or B).
#[derive(Debug, Clone, Serialize)]
pub struct KeyPart {
    pub name: String,
    pub kind: String,
}

/// A secondary index as the pages show it.
#[derive(Serialize)]
pub struct IndexInfo {
    pub name: String,
    /// "global" or "local".
    pub kind: &'static str,
    pub key_text: String,
    pub hash: KeyPart,
    pub range: Option<KeyPart>,
    pub projection: String,
    pub status: String,
    pub item_count: u64,
}

/// A table's description as the pages show it.
#[derive(Serialize)]
pub struct TableInfo {
    pub name: String,
    pub key_text: String,
    pub size_text: String,
    pub arn: String,
    pub status: String,
    pub item_count: u64,
    pub size_bytes: u64,
    pub hash: KeyPart,
    pub range: Option<KeyPart>,
    pub indexes: Vec<IndexInfo>,
    pub billing: String,
    /// The view type, when a stream is on.
    pub stream: Option<String>,
    pub deletion_protection: bool,
}

impl TableInfo {
    /// From DescribeTable's `Table`.
    pub fn from_description(table: &Value) -> TableInfo {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let definitions = table["AttributeDefinitions"].as_array().cloned().unwrap_or_default();
        let part = |schema: &Value, role: &str| {
            let element = schema.as_array()?.iter().find(|e| e["KeyType"] == role)?;
            let name = text(&element["AttributeName"]);
            let kind =
                definitions.iter().find(|d| d["AttributeName"] == name.as_str()).map(|d| text(&d["AttributeType"]));
            Some(KeyPart { name, kind: kind.unwrap_or_default() })
        };
        let unknown = || KeyPart { name: String::new(), kind: String::new() };
        let mut indexes = Vec::new();
        for (member, global) in [("GlobalSecondaryIndexes", true), ("LocalSecondaryIndexes", false)] {
            for index in table[member].as_array().into_iter().flatten() {
                let projection = &index["Projection"];
                let mut shown = text(&projection["ProjectionType"]);
                if let Some(attributes) = projection["NonKeyAttributes"].as_array() {
                    let names: Vec<String> = attributes.iter().map(text).collect();
                    shown = format!("{shown} ({})", names.join(", "));
                }
                let (hash, range) =
                    (part(&index["KeySchema"], "HASH").unwrap_or_else(unknown), part(&index["KeySchema"], "RANGE"));
                indexes.push(IndexInfo {
                    name: text(&index["IndexName"]),
                    kind: if global { "global" } else { "local" },
                    key_text: key_text(&hash, range.as_ref()),
                    hash,
                    range,
                    projection: shown,
                    status: if global { text(&index["IndexStatus"]) } else { "ACTIVE".into() },
                    item_count: index["ItemCount"].as_u64().unwrap_or(0),
                });
            }
        }
        let stream = &table["StreamSpecification"];
        let (hash, range) =
            (part(&table["KeySchema"], "HASH").unwrap_or_else(unknown), part(&table["KeySchema"], "RANGE"));
        let size_bytes = table["TableSizeBytes"].as_u64().unwrap_or(0);
        TableInfo {
            name: text(&table["TableName"]),
            key_text: key_text(&hash, range.as_ref()),
            size_text: size_text(size_bytes),
            arn: text(&table["TableArn"]),
            status: text(&table["TableStatus"]),
            item_count: table["ItemCount"].as_u64().unwrap_or(0),
            size_bytes,
            hash,
            range,
            indexes,
            billing: table["BillingModeSummary"]["BillingMode"].as_str().unwrap_or("PROVISIONED").to_string(),
            stream: (stream["StreamEnabled"] == true).then(|| text(&stream["StreamViewType"])),
            deletion_protection: table["DeletionProtectionEnabled"] == true,
        }
    }

    /// The table's key of an item, as DynamoDB JSON: what identifies it for GetItem and DeleteItem.
    pub fn key_of(&self, item: &Map<String, Value>) -> Map<String, Value> {
        let mut key = Map::new();
        for part in std::iter::once(&self.hash).chain(&self.range) {
            if let Some(value) = item.get(&part.name) {
                key.insert(part.name.clone(), value.clone());
            }
        }
        key
    }

    pub fn index(&self, name: &str) -> Option<&IndexInfo> {
        self.indexes.iter().find(|i| i.name == name)
    }
}

/// A key schema as shown: `pk (S), sk (N)`.
fn key_text(hash: &KeyPart, range: Option<&KeyPart>) -> String {
    let mut text = format!("{} ({})", hash.name, hash.kind);
    if let Some(range) = range {
        text.push_str(&format!(", {} ({})", range.name, range.kind));
    }
    text
}

/// Bytes for people: 1,234 B, 12.3 KB, 4.5 MB.
pub fn size_text(bytes: u64) -> String {
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} KB", bytes as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", bytes as f64 / 1e6),
        _ => format!("{:.2} GB", bytes as f64 / 1e9),
    }
}

/// A page of items: the columns (the key's first, then the others in the order met), a row per
/// item with its key (DynamoDB JSON, for the item's page and for deleting a selection), and the
/// link to the next page, whose cursor is the whole `LastEvaluatedKey` (an index's keys too).
#[derive(Serialize)]
pub struct Grid {
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
    pub count: usize,
    pub page: u32,
    pub next: Option<String>,
    pub first: Option<String>,
    /// Items read, when the filter left out some of them.
    pub scanned: Option<u64>,
}

#[derive(Serialize)]
pub struct Row {
    pub key: String,
    pub link: String,
    pub cells: Vec<String>,
}

/// Columns shown at most; the item's page shows every attribute.
const MAX_COLUMNS: usize = 16;
/// Characters of a value shown in the grid at most.
const MAX_CELL_CHARS: usize = 80;

impl Grid {
    /// The grid of a Query or Scan response; `here` is the page's query, from which the next
    /// page's link is made.
    pub fn new(table: &TableInfo, response: &Value, path: &str, here: &Form) -> Grid {
        let items: Vec<&Map<String, Value>> =
            response["Items"].as_array().into_iter().flatten().filter_map(Value::as_object).collect();
        let mut columns: Vec<String> =
            std::iter::once(&table.hash).chain(&table.range).map(|k| k.name.clone()).collect();
        for item in &items {
            for name in item.keys() {
                if columns.len() < MAX_COLUMNS && !columns.contains(name) {
                    columns.push(name.clone());
                }
            }
        }
        let rows: Vec<Row> = items
            .iter()
            .map(|item| {
                let key = Value::Object(table.key_of(item)).to_string();
                let link = form::table_url(&table.name, "/item", &form::query(&[("key", &key)]));
                let cells = columns.iter().map(|c| item.get(c).map(cell).unwrap_or_default()).collect();
                Row { key, link, cells }
            })
            .collect();
        let page: u32 = here.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        let next = response.get("LastEvaluatedKey").map(|last| {
            let next_page = (page + 1).to_string();
            let query = here.with("start", Some(&last.to_string())).with("page", Some(&next_page));
            format!("{path}?{}", query.encode())
        });
        let first = (page > 1).then(|| format!("{path}?{}", here.with("start", None).with("page", None).encode()));
        let scanned = response["ScannedCount"].as_u64().filter(|&read| read > rows.len() as u64);
        Grid { columns, count: rows.len(), rows, page, next, first, scanned }
    }
}

/// A value in a grid cell: strings, numbers and booleans as they are, anything else as its
/// DynamoDB JSON; long ones cut.
fn cell(value: &Value) -> String {
    let text = match value.as_object().and_then(|typed| typed.iter().next()).map(|(kind, v)| (kind.as_str(), v)) {
        Some(("S" | "N", Value::String(text))) => text.clone(),
        Some(("BOOL", Value::Bool(b))) => b.to_string(),
        Some(("NULL", _)) => "null".into(),
        _ => value.to_string(),
    };
    match text.char_indices().nth(MAX_CELL_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn table() -> TableInfo {
        TableInfo::from_description(&json!({
            "TableName": "t", "TableStatus": "ACTIVE", "ItemCount": 3, "TableSizeBytes": 1500,
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"},
                                     {"AttributeName": "g", "AttributeType": "S"}],
            "GlobalSecondaryIndexes": [{"IndexName": "byG", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                        "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["a", "b"]},
                                        "IndexStatus": "CREATING", "ItemCount": 2}],
            "StreamSpecification": {"StreamEnabled": true, "StreamViewType": "NEW_IMAGE"},
            "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
        }))
    }

    #[test]
    fn a_description_reads_as_the_pages_show_it() {
        let table = table();
        assert_eq!(table.key_text, "pk (S), sk (N)");
        let index = table.index("byG").unwrap();
        assert_eq!(
            (index.key_text.as_str(), index.projection.as_str(), index.status.as_str()),
            ("g (S)", "INCLUDE (a, b)", "CREATING")
        );
        assert_eq!(table.stream.as_deref(), Some("NEW_IMAGE"));
        assert_eq!(table.size_text, "1.5 KB");
        assert!(!table.deletion_protection);
    }

    #[test]
    fn a_grid_keeps_the_whole_cursor_and_cuts_long_values() {
        let response = json!({
            "Items": [{"pk": {"S": "a"}, "sk": {"N": "12345678901234567890123456789012345678"}, "s": {"SS": ["x", "y"]},
                       "long": {"S": "x".repeat(100)}}],
            "LastEvaluatedKey": {"pk": {"S": "a"}, "sk": {"N": "1"}, "g": {"S": "z"}},
            "ScannedCount": 1,
        });
        let here = Form::parse("index=byG&page=2");
        let grid = Grid::new(&table(), &response, "/console/tables/t", &here);
        assert_eq!(grid.columns, ["pk", "sk", "long", "s"]);
        let row = &grid.rows[0];
        assert_eq!(row.cells[1], "12345678901234567890123456789012345678");
        assert_eq!(row.cells[2].chars().count(), MAX_CELL_CHARS + 1);
        assert_eq!(row.cells[3], r#"{"SS":["x","y"]}"#);
        assert_eq!(row.key, r#"{"pk":{"S":"a"},"sk":{"N":"12345678901234567890123456789012345678"}}"#);
        let next = Form::parse(grid.next.as_deref().unwrap().split_once('?').unwrap().1);
        assert_eq!(next.get("start"), Some(r#"{"g":{"S":"z"},"pk":{"S":"a"},"sk":{"N":"1"}}"#));
        assert_eq!((next.get("page"), next.get("index")), (Some("3"), Some("byG")));
        assert_eq!(grid.first.as_deref(), Some("/console/tables/t?index=byG"));
    }
}
