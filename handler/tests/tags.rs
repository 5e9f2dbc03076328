//! TagResource, UntagResource, ListTagsOfResource and CreateTable's `Tags`, through `handle`
//! against the in-memory store.

mod support;

use serde_json::{Value, json};
use support::{MemoryStore, fails, ok, validation};

const ARN: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/tab";

fn store_with(tags: Option<Value>) -> MemoryStore {
    let mut store = MemoryStore::default();
    let mut table = json!({
        "TableName": "tab", "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
    });
    if let Some(tags) = tags {
        table["Tags"] = tags;
    }
    let created = ok(&mut store, "CreateTable", table);
    assert_eq!(created["TableDescription"]["TableArn"], ARN);
    store
}

fn tags(store: &mut MemoryStore) -> Value {
    ok(store, "ListTagsOfResource", json!({"ResourceArn": ARN}))["Tags"].clone()
}

#[test]
fn tags_are_set_overwritten_listed_and_removed() {
    let mut store = store_with(Some(json!([{"Key": "env", "Value": "dev"}])));
    assert_eq!(tags(&mut store), json!([{"Key": "env", "Value": "dev"}]));
    let tagged = ok(
        &mut store,
        "TagResource",
        json!({"ResourceArn": ARN, "Tags": [{"Key": "team", "Value": "db"}, {"Key": "env", "Value": "prod"}]}),
    );
    assert_eq!(tagged, json!({}));
    assert_eq!(tags(&mut store), json!([{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "db"}]));
    ok(&mut store, "UntagResource", json!({"ResourceArn": ARN, "TagKeys": ["env", "absent"]}));
    assert_eq!(tags(&mut store), json!([{"Key": "team", "Value": "db"}]));
    // Tags are no part of the table's description.
    let described = ok(&mut store, "DescribeTable", json!({"TableName": "tab"}));
    assert!(described["Table"].get("Tags").is_none(), "{described}");
}

#[test]
fn arns_are_refused_as_dynamodb_refuses_them() {
    let mut store = store_with(None);
    let tag = |arn: &str| json!({"ResourceArn": arn, "Tags": [{"Key": "k", "Value": "v"}]});
    assert_eq!(
        validation(&mut store, "TagResource", tag("not-a-valid-arn")),
        "Invalid TableArn: Invalid ResourceArn provided as input not-a-valid-arn"
    );
    let (kind, message) = fails(&mut store, "TagResource", tag("arn:aws:dynamodb:us-east-1:000000000000:table/tab"));
    assert_eq!(kind, "AccessDeniedException");
    assert!(message.ends_with("dynamodb:TagResource on resource: arn:aws:dynamodb:us-east-1:000000000000:table/tab"));
    assert_eq!(fails(&mut store, "TagResource", tag("arn:aws:s3:::bucket")).0, "AccessDeniedException");
    let missing = "arn:aws:dynamodb:us-east-1:123456789012:table/missing";
    assert_eq!(
        fails(&mut store, "ListTagsOfResource", json!({"ResourceArn": missing})),
        ("ResourceNotFoundException".into(), format!("Requested resource not found: ResourcArn: {missing} not found"))
    );
}

#[test]
fn tags_are_limited_as_dynamodb_limits_them() {
    let mut store = store_with(None);
    let message =
        validation(&mut store, "TagResource", json!({"ResourceArn": ARN, "Tags": [{"Key": "", "Value": "v"}]}));
    assert_eq!(
        message,
        "1 validation error detected: Value '' at 'tags.1.member.key' failed to satisfy constraint: Member must have length greater than or equal to 1"
    );
    let reserved =
        validation(&mut store, "TagResource", json!({"ResourceArn": ARN, "Tags": [{"Key": "aws:x", "Value": "v"}]}));
    assert!(reserved.contains("aws:"), "{reserved}");
    let fifty: Vec<Value> = (0..50).map(|i| json!({"Key": format!("k{i}"), "Value": "v"})).collect();
    ok(&mut store, "TagResource", json!({"ResourceArn": ARN, "Tags": fifty}));
    let (kind, _) =
        fails(&mut store, "TagResource", json!({"ResourceArn": ARN, "Tags": [{"Key": "one-more", "Value": "v"}]}));
    assert_eq!(kind, "LimitExceededException");
    assert_eq!(tags(&mut store).as_array().unwrap().len(), 50, "a refused request changes nothing");
}
