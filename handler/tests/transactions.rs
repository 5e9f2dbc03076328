//! TransactGetItems through `handle` on the reference store: answers across tables with
//! projections, validation in DynamoDB's words (after the DynamoDB Conformance Suite's recorded
//! answers), and a snapshot that no concurrent transfer can tear.

mod support;

use dynabox_handler::storage::WriteError;
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
        hook: |store: &mut MemoryStore, call: Call| -> Result<(), WriteError> {
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
