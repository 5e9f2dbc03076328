//! DescribeLimits and DescribeEndpoints: what SDKs and tools ask of the service rather than of a
//! table.

use serde_json::{Value, json};

use super::Context;
use crate::error::ApiResult;
use crate::input::Input;
use crate::storage::Storage;

/// DynamoDB's default quotas for provisioned capacity, per account and per table.
const ACCOUNT_MAX_CAPACITY_UNITS: u64 = 80_000;
const TABLE_MAX_CAPACITY_UNITS: u64 = 40_000;
/// How long clients may cache the endpoint list: DynamoDB's 24 hours.
const ENDPOINT_CACHE_MINUTES: u64 = 1440;

pub fn describe_limits<S: Storage>(_: Input<'_>, _: &mut Context<'_, S>) -> ApiResult<Value> {
    Ok(json!({
        "AccountMaxReadCapacityUnits": ACCOUNT_MAX_CAPACITY_UNITS,
        "AccountMaxWriteCapacityUnits": ACCOUNT_MAX_CAPACITY_UNITS,
        "TableMaxReadCapacityUnits": TABLE_MAX_CAPACITY_UNITS,
        "TableMaxWriteCapacityUnits": TABLE_MAX_CAPACITY_UNITS,
    }))
}

/// The one endpoint is the address the client reached (its `Host`), so a client that discovers
/// endpoints keeps talking to this server rather than to AWS.
pub fn describe_endpoints<S: Storage>(_: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let address = cx.host.map_or_else(|| format!("dynamodb.{}.amazonaws.com", cx.region), str::to_string);
    Ok(json!({"Endpoints": [{"Address": address, "CachePeriodInMinutes": ENDPOINT_CACHE_MINUTES}]}))
}
