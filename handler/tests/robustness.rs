//! Robustness: random and mutated requests for every operation go through `handle` against an
//! in-memory store. No request may panic, and every answer must be a 200 with a JSON object or a
//! DynamoDB error envelope with status 400 (a 500 is a failure).
//!
//! Requests are built to get far: mostly well-formed bodies for two tables that exist (`tab1`, hash
//! key `pk` S; `tab2`, `pk` N and range key `sk` S), with random extra members, expressions drawn
//! from an alphabet of expression tokens, legacy parameters, and sometimes a node replaced by
//! arbitrary JSON or the body cut short. Each case runs a sequence of requests on one store, so
//! later requests meet items and tables the earlier ones left. `PROPTEST_CASES` raises the count.

mod support;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use dynabox_handler::http::Response;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::Union;
use serde_json::{Value, json};
use support::{AcceptAll, MemoryStore, request};

// ---- Sending and checking ----------------------------------------------------------------

/// Sends one request; `Err` says what was wrong with the answer.
fn send(store: &mut MemoryStore, operation: &str, body: Vec<u8>) -> Result<Response, String> {
    let request = request(operation, body);
    let shown = || format!("{operation} {}", String::from_utf8_lossy(&request.body));
    let response = catch_unwind(AssertUnwindSafe(|| dynabox_handler::handle(&request, store, &mut AcceptAll)))
        .map_err(|panic| {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            format!("panic ({message}) on {}", shown())
        })?;
    let body: Value = serde_json::from_slice(&response.body)
        .map_err(|e| format!("status {} with a body that is not JSON ({e}) on {}", response.status, shown()))?;
    let envelope_ok =
        body["__type"].as_str().is_some_and(|t| t.contains('#')) && body.get("message").is_none_or(Value::is_string);
    match response.status {
        200 if body.is_object() => Ok(response),
        400 if envelope_ok => Ok(response),
        status => Err(format!("status {status} with {body} on {}", shown())),
    }
}

/// The two tables every case starts with.
fn setup(store: &mut MemoryStore) -> Result<(), String> {
    let tables = [
        json!({
            "TableName": "tab1", "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        }),
        json!({
            "TableName": "tab2", "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "N"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
        }),
    ];
    for table in tables {
        let response = send(store, "CreateTable", table.to_string().into_bytes())?;
        if response.status != 200 {
            return Err(format!("setup failed: {}", String::from_utf8_lossy(&response.body)));
        }
    }
    Ok(())
}

// ---- Strategies ---------------------------------------------------------------------------

const OPERATIONS: &[&str] = &[
    "PutItem",
    "GetItem",
    "DeleteItem",
    "UpdateItem",
    "Scan",
    "Query",
    "CreateTable",
    "DescribeTable",
    "UpdateTable",
    "ListTables",
    "DeleteTable",
    "BatchWriteItem",
    "BatchGetItem",
];
const NAMES: &[&str] = &["pk", "sk", "a", "b", "c", "a.b", "#a", ""];
const STRINGS: &[&str] = &["", "a", "b", "pk", "x y", "é", "1", "0000"];
const NUMBERS: &[&str] = &["0", "1", "-1", "1.5", "1e3", "-0.0", "99999999999999999999999999999999999999"];
const BAD_NUMBERS: &[&str] = &["", "x", "1e126", "1e-131", "111111111111111111111111111111111111111"];
const BINARIES: &[&str] = &["", "AA==", "AQI=", "YQ=="];
const BAD_BINARIES: &[&str] = &["x", "QR==", "!!!!"];
/// Expression tokens: names, placeholders, operators, keywords and functions of every kind of
/// expression, and a few characters that are not tokens at all.
const TOKENS: &[&str] = &[
    "pk",
    "sk",
    "a",
    "b",
    "#a",
    "#n",
    "#pk",
    ":v",
    ":w",
    ":x",
    "=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "AND",
    "OR",
    "NOT",
    "BETWEEN",
    "IN",
    "(",
    ")",
    ",",
    ".",
    "[",
    "]",
    "[0]",
    "[1]",
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "begins_with",
    "contains",
    "size",
    "SET",
    "REMOVE",
    "ADD",
    "DELETE",
    "if_not_exists",
    "list_append",
    "+",
    "-",
    "1",
    "\"",
    "#",
    ":",
    "ü",
    "\u{0}",
];
const COMPARISON_OPERATORS: &[&str] = &[
    "EQ",
    "NE",
    "LE",
    "LT",
    "GE",
    "GT",
    "NOT_NULL",
    "NULL",
    "CONTAINS",
    "NOT_CONTAINS",
    "BEGINS_WITH",
    "IN",
    "BETWEEN",
    "XX",
];

fn pick(options: &'static [&'static str]) -> BoxedStrategy<String> {
    prop::sample::select(options).prop_map(str::to_string).boxed()
}

fn object(members: BTreeMap<String, Value>) -> Value {
    Value::Object(members.into_iter().collect())
}

/// Any JSON, biased towards DynamoDB's member and type names.
fn any_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        pick(&["", "S", "N", "1", "TOTAL", "EQ", "PUT", "a = :v", "QQ==", "tab1"]).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        let key = pick(&[
            "S",
            "N",
            "B",
            "BOOL",
            "NULL",
            "M",
            "L",
            "SS",
            "NS",
            "BS",
            "pk",
            "sk",
            "a",
            "Value",
            "Exists",
            "ComparisonOperator",
            "AttributeValueList",
            "Action",
            "TableName",
            "Key",
            "Item",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(key, inner, 0..4).prop_map(object),
        ]
    })
    .boxed()
}

/// Number and binary texts, rarely invalid.
fn number() -> BoxedStrategy<String> {
    prop_oneof![9 => pick(NUMBERS), 1 => pick(BAD_NUMBERS)].boxed()
}

fn binary() -> BoxedStrategy<String> {
    prop_oneof![9 => pick(BINARIES), 1 => pick(BAD_BINARIES)].boxed()
}

/// Set elements: distinct mostly, empty or repeated sometimes.
fn elements(element: BoxedStrategy<String>) -> BoxedStrategy<Vec<String>> {
    prop_oneof![
        6 => prop::collection::btree_set(element.clone(), 1..3).prop_map(|set| set.into_iter().collect()),
        1 => prop::collection::vec(element, 0..3),
    ]
    .boxed()
}

/// AttributeValues, mostly valid.
fn attribute_value() -> BoxedStrategy<Value> {
    let scalar = prop_oneof![
        pick(STRINGS).prop_map(|s| json!({"S": s})),
        number().prop_map(|n| json!({"N": n})),
        binary().prop_map(|b| json!({"B": b})),
        any::<bool>().prop_map(|b| json!({"BOOL": b})),
        Just(json!({"NULL": true})),
        elements(pick(STRINGS)).prop_map(|v| json!({"SS": v})),
        elements(number()).prop_map(|v| json!({"NS": v})),
        elements(binary()).prop_map(|v| json!({"BS": v})),
    ];
    scalar
        .prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(|v| json!({"L": v})),
                prop::collection::btree_map(pick(NAMES), inner, 0..3).prop_map(|m| json!({"M": m})),
            ]
        })
        .boxed()
}

fn attributes() -> BoxedStrategy<Value> {
    prop::collection::btree_map(pick(NAMES), attribute_value(), 0..4).prop_map(object).boxed()
}

fn key_of_tab1() -> BoxedStrategy<Value> {
    pick(STRINGS).prop_map(|s| json!({"pk": {"S": s}})).boxed()
}

fn key_of_tab2() -> BoxedStrategy<Value> {
    (number(), pick(STRINGS)).prop_map(|(n, s)| json!({"pk": {"N": n}, "sk": {"S": s}})).boxed()
}

/// A key of `tab1`, of `tab2`, or anything.
fn key() -> BoxedStrategy<Value> {
    prop_oneof![3 => key_of_tab1(), 3 => key_of_tab2(), 1 => attributes()].boxed()
}

/// A table and a key, of that table most of the time.
fn table_and_key() -> BoxedStrategy<(String, Value)> {
    prop_oneof![
        4 => (Just("tab1".to_string()), key_of_tab1()),
        4 => (Just("tab2".to_string()), key_of_tab2()),
        1 => (table_name(), key()),
    ]
    .boxed()
}

/// More attributes for an item, seldom with a name that replaces a key attribute.
fn more_attributes() -> BoxedStrategy<Value> {
    let name = prop_oneof![8 => pick(&["a", "b", "c", "a.b", "#a"]), 1 => pick(NAMES)];
    prop::collection::btree_map(name, attribute_value(), 0..4).prop_map(object).boxed()
}

fn table_name() -> BoxedStrategy<String> {
    prop_oneof![
        8 => pick(&["tab1", "tab2"]),
        2 => pick(&["tab3", "abc", "missing", "", "a", "bad name!", "tab1 "]),
        1 => Just("x".repeat(256)),
    ]
    .boxed()
}

fn expression() -> BoxedStrategy<String> {
    (prop::collection::vec(pick(TOKENS), 0..10), pick(&[" ", ""])).prop_map(|(tokens, gap)| tokens.join(&gap)).boxed()
}

fn optional(name: &str, value: Option<Value>) -> Option<(String, Value)> {
    value.map(|v| (name.to_string(), v))
}

fn expected_entry() -> BoxedStrategy<Value> {
    (
        prop::option::of(attribute_value()),
        prop::option::of(any::<bool>()),
        prop::option::of(pick(COMPARISON_OPERATORS)),
        prop::option::of(prop::collection::vec(attribute_value(), 0..3)),
    )
        .prop_map(|(value, exists, operator, list)| {
            let members = [
                optional("Value", value),
                optional("Exists", exists.map(Value::from)),
                optional("ComparisonOperator", operator.map(Value::from)),
                optional("AttributeValueList", list.map(Value::from)),
            ];
            Value::Object(members.into_iter().flatten().collect())
        })
        .boxed()
}

fn update_entry() -> BoxedStrategy<Value> {
    (prop::option::of(pick(&["PUT", "ADD", "DELETE", "put", ""])), prop::option::of(attribute_value()))
        .prop_map(|(action, value)| {
            let members = [optional("Action", action.map(Value::from)), optional("Value", value)];
            Value::Object(members.into_iter().flatten().collect())
        })
        .boxed()
}

fn key_schema() -> BoxedStrategy<Value> {
    let element = (pick(NAMES), pick(&["HASH", "RANGE", "hash"]))
        .prop_map(|(name, kind)| json!({"AttributeName": name, "KeyType": kind}));
    prop::collection::vec(element, 0..3).prop_map(Value::from).boxed()
}

fn definitions() -> BoxedStrategy<Value> {
    let element = (pick(NAMES), pick(&["S", "N", "B", "BOOL"]))
        .prop_map(|(name, kind)| json!({"AttributeName": name, "AttributeType": kind}));
    prop::collection::vec(element, 0..3).prop_map(Value::from).boxed()
}

/// A secondary index as CreateTable and UpdateTable's Create declare it.
fn index() -> BoxedStrategy<Value> {
    let names = prop::option::of(prop::collection::vec(pick(NAMES), 0..3));
    (pick(&["idx", "gsi", "ab", ""]), key_schema(), pick(&["ALL", "KEYS_ONLY", "INCLUDE", "x"]), names)
        .prop_map(|(name, keys, kind, names)| {
            json!({"IndexName": name, "KeySchema": keys, "Projection": {"ProjectionType": kind, "NonKeyAttributes": names}})
        })
        .boxed()
}

/// An entry of UpdateTable's GlobalSecondaryIndexUpdates.
fn index_update() -> BoxedStrategy<Value> {
    prop_oneof![
        index().prop_map(|index| json!({"Create": index})),
        pick(&["idx", "gsi"]).prop_map(|name| json!({"Delete": {"IndexName": name}})),
        pick(&["idx", "gsi"]).prop_map(|name| json!({"Update": {
            "IndexName": name, "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
        }})),
        Just(json!({})),
    ]
    .boxed()
}

/// One request member with a value of its type, or (rarely) of any JSON type.
fn member() -> BoxedStrategy<(String, Value)> {
    let map = |keys: &'static [&'static str], values: BoxedStrategy<Value>| {
        prop::collection::btree_map(pick(keys), values, 0..3).prop_map(object).boxed()
    };
    let typed: Vec<(&str, BoxedStrategy<Value>)> = vec![
        ("TableName", table_name().prop_map(Value::from).boxed()),
        ("Key", key()),
        ("Item", (key(), more_attributes()).prop_map(|(key, more)| with(key, more)).boxed()),
        ("ConditionExpression", expression().prop_map(Value::from).boxed()),
        ("UpdateExpression", expression().prop_map(Value::from).boxed()),
        ("ProjectionExpression", expression().prop_map(Value::from).boxed()),
        ("FilterExpression", expression().prop_map(Value::from).boxed()),
        ("KeyConditionExpression", expression().prop_map(Value::from).boxed()),
        ("KeyConditions", map(NAMES, expected_entry())),
        ("QueryFilter", map(NAMES, expected_entry())),
        ("ScanIndexForward", any::<bool>().prop_map(Value::from).boxed()),
        ("IndexName", pick(&["gsi", "idx", "x"]).prop_map(Value::from).boxed()),
        ("ExpressionAttributeNames", map(&["#a", "#n", "#pk", "a"], pick(NAMES).prop_map(Value::from).boxed())),
        ("ExpressionAttributeValues", map(&[":v", ":w", ":x", "v"], attribute_value())),
        ("Expected", map(NAMES, expected_entry())),
        ("ConditionalOperator", pick(&["AND", "OR", "XOR"]).prop_map(Value::from).boxed()),
        ("AttributeUpdates", map(NAMES, update_entry())),
        ("AttributesToGet", prop::collection::vec(pick(NAMES), 0..3).prop_map(Value::from).boxed()),
        (
            "ReturnValues",
            pick(&["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW", "x"]).prop_map(Value::from).boxed(),
        ),
        ("ReturnConsumedCapacity", pick(&["NONE", "TOTAL", "INDEXES", "x"]).prop_map(Value::from).boxed()),
        ("ReturnItemCollectionMetrics", pick(&["NONE", "SIZE", "x"]).prop_map(Value::from).boxed()),
        ("ReturnValuesOnConditionCheckFailure", pick(&["NONE", "ALL_OLD", "x"]).prop_map(Value::from).boxed()),
        ("ConsistentRead", any::<bool>().prop_map(Value::from).boxed()),
        ("Limit", (-2i64..5).prop_map(Value::from).boxed()),
        ("ExclusiveStartKey", key()),
        ("ExclusiveStartTableName", table_name().prop_map(Value::from).boxed()),
        ("Select", pick(&["ALL_ATTRIBUTES", "COUNT", "SPECIFIC_ATTRIBUTES", "x"]).prop_map(Value::from).boxed()),
        ("Segment", (-1i64..3).prop_map(Value::from).boxed()),
        ("TotalSegments", (-1i64..3).prop_map(Value::from).boxed()),
        ("ScanFilter", map(NAMES, expected_entry())),
        ("KeySchema", key_schema()),
        ("AttributeDefinitions", definitions()),
        ("LocalSecondaryIndexes", prop::collection::vec(index(), 0..2).prop_map(Value::from).boxed()),
        ("GlobalSecondaryIndexes", prop::collection::vec(index(), 0..2).prop_map(Value::from).boxed()),
        ("GlobalSecondaryIndexUpdates", prop::collection::vec(index_update(), 0..2).prop_map(Value::from).boxed()),
        ("DeletionProtectionEnabled", any::<bool>().prop_map(Value::from).boxed()),
        ("BillingMode", pick(&["PAY_PER_REQUEST", "PROVISIONED", "x"]).prop_map(Value::from).boxed()),
        (
            "ProvisionedThroughput",
            (prop::option::of(-1i64..3), prop::option::of(-1i64..3))
                .prop_map(|(r, w)| json!({"ReadCapacityUnits": r, "WriteCapacityUnits": w}))
                .boxed(),
        ),
    ];
    let members = typed.into_iter().map(|(name, value)| {
        let value = prop_oneof![12 => value, 1 => any_json()];
        (Just(name.to_string()), value).boxed()
    });
    Union::new(members).boxed()
}

/// A well-formed body for `operation`, on one of the tables most of the time.
fn skeleton(operation: &str) -> BoxedStrategy<Value> {
    let table = table_name();
    match operation {
        "PutItem" => (table_and_key(), more_attributes())
            .prop_map(|((t, key), more)| json!({"TableName": t, "Item": with(key, more)}))
            .boxed(),
        "GetItem" | "DeleteItem" | "UpdateItem" => {
            table_and_key().prop_map(|(t, k)| json!({"TableName": t, "Key": k})).boxed()
        }
        "BatchWriteItem" => (table_and_key(), more_attributes(), table_and_key())
            .prop_map(|((t, key), more, (other, other_key))| {
                let put = json!({"PutRequest": {"Item": with(key, more)}});
                let delete = json!({"DeleteRequest": {"Key": other_key}});
                if t == other {
                    json!({"RequestItems": {t: [put, delete]}})
                } else {
                    json!({"RequestItems": {t: [put], other: [delete]}})
                }
            })
            .boxed(),
        "BatchGetItem" => (table_and_key(), table_and_key())
            .prop_map(|((t, key), (other, other_key))| {
                if t == other {
                    json!({"RequestItems": {t: {"Keys": [key, other_key]}}})
                } else {
                    json!({"RequestItems": {t: {"Keys": [key]}, other: {"Keys": [other_key]}}})
                }
            })
            .boxed(),
        "CreateTable" => (table, key_schema(), definitions())
            .prop_map(|(t, k, d)| {
                json!({"TableName": t, "KeySchema": k, "AttributeDefinitions": d, "BillingMode": "PAY_PER_REQUEST"})
            })
            .boxed(),
        "UpdateTable" => (table, definitions(), index_update())
            .prop_map(|(t, d, u)| json!({"TableName": t, "AttributeDefinitions": d, "GlobalSecondaryIndexUpdates": [u]}))
            .boxed(),
        "ListTables" => Just(json!({})).boxed(),
        _ => table.prop_map(|t| json!({"TableName": t})).boxed(),
    }
}

/// `members` added to the object `value`.
fn with(mut value: Value, members: Value) -> Value {
    if let (Value::Object(value), Value::Object(members)) = (&mut value, members) {
        value.extend(members);
    }
    value
}

fn count_nodes(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        Value::Object(members) => members.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Replaces the `n`-th node of `value` (pre-order, the root is 0) with `with`.
fn replace_node(value: &mut Value, n: &mut usize, with: &Value) -> bool {
    if *n == 0 {
        *value = with.clone();
        return true;
    }
    *n -= 1;
    match value {
        Value::Array(items) => items.iter_mut().any(|v| replace_node(v, n, with)),
        Value::Object(members) => members.values_mut().any(|v| replace_node(v, n, with)),
        _ => false,
    }
}

/// How a body goes on the wire: as built, cut short, or replaced by bytes.
#[derive(Debug, Clone)]
enum Wire {
    Json,
    Truncated(Index),
    Bytes(Vec<u8>),
}

/// One request: the operation and its body.
fn request_case() -> impl Strategy<Value = (String, Vec<u8>)> {
    let operation = prop_oneof![30 => pick(OPERATIONS), 1 => pick(&["TransactGetItems", "", "dynamodb.PutItem"])];
    let wire = prop_oneof![
        16 => Just(Wire::Json),
        1 => any::<Index>().prop_map(Wire::Truncated),
        1 => prop::collection::vec(any::<u8>(), 0..24).prop_map(Wire::Bytes),
    ];
    operation.prop_flat_map(move |operation| {
        // Most requests get a few more members; some get a node replaced by anything.
        let extra = prop_oneof![2 => Just(vec![]), 3 => prop::collection::vec(member(), 1..4)];
        let mutations = prop_oneof![4 => Just(vec![]), 1 => prop::collection::vec((any::<Index>(), any_json()), 1..3)];
        (skeleton(&operation), extra, mutations, wire.clone()).prop_map(move |(body, extra, mutations, wire)| {
            let mut body = with(body, Value::Object(extra.into_iter().collect()));
            for (index, with) in mutations {
                let mut n = index.index(count_nodes(&body));
                replace_node(&mut body, &mut n, &with);
            }
            let text = body.to_string().into_bytes();
            let bytes = match wire {
                Wire::Json => text,
                Wire::Truncated(at) => text[..at.index(text.len())].to_vec(),
                Wire::Bytes(bytes) => bytes,
            };
            (operation.clone(), bytes)
        })
    })
}

// ---- Tests --------------------------------------------------------------------------------

/// The harness itself works: requests reach the store and come back.
#[test]
fn round_trip_through_the_memory_store() {
    let mut store = MemoryStore::default();
    setup(&mut store).unwrap();
    let item = json!({"pk": {"N": "1"}, "sk": {"S": "a"}, "v": {"SS": ["x"]}});
    let put = send(&mut store, "PutItem", json!({"TableName": "tab2", "Item": item}).to_string().into_bytes()).unwrap();
    assert_eq!(put.status, 200);
    let key = json!({"pk": {"N": "1.0"}, "sk": {"S": "a"}});
    let got = send(&mut store, "GetItem", json!({"TableName": "tab2", "Key": key}).to_string().into_bytes()).unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&got.body).unwrap(), json!({"Item": item}));
    let scan = send(&mut store, "Scan", json!({"TableName": "tab2"}).to_string().into_bytes()).unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&scan.body).unwrap()["Count"], json!(1));
    let missing = send(&mut store, "DescribeTable", br#"{"TableName": "nope"}"#.to_vec()).unwrap();
    assert_eq!(missing.status, 400);
}

/// 2048 cases, a few seconds in release, unless `PROPTEST_CASES` says otherwise.
fn config() -> ProptestConfig {
    let config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_some() { config } else { ProptestConfig { cases: 2048, ..config } }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_request_gets_a_dynamodb_answer(requests in prop::collection::vec(request_case(), 1..12)) {
        let mut store = MemoryStore::default();
        setup(&mut store).map_err(TestCaseError::fail)?;
        for (operation, body) in requests {
            send(&mut store, &operation, body).map_err(TestCaseError::fail)?;
        }
    }
}
