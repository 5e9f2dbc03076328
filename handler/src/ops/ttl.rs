//! UpdateTimeToLive and DescribeTimeToLive. The setting lives in the table's catalog record,
//! changed under the same version guard as UpdateTable's changes.

use serde_json::{Value, json};

use super::tables::{not_found_named, save_record};
use super::{Context, table_name};
use crate::catalog::Table;
use crate::error::{ApiError, ApiResult};
use crate::input::{Input, Violations};
use crate::storage::Storage;

const MAX_ATTRIBUTE_NAME_CHARS: usize = 255;

pub fn update_time_to_live<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let name = input.string("TableName")?;
    let specification = input.structure("TimeToLiveSpecification")?;
    let enabled = specification.map(|s| s.boolean("Enabled")).transpose()?.flatten();
    let attribute = specification.map(|s| s.string("AttributeName")).transpose()?.flatten();
    let mut violations = Violations::default();
    violations.table_name(name, "tableName");
    if violations.not_null(specification, "timeToLiveSpecification").is_some() {
        violations.not_null(enabled, "timeToLiveSpecification.enabled");
        let path = "timeToLiveSpecification.attributeName";
        if let Some(attribute) = violations.not_null(attribute, path) {
            violations.length(attribute, path, 1, MAX_ATTRIBUTE_NAME_CHARS);
        }
    }
    violations.finish()?;
    let (name, enabled, attribute) = (name.expect("checked"), enabled.expect("checked"), attribute.expect("checked"));
    let account = &cx.principal.account_id;
    loop {
        let mut table = Table::load(cx.storage, account, name).map_err(|e| not_found_named(e, name))?;
        table.time_to_live_attribute = match (&table.time_to_live_attribute, enabled) {
            (Some(_), true) => return Err(ApiError::validation("TimeToLive is already enabled")),
            (None, false) => return Err(ApiError::validation("TimeToLive is already disabled")),
            (Some(current), false) if current != attribute => {
                return Err(ApiError::validation(format!(
                    "TimeToLive is active on a different AttributeName: current AttributeName is {current}"
                )));
            }
            (_, true) => Some(attribute.to_string()),
            (_, false) => None,
        };
        if save_record(cx, &table)? {
            return Ok(json!({"TimeToLiveSpecification": {"Enabled": enabled, "AttributeName": attribute}}));
        }
    }
}

pub fn describe_time_to_live<S: Storage>(input: Input<'_>, cx: &mut Context<'_, S>) -> ApiResult<Value> {
    let name = table_name(input, true)?;
    let table = Table::load(cx.storage, &cx.principal.account_id, name).map_err(|e| not_found_named(e, name))?;
    Ok(json!({"TimeToLiveDescription": match &table.time_to_live_attribute {
        Some(attribute) => json!({"TimeToLiveStatus": "ENABLED", "AttributeName": attribute}),
        None => json!({"TimeToLiveStatus": "DISABLED"}),
    }}))
}
