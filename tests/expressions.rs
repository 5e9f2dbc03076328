//! End-to-end: the single-item API with expressions on every backend, and the atomicity of
//! conditional writes under concurrent clients.

mod support;

use std::collections::HashMap;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnConsumedCapacity, ReturnValue, ReturnValuesOnConditionCheckFailure,
};
use support::{Server, create_hash_table, stores};

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn n(v: &str) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Many clients `ADD n :1` on one key at once: every increment lands exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_counter_loses_no_update() {
    for store in stores() {
        let server = Server::start(&store);
        let client = server.client();
        let table = create_hash_table(&client, "expr", "id").await;
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (client, table) = (client.clone(), table.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..25 {
                    client
                        .update_item()
                        .table_name(&table)
                        .key("id", s("counter"))
                        .update_expression("ADD n :one")
                        .expression_attribute_values(":one", n("1"))
                        .send()
                        .await
                        .expect("increment");
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let item = client.get_item().table_name(&table).key("id", s("counter")).send().await.unwrap();
        assert_eq!(item.item().and_then(|i| i.get("n")), Some(&n("400")), "{store:?}");
    }
}

/// Clients race to create the same item with `attribute_not_exists`: exactly one wins, every
/// other one gets ConditionalCheckFailedException carrying the winner's item.
#[tokio::test(flavor = "multi_thread")]
async fn conditional_create_has_exactly_one_winner() {
    for store in stores() {
        let server = Server::start(&store);
        let client = server.client();
        let table = create_hash_table(&client, "expr", "id").await;
        let mut tasks = Vec::new();
        for contender in 0..12 {
            let (client, table) = (client.clone(), table.clone());
            tasks.push(tokio::spawn(async move {
                client
                    .put_item()
                    .table_name(&table)
                    .item("id", s("lock"))
                    .item("owner", n(&contender.to_string()))
                    .condition_expression("attribute_not_exists(id)")
                    .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                    .send()
                    .await
            }));
        }
        let mut winners = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => winners += 1,
                Err(e) => {
                    assert_eq!(e.code(), Some("ConditionalCheckFailedException"));
                    assert_eq!(e.message(), Some("The conditional request failed"));
                    let failure = e.into_service_error();
                    let old = match failure {
                        aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => {
                            c.item
                        }
                        other => panic!("{other:?}"),
                    };
                    assert!(old.is_some_and(|item| item.contains_key("owner")), "the old item comes with the failure");
                }
            }
        }
        assert_eq!(winners, 1, "{store:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn update_expressions_return_values_and_capacity() {
    for store in stores() {
        let server = Server::start(&store);
        let client = server.client();
        let table = create_hash_table(&client, "expr", "id").await;
        client
            .put_item()
            .table_name(&table)
            .item("id", s("u"))
            .item(
                "profile",
                AttributeValue::M(HashMap::from([("tags".to_string(), AttributeValue::L(vec![s("a"), s("b")]))])),
            )
            .item("score", n("10"))
            .send()
            .await
            .unwrap();
        let updated = client
            .update_item()
            .table_name(&table)
            .key("id", s("u"))
            .update_expression("SET score = score - :d, #p.tags[1] = :t REMOVE gone")
            .condition_expression("score BETWEEN :lo AND :hi AND size(#p.tags) = :two")
            .expression_attribute_names("#p", "profile")
            .expression_attribute_values(":d", n("0.5"))
            .expression_attribute_values(":t", s("z"))
            .expression_attribute_values(":lo", n("0"))
            .expression_attribute_values(":hi", n("10"))
            .expression_attribute_values(":two", n("2"))
            .return_values(ReturnValue::UpdatedNew)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .expect("update");
        let attributes = updated.attributes().unwrap();
        assert_eq!(attributes.get("score"), Some(&n("9.5")), "{store:?}");
        assert_eq!(
            attributes.get("profile"),
            Some(&AttributeValue::M(HashMap::from([("tags".to_string(), AttributeValue::L(vec![s("z")]))]))),
            "UPDATED_NEW holds just the updated paths"
        );
        assert_eq!(updated.consumed_capacity().and_then(|c| c.capacity_units()), Some(1.0));

        let projected = client
            .get_item()
            .table_name(&table)
            .key("id", s("u"))
            .projection_expression("profile.tags[1], score")
            .send()
            .await
            .unwrap();
        let item = projected.item().unwrap();
        assert_eq!(item.len(), 2);
        assert_eq!(item.get("score"), Some(&n("9.5")));

        let key_update = client
            .update_item()
            .table_name(&table)
            .key("id", s("u"))
            .update_expression("SET id = :x")
            .expression_attribute_values(":x", s("other"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            key_update.message(),
            Some(
                "One or more parameter values were invalid: Cannot update attribute id. This attribute is part of the key"
            )
        );
        let unused = client
            .update_item()
            .table_name(&table)
            .key("id", s("u"))
            .update_expression("SET a = :a")
            .expression_attribute_values(":a", s("x"))
            .expression_attribute_values(":b", s("y"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(unused.code(), Some("ValidationException"));
        assert_eq!(
            unused.message(),
            Some("Value provided in ExpressionAttributeValues unused in expressions: keys: {:b}")
        );
        let after = client.get_item().table_name(&table).key("id", s("u")).send().await.unwrap();
        assert!(after.item().unwrap().get("a").is_none(), "a refused request changed nothing");
    }
}
