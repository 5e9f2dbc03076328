//! DynamoDB behaviour a client sees, end to end: the real `dynabox` binary on every backend,
//! driven by the AWS SDK for Rust (and raw HTTP for bodies no SDK sends). The exhaustive cases
//! are the handler's own tests (`handler/tests/api.rs`); these check that they reach a client.

mod support;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndexUpdate, IndexStatus,
    KeySchemaElement, KeyType, Projection, ProjectionType, ReturnConsumedCapacity, ReturnValue, ScalarAttributeType,
    TableStatus,
};
use support::{Server, create_hash_table, raw_request, signed_headers, stores};

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_that_only_removes_leaves_a_missing_item_missing() {
    for store in stores() {
        let server = Server::start(&store);
        let client = server.client();
        let table = create_hash_table(&client, "api", "pk").await;
        let update = |expression: &str| {
            client
                .update_item()
                .table_name(&table)
                .key("pk", s("a"))
                .update_expression(expression)
                .return_values(ReturnValue::AllNew)
        };
        let removed = update("REMOVE x[0], y").send().await.expect("remove");
        assert_eq!(removed.attributes(), None, "{store:?}");
        let got = client.get_item().table_name(&table).key("pk", s("a")).consistent_read(true).send().await.unwrap();
        assert_eq!(got.item(), None, "{store:?}");

        let set = update("SET x = :v").expression_attribute_values(":v", s("v")).send().await.expect("set");
        let created = set.attributes().expect("the new item");
        assert_eq!(created.get("x"), Some(&s("v")), "{store:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_with_nothing_to_change_creates_the_key_only_item() {
    for store in stores() {
        let server = Server::start(&store);
        let client = server.client();
        let table = create_hash_table(&client, "api", "pk").await;
        let created = client
            .update_item()
            .table_name(&table)
            .key("pk", s("a"))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .expect("update without an expression");
        let key = std::collections::HashMap::from([("pk".to_string(), s("a"))]);
        assert_eq!(created.attributes(), Some(&key), "{store:?}");

        // The create-if-absent idiom: the first call creates the item, the second fails.
        let create_if_absent = || {
            client.update_item().table_name(&table).key("pk", s("b")).condition_expression("attribute_not_exists(pk)")
        };
        create_if_absent().send().await.expect("first create");
        let got = client.get_item().table_name(&table).key("pk", s("b")).consistent_read(true).send().await.unwrap();
        assert_eq!(got.item().and_then(|item| item.get("pk")), Some(&s("b")), "{store:?}");
        let again = create_if_absent().send().await.expect_err("second create");
        assert_eq!(again.code(), Some("ConditionalCheckFailedException"), "{store:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn index_key_values_are_held_to_the_key_size_limits() {
    for store in stores() {
        let server = Server::start(&store);
        let client = server.client();
        let table = create_hash_table(&client, "api", "pk").await;
        let too_large = "g".repeat(2049);
        // Before the index exists, the value is no key: the backfill must leave it out.
        for (pk, g) in [("a", "G"), ("b", too_large.as_str())] {
            client.put_item().table_name(&table).item("pk", s(pk)).item("g", s(g)).send().await.expect("put");
        }
        let create = CreateGlobalSecondaryIndexAction::builder()
            .index_name("by-g")
            .key_schema(KeySchemaElement::builder().attribute_name("g").key_type(KeyType::Hash).build().unwrap())
            .projection(Projection::builder().projection_type(ProjectionType::All).build())
            .build()
            .unwrap();
        client
            .update_table()
            .table_name(&table)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("g")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .global_secondary_index_updates(GlobalSecondaryIndexUpdate::builder().create(create).build())
            .send()
            .await
            .expect("create the index");
        let mut active = false;
        for _ in 0..100 {
            let described = client.describe_table().table_name(&table).send().await.unwrap();
            let indexes = described.table().map(|t| t.global_secondary_indexes().to_vec()).unwrap_or_default();
            active = indexes.iter().any(|i| i.index_status() == Some(&IndexStatus::Active));
            if active {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(active, "the backfill got past the item it leaves out: {store:?}");
        let indexed = client.scan().table_name(&table).index_name("by-g").send().await.unwrap();
        assert_eq!(indexed.count(), 1, "{store:?}");

        let refused = client.put_item().table_name(&table).item("pk", s("c")).item("g", s(&too_large)).send().await;
        let refused = refused.expect_err("an index key over 2,048 bytes");
        assert_eq!(refused.code(), Some("ValidationException"), "{store:?}");
        assert_eq!(
            refused.message(),
            Some(
                "One or more parameter values were invalid: Size limit exceeded for Index Key g Actual Size: 2049 bytes \
                 Max Size: 2048 bytes IndexName: by-g"
            )
        );
        let got = client.get_item().table_name(&table).key("pk", s("c")).consistent_read(true).send().await.unwrap();
        assert_eq!(got.item(), None, "{store:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_are_charged_on_item_size_in_4_kb_units() {
    for store in stores() {
        let server = Server::start(&store);
        let client = server.client();
        let table = create_hash_table(&client, "api", "pk").await;
        // "pk" + "a" + "data" + 4089 bytes: exactly 4,096 bytes as DynamoDB counts them.
        let data = "x".repeat(4096 - 2 - 1 - 4);
        client.put_item().table_name(&table).item("pk", s("a")).item("data", s(&data)).send().await.unwrap();

        let got = client
            .get_item()
            .table_name(&table)
            .key("pk", s("a"))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .unwrap();
        let consumed = got.consumed_capacity().expect("consumed capacity");
        assert_eq!((consumed.table_name(), consumed.capacity_units()), (Some(table.as_str()), Some(1.0)), "{store:?}");

        let scan = |capacity| client.scan().table_name(&table).return_consumed_capacity(capacity);
        let total = scan(ReturnConsumedCapacity::Total).consistent_read(true).send().await.unwrap();
        assert_eq!(total.consumed_capacity().and_then(|c| c.capacity_units()), Some(1.0), "{store:?}");
        let indexes = scan(ReturnConsumedCapacity::Indexes).send().await.unwrap();
        let consumed = indexes.consumed_capacity().expect("consumed capacity");
        assert_eq!(consumed.capacity_units(), Some(0.5), "{store:?}");
        assert_eq!(consumed.table().and_then(|t| t.capacity_units()), Some(0.5), "{store:?}");
        let none = scan(ReturnConsumedCapacity::None).send().await.unwrap();
        assert_eq!(none.consumed_capacity(), None, "{store:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_table_describes_the_table_on_its_way_out() {
    for store in stores() {
        let server = Server::start(&store);
        let client = server.client();
        let table = create_hash_table(&client, "api", "pk").await;
        let deleted = client.delete_table().table_name(&table).send().await.expect("delete");
        let description = deleted.table_description().expect("description");
        assert_eq!(description.table_status(), Some(&TableStatus::Deleting), "{store:?}");
        assert_eq!(description.table_name(), Some(table.as_str()));
        assert!(description.table_arn().is_some_and(|arn| arn.ends_with(&format!(":table/{table}"))));
        assert_eq!(description.item_count(), Some(0));
        assert_eq!(description.creation_date_time(), None, "{store:?}");
        assert!(description.key_schema().is_empty(), "{store:?}");
        assert!(description.attribute_definitions().is_empty(), "{store:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_bodies_get_dynamodb_serialization_errors() {
    for store in stores() {
        let server = Server::start(&store);
        let table = create_hash_table(&server.client(), "api", "pk").await;
        let post = |target: &str, body: &[u8]| {
            let headers = signed_headers(target);
            let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            raw_request(&server.address, "POST", &headers, body)
        };
        let broken = post("ListTables", b"{broken json");
        assert_eq!(broken.status, 400, "{store:?}");
        assert_eq!(broken.body, r#"{"__type":"com.amazon.coral.service#SerializationException"}"#);

        let item = format!(r#"{{"TableName": "{table}", "Item": {{"pk": {{"S": "a"}}, "b": {{"BOOL": "true"}}}}}}"#);
        let stringly = post("PutItem", item.as_bytes());
        assert_eq!(stringly.status, 400, "{store:?}");
        assert_eq!(
            stringly.body,
            r#"{"__type":"com.amazon.coral.service#SerializationException","message":"STRING_VALUE cannot be converted to Boolean"}"#
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_in_an_unknown_content_coding_is_refused_and_not_applied() {
    for store in stores() {
        let server = Server::start(&store);
        let client = server.client();
        let table = create_hash_table(&client, "api", "pk").await;
        let put = |pk: &str, coding: &str| {
            let item = format!(r#"{{"TableName": "{table}", "Item": {{"pk": {{"S": "{pk}"}}}}}}"#);
            let headers = signed_headers("PutItem");
            let mut headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            headers.push(("content-encoding", coding));
            raw_request(&server.address, "POST", &headers, item.as_bytes())
        };
        let refused = put("a", "garbage");
        assert_eq!(refused.status, 500, "{store:?}");
        assert_eq!(
            refused.body,
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Unsupported Content-Encoding: garbage"}"#
        );
        assert_eq!(put("b", "identity").status, 200, "{store:?}");
        for (pk, written) in [("a", false), ("b", true)] {
            let got = client.get_item().table_name(&table).key("pk", s(pk)).consistent_read(true).send().await.unwrap();
            assert_eq!(got.item().is_some(), written, "{pk} {store:?}");
        }
    }
}
