//! Query and Scan through `handle` on the in-memory store: key conditions, paging, filters,
//! Select, projections, segments, indexes, capacity, and DynamoDB's messages.

mod support;

use dynabox_handler::model::{item_from_json, key};
use dynabox_handler::storage::{Expect, ItemKey, Keyspace, Request, Storage, Write};
use serde_json::{Value, json};
use support::{MemoryStore, call};

const ACCOUNT: &str = "123456789012";

/// Table `tab`: hash `pk` (S), range `sk` (N), with a global index `gsi` (hash `g` S, range `sk`,
/// projecting `x`) and a local index `lsi` (hash `pk`, range `l` S, keys only).
fn store() -> MemoryStore {
    let mut store = MemoryStore::default();
    let attribute = |name: &str, kind: &str| json!({"Name": name, "AttributeType": kind});
    let table = json!({
        "TableName": "tab", "TableArn": "arn:aws:dynamodb:us-east-1:123456789012:table/tab", "TableId": "id",
        "CreationDateTime": 0.0, "HashKey": attribute("pk", "S"), "RangeKey": attribute("sk", "N"),
        "Provisioned": null,
        "Indexes": [
            {"IndexName": "gsi", "Global": true, "HashKey": attribute("g", "S"), "RangeKey": attribute("sk", "N"),
             "Projection": {"Include": ["x"]}, "Status": "Active", "Provisioned": null},
            {"IndexName": "lsi", "Global": false, "HashKey": attribute("pk", "S"), "RangeKey": attribute("l", "S"),
             "Projection": "KeysOnly", "Status": "Active", "Provisioned": null},
            {"IndexName": "new", "Global": true, "HashKey": attribute("g", "S"), "RangeKey": null,
             "Projection": "All", "Status": "Creating", "Provisioned": null},
        ],
    });
    let indexes = ["gsi".to_string(), "lsi".to_string(), "new".to_string()];
    assert!(store.ask(ACCOUNT, Request::create_table("tab", table.to_string().as_bytes(), &indexes)).unwrap());
    store
}

fn encode(value: &Value) -> Vec<u8> {
    let item = item_from_json(&json!({ "v": value })).unwrap();
    key::encode(&item["v"]).unwrap()
}

/// Puts an item through PutItem, and its index entries straight into the index keyspaces.
fn put(store: &mut MemoryStore, item: Value) {
    ok(store, "PutItem", json!({"TableName": "tab", "Item": item}));
    let table_key = ItemKey { partition: encode(&item["pk"]), sort: encode(&item["sk"]) };
    let pick = |names: &[&str]| -> Value {
        names.iter().filter(|n| item.get(**n).is_some()).map(|n| (n.to_string(), item[*n].clone())).collect()
    };
    let mut writes = Vec::new();
    if item.get("g").is_some() {
        let key = key::index_entry_key(encode(&item["g"]), Some(&encode(&item["sk"])), &table_key);
        writes.push(("gsi", key, pick(&["pk", "sk", "g", "x"])));
    }
    if item.get("l").is_some() {
        let key = key::index_entry_key(encode(&item["pk"]), Some(&encode(&item["l"])), &table_key);
        writes.push(("lsi", key, pick(&["pk", "sk", "l"])));
    }
    for (index, key, document) in writes {
        let keyspace = Keyspace::index("tab", index);
        let document = document.to_string().into_bytes();
        let write = Write::Put { keyspace, key, document, expect: Expect::Anything, expires_at: None };
        store.ask(ACCOUNT, Request::write(&[write])).unwrap();
    }
}

fn ok(store: &mut MemoryStore, operation: &str, body: Value) -> Value {
    let (status, answer) = call(store, operation, &body);
    assert_eq!(status, 200, "{operation} {body}: {answer}");
    answer
}

fn validation(store: &mut MemoryStore, operation: &str, body: Value) -> String {
    let (status, answer) = call(store, operation, &body);
    assert_eq!(status, 400, "{operation} {body}: {answer}");
    assert!(answer["__type"].as_str().unwrap().ends_with("#ValidationException"), "{answer}");
    answer["message"].as_str().unwrap().to_string()
}

/// Items `a`/1..=5 (x = 10 * sk, g = "G", l = "l<6-sk>") and `b`/1.
fn filled() -> MemoryStore {
    let mut store = store();
    for sk in 1..=5 {
        put(
            &mut store,
            json!({"pk": {"S": "a"}, "sk": {"N": sk.to_string()}, "x": {"N": (10 * sk).to_string()},
                   "y": {"S": "why"}, "g": {"S": "G"}, "l": {"S": format!("l{}", 6 - sk)}}),
        );
    }
    put(&mut store, json!({"pk": {"S": "b"}, "sk": {"N": "1"}, "g": {"S": "G"}}));
    store
}

fn query(store: &mut MemoryStore, members: Value) -> Value {
    let mut body = json!({"TableName": "tab"});
    body.as_object_mut().unwrap().extend(members.as_object().unwrap().clone());
    ok(store, "Query", body)
}

fn query_error(store: &mut MemoryStore, members: Value) -> String {
    let mut body = json!({"TableName": "tab"});
    body.as_object_mut().unwrap().extend(members.as_object().unwrap().clone());
    validation(store, "Query", body)
}

/// The sort keys of the items answered, as numbers.
fn sks(answer: &Value) -> Vec<i64> {
    answer["Items"].as_array().unwrap().iter().map(|i| i["sk"]["N"].as_str().unwrap().parse().unwrap()).collect()
}

fn values(pairs: &[(&str, Value)]) -> Value {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

#[test]
fn query_key_conditions_select_sort_ranges() {
    let mut store = filled();
    let n = |v: i64| json!({"N": v.to_string()});
    for (condition, expected) in [
        ("pk = :a", vec![1, 2, 3, 4, 5]),
        ("pk = :a AND sk = :two", vec![2]),
        ("pk = :a AND sk < :two", vec![1]),
        ("pk = :a AND sk <= :two", vec![1, 2]),
        ("pk = :a AND sk > :two", vec![3, 4, 5]),
        ("pk = :a AND sk >= :two", vec![2, 3, 4, 5]),
        ("pk = :a AND :two < sk", vec![3, 4, 5]),
        ("sk BETWEEN :two AND :four AND pk = :a", vec![2, 3, 4]),
    ] {
        let answer = query(
            &mut store,
            json!({"KeyConditionExpression": condition,
                   "ExpressionAttributeValues": values(&[(":a", json!({"S": "a"})), (":two", n(2)), (":four", n(4))])
                       .as_object().unwrap().iter()
                       .filter(|(k, _)| condition.contains(k.as_str()))
                       .map(|(k, v)| (k.clone(), v.clone())).collect::<serde_json::Map<_, _>>()}),
        );
        assert_eq!(sks(&answer), expected, "{condition}");
        assert_eq!(answer["Count"], json!(expected.len()));
        assert_eq!(answer["ScannedCount"], json!(expected.len()));
    }
    let answer = query(
        &mut store,
        json!({"KeyConditionExpression": "pk = :a", "ScanIndexForward": false,
               "ExpressionAttributeValues": {":a": {"S": "a"}}}),
    );
    assert_eq!(sks(&answer), vec![5, 4, 3, 2, 1]);
    let answer = query(
        &mut store,
        json!({"KeyConditionExpression": "pk = :b", "ExpressionAttributeValues": {":b": {"S": "nobody"}}}),
    );
    assert_eq!(answer, json!({"Count": 0, "ScannedCount": 0, "Items": []}));
}

#[test]
fn query_begins_with_on_a_string_sort_key() {
    let mut store = MemoryStore::default();
    let table = json!({
        "TableName": "str", "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
    });
    ok(&mut store, "CreateTable", table);
    for sk in ["a", "ab", "abc", "b", "ac"] {
        ok(&mut store, "PutItem", json!({"TableName": "str", "Item": {"pk": {"S": "p"}, "sk": {"S": sk}}}));
    }
    let answer = ok(
        &mut store,
        "Query",
        json!({"TableName": "str", "KeyConditionExpression": "pk = :p AND begins_with(sk, :ab)",
               "ExpressionAttributeValues": {":p": {"S": "p"}, ":ab": {"S": "ab"}}}),
    );
    assert_eq!(answer["Items"], json!([{"pk": {"S": "p"}, "sk": {"S": "ab"}}, {"pk": {"S": "p"}, "sk": {"S": "abc"}}]));
    // The legacy KeyConditions select the same.
    let answer = ok(
        &mut store,
        "Query",
        json!({"TableName": "str", "KeyConditions": {
            "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]},
            "sk": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"S": "ab"}]}}}),
    );
    assert_eq!(answer["Count"], json!(2));
    let message = validation(
        &mut store,
        "Query",
        json!({"TableName": "str", "KeyConditions": {
            "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]},
            "sk": {"ComparisonOperator": "NOT_NULL"}}}),
    );
    assert_eq!(message, "Attempted conditional constraint is not an indexable operation");
    let message = validation(&mut store, "Query", json!({"TableName": "str", "KeyConditions": {}}));
    assert_eq!(message, "Conditions can be of length 1 or 2 only");
    let message = validation(
        &mut store,
        "Query",
        json!({"TableName": "str", "KeyConditions": {"pk": {"AttributeValueList": [{"S": "p"}]}},
               "QueryFilter": {"x": {"ComparisonOperator": "LIKE"}}}),
    );
    assert_eq!(
        message,
        "2 validation errors detected: \
         Value 'LIKE' at 'queryFilter.x.member.comparisonOperator' failed to satisfy constraint: Member must satisfy enum value set: \
         [IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]; \
         Value null at 'keyConditions.pk.member.comparisonOperator' failed to satisfy constraint: Member must not be null"
    );
}

#[test]
fn key_condition_shapes_are_refused_with_dynamodb_messages() {
    let mut store = filled();
    let v = json!({":a": {"S": "a"}, ":n": {"N": "1"}});
    for (condition, message) in [
        ("pk = :a OR sk = :n", "Invalid operator used in KeyConditionExpression: OR"),
        ("NOT pk = :a", "Invalid operator used in KeyConditionExpression: NOT"),
        ("pk IN (:a, :a) AND sk = :n", "Invalid operator used in KeyConditionExpression: IN"),
        ("pk <> :a AND sk = :n", "Invalid operator used in KeyConditionExpression: <>"),
        (
            "attribute_exists(pk) AND sk = :n AND pk = :a",
            "Invalid operator used in KeyConditionExpression: attribute_exists",
        ),
        ("pk = :a AND contains(sk, :n)", "Invalid operator used in KeyConditionExpression: contains"),
        ("pk = :a AND size(sk) > :n", "KeyConditionExpressions cannot contain nested operations"),
        ("pk = :a AND sk.x > :n", "KeyConditionExpressions cannot have conditions on nested attributes"),
        (
            "pk = :a AND sk > pk",
            "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition",
        ),
        ("pk = :a AND :n > :n", "Invalid condition in KeyConditionExpression: No key attribute specified"),
        ("pk = :a AND sk > :n AND sk < :n", "KeyConditionExpressions must only contain one condition per key"),
        (
            "pk = :a AND begins_with(:a, sk)",
            "Invalid condition in KeyConditionExpression: begins_with operator must have the key attribute as its first operand",
        ),
        ("sk = :n", "Query condition missed key schema element: pk"),
        ("pk = :a AND x = :n", "Query condition missed key schema element: sk"),
        ("pk > :a", "Query key condition not supported"),
        ("pk = :n", "One or more parameter values were invalid: Condition parameter type does not match schema type"),
        (
            "pk = :a AND sk = :a",
            "One or more parameter values were invalid: Condition parameter type does not match schema type",
        ),
        ("pk = :a AND sk = :n AND x = :n", "Conditions can be of length 1 or 2 only"),
    ] {
        let used = values_used_by(condition, &v);
        let got =
            query_error(&mut store, json!({"KeyConditionExpression": condition, "ExpressionAttributeValues": used}));
        assert_eq!(got, message, "{condition}");
    }
    assert_eq!(
        query_error(&mut store, json!({})),
        "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request."
    );
    assert_eq!(
        query_error(&mut store, json!({"ExpressionAttributeValues": {":a": {"S": "a"}}, "KeyConditions": {}})),
        "ExpressionAttributeValues can only be specified when using expressions: FilterExpression and KeyConditionExpression are null"
    );
}

#[test]
fn limit_counts_items_read_and_pages_resume() {
    let mut store = filled();
    let base = json!({"KeyConditionExpression": "pk = :a", "FilterExpression": "x > :twenty",
                      "ExpressionAttributeValues": {":a": {"S": "a"}, ":twenty": {"N": "20"}}, "Limit": 2});
    let first = query(&mut store, base.clone());
    // Two items read, neither passes the filter.
    assert_eq!((first["Count"].clone(), first["ScannedCount"].clone()), (json!(0), json!(2)));
    assert_eq!(first["LastEvaluatedKey"], json!({"pk": {"S": "a"}, "sk": {"N": "2"}}));
    let mut next = base.clone();
    next["ExclusiveStartKey"] = first["LastEvaluatedKey"].clone();
    let second = query(&mut store, next);
    assert_eq!(sks(&second), vec![3, 4]);
    assert_eq!(second["LastEvaluatedKey"], json!({"pk": {"S": "a"}, "sk": {"N": "4"}}));
    let mut last = base;
    last["ExclusiveStartKey"] = second["LastEvaluatedKey"].clone();
    let third = query(&mut store, last);
    assert_eq!(sks(&third), vec![5]);
    assert!(third.get("LastEvaluatedKey").is_none());
    // A start key outside the conditions.
    let message = query_error(
        &mut store,
        json!({"KeyConditionExpression": "pk = :a", "ExpressionAttributeValues": {":a": {"S": "a"}},
               "ExclusiveStartKey": {"pk": {"S": "b"}, "sk": {"N": "1"}}}),
    );
    assert_eq!(message, "The provided starting key is outside query boundaries based on provided conditions");
    let message = query_error(
        &mut store,
        json!({"KeyConditionExpression": "pk = :a", "ExpressionAttributeValues": {":a": {"S": "a"}},
               "ExclusiveStartKey": {"pk": {"S": "a"}}}),
    );
    assert_eq!(message, "The provided starting key is invalid");
    let message = query_error(
        &mut store,
        json!({"KeyConditionExpression": "pk = :a", "ExpressionAttributeValues": {":a": {"S": "a"}},
               "ExclusiveStartKey": {"pk": {"S": "a"}, "sk": {"S": "1"}}}),
    );
    assert_eq!(message, "The provided key element does not match the schema");
    // A scan of the table words both as one.
    for start in [json!({"pk": {"S": "a"}}), json!({"pk": {"S": "a"}, "sk": {"S": "1"}})] {
        let message = validation(&mut store, "Scan", with_table(json!({"ExclusiveStartKey": start})));
        assert_eq!(message, "The provided starting key is invalid: The provided key element does not match the schema");
    }
    // The start key's names are checked before the key conditions, its types after.
    let message = query_error(
        &mut store,
        json!({"KeyConditionExpression": "sk = :n", "ExpressionAttributeValues": {":n": {"N": "1"}},
               "ExclusiveStartKey": {"pk": {"S": "a"}, "sk": {"S": "1"}}}),
    );
    assert_eq!(message, "Query condition missed key schema element: pk");
}

#[test]
fn filters_may_not_name_key_attributes_in_a_query() {
    let mut store = filled();
    let message = query_error(
        &mut store,
        json!({"KeyConditionExpression": "pk = :a", "FilterExpression": "sk > :n",
               "ExpressionAttributeValues": {":a": {"S": "a"}, ":n": {"N": "1"}}}),
    );
    assert_eq!(message, "Filter Expression can only contain non-primary key attributes: Primary key attribute: sk");
    let message = query_error(
        &mut store,
        json!({"KeyConditions": {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "a"}]}},
               "QueryFilter": {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "a"}]}}}),
    );
    assert_eq!(message, "QueryFilter can only contain non-primary key attributes: Primary key attribute: pk");
    // The legacy filter works as the expression does.
    let answer = query(
        &mut store,
        json!({"KeyConditions": {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "a"}]}},
               "QueryFilter": {"x": {"ComparisonOperator": "GE", "AttributeValueList": [{"N": "40"}]}},
               "AttributesToGet": ["sk"]}),
    );
    assert_eq!(answer["Items"], json!([{"sk": {"N": "4"}}, {"sk": {"N": "5"}}]));
    assert_eq!(answer["ScannedCount"], json!(5));
}

#[test]
fn select_and_projection() {
    let mut store = filled();
    let key = json!({"KeyConditionExpression": "pk = :a", "ExpressionAttributeValues": {":a": {"S": "a"}}});
    let with = |members: Value| {
        let mut body = key.clone();
        body.as_object_mut().unwrap().extend(members.as_object().unwrap().clone());
        body
    };
    let answer = query(&mut store, with(json!({"Select": "COUNT"})));
    assert_eq!(answer, json!({"Count": 5, "ScannedCount": 5}));
    let answer = query(&mut store, with(json!({"ProjectionExpression": "x", "Limit": 1})));
    assert_eq!(answer["Items"], json!([{"x": {"N": "10"}}]));
    assert_eq!(answer["LastEvaluatedKey"], json!({"pk": {"S": "a"}, "sk": {"N": "1"}}));
    for (members, message) in [
        (
            json!({"Select": "ALL_ATTRIBUTES", "ProjectionExpression": "x"}),
            "Cannot specify the ProjectionExpression when choosing to get ALL_ATTRIBUTES",
        ),
        (
            json!({"Select": "COUNT", "ProjectionExpression": "x"}),
            "Cannot specify the ProjectionExpression when choosing to get only the Count",
        ),
        (
            json!({"Select": "SPECIFIC_ATTRIBUTES"}),
            "Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES",
        ),
        (
            json!({"Select": "ALL_PROJECTED_ATTRIBUTES"}),
            "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName",
        ),
        (
            json!({"ProjectionExpression": "pk.a"}),
            "Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed: Key: pk",
        ),
    ] {
        assert_eq!(query_error(&mut store, with(members.clone())), message, "{members}");
    }
    assert_eq!(
        validation(&mut store, "Query", json!({"TableName": "tab", "Select": "SOME", "Limit": 0})),
        "2 validation errors detected: \
         Value at 'Limit' failed to satisfy constraint: Member must have value greater than or equal to 1; \
         Value 'SOME' at 'select' failed to satisfy constraint: Member must satisfy enum value set: \
         [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]"
    );
}

#[test]
fn index_queries() {
    let mut store = filled();
    let g = json!({"KeyConditionExpression": "g = :g", "ExpressionAttributeValues": {":g": {"S": "G"}}, "IndexName": "gsi"});
    let answer = query(&mut store, g.clone());
    // Index order: sk, then the table key; only the projection comes back.
    let order: Vec<(String, i64)> = answer["Items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["pk"]["S"].as_str().unwrap().to_string(), i["sk"]["N"].as_str().unwrap().parse().unwrap()))
        .collect();
    assert_eq!(order, [("a", 1), ("b", 1), ("a", 2), ("a", 3), ("a", 4), ("a", 5)].map(|(p, s)| (p.to_string(), s)));
    assert!(answer["Items"][0].get("y").is_none());
    assert_eq!(answer["Items"][0]["x"], json!({"N": "10"}));
    let mut paged = g.clone();
    paged["Limit"] = json!(2);
    let first = query(&mut store, paged.clone());
    assert_eq!(first["LastEvaluatedKey"], json!({"pk": {"S": "b"}, "sk": {"N": "1"}, "g": {"S": "G"}}));
    paged["ExclusiveStartKey"] = first["LastEvaluatedKey"].clone();
    assert_eq!(sks(&query(&mut store, paged.clone())), vec![2, 3]);
    paged["ExclusiveStartKey"] = json!({"pk": {"S": "b"}, "sk": {"N": "1"}});
    assert_eq!(query_error(&mut store, paged), "The provided starting key is invalid");
    // Index sort key conditions.
    for (condition, expected) in [
        ("g = :g AND sk = :one", vec![1, 1]),
        ("g = :g AND sk < :two", vec![1, 1]),
        ("g = :g AND sk <= :two", vec![1, 1, 2]),
        ("g = :g AND sk > :two", vec![3, 4, 5]),
        ("g = :g AND sk >= :two", vec![2, 3, 4, 5]),
        ("g = :g AND sk BETWEEN :one AND :two", vec![1, 1, 2]),
    ] {
        let all = json!({":g": {"S": "G"}, ":one": {"N": "1"}, ":two": {"N": "2"}});
        let used = values_used_by(condition, &all);
        let answer = query(
            &mut store,
            json!({"IndexName": "gsi", "KeyConditionExpression": condition, "ExpressionAttributeValues": used}),
        );
        assert_eq!(sks(&answer), expected, "{condition}");
    }
    let lsi = |condition: &str, members: Value| {
        let mut body = json!({"IndexName": "lsi", "KeyConditionExpression": condition,
                              "ExpressionAttributeValues": {":a": {"S": "a"}, ":l": {"S": "l2"}}});
        body.as_object_mut().unwrap().extend(members.as_object().unwrap().clone());
        body
    };
    assert_eq!(sks(&query(&mut store, lsi("pk = :a AND l >= :l", json!({})))), vec![4, 3, 2, 1]);
    assert_eq!(sks(&query(&mut store, lsi("pk = :a AND begins_with(l, :l)", json!({})))), vec![4]);
    // A local index reads what it does not project from the table, and is charged for it.
    let answer = query(
        &mut store,
        lsi("pk = :a AND l = :l", json!({"Select": "ALL_ATTRIBUTES", "ReturnConsumedCapacity": "INDEXES"})),
    );
    assert_eq!(answer["Items"][0]["y"], json!({"S": "why"}));
    assert_eq!(
        answer["ConsumedCapacity"],
        json!({"TableName": "tab", "CapacityUnits": 1.0, "Table": {"CapacityUnits": 0.5},
               "LocalSecondaryIndexes": {"lsi": {"CapacityUnits": 0.5}}})
    );
    for (members, message) in [
        (json!({"IndexName": "nope"}), "The table does not have the specified index: nope"),
        (
            json!({"IndexName": "gsi", "ConsistentRead": true}),
            "Consistent reads are not supported on global secondary indexes",
        ),
        (
            json!({"IndexName": "gsi", "Select": "ALL_ATTRIBUTES"}),
            "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global secondary index gsi because its projection type is not ALL",
        ),
        (json!({"IndexName": "new"}), "Cannot read from backfilling global secondary index"),
    ] {
        let mut body = json!({"KeyConditionExpression": "g = :g", "ExpressionAttributeValues": {":g": {"S": "G"}}});
        body.as_object_mut().unwrap().extend(members.as_object().unwrap().clone());
        assert_eq!(query_error(&mut store, body), message, "{members}");
    }
    let answer = query(
        &mut store,
        json!({"IndexName": "gsi", "KeyConditionExpression": "g = :g",
        "ExpressionAttributeValues": {":g": {"S": "G"}}, "ReturnConsumedCapacity": "INDEXES"}),
    );
    assert_eq!(answer["ConsumedCapacity"]["GlobalSecondaryIndexes"], json!({"gsi": {"CapacityUnits": 0.5}}));
    assert_eq!(answer["ConsumedCapacity"]["Table"], json!({"CapacityUnits": 0.0}));
}

#[test]
fn scan_segments_filters_and_indexes() {
    let mut store = filled();
    let scan = |store: &mut MemoryStore, members: Value| {
        let mut body = json!({"TableName": "tab"});
        body.as_object_mut().unwrap().extend(members.as_object().unwrap().clone());
        ok(store, "Scan", body)
    };
    let all = scan(&mut store, json!({}));
    assert_eq!(all["Count"], json!(6));
    // Segments are disjoint and cover the table.
    let mut seen = 0;
    for segment in 0..3 {
        seen += scan(&mut store, json!({"Segment": segment, "TotalSegments": 3}))["Count"].as_u64().unwrap();
    }
    assert_eq!(seen, 6);
    let answer = scan(
        &mut store,
        json!({"FilterExpression": "x >= :n", "ProjectionExpression": "sk", "ExpressionAttributeValues": {":n": {"N": "40"}}}),
    );
    assert_eq!((answer["Count"].clone(), answer["ScannedCount"].clone()), (json!(2), json!(6)));
    assert_eq!(sks(&answer), vec![4, 5]);
    let answer = scan(&mut store, json!({"ScanFilter": {"y": {"ComparisonOperator": "NULL"}}, "Select": "COUNT"}));
    assert_eq!(answer, json!({"Count": 1, "ScannedCount": 6}));
    let answer = scan(&mut store, json!({"IndexName": "lsi", "Limit": 2}));
    assert_eq!(answer["Count"], json!(2));
    let last = &answer["LastEvaluatedKey"];
    assert!(last.get("l").is_some() && last.get("sk").is_some(), "{last}");
    let mut resumed = json!({"IndexName": "lsi", "ExclusiveStartKey": last});
    assert_eq!(scan(&mut store, resumed.clone())["Count"], json!(3));
    resumed["IndexName"] = json!("gsi");
    assert_eq!(validation(&mut store, "Scan", with_table(resumed)), "The provided starting key is invalid");
    for (members, message) in [
        (
            json!({"Segment": 1}),
            "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
        ),
        (
            json!({"TotalSegments": 2}),
            "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
        ),
        (
            json!({"Segment": 2, "TotalSegments": 2}),
            "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: 2 is not less than TotalSegments: 2",
        ),
        (
            json!({"Segment": -1, "TotalSegments": 1000001}),
            "2 validation errors detected: \
            Value '-1' at 'segment' failed to satisfy constraint: Member must have value greater than or equal to 0; \
            Value '1000001' at 'totalSegments' failed to satisfy constraint: Member must have value less than or equal to 1000000",
        ),
        (
            json!({"ScanFilter": {"y": {"ComparisonOperator": "EQ"}}}),
            "One or more parameter values were invalid: Invalid number of argument(s) for the EQ ComparisonOperator",
        ),
        (json!({"ConditionalOperator": "OR"}), "ConditionalOperator cannot be used without Filter or Expected"),
        (
            json!({"FilterExpression": "x > :n", "ScanFilter": {}, "ExpressionAttributeValues": {":n": {"N": "1"}}}),
            "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {ScanFilter} Expression parameters: {FilterExpression}",
        ),
    ] {
        assert_eq!(validation(&mut store, "Scan", with_table(members.clone())), message, "{members}");
    }
    // A start key from another segment.
    let key = all["Items"][0].clone();
    let start = json!({"pk": key["pk"], "sk": key["sk"]});
    let mut other = None;
    for segment in 0..2 {
        let answer = call(
            &mut store,
            "Scan",
            &with_table(json!({"Segment": segment, "TotalSegments": 2, "ExclusiveStartKey": start})),
        );
        if answer.0 == 400 {
            other = Some((segment, answer.1["message"].as_str().unwrap().to_string()));
        }
    }
    let (segment, message) = other.expect("the key is outside one of the two segments");
    assert_eq!(
        message,
        format!(
            "The provided starting key is invalid: Invalid ExclusiveStartKey. Please use ExclusiveStartKey with correct Segment. TotalSegments: 2 Segment: {segment}"
        )
    );
}

fn with_table(members: Value) -> Value {
    let mut body = json!({"TableName": "tab"});
    body.as_object_mut().unwrap().extend(members.as_object().unwrap().clone());
    body
}

#[test]
fn a_page_stops_after_1_mb_read() {
    let mut store = store();
    // 300 KB items: the fourth one reaches 1 MB.
    for sk in 1..=5 {
        let data = "x".repeat(300 * 1024);
        put(&mut store, json!({"pk": {"S": "a"}, "sk": {"N": sk.to_string()}, "d": {"S": data}}));
    }
    let answer = query(
        &mut store,
        json!({"KeyConditionExpression": "pk = :a", "ExpressionAttributeValues": {":a": {"S": "a"}},
               "Select": "COUNT", "ReturnConsumedCapacity": "TOTAL", "ConsistentRead": true}),
    );
    assert_eq!(answer["Count"], json!(4));
    assert_eq!(answer["LastEvaluatedKey"], json!({"pk": {"S": "a"}, "sk": {"N": "4"}}));
    // Charged for the bytes read, though none were returned.
    let bytes = 4 * (300 * 1024 + "pk".len() + 1 + "sk".len() + 2 + "d".len());
    assert_eq!(answer["ConsumedCapacity"]["CapacityUnits"], json!(bytes.div_ceil(4096) as f64));
}

#[test]
fn validation_follows_dynamodb_order() {
    let mut store = store();
    let bad_everything = json!({
        "QueryFilter": {"a": {"ComparisonOperator": "EQ", "AttributeValueList": [{}]}},
        "AttributesToGet": ["a", "a"], "ExclusiveStartKey": {"a": {}}, "ConditionalOperator": "OR",
        "Select": "SPECIFIC_ATTRIBUTES",
    });
    let mut body = bad_everything.clone();
    body["ExpressionAttributeNames"] = json!({});
    assert_eq!(query_error(&mut store, body), "ExpressionAttributeNames can only be specified when using expressions");
    // The filter's entries, then AttributesToGet, then the start key, then the key conditions.
    assert_eq!(
        query_error(
            &mut store,
            json!({"QueryFilter": {}, "ExclusiveStartKey": {"a": {}}, "AttributesToGet": ["a", "a"]})
        ),
        "One or more parameter values were invalid: Duplicate value in attribute name: a"
    );
    for (value, message) in [
        (
            json!({}),
            "The provided starting key is invalid: Supplied AttributeValue is empty, must contain exactly one of the supported datatypes",
        ),
        (
            json!({"SS": []}),
            "The provided starting key is invalid: One or more parameter values were invalid: An string set  may not be empty",
        ),
        (json!({"NS": []}), "One or more parameter values were invalid: An number set  may not be empty"),
        (
            json!({"N": "1e126"}),
            "Number overflow. Attempting to store a number with magnitude larger than supported range",
        ),
    ] {
        let body =
            json!({"KeyConditionExpression": "", "ExpressionAttributeNames": {}, "ExclusiveStartKey": {"a": value}});
        assert_eq!(query_error(&mut store, body), message, "{value}");
    }
    assert_eq!(
        query_error(&mut store, json!({"KeyConditionExpression": "", "ExpressionAttributeValues": {":0": {"S": "b"}}})),
        "Invalid KeyConditionExpression: The expression can not be empty;"
    );
    // Scan checks its segments after the start key and before its expressions.
    assert_eq!(
        validation(&mut store, "Scan", with_table(json!({"Segment": 1, "FilterExpression": ""}))),
        "The TotalSegments parameter is required but was not present in the request when Segment parameter is present"
    );
    assert_eq!(
        validation(&mut store, "Scan", with_table(json!({"Segment": 1, "ExclusiveStartKey": {"a": {}}}))),
        "The provided starting key is invalid: Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
    );
    // A missing table is found before the key conditions are checked against a schema.
    let (status, answer) = call(
        &mut store,
        "Query",
        &json!({"TableName": "nope", "KeyConditionExpression": "z = :a", "ExpressionAttributeValues": {":a": {"N": "1"}}}),
    );
    assert_eq!((status, answer["message"].as_str()), (400, Some("Requested resource not found")));
}

/// The entries of the ExpressionAttributeValues `values` that `expression` names, so a request
/// sends no unused value.
fn values_used_by(expression: &str, values: &Value) -> serde_json::Map<String, Value> {
    let values = values.as_object().unwrap().iter();
    values.filter(|(k, _)| expression.contains(k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
}
