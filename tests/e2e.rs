//! End-to-end: the real `dynabox` binary on every backend, driven by the AWS SDK for Rust and by
//! raw HTTP for what no SDK sends.

mod support;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ProvisionedThroughput,
    ScalarAttributeType, TableStatus,
};
use support::{Server, Store, raw_request, signed_headers, stores, unique};

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn n(v: &str) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

async fn create_table(client: &Client, name: &str, sort: Option<(&str, ScalarAttributeType)>) {
    let mut request = client
        .create_table()
        .table_name(name)
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().unwrap())
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build().unwrap(),
        );
    if let Some((sort_name, sort_type)) = sort {
        request = request
            .key_schema(KeySchemaElement::builder().attribute_name(sort_name).key_type(KeyType::Range).build().unwrap())
            .attribute_definitions(
                AttributeDefinition::builder().attribute_name(sort_name).attribute_type(sort_type).build().unwrap(),
            );
    }
    request.send().await.expect("create table");
}

#[tokio::test(flavor = "multi_thread")]
async fn table_lifecycle() {
    for store in stores() {
        let server = Server::start(&store);
        let client = server.client();
        let name = unique("lifecycle");
        let created = client
            .create_table()
            .table_name(&name)
            .key_schema(KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build().unwrap())
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("id")
                    .attribute_type(ScalarAttributeType::N)
                    .build()
                    .unwrap(),
            )
            .billing_mode(BillingMode::Provisioned)
            .provisioned_throughput(
                ProvisionedThroughput::builder().read_capacity_units(5).write_capacity_units(7).build().unwrap(),
            )
            .send()
            .await
            .expect("create");
        let description = created.table_description().expect("description");
        assert_eq!(description.table_status(), Some(&TableStatus::Active), "{store:?}");
        assert_eq!(
            description.table_arn(),
            Some(format!("arn:aws:dynamodb:us-east-1:000000000000:table/{name}").as_str())
        );

        let described = client.describe_table().table_name(&name).send().await.expect("describe");
        let table = described.table().expect("table");
        assert_eq!(table.table_name(), Some(name.as_str()));
        assert_eq!(table.key_schema()[0].attribute_name(), "id");
        assert_eq!(table.attribute_definitions()[0].attribute_type(), &ScalarAttributeType::N);
        assert_eq!(table.billing_mode_summary().and_then(|b| b.billing_mode()), Some(&BillingMode::Provisioned));
        assert_eq!(table.provisioned_throughput().and_then(|p| p.write_capacity_units()), Some(7));
        assert!(table.table_id().is_some_and(|id| id.len() == 36));
        assert!(table.creation_date_time().is_some());
        assert_eq!(table.item_count(), Some(0));

        let again = client
            .create_table()
            .table_name(&name)
            .key_schema(KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build().unwrap())
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("id")
                    .attribute_type(ScalarAttributeType::N)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap_err();
        assert_eq!(again.code(), Some("ResourceInUseException"));
        assert_eq!(again.message(), Some(format!("Table already exists: {name}").as_str()));

        let deleted = client.delete_table().table_name(&name).send().await.expect("delete");
        assert_eq!(deleted.table_description().and_then(|t| t.table_status()), Some(&TableStatus::Deleting));
        let gone = client.describe_table().table_name(&name).send().await.unwrap_err();
        assert_eq!(gone.code(), Some("ResourceNotFoundException"));
        assert_eq!(gone.message(), Some(format!("Requested resource not found: Table: {name} not found").as_str()));
        let put = client.put_item().table_name(&name).item("id", n("1")).send().await.unwrap_err();
        assert_eq!(put.code(), Some("ResourceNotFoundException"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn list_tables_pages_in_name_order() {
    for store in stores() {
        let server = Server::start(&store);
        let client = server.client();
        let prefix = unique("list");
        let names: Vec<String> = ["c", "a", "b"].iter().map(|suffix| format!("{prefix}-{suffix}")).collect();
        for name in &names {
            create_table(&client, name, None).await;
        }
        // Other tests create tables concurrently, so page from just before our prefix.
        let first =
            client.list_tables().exclusive_start_table_name(format!("{prefix}-")).limit(2).send().await.unwrap();
        assert_eq!(first.table_names(), [format!("{prefix}-a"), format!("{prefix}-b")]);
        assert_eq!(first.last_evaluated_table_name(), Some(format!("{prefix}-b").as_str()));
        let second =
            client.list_tables().exclusive_start_table_name(format!("{prefix}-b")).limit(1).send().await.unwrap();
        assert_eq!(second.table_names(), [format!("{prefix}-c")]);
        let bad = client.list_tables().limit(101).send().await.unwrap_err();
        assert_eq!(bad.code(), Some("ValidationException"));
        assert_eq!(
            bad.message(),
            Some(
                "1 validation error detected: Value '101' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 100"
            )
        );
        for name in &names {
            client.delete_table().table_name(name).send().await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_attribute_type_round_trips() {
    for store in stores() {
        let server = Server::start(&store);
        let client = server.client();
        let name = unique("types");
        create_table(&client, &name, None).await;
        let item: HashMap<String, AttributeValue> = [
            ("pk", s("all")),
            ("string", s("héllo ✓")),
            ("empty", s("")),
            ("number", n("-12.5")),
            ("big", n("99999999999999999999999999999999999999")),
            ("tiny", n("0.000000000000000000000000000000000001")),
            ("binary", AttributeValue::B(Blob::new(vec![0u8, 255, 1, 128]))),
            ("yes", AttributeValue::Bool(true)),
            ("nothing", AttributeValue::Null(true)),
            ("strings", AttributeValue::Ss(vec!["x".into(), "y".into()])),
            ("numbers", AttributeValue::Ns(vec!["1".into(), "2.5".into()])),
            ("binaries", AttributeValue::Bs(vec![Blob::new(vec![1u8]), Blob::new(vec![2u8])])),
            (
                "list",
                AttributeValue::L(vec![s("a"), n("1"), AttributeValue::M(HashMap::from([("k".to_string(), s("v"))]))]),
            ),
            (
                "map",
                AttributeValue::M(HashMap::from([(
                    "nested".to_string(),
                    AttributeValue::L(vec![AttributeValue::Bool(false)]),
                )])),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        client.put_item().table_name(&name).set_item(Some(item.clone())).send().await.expect("put");
        let got =
            client.get_item().table_name(&name).key("pk", s("all")).consistent_read(true).send().await.expect("get");
        assert_eq!(got.item(), Some(&item), "{store:?}");
        let missing = client.get_item().table_name(&name).key("pk", s("none")).send().await.expect("get missing");
        assert!(missing.item().is_none());
        client.delete_table().table_name(&name).send().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn put_get_delete_with_old_values_and_key_errors() {
    for store in stores() {
        let server = Server::start(&store);
        let client = server.client();
        let name = unique("items");
        create_table(&client, &name, Some(("sk", ScalarAttributeType::N))).await;
        let put = |v: &str| {
            client
                .put_item()
                .table_name(&name)
                .item("pk", s("p"))
                .item("sk", n("1"))
                .item("v", s(v))
                .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
                .send()
        };
        assert!(put("first").await.unwrap().attributes().is_none());
        let replaced = put("second").await.unwrap();
        assert_eq!(replaced.attributes().and_then(|a| a.get("v")), Some(&s("first")));

        let wrong_type =
            client.put_item().table_name(&name).item("pk", s("p")).item("sk", s("1")).send().await.unwrap_err();
        assert_eq!(wrong_type.code(), Some("ValidationException"));
        assert_eq!(
            wrong_type.message(),
            Some("One or more parameter values were invalid: Type mismatch for key sk expected: N actual: S")
        );
        let missing = client.put_item().table_name(&name).item("pk", s("p")).send().await.unwrap_err();
        assert_eq!(
            missing.message(),
            Some("One or more parameter values were invalid: Missing the key sk in the item")
        );
        let empty = client.put_item().table_name(&name).item("pk", s("")).item("sk", n("1")).send().await.unwrap_err();
        assert_eq!(
            empty.message(),
            Some(
                "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: pk"
            )
        );
        let partial_key = client.get_item().table_name(&name).key("pk", s("p")).send().await.unwrap_err();
        assert_eq!(partial_key.message(), Some("The provided key element does not match the schema"));

        let deleted = client
            .delete_item()
            .table_name(&name)
            .key("pk", s("p"))
            .key("sk", n("1.0"))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.attributes().and_then(|a| a.get("v")), Some(&s("second")), "1.0 and 1 are the same key");
        let after = client.get_item().table_name(&name).key("pk", s("p")).key("sk", n("1")).send().await.unwrap();
        assert!(after.item().is_none());
        client.delete_table().table_name(&name).send().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn scan_returns_key_order_in_pages() {
    for store in stores() {
        let server = Server::start(&store);
        let client = server.client();
        let name = unique("scan");
        create_table(&client, &name, Some(("sk", ScalarAttributeType::N))).await;
        let sort_keys = ["-10", "-1.5", "0", "0.25", "2", "10", "100"];
        for pk in ["b", "a"] {
            for sk in sort_keys.iter().rev() {
                client.put_item().table_name(&name).item("pk", s(pk)).item("sk", n(sk)).send().await.unwrap();
            }
        }
        let mut seen = Vec::new();
        let mut start = None;
        let mut pages = 0;
        loop {
            let page = client.scan().table_name(&name).limit(4).set_exclusive_start_key(start).send().await.unwrap();
            pages += 1;
            for item in page.items() {
                let (AttributeValue::S(pk), AttributeValue::N(sk)) = (&item["pk"], &item["sk"]) else {
                    panic!("{item:?}")
                };
                seen.push(format!("{pk}/{sk}"));
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        let expected: Vec<String> =
            ["a", "b"].iter().flat_map(|pk| sort_keys.iter().map(move |sk| format!("{pk}/{sk}"))).collect();
        assert_eq!(seen, expected, "{store:?}");
        assert_eq!(pages, 4, "14 items in pages of 4, the last page saying no more");
        client.delete_table().table_name(&name).send().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn protocol_errors_and_headers() {
    let server = Server::start(&Store::InMemory);
    let address = &server.address;

    let health = raw_request(address, "GET", &[], b"");
    assert_eq!((health.status, health.body.as_str()), (200, "healthy: dynabox"));

    let unsigned = raw_request(address, "POST", &[("x-amz-target", "DynamoDB_20120810.ListTables")], b"{}");
    assert_eq!(unsigned.status, 400);
    assert!(unsigned.body.contains("#MissingAuthenticationTokenException"), "{}", unsigned.body);

    let mut headers = signed_headers("ListTables");
    headers.retain(|(n, _)| *n != "authorization");
    headers.push(("authorization", "AWS4-HMAC-SHA256 Credential=x".into()));
    let malformed = raw_request(address, "POST", &as_pairs(&headers), b"{}");
    assert!(malformed.body.contains("#IncompleteSignatureException"), "{}", malformed.body);

    let unknown = raw_request(address, "POST", &as_pairs(&signed_headers("Frobnicate")), b"{}");
    assert_eq!(unknown.status, 400);
    assert!(unknown.body.contains("#UnknownOperationException"), "{}", unknown.body);

    let garbage = raw_request(address, "POST", &as_pairs(&signed_headers("ListTables")), b"{not json");
    assert_eq!(garbage.status, 400);
    assert!(garbage.body.contains("#SerializationException"), "{}", garbage.body);

    let ok = raw_request(address, "POST", &as_pairs(&signed_headers("ListTables")), b"{}");
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("x-amz-crc32"), Some(crc32(ok.body.as_bytes()).to_string().as_str()));
    assert_eq!(ok.header("x-amzn-requestid").map(str::len), Some(52));
    assert_eq!(ok.header("content-type"), Some("application/x-amz-json-1.0"));

    let huge = vec![b' '; 16 * 1024 * 1024 + 1];
    let too_large = raw_request(address, "POST", &as_pairs(&signed_headers("ListTables")), &huge);
    assert_eq!(too_large.status, 413);
    assert!(too_large.body.contains("RequestEntityTooLarge"), "{}", too_large.body);
}

/// A request that exhausts its sandbox's memory traps; it gets a 500 InternalServerError while
/// requests running beside it succeed, and the server goes on serving.
#[tokio::test(flavor = "multi_thread")]
async fn a_trapping_request_disturbs_no_other() {
    let server = Server::start_with(&Store::InMemory, &["--request-memory-mib", "24"]);
    let client = server.client();
    let name = unique("trap");
    create_table(&client, &name, None).await;
    client.put_item().table_name(&name).item("pk", s("k")).item("v", n("1")).send().await.unwrap();

    // A valid item (120 KB as DynamoDB counts it) of 60,000 tiny list elements: under 1 MB on the
    // wire, but as a parsed JSON tree larger than this server's 24 MiB sandbox.
    let mut bomb = String::from(r#"{"TableName":""#);
    bomb.push_str(&name);
    bomb.push_str(r#"","Item":{"pk":{"S":"bomb"},"l":{"L":["#);
    bomb.push_str(&vec![r#"{"NULL":true}"#; 60_000].join(","));
    bomb.push_str("]}}}");
    let address = server.address.clone();
    let trap = tokio::task::spawn_blocking(move || {
        raw_request(&address, "POST", &as_pairs(&signed_headers("PutItem")), bomb.as_bytes())
    });

    let mut readers = Vec::new();
    for _ in 0..8 {
        let client = client.clone();
        let name = name.clone();
        readers.push(tokio::spawn(async move {
            for _ in 0..20 {
                let got =
                    client.get_item().table_name(&name).key("pk", s("k")).send().await.expect("a neighbour succeeds");
                assert_eq!(got.item().and_then(|i| i.get("v")), Some(&n("1")));
            }
        }));
    }
    let trapped = trap.await.unwrap();
    assert_eq!(trapped.status, 500, "{}", trapped.body);
    assert!(trapped.body.contains("#InternalServerError"), "{}", trapped.body);
    for reader in readers {
        reader.await.expect("no neighbour failed");
    }
    let bomb_stored = client.get_item().table_name(&name).key("pk", s("bomb")).send().await.unwrap();
    assert!(bomb_stored.item().is_none(), "the trapped request changed nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_data_survives_a_restart_and_sigterm_exits_cleanly() {
    let store = Store::Embedded(support::temp_dir("restart"));
    let server = Server::start(&store);
    let client = server.client();
    create_table(&client, "kept", None).await;
    client.put_item().table_name("kept").item("pk", s("x")).item("v", s("still here")).send().await.unwrap();
    assert!(server.terminate(), "SIGTERM exits with status 0");

    let server = Server::start(&store);
    let got = server.client().get_item().table_name("kept").key("pk", s("x")).send().await.unwrap();
    assert_eq!(got.item().and_then(|i| i.get("v")), Some(&s("still here")));
}

fn as_pairs<'a>(headers: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    headers.iter().map(|(n, v)| (*n, v.as_str())).collect()
}

/// CRC-32 (IEEE), as botocore checks `x-amz-crc32`; written out so the test does not share
/// the server's implementation.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Holds the lock a write of `table` needs, from outside the server, for `hold`: on PostgreSQL
/// the table's rows (reads go on), on the embedded store the database's write lock.
fn hold_write_lock(store: &Store, table: &str, hold: std::time::Duration) -> tokio::task::JoinHandle<()> {
    let (locked_tx, locked) = std::sync::mpsc::channel();
    let task = match store.clone() {
        Store::Postgres(url) => {
            let table = table.to_string();
            tokio::spawn(async move {
                let (mut client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(connection);
                let tx = client.transaction().await.unwrap();
                let row = tx
                    .query_one(
                        "SELECT k.storage_table FROM dynabox.keyspaces AS k JOIN dynabox.tables AS t \
                         ON t.id = k.table_id WHERE t.name = $1 AND k.index_name = ''",
                        &[&table],
                    )
                    .await;
                let storage_table: String = row.unwrap().get(0);
                tx.batch_execute(&format!("LOCK TABLE dynabox.{storage_table} IN EXCLUSIVE MODE")).await.unwrap();
                locked_tx.send(()).unwrap();
                tokio::time::sleep(hold).await;
                tx.rollback().await.unwrap();
            })
        }
        Store::Embedded(dir) => tokio::task::spawn_blocking(move || {
            let mut conn = rusqlite::Connection::open(dir.join("dynabox.sqlite3")).unwrap();
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).unwrap();
            locked_tx.send(()).unwrap();
            std::thread::sleep(hold);
            tx.rollback().unwrap();
        }),
        Store::InMemory => panic!("an in-memory store cannot be locked from outside"),
    };
    locked.recv().expect("the lock is taken");
    task
}

/// A write that waits on storage longer than the request may run in the sandbox is still
/// answered with its outcome: sandbox time excludes storage waits. A write that waits longer than
/// the storage timeout fails with a retryable error and applies nothing. (Before, the deadline
/// counted waits: the write committed, the client got a 500, retried, and applied twice.)
#[tokio::test(flavor = "multi_thread")]
async fn writes_waiting_on_storage_are_answered_by_their_outcome() {
    use std::time::Duration;
    for store in stores() {
        let server = Server::start_with(&store, &["--request-sandbox-ms", "300", "--storage-timeout-ms", "1500"]);
        let client = server.client();
        // One attempt per call: a retry would hide what the first answer was.
        let client = Client::from_conf(
            client.config().to_builder().retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled()).build(),
        );
        let name = unique("waits");
        create_table(&client, &name, None).await;
        client.put_item().table_name(&name).item("pk", s("k")).item("n", n("0")).send().await.unwrap();
        let increment = || {
            client
                .update_item()
                .table_name(&name)
                .key("pk", s("k"))
                .update_expression("ADD n :one")
                .expression_attribute_values(":one", n("1"))
                .send()
        };
        let counter = async || {
            let got = client.get_item().table_name(&name).key("pk", s("k")).consistent_read(true).send().await;
            got.unwrap().item().unwrap()["n"].clone()
        };

        // Waits 800 ms for the lock: more than the sandbox time, less than the storage timeout.
        let lock = hold_write_lock(&store, &name, Duration::from_millis(800));
        increment().await.unwrap_or_else(|e| panic!("{store:?}: a committed write was reported as {e:?}"));
        lock.await.unwrap();
        assert_eq!(counter().await, n("1"), "{store:?}");

        // Waits longer than the storage timeout: a retryable error, and nothing applied.
        let lock = hold_write_lock(&store, &name, Duration::from_millis(4000));
        let error = increment().await.expect_err("the write times out");
        assert_eq!(error.code(), Some("InternalServerError"), "{store:?}: {error:?}");
        // What failed inside is for the server's log, not for clients.
        assert_eq!(error.message(), Some("Internal server error"), "{store:?}");
        assert_eq!(error.raw_response().map(|r| r.status().as_u16()), Some(500));
        lock.await.unwrap();
        assert_eq!(counter().await, n("1"), "{store:?}: the timed-out write applied nothing");
        increment().await.unwrap();
        assert_eq!(counter().await, n("2"), "{store:?}");
    }
}

/// Two servers on one PostgreSQL database see each other's table changes at once: a table made,
/// changed (a global index added) and deleted through one is at once what the other answers.
#[tokio::test(flavor = "multi_thread")]
async fn two_servers_on_one_database_see_each_others_tables() {
    let Some(Store::Postgres(url)) = stores().into_iter().find(|s| matches!(s, Store::Postgres(_))) else { return };
    let store = Store::Postgres(url);
    let (first, second) = (Server::start(&store), Server::start(&store));
    let (a, b) = (first.client(), second.client());
    let name = unique("shared");
    create_table(&a, &name, None).await;
    let described = b.describe_table().table_name(&name).send().await.expect("the other server sees the table");
    assert_eq!(described.table().and_then(|t| t.table_status()), Some(&TableStatus::Active));
    b.put_item().table_name(&name).item("pk", s("k")).item("g", s("group")).send().await.unwrap();
    let got = a.get_item().table_name(&name).key("pk", s("k")).send().await.unwrap();
    assert_eq!(got.item().and_then(|i| i.get("g")), Some(&s("group")));

    // An index added through one server is maintained by writes through the other at once.
    a.update_table()
        .table_name(&name)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("g").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .global_secondary_index_updates(
            aws_sdk_dynamodb::types::GlobalSecondaryIndexUpdate::builder()
                .create(
                    aws_sdk_dynamodb::types::CreateGlobalSecondaryIndexAction::builder()
                        .index_name("by-g")
                        .key_schema(
                            KeySchemaElement::builder().attribute_name("g").key_type(KeyType::Hash).build().unwrap(),
                        )
                        .projection(
                            aws_sdk_dynamodb::types::Projection::builder()
                                .projection_type(aws_sdk_dynamodb::types::ProjectionType::All)
                                .build(),
                        )
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let index_active = async |client: &Client| {
        let table = client.describe_table().table_name(&name).send().await.unwrap();
        let indexes = table.table().map(|t| t.global_secondary_indexes().to_vec()).unwrap_or_default();
        indexes.iter().any(|i| {
            i.index_name() == Some("by-g") && i.index_status() == Some(&aws_sdk_dynamodb::types::IndexStatus::Active)
        })
    };
    // The item written before the index is filled in by a worker; wait for it.
    for _ in 0..100 {
        if index_active(&b).await {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(index_active(&b).await, "the index became ACTIVE, as both servers see");
    b.put_item().table_name(&name).item("pk", s("k2")).item("g", s("group")).send().await.unwrap();
    let queried = a
        .query()
        .table_name(&name)
        .index_name("by-g")
        .key_condition_expression("g = :g")
        .expression_attribute_values(":g", s("group"))
        .send()
        .await
        .unwrap();
    let mut keys: Vec<_> = queried.items().iter().map(|i| i["pk"].clone()).collect();
    keys.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(keys, [s("k"), s("k2")]);

    b.delete_table().table_name(&name).send().await.unwrap();
    let gone = a.describe_table().table_name(&name).send().await.expect_err("the table is gone for both");
    assert_eq!(gone.code(), Some("ResourceNotFoundException"));

    // A table deleted and made again with another key schema through one server while the other
    // remembers the old description: the other answers from the new table at once, reads and
    // writes alike.
    create_table(&a, &name, None).await;
    a.put_item().table_name(&name).item("pk", s("old")).send().await.unwrap();
    assert!(a.get_item().table_name(&name).key("pk", s("old")).send().await.unwrap().item().is_some());
    b.delete_table().table_name(&name).send().await.unwrap();
    create_table(&b, &name, Some(("sk", ScalarAttributeType::N))).await;
    b.put_item().table_name(&name).item("pk", s("new")).item("sk", n("1")).send().await.unwrap();
    let got = a.get_item().table_name(&name).key("pk", s("new")).key("sk", n("1")).send().await.unwrap();
    assert_eq!(
        got.item().and_then(|i| i.get("pk")),
        Some(&s("new")),
        "read through the server that knew the old table"
    );
    let refused = a.get_item().table_name(&name).key("pk", s("old")).send().await.expect_err("the old key schema");
    assert_eq!(refused.code(), Some("ValidationException"));
    b.delete_table().table_name(&name).send().await.unwrap();
    create_table(&b, &name, None).await;
    a.put_item().table_name(&name).item("pk", s("again")).send().await.expect("a put with the newest key schema");
    let got = b.get_item().table_name(&name).key("pk", s("again")).send().await.unwrap();
    assert!(got.item().is_some(), "written through the server that remembered the sort key");
    b.delete_table().table_name(&name).send().await.unwrap();
}

/// SIGTERM as soon as the server says where it listens drains and exits cleanly: the handler is
/// installed before that line, not when the server first waits for a signal.
#[test]
fn sigterm_right_after_start_up_exits_cleanly() {
    for _ in 0..10 {
        assert!(Server::start(&Store::InMemory).terminate());
    }
}
