//! Secondary indexes through `handle` on the in-memory store: what CreateTable and UpdateTable
//! accept and describe, and that every item write keeps the index keyspaces exact.

mod support;

use dynabox_handler::storage::{Failure, Keyspace, Request, ScanRequest, Storage};
use serde_json::{Value, json};
use support::{MemoryStore, fails, ok, validation};

const ACCOUNT: &str = "123456789012";

/// Table `tab` (pk S, sk S) with LSI `lsi` (pk, l N, KEYS_ONLY) and GSI `gsi` (g S, INCLUDE x).
fn table_request() -> Value {
    json!({
        "TableName": "tab", "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "l", "AttributeType": "N"},
            {"AttributeName": "g", "AttributeType": "S"},
        ],
        "LocalSecondaryIndexes": [{
            "IndexName": "lsi",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "l", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }],
        "GlobalSecondaryIndexes": [{
            "IndexName": "gsi",
            "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["z", "x"]},
        }],
    })
}

type Edit = dyn FnOnce(&mut Value);

/// Edits a request: `edit` gets the request's JSON to change in place.
fn with(mut request: Value, edit: impl FnOnce(&mut Value)) -> Value {
    edit(&mut request);
    request
}

fn store() -> MemoryStore {
    let mut store = MemoryStore::default();
    ok(&mut store, "CreateTable", table_request());
    store
}

/// The documents of the entries of `table`'s index, in the store's order.
fn index_entries(store: &mut MemoryStore, table: &str, index: &str) -> Vec<Value> {
    let request = ScanRequest {
        keyspace: Keyspace::index(table, index),
        segment: 0,
        total_segments: 1,
        after: None,
        limit: 1000,
        byte_budget: u32::MAX,
    };
    let page = store.ask(ACCOUNT, Request::scan(&request)).unwrap();
    page.items.iter().map(|item| serde_json::from_slice(&item.document).unwrap()).collect()
}

/// The entries of table `tab`'s index, in key order within each partition.
fn entries(store: &mut MemoryStore, index: &str) -> Vec<Value> {
    index_entries(store, "tab", index)
}

fn put(store: &mut MemoryStore, item: Value) {
    ok(store, "PutItem", json!({"TableName": "tab", "Item": item}));
}

fn create_fails(request: Value) -> String {
    validation(&mut MemoryStore::default(), "CreateTable", request)
}

// ---- CreateTable and DescribeTable ------------------------------------------------------------

#[test]
fn create_table_describes_its_indexes() {
    let mut store = MemoryStore::default();
    let created = ok(&mut store, "CreateTable", table_request())["TableDescription"].clone();
    let described = ok(&mut store, "DescribeTable", json!({"TableName": "tab"}))["Table"].clone();
    let arn = "arn:aws:dynamodb:us-east-1:123456789012:table/tab";
    for description in [created, described] {
        assert_eq!(
            description["AttributeDefinitions"],
            json!([
                {"AttributeName": "g", "AttributeType": "S"},
                {"AttributeName": "l", "AttributeType": "N"},
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ])
        );
        assert_eq!(
            description["LocalSecondaryIndexes"],
            json!([{
                "IndexName": "lsi",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "l", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
                "IndexSizeBytes": 0,
                "ItemCount": 0,
                "IndexArn": format!("{arn}/index/lsi"),
            }])
        );
        assert_eq!(
            description["GlobalSecondaryIndexes"],
            json!([{
                "IndexName": "gsi",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["x", "z"]},
                "IndexStatus": "ACTIVE",
                "ProvisionedThroughput": {"NumberOfDecreasesToday": 0, "ReadCapacityUnits": 0, "WriteCapacityUnits": 0},
                "IndexSizeBytes": 0,
                "ItemCount": 0,
                "IndexArn": format!("{arn}/index/gsi"),
            }])
        );
    }
    for index in ["lsi", "gsi"] {
        assert_eq!(store.ask(ACCOUNT, Request::keyspace_stats(&Keyspace::index("tab", index))), Ok((0, 0)));
    }
}

#[test]
fn global_indexes_of_provisioned_tables_need_their_own_throughput() {
    let provisioned = |request: Value| {
        with(request, |r| {
            r["BillingMode"] = json!("PROVISIONED");
            r["ProvisionedThroughput"] = json!({"ReadCapacityUnits": 5, "WriteCapacityUnits": 5});
        })
    };
    assert_eq!(
        create_fails(provisioned(table_request())),
        "One or more parameter values were invalid: ProvisionedThroughput is not specified for index: gsi"
    );
    let request = provisioned(with(table_request(), |r| {
        r["GlobalSecondaryIndexes"][0]["ProvisionedThroughput"] =
            json!({"ReadCapacityUnits": 3, "WriteCapacityUnits": 4})
    }));
    let description = ok(&mut MemoryStore::default(), "CreateTable", request)["TableDescription"].clone();
    assert_eq!(
        description["GlobalSecondaryIndexes"][0]["ProvisionedThroughput"],
        json!({"NumberOfDecreasesToday": 0, "ReadCapacityUnits": 3, "WriteCapacityUnits": 4})
    );
    assert_eq!(description["LocalSecondaryIndexes"][0].get("ProvisionedThroughput"), None);
    let on_demand = with(table_request(), |r| {
        r["GlobalSecondaryIndexes"][0]["ProvisionedThroughput"] =
            json!({"ReadCapacityUnits": 3, "WriteCapacityUnits": 4})
    });
    assert_eq!(
        create_fails(on_demand),
        "One or more parameter values were invalid: ProvisionedThroughput should not be specified for index: gsi when BillingMode is PAY_PER_REQUEST"
    );
}

#[test]
fn create_table_refuses_malformed_indexes() {
    let invalid = "One or more parameter values were invalid: ";
    let cases: Vec<(Box<Edit>, String)> = vec![
        (
            Box::new(|r| r["LocalSecondaryIndexes"] = json!([])),
            format!("{invalid}List of LocalSecondaryIndexes is empty"),
        ),
        (
            Box::new(|r| r["GlobalSecondaryIndexes"] = json!([])),
            format!("{invalid}List of GlobalSecondaryIndexes is empty"),
        ),
        (
            Box::new(|r| r["GlobalSecondaryIndexes"][0]["IndexName"] = json!("lsi")),
            format!("{invalid}Duplicate index name: lsi"),
        ),
        (
            Box::new(|r| r["LocalSecondaryIndexes"][0]["KeySchema"][0]["AttributeName"] = json!("g")),
            format!(
                "{invalid}Index KeySchema does not have the same leading hash key as table KeySchema for index: lsi. index hash key: g, table hash key: pk"
            ),
        ),
        (
            Box::new(|r| r["LocalSecondaryIndexes"][0]["KeySchema"] = json!([{"AttributeName": "pk", "KeyType": "HASH"}])),
            format!("{invalid}Some AttributeDefinitions are not used. AttributeDefinitions: [pk, sk, l, g], keys used: [g, sk, pk]"),
        ),
        (
            Box::new(|r| r["GlobalSecondaryIndexes"][0]["KeySchema"][0]["AttributeName"] = json!("q")),
            format!("{invalid}Some index key attributes are not defined in AttributeDefinitions. Keys: [q], AttributeDefinitions: [pk, sk, l, g]"),
        ),
        (
            Box::new(|r| r["GlobalSecondaryIndexes"][0]["Projection"] = json!({})),
            format!("{invalid}Unknown ProjectionType: null"),
        ),
        (
            Box::new(|r| r["GlobalSecondaryIndexes"][0]["Projection"] = json!({"ProjectionType": "INCLUDE"})),
            format!("{invalid}ProjectionType is INCLUDE, but NonKeyAttributes is not specified"),
        ),
        (
            Box::new(|r| r["GlobalSecondaryIndexes"][0]["Projection"]["ProjectionType"] = json!("ALL")),
            format!("{invalid}ProjectionType is ALL, but NonKeyAttributes is specified"),
        ),
        (
            Box::new(|r| r["GlobalSecondaryIndexes"][0]["Projection"]["NonKeyAttributes"] = json!(["x", "x"])),
            format!("{invalid}Duplicate element in NonKeyAttributes: x"),
        ),
        (
            Box::new(|r| r["GlobalSecondaryIndexes"][0]["KeySchema"] = json!([{"AttributeName": "g", "KeyType": "RANGE"}])),
            "Invalid KeySchema: The first KeySchemaElement is not a HASH key type".to_string(),
        ),
        (
            Box::new(|r| {
                r["GlobalSecondaryIndexes"][0]["IndexName"] = json!("g!");
                r["GlobalSecondaryIndexes"][0]["Projection"] = Value::Null;
            }),
            "3 validation errors detected: \
             Value 'g!' at 'globalSecondaryIndexes.1.member.indexName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; \
             Value 'g!' at 'globalSecondaryIndexes.1.member.indexName' failed to satisfy constraint: Member must have length greater than or equal to 3; \
             Value null at 'globalSecondaryIndexes.1.member.projection' failed to satisfy constraint: Member must not be null"
                .to_string(),
        ),
    ];
    for (edit, expected) in cases {
        assert_eq!(create_fails(with(table_request(), edit)), expected);
    }
}

#[test]
fn local_indexes_need_a_table_sort_key_and_stay_within_five() {
    let without_sort = with(table_request(), |r| {
        r["KeySchema"] = json!([{"AttributeName": "pk", "KeyType": "HASH"}]);
        r["AttributeDefinitions"].as_array_mut().unwrap().remove(1);
    });
    assert_eq!(
        create_fails(without_sort),
        "One or more parameter values were invalid: Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex"
    );
    let six = with(table_request(), |r| {
        let lsi = r["LocalSecondaryIndexes"][0].clone();
        r["LocalSecondaryIndexes"] =
            json!((0..6).map(|i| with(lsi.clone(), |l| l["IndexName"] = json!(format!("lsi{i}")))).collect::<Vec<_>>());
    });
    assert_eq!(
        create_fails(six),
        "One or more parameter values were invalid: Number of LocalSecondaryIndexes exceeds per-table limit of 5"
    );
}

#[test]
fn deletion_protection_keeps_a_table() {
    let mut store = MemoryStore::default();
    let request = with(table_request(), |r| r["DeletionProtectionEnabled"] = json!(true));
    let description = ok(&mut store, "CreateTable", request)["TableDescription"].clone();
    assert_eq!(description["DeletionProtectionEnabled"], json!(true));
    assert_eq!(
        validation(&mut store, "DeleteTable", json!({"TableName": "tab"})),
        "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first."
    );
}

// ---- Item writes keep the indexes ------------------------------------------------------------

#[test]
fn a_put_writes_each_index_its_projection() {
    let mut store = store();
    let item =
        json!({"pk": {"S": "a"}, "sk": {"S": "1"}, "l": {"N": "5"}, "g": {"S": "G"}, "x": {"S": "X"}, "y": {"S": "Y"}});
    put(&mut store, item.clone());
    assert_eq!(entries(&mut store, "lsi"), [json!({"pk": {"S": "a"}, "sk": {"S": "1"}, "l": {"N": "5"}})]);
    assert_eq!(
        entries(&mut store, "gsi"),
        [json!({"pk": {"S": "a"}, "sk": {"S": "1"}, "g": {"S": "G"}, "x": {"S": "X"}})]
    );
    let description = ok(&mut store, "DescribeTable", json!({"TableName": "tab"}))["Table"].clone();
    assert_eq!(description["GlobalSecondaryIndexes"][0]["ItemCount"], json!(1));
    assert_eq!(description["LocalSecondaryIndexes"][0]["ItemCount"], json!(1));
    assert!(description["GlobalSecondaryIndexes"][0]["IndexSizeBytes"].as_u64().unwrap() > 0);
}

#[test]
fn items_without_the_index_keys_are_not_in_the_index() {
    let mut store = store();
    put(&mut store, json!({"pk": {"S": "a"}, "sk": {"S": "1"}, "g": {"S": "G"}}));
    put(&mut store, json!({"pk": {"S": "a"}, "sk": {"S": "2"}, "x": {"S": "X"}}));
    assert_eq!(entries(&mut store, "lsi"), Vec::<Value>::new());
    assert_eq!(entries(&mut store, "gsi"), [json!({"pk": {"S": "a"}, "sk": {"S": "1"}, "g": {"S": "G"}})]);
}

#[test]
fn updates_move_and_remove_entries() {
    let mut store = store();
    put(&mut store, json!({"pk": {"S": "a"}, "sk": {"S": "1"}, "g": {"S": "G"}, "l": {"N": "1"}}));
    let key = json!({"pk": {"S": "a"}, "sk": {"S": "1"}});
    let update = |store: &mut MemoryStore, expression: &str, values: Value| {
        let mut body = json!({"TableName": "tab", "Key": key, "UpdateExpression": expression});
        if values != json!({}) {
            body["ExpressionAttributeValues"] = values;
        }
        ok(store, "UpdateItem", body);
    };
    update(&mut store, "SET g = :g, x = :x", json!({":g": {"S": "H"}, ":x": {"S": "X"}}));
    assert_eq!(
        entries(&mut store, "gsi"),
        [json!({"pk": {"S": "a"}, "sk": {"S": "1"}, "g": {"S": "H"}, "x": {"S": "X"}})]
    );
    update(&mut store, "REMOVE g SET l = :l", json!({":l": {"N": "2"}}));
    assert_eq!(entries(&mut store, "gsi"), Vec::<Value>::new());
    assert_eq!(entries(&mut store, "lsi"), [json!({"pk": {"S": "a"}, "sk": {"S": "1"}, "l": {"N": "2"}})]);
}

#[test]
fn blind_puts_and_deletes_remove_stale_entries() {
    let mut store = store();
    put(&mut store, json!({"pk": {"S": "a"}, "sk": {"S": "1"}, "g": {"S": "G"}, "l": {"N": "1"}}));
    put(&mut store, json!({"pk": {"S": "a"}, "sk": {"S": "1"}, "l": {"N": "3"}}));
    assert_eq!(entries(&mut store, "gsi"), Vec::<Value>::new());
    assert_eq!(entries(&mut store, "lsi"), [json!({"pk": {"S": "a"}, "sk": {"S": "1"}, "l": {"N": "3"}})]);
    ok(&mut store, "DeleteItem", json!({"TableName": "tab", "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}}}));
    assert_eq!(entries(&mut store, "lsi"), Vec::<Value>::new());
}

#[test]
fn index_keys_of_the_wrong_type_are_refused() {
    let mut store = store();
    let item = json!({"pk": {"S": "a"}, "sk": {"S": "1"}, "g": {"N": "1"}});
    assert_eq!(
        validation(&mut store, "PutItem", json!({"TableName": "tab", "Item": item})),
        "One or more parameter values were invalid: Type mismatch for Index Key g Expected: S Actual: N IndexName: gsi"
    );
    let update = json!({
        "TableName": "tab", "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
        "UpdateExpression": "SET l = :l", "ExpressionAttributeValues": {":l": {"S": "x"}},
    });
    assert_eq!(
        validation(&mut store, "UpdateItem", update),
        "One or more parameter values were invalid: Type mismatch for Index Key l Expected: N Actual: S IndexName: lsi"
    );
    let item = json!({"pk": {"S": "a"}, "sk": {"S": "1"}, "g": {"S": ""}});
    assert_eq!(
        validation(&mut store, "PutItem", json!({"TableName": "tab", "Item": item})),
        "One or more parameter values are not valid. A value specified for a secondary index key is not supported. \
         The AttributeValue for a key attribute cannot contain an empty string value. IndexName: gsi, IndexKey: g"
    );
    let scan = ok(&mut store, "Scan", json!({"TableName": "tab"}));
    assert_eq!(scan["Count"], json!(0));
}

/// Table `sized` (pk S, sk S) with GSI `gsi` (g S, h S) and LSI `lsi` (pk, l S), both ALL.
fn sized_store() -> MemoryStore {
    let mut store = MemoryStore::default();
    let element = |name: &str, kind: &str| json!({"AttributeName": name, "KeyType": kind});
    let key = |hash: &str, range: &str| json!([element(hash, "HASH"), element(range, "RANGE")]);
    let definitions: Vec<Value> =
        ["pk", "sk", "g", "h", "l"].iter().map(|name| json!({"AttributeName": name, "AttributeType": "S"})).collect();
    let all = json!({"ProjectionType": "ALL"});
    let table = json!({
        "TableName": "sized", "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": key("pk", "sk"), "AttributeDefinitions": definitions,
        "GlobalSecondaryIndexes": [{"IndexName": "gsi", "KeySchema": key("g", "h"), "Projection": all}],
        "LocalSecondaryIndexes": [{"IndexName": "lsi", "KeySchema": key("pk", "l"), "Projection": all}],
    });
    ok(&mut store, "CreateTable", table);
    store
}

#[test]
fn index_key_values_have_the_key_size_limits() {
    let mut store = sized_store();
    let key = json!({"pk": {"S": "a"}, "sk": {"S": "1"}});
    let at_limits = json!({
        "pk": {"S": "a"}, "sk": {"S": "1"},
        "g": {"S": "g".repeat(2048)}, "h": {"S": "h".repeat(1024)}, "l": {"S": "l".repeat(1024)},
    });
    ok(&mut store, "PutItem", json!({"TableName": "sized", "Item": at_limits}));
    assert_eq!(json!(index_entries(&mut store, "sized", "gsi")), json!([at_limits]));
    assert_eq!(json!(index_entries(&mut store, "sized", "lsi")), json!([at_limits]));

    // Bytes, not characters: 683 three-byte characters are 2,049 bytes.
    for (attribute, value, size, max, index) in [
        ("g", "g".repeat(2049), 2049, 2048, "gsi"),
        ("g", "€".repeat(683), 2049, 2048, "gsi"),
        ("h", "h".repeat(1025), 1025, 1024, "gsi"),
        ("l", "l".repeat(1025), 1025, 1024, "lsi"),
    ] {
        let expected = format!(
            "One or more parameter values were invalid: Size limit exceeded for Index Key {attribute} \
             Actual Size: {size} bytes Max Size: {max} bytes IndexName: {index}"
        );
        let value = json!({"S": value});
        let mut new_item =
            json!({"pk": {"S": "b"}, "sk": {"S": "1"}, "g": {"S": "g"}, "h": {"S": "h"}, "l": {"S": "l"}});
        new_item[attribute] = value.clone();
        let set = |key: &Value| {
            json!({
                "TableName": "sized", "Key": key, "UpdateExpression": "SET #a = :v",
                "ExpressionAttributeNames": {"#a": attribute}, "ExpressionAttributeValues": {":v": value},
            })
        };
        let new_key = json!({"pk": {"S": "b"}, "sk": {"S": "1"}});
        let put = json!({"Put": {"TableName": "sized", "Item": new_item}});
        let update = json!({"Update": set(&key)});
        for (operation, request) in [
            ("PutItem", json!({"TableName": "sized", "Item": new_item})),
            ("UpdateItem", set(&key)),
            ("UpdateItem", set(&new_key)),
            ("BatchWriteItem", json!({"RequestItems": {"sized": [{"PutRequest": {"Item": new_item}}]}})),
            ("TransactWriteItems", json!({"TransactItems": [put]})),
            ("TransactWriteItems", json!({"TransactItems": [update]})),
        ] {
            assert_eq!(validation(&mut store, operation, request), expected, "{operation} {attribute} {size}");
        }
        let scan = ok(&mut store, "Scan", json!({"TableName": "sized", "ConsistentRead": true}));
        assert_eq!(scan["Items"], json!([at_limits]), "nothing written");
        assert_eq!(json!(index_entries(&mut store, "sized", "gsi")), json!([at_limits]));
    }
}

// ---- UpdateTable -------------------------------------------------------------------------------

/// Table `plain` (pk S) with no index, on demand.
fn plain_request() -> Value {
    json!({
        "TableName": "plain", "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
    })
}

fn plain_store() -> MemoryStore {
    let mut store = MemoryStore::default();
    ok(&mut store, "CreateTable", plain_request());
    store
}

/// UpdateTable creating GSI `byg` on `g` (S), ALL, on table `plain`.
fn create_byg() -> Value {
    json!({
        "TableName": "plain",
        "AttributeDefinitions": [{"AttributeName": "g", "AttributeType": "S"}],
        "GlobalSecondaryIndexUpdates": [{"Create": {
            "IndexName": "byg",
            "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"},
        }}],
    })
}

/// The entries of table `plain`'s index, sorted (its partitions come in hash order).
fn plain_entries(store: &mut MemoryStore, index: &str) -> Vec<Value> {
    let mut documents = index_entries(store, "plain", index);
    documents.sort_by_key(|d| d.to_string());
    documents
}

fn put_plain(store: &mut MemoryStore, item: Value) {
    ok(store, "PutItem", json!({"TableName": "plain", "Item": item}));
}

fn describe_plain(store: &mut MemoryStore) -> Value {
    ok(store, "DescribeTable", json!({"TableName": "plain"}))["Table"].clone()
}

#[test]
fn an_index_created_on_an_empty_table_is_active_at_once() {
    let mut store = plain_store();
    let description = ok(&mut store, "UpdateTable", create_byg())["TableDescription"].clone();
    let index = &description["GlobalSecondaryIndexes"][0];
    assert_eq!(index["IndexName"], json!("byg"));
    assert_eq!(index["IndexStatus"], json!("ACTIVE"));
    assert_eq!(index.get("Backfilling"), None);
    assert_eq!(
        description["AttributeDefinitions"],
        json!([{"AttributeName": "g", "AttributeType": "S"}, {"AttributeName": "pk", "AttributeType": "S"}])
    );
    put_plain(&mut store, json!({"pk": {"S": "a"}, "g": {"S": "G"}}));
    assert_eq!(plain_entries(&mut store, "byg"), [json!({"pk": {"S": "a"}, "g": {"S": "G"}})]);
}

#[test]
fn an_index_created_on_a_table_with_items_is_backfilled() {
    let mut store = plain_store();
    for (pk, g) in [("a", json!({"S": "1"})), ("b", json!({"S": "2"})), ("c", json!({"N": "3"}))] {
        put_plain(&mut store, json!({"pk": {"S": pk}, "g": g}));
    }
    put_plain(&mut store, json!({"pk": {"S": "d"}}));
    let description = ok(&mut store, "UpdateTable", create_byg())["TableDescription"].clone();
    let index = &description["GlobalSecondaryIndexes"][0];
    assert_eq!((&index["IndexStatus"], &index["Backfilling"]), (&json!("CREATING"), &json!(true)));
    assert_eq!(plain_entries(&mut store, "byg"), Vec::<Value>::new());
    // Writes during the backfill maintain the index already.
    put_plain(&mut store, json!({"pk": {"S": "e"}, "g": {"S": "5"}}));
    assert_eq!(plain_entries(&mut store, "byg"), [json!({"pk": {"S": "e"}, "g": {"S": "5"}})]);
    // A second online index action waits for this one.
    let another = with(create_byg(), |r| r["GlobalSecondaryIndexUpdates"][0]["Create"]["IndexName"] = json!("other"));
    let (kind, message) = fails(&mut store, "UpdateTable", another);
    assert_eq!(kind, "LimitExceededException");
    assert_eq!(
        message,
        "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per table"
    );

    let mut steps = 0;
    while !dynabox_handler::index::backfill_step(&mut store, ACCOUNT, "plain", "byg", 2).unwrap().done {
        steps += 1;
        assert!(steps < 10, "the backfill ends");
    }
    assert_eq!(steps, 2, "5 items, 2 a step: the third step reads the last");
    let index = describe_plain(&mut store)["GlobalSecondaryIndexes"][0].clone();
    assert_eq!(
        (&index["IndexStatus"], index.get("Backfilling"), &index["ItemCount"]),
        (&json!("ACTIVE"), None, &json!(3))
    );
    assert_eq!(
        plain_entries(&mut store, "byg"),
        [
            json!({"pk": {"S": "a"}, "g": {"S": "1"}}),
            json!({"pk": {"S": "b"}, "g": {"S": "2"}}),
            json!({"pk": {"S": "e"}, "g": {"S": "5"}}),
        ]
    );
    assert!(dynabox_handler::index::backfill_step(&mut store, ACCOUNT, "plain", "byg", 2).unwrap().done);
    assert!(dynabox_handler::index::backfill_step(&mut store, ACCOUNT, "plain", "gone", 2).unwrap().done);
}

#[test]
fn a_table_goes_with_its_index_keyspaces_once_no_index_is_being_created() {
    let mut store = plain_store();
    put_plain(&mut store, json!({"pk": {"S": "a"}, "g": {"S": "G"}}));
    ok(&mut store, "UpdateTable", create_byg());
    assert_eq!(
        fails(&mut store, "DeleteTable", json!({"TableName": "plain"})),
        (
            "ResourceInUseException".to_string(),
            "Attempt to change a resource which is still in use: Cannot delete table while indexes are being created, updated, or deleted."
                .to_string()
        )
    );
    while !dynabox_handler::index::backfill_step(&mut store, ACCOUNT, "plain", "byg", 10).unwrap().done {}
    ok(&mut store, "DeleteTable", json!({"TableName": "plain"}));
    assert!(store.ask(ACCOUNT, Request::keyspace_stats(&Keyspace::index("plain", "byg"))).is_err());
    // A table of the same name starts without the old one's entries.
    ok(&mut store, "CreateTable", plain_request());
    ok(&mut store, "UpdateTable", create_byg());
    assert_eq!(plain_entries(&mut store, "byg"), Vec::<Value>::new());
}

#[test]
fn deleting_an_index_drops_its_keyspace() {
    let mut store = plain_store();
    ok(&mut store, "UpdateTable", create_byg());
    put_plain(&mut store, json!({"pk": {"S": "a"}, "g": {"S": "G"}}));
    let delete = json!({"TableName": "plain", "GlobalSecondaryIndexUpdates": [{"Delete": {"IndexName": "byg"}}]});
    let description = ok(&mut store, "UpdateTable", delete)["TableDescription"].clone();
    let deleting = &description["GlobalSecondaryIndexes"][0];
    assert_eq!((&deleting["IndexName"], &deleting["IndexStatus"]), (&json!("byg"), &json!("DELETING")));
    assert_eq!(deleting["ItemCount"], json!(1));
    assert_eq!(description["AttributeDefinitions"], json!([{"AttributeName": "pk", "AttributeType": "S"}]));
    assert_eq!(describe_plain(&mut store).get("GlobalSecondaryIndexes"), None);
    assert!(store.ask(ACCOUNT, Request::keyspace_stats(&Keyspace::index("plain", "byg"))).is_err());
    put_plain(&mut store, json!({"pk": {"S": "b"}, "g": {"S": "G"}}));
    assert_eq!(ok(&mut store, "Scan", json!({"TableName": "plain"}))["Count"], json!(2));
}

#[test]
fn deletion_protection_is_switched_by_update_table() {
    let mut store = plain_store();
    let protect = |on: bool| json!({"TableName": "plain", "DeletionProtectionEnabled": on});
    let description = ok(&mut store, "UpdateTable", protect(true))["TableDescription"].clone();
    assert_eq!(description["DeletionProtectionEnabled"], json!(true));
    validation(&mut store, "DeleteTable", json!({"TableName": "plain"}));
    ok(&mut store, "UpdateTable", protect(false));
    ok(&mut store, "DeleteTable", json!({"TableName": "plain"}));
}

#[test]
fn billing_mode_switches_carry_the_global_indexes_along() {
    let mut store = plain_store();
    ok(&mut store, "UpdateTable", create_byg());
    let to_provisioned = json!({
        "TableName": "plain", "BillingMode": "PROVISIONED",
        "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 6},
    });
    assert_eq!(
        validation(&mut store, "UpdateTable", to_provisioned.clone()),
        "One or more parameter values were invalid: ProvisionedThroughput must be specified for index: byg"
    );
    let with_index = with(to_provisioned, |r| {
        r["GlobalSecondaryIndexUpdates"] = json!([{"Update": {
            "IndexName": "byg", "ProvisionedThroughput": {"ReadCapacityUnits": 2, "WriteCapacityUnits": 3},
        }}]);
    });
    let description = ok(&mut store, "UpdateTable", with_index)["TableDescription"].clone();
    assert_eq!(description["BillingModeSummary"]["BillingMode"], json!("PROVISIONED"));
    assert_eq!(description["ProvisionedThroughput"]["WriteCapacityUnits"], json!(6));
    assert_eq!(description["GlobalSecondaryIndexes"][0]["ProvisionedThroughput"]["ReadCapacityUnits"], json!(2));
    let same =
        json!({"TableName": "plain", "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 6}});
    assert!(
        validation(&mut store, "UpdateTable", same)
            .starts_with("The provisioned throughput for the table will not change.")
    );
    let back = json!({"TableName": "plain", "BillingMode": "PAY_PER_REQUEST"});
    let description = ok(&mut store, "UpdateTable", back)["TableDescription"].clone();
    assert_eq!(description["BillingModeSummary"]["BillingMode"], json!("PAY_PER_REQUEST"));
    assert_eq!(description["GlobalSecondaryIndexes"][0]["ProvisionedThroughput"]["ReadCapacityUnits"], json!(0));
}

#[test]
fn update_table_refuses_what_dynamodb_refuses() {
    let invalid = "One or more parameter values were invalid: ";
    let index_update = |update: Value| json!({"TableName": "plain", "GlobalSecondaryIndexUpdates": [update]});
    let cases: Vec<(Value, &str, String)> = vec![
        (
            json!({"TableName": "plain"}),
            "ValidationException",
            "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates, \
             SSESpecification, ReplicaUpdates, MultiAccountReplicaReady, ReplicaTransitRoleArn, MultiRegionConsistency, \
             DeletionProtectionEnabled, OnDemandThroughput, WarmThroughput or TableClass is required"
                .to_string(),
        ),
        (
            json!({"TableName": "plain", "GlobalSecondaryIndexUpdates": [], "DeletionProtectionEnabled": true}),
            "ValidationException",
            format!("{invalid}List of GlobalSecondaryIndexUpdates is empty"),
        ),
        (
            index_update(json!({})),
            "ValidationException",
            format!(
                "{invalid}One of GlobalSecondaryIndexUpdate.Update, GlobalSecondaryIndexUpdate.Create, GlobalSecondaryIndexUpdate.Delete must not be null"
            ),
        ),
        (
            json!({"TableName": "plain", "GlobalSecondaryIndexUpdates": [
                {"Delete": {"IndexName": "one"}}, {"Delete": {"IndexName": "one"}},
            ]}),
            "ValidationException",
            format!("{invalid}Only one global secondary index update per index is allowed simultaneously. Index: one"),
        ),
        (
            json!({"TableName": "plain", "GlobalSecondaryIndexUpdates": [
                {"Delete": {"IndexName": "one"}}, {"Delete": {"IndexName": "two"}},
            ]}),
            "LimitExceededException",
            "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per table".to_string(),
        ),
        (
            with(create_byg(), |r| r["ProvisionedThroughput"] = json!({"ReadCapacityUnits": 1, "WriteCapacityUnits": 1})),
            "ValidationException",
            "You cannot create or delete index while updating table IOPS".to_string(),
        ),
        (
            with(create_byg(), |r| r["DeletionProtectionEnabled"] = json!(true)),
            "ValidationException",
            "DeletionProtection modification must be the only operation in the request".to_string(),
        ),
        (
            with(create_byg(), |r| r["AttributeDefinitions"] = Value::Null),
            "ValidationException",
            format!("{invalid}AttributeDefinitions is not specified for index: byg"),
        ),
        (
            with(create_byg(), |r| r["AttributeDefinitions"][0]["AttributeName"] = json!("h")),
            "ValidationException",
            format!("{invalid}Some index key attributes are not defined in AttributeDefinitions. Keys: [g], AttributeDefinitions: [h]"),
        ),
        (
            index_update(json!({"Delete": {"IndexName": "nope"}})),
            "ResourceNotFoundException",
            "Requested resource not found: Index: nope not found".to_string(),
        ),
        (
            index_update(json!({"Update": {"IndexName": "nope", "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}})),
            "ResourceNotFoundException",
            "Requested resource not found: Index: nope not found".to_string(),
        ),
        (
            json!({"TableName": "plain", "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}),
            "ValidationException",
            format!("{invalid}Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST"),
        ),
        (
            json!({"TableName": "plain", "BillingMode": "PROVISIONED"}),
            "ValidationException",
            format!("{invalid}ProvisionedThroughput must be specified when BillingMode is PROVISIONED"),
        ),
        (
            json!({"TableName": "nope", "DeletionProtectionEnabled": true}),
            "ResourceNotFoundException",
            "Requested resource not found: Table: nope not found".to_string(),
        ),
    ];
    for (request, kind, message) in cases {
        let mut store = plain_store();
        assert_eq!(fails(&mut store, "UpdateTable", request.clone()), (kind.to_string(), message), "{request}");
    }
    let mut store = plain_store();
    ok(&mut store, "UpdateTable", create_byg());
    assert_eq!(
        validation(&mut store, "UpdateTable", create_byg()),
        "Attempting to create an index which already exists"
    );
    let on_demand_update = index_update(json!({"Update": {
        "IndexName": "byg", "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
    }}));
    assert_eq!(
        validation(&mut store, "UpdateTable", on_demand_update),
        format!(
            "{invalid}The only Updates for index: byg when TableThroughputMode is PAY_PER_REQUEST can be to OnDemandThroughput, WarmThroughput"
        )
    );
}

// ---- Races ------------------------------------------------------------------------------------

/// The reference store with `act` run once on it at the first `at` call of a request (see
/// `support::Hooked`): another client acting between the request's read and its write.
fn interleaved(
    store: MemoryStore,
    at: support::Call,
    act: impl FnOnce(&mut MemoryStore),
) -> support::Hooked<impl FnMut(&mut MemoryStore, support::Call) -> Result<(), Failure>> {
    let mut act = Some(act);
    let hook = move |store: &mut MemoryStore, call: support::Call| {
        if std::mem::discriminant(&call) == std::mem::discriminant(&at)
            && let Some(act) = act.take()
        {
            act(store);
        }
        Ok(())
    };
    support::Hooked { store, hook }
}

#[test]
fn a_write_decided_before_an_index_came_is_decided_again() {
    let hook = |store: &mut MemoryStore| {
        ok(store, "UpdateTable", create_byg());
    };
    let mut store = interleaved(plain_store(), support::Call::Writing, hook);
    let item = json!({"pk": {"S": "a"}, "g": {"S": "G"}});
    let request = support::request("PutItem", json!({"TableName": "plain", "Item": item}).to_string().into_bytes());
    let response = dynabox_handler::handle(&request, &mut store, &mut support::AcceptAll);
    assert_eq!(response.status, 200);
    assert_eq!(plain_entries(&mut store.store, "byg"), [item]);
}

#[test]
fn the_backfill_never_resurrects_a_deleted_item() {
    let mut store = plain_store();
    for pk in ["a", "b"] {
        put_plain(&mut store, json!({"pk": {"S": pk}, "g": {"S": "G"}}));
    }
    ok(&mut store, "UpdateTable", create_byg());
    let hook = |store: &mut MemoryStore| {
        for pk in ["a", "b"] {
            ok(store, "DeleteItem", json!({"TableName": "plain", "Key": {"pk": {"S": pk}}}));
        }
    };
    let mut store = interleaved(store, support::Call::Scanned, hook);
    assert!(dynabox_handler::index::backfill_step(&mut store, ACCOUNT, "plain", "byg", 10).unwrap().done);
    assert_eq!(plain_entries(&mut store.store, "byg"), Vec::<Value>::new());
    let index = describe_plain(&mut store.store)["GlobalSecondaryIndexes"][0].clone();
    assert_eq!(index["IndexStatus"], json!("ACTIVE"));
}

#[test]
fn an_index_being_created_may_be_deleted() {
    let mut store = plain_store();
    put_plain(&mut store, json!({"pk": {"S": "a"}, "g": {"S": "G"}}));
    ok(&mut store, "UpdateTable", create_byg());
    let delete = json!({"TableName": "plain", "GlobalSecondaryIndexUpdates": [{"Delete": {"IndexName": "byg"}}]});
    ok(&mut store, "UpdateTable", delete);
    assert_eq!(describe_plain(&mut store).get("GlobalSecondaryIndexes"), None);
    assert!(dynabox_handler::index::backfill_step(&mut store, ACCOUNT, "plain", "byg", 10).unwrap().done);
}

#[test]
fn an_index_created_on_a_provisioned_table_needs_throughput() {
    let mut store = MemoryStore::default();
    let request = with(plain_request(), |r| {
        r["BillingMode"] = json!("PROVISIONED");
        r["ProvisionedThroughput"] = json!({"ReadCapacityUnits": 1, "WriteCapacityUnits": 1});
    });
    ok(&mut store, "CreateTable", request);
    assert_eq!(
        validation(&mut store, "UpdateTable", create_byg()),
        "One or more parameter values were invalid: Both ReadCapacityUnits and WriteCapacityUnits must be specified for index: byg"
    );
    let with_throughput = with(create_byg(), |r| {
        r["GlobalSecondaryIndexUpdates"][0]["Create"]["ProvisionedThroughput"] =
            json!({"ReadCapacityUnits": 7, "WriteCapacityUnits": 8});
    });
    let description = ok(&mut store, "UpdateTable", with_throughput)["TableDescription"].clone();
    assert_eq!(description["GlobalSecondaryIndexes"][0]["ProvisionedThroughput"]["WriteCapacityUnits"], json!(8));
}

#[test]
fn the_backfill_leaves_out_items_whose_index_keys_are_too_large() {
    let mut store = plain_store();
    put_plain(&mut store, json!({"pk": {"S": "a"}, "g": {"S": "G"}}));
    put_plain(&mut store, json!({"pk": {"S": "b"}, "g": {"S": "g".repeat(2049)}}));
    ok(&mut store, "UpdateTable", create_byg());
    while !dynabox_handler::index::backfill_step(&mut store, ACCOUNT, "plain", "byg", 1).unwrap().done {}
    let index = describe_plain(&mut store)["GlobalSecondaryIndexes"][0].clone();
    assert_eq!((&index["IndexStatus"], &index["ItemCount"]), (&json!("ACTIVE"), &json!(1)));
    assert_eq!(plain_entries(&mut store, "byg"), [json!({"pk": {"S": "a"}, "g": {"S": "G"}})]);
    let scan = ok(&mut store, "Scan", json!({"TableName": "plain"}));
    assert_eq!(scan["Count"], json!(2), "the item stays in the table");
}

#[test]
fn an_item_the_backfill_left_out_can_be_mended_or_deleted() {
    let mut store = plain_store();
    for pk in ["a", "b"] {
        put_plain(&mut store, json!({"pk": {"S": pk}, "g": {"N": "1"}}));
    }
    ok(&mut store, "UpdateTable", create_byg());
    while !dynabox_handler::index::backfill_step(&mut store, ACCOUNT, "plain", "byg", 10).unwrap().done {}
    assert_eq!(plain_entries(&mut store, "byg"), Vec::<Value>::new());
    let touch = json!({
        "TableName": "plain", "Key": {"pk": {"S": "a"}},
        "UpdateExpression": "SET x = :x", "ExpressionAttributeValues": {":x": {"S": "x"}},
    });
    assert_eq!(
        validation(&mut store, "UpdateItem", touch),
        "One or more parameter values were invalid: Type mismatch for Index Key g Expected: S Actual: N IndexName: byg"
    );
    let mend = json!({
        "TableName": "plain", "Key": {"pk": {"S": "a"}},
        "UpdateExpression": "SET g = :g", "ExpressionAttributeValues": {":g": {"S": "G"}},
    });
    ok(&mut store, "UpdateItem", mend);
    ok(&mut store, "DeleteItem", json!({"TableName": "plain", "Key": {"pk": {"S": "b"}}}));
    assert_eq!(plain_entries(&mut store, "byg"), [json!({"pk": {"S": "a"}, "g": {"S": "G"}})]);
}

#[test]
fn a_new_index_keeps_the_type_the_table_already_gives_a_key() {
    let mut store = plain_store();
    let on_pk = with(create_byg(), |r| {
        r["AttributeDefinitions"] = json!([{"AttributeName": "pk", "AttributeType": "N"}]);
        r["GlobalSecondaryIndexUpdates"][0]["Create"]["KeySchema"][0]["AttributeName"] = json!("pk");
    });
    let description = ok(&mut store, "UpdateTable", on_pk)["TableDescription"].clone();
    assert_eq!(description["AttributeDefinitions"], json!([{"AttributeName": "pk", "AttributeType": "S"}]));
    put_plain(&mut store, json!({"pk": {"S": "a"}}));
    assert_eq!(plain_entries(&mut store, "byg"), [json!({"pk": {"S": "a"}})]);
}

/// A single-item write asked for SIZE reports the item's collection on a table with a local
/// index, and nothing on a table without one.
#[test]
fn writes_report_item_collection_metrics_on_tables_with_local_indexes() {
    let mut store = store();
    let metrics = json!({"ItemCollectionKey": {"pk": {"S": "p"}}, "SizeEstimateRangeGB": [0.0, 1.0]});
    let key = json!({"pk": {"S": "p"}, "sk": {"S": "s"}});
    let item = json!({"pk": {"S": "p"}, "sk": {"S": "s"}, "l": {"N": "1"}});
    let size = json!("SIZE");
    let put = ok(&mut store, "PutItem", json!({"TableName": "tab", "Item": item, "ReturnItemCollectionMetrics": size}));
    assert_eq!(put["ItemCollectionMetrics"], metrics);
    let update = json!({"TableName": "tab", "Key": key, "UpdateExpression": "SET x = :x",
                        "ExpressionAttributeValues": {":x": {"S": "x"}}, "ReturnItemCollectionMetrics": size});
    assert_eq!(ok(&mut store, "UpdateItem", update)["ItemCollectionMetrics"], metrics);
    let delete = json!({"TableName": "tab", "Key": key, "ReturnItemCollectionMetrics": size});
    assert_eq!(ok(&mut store, "DeleteItem", delete)["ItemCollectionMetrics"], metrics);

    let plain = with(table_request(), |t| {
        t["TableName"] = json!("plain");
        t.as_object_mut().unwrap().remove("LocalSecondaryIndexes");
        t["AttributeDefinitions"].as_array_mut().unwrap().retain(|d| d["AttributeName"] != "l");
    });
    ok(&mut store, "CreateTable", plain);
    let put =
        ok(&mut store, "PutItem", json!({"TableName": "plain", "Item": item, "ReturnItemCollectionMetrics": size}));
    assert!(put.get("ItemCollectionMetrics").is_none(), "{put}");
}
