//! DynamoDB's behaviour as a client sees it, request by request through `handle` against the
//! in-memory store: what is written, what comes back, and the exact error messages.

mod support;

use serde_json::{Value, json};
use support::{MemoryStore, call, fails, ok, validation};

/// A store with table `tab` (hash key `pk`, S).
fn store() -> MemoryStore {
    let mut store = MemoryStore::default();
    let table = json!({
        "TableName": "tab", "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
    });
    assert_eq!(call(&mut store, "CreateTable", &table).0, 200);
    store
}

fn get(store: &mut MemoryStore, pk: &str) -> Option<Value> {
    let answer = ok(store, "GetItem", json!({"TableName": "tab", "Key": {"pk": {"S": pk}}, "ConsistentRead": true}));
    answer.get("Item").cloned()
}

// ---- UpdateItem on an item that does not exist ---------------------------------------------

fn update(store: &mut MemoryStore, members: Value) -> Value {
    let mut body = json!({"TableName": "tab", "Key": {"pk": {"S": "a"}}, "ReturnValues": "ALL_NEW"});
    body.as_object_mut().unwrap().extend(members.as_object().unwrap().clone());
    ok(store, "UpdateItem", body)
}

#[test]
fn removing_from_a_missing_item_creates_nothing() {
    for expression in ["REMOVE x", "REMOVE x[0]", "REMOVE x.y, z[3].w"] {
        let mut store = store();
        let answer = update(&mut store, json!({"UpdateExpression": expression}));
        assert_eq!(answer, json!({}), "{expression}");
        assert_eq!(get(&mut store, "a"), None, "{expression}");
    }
}

#[test]
fn deleting_from_a_missing_item_creates_nothing() {
    for members in [
        json!({"AttributeUpdates": {"x": {"Action": "DELETE"}}}),
        json!({"AttributeUpdates": {"x": {"Action": "DELETE"}, "s": {"Action": "DELETE", "Value": {"SS": ["v"]}}}}),
        json!({"UpdateExpression": "DELETE s :v", "ExpressionAttributeValues": {":v": {"SS": ["v"]}}}),
        json!({"UpdateExpression": "REMOVE x DELETE s :v", "ExpressionAttributeValues": {":v": {"SS": ["v"]}}}),
    ] {
        let mut store = store();
        assert_eq!(update(&mut store, members.clone()), json!({}), "{members}");
        assert_eq!(get(&mut store, "a"), None, "{members}");
    }
}

#[test]
fn setting_or_adding_creates_the_missing_item() {
    let values = json!({":v": {"S": "v"}});
    for (members, created) in [
        (json!({"UpdateExpression": "SET x = :v", "ExpressionAttributeValues": values}), json!({"x": {"S": "v"}})),
        (
            json!({"UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}),
            json!({"n": {"N": "1"}}),
        ),
        (
            json!({"UpdateExpression": "REMOVE y SET x = :v", "ExpressionAttributeValues": values}),
            json!({"x": {"S": "v"}}),
        ),
        (json!({"AttributeUpdates": {"x": {"Action": "PUT", "Value": {"S": "v"}}}}), json!({"x": {"S": "v"}})),
        (
            json!({"AttributeUpdates": {"x": {"Action": "PUT", "Value": {"S": "v"}}, "y": {"Action": "DELETE"}}}),
            json!({"x": {"S": "v"}}),
        ),
    ] {
        let mut store = store();
        let mut item = created.as_object().unwrap().clone();
        item.insert("pk".into(), json!({"S": "a"}));
        let item = Value::Object(item);
        assert_eq!(update(&mut store, members.clone()), json!({"Attributes": item}), "{members}");
        assert_eq!(get(&mut store, "a"), Some(item), "{members}");
    }
}

#[test]
fn an_update_that_changes_nothing_creates_the_key_only_item() {
    let key = json!({"pk": {"S": "a"}});
    for members in [
        json!({}),
        json!({"AttributeUpdates": {}}),
        json!({"ConditionExpression": "attribute_not_exists(pk)"}),
        json!({"ConditionExpression": "pk <> :p", "ExpressionAttributeValues": {":p": {"S": "a"}}}),
    ] {
        let mut store = store();
        let mut body = members.clone();
        body["ReturnConsumedCapacity"] = json!("TOTAL");
        let answer = update(&mut store, body);
        assert_eq!(answer["Attributes"], key, "{members}");
        assert_eq!(answer["ConsumedCapacity"], json!({"TableName": "tab", "CapacityUnits": 1.0}), "{members}");
        assert_eq!(get(&mut store, "a"), Some(key.clone()), "{members}");
    }
}

#[test]
fn create_if_absent_fails_its_condition_the_second_time() {
    for members in [
        json!({"ConditionExpression": "attribute_not_exists(pk)"}),
        json!({"ConditionExpression": "pk <> :p", "ExpressionAttributeValues": {":p": {"S": "a"}}}),
    ] {
        let mut store = store();
        update(&mut store, members.clone());
        let mut body = json!({"TableName": "tab", "Key": {"pk": {"S": "a"}}});
        body.as_object_mut().unwrap().extend(members.as_object().unwrap().clone());
        let (kind, message) = fails(&mut store, "UpdateItem", body);
        assert_eq!(
            (kind.as_str(), message.as_str()),
            ("ConditionalCheckFailedException", "The conditional request failed")
        );
    }
}

#[test]
fn an_update_that_changes_nothing_leaves_an_existing_item_as_it_is() {
    let mut store = store();
    let item = json!({"pk": {"S": "a"}, "x": {"S": "v"}});
    ok(&mut store, "PutItem", json!({"TableName": "tab", "Item": item}));
    assert_eq!(update(&mut store, json!({})), json!({"Attributes": item}));
    assert_eq!(get(&mut store, "a"), Some(item));
}

// ---- JSON types ------------------------------------------------------------------------------

#[test]
fn a_boolean_member_takes_only_json_booleans() {
    for value in [json!({"BOOL": "true"}), json!({"BOOL": "0"}), json!({"NULL": "true"}), json!({"BOOL": "x"})] {
        let mut store = store();
        let item = json!({"pk": {"S": "a"}, "v": value});
        let (kind, message) = fails(&mut store, "PutItem", json!({"TableName": "tab", "Item": item}));
        assert_eq!(
            (kind.as_str(), message.as_str()),
            ("SerializationException", "STRING_VALUE cannot be converted to Boolean")
        );
        assert_eq!(get(&mut store, "a"), None);
    }
}

#[test]
fn a_body_that_is_not_json_gets_a_serialization_exception_without_message() {
    for body in [&b"{broken json"[..], b"{\"TableName\": ", b"\xff"] {
        let response = support::send(&mut store(), "ListTables", body.to_vec());
        assert_eq!(response.status, 400);
        let answer: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(answer, json!({"__type": "com.amazon.coral.service#SerializationException"}));
    }
}

// ---- Consumed capacity -----------------------------------------------------------------------

/// Puts item `pk` holding `data`, a string that makes the item exactly `size` bytes.
fn put_sized(store: &mut MemoryStore, pk: &str, size: usize) {
    let data = "x".repeat(size - "pk".len() - pk.len() - "data".len());
    ok(store, "PutItem", json!({"TableName": "tab", "Item": {"pk": {"S": pk}, "data": {"S": data}}}));
}

#[test]
fn a_consistent_read_of_4_kb_costs_one_unit() {
    for (size, consistent, units) in [(4096, true, 1.0), (4096, false, 0.5), (4097, true, 2.0), (8192, true, 2.0)] {
        let mut store = store();
        put_sized(&mut store, "a", size);
        let body = json!({
            "TableName": "tab", "Key": {"pk": {"S": "a"}}, "ConsistentRead": consistent,
            "ReturnConsumedCapacity": "TOTAL", "ProjectionExpression": "pk",
        });
        let answer = ok(&mut store, "GetItem", body);
        assert_eq!(answer["ConsumedCapacity"], json!({"TableName": "tab", "CapacityUnits": units}), "{size}");
    }
}

#[test]
fn scan_reports_the_units_of_everything_it_read() {
    let mut store = store();
    let scan = |store: &mut MemoryStore, members: Value| {
        let mut body = json!({"TableName": "tab"});
        body.as_object_mut().unwrap().extend(members.as_object().unwrap().clone());
        ok(store, "Scan", body)
    };
    // Nothing read still costs the minimum.
    let answer = scan(&mut store, json!({"ReturnConsumedCapacity": "TOTAL"}));
    assert_eq!(answer["ConsumedCapacity"], json!({"TableName": "tab", "CapacityUnits": 0.5}));
    // 3 items of 3000 bytes: 9000 bytes, three 4 KB units.
    for pk in ["a", "b", "c"] {
        put_sized(&mut store, pk, 3000);
    }
    let answer = scan(&mut store, json!({"ReturnConsumedCapacity": "TOTAL", "ConsistentRead": true}));
    assert_eq!(answer["ConsumedCapacity"], json!({"TableName": "tab", "CapacityUnits": 3.0}));
    let answer = scan(&mut store, json!({"ReturnConsumedCapacity": "INDEXES"}));
    assert_eq!(
        answer["ConsumedCapacity"],
        json!({"TableName": "tab", "CapacityUnits": 1.5, "Table": {"CapacityUnits": 1.5}})
    );
    // Only what the page read: 2 items, 6000 bytes.
    let answer = scan(&mut store, json!({"ReturnConsumedCapacity": "TOTAL", "Limit": 2}));
    assert_eq!(answer["ConsumedCapacity"], json!({"TableName": "tab", "CapacityUnits": 1.0}));
    for members in [json!({}), json!({"ReturnConsumedCapacity": "NONE"})] {
        assert!(scan(&mut store, members).get("ConsumedCapacity").is_none());
    }
    let message =
        validation(&mut store, "Scan", json!({"TableName": "tab", "ReturnConsumedCapacity": "ALL", "Limit": 0}));
    assert_eq!(
        message,
        "2 validation errors detected: \
         Value 'ALL' at 'returnConsumedCapacity' failed to satisfy constraint: Member must satisfy enum value set: [INDEXES, TOTAL, NONE]; \
         Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
    );
}

// ---- Tables ----------------------------------------------------------------------------------

#[test]
fn delete_table_describes_a_deleting_table() {
    let mut store = store();
    put_sized(&mut store, "a", 100);
    let answer = ok(&mut store, "DeleteTable", json!({"TableName": "tab"}));
    let description = answer["TableDescription"].as_object().unwrap();
    let members: Vec<&str> = description.keys().map(String::as_str).collect();
    assert_eq!(
        members,
        [
            "BillingModeSummary",
            "ItemCount",
            "ProvisionedThroughput",
            "TableArn",
            "TableId",
            "TableName",
            "TableSizeBytes",
            "TableStatus"
        ]
    );
    assert_eq!(description["TableStatus"], "DELETING");
    assert_eq!(description["TableName"], "tab");
    assert_eq!(description["ItemCount"], 1);
    assert_eq!(description["BillingModeSummary"]["BillingMode"], "PAY_PER_REQUEST");
    let (kind, _) = fails(&mut store, "DescribeTable", json!({"TableName": "tab"}));
    assert_eq!(kind, "ResourceNotFoundException");
}

// ---- Attribute names -------------------------------------------------------------------------

#[test]
fn attribute_names_are_1_to_65535_bytes() {
    let put = |store: &mut MemoryStore, name: &str| {
        let item = json!({"pk": {"S": "a"}, name: {"N": "1"}});
        call(store, "PutItem", &json!({"TableName": "tab", "Item": item}))
    };
    let mut store = store();
    for (name, message) in [
        (String::new(), "Empty attribute name"),
        ("n".repeat(65536), "Attribute name is too large, must be less than 65536 bytes"),
        // Bytes, not characters: 21,846 three-byte characters are 65,538 bytes.
        ("€".repeat(21846), "Attribute name is too large, must be less than 65536 bytes"),
    ] {
        let (status, answer) = put(&mut store, &name);
        assert_eq!(status, 400);
        assert_eq!(answer["message"], message);
        assert_eq!(get(&mut store, "a"), None);
    }
    let longest = "n".repeat(65535);
    assert_eq!(put(&mut store, &longest).0, 200);
    assert_eq!(get(&mut store, "a").unwrap()[&longest], json!({"N": "1"}));
}

#[test]
fn map_keys_at_any_depth_are_at_most_65535_bytes() {
    let too_large = "n".repeat(65536);
    let nested = |key: &str| {
        [
            json!({"M": {key: {"N": "1"}}}),
            json!({"M": {"a": {"M": {key: {"N": "1"}}}}}),
            json!({"L": [{"S": "x"}, {"M": {key: {"N": "1"}}}]}),
        ]
    };
    for value in nested(&too_large) {
        let mut store = store();
        let item = json!({"pk": {"S": "a"}, "m": value});
        assert_eq!(
            validation(&mut store, "PutItem", json!({"TableName": "tab", "Item": item})),
            "Attribute name is too large, must be less than 65536 bytes"
        );
        let set = json!({
            "TableName": "tab", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET m = :m",
            "ExpressionAttributeValues": {":m": value},
        });
        assert_eq!(
            validation(&mut store, "UpdateItem", set),
            "ExpressionAttributeValues contains invalid value: \
             Attribute name is too large, must be less than 65536 bytes for key :m"
        );
        assert_eq!(get(&mut store, "a"), None);
    }
    let longest = "n".repeat(65535);
    for value in nested(&longest) {
        let mut store = store();
        let item = json!({"pk": {"S": "a"}, "m": value});
        ok(&mut store, "PutItem", json!({"TableName": "tab", "Item": item}));
        assert_eq!(get(&mut store, "a"), Some(item));
    }
}

// ---- Request validation ----------------------------------------------------------------------

fn create_table(store: &mut MemoryStore, key_schema: Value, definitions: Value) -> String {
    let body = json!({
        "TableName": "new", "BillingMode": "PAY_PER_REQUEST", "KeySchema": key_schema, "AttributeDefinitions": definitions,
    });
    validation(store, "CreateTable", body)
}

fn key(name: &str, kind: &str) -> Value {
    json!({"AttributeName": name, "KeyType": kind})
}

fn definition(name: &str) -> Value {
    json!({"AttributeName": name, "AttributeType": "S"})
}

#[test]
fn table_operations_require_a_table_name() {
    let mut store = store();
    let required = "The parameter 'TableName' is required but was not present in the request";
    // Before any other member is looked at.
    let body = json!({"KeySchema": [], "BillingMode": "x"});
    assert_eq!(validation(&mut store, "CreateTable", body), required);
    assert_eq!(validation(&mut store, "CreateTable", json!({"TableName": null})), required);
    assert_eq!(validation(&mut store, "DescribeTable", json!({})), required);
    assert_eq!(validation(&mut store, "DeleteTable", json!({})), required);
}

#[test]
fn a_key_schema_naming_one_attribute_twice() {
    let mut store = store();
    let no_definition = "Invalid KeySchema: Some index key attribute have no definition";
    // More key elements than definitions fails on that before anything else about the keys.
    let twice = json!([key("pk", "HASH"), key("pk", "RANGE")]);
    assert_eq!(create_table(&mut store, twice.clone(), json!([definition("pk")])), no_definition);
    let hash_twice = json!([key("pk", "HASH"), key("pk", "HASH")]);
    assert_eq!(create_table(&mut store, hash_twice, json!([definition("pk")])), no_definition);
    let range_undefined = json!([key("pk", "HASH"), key("sk", "RANGE")]);
    assert_eq!(create_table(&mut store, range_undefined, json!([definition("sk")])), no_definition);
    // With as many definitions as keys, the keys' own rules speak.
    let message = create_table(&mut store, twice, json!([definition("pk"), definition("sk")]));
    assert_eq!(
        message,
        "Invalid KeySchema: The second KeySchemaElement has the same name as the first KeySchemaElement"
    );
}

#[test]
fn more_than_two_key_elements_are_shown_as_dynamodb_prints_them() {
    let mut store = store();
    let schema = json!([key("pk", "HASH"), key("sk", "RANGE"), {"KeyType": "RANGE"}]);
    let message = create_table(&mut store, schema, json!([definition("pk"), definition("sk")]));
    assert_eq!(
        message,
        "2 validation errors detected: Value '[KeySchemaElement(attributeName=pk, keyType=HASH), \
         KeySchemaElement(attributeName=sk, keyType=RANGE), KeySchemaElement(attributeName=null, keyType=RANGE)]' \
         at 'keySchema' failed to satisfy constraint: Member must have length less than or equal to 2; \
         Value null at 'keySchema.3.member.attributeName' failed to satisfy constraint: Member must not be null"
    );
}

#[test]
fn an_attribute_defined_twice() {
    let mut store = store();
    let definitions = json!([definition("pk"), {"AttributeName": "pk", "AttributeType": "N"}]);
    assert_eq!(create_table(&mut store, json!([key("pk", "HASH")]), definitions), "Attribute Name is duplicated: pk");
}

#[test]
fn an_empty_table_name_is_too_short_to_be_one() {
    let mut store = store();
    let item = json!({"pk": {"S": "a"}});
    assert_eq!(
        validation(&mut store, "PutItem", json!({"TableName": "", "Item": item})),
        "1 validation error detected: Value '' at 'tableName' failed to satisfy constraint: \
         Member must have length greater than or equal to 1"
    );
}

#[test]
fn return_item_collection_metrics_is_checked_with_the_other_members() {
    let mut store = store();
    let key = json!({"pk": {"S": "a"}});
    let body = json!({
        "TableName": "tab", "Item": key, "ReturnValues": "x", "ReturnItemCollectionMetrics": "y",
        "ReturnConsumedCapacity": "z",
    });
    assert_eq!(
        validation(&mut store, "PutItem", body),
        "3 validation errors detected: \
         Value 'x' at 'returnValues' failed to satisfy constraint: Member must satisfy enum value set: [NONE, ALL_OLD, UPDATED_OLD, ALL_NEW, UPDATED_NEW]; \
         Value 'y' at 'returnItemCollectionMetrics' failed to satisfy constraint: Member must satisfy enum value set: [SIZE, NONE]; \
         Value 'z' at 'returnConsumedCapacity' failed to satisfy constraint: Member must satisfy enum value set: [INDEXES, TOTAL, NONE]"
    );
    for operation in ["UpdateItem", "DeleteItem"] {
        let body = json!({"TableName": "tab", "Key": key, "ReturnItemCollectionMetrics": "SIZES"});
        assert_eq!(
            validation(&mut store, operation, body),
            "1 validation error detected: Value 'SIZES' at 'returnItemCollectionMetrics' failed to satisfy constraint: \
             Member must satisfy enum value set: [SIZE, NONE]"
        );
    }
    // A valid value is accepted (no secondary indexes: there are no metrics to return).
    let body = json!({"TableName": "tab", "Item": key, "ReturnItemCollectionMetrics": "SIZE"});
    assert_eq!(ok(&mut store, "PutItem", body), json!({}));
}

// ---- ReturnValuesOnConditionCheckFailure -----------------------------------------------------

#[test]
fn a_failed_condition_returns_the_old_item_only_when_asked() {
    let mut store = store();
    ok(&mut store, "PutItem", json!({"TableName": "tab", "Item": {"pk": {"S": "a"}, "v": {"N": "1"}}}));
    for (on_failure, item) in
        [(None, None), (Some("NONE"), None), (Some("ALL_OLD"), Some(json!({"pk": {"S": "a"}, "v": {"N": "1"}})))]
    {
        let mut body =
            json!({"TableName": "tab", "Item": {"pk": {"S": "a"}}, "ConditionExpression": "attribute_not_exists(pk)"});
        if let Some(on_failure) = on_failure {
            body["ReturnValuesOnConditionCheckFailure"] = json!(on_failure);
        }
        let (status, answer) = call(&mut store, "PutItem", &body);
        assert_eq!(status, 400);
        assert_eq!(answer["__type"], json!("com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"));
        assert_eq!(answer.get("Item").cloned(), item, "{on_failure:?}");
    }
}

// ---- What tools ask of the service ---------------------------------------------------------

#[test]
fn limits_endpoints_and_backups_answer_as_dynamodb_does() {
    let mut store = store();
    let limits = ok(&mut store, "DescribeLimits", json!({}));
    assert_eq!(limits["TableMaxWriteCapacityUnits"], 40_000);
    assert_eq!(limits["AccountMaxReadCapacityUnits"], 80_000);
    // The address the client used (the test's Host), so endpoint discovery stays here.
    let endpoints = ok(&mut store, "DescribeEndpoints", json!({}));
    assert_eq!(endpoints, json!({"Endpoints": [{"Address": "localhost:8000", "CachePeriodInMinutes": 1440}]}));
    let backups = ok(&mut store, "DescribeContinuousBackups", json!({"TableName": "tab"}));
    assert_eq!(backups["ContinuousBackupsDescription"]["ContinuousBackupsStatus"], "ENABLED");
    assert_eq!(
        backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"],
        "DISABLED"
    );
    assert_eq!(
        fails(&mut store, "DescribeContinuousBackups", json!({"TableName": "nope"})),
        ("TableNotFoundException".into(), "Table not found: nope".into())
    );
}

#[test]
fn the_table_class_is_set_at_creation_and_by_update_table() {
    let mut store = MemoryStore::default();
    let table = json!({
        "TableName": "cold", "BillingMode": "PAY_PER_REQUEST", "TableClass": "STANDARD_INFREQUENT_ACCESS",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
    });
    let created = ok(&mut store, "CreateTable", table);
    assert_eq!(created["TableDescription"]["TableClassSummary"]["TableClass"], "STANDARD_INFREQUENT_ACCESS");
    ok(&mut store, "UpdateTable", json!({"TableName": "cold", "TableClass": "STANDARD"}));
    let described = ok(&mut store, "DescribeTable", json!({"TableName": "cold"}));
    assert_eq!(described["Table"]["TableClassSummary"]["TableClass"], "STANDARD");
    assert_eq!(
        validation(&mut store, "UpdateTable", json!({"TableName": "cold", "TableClass": "ARCHIVE"})),
        "1 validation error detected: Value 'ARCHIVE' at 'tableClass' failed to satisfy constraint: Member must satisfy enum value set: [STANDARD, STANDARD_INFREQUENT_ACCESS]"
    );
}

// ---- Time to live: the setting -------------------------------------------------------------

#[test]
fn time_to_live_is_enabled_described_and_disabled_as_dynamodb_does() {
    let mut store = store();
    let describe = |store: &mut MemoryStore| ok(store, "DescribeTimeToLive", json!({"TableName": "tab"}));
    assert_eq!(describe(&mut store), json!({"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}));
    let spec = |enabled: bool, attribute: &str| json!({"TableName": "tab", "TimeToLiveSpecification": {"Enabled": enabled, "AttributeName": attribute}});
    let enabled = ok(&mut store, "UpdateTimeToLive", spec(true, "expires_at"));
    assert_eq!(enabled, json!({"TimeToLiveSpecification": {"Enabled": true, "AttributeName": "expires_at"}}));
    assert_eq!(
        describe(&mut store),
        json!({"TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}})
    );
    assert_eq!(validation(&mut store, "UpdateTimeToLive", spec(true, "other")), "TimeToLive is already enabled");
    ok(&mut store, "UpdateTimeToLive", spec(false, "expires_at"));
    assert_eq!(validation(&mut store, "UpdateTimeToLive", spec(false, "expires_at")), "TimeToLive is already disabled");
    assert_eq!(
        validation(&mut store, "UpdateTimeToLive", spec(true, "")),
        "1 validation error detected: Value '' at 'timeToLiveSpecification.attributeName' failed to satisfy constraint: Member must have length greater than or equal to 1"
    );
    let missing = json!({"TableName": "nope", "TimeToLiveSpecification": {"Enabled": true, "AttributeName": "t"}});
    assert_eq!(fails(&mut store, "UpdateTimeToLive", missing).0, "ResourceNotFoundException");
}

// ---- Exports and imports where no worker reaches a bucket (Spin) ----------------------------

#[test]
fn exports_and_imports_say_clearly_that_no_bucket_is_reachable() {
    let mut store = store();
    let arn = "arn:aws:dynamodb:us-east-1:123456789012:table/tab";
    let message = validation(&mut store, "ExportTableToPointInTime", json!({"TableArn": arn, "S3Bucket": "exports"}));
    assert!(message.contains("no destination for S3 buckets"), "{message}");
    let import = json!({
        "S3BucketSource": {"S3Bucket": "exports"},
        "InputFormat": "DYNAMODB_JSON",
        "TableCreationParameters": {
            "TableName": "imported", "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        },
    });
    let message = validation(&mut store, "ImportTable", import);
    assert!(message.contains("no destination for S3 buckets"), "{message}");
    let (kind, _) = fails(&mut store, "DescribeTable", json!({"TableName": "imported"}));
    assert_eq!(kind, "ResourceNotFoundException", "a refused import makes no table");
    // The request's own mistakes come first, as DynamoDB checks them.
    let message = validation(&mut store, "ExportTableToPointInTime", json!({"TableArn": arn, "S3Bucket": "-bad-"}));
    assert!(message.contains("s3Bucket"), "{message}");
    let message = validation(&mut store, "ImportTable", json!({"InputFormat": "XML"}));
    assert!(message.starts_with("3 validation errors detected"), "{message}");
    let listed = ok(&mut store, "ListExports", json!({}));
    assert_eq!(listed["ExportSummaries"], json!([]));
    let (kind, _) =
        fails(&mut store, "DescribeImport", json!({"ImportArn": format!("{arn}/import/01700000000000-deadbeef")}));
    assert_eq!(kind, "ImportNotFoundException");
}

/// The reference store with a worker beside it, as the host's component has: exports and imports
/// are recorded as jobs (no worker runs them here).
struct WithWorker(MemoryStore);

impl dynabox_handler::storage::Storage for WithWorker {
    fn call(
        &mut self,
        account: &str,
        request: dynabox_handler::storage::Request<'_>,
    ) -> Result<dynabox_handler::storage::Answer, dynabox_handler::storage::Failure> {
        self.0.call(account, request)
    }

    fn runs_transfers(&self) -> bool {
        true
    }
}

fn with_worker(store: &mut WithWorker, operation: &str, body: Value) -> (u16, Value) {
    let request = support::request(operation, body.to_string().into_bytes());
    let response = dynabox_handler::handle(&request, store, &mut support::AcceptAll);
    (response.status, serde_json::from_slice(&response.body).unwrap())
}

#[test]
fn exports_and_imports_are_recorded_listed_in_pages_and_kept_to_their_client_tokens() {
    let mut store = WithWorker(store());
    let arn = "arn:aws:dynamodb:us-east-1:123456789012:table/tab";
    let export = json!({"TableArn": arn, "S3Bucket": "exports"});
    let (status, answer) = with_worker(&mut store, "ExportTableToPointInTime", export.clone());
    assert_eq!(
        (status, answer["__type"].as_str().unwrap_or_default()),
        (400, "com.amazonaws.dynamodb.v20120810#PointInTimeRecoveryUnavailableException")
    );
    let enable = json!({"TableName": "tab", "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": true}});
    assert_eq!(with_worker(&mut store, "UpdateContinuousBackups", enable).0, 200);

    let mut arns = Vec::new();
    for token in ["a", "b", "c"] {
        let mut request = export.clone();
        request["ClientToken"] = json!(token);
        let (status, answer) = with_worker(&mut store, "ExportTableToPointInTime", request.clone());
        assert_eq!(status, 200, "{answer}");
        let described = &answer["ExportDescription"];
        assert_eq!(described["ExportStatus"], "IN_PROGRESS");
        assert_eq!(described["ExportType"], "FULL_EXPORT");
        arns.push(described["ExportArn"].as_str().unwrap().to_string());
        // The same request under its token is the same export; another request is refused.
        let again = with_worker(&mut store, "ExportTableToPointInTime", request.clone()).1;
        assert_eq!(again["ExportDescription"]["ExportArn"], described["ExportArn"]);
        request["ExportFormat"] = json!("ION");
        let (status, refused) = with_worker(&mut store, "ExportTableToPointInTime", request);
        assert_eq!(
            (status, refused["__type"].as_str().unwrap()),
            (400, "com.amazonaws.dynamodb.v20120810#ExportConflictException")
        );
    }
    arns.sort();
    let first = with_worker(&mut store, "ListExports", json!({"TableArn": arn, "MaxResults": 2})).1;
    let listed: Vec<&str> =
        first["ExportSummaries"].as_array().unwrap().iter().map(|s| s["ExportArn"].as_str().unwrap()).collect();
    assert_eq!(listed, [&arns[0], &arns[1]]);
    let next = first["NextToken"].clone();
    let second = with_worker(&mut store, "ListExports", json!({"TableArn": arn, "MaxResults": 2, "NextToken": next})).1;
    assert_eq!(second["ExportSummaries"].as_array().unwrap().len(), 1);
    assert_eq!(second.get("NextToken"), None);
    let described = with_worker(&mut store, "DescribeExport", json!({"ExportArn": arns[2]})).1;
    assert_eq!(described["ExportDescription"]["S3Bucket"], "exports");

    for name in ["first", "second"] {
        let import = json!({
            "S3BucketSource": {"S3Bucket": "exports", "S3KeyPrefix": "in"},
            "InputFormat": "DYNAMODB_JSON",
            "TableCreationParameters": {
                "TableName": name, "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            },
        });
        let (status, answer) = with_worker(&mut store, "ImportTable", import);
        assert_eq!(
            (status, &answer["ImportTableDescription"]["ImportStatus"]),
            (200, &json!("IN_PROGRESS")),
            "{answer}"
        );
        let table = with_worker(&mut store, "DescribeTable", json!({"TableName": name})).1;
        assert_eq!(table["Table"]["TableStatus"], "CREATING");
    }
    let first = with_worker(&mut store, "ListImports", json!({"PageSize": 1})).1;
    assert_eq!(first["ImportSummaryList"].as_array().unwrap().len(), 1);
    let next = first["NextToken"].clone();
    let second = with_worker(&mut store, "ListImports", json!({"PageSize": 1, "NextToken": next})).1;
    assert_eq!(second["ImportSummaryList"].as_array().unwrap().len(), 1);
    assert_ne!(first["ImportSummaryList"][0]["ImportArn"], second["ImportSummaryList"][0]["ImportArn"]);
    assert_eq!(second.get("NextToken"), None);
}
