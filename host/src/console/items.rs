//! Items: a table or index browsed page by page, Query (every key condition, filter rows) and
//! Scan (filter rows), an item viewed, added, edited and deleted as DynamoDB JSON (kept as
//! DynamoDB gives it: numbers as their digits, sets, binary as base64), a selection deleted.

use dynabox_handler::http::Response;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::api::Failure;
use super::form::{self, Form};
use super::pages::{self, Choice, Grid, KeyPart, Layout, TableInfo, choices, index_choices};
use super::tables::describe;
use super::{Console, Visit};

/// Items on a page unless `limit` says otherwise.
const PAGE_ITEMS: u32 = 50;
/// Filter rows the search form offers unless asked for more (`filters=N`).
const FILTER_ROWS: usize = 3;
/// BatchWriteItem's most requests at once.
const BATCH: usize = 25;

#[derive(Serialize)]
struct TablePage {
    layout: Layout,
    table: TableInfo,
    ttl: Option<String>,
    /// The table and its indexes, the one browsed selected.
    indexes: Vec<Choice>,
    limit: u32,
    grid: Option<Grid>,
    here: String,
    browse_url: String,
    search_url: String,
    new_item_url: String,
    delete_items_url: String,
    delete_table_url: String,
    notice: Option<String>,
    error: Option<Failure>,
}

pub async fn browse(console: &Console, visit: &Visit, layout: Layout, table: &str) -> Response {
    browse_with(console, visit, layout, table, None).await
}

/// The table's page, with a refusal to show (a delete DynamoDB refused) or none.
pub async fn browse_with(
    console: &Console,
    visit: &Visit,
    layout: Layout,
    table: &str,
    refused: Option<Failure>,
) -> Response {
    let (info, ttl) = match describe(console, visit, table).await {
        Ok(described) => described,
        Err(failure) => return missing_table(failure),
    };
    let query = &visit.query;
    let index = query.text("index").to_string();
    let limit = limit(query);
    let mut request = json!({"TableName": table, "Limit": limit});
    if !index.is_empty() {
        request["IndexName"] = json!(index);
    }
    let here = form::table_url(table, "", &query.encode());
    let (grid, error) = match start_key(query) {
        Ok(start) => {
            if let Some(start) = start {
                request["ExclusiveStartKey"] = start;
            }
            match console.call(visit, "Scan", &request).await {
                Ok(response) => (Some(Grid::new(&info, &response, &form::table_url(table, "", ""), query)), refused),
                Err(failure) => (None, Some(failure)),
            }
        }
        Err(failure) => (None, Some(failure)),
    };
    let notice = match (query.get("notice"), query.get("n")) {
        (Some("item-deleted"), _) => Some("The item was deleted.".to_string()),
        (Some("items-deleted"), Some(n)) => n.parse::<usize>().ok().map(|n| format!("{n} items were deleted.")),
        _ => None,
    };
    let page = TablePage {
        layout,
        indexes: index_choices(&info, &index),
        browse_url: form::table_url(table, "", ""),
        search_url: form::table_url(table, "/search", &form::query(&[("index", &index)])),
        new_item_url: form::table_url(table, "/new-item", ""),
        delete_items_url: form::table_url(table, "/delete-items", ""),
        delete_table_url: form::table_url(table, "/delete", ""),
        table: info,
        ttl,
        limit,
        grid,
        here,
        notice,
        error,
    };
    pages::render(if page.error.is_some() { 400 } else { 200 }, "table.html", &page)
}

fn missing_table(failure: Failure) -> Response {
    let status = if failure.kind == "ResourceNotFoundException" { 404 } else { 500 };
    pages::message(status, "No such table", &failure.to_string())
}

fn limit(query: &Form) -> u32 {
    query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(PAGE_ITEMS).clamp(1, 1000)
}

/// The page's cursor: the previous page's whole `LastEvaluatedKey`.
fn start_key(query: &Form) -> Result<Option<Value>, Failure> {
    match query.get("start").filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(text) => {
            serde_json::from_str(text).map(Some).map_err(|_| Failure::console("The page's cursor is not JSON."))
        }
    }
}

/// One filter row of the search form, as typed.
#[derive(Serialize)]
struct FilterRow {
    prefix: String,
    name: String,
    value: String,
    value2: String,
    conditions: Vec<Choice>,
    types: Vec<Choice>,
}

#[derive(Serialize)]
struct SearchPage {
    layout: Layout,
    table: TableInfo,
    /// The fields typed: pk, sk, sk2.
    values: std::collections::BTreeMap<&'static str, String>,
    descending: bool,
    limit: u32,
    modes: Vec<Choice>,
    indexes: Vec<Choice>,
    sort_conditions: Vec<Choice>,
    hash: KeyPart,
    range: Option<KeyPart>,
    filters: Vec<FilterRow>,
    more_filters: String,
    browse: String,
    search_url: String,
    delete_items_url: String,
    here: String,
    grid: Option<Grid>,
    error: Option<Failure>,
}

const SORT_CONDITIONS: &[(&str, &str)] = &[
    ("", "any"),
    ("=", "="),
    ("<", "<"),
    ("<=", "<="),
    (">", ">"),
    (">=", ">="),
    ("between", "BETWEEN"),
    ("begins_with", "begins_with"),
];
const FILTER_CONDITIONS: &[(&str, &str)] = &[
    ("=", "="),
    ("<>", "<>"),
    ("<", "<"),
    ("<=", "<="),
    (">", ">"),
    (">=", ">="),
    ("between", "BETWEEN"),
    ("begins_with", "begins_with"),
    ("contains", "contains"),
    ("exists", "exists"),
    ("not_exists", "does not exist"),
];
const VALUE_TYPES: &[(&str, &str)] = &[("S", "String"), ("N", "Number"), ("B", "Binary"), ("BOOL", "Boolean")];

pub async fn search(console: &Console, visit: &Visit, layout: Layout, table: &str) -> Response {
    let (info, _) = match describe(console, visit, table).await {
        Ok(described) => described,
        Err(failure) => return missing_table(failure),
    };
    let query = &visit.query;
    let rows = query.get("filters").and_then(|r| r.parse().ok()).unwrap_or(FILTER_ROWS).clamp(1, 20);
    let filters = (0..rows)
        .map(|i| {
            let prefix = format!("f{i}_");
            let field = |name: &str| query.text(&format!("{prefix}{name}")).to_string();
            FilterRow {
                name: field("name"),
                value: field("value"),
                value2: field("value2"),
                conditions: choices(FILTER_CONDITIONS, &field("op")),
                types: choices(VALUE_TYPES, &field("type")),
                prefix,
            }
        })
        .collect();
    let index = query.text("index").to_string();
    let (hash, range) = match info.index(&index) {
        Some(found) => (found.hash.clone(), found.range.clone()),
        None => (info.hash.clone(), info.range.clone()),
    };
    let (grid, error) = if query.get("run").is_some() {
        match search_request(&info, query) {
            Ok((operation, request)) => match console.call(visit, operation, &request).await {
                Ok(response) => {
                    (Some(Grid::new(&info, &response, &form::table_url(table, "/search", ""), query)), None)
                }
                Err(failure) => (None, Some(failure)),
            },
            Err(failure) => (None, Some(failure)),
        }
    } else {
        (None, None)
    };
    let page = SearchPage {
        layout,
        values: ["pk", "sk", "sk2"].into_iter().map(|name| (name, query.text(name).to_string())).collect(),
        descending: query.get("desc").is_some(),
        limit: limit(query),
        modes: choices(&[("query", "Query"), ("scan", "Scan")], query.get("mode").unwrap_or("query")),
        indexes: index_choices(&info, &index),
        sort_conditions: choices(SORT_CONDITIONS, query.text("op")),
        more_filters: form::table_url(
            table,
            "/search",
            &query.with("filters", Some(&(rows + 1).to_string())).with("run", None).encode(),
        ),
        browse: form::table_url(table, "", &form::query(&[("index", &index)])),
        search_url: form::table_url(table, "/search", ""),
        delete_items_url: form::table_url(table, "/delete-items", ""),
        here: form::table_url(table, "/search", &query.encode()),
        hash,
        range,
        filters,
        table: info,
        grid,
        error,
    };
    pages::render(if page.error.is_some() { 400 } else { 200 }, "search.html", &page)
}

/// The Query or Scan the search form asks for. Names and values go in as placeholders, so any
/// attribute name works; DynamoDB judges the values.
fn search_request(table: &TableInfo, query: &Form) -> Result<(&'static str, Value), Failure> {
    let mut names = Map::new();
    let mut values = Map::new();
    let index = query.text("index");
    let mut request = json!({"TableName": table.name, "Limit": limit(query)});
    let key = if index.is_empty() {
        (&table.hash, table.range.as_ref())
    } else {
        let found = table.index(index).ok_or_else(|| Failure::console(format!("The table has no index {index}.")))?;
        request["IndexName"] = json!(index);
        (&found.hash, found.range.as_ref())
    };
    let operation = if query.get("mode") == Some("scan") {
        "Scan"
    } else {
        names.insert("#k0".into(), json!(key.0.name));
        values.insert(":k0".into(), form::typed(&key.0.kind, query.text("pk")));
        let mut condition = "#k0 = :k0".to_string();
        let op = query.text("op");
        if !op.is_empty() {
            let range = key.1.ok_or_else(|| Failure::console("This table or index has no sort key to compare."))?;
            names.insert("#k1".into(), json!(range.name));
            values.insert(":k1".into(), form::typed(&range.kind, query.text("sk")));
            let part = match op {
                "between" => {
                    values.insert(":k2".into(), form::typed(&range.kind, query.text("sk2")));
                    "#k1 BETWEEN :k1 AND :k2".to_string()
                }
                "begins_with" => "begins_with(#k1, :k1)".to_string(),
                "=" | "<" | "<=" | ">" | ">=" => format!("#k1 {op} :k1"),
                _ => return Err(Failure::console(format!("Unknown sort key condition {op}."))),
            };
            condition = format!("{condition} AND {part}");
        }
        request["KeyConditionExpression"] = json!(condition);
        if query.get("desc").is_some() {
            request["ScanIndexForward"] = json!(false);
        }
        "Query"
    };
    let mut filters = Vec::new();
    for i in 0..20 {
        let field = |name: &str| query.text(&format!("f{i}_{name}"));
        if field("name").is_empty() {
            continue;
        }
        let (name, value, value2) = (format!("#f{i}"), format!(":f{i}"), format!(":g{i}"));
        names.insert(name.clone(), json!(field("name")));
        let kind = field("type");
        let mut compared = |placeholder: &str, text: &str| {
            values.insert(placeholder.to_string(), form::typed(kind, text));
        };
        filters.push(match field("op") {
            "exists" => format!("attribute_exists({name})"),
            "not_exists" => format!("attribute_not_exists({name})"),
            "between" => {
                compared(&value, field("value"));
                compared(&value2, field("value2"));
                format!("{name} BETWEEN {value} AND {value2}")
            }
            function @ ("begins_with" | "contains") => {
                compared(&value, field("value"));
                format!("{function}({name}, {value})")
            }
            op @ ("=" | "<>" | "<" | "<=" | ">" | ">=") => {
                compared(&value, field("value"));
                format!("{name} {op} {value}")
            }
            other => return Err(Failure::console(format!("Unknown filter condition {other}."))),
        });
    }
    if !filters.is_empty() {
        request["FilterExpression"] = json!(filters.join(" AND "));
    }
    if !names.is_empty() {
        request["ExpressionAttributeNames"] = Value::Object(names);
    }
    if !values.is_empty() {
        request["ExpressionAttributeValues"] = Value::Object(values);
    }
    if let Some(start) = start_key(query)? {
        request["ExclusiveStartKey"] = start;
    }
    Ok((operation, request))
}

#[derive(Serialize)]
struct ItemPage {
    layout: Layout,
    table: String,
    table_link: String,
    /// The item's key as DynamoDB JSON; "" for a new item.
    key: String,
    /// The item as DynamoDB JSON, as shown and edited.
    text: String,
    action: String,
    delete_url: String,
    notice: Option<String>,
    error: Option<Failure>,
}

impl ItemPage {
    fn new(layout: Layout, table: &str, key: &str, text: String) -> ItemPage {
        let action = if key.is_empty() { "/new-item" } else { "/item" };
        ItemPage {
            layout,
            table: table.to_string(),
            table_link: form::table_url(table, "", ""),
            key: key.to_string(),
            text,
            action: form::table_url(table, action, ""),
            delete_url: form::table_url(table, "/delete-item", ""),
            notice: None,
            error: None,
        }
    }

    fn refused(mut self, failure: Failure) -> Response {
        self.error = Some(failure);
        pages::render(400, "item.html", &self)
    }
}

fn pretty(item: &Value) -> String {
    serde_json::to_string_pretty(item).expect("a JSON value serialises")
}

pub async fn view(console: &Console, visit: &Visit, layout: Layout, table: &str) -> Response {
    let key = visit.query.text("key");
    let Ok(key_value) = serde_json::from_str::<Value>(key) else {
        return pages::message(400, "No such item", "The item's key is not JSON.");
    };
    let request = json!({"TableName": table, "Key": key_value, "ConsistentRead": true});
    let page = ItemPage::new(layout, table, key, String::new());
    match console.call(visit, "GetItem", &request).await {
        Ok(found) if found.get("Item").is_some() => {
            let notice = visit.query.get("saved").map(|_| "The item was saved.".to_string());
            pages::render(200, "item.html", &ItemPage { text: pretty(&found["Item"]), notice, ..page })
        }
        Ok(_) => pages::message(404, "No such item", "The table has no item with this key."),
        Err(failure) => page.refused(failure),
    }
}

/// The item the form sent, or the console's own refusal when it is no JSON object.
fn sent_item(visit: &Visit) -> Result<Map<String, Value>, Failure> {
    match serde_json::from_str::<Value>(visit.form.text("item")) {
        Ok(Value::Object(item)) => Ok(item),
        Ok(_) => Err(Failure::console("An item is a JSON object of attributes in DynamoDB JSON.")),
        Err(e) => Err(Failure::console(format!("The item is not JSON: {e}."))),
    }
}

/// The item the form sent, and the description of the table it is for.
async fn sent_item_of(
    console: &Console,
    visit: &Visit,
    table: &str,
) -> Result<(Map<String, Value>, TableInfo), Failure> {
    let item = sent_item(visit)?;
    let (info, _) = describe(console, visit, table).await?;
    Ok((item, info))
}

/// Saves an edited item (PutItem of the whole item). Its key may not change: that would be
/// another item, and this one would stay.
pub async fn save(console: &Console, visit: &Visit, layout: Layout, table: &str) -> Response {
    let key = visit.form.text("key");
    let page = ItemPage::new(layout, table, key, visit.form.text("item").to_string());
    let (item, info) = match sent_item_of(console, visit, table).await {
        Ok(sent) => sent,
        Err(failure) => return page.refused(failure),
    };
    if serde_json::from_str::<Value>(key).ok() != Some(Value::Object(info.key_of(&item))) {
        let message = "An item's key cannot change: add an item with the new key, then delete this one.";
        return page.refused(Failure::console(message));
    }
    match console.call(visit, "PutItem", &json!({"TableName": table, "Item": item})).await {
        Ok(_) => pages::redirect(&form::table_url(table, "/item", &form::query(&[("key", key), ("saved", "1")]))),
        Err(failure) => page.refused(failure),
    }
}

pub async fn new_form(console: &Console, visit: &Visit, layout: Layout, table: &str) -> Response {
    let info = match describe(console, visit, table).await {
        Ok((info, _)) => info,
        Err(failure) => return missing_table(failure),
    };
    let mut skeleton = Map::new();
    for part in std::iter::once(&info.hash).chain(&info.range) {
        let placeholder = if part.kind == "N" { "0" } else { "" };
        skeleton.insert(part.name.clone(), form::typed(&part.kind, placeholder));
    }
    pages::render(200, "item.html", &ItemPage::new(layout, table, "", pretty(&Value::Object(skeleton))))
}

/// Adds an item; one that exists already is not overwritten (DynamoDB's conditional failure).
pub async fn add(console: &Console, visit: &Visit, layout: Layout, table: &str) -> Response {
    let page = ItemPage::new(layout, table, "", visit.form.text("item").to_string());
    let (item, info) = match sent_item_of(console, visit, table).await {
        Ok(sent) => sent,
        Err(failure) => return page.refused(failure),
    };
    let key = Value::Object(info.key_of(&item)).to_string();
    let request = json!({
        "TableName": table, "Item": item,
        "ConditionExpression": "attribute_not_exists(#k)", "ExpressionAttributeNames": {"#k": info.hash.name},
    });
    match console.call(visit, "PutItem", &request).await {
        Ok(_) => pages::redirect(&form::table_url(table, "/item", &form::query(&[("key", &key), ("saved", "1")]))),
        Err(failure) => page.refused(failure),
    }
}

pub async fn delete(console: &Console, visit: &Visit, layout: Layout, table: &str) -> Response {
    let key = visit.form.text("key");
    let page = ItemPage::new(layout, table, key, String::new());
    let Ok(key_value) = serde_json::from_str::<Value>(key) else {
        return page.refused(Failure::console("The item's key is not JSON."));
    };
    match console.call(visit, "DeleteItem", &json!({"TableName": table, "Key": key_value})).await {
        Ok(_) => pages::redirect(&form::table_url(table, "", &form::query(&[("notice", "item-deleted")]))),
        Err(failure) => page.refused(failure),
    }
}

/// Deletes the items whose keys were ticked, 25 to a BatchWriteItem, and goes back to the page
/// they were ticked on.
pub async fn delete_selection(console: &Console, visit: &Visit, table: &str) -> Response {
    let keys: Vec<Value> = visit.form.all("key").filter_map(|k| serde_json::from_str(k).ok()).collect();
    for chunk in keys.chunks(BATCH) {
        let deletes: Vec<Value> = chunk.iter().map(|key| json!({"DeleteRequest": {"Key": key}})).collect();
        let mut request = json!({"RequestItems": Map::from_iter([(table.to_string(), Value::from(deletes))])});
        // What the store could not take now is sent again, a few times.
        for _ in 0..8 {
            match console.call(visit, "BatchWriteItem", &request).await {
                Ok(response) => match response["UnprocessedItems"].as_object() {
                    Some(left) if !left.is_empty() => request = json!({"RequestItems": left}),
                    _ => break,
                },
                Err(failure) => return pages::message(400, "Nothing more was deleted", &failure.to_string()),
            }
        }
    }
    // Back to the page the selection was made on (only a page of this table's).
    let back = visit.form.text("back");
    let (path, query) = back.split_once('?').unwrap_or((back, ""));
    let path = if path.starts_with(&form::table_url(table, "", "")) { path } else { "/console/tables" };
    let query = Form::parse(query).with("notice", Some("items-deleted")).with("n", Some(&keys.len().to_string()));
    pages::redirect(&format!("{path}?{}", query.encode()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> TableInfo {
        TableInfo::from_description(&json!({
            "TableName": "t",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"},
                                     {"AttributeName": "kind", "AttributeType": "S"}, {"AttributeName": "score", "AttributeType": "N"}],
            "GlobalSecondaryIndexes": [{"IndexName": "byScore", "Projection": {"ProjectionType": "ALL"},
                "KeySchema": [{"AttributeName": "kind", "KeyType": "HASH"}, {"AttributeName": "score", "KeyType": "RANGE"}]}],
        }))
    }

    #[test]
    fn a_query_of_an_index_with_between_and_filters() {
        let query = Form::parse(
            "mode=query&index=byScore&pk=even&op=between&sk=10&sk2=20&desc=1&limit=5\
             &f0_name=size&f0_op=%3E%3D&f0_type=N&f0_value=3&f1_name=&f2_name=tag&f2_op=begins_with&f2_type=S&f2_value=a",
        );
        let (operation, request) = search_request(&table(), &query).unwrap();
        assert_eq!(operation, "Query");
        assert_eq!(request["IndexName"], "byScore");
        assert_eq!(request["KeyConditionExpression"], "#k0 = :k0 AND #k1 BETWEEN :k1 AND :k2");
        assert_eq!(
            request["ExpressionAttributeNames"],
            json!({"#k0": "kind", "#k1": "score", "#f0": "size", "#f2": "tag"})
        );
        assert_eq!(request["ExpressionAttributeValues"][":k2"], json!({"N": "20"}));
        assert_eq!(request["FilterExpression"], "#f0 >= :f0 AND begins_with(#f2, :f2)");
        assert_eq!((request["ScanIndexForward"].clone(), request["Limit"].clone()), (json!(false), json!(5)));
    }

    #[test]
    fn a_scan_has_no_key_condition_and_bad_operators_are_refused() {
        let (operation, request) = search_request(&table(), &Form::parse("mode=scan&f0_name=a&f0_op=exists")).unwrap();
        assert_eq!(operation, "Scan");
        assert!(request.get("KeyConditionExpression").is_none());
        assert_eq!(request["FilterExpression"], "attribute_exists(#f0)");
        assert!(request.get("ExpressionAttributeValues").is_none());
        assert!(search_request(&table(), &Form::parse("pk=a&op=like")).is_err());
        assert!(search_request(&table(), &Form::parse("pk=a&index=nope")).is_err());
    }
}
