//! Tables: the list (status, items, size, indexes, stream, time to live), the create form (key
//! schema, local and global indexes with projections, billing mode, time to live, stream,
//! deletion protection) and deleting a table once its name is typed again.

use std::collections::BTreeMap;

use dynabox_handler::http::Response;
use serde::Serialize;
use serde_json::{Value, json};

use super::api::Failure;
use super::form::{self, Form};
use super::pages::{self, Choice, KEY_TYPES, Layout, TableInfo, choices};
use super::{Console, Visit};

/// Tables on one page of the list.
const TABLES_PER_PAGE: u32 = 100;

/// A table as the list shows it.
#[derive(Serialize)]
pub struct Listed {
    pub info: TableInfo,
    /// The attribute of the time to live, when enabled.
    pub ttl: Option<String>,
    pub link: String,
}

#[derive(Serialize)]
struct TablesPage {
    layout: Layout,
    tables: Vec<Listed>,
    next: Option<String>,
    error: Option<Failure>,
}

pub async fn list(console: &Console, visit: &Visit, layout: Layout) -> Response {
    let mut request = json!({"Limit": TABLES_PER_PAGE});
    if let Some(start) = visit.query.get("start") {
        request["ExclusiveStartTableName"] = json!(start);
    }
    let mut page = TablesPage { layout, tables: Vec::new(), next: None, error: None };
    let listed = match console.call(visit, "ListTables", &request).await {
        Ok(listed) => listed,
        Err(failure) => {
            page.error = Some(failure);
            return pages::render(500, "tables.html", &page);
        }
    };
    page.next = listed["LastEvaluatedTableName"]
        .as_str()
        .map(|last| format!("/console/tables?{}", form::query(&[("start", last)])));
    for name in listed["TableNames"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        // A table deleted since it was listed is left out.
        if let Ok((info, ttl)) = describe(console, visit, name).await {
            page.tables.push(Listed { link: form::table_url(name, "", ""), info, ttl });
        }
    }
    pages::render(200, "tables.html", &page)
}

/// A table's description and its time-to-live attribute, when enabled.
pub async fn describe(console: &Console, visit: &Visit, name: &str) -> Result<(TableInfo, Option<String>), Failure> {
    let described = console.call(visit, "DescribeTable", &json!({"TableName": name})).await?;
    let ttl = console.call(visit, "DescribeTimeToLive", &json!({"TableName": name})).await?;
    let ttl = &ttl["TimeToLiveDescription"];
    let ttl =
        (ttl["TimeToLiveStatus"] == "ENABLED").then(|| ttl["AttributeName"].as_str().unwrap_or_default().to_string());
    Ok((TableInfo::from_description(&described["Table"]), ttl))
}

/// One row of index fields in the create form, as typed.
#[derive(Serialize)]
struct IndexRow {
    prefix: String,
    name: String,
    hash: String,
    range: String,
    attributes: String,
    hash_types: Vec<Choice>,
    range_types: Vec<Choice>,
    projections: Vec<Choice>,
}

#[derive(Serialize)]
struct CreatePage {
    layout: Layout,
    /// The fields as typed, by name.
    values: BTreeMap<String, String>,
    hash_types: Vec<Choice>,
    range_types: Vec<Choice>,
    billing_modes: Vec<Choice>,
    stream_views: Vec<Choice>,
    deletion_protection: bool,
    global: Vec<IndexRow>,
    local: Vec<IndexRow>,
    more_rows: String,
    error: Option<Failure>,
}

const PROJECTIONS: &[(&str, &str)] =
    &[("ALL", "All attributes"), ("KEYS_ONLY", "Keys only"), ("INCLUDE", "Keys and included")];
const STREAM_VIEWS: &[(&str, &str)] = &[
    ("", "off"),
    ("KEYS_ONLY", "keys only"),
    ("NEW_IMAGE", "new image"),
    ("OLD_IMAGE", "old image"),
    ("NEW_AND_OLD_IMAGES", "new and old images"),
];
const BILLING_MODES: &[(&str, &str)] =
    &[("PAY_PER_REQUEST", "On demand (pay per request)"), ("PROVISIONED", "Provisioned")];

/// Index rows the form offers unless asked for more (`?rows=N`, no script needed).
const INDEX_ROWS: usize = 2;

pub fn create_form(query: &Form, layout: Layout, error: Option<Failure>) -> Response {
    let rows = query.get("rows").and_then(|r| r.parse().ok()).unwrap_or(INDEX_ROWS).clamp(1, 20);
    let row = |prefix: String| IndexRow {
        name: query.text(&format!("{prefix}name")).to_string(),
        hash: query.text(&format!("{prefix}hash")).to_string(),
        range: query.text(&format!("{prefix}range")).to_string(),
        attributes: query.text(&format!("{prefix}attributes")).to_string(),
        hash_types: choices(KEY_TYPES, query.get(&format!("{prefix}hash_type")).unwrap_or("S")),
        range_types: choices(KEY_TYPES, query.get(&format!("{prefix}range_type")).unwrap_or("S")),
        projections: choices(PROJECTIONS, query.get(&format!("{prefix}projection")).unwrap_or("ALL")),
        prefix,
    };
    let page = CreatePage {
        layout,
        values: ["name", "hash", "range", "read_units", "write_units", "ttl"]
            .into_iter()
            .map(|name| (name.to_string(), query.text(name).to_string()))
            .collect(),
        hash_types: choices(KEY_TYPES, query.get("hash_type").unwrap_or("S")),
        range_types: choices(KEY_TYPES, query.get("range_type").unwrap_or("S")),
        billing_modes: choices(BILLING_MODES, query.get("billing").unwrap_or("PAY_PER_REQUEST")),
        stream_views: choices(STREAM_VIEWS, query.text("stream")),
        deletion_protection: query.get("deletion_protection").is_some(),
        global: (0..rows).map(|i| row(format!("gsi{i}_"))).collect(),
        local: (0..rows).map(|i| row(format!("lsi{i}_"))).collect(),
        more_rows: format!("/console/tables/new?rows={}", rows + 1),
        error,
    };
    pages::render(if page.error.is_some() { 400 } else { 200 }, "create_table.html", &page)
}

/// The CreateTable request of the form's fields: DynamoDB judges them, and its message is shown
/// with the form.
fn create_request(form: &Form) -> Value {
    let mut definitions: Vec<Value> = Vec::new();
    let mut define = |name: &str, kind: &str| {
        let definition = json!({"AttributeName": name, "AttributeType": kind});
        if !definitions.contains(&definition) {
            definitions.push(definition);
        }
    };
    let mut schema = |hash: &str, hash_type: &str, range: &str, range_type: &str| {
        let mut schema = vec![json!({"AttributeName": hash, "KeyType": "HASH"})];
        define(hash, hash_type);
        if !range.is_empty() {
            schema.push(json!({"AttributeName": range, "KeyType": "RANGE"}));
            define(range, range_type);
        }
        schema
    };
    let field = |name: String| form.text(&name).to_string();
    let table_schema = schema(form.text("hash"), form.text("hash_type"), form.text("range"), form.text("range_type"));
    let provisioned = form.get("billing") == Some("PROVISIONED");
    let throughput = || {
        let units = |name| form.text(name).parse::<u64>().unwrap_or(0);
        json!({"ReadCapacityUnits": units("read_units"), "WriteCapacityUnits": units("write_units")})
    };
    let projection = |prefix: &str| {
        let kind = form.get(&format!("{prefix}projection")).unwrap_or("ALL");
        let mut projection = json!({"ProjectionType": kind});
        if kind == "INCLUDE" {
            let attributes = field(format!("{prefix}attributes"));
            projection["NonKeyAttributes"] = attributes.split(',').map(str::trim).filter(|a| !a.is_empty()).collect();
        }
        projection
    };
    let mut global = Vec::new();
    let mut local = Vec::new();
    for i in 0..20 {
        for (prefix, global_index) in [(format!("gsi{i}_"), true), (format!("lsi{i}_"), false)] {
            let name = field(format!("{prefix}name"));
            if name.is_empty() {
                continue;
            }
            let hash = if global_index { field(format!("{prefix}hash")) } else { form.text("hash").to_string() };
            let hash_type =
                if global_index { field(format!("{prefix}hash_type")) } else { form.text("hash_type").to_string() };
            let mut index = json!({
                "IndexName": name,
                "KeySchema": schema(&hash, &hash_type, &field(format!("{prefix}range")), &field(format!("{prefix}range_type"))),
                "Projection": projection(&prefix),
            });
            if global_index {
                if provisioned {
                    index["ProvisionedThroughput"] = throughput();
                }
                global.push(index);
            } else {
                local.push(index);
            }
        }
    }
    let mut request = json!({
        "TableName": form.text("name"),
        "KeySchema": table_schema,
        "AttributeDefinitions": definitions,
        "BillingMode": if provisioned { "PROVISIONED" } else { "PAY_PER_REQUEST" },
    });
    if provisioned {
        request["ProvisionedThroughput"] = throughput();
    }
    if !global.is_empty() {
        request["GlobalSecondaryIndexes"] = json!(global);
    }
    if !local.is_empty() {
        request["LocalSecondaryIndexes"] = json!(local);
    }
    if let Some(view) = form.get("stream").filter(|v| !v.is_empty()) {
        request["StreamSpecification"] = json!({"StreamEnabled": true, "StreamViewType": view});
    }
    request
}

/// Creates the table, then its time to live and its deletion protection. A time to live
/// DynamoDB refuses deletes the table again, so a refused form changes nothing; protection comes
/// last, as it would refuse that delete.
pub async fn create(console: &Console, visit: &Visit, layout: Layout) -> Response {
    let form = &visit.form;
    let name = form.text("name");
    if let Err(failure) = console.call(visit, "CreateTable", &create_request(form)).await {
        return create_form(form, layout, Some(failure));
    }
    let ttl = form.text("ttl");
    if !ttl.is_empty() {
        let request = json!({"TableName": name, "TimeToLiveSpecification": {"Enabled": true, "AttributeName": ttl}});
        if let Err(failure) = console.call(visit, "UpdateTimeToLive", &request).await {
            let _ = console.call(visit, "DeleteTable", &json!({"TableName": name})).await;
            return create_form(form, layout, Some(failure));
        }
    }
    if form.get("deletion_protection").is_some() {
        let request = json!({"TableName": name, "DeletionProtectionEnabled": true});
        if let Err(failure) = console.call(visit, "UpdateTable", &request).await {
            return create_form(form, layout, Some(failure));
        }
    }
    pages::redirect(&form::table_url(name, "", ""))
}

/// Deletes the table once its name was typed again; DynamoDB's refusal (deletion protection, a
/// table in use) is shown on the table's page.
pub async fn delete(console: &Console, visit: &Visit, layout: Layout, table: &str) -> Response {
    let failure = if visit.form.text("confirm") != table {
        Failure::console("Type the table's name to confirm that it is to be deleted.")
    } else {
        match console.call(visit, "DeleteTable", &json!({"TableName": table})).await {
            Ok(_) => return pages::redirect("/console/tables"),
            Err(failure) => failure,
        }
    };
    super::items::browse_with(console, visit, layout, table, Some(failure)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_a_create_table_request() {
        let form = Form::parse(
            "name=t&hash=pk&hash_type=S&range=sk&range_type=N&billing=PAY_PER_REQUEST\
             &gsi0_name=byScore&gsi0_hash=kind&gsi0_hash_type=S&gsi0_range=score&gsi0_range_type=N&gsi0_projection=INCLUDE&gsi0_attributes=a,+b\
             &gsi1_name=&lsi0_name=bySk2&lsi0_range=sk2&lsi0_range_type=S&lsi0_projection=KEYS_ONLY&stream=NEW_IMAGE",
        );
        let request = create_request(&form);
        assert_eq!(request["KeySchema"][1], json!({"AttributeName": "sk", "KeyType": "RANGE"}));
        let definitions = request["AttributeDefinitions"].as_array().unwrap();
        assert_eq!(definitions.len(), 5, "{definitions:?}");
        let gsi = &request["GlobalSecondaryIndexes"][0];
        assert_eq!(gsi["Projection"], json!({"ProjectionType": "INCLUDE", "NonKeyAttributes": ["a", "b"]}));
        assert_eq!(request["GlobalSecondaryIndexes"].as_array().unwrap().len(), 1);
        let lsi = &request["LocalSecondaryIndexes"][0];
        assert_eq!(lsi["KeySchema"][0], json!({"AttributeName": "pk", "KeyType": "HASH"}));
        assert_eq!(request["StreamSpecification"]["StreamViewType"], "NEW_IMAGE");
        assert!(request.get("ProvisionedThroughput").is_none());
    }
}
