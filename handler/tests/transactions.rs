//! TransactGetItems and TransactWriteItems through `handle` on the reference store: answers across
//! tables, validation and cancellations in DynamoDB's words (after the DynamoDB Conformance
//! Suite's recorded answers), snapshots and transfers that concurrent writers cannot tear, and
//! the bound on every optimistic retry loop (single-item writes included).

mod support;

use dynabox_handler::storage::Failure;
use serde_json::{Value, json};
use support::{AcceptAll, Call, Hooked, MemoryStore, fails, ok, request, validation};

/// Tables `accounts` (id S) and `pairs` (a S, b S), with accounts alice (100) and bob (0).
fn store() -> MemoryStore {
    let mut store = MemoryStore::default();
    ok(
        &mut store,
        "CreateTable",
        json!({
            "TableName": "accounts", "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        }),
    );
    ok(
        &mut store,
        "CreateTable",
        json!({
            "TableName": "pairs", "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}, {"AttributeName": "b", "KeyType": "RANGE"}],
            "AttributeDefinitions": [{"AttributeName": "a", "AttributeType": "S"}, {"AttributeName": "b", "AttributeType": "S"}],
        }),
    );
    set_balances(&mut store, 100, 0);
    store
}

fn set_balances(store: &mut MemoryStore, alice: i64, bob: i64) {
    for (id, balance) in [("alice", alice), ("bob", bob)] {
        let item = json!({"id": {"S": id}, "balance": {"N": balance.to_string()}, "note": {"S": "x"}});
        ok(store, "PutItem", json!({"TableName": "accounts", "Item": item}));
    }
}

fn get(table: &str, key: Value) -> Value {
    json!({"Get": {"TableName": table, "Key": key}})
}

fn both_accounts() -> Value {
    json!({"TransactItems": [get("accounts", json!({"id": {"S": "alice"}})), get("accounts", json!({"id": {"S": "bob"}}))]})
}

fn balances(answer: &Value) -> Vec<i64> {
    let responses = answer["Responses"].as_array().expect("Responses");
    responses.iter().map(|r| r["Item"]["balance"]["N"].as_str().unwrap().parse().unwrap()).collect()
}

#[test]
fn reads_across_tables_with_projections_and_missing_items() {
    let mut store = store();
    ok(
        &mut store,
        "PutItem",
        json!({"TableName": "pairs", "Item": {"a": {"S": "p"}, "b": {"S": "q"}, "c": {"N": "1"}}}),
    );
    let answer = ok(
        &mut store,
        "TransactGetItems",
        json!({
            "TransactItems": [
                {"Get": {"TableName": "accounts", "Key": {"id": {"S": "alice"}},
                         "ProjectionExpression": "#b", "ExpressionAttributeNames": {"#b": "balance"}}},
                get("pairs", json!({"a": {"S": "p"}, "b": {"S": "q"}})),
                get("accounts", json!({"id": {"S": "nobody"}})),
            ],
            "ReturnConsumedCapacity": "TOTAL",
        }),
    );
    assert_eq!(
        answer,
        json!({
            "Responses": [
                {"Item": {"balance": {"N": "100"}}},
                {"Item": {"a": {"S": "p"}, "b": {"S": "q"}, "c": {"N": "1"}}},
                {},
            ],
            // Twice a consistent read per item, missing ones included.
            "ConsumedCapacity": [
                {"TableName": "accounts", "CapacityUnits": 4.0},
                {"TableName": "pairs", "CapacityUnits": 2.0},
            ],
        })
    );
}

#[test]
fn validation_in_dynamodbs_words() {
    let mut store = store();
    assert_eq!(
        validation(&mut store, "TransactGetItems", json!({"TransactItems": []})),
        "1 validation error detected: Value '[]' at 'transactItems' failed to satisfy constraint: \
         Member must have length greater than or equal to 1"
    );
    let many: Vec<Value> = (0..101).map(|i| get("accounts", json!({"id": {"S": i.to_string()}}))).collect();
    let message = validation(&mut store, "TransactGetItems", json!({"TransactItems": many}));
    assert!(message.starts_with("1 validation error detected: Value '[{Get={"), "{message}");
    assert!(
        message.ends_with(
            "}]' at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to 100"
        ),
        "{message}"
    );
    assert_eq!(
        validation(
            &mut store,
            "TransactGetItems",
            json!({"TransactItems": [{"Get": {"TableName": "accounts", "Key": {"id": {"S": "a"}}, "ProjectionExpression": "!!!"}}]})
        ),
        "Invalid ProjectionExpression: Syntax error; token: \"!\", near: \"!!\""
    );
    assert_eq!(
        fails(&mut store, "TransactGetItems", json!({"TransactItems": [get("missing", json!({"id": {"S": "a"}}))]})),
        ("ResourceNotFoundException".to_string(), "Requested resource not found".to_string())
    );
    let twice = json!({"TransactItems": [get("accounts", json!({"id": {"S": "a"}})), get("accounts", json!({"id": {"S": "a"}}))]});
    assert_eq!(
        validation(&mut store, "TransactGetItems", twice),
        "Transaction request cannot include multiple operations on one item"
    );
}

#[test]
fn a_key_that_does_not_fit_cancels_the_transaction_with_reasons_in_order() {
    let mut store = store();
    let body = json!({"TransactItems": [get("accounts", json!({"id": {"S": "alice"}})), get("accounts", json!({}))]});
    let (status, answer) = support::call(&mut store, "TransactGetItems", &body);
    assert_eq!(status, 400);
    assert_eq!(
        answer,
        json!({
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "message": "Transaction cancelled, please refer cancellation reasons for specific reasons [None, ValidationError]",
            "CancellationReasons": [
                {"Code": "None"},
                {"Code": "ValidationError", "Message": "The provided key element does not match the schema"},
            ],
        })
    );
}

/// Runs TransactGetItems on a store whose hook acts before every write group (the snapshot's
/// check); the answer and how many checks were made.
fn with_writes_between(store: MemoryStore, mut act: impl FnMut(&mut MemoryStore, usize)) -> (u16, Value, usize) {
    let mut checks = 0;
    let mut hooked = Hooked {
        store,
        hook: |store: &mut MemoryStore, call: Call| -> Result<(), Failure> {
            if matches!(call, Call::Writing) {
                checks += 1;
                act(store, checks);
            }
            Ok(())
        },
    };
    let request = request("TransactGetItems", both_accounts().to_string().into_bytes());
    let response = dynabox_handler::handle(&request, &mut hooked, &mut AcceptAll);
    drop(hooked);
    let answer = serde_json::from_slice(&response.body).unwrap();
    (response.status, answer, checks)
}

#[test]
fn a_transfer_between_the_reads_and_their_check_is_never_half_seen() {
    // The transfer commits after both accounts were read: the first snapshot fails its check and
    // the second sees the transfer whole.
    let (status, answer, checks) = with_writes_between(store(), |store, check| {
        if check == 1 {
            set_balances(store, 70, 30);
        }
    });
    assert_eq!((status, balances(&answer), checks), (200, vec![70, 30], 2));
}

#[test]
fn endless_conflicts_cancel_the_transaction_instead_of_looping() {
    let (status, answer, checks) = with_writes_between(store(), |store, check| {
        let moved = check as i64;
        set_balances(store, 100 - moved, moved);
    });
    assert_eq!(status, 400);
    assert_eq!(answer["__type"], "com.amazonaws.dynamodb.v20120810#TransactionCanceledException");
    let codes: Vec<&str> =
        answer["CancellationReasons"].as_array().unwrap().iter().map(|r| r["Code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["TransactionConflict", "TransactionConflict"]);
    assert_eq!(checks, 16);
}

fn twi(actions: Value) -> Value {
    json!({"TransactItems": actions})
}

fn item(store: &mut MemoryStore, table: &str, key: Value) -> Value {
    ok(store, "GetItem", json!({"TableName": table, "Key": key}))["Item"].clone()
}

#[test]
fn writes_put_update_delete_and_check_all_together() {
    let mut store = store();
    ok(&mut store, "PutItem", json!({"TableName": "pairs", "Item": {"a": {"S": "gone"}, "b": {"S": "1"}}}));
    let answer = ok(
        &mut store,
        "TransactWriteItems",
        json!({
            "TransactItems": [
                {"Update": {"TableName": "accounts", "Key": {"id": {"S": "alice"}},
                            "UpdateExpression": "SET balance = balance - :n", "ConditionExpression": "balance >= :n",
                            "ExpressionAttributeValues": {":n": {"N": "30"}}}},
                {"Update": {"TableName": "accounts", "Key": {"id": {"S": "bob"}},
                            "UpdateExpression": "SET balance = balance + :n", "ExpressionAttributeValues": {":n": {"N": "30"}}}},
                {"Put": {"TableName": "pairs", "Item": {"a": {"S": "new"}, "b": {"S": "1"}},
                         "ConditionExpression": "attribute_not_exists(a)"}},
                {"Delete": {"TableName": "pairs", "Key": {"a": {"S": "gone"}, "b": {"S": "1"}}}},
                {"ConditionCheck": {"TableName": "accounts", "Key": {"id": {"S": "carol"}},
                                    "ConditionExpression": "attribute_not_exists(id)"}},
            ],
            "ReturnConsumedCapacity": "TOTAL",
        }),
    );
    // Two units per write unit; the check costs as a write of nothing.
    assert_eq!(
        answer,
        json!({"ConsumedCapacity": [
            {"TableName": "accounts", "CapacityUnits": 6.0},
            {"TableName": "pairs", "CapacityUnits": 4.0},
        ]})
    );
    assert_eq!(item(&mut store, "accounts", json!({"id": {"S": "alice"}}))["balance"], json!({"N": "70"}));
    assert_eq!(item(&mut store, "accounts", json!({"id": {"S": "bob"}}))["balance"], json!({"N": "30"}));
    assert_eq!(item(&mut store, "pairs", json!({"a": {"S": "new"}, "b": {"S": "1"}}))["a"], json!({"S": "new"}));
    assert_eq!(item(&mut store, "pairs", json!({"a": {"S": "gone"}, "b": {"S": "1"}})), Value::Null);
    assert_eq!(item(&mut store, "accounts", json!({"id": {"S": "carol"}})), Value::Null);
}

#[test]
fn a_failed_condition_cancels_everything_with_reasons_in_order() {
    let mut store = store();
    let body = twi(json!([
        {"Put": {"TableName": "pairs", "Item": {"a": {"S": "p"}, "b": {"S": "q"}}}},
        {"Update": {"TableName": "accounts", "Key": {"id": {"S": "bob"}}, "UpdateExpression": "SET balance = :n",
                    "ConditionExpression": "balance > :n", "ExpressionAttributeValues": {":n": {"N": "5"}},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
        {"ConditionCheck": {"TableName": "accounts", "Key": {"id": {"S": "alice"}},
                            "ConditionExpression": "attribute_not_exists(id)"}},
    ]));
    let (status, answer) = support::call(&mut store, "TransactWriteItems", &body);
    assert_eq!(status, 400);
    assert_eq!(
        answer,
        json!({
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "message": "Transaction cancelled, please refer cancellation reasons for specific reasons \
                        [None, ConditionalCheckFailed, ConditionalCheckFailed]",
            "CancellationReasons": [
                {"Code": "None"},
                {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed",
                 "Item": {"id": {"S": "bob"}, "balance": {"N": "0"}, "note": {"S": "x"}}},
                {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"},
            ],
        })
    );
    assert_eq!(item(&mut store, "pairs", json!({"a": {"S": "p"}, "b": {"S": "q"}})), Value::Null);
}

#[test]
fn write_validation_in_dynamodbs_words() {
    let mut store = store();
    assert_eq!(
        validation(&mut store, "TransactWriteItems", twi(json!([]))),
        "1 validation error detected: Value '[]' at 'transactItems' failed to satisfy constraint: \
         Member must have length greater than or equal to 1"
    );
    let put = |id: &str| json!({"Put": {"TableName": "accounts", "Item": {"id": {"S": id}}}});
    let many: Vec<Value> = (0..101).map(|i| put(&i.to_string())).collect();
    let message = validation(&mut store, "TransactWriteItems", twi(Value::Array(many)));
    assert!(
        message.ends_with(
            "at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to 100"
        ),
        "{message}"
    );
    assert_eq!(
        validation(&mut store, "TransactWriteItems", twi(json!([put("a"), put("a")]))),
        "Transaction request cannot include multiple operations on one item"
    );
    assert_eq!(
        fails(
            &mut store,
            "TransactWriteItems",
            twi(json!([{"Put": {"TableName": "missing", "Item": {"id": {"S": "a"}}}}]))
        ),
        ("ResourceNotFoundException".to_string(), "Requested resource not found".to_string())
    );
    let big = |id: &str| json!({"Put": {"TableName": "accounts", "Item": {"id": {"S": id}, "pad": {"S": "x".repeat(350_000)}}}});
    let over: Vec<Value> = (0..12).map(|i| big(&i.to_string())).collect();
    validation(&mut store, "TransactWriteItems", twi(Value::Array(over)));
    let under: Vec<Value> = (0..10).map(|i| big(&i.to_string())).collect();
    ok(&mut store, "TransactWriteItems", twi(Value::Array(under)));
}

/// Runs a transfer of 10 from alice to bob on a store whose hook acts before every write group;
/// the answer and how many groups were tried.
fn transfer_with_writes_between(mut act: impl FnMut(&mut MemoryStore, usize)) -> (u16, Value, usize, MemoryStore) {
    let mut attempts = 0;
    let mut hooked = Hooked {
        store: store(),
        hook: |store: &mut MemoryStore, call: Call| -> Result<(), Failure> {
            if matches!(call, Call::Writing) {
                attempts += 1;
                act(store, attempts);
            }
            Ok(())
        },
    };
    let update = |id: &str, op: &str| {
        json!({"Update": {"TableName": "accounts", "Key": {"id": {"S": id}}, "UpdateExpression": format!("SET balance = balance {op} :n"),
                          "ExpressionAttributeValues": {":n": {"N": "10"}}}})
    };
    let body = twi(json!([update("alice", "-"), update("bob", "+")]));
    let request = request("TransactWriteItems", body.to_string().into_bytes());
    let response = dynabox_handler::handle(&request, &mut hooked, &mut AcceptAll);
    let store = hooked.store;
    let answer = serde_json::from_slice(&response.body).unwrap();
    (response.status, answer, attempts, store)
}

#[test]
fn a_write_between_the_decision_and_the_commit_is_decided_again() {
    let (status, _, attempts, mut store) = transfer_with_writes_between(|store, attempt| {
        if attempt == 1 {
            set_balances(store, 50, 50);
        }
    });
    assert_eq!((status, attempts), (200, 2));
    let answer = ok(&mut store, "TransactGetItems", both_accounts());
    assert_eq!(balances(&answer), vec![40, 60]);
}

#[test]
fn endless_write_conflicts_cancel_instead_of_looping() {
    let (status, answer, attempts, mut store) = transfer_with_writes_between(|store, attempt| {
        set_balances(store, 100 - attempt as i64, attempt as i64);
    });
    assert_eq!((status, attempts), (400, 16));
    let codes: Vec<&str> =
        answer["CancellationReasons"].as_array().unwrap().iter().map(|r| r["Code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["TransactionConflict", "TransactionConflict"]);
    // The last interleaved write stands; the transfer left no trace.
    assert_eq!(balances(&ok(&mut store, "TransactGetItems", both_accounts())), vec![84, 16]);
}

#[test]
fn transactional_writes_keep_global_indexes_exact() {
    let mut store = store();
    ok(
        &mut store,
        "CreateTable",
        json!({
            "TableName": "people", "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}, {"AttributeName": "city", "AttributeType": "S"}],
            "GlobalSecondaryIndexes": [{"IndexName": "by_city", "KeySchema": [{"AttributeName": "city", "KeyType": "HASH"}],
                                        "Projection": {"ProjectionType": "KEYS_ONLY"}}],
        }),
    );
    let put =
        |id: &str, city: &str| json!({"Put": {"TableName": "people", "Item": {"id": {"S": id}, "city": {"S": city}}}});
    ok(&mut store, "TransactWriteItems", twi(json!([put("ann", "oslo"), put("ben", "oslo")])));
    let moved = json!({"Update": {"TableName": "people", "Key": {"id": {"S": "ann"}}, "UpdateExpression": "SET city = :c",
                                  "ExpressionAttributeValues": {":c": {"S": "rome"}}}});
    ok(
        &mut store,
        "TransactWriteItems",
        twi(json!([moved, {"Delete": {"TableName": "people", "Key": {"id": {"S": "ben"}}}}])),
    );
    let in_city = |store: &mut MemoryStore, city: &str| {
        let query = json!({"TableName": "people", "IndexName": "by_city", "KeyConditionExpression": "city = :c",
                           "ExpressionAttributeValues": {":c": {"S": city}}});
        ok(store, "Query", query)["Count"].clone()
    };
    assert_eq!((in_city(&mut store, "oslo"), in_city(&mut store, "rome")), (json!(0), json!(1)));
}

#[test]
fn a_client_request_token_applies_its_request_once() {
    let mut store = store();
    let deposit = |amount: &str| {
        json!({
            "ClientRequestToken": "deposit-1",
            "TransactItems": [{"Update": {"TableName": "accounts", "Key": {"id": {"S": "bob"}},
                                          "UpdateExpression": "ADD balance :n", "ExpressionAttributeValues": {":n": {"N": amount}}}}],
        })
    };
    ok(&mut store, "TransactWriteItems", deposit("5"));
    // A retry of the same request (members in another order) succeeds without applying again.
    let retry: Value =
        serde_json::from_str(&deposit("5").to_string().replace("\"ClientRequestToken\":\"deposit-1\",", "")).unwrap();
    let mut retry = retry.as_object().unwrap().clone();
    retry.insert("ClientRequestToken".into(), json!("deposit-1"));
    assert_eq!(ok(&mut store, "TransactWriteItems", Value::Object(retry)), json!({}));
    assert_eq!(item(&mut store, "accounts", json!({"id": {"S": "bob"}}))["balance"], json!({"N": "5"}));
    assert_eq!(fails(&mut store, "TransactWriteItems", deposit("6")).0, "IdempotentParameterMismatchException");
    assert_eq!(item(&mut store, "accounts", json!({"id": {"S": "bob"}}))["balance"], json!({"N": "5"}));
    // Where tokens are kept is nobody's table.
    assert_eq!(ok(&mut store, "ListTables", json!({})), json!({"TableNames": ["accounts", "pairs"]}));
}

#[test]
fn a_single_item_write_that_always_loses_its_race_gives_up_with_a_retryable_error() {
    let mut writes = 0;
    let mut hooked = Hooked {
        store: store(),
        hook: |store: &mut MemoryStore, call: Call| -> Result<(), Failure> {
            if matches!(call, Call::Writing) {
                writes += 1;
                set_balances(store, 100 + writes, 0);
            }
            Ok(())
        },
    };
    let body = json!({"TableName": "accounts", "Key": {"id": {"S": "bob"}}, "UpdateExpression": "ADD balance :n",
                      "ExpressionAttributeValues": {":n": {"N": "1"}}});
    let request = request("UpdateItem", body.to_string().into_bytes());
    let response = dynabox_handler::handle(&request, &mut hooked, &mut AcceptAll);
    let answer: Value = serde_json::from_slice(&response.body).unwrap();
    let Hooked { mut store, .. } = hooked;
    assert_eq!(response.status, 400);
    assert_eq!(answer["__type"], "com.amazonaws.dynamodb.v20120810#ThrottlingException");
    assert_eq!(writes, 64);
    // Bob's balance is what the other writer left: the update was never applied.
    assert_eq!(item(&mut store, "accounts", json!({"id": {"S": "bob"}}))["balance"], json!({"N": "0"}));
}
