//! What the handler tells its host about a request besides the response (mirrors WIT interface
//! `report`): the facts the host's metrics count and its request log shows, which only the
//! handler knows (the tables a request names, the capacity it consumed of each, how it ended).
//! Names and numbers only: never an item, a key, a signature or a secret.

use serde_json::{Map, Value};

use crate::error::{ApiError, ErrorKind};

/// One table a request named, with the capacity units it consumed of it (what
/// `ReturnConsumedCapacity` reports, whether or not the request asked).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TableUsage {
    pub name: String,
    pub read_units: f64,
    pub write_units: f64,
}

/// What one request did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    /// The tables the request named, in the order it names them.
    pub tables: Vec<TableUsage>,
    /// DynamoDB's type name of the error the client got (`ConditionalCheckFailedException`);
    /// `None` on success.
    pub error: Option<String>,
    /// A transaction cancelled because it conflicted with concurrent writes.
    pub transaction_conflict: bool,
    /// Items a Query or Scan returned (its `Count`).
    pub returned_items: u32,
}

/// One step of the host's background work (mirrors WIT `report.step`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Step {
    /// Nothing is left to do for now.
    pub done: bool,
    /// What the step got through: items read by an index backfill, items deleted by an expiry
    /// step.
    pub count: u32,
}

impl Step {
    /// Nothing done, nothing left.
    pub const DONE: Step = Step { done: true, count: 0 };
}

impl Report {
    pub fn consumed_read(&mut self, table: &str, units: f64) {
        self.table(table).read_units += units;
    }

    pub fn consumed_write(&mut self, table: &str, units: f64) {
        self.table(table).write_units += units;
    }

    /// Notes the tables a request body names: `TableName`, a table's ARN (`ResourceArn`,
    /// `StreamArn`), the tables of a batch or a transaction. Only well-formed table names: a
    /// request may name anything.
    pub fn name_tables(&mut self, body: &Map<String, Value>) {
        let str_member = |value: &Value, member: &str| value.get(member).and_then(Value::as_str).map(str::to_owned);
        let body_value = |member: &str| body.get(member);
        let mut names: Vec<String> = Vec::new();
        names.extend(body_value("TableName").and_then(Value::as_str).map(str::to_owned));
        for arn in ["ResourceArn", "StreamArn"].into_iter().filter_map(|m| body_value(m).and_then(Value::as_str)) {
            names.extend(table_of_arn(arn).map(str::to_owned));
        }
        if let Some(Value::Object(requests)) = body_value("RequestItems") {
            names.extend(requests.keys().cloned());
        }
        if let Some(Value::Array(actions)) = body_value("TransactItems") {
            for action in actions.iter().filter_map(Value::as_object) {
                names.extend(action.values().filter_map(|a| str_member(a, "TableName")));
            }
        }
        for name in names.iter().filter(|name| well_formed(name)) {
            self.table(name);
        }
    }

    /// Notes the error the request ends with.
    pub fn failed(&mut self, error: &ApiError) {
        self.error = Some(error.kind.type_name().to_string());
        self.transaction_conflict = error.kind == ErrorKind::TransactionCanceled
            && error.reasons.iter().flatten().any(|reason| reason["Code"] == "TransactionConflict");
    }

    fn table(&mut self, name: &str) -> &mut TableUsage {
        let at = match self.tables.iter().position(|t| t.name == name) {
            Some(at) => at,
            None => {
                self.tables.push(TableUsage { name: name.to_string(), ..TableUsage::default() });
                self.tables.len() - 1
            }
        };
        &mut self.tables[at]
    }
}

/// The table of a table's ARN (`arn:aws:dynamodb:REGION:ACCOUNT:table/NAME`, maybe followed by
/// `/stream/LABEL` or `/index/NAME`).
fn table_of_arn(arn: &str) -> Option<&str> {
    arn.split_once(":table/").and_then(|(_, rest)| rest.split('/').next())
}

/// DynamoDB's table names: 3 to 255 of `[A-Za-z0-9_.-]`.
fn well_formed(name: &str) -> bool {
    (3..=255).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn named(body: Value) -> Vec<String> {
        let mut report = Report::default();
        report.name_tables(body.as_object().unwrap());
        report.tables.into_iter().map(|t| t.name).collect()
    }

    #[test]
    fn the_tables_a_request_names_are_found_once_each_and_only_well_formed() {
        assert_eq!(named(json!({"TableName": "Music", "Key": {}})), ["Music"]);
        assert_eq!(named(json!({"ResourceArn": "arn:aws:dynamodb:us-east-1:000000000000:table/Music"})), ["Music"]);
        let stream = "arn:aws:dynamodb:us-east-1:000000000000:table/Music/stream/2026-12-07T00:00:00.000";
        assert_eq!(named(json!({"StreamArn": stream})), ["Music"]);
        assert_eq!(named(json!({"RequestItems": {"A.b": {}, "Music": {}}})), ["A.b", "Music"]);
        let actions = json!([{"Put": {"TableName": "Music"}}, {"Update": {"TableName": "Books"}},
            {"ConditionCheck": {"TableName": "Music"}}]);
        assert_eq!(named(json!({"TransactItems": actions})), ["Music", "Books"]);
        assert!(named(json!({"TableName": "a;b"})).is_empty());
        assert!(named(json!({"TableName": "ab"})).is_empty());
        assert!(named(json!({"TableName": 7})).is_empty());
    }

    #[test]
    fn capacity_adds_up_per_table_and_errors_are_classified() {
        let mut report = Report::default();
        report.consumed_read("t1", 0.5);
        report.consumed_write("t2", 2.0);
        report.consumed_read("t1", 1.0);
        assert_eq!(report.tables[0], TableUsage { name: "t1".into(), read_units: 1.5, write_units: 0.0 });
        assert_eq!(report.tables[1].write_units, 2.0);

        report.failed(&ApiError::new(ErrorKind::ConditionalCheckFailed, "The conditional request failed"));
        assert_eq!(report.error.as_deref(), Some("ConditionalCheckFailedException"));
        assert!(!report.transaction_conflict);
        report.failed(&ApiError::transaction_canceled(vec![
            json!({"Code": "None"}),
            json!({"Code": "TransactionConflict"}),
        ]));
        assert!(report.transaction_conflict);
        report.failed(&ApiError::transaction_canceled(vec![json!({"Code": "ConditionalCheckFailed"})]));
        assert!(!report.transaction_conflict);
    }
}
