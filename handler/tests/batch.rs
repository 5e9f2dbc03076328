//! BatchWriteItem and BatchGetItem through `handle` on the in-memory store: validation with
//! DynamoDB's messages (after dynalite's tests, which were checked against DynamoDB), writes that
//! keep indexes exact, capacity, item collection metrics and UnprocessedKeys.

mod support;

use dynabox_handler::storage::{Failure, StorageError};
use serde_json::{Value, json};
use support::{AcceptAll, MemoryStore, fails, ok, validation};

/// Tables `hash` (a S), `num` (a N), and `range` (a S, b S) with local index `lsi` (a, c S) and
/// global index `gsi` (g S).
fn store() -> MemoryStore {
    let mut store = MemoryStore::default();
    for (name, kind) in [("hash", "S"), ("num", "N")] {
        ok(
            &mut store,
            "CreateTable",
            json!({
                "TableName": name, "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "a", "AttributeType": kind}],
            }),
        );
    }
    ok(
        &mut store,
        "CreateTable",
        json!({
            "TableName": "range", "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}, {"AttributeName": "b", "KeyType": "RANGE"}],
            "AttributeDefinitions": [
                {"AttributeName": "a", "AttributeType": "S"},
                {"AttributeName": "b", "AttributeType": "S"},
                {"AttributeName": "c", "AttributeType": "S"},
                {"AttributeName": "g", "AttributeType": "S"},
            ],
            "LocalSecondaryIndexes": [{
                "IndexName": "lsi",
                "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}, {"AttributeName": "c", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            }],
            "GlobalSecondaryIndexes": [{
                "IndexName": "gsi",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }],
        }),
    );
    store
}

fn put(item: Value) -> Value {
    json!({"PutRequest": {"Item": item}})
}

fn delete(key: Value) -> Value {
    json!({"DeleteRequest": {"Key": key}})
}

fn get(store: &mut MemoryStore, table: &str, key: Value) -> Option<Value> {
    let answer = ok(store, "GetItem", json!({"TableName": table, "Key": key, "ConsistentRead": true}));
    answer.get("Item").cloned()
}

fn write(store: &mut MemoryStore, request_items: Value) -> Value {
    ok(store, "BatchWriteItem", json!({"RequestItems": request_items}))
}

// ---- BatchWriteItem: validation -------------------------------------------------------------

#[test]
fn batch_write_members_are_validated_together() {
    let mut store = store();
    assert_eq!(
        validation(&mut store, "BatchWriteItem", json!({})),
        "1 validation error detected: Value null at 'requestItems' failed to satisfy constraint: Member must not be null"
    );
    assert_eq!(
        validation(&mut store, "BatchWriteItem", json!({"RequestItems": {}})),
        "The requestItems parameter is required for BatchWriteItem"
    );
    let message = validation(
        &mut store,
        "BatchWriteItem",
        json!({"RequestItems": {"aa;": [{"PutRequest": {}, "DeleteRequest": {}}]},
               "ReturnConsumedCapacity": "hi", "ReturnItemCollectionMetrics": "hi"}),
    );
    assert!(message.starts_with("5 validation errors detected: Value 'hi' at 'returnConsumedCapacity'"), "{message}");
    assert!(message.contains("Value 'hi' at 'returnItemCollectionMetrics' failed to satisfy constraint: Member must satisfy enum value set: [SIZE, NONE]"));
    assert!(message.contains(
        "at 'requestItems' failed to satisfy constraint: Map keys must satisfy constraint: \
         [Member must have length less than or equal to 255, Member must have length greater than or equal to 3, \
         Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+]"
    ));
    assert!(message.contains("Value null at 'requestItems.aa;.member.1.member.deleteRequest.key' failed"));
    assert!(message.ends_with(
        "Value null at 'requestItems.aa;.member.1.member.putRequest.item' failed to satisfy constraint: Member must not be null"
    ));
    let message = validation(&mut store, "BatchWriteItem", json!({"RequestItems": {"hash": []}}));
    assert!(message.starts_with("1 validation error detected: Value '{hash=[]}' at 'requestItems'"), "{message}");
    assert!(message.ends_with(
        "Map value must satisfy constraint: [Member must have length less than or equal to 25, \
         Member must have length greater than or equal to 1]"
    ));
}

#[test]
fn batch_write_refuses_more_than_25_requests() {
    let mut store = store();
    let requests = |n: usize| (0..n).map(|i| put(json!({"a": {"S": i.to_string()}}))).collect::<Vec<_>>();
    let message = validation(&mut store, "BatchWriteItem", json!({"RequestItems": {"hash": requests(26)}}));
    assert!(message.contains("Map value must satisfy constraint"), "{message}");
    // Across tables the limit is on the total.
    let nums: Vec<Value> = (0..5).map(|i| put(json!({"a": {"N": i.to_string()}}))).collect();
    assert_eq!(
        validation(&mut store, "BatchWriteItem", json!({"RequestItems": {"hash": requests(21), "num": nums}})),
        "Too many items requested for the BatchWriteItem call"
    );
    // Exactly 25 to a missing table: the table is what is wrong.
    let (kind, message) = fails(&mut store, "BatchWriteItem", json!({"RequestItems": {"nope": requests(25)}}));
    assert_eq!((kind.as_str(), message.as_str()), ("ResourceNotFoundException", "Requested resource not found"));
    assert_eq!(get(&mut store, "hash", json!({"a": {"S": "0"}})), None);
}

#[test]
fn a_write_request_holds_exactly_one_of_put_and_delete() {
    let mut store = store();
    let both = json!({"PutRequest": {"Item": {"a": {"S": "x"}}}, "DeleteRequest": {"Key": {"a": {"S": "x"}}}});
    for request in [json!({}), both] {
        assert_eq!(
            validation(&mut store, "BatchWriteItem", json!({"RequestItems": {"hash": [request]}})),
            "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"
        );
    }
    assert_eq!(get(&mut store, "hash", json!({"a": {"S": "x"}})), None);
}

#[test]
fn batch_write_refuses_duplicate_keys_after_finding_the_table() {
    let mut store = store();
    let item = json!({"a": {"S": "x"}, "c": {"S": "c"}});
    for requests in [
        json!([put(item.clone()), delete(json!({"a": {"S": "x"}}))]),
        json!([delete(json!({"a": {"S": "x"}})), put(item.clone())]),
    ] {
        assert_eq!(
            validation(&mut store, "BatchWriteItem", json!({"RequestItems": {"hash": requests.clone()}})),
            "Provided list of item keys contains duplicates"
        );
        let (kind, _) = fails(&mut store, "BatchWriteItem", json!({"RequestItems": {"nope": requests}}));
        assert_eq!(kind, "ResourceNotFoundException");
    }
    // The same key in two tables is no duplicate.
    let answer = write(
        &mut store,
        json!({"hash": [put(json!({"a": {"S": "1"}}))], "range": [put(json!({"a": {"S": "1"}, "b": {"S": "1"}}))]}),
    );
    assert_eq!(answer, json!({"UnprocessedItems": {}}));
}

#[test]
fn batch_write_checks_items_and_keys_as_put_and_delete_do() {
    let mut store = store();
    let mismatch = "The provided key element does not match the schema";
    for item in [json!({}), json!({"b": {"S": "a"}}), json!({"a": {"N": "1"}}), json!({"a": {"SS": ["a"]}})] {
        assert_eq!(validation(&mut store, "BatchWriteItem", json!({"RequestItems": {"hash": [put(item)]}})), mismatch);
    }
    assert_eq!(
        validation(&mut store, "BatchWriteItem", json!({"RequestItems": {"range": [put(json!({"a": {"S": "a"}}))]}})),
        mismatch
    );
    // A delete names the key and nothing else.
    assert_eq!(
        validation(
            &mut store,
            "BatchWriteItem",
            json!({"RequestItems": {"hash": [delete(json!({"a": {"S": "a"}, "c": {"S": "c"}}))]}})
        ),
        mismatch
    );
    assert_eq!(
        validation(
            &mut store,
            "BatchWriteItem",
            json!({"RequestItems": {"range": [put(json!({"a": {"S": "a"}, "b": {"S": "b"}, "c": {"N": "1"}}))]}})
        ),
        "One or more parameter values were invalid: Type mismatch for Index Key c Expected: S Actual: N IndexName: lsi"
    );
    assert_eq!(
        validation(
            &mut store,
            "BatchWriteItem",
            json!({"RequestItems": {"hash": [put(json!({"a": {"S": "a".repeat(2049)}}))]}})
        ),
        "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes"
    );
    // The item size is checked before the table is looked up.
    let big = json!({"a": {"S": "a"}, "b": {"S": "b".repeat(400 * 1024)}});
    assert_eq!(
        validation(&mut store, "BatchWriteItem", json!({"RequestItems": {"nope": [put(big)]}})),
        "Item size has exceeded the maximum allowed size"
    );
    assert_eq!(
        validation(
            &mut store,
            "BatchWriteItem",
            json!({"RequestItems": {"hash": [put(json!({"a": {"S": "a", "N": "1"}}))]}})
        ),
        "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"
    );
}

#[test]
fn a_refused_batch_writes_nothing() {
    let mut store = store();
    // The first table's writes are valid; the second table's are not.
    let (kind, _) = fails(
        &mut store,
        "BatchWriteItem",
        json!({"RequestItems": {"hash": [put(json!({"a": {"S": "x"}}))], "num": [put(json!({"a": {"S": "x"}}))]}}),
    );
    assert_eq!(kind, "ValidationException");
    assert_eq!(get(&mut store, "hash", json!({"a": {"S": "x"}})), None);
    let (kind, _) = fails(
        &mut store,
        "BatchWriteItem",
        json!({"RequestItems": {"hash": [put(json!({"a": {"S": "x"}}))], "zzz": [put(json!({"a": {"S": "x"}}))]}}),
    );
    assert_eq!(kind, "ResourceNotFoundException");
    assert_eq!(get(&mut store, "hash", json!({"a": {"S": "x"}})), None);
}

// ---- BatchWriteItem: what it does ------------------------------------------------------------

#[test]
fn batch_write_puts_and_deletes_across_tables() {
    let mut store = store();
    write(&mut store, json!({"hash": [put(json!({"a": {"S": "old"}}))]}));
    let answer = write(
        &mut store,
        json!({
            "hash": [put(json!({"a": {"S": "new"}, "x": {"N": "1"}})), delete(json!({"a": {"S": "old"}})), delete(json!({"a": {"S": "none"}}))],
            "num": [put(json!({"a": {"N": "7"}}))],
        }),
    );
    assert_eq!(answer, json!({"UnprocessedItems": {}}));
    assert_eq!(get(&mut store, "hash", json!({"a": {"S": "new"}})), Some(json!({"a": {"S": "new"}, "x": {"N": "1"}})));
    assert_eq!(get(&mut store, "hash", json!({"a": {"S": "old"}})), None);
    assert_eq!(get(&mut store, "num", json!({"a": {"N": "7"}})), Some(json!({"a": {"N": "7"}})));
    // A put replaces the whole item.
    write(&mut store, json!({"hash": [put(json!({"a": {"S": "new"}}))]}));
    assert_eq!(get(&mut store, "hash", json!({"a": {"S": "new"}})), Some(json!({"a": {"S": "new"}})));
}

fn query_index(store: &mut MemoryStore, index: &str, condition: &str, value: Value) -> Vec<Value> {
    let answer = ok(
        store,
        "Query",
        json!({"TableName": "range", "IndexName": index, "KeyConditionExpression": condition,
               "ExpressionAttributeValues": {":v": value}}),
    );
    answer["Items"].as_array().unwrap().clone()
}

#[test]
fn batch_write_keeps_indexes_exact() {
    let mut store = store();
    let item = json!({"a": {"S": "p"}, "b": {"S": "1"}, "c": {"S": "c1"}, "g": {"S": "g1"}});
    write(&mut store, json!({"range": [put(item.clone())]}));
    assert_eq!(query_index(&mut store, "gsi", "g = :v", json!({"S": "g1"})), vec![item.clone()]);
    assert_eq!(query_index(&mut store, "lsi", "a = :v", json!({"S": "p"})), vec![item]);
    // Replaced: the old entries go.
    let moved = json!({"a": {"S": "p"}, "b": {"S": "1"}, "g": {"S": "g2"}});
    write(&mut store, json!({"range": [put(moved.clone())]}));
    assert_eq!(query_index(&mut store, "gsi", "g = :v", json!({"S": "g1"})), Vec::<Value>::new());
    assert_eq!(query_index(&mut store, "gsi", "g = :v", json!({"S": "g2"})), vec![moved]);
    assert_eq!(query_index(&mut store, "lsi", "a = :v", json!({"S": "p"})), Vec::<Value>::new());
    write(&mut store, json!({"range": [delete(json!({"a": {"S": "p"}, "b": {"S": "1"}}))]}));
    assert_eq!(query_index(&mut store, "gsi", "g = :v", json!({"S": "g2"})), Vec::<Value>::new());
}

/// dynalite's probe item: exactly `size` bytes (1024 or 4096 rounds), or one more with `larger`.
fn probe(a: &str, target: usize, larger: bool) -> Value {
    let (b_len, set) =
        if larger { (target - 13, json!(["AQI=", "Ag=="])) } else { (target - 15, json!(["AQI=", "Ag==", "AQ=="])) };
    json!({"a": {"S": a}, "b": {"S": "b".repeat(b_len - a.len())}, "c": {"N": "12.3456"}, "d": {"B": "AQI="}, "e": {"BS": set}})
}

#[test]
fn batch_write_reports_capacity_per_table() {
    for (larger, units) in [(false, 2.0), (true, 3.0)] {
        let mut store = store();
        let items = json!({
            "hash": [put(probe("k1", 1024, larger)), put(json!({"a": {"S": "k2"}}))],
            "num": [put(json!({"a": {"N": "1"}}))],
        });
        let answer =
            ok(&mut store, "BatchWriteItem", json!({"RequestItems": items, "ReturnConsumedCapacity": "TOTAL"}));
        assert_eq!(
            answer["ConsumedCapacity"],
            json!([{"TableName": "hash", "CapacityUnits": units}, {"TableName": "num", "CapacityUnits": 1.0}])
        );
        let deletes = json!({"hash": [delete(json!({"a": {"S": "k1"}})), delete(json!({"a": {"S": "k2"}}))]});
        let answer =
            ok(&mut store, "BatchWriteItem", json!({"RequestItems": deletes, "ReturnConsumedCapacity": "INDEXES"}));
        assert_eq!(
            answer["ConsumedCapacity"],
            json!([{"TableName": "hash", "CapacityUnits": units, "Table": {"CapacityUnits": units}}])
        );
    }
}

#[test]
fn item_collection_metrics_only_for_tables_with_local_indexes() {
    let mut store = store();
    let items = json!({
        "hash": [put(json!({"a": {"S": "h"}}))],
        "range": [put(json!({"a": {"S": "p"}, "b": {"S": "1"}})), delete(json!({"a": {"S": "q"}, "b": {"S": "1"}}))],
    });
    let answer =
        ok(&mut store, "BatchWriteItem", json!({"RequestItems": items, "ReturnItemCollectionMetrics": "SIZE"}));
    assert_eq!(
        answer,
        json!({"UnprocessedItems": {}, "ItemCollectionMetrics": {"range": [
            {"ItemCollectionKey": {"a": {"S": "p"}}, "SizeEstimateRangeGB": [0.0, 1.0]},
            {"ItemCollectionKey": {"a": {"S": "q"}}, "SizeEstimateRangeGB": [0.0, 1.0]},
        ]}})
    );
    let items = json!({"hash": [put(json!({"a": {"S": "h"}}))]});
    let answer =
        ok(&mut store, "BatchWriteItem", json!({"RequestItems": items, "ReturnItemCollectionMetrics": "SIZE"}));
    assert_eq!(answer, json!({"UnprocessedItems": {}}));
}

#[test]
fn writes_after_a_store_failure_come_back_unprocessed() {
    // The second write group fails as a store can.
    let mut writes = 0;
    let mut failing = support::Hooked {
        store: store(),
        hook: |_: &mut MemoryStore, call: support::Call| {
            if matches!(call, support::Call::Writing) {
                writes += 1;
                if writes == 2 {
                    return Err(Failure::Storage(StorageError::Internal("timed out".into())));
                }
            }
            Ok(())
        },
    };
    let requests = json!({
        "hash": [put(json!({"a": {"S": "1"}})), put(json!({"a": {"S": "2"}})), delete(json!({"a": {"S": "3"}}))],
        "num": [put(json!({"a": {"N": "1"}}))],
    });
    let body = json!({"RequestItems": requests, "ReturnConsumedCapacity": "TOTAL"}).to_string().into_bytes();
    let response = dynabox_handler::handle(&support::request("BatchWriteItem", body), &mut failing, &mut AcceptAll);
    assert_eq!(response.status, 200);
    let answer: Value = serde_json::from_slice(&response.body).unwrap();
    // The first write was made and is answered as made; the failed one and all after it are not.
    assert_eq!(
        answer,
        json!({
            "UnprocessedItems": {
                "hash": [put(json!({"a": {"S": "2"}})), delete(json!({"a": {"S": "3"}}))],
                "num": [put(json!({"a": {"N": "1"}}))],
            },
            "ConsumedCapacity": [{"TableName": "hash", "CapacityUnits": 1.0}, {"TableName": "num", "CapacityUnits": 0.0}],
        })
    );
    let mut store = failing.store;
    assert_eq!(get(&mut store, "hash", json!({"a": {"S": "1"}})), Some(json!({"a": {"S": "1"}})));
    assert_eq!(get(&mut store, "hash", json!({"a": {"S": "2"}})), None);
    // Sending UnprocessedItems as they are finishes the job.
    let answer = write(&mut store, answer["UnprocessedItems"].clone());
    assert_eq!(answer, json!({"UnprocessedItems": {}}));
    assert_eq!(get(&mut store, "num", json!({"a": {"N": "1"}})), Some(json!({"a": {"N": "1"}})));
}

// ---- BatchGetItem --------------------------------------------------------------------------

fn batch_get(store: &mut MemoryStore, body: Value) -> Value {
    ok(store, "BatchGetItem", body)
}

#[test]
fn batch_get_members_are_validated() {
    let mut store = store();
    assert_eq!(
        validation(&mut store, "BatchGetItem", json!({"RequestItems": {}})),
        "The requestItems parameter is required for BatchGetItem"
    );
    let message =
        validation(&mut store, "BatchGetItem", json!({"RequestItems": {"a": {}}, "ReturnConsumedCapacity": "hi"}));
    assert!(message.starts_with("3 validation errors detected: Value 'hi' at 'returnConsumedCapacity'"), "{message}");
    assert!(message.contains("Map keys must satisfy constraint"));
    assert!(
        message.ends_with(
            "Value null at 'requestItems.a.member.keys' failed to satisfy constraint: Member must not be null"
        )
    );
    let message = validation(&mut store, "BatchGetItem", json!({"RequestItems": {"abc": {"Keys": []}}}));
    assert_eq!(
        message,
        "1 validation error detected: Value '[]' at 'requestItems.abc.member.keys' failed to satisfy constraint: \
         Member must have length greater than or equal to 1"
    );
    let message = validation(
        &mut store,
        "BatchGetItem",
        json!({"RequestItems": {"abc": {"Keys": [], "AttributesToGet": []}}, "ReturnConsumedCapacity": "hi"}),
    );
    assert!(message.starts_with("3 validation errors detected: Value 'hi' at 'returnConsumedCapacity'"), "{message}");
    assert!(message.ends_with(
        "Value '[]' at 'requestItems.abc.member.attributesToGet' failed to satisfy constraint: \
         Member must have length greater than or equal to 1"
    ));
    let keys: Vec<Value> = (0..101).map(|i| json!({"a": {"S": i.to_string()}})).collect();
    let message = validation(&mut store, "BatchGetItem", json!({"RequestItems": {"abc": {"Keys": keys}}}));
    assert_eq!(
        message,
        "1 validation error detected: Value at 'RequestItems.abc.member.Keys' failed to satisfy constraint: \
         Member must have length less than or equal to 100"
    );
}

#[test]
fn batch_get_expressions_follow_get_item() {
    let mut store = store();
    let with = |members: Value| {
        let mut request = json!({"Keys": [{}]});
        request.as_object_mut().unwrap().extend(members.as_object().unwrap().clone());
        json!({"RequestItems": {"abc": request}})
    };
    for (members, expected) in [
        (
            json!({"AttributesToGet": ["a"], "ExpressionAttributeNames": {}, "ProjectionExpression": ""}),
            "Can not use both expression and non-expression parameters in the same request: \
             Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}",
        ),
        (
            json!({"AttributesToGet": ["a"], "ExpressionAttributeNames": {}}),
            "ExpressionAttributeNames can only be specified when using expressions",
        ),
        (
            json!({"ExpressionAttributeNames": {}, "ProjectionExpression": ""}),
            "ExpressionAttributeNames must not be empty",
        ),
        (json!({"ProjectionExpression": ""}), "Invalid ProjectionExpression: The expression can not be empty;"),
        (
            json!({"ProjectionExpression": "a", "ExpressionAttributeNames": {"#n": "b"}}),
            "Value provided in ExpressionAttributeNames unused in expressions: keys: {#n}",
        ),
        (
            json!({"AttributesToGet": ["a", "a"]}),
            "One or more parameter values were invalid: Duplicate value in attribute name: a",
        ),
    ] {
        assert_eq!(validation(&mut store, "BatchGetItem", with(members.clone())), expected, "{members}");
    }
}

#[test]
fn batch_get_refuses_duplicates_too_many_keys_and_missing_tables() {
    let mut store = store();
    let key = json!({"a": {"S": "x"}, "b": {"S": "y"}});
    let swapped = json!({"b": {"S": "y"}, "a": {"S": "x"}});
    assert_eq!(
        validation(&mut store, "BatchGetItem", json!({"RequestItems": {"nope": {"Keys": [key, swapped]}}})),
        "Provided list of item keys contains duplicates"
    );
    // Numbers are compared as numbers.
    assert_eq!(
        validation(
            &mut store,
            "BatchGetItem",
            json!({"RequestItems": {"num": {"Keys": [{"a": {"N": "1"}}, {"a": {"N": "1.0"}}]}}})
        ),
        "Provided list of item keys contains duplicates"
    );
    let keys: Vec<Value> = (0..100).map(|i| json!({"a": {"S": i.to_string()}})).collect();
    assert_eq!(
        validation(
            &mut store,
            "BatchGetItem",
            json!({"RequestItems": {"hash": {"Keys": keys.clone()}, "num": {"Keys": [{"a": {"N": "1"}}]}}})
        ),
        "Too many items requested for the BatchGetItem call"
    );
    let (kind, message) = fails(&mut store, "BatchGetItem", json!({"RequestItems": {"nope": {"Keys": keys}}}));
    assert_eq!((kind.as_str(), message.as_str()), ("ResourceNotFoundException", "Requested resource not found"));
    for key in
        [json!({}), json!({"b": {"S": "a"}}), json!({"a": {"S": "a"}, "b": {"S": "a"}}), json!({"a": {"N": "1"}})]
    {
        assert_eq!(
            validation(&mut store, "BatchGetItem", json!({"RequestItems": {"hash": {"Keys": [key]}}})),
            "The provided key element does not match the schema"
        );
    }
}

#[test]
fn batch_get_answers_every_table_requested() {
    let mut store = store();
    write(
        &mut store,
        json!({"hash": [put(json!({"a": {"S": "x"}, "v": {"N": "1"}, "w": {"S": "w"}})), put(json!({"a": {"S": "y"}}))]}),
    );
    let answer = batch_get(
        &mut store,
        json!({"RequestItems": {
            "hash": {"Keys": [{"a": {"S": "x"}}, {"a": {"S": "y"}}, {"a": {"S": "z"}}], "ConsistentRead": true},
            "num": {"Keys": [{"a": {"N": "1"}}]},
        }}),
    );
    assert_eq!(
        answer,
        json!({"Responses": {"hash": [{"a": {"S": "x"}, "v": {"N": "1"}, "w": {"S": "w"}}, {"a": {"S": "y"}}], "num": []},
               "UnprocessedKeys": {}})
    );
    // Projections, by expression with names or by AttributesToGet.
    let answer = batch_get(
        &mut store,
        json!({"RequestItems": {"hash": {"Keys": [{"a": {"S": "x"}}], "ProjectionExpression": "#v, a",
                                          "ExpressionAttributeNames": {"#v": "v"}}}}),
    );
    assert_eq!(answer["Responses"]["hash"], json!([{"a": {"S": "x"}, "v": {"N": "1"}}]));
    let answer = batch_get(
        &mut store,
        json!({"RequestItems": {"hash": {"Keys": [{"a": {"S": "x"}}], "AttributesToGet": ["w"]}}}),
    );
    assert_eq!(answer["Responses"]["hash"], json!([{"w": {"S": "w"}}]));
}

/// Three keys of `hash` (two there, `k1` the probe item) and one missing key of `num`.
fn capacity_request(consistent: bool) -> Value {
    json!({"ReturnConsumedCapacity": "TOTAL", "RequestItems": {
        "hash": {"Keys": [{"a": {"S": "k1"}}, {"a": {"S": "k2"}}, {"a": {"S": "k3"}}], "ConsistentRead": consistent},
        "num": {"Keys": [{"a": {"N": "1"}}], "ConsistentRead": consistent},
    }})
}

#[test]
fn batch_get_reports_capacity_per_table() {
    for (larger, consistent, units) in [(false, false, 1.5), (true, false, 2.0), (false, true, 3.0), (true, true, 4.0)]
    {
        let mut store = store();
        write(&mut store, json!({"hash": [put(probe("k1", 4096, larger)), put(json!({"a": {"S": "k2"}}))]}));
        let answer = batch_get(&mut store, capacity_request(consistent));
        let missing = if consistent { 1.0 } else { 0.5 };
        assert_eq!(
            answer["ConsumedCapacity"],
            json!([{"TableName": "hash", "CapacityUnits": units}, {"TableName": "num", "CapacityUnits": missing}]),
            "{larger} {consistent}"
        );
        let mut request = capacity_request(consistent);
        request["ReturnConsumedCapacity"] = json!("INDEXES");
        let answer = batch_get(&mut store, request);
        assert_eq!(
            answer["ConsumedCapacity"][0],
            json!({"TableName": "hash", "CapacityUnits": units, "Table": {"CapacityUnits": units}})
        );
    }
}

#[test]
fn batch_get_returns_what_passes_16_mb_as_unprocessed_keys() {
    let mut store = store();
    // 45 items of about 390 KB: about 17 MB.
    let big = |i: usize| json!({"a": {"S": format!("{i:02}")}, "b": {"S": "b".repeat(390 * 1024)}});
    for chunk in (0..45).collect::<Vec<_>>().chunks(15) {
        write(&mut store, json!({"hash": chunk.iter().map(|&i| put(big(i))).collect::<Vec<_>>()}));
    }
    let keys: Vec<Value> = (0..45).map(|i| json!({"a": {"S": format!("{i:02}")}})).collect();
    let request = json!({"Keys": keys, "ProjectionExpression": "#a", "ExpressionAttributeNames": {"#a": "a"}});
    let answer =
        batch_get(&mut store, json!({"RequestItems": {"hash": request, "num": {"Keys": [{"a": {"N": "1"}}]}}}));
    let returned = answer["Responses"]["hash"].as_array().unwrap().len();
    assert_eq!(returned, 16 * 1024 / 390);
    let unprocessed = &answer["UnprocessedKeys"];
    assert_eq!(unprocessed["hash"]["Keys"], json!(keys[returned..]));
    assert_eq!(unprocessed["hash"]["ProjectionExpression"], json!("#a"));
    assert_eq!(unprocessed["hash"]["ExpressionAttributeNames"], json!({"#a": "a"}));
    assert_eq!(unprocessed["num"], json!({"Keys": [{"a": {"N": "1"}}]}));
    assert_eq!(answer["Responses"]["num"], json!([]));
    // Asking again for what was left gets it.
    let answer = batch_get(&mut store, json!({"RequestItems": unprocessed.clone()}));
    assert_eq!(answer["Responses"]["hash"].as_array().unwrap().len(), 45 - returned);
    assert_eq!(answer["UnprocessedKeys"], json!({}));
}
