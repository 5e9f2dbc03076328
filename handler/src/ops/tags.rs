//! TagResource, UntagResource, ListTagsOfResource, and the `Tags` of CreateTable. A table's tags
//! live in its catalog record, changed with the same version guard as UpdateTable's changes.

use serde_json::{Value, json};

use super::Context;
use super::tables::save_record;
use crate::catalog::{MAX_TAG_KEY_CHARS, Table, Tag, check_reserved, check_tags, read_tags};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::input::{Input, Violations};
use crate::storage::Storage;

const MAX_TAGS: usize = 50;
const MAX_ARN_CHARS: usize = 1283;

pub fn tag_resource<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let arn = input.string("ResourceArn")?;
    let tags = read_tags(input)?;
    let mut violations = Violations::default();
    check_arn(&mut violations, arn);
    violations.not_null(tags.as_ref(), "tags");
    check_tags(&mut violations, tags.as_deref().unwrap_or_default());
    violations.finish()?;
    let (arn, tags) = (arn.expect("checked"), tags.expect("checked"));
    check_reserved(&tags)?;
    change_tags(cx, arn, "TagResource", |existing| {
        for tag in &tags {
            match existing.iter_mut().find(|t| t.key == tag.key) {
                Some(same_key) => same_key.value.clone_from(&tag.value),
                None => existing.push(tag.clone()),
            }
        }
        if existing.len() > MAX_TAGS {
            return Err(ApiError::new(
                ErrorKind::LimitExceeded,
                format!("The number of tags on a resource may not exceed {MAX_TAGS}"),
            ));
        }
        Ok(())
    })
}

pub fn untag_resource<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let arn = input.string("ResourceArn")?;
    let keys: Option<Vec<&str>> = input
        .list("TagKeys")?
        .map(|keys| keys.iter().map(|k| k.as_str().ok_or_else(|| crate::input::mismatch(k, "String"))).collect())
        .transpose()?;
    let mut violations = Violations::default();
    check_arn(&mut violations, arn);
    for (i, key) in violations.not_null(keys.as_ref(), "tagKeys").into_iter().flatten().enumerate() {
        violations.length(key, &format!("tagKeys.{}.member", i + 1), 1, MAX_TAG_KEY_CHARS);
    }
    violations.finish()?;
    let (arn, keys) = (arn.expect("checked"), keys.expect("checked"));
    change_tags(cx, arn, "UntagResource", |existing| {
        existing.retain(|tag| !keys.contains(&tag.key.as_str()));
        Ok(())
    })
}

pub fn list_tags_of_resource<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let arn = input.string("ResourceArn")?;
    // A table has at most 50 tags, all in one page: NextToken is read and never needed.
    input.string("NextToken")?;
    let mut violations = Violations::default();
    check_arn(&mut violations, arn);
    violations.finish()?;
    let table = tagged_table(cx, arn.expect("checked"), "ListTagsOfResource")?;
    Ok(json!({"Tags": table.tags}))
}

fn check_arn(violations: &mut Violations, arn: Option<&str>) {
    if let Some(arn) = violations.not_null(arn, "resourceArn") {
        violations.length(arn, "resourceArn", 1, MAX_ARN_CHARS);
    }
}

/// Applies `change` to the tags of the table `arn` names, guarded by the table's version (decided
/// again when another change came first).
fn change_tags<S: Storage>(
    cx: &mut Context<'_, S>,
    arn: &str,
    operation: &str,
    change: impl Fn(&mut Vec<Tag>) -> ApiResult<()>,
) -> ApiResult<Value> {
    loop {
        let mut table = tagged_table(cx, arn, operation)?;
        change(&mut table.tags)?;
        if save_record(cx.storage, &cx.principal.account_id, &table)? {
            return Ok(json!({}));
        }
    }
}

/// The caller's table an ARN names, refused as DynamoDB refuses it: a malformed ARN or one of
/// another kind of resource is invalid, another service's or another account's is denied, and a
/// table that does not exist is not found.
fn tagged_table<S: Storage>(cx: &mut Context<'_, S>, arn: &str, operation: &str) -> ApiResult<Table> {
    let invalid = || ApiError::validation(format!("Invalid TableArn: Invalid ResourceArn provided as input {arn}"));
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, _partition, service, _region, account, resource] = parts[..] else { return Err(invalid()) };
    if prefix != "arn" {
        return Err(invalid());
    }
    if service != "dynamodb" || account != cx.principal.account_id {
        return Err(ApiError::new(
            ErrorKind::AccessDenied,
            format!(
                "User: arn:aws:iam::{}:user/{} is not authorized to perform: dynamodb:{operation} on resource: {arn}",
                cx.principal.account_id, cx.principal.access_key_id
            ),
        ));
    }
    let name = resource.strip_prefix("table/").filter(|name| !name.is_empty() && !name.contains('/'));
    let name = name.ok_or_else(invalid)?;
    Table::load(cx.storage, &cx.principal.account_id, name).map_err(|e| match e.kind {
        ErrorKind::ResourceNotFound => {
            ApiError::resource_not_found(format!("Requested resource not found: ResourcArn: {arn} not found"))
        }
        _ => e,
    })
}
