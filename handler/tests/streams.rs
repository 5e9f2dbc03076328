//! DynamoDB Streams and time to live through `handle` against the in-memory store: which writes
//! make which records, the Streams API's shards and iterators, and the expiry sweep.

mod support;

use dynabox_handler::expire_step;
use serde_json::{Value, json};
use support::{AcceptAll, MemoryStore, fails, ok, request, validation};

const ACCOUNT: &str = "123456789012";

fn table_with_stream(store: &mut MemoryStore, name: &str, view_type: Option<&str>) -> Value {
    let mut table = json!({
        "TableName": name, "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
    });
    if let Some(view_type) = view_type {
        table["StreamSpecification"] = json!({"StreamEnabled": true, "StreamViewType": view_type});
    }
    ok(store, "CreateTable", table)["TableDescription"].clone()
}

fn put(store: &mut MemoryStore, table: &str, item: Value) {
    ok(store, "PutItem", json!({"TableName": table, "Item": item}));
}

fn shards(store: &mut MemoryStore, arn: &str) -> Vec<Value> {
    let described = ok(store, "DescribeStream", json!({"StreamArn": arn}));
    described["StreamDescription"]["Shards"].as_array().unwrap().clone()
}

fn iterator(store: &mut MemoryStore, arn: &str, shard: &str, kind: &str, sequence: Option<&str>) -> String {
    let mut request = json!({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": kind});
    if let Some(sequence) = sequence {
        request["SequenceNumber"] = json!(sequence);
    }
    ok(store, "GetShardIterator", request)["ShardIterator"].as_str().unwrap().to_string()
}

/// Every record of every shard from the trim horizon, in shard order.
fn all_records(store: &mut MemoryStore, arn: &str) -> Vec<Value> {
    let mut records = Vec::new();
    for shard in shards(store, arn) {
        let mut it = Some(iterator(store, arn, shard["ShardId"].as_str().unwrap(), "TRIM_HORIZON", None));
        while let Some(current) = it {
            let page = ok(store, "GetRecords", json!({"ShardIterator": current}));
            let got = page["Records"].as_array().unwrap().clone();
            it = page["NextShardIterator"].as_str().map(str::to_string).filter(|_| !got.is_empty());
            records.extend(got);
        }
    }
    records
}

fn events(records: &[Value]) -> Vec<&str> {
    records.iter().map(|r| r["eventName"].as_str().unwrap()).collect()
}

#[test]
fn writes_make_insert_modify_and_remove_records_with_images() {
    let mut store = MemoryStore::default();
    let table = table_with_stream(&mut store, "tab", Some("NEW_AND_OLD_IMAGES"));
    let arn = table["LatestStreamArn"].as_str().unwrap().to_string();
    assert!(arn.starts_with("arn:aws:dynamodb:us-east-1:123456789012:table/tab/stream/"), "{arn}");
    assert_eq!(table["LatestStreamLabel"].as_str().unwrap(), arn.rsplit('/').next().unwrap());
    assert_eq!(table["StreamSpecification"], json!({"StreamEnabled": true, "StreamViewType": "NEW_AND_OLD_IMAGES"}));

    put(&mut store, "tab", json!({"pk": {"S": "a"}, "v": {"N": "1"}}));
    put(&mut store, "tab", json!({"pk": {"S": "a"}, "v": {"N": "1"}})); // identical: no record
    ok(
        &mut store,
        "UpdateItem",
        json!({"TableName": "tab", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET v = :v",
               "ExpressionAttributeValues": {":v": {"N": "2"}}}),
    );
    ok(&mut store, "DeleteItem", json!({"TableName": "tab", "Key": {"pk": {"S": "a"}}}));
    ok(&mut store, "DeleteItem", json!({"TableName": "tab", "Key": {"pk": {"S": "a"}}})); // nothing: no record
    ok(
        &mut store,
        "TransactWriteItems",
        json!({"TransactItems": [{"Put": {"TableName": "tab", "Item": {"pk": {"S": "b"}}}}]}),
    );

    let records = all_records(&mut store, &arn);
    assert_eq!(events(&records), ["INSERT", "MODIFY", "REMOVE", "INSERT"]);
    let modify = &records[1];
    assert_eq!(modify["dynamodb"]["Keys"], json!({"pk": {"S": "a"}}));
    assert_eq!(modify["dynamodb"]["OldImage"]["v"], json!({"N": "1"}));
    assert_eq!(modify["dynamodb"]["NewImage"]["v"], json!({"N": "2"}));
    assert_eq!(modify["dynamodb"]["StreamViewType"], "NEW_AND_OLD_IMAGES");
    assert_eq!(modify["eventSource"], "aws:dynamodb");
    assert_eq!(modify["awsRegion"], "us-east-1");
    assert!(modify["dynamodb"]["SizeBytes"].as_u64().unwrap() > 0);
    assert!(records[0]["dynamodb"].get("OldImage").is_none());
    assert!(records[2]["dynamodb"].get("NewImage").is_none());
    assert!(records.iter().all(|r| r.get("userIdentity").is_none()));
    let sequences: Vec<u64> =
        records.iter().map(|r| r["dynamodb"]["SequenceNumber"].as_str().unwrap().parse().unwrap()).collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
}

#[test]
fn an_update_that_creates_a_key_only_item_is_an_insert() {
    let mut store = MemoryStore::default();
    let table = table_with_stream(&mut store, "tab", Some("NEW_AND_OLD_IMAGES"));
    let arn = table["LatestStreamArn"].as_str().unwrap().to_string();
    let key = json!({"pk": {"S": "a"}});
    ok(&mut store, "UpdateItem", json!({"TableName": "tab", "Key": key}));
    ok(&mut store, "UpdateItem", json!({"TableName": "tab", "Key": key})); // changes nothing: no record
    let records = all_records(&mut store, &arn);
    assert_eq!(events(&records), ["INSERT"]);
    assert_eq!(records[0]["dynamodb"]["NewImage"], key);
    assert!(records[0]["dynamodb"].get("OldImage").is_none());
}

#[test]
fn view_types_choose_the_images() {
    let mut store = MemoryStore::default();
    for (view, new, old) in [("KEYS_ONLY", false, false), ("NEW_IMAGE", true, false), ("OLD_IMAGE", false, true)] {
        let arn = table_with_stream(&mut store, view, Some(view))["LatestStreamArn"].as_str().unwrap().to_string();
        put(&mut store, view, json!({"pk": {"S": "a"}, "v": {"N": "1"}}));
        put(&mut store, view, json!({"pk": {"S": "a"}, "v": {"N": "2"}}));
        let records = all_records(&mut store, &arn);
        assert_eq!(events(&records), ["INSERT", "MODIFY"]);
        assert_eq!(records[1]["dynamodb"].get("NewImage").is_some(), new, "{view}");
        assert_eq!(records[1]["dynamodb"].get("OldImage").is_some(), old, "{view}");
        assert_eq!(records[1]["dynamodb"]["Keys"], json!({"pk": {"S": "a"}}));
    }
}

#[test]
fn streams_are_enabled_and_disabled_by_update_table() {
    let mut store = MemoryStore::default();
    let table = table_with_stream(&mut store, "tab", None);
    assert!(table.get("LatestStreamArn").is_none());
    put(&mut store, "tab", json!({"pk": {"S": "before"}}));
    let spec = |enabled: bool, view: Option<&str>| {
        let mut spec = json!({"StreamEnabled": enabled});
        if let Some(view) = view {
            spec["StreamViewType"] = json!(view);
        }
        json!({"TableName": "tab", "StreamSpecification": spec})
    };
    let message = validation(&mut store, "UpdateTable", spec(false, None));
    assert_eq!(message, "Table does not have an enabled stream: TableName: tab");
    let updated = ok(&mut store, "UpdateTable", spec(true, Some("KEYS_ONLY")));
    let first = updated["TableDescription"]["LatestStreamArn"].as_str().unwrap().to_string();
    let message = validation(&mut store, "UpdateTable", spec(true, Some("NEW_IMAGE")));
    assert_eq!(message, "Table already has an enabled stream: TableName: tab");
    put(&mut store, "tab", json!({"pk": {"S": "during"}}));
    ok(&mut store, "UpdateTable", spec(false, None));
    put(&mut store, "tab", json!({"pk": {"S": "between"}}));
    let described = ok(&mut store, "DescribeTable", json!({"TableName": "tab"}))["Table"].clone();
    assert_eq!(described["LatestStreamArn"], first);
    assert!(described.get("StreamSpecification").is_none());
    let stream = ok(&mut store, "DescribeStream", json!({"StreamArn": first}))["StreamDescription"].clone();
    assert_eq!(stream["StreamStatus"], "DISABLED");

    let second = ok(&mut store, "UpdateTable", spec(true, Some("NEW_IMAGE")))["TableDescription"]["LatestStreamArn"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(first, second);
    put(&mut store, "tab", json!({"pk": {"S": "after"}}));
    let keys = |records: Vec<Value>| -> Vec<String> {
        records.iter().map(|r| r["dynamodb"]["Keys"]["pk"]["S"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(keys(all_records(&mut store, &first)), ["during"]);
    assert_eq!(keys(all_records(&mut store, &second)), ["after"]);
    let listed = ok(&mut store, "ListStreams", json!({"TableName": "tab"}))["Streams"].clone();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[1]["StreamArn"], second);
    // A transaction's ClientRequestToken is kept in an internal table, never listed.
    ok(
        &mut store,
        "TransactWriteItems",
        json!({"ClientRequestToken": "token", "TransactItems": [{"Put": {"TableName": "tab", "Item": {"pk": {"S": "x"}}}}]}),
    );
    let paged = ok(&mut store, "ListStreams", json!({"Limit": 1}));
    assert_eq!(paged["LastEvaluatedStreamArn"], first);
    let rest = ok(&mut store, "ListStreams", json!({"ExclusiveStartStreamArn": first}));
    assert_eq!(rest["Streams"].as_array().unwrap().len(), 1);

    let message = validation(&mut store, "UpdateTable", json!({"TableName": "tab", "StreamSpecification": {}}));
    assert!(
        message.contains("'streamSpecification.streamEnabled' failed to satisfy constraint: Member must not be null")
    );
}

#[test]
fn a_stream_rolls_over_to_a_child_shard() {
    let mut store = MemoryStore::default();
    let arn = table_with_stream(&mut store, "tab", Some("KEYS_ONLY"))["LatestStreamArn"].as_str().unwrap().to_string();
    for i in 0..1001 {
        put(&mut store, "tab", json!({"pk": {"S": format!("k{i}")}}));
    }
    let shards = shards(&mut store, &arn);
    assert_eq!(shards.len(), 2);
    assert_eq!(shards[1]["ParentShardId"], shards[0]["ShardId"]);
    assert!(shards[0].get("ParentShardId").is_none());
    assert_eq!(shards[0]["SequenceNumberRange"]["EndingSequenceNumber"], "000000000000000001000");
    assert!(shards[1]["SequenceNumberRange"].get("EndingSequenceNumber").is_none());

    // The full parent shard ends: after its last record there is no next iterator.
    let first = shards[0]["ShardId"].as_str().unwrap();
    let it = iterator(&mut store, &arn, first, "AT_SEQUENCE_NUMBER", Some("000000000000000000999"));
    let page = ok(&mut store, "GetRecords", json!({"ShardIterator": it}));
    assert_eq!(page["Records"].as_array().unwrap().len(), 2);
    assert!(page.get("NextShardIterator").is_none(), "{page}");
    let records = all_records(&mut store, &arn);
    assert_eq!(records.len(), 1001);
}

#[test]
fn iterators_start_where_their_type_says() {
    let mut store = MemoryStore::default();
    let arn = table_with_stream(&mut store, "tab", Some("KEYS_ONLY"))["LatestStreamArn"].as_str().unwrap().to_string();
    put(&mut store, "tab", json!({"pk": {"S": "a"}}));
    put(&mut store, "tab", json!({"pk": {"S": "b"}}));
    let shard = shards(&mut store, &arn)[0]["ShardId"].as_str().unwrap().to_string();
    let read = |store: &mut MemoryStore, it: &str| -> (Vec<String>, Option<String>) {
        let page = ok(store, "GetRecords", json!({"ShardIterator": it, "Limit": 1}));
        let keys = page["Records"].as_array().unwrap().iter();
        let keys = keys.map(|r| r["dynamodb"]["Keys"]["pk"]["S"].as_str().unwrap().to_string()).collect();
        (keys, page["NextShardIterator"].as_str().map(str::to_string))
    };
    let latest = iterator(&mut store, &arn, &shard, "LATEST", None);
    let after = iterator(&mut store, &arn, &shard, "AFTER_SEQUENCE_NUMBER", Some("000000000000000000001"));
    let at = iterator(&mut store, &arn, &shard, "AT_SEQUENCE_NUMBER", Some("000000000000000000001"));
    assert_eq!(read(&mut store, &at).0, ["a"]);
    assert_eq!(read(&mut store, &after).0, ["b"]);
    let (nothing, next) = read(&mut store, &latest);
    assert!(nothing.is_empty());
    put(&mut store, "tab", json!({"pk": {"S": "c"}}));
    assert_eq!(read(&mut store, &next.unwrap()).0, ["c"]);

    let message = validation(
        &mut store,
        "GetShardIterator",
        json!({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "AT_SEQUENCE_NUMBER", "SequenceNumber": "000000000000000000099"}),
    );
    assert!(message.starts_with("Invalid SequenceNumber"), "{message}");
    let (kind, _) = fails(&mut store, "DescribeStream", json!({"StreamArn": format!("{arn}9")}));
    assert_eq!(kind, "ResourceNotFoundException");
    let (kind, _) = fails(
        &mut store,
        "GetShardIterator",
        json!({"StreamArn": arn, "ShardId": "shardId-00000000000000000001-00000000", "ShardIteratorType": "LATEST"}),
    );
    assert_eq!(kind, "ResourceNotFoundException");
}

#[test]
fn old_iterators_expire_and_trimmed_records_are_refused() {
    let mut store = MemoryStore::default();
    let arn = table_with_stream(&mut store, "tab", Some("KEYS_ONLY"))["LatestStreamArn"].as_str().unwrap().to_string();
    put(&mut store, "tab", json!({"pk": {"S": "a"}}));
    let shard = shards(&mut store, &arn)[0]["ShardId"].as_str().unwrap().to_string();
    let it = iterator(&mut store, &arn, &shard, "TRIM_HORIZON", None);
    let issued_long_ago = format!("{}|1000", it.rsplit_once('|').unwrap().0);
    let (kind, message) = fails(&mut store, "GetRecords", json!({"ShardIterator": issued_long_ago}));
    assert_eq!(kind, "ExpiredIteratorException");
    assert!(message.starts_with("Iterator expired."), "{message}");

    // Everything written before a moment from now is trimmed.
    store.trim_changes(u64::MAX, u64::MAX);
    let (kind, _) = fails(&mut store, "GetRecords", json!({"ShardIterator": it}));
    assert_eq!(kind, "TrimmedDataAccessException");
    let (kind, _) = fails(&mut store, "GetRecords", json!({"ShardIterator": "nonsense"}));
    assert_eq!(kind, "ValidationException");
}

#[test]
fn the_expiry_sweep_deletes_expired_items_as_the_service() {
    let mut store = MemoryStore::default();
    let arn = table_with_stream(&mut store, "tab", Some("OLD_IMAGE"))["LatestStreamArn"].as_str().unwrap().to_string();
    // Written before time to live is enabled: found by the sweep's first visit.
    put(&mut store, "tab", json!({"pk": {"S": "early"}, "exp": {"N": "1700000000"}}));
    put(&mut store, "tab", json!({"pk": {"S": "ancient"}, "exp": {"N": "10"}})); // over five years ago
    ok(
        &mut store,
        "UpdateTimeToLive",
        json!({"TableName": "tab", "TimeToLiveSpecification": {"Enabled": true, "AttributeName": "exp"}}),
    );
    let now = 2_000_000_000;
    put(&mut store, "tab", json!({"pk": {"S": "expired"}, "exp": {"N": "1999999999.5"}}));
    put(&mut store, "tab", json!({"pk": {"S": "future"}, "exp": {"N": "2000000100"}}));
    put(&mut store, "tab", json!({"pk": {"S": "text"}, "exp": {"S": "1000"}}));
    // Expired items are still there until the sweep removes them.
    let count = |store: &mut MemoryStore| ok(store, "Scan", json!({"TableName": "tab"}))["Count"].as_u64().unwrap();
    assert_eq!(count(&mut store), 5);
    let mut steps = 0;
    while !expire_step(&mut store, ACCOUNT, "tab", now, 2).unwrap().done {
        steps += 1;
        assert!(steps < 20, "the sweep ends");
    }
    let scanned = ok(&mut store, "Scan", json!({"TableName": "tab"}));
    let mut left: Vec<&str> =
        scanned["Items"].as_array().unwrap().iter().map(|i| i["pk"]["S"].as_str().unwrap()).collect();
    left.sort();
    assert_eq!(left, ["ancient", "future", "text"]);

    let removed: Vec<Value> =
        all_records(&mut store, &arn).into_iter().filter(|r| r["eventName"] == "REMOVE").collect();
    assert_eq!(removed.len(), 2);
    for record in &removed {
        assert_eq!(record["userIdentity"], json!({"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}));
        assert!(record["dynamodb"]["OldImage"]["exp"].is_object());
    }
    // Later, the item written with a future expiry goes too.
    assert!(expire_step(&mut store, ACCOUNT, "tab", now + 200, 10).unwrap().done);
    assert_eq!(count(&mut store), 2);
}

#[test]
fn each_api_knows_only_its_own_operations() {
    let mut store = MemoryStore::default();
    for (target, known) in [
        ("DynamoDBStreams_20120810.ListStreams", true),
        ("DynamoDB_20120810.ListStreams", false),
        ("DynamoDBStreams_20120810.ListTables", false),
        ("DynamoDB_20120810.ListTables", true),
    ] {
        let mut sent = request("ListTables", b"{}".to_vec());
        sent.headers
            .iter_mut()
            .filter(|(name, _)| name == "x-amz-target")
            .for_each(|(_, value)| *value = target.into());
        let answer = dynabox_handler::handle(&sent, &mut store, &mut AcceptAll);
        let body = String::from_utf8_lossy(&answer.body);
        assert_eq!(answer.status == 200, known, "{target}: {body}");
        if !known {
            assert!(body.contains("UnknownOperationException"), "{target}: {body}");
        }
    }
}
