//! The `TableDescription` DynamoDB returns, and the item counts and sizes it reports.

use serde_json::{Value, json};

use super::{Index, IndexStatus, KeyAttribute, Projection, Table};
use crate::error::{ApiError, ApiResult};
use crate::storage::{Keyspace, Request, Storage};

impl Table {
    /// DynamoDB's full `TableDescription` (CreateTable, DescribeTable, UpdateTable). Tables are
    /// ACTIVE from the start: there is nothing to provision.
    pub fn description(&self, stats: &Stats) -> Value {
        let mut key_attributes: Vec<&KeyAttribute> = self.key_attributes().collect();
        for index in &self.indexes {
            for key in index.key_attributes() {
                if !key_attributes.iter().any(|k| k.name == key.name) {
                    key_attributes.push(key);
                }
            }
        }
        // DynamoDB lists the definitions by name, and drops those no key uses any more.
        key_attributes.sort_by(|a, b| a.name.cmp(&b.name));
        let definitions: Vec<Value> = key_attributes
            .iter()
            .map(|k| json!({"AttributeName": k.name, "AttributeType": k.attribute_type}))
            .collect();
        let mut description = self.deleting_description(stats.table.0, stats.table.1);
        let restoring = self.restore.as_ref().is_some_and(|r| r.restore_in_progress);
        let creating = restoring || self.importing.is_some();
        description["TableStatus"] = json!(if creating { "CREATING" } else { "ACTIVE" });
        if let Some(restore) = &self.restore {
            description["RestoreSummary"] = json!(restore);
        }
        description["CreationDateTime"] = json!(self.creation_date_time);
        description["KeySchema"] = key_schema(&self.hash_key, self.range_key.as_ref());
        description["AttributeDefinitions"] = json!(definitions);
        description["DeletionProtectionEnabled"] = json!(self.deletion_protection);
        if let Some(class) = &self.table_class {
            description["TableClassSummary"] = json!({"TableClass": class});
        }
        self.describe_stream(&mut description);
        for (global, member) in [(false, "LocalSecondaryIndexes"), (true, "GlobalSecondaryIndexes")] {
            let indexes: Vec<Value> = self
                .indexes
                .iter()
                .zip(&stats.indexes)
                .filter(|(index, _)| index.global == global)
                .map(|(index, stats)| index.description(&self.table_arn, *stats))
                .collect();
            if !indexes.is_empty() {
                description[member] = json!(indexes);
            }
        }
        description
    }

    /// The `TableDescription` DeleteTable returns: DynamoDB leaves out the schema and the
    /// creation time of a table on its way out.
    pub fn deleting_description(&self, item_count: u64, size_bytes: u64) -> Value {
        let (billing_mode, throughput) = match &self.provisioned {
            Some(t) => ("PROVISIONED", (t.read_capacity_units, t.write_capacity_units)),
            None => ("PAY_PER_REQUEST", (0, 0)),
        };
        let mut billing_summary = json!({"BillingMode": billing_mode});
        if self.provisioned.is_none() {
            billing_summary["LastUpdateToPayPerRequestDateTime"] = json!(self.creation_date_time);
        }
        json!({
            "TableName": self.table_name,
            "TableArn": self.table_arn,
            "TableId": self.table_id,
            "TableStatus": "DELETING",
            "BillingModeSummary": billing_summary,
            "ProvisionedThroughput": {
                "NumberOfDecreasesToday": 0,
                "ReadCapacityUnits": throughput.0,
                "WriteCapacityUnits": throughput.1,
            },
            "ItemCount": item_count,
            "TableSizeBytes": size_bytes,
        })
    }

    /// The stream members of a `TableDescription`.
    fn describe_stream(&self, description: &mut Value) {
        if let Some(latest) = self.streams.last() {
            description["LatestStreamArn"] = json!(self.stream_arn(latest));
            description["LatestStreamLabel"] = json!(latest.label);
        }
        if let Some(stream) = self.recording_stream() {
            description["StreamSpecification"] = json!({"StreamEnabled": true, "StreamViewType": stream.view_type});
        }
    }
}

pub(crate) fn key_schema(hash: &KeyAttribute, range: Option<&KeyAttribute>) -> Value {
    let hash = std::iter::once(json!({"AttributeName": hash.name, "KeyType": "HASH"}));
    json!(hash.chain(range.map(|k| json!({"AttributeName": k.name, "KeyType": "RANGE"}))).collect::<Vec<_>>())
}

impl Index {
    /// A `LocalSecondaryIndexDescription` or `GlobalSecondaryIndexDescription`; `stats` is the
    /// entry count and size of its keyspace.
    pub fn description(&self, table_arn: &str, (item_count, size_bytes): (u64, u64)) -> Value {
        let projection = match &self.projection {
            Projection::All => json!({"ProjectionType": "ALL"}),
            Projection::KeysOnly => json!({"ProjectionType": "KEYS_ONLY"}),
            Projection::Include(names) => json!({"ProjectionType": "INCLUDE", "NonKeyAttributes": names}),
        };
        let mut description = json!({
            "IndexName": self.index_name,
            "KeySchema": key_schema(&self.hash_key, self.range_key.as_ref()),
            "Projection": projection,
            "IndexSizeBytes": size_bytes,
            "ItemCount": item_count,
            "IndexArn": format!("{table_arn}/index/{}", self.index_name),
        });
        if self.global {
            let creating = self.status == IndexStatus::Creating;
            description["IndexStatus"] = json!(if creating { "CREATING" } else { "ACTIVE" });
            if creating {
                description["Backfilling"] = json!(true);
            }
            let throughput =
                self.provisioned.as_ref().map_or((0, 0), |t| (t.read_capacity_units, t.write_capacity_units));
            description["ProvisionedThroughput"] = json!({
                "NumberOfDecreasesToday": 0,
                "ReadCapacityUnits": throughput.0,
                "WriteCapacityUnits": throughput.1,
            });
        }
        description
    }
}

/// Item counts and sizes in bytes: of the table, and of each index in `Table::indexes` order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stats {
    pub table: (u64, u64),
    pub indexes: Vec<(u64, u64)>,
}

impl Stats {
    pub fn load(storage: &mut impl Storage, account: &str, table: &Table) -> ApiResult<Stats> {
        let mut stats =
            |keyspace: &Keyspace| storage.ask(account, Request::keyspace_stats(keyspace)).map_err(ApiError::from);
        let mut indexes = Vec::with_capacity(table.indexes.len());
        for index in &table.indexes {
            indexes.push(stats(&index.keyspace(&table.table_name))?);
        }
        Ok(Stats { table: stats(&table.keyspace())?, indexes })
    }

    /// A new table's: empty everywhere.
    pub fn empty(table: &Table) -> Stats {
        Stats { table: (0, 0), indexes: vec![(0, 0); table.indexes.len()] }
    }
}
