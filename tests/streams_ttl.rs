//! DynamoDB Streams and time to live end to end: the real binary on every backend, writers with
//! the AWS SDK for Rust, the stream read with the SDK's DynamoDB Streams client, expired items
//! deleted by the server's own sweep.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValue, ScalarAttributeType,
    StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use support::{Server, stores, unique};

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn streams_client(server: &Server) -> aws_sdk_dynamodbstreams::Client {
    let config = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
        .endpoint_url(server.endpoint())
        .region(aws_sdk_dynamodbstreams::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodbstreams::config::Credentials::new("k", "s", None, None, "tests"))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_dynamodbstreams::Client::from_conf(config)
}

async fn create_table(client: &aws_sdk_dynamodb::Client, label: &str, stream: Option<StreamViewType>) -> String {
    let name = unique(label);
    let mut request = client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().unwrap())
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build().unwrap(),
        );
    if let Some(view) = stream {
        request = request.stream_specification(
            StreamSpecification::builder().stream_enabled(true).stream_view_type(view).build().unwrap(),
        );
    }
    request.send().await.expect("create table");
    name
}

/// (key, counter value) of a change.
type Change = (String, u64);

/// Reads a stream until told to stop: every shard from its trim horizon once its parent is read
/// to its end, polling every 20 ms. Each change with the time it was first seen.
async fn read_stream(
    streams: aws_sdk_dynamodbstreams::Client,
    arn: String,
    stop: Arc<Mutex<bool>>,
) -> Vec<(Change, Instant)> {
    let (mut seen, mut finished, mut iterators) = (Vec::new(), HashSet::<String>::new(), HashMap::new());
    let mut quiet_rounds = 0;
    loop {
        let described = streams.describe_stream().stream_arn(&arn).send().await.expect("describe stream");
        for shard in described.stream_description.unwrap().shards.unwrap_or_default() {
            let id = shard.shard_id.unwrap();
            let parent_done = shard.parent_shard_id.is_none_or(|parent| finished.contains(&parent));
            if parent_done && !finished.contains(&id) && !iterators.contains_key(&id) {
                let it = streams
                    .get_shard_iterator()
                    .stream_arn(&arn)
                    .shard_id(&id)
                    .shard_iterator_type(ShardIteratorType::TrimHorizon)
                    .send()
                    .await
                    .expect("shard iterator");
                iterators.insert(id, it.shard_iterator.unwrap());
            }
        }
        let mut got = 0;
        for (id, it) in iterators.clone() {
            let page = streams.get_records().shard_iterator(it).send().await.expect("get records");
            let now = Instant::now();
            for record in page.records.unwrap_or_default() {
                let image = record.dynamodb.unwrap().new_image.unwrap();
                let key = match &image["pk"] {
                    aws_sdk_dynamodbstreams::types::AttributeValue::S(key) => key.clone(),
                    other => panic!("a string key, not {other:?}"),
                };
                let value = match &image["n"] {
                    aws_sdk_dynamodbstreams::types::AttributeValue::N(n) => n.parse().unwrap(),
                    other => panic!("a number, not {other:?}"),
                };
                seen.push(((key, value), now));
                got += 1;
            }
            match page.next_shard_iterator {
                Some(next) => iterators.insert(id, next),
                None => {
                    finished.insert(id.clone());
                    iterators.remove(&id)
                }
            };
        }
        // Stopped and drained: two rounds in a row without a record.
        quiet_rounds = if got == 0 { quiet_rounds + 1 } else { 0 };
        if *stop.lock().unwrap() && quiet_rounds >= 2 {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_tables_stream_has_every_change_once_in_order_within_a_second() {
    const WRITERS: usize = 4;
    const WRITES_EACH: usize = 300;
    const KEYS: usize = 8;
    for store in stores() {
        let server = Server::start(&store);
        let client = server.client();
        let table = create_table(&client, "busy", Some(StreamViewType::NewImage)).await;
        let described = client.describe_table().table_name(&table).send().await.unwrap();
        let arn = described.table.unwrap().latest_stream_arn.expect("a stream ARN");

        let stop = Arc::new(Mutex::new(false));
        let reader = tokio::spawn(read_stream(streams_client(&server), arn, stop.clone()));
        // Writers share the keys, so each key's changes come from several of them.
        let mut writers = Vec::new();
        for writer in 0..WRITERS {
            let (client, table) = (client.clone(), table.clone());
            writers.push(tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                for i in 0..WRITES_EACH {
                    let key = format!("k{}", (writer + i) % KEYS);
                    let updated = client
                        .update_item()
                        .table_name(&table)
                        .key("pk", s(&key))
                        .update_expression("ADD n :one")
                        .expression_attribute_values(":one", AttributeValue::N("1".into()))
                        .return_values(ReturnValue::UpdatedNew)
                        .send()
                        .await
                        .expect("update");
                    let n: u64 = updated.attributes.unwrap()["n"].as_n().unwrap().parse().unwrap();
                    acknowledged.push(((key, n), Instant::now()));
                }
                acknowledged
            }));
        }
        let mut acknowledged = HashMap::new();
        for writer in writers {
            acknowledged.extend(writer.await.unwrap());
        }
        *stop.lock().unwrap() = true;
        let seen = reader.await.unwrap();

        assert_eq!(acknowledged.len(), WRITERS * WRITES_EACH, "every write made its own counter value");
        let distinct: HashSet<&Change> = seen.iter().map(|(change, _)| change).collect();
        assert_eq!(distinct.len(), seen.len(), "no change is reported twice ({store:?})");
        assert_eq!(seen.len(), acknowledged.len(), "every change is reported ({store:?})");
        let mut last_per_key: HashMap<&str, u64> = HashMap::new();
        for ((key, n), _) in &seen {
            let last = last_per_key.entry(key).or_default();
            assert_eq!(*n, *last + 1, "{key}'s changes in order ({store:?})");
            *last = *n;
        }
        let latency = seen.iter().map(|(change, at)| at.saturating_duration_since(acknowledged[change])).max().unwrap();
        eprintln!("{store:?}: {} changes, read at most {latency:?} after their writes were acknowledged", seen.len());
        assert!(latency < Duration::from_secs(1), "a change is readable within a second ({latency:?}, {store:?})");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_deletes_expired_items_on_its_own() {
    for store in stores() {
        let server = Server::start_with(&store, &["--ttl-interval", "1"]);
        let client = server.client();
        let table = create_table(&client, "ttl", Some(StreamViewType::KeysOnly)).await;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let put = |key: &str, expires: AttributeValue| {
            client.put_item().table_name(&table).item("pk", s(key)).item("expires", expires).send()
        };
        // Written before time to live is enabled: no expiry stored with it yet.
        put("early", AttributeValue::N((now - 60).to_string())).await.unwrap();
        client
            .update_time_to_live()
            .table_name(&table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder().enabled(true).attribute_name("expires").build().unwrap(),
            )
            .send()
            .await
            .unwrap();
        put("expired", AttributeValue::N((now - 60).to_string())).await.unwrap();
        put("later", AttributeValue::N((now + 3600).to_string())).await.unwrap();
        put("text", AttributeValue::S("0".into())).await.unwrap();
        let started = Instant::now();
        let left = loop {
            let scanned = client.scan().table_name(&table).consistent_read(true).send().await.unwrap();
            let mut left: Vec<String> =
                scanned.items.unwrap().iter().map(|i| i["pk"].as_s().unwrap().clone()).collect();
            left.sort();
            if left.len() == 2 || started.elapsed() > Duration::from_secs(20) {
                break left;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(left, ["later", "text"], "{store:?}");
    }
}
