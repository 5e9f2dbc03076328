//! Table descriptions: what `CreateTable` accepts, what is stored in the catalog, and the
//! `TableDescription` DynamoDB returns.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::input::{Input, Violations, as_object, mismatch};
use crate::storage::{Keyspace, Storage};

/// A key attribute of a table: its name and scalar type ("S", "N" or "B").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyAttribute {
    pub name: String,
    pub attribute_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Throughput {
    pub read_capacity_units: i64,
    pub write_capacity_units: i64,
}

/// What an index holds of each item besides the keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Projection {
    All,
    KeysOnly,
    /// The keys and these attributes.
    Include(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexStatus {
    /// Being filled with the entries of the items the table held when the index was created.
    Creating,
    Active,
}

/// A secondary index as the catalog records it. Its entries live in the keyspace
/// `Keyspace::index(table, index_name)`, keyed by `model::key::index_entry_key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Index {
    pub index_name: String,
    /// A global secondary index; a local one otherwise (same hash key as the table).
    pub global: bool,
    pub hash_key: KeyAttribute,
    pub range_key: Option<KeyAttribute>,
    pub projection: Projection,
    pub status: IndexStatus,
    /// For global indexes of provisioned tables.
    pub provisioned: Option<Throughput>,
    /// While CREATING: the last base-table key (partition, sort) whose entry the backfill wrote;
    /// the next step resumes after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfill_after: Option<(Vec<u8>, Vec<u8>)>,
}

/// A table's tag, as the tagging operations read and list it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    pub value: String,
}

pub const TABLE_CLASSES: &[&str] = &["STANDARD", "STANDARD_INFREQUENT_ACCESS"];
pub const MAX_TAG_KEY_CHARS: usize = 128;
const MAX_TAG_VALUE_CHARS: usize = 256;
const TAG_PATTERN: &str = r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$";

/// The `Tags` member (TagResource, CreateTable).
pub fn read_tags(input: Input<'_>) -> ApiResult<Option<Vec<Tag>>> {
    let Some(list) = input.list("Tags")? else { return Ok(None) };
    list.iter()
        .map(|element| {
            let tag = Input::new(as_object(element)?);
            Ok(Tag {
                key: tag.string("Key")?.unwrap_or_default().to_string(),
                value: tag.string("Value")?.unwrap_or_default().to_string(),
            })
        })
        .collect::<ApiResult<_>>()
        .map(Some)
}

/// DynamoDB's constraints on each tag: key 1 to 128 characters, value up to 256, both of
/// letters, digits, spaces and `_.:/=+-@`; no key of AWS's own `aws:` prefix.
pub fn check_tags(violations: &mut Violations, tags: &[Tag]) {
    for (i, tag) in tags.iter().enumerate() {
        let path = format!("tags.{}.member", i + 1);
        violations.length(&tag.key, &format!("{path}.key"), 1, MAX_TAG_KEY_CHARS);
        violations.length(&tag.value, &format!("{path}.value"), 0, MAX_TAG_VALUE_CHARS);
        for (text, member) in [(&tag.key, "key"), (&tag.value, "value")] {
            if !text.chars().all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c)) {
                violations.add(
                    Some(text),
                    &format!("{path}.{member}"),
                    &format!("satisfy regular expression pattern: {TAG_PATTERN}"),
                );
            }
        }
    }
}

/// Refuses tag keys AWS keeps for itself; run once the request is otherwise valid.
pub fn check_reserved(tags: &[Tag]) -> ApiResult<()> {
    match tags.iter().find(|tag| tag.key.starts_with("aws:")) {
        Some(tag) => Err(ApiError::validation(format!(
            "One or more parameter values were invalid: Tag keys starting with 'aws:' are reserved for AWS use: {}",
            tag.key
        ))),
        None => Ok(()),
    }
}

/// The catalog's record of a table. Stored as JSON in the catalog so an operator can read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Table {
    pub table_name: String,
    pub table_arn: String,
    pub table_id: String,
    /// Seconds since the epoch.
    pub creation_date_time: f64,
    pub hash_key: KeyAttribute,
    pub range_key: Option<KeyAttribute>,
    /// `None` for on-demand (PAY_PER_REQUEST) tables.
    pub provisioned: Option<Throughput>,
    /// Local and global secondary indexes, in the order they were declared or added.
    #[serde(default)]
    pub indexes: Vec<Index>,
    #[serde(default)]
    pub deletion_protection: bool,
    /// In the order they were first set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// The attribute whose epoch seconds expire an item, while time to live is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_live_attribute: Option<String>,
    /// While set, the expiry sweep still has to visit the items written before time to live was
    /// enabled, which the store holds without their expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_live_backfill: Option<ExpiryBackfill>,
    /// Its streams, oldest first: the last records changes unless it was disabled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<crate::stream::Stream>,
    /// STANDARD or STANDARD_INFREQUENT_ACCESS, once set at creation or by UpdateTable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_class: Option<String>,
    /// The stored record's version (not part of the record itself), for guarded updates.
    #[serde(skip)]
    pub version: u64,
}

/// How far the expiry sweep has visited a table's items since time to live was enabled.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExpiryBackfill {
    /// The last base-table key (partition, sort) visited, if any.
    #[serde(default)]
    pub after: Option<(Vec<u8>, Vec<u8>)>,
}

impl Table {
    /// Loads a table's record; a missing table is DynamoDB's `ResourceNotFoundException`.
    pub fn load(storage: &mut impl Storage, account: &str, name: &str) -> ApiResult<Table> {
        let stored = storage.describe_table(account, name)?;
        let stored = stored.ok_or_else(|| ApiError::resource_not_found("Requested resource not found"))?;
        let table: Table = serde_json::from_slice(&stored.description)
            .map_err(|e| ApiError::internal(format!("corrupt catalog entry for {name}: {e}")))?;
        Ok(Table { version: stored.version, ..table })
    }

    pub fn index(&self, name: &str) -> Option<&Index> {
        self.indexes.iter().find(|index| index.index_name == name)
    }

    /// The keyspace of the table's items.
    pub fn keyspace(&self) -> Keyspace {
        Keyspace::table(&self.table_name)
    }

    pub fn key_attributes(&self) -> impl Iterator<Item = &KeyAttribute> {
        std::iter::once(&self.hash_key).chain(&self.range_key)
    }

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
        description["TableStatus"] = json!("ACTIVE");
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
}

pub(crate) fn key_schema(hash: &KeyAttribute, range: Option<&KeyAttribute>) -> Value {
    let hash = std::iter::once(json!({"AttributeName": hash.name, "KeyType": "HASH"}));
    json!(hash.chain(range.map(|k| json!({"AttributeName": k.name, "KeyType": "RANGE"}))).collect::<Vec<_>>())
}

impl Index {
    pub fn key_attributes(&self) -> impl Iterator<Item = &KeyAttribute> {
        std::iter::once(&self.hash_key).chain(&self.range_key)
    }

    /// The keyspace of the index's entries.
    pub fn keyspace(&self, table: &str) -> Keyspace {
        Keyspace::index(table, &self.index_name)
    }

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
        let mut stats = |keyspace: &Keyspace| storage.keyspace_stats(account, keyspace).map_err(ApiError::from);
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

/// Tables dynabox keeps for itself in an account's catalog (remembered ClientRequestTokens) have
/// names that start with '#': outside DynamoDB's table-name alphabet, so no request can name them,
/// and sorting before every valid name, so ListTables, which lists names after
/// [`FIRST_LISTED_NAME_BOUND`], never shows them.
pub const CLIENT_TOKENS_TABLE: &str = "#client-request-tokens";
/// Above every internal name, below every valid one (valid names start at '-').
pub const FIRST_LISTED_NAME_BOUND: &str = "$";

/// Where a new table is: its ARN is built from these.
pub struct Placement<'a> {
    pub region: &'a str,
    pub account_id: &'a str,
    pub table_id: String,
    pub now: f64,
}

/// Validates a `CreateTable` request the way DynamoDB does (constraint checks on every member
/// first, then the rules between members) and returns the new table's record.
pub fn table_from_create_request(input: Input<'_>, placement: Placement<'_>) -> ApiResult<Table> {
    let name = Some(input.required_string("TableName")?);
    let key_schema = read_pairs(input, "KeySchema", "KeyType")?;
    let definitions = read_pairs(input, "AttributeDefinitions", "AttributeType")?;
    let billing_mode = input.string("BillingMode")?;
    let throughput = read_throughput(input)?;
    let local = read_indexes(input, "LocalSecondaryIndexes", false)?;
    let global = read_indexes(input, "GlobalSecondaryIndexes", true)?;
    let deletion_protection = input.boolean("DeletionProtectionEnabled")?.unwrap_or(false);
    let tags = read_tags(input)?;
    let table_class = input.string("TableClass")?;
    let stream = crate::stream::Specification::read(input)?;

    let mut violations = Violations::default();
    violations.table_name(name, "tableName");
    let key_schema_shape = PairShape { path: "keySchema", element: "KeySchemaElement", kind_path: "keyType" };
    check_pairs(&mut violations, key_schema.as_deref(), &key_schema_shape, &["HASH", "RANGE"], 2);
    check_definitions(&mut violations, definitions.as_deref(), "attributeDefinitions");
    violations.one_of(billing_mode, "billingMode", &["PROVISIONED", "PAY_PER_REQUEST"]);
    check_throughput(&mut violations, throughput, "provisionedThroughput");
    for (indexes, path) in [(&local, "localSecondaryIndexes"), (&global, "globalSecondaryIndexes")] {
        for (i, index) in indexes.iter().flatten().enumerate() {
            index.check(&mut violations, &format!("{path}.{}.member", i + 1));
        }
    }
    check_tags(&mut violations, tags.as_deref().unwrap_or_default());
    violations.one_of(table_class, "tableClass", TABLE_CLASSES);
    if let Some(stream) = &stream {
        stream.check(&mut violations);
    }
    violations.finish()?;
    let (Some(name), Some(key_schema), Some(definitions)) = (name, key_schema, definitions) else {
        unreachable!("null members were reported as violations")
    };

    let definition_names: Vec<&str> = definitions.iter().map(|(n, _)| n.as_str()).collect();
    if let Some(twice) = definition_names.iter().enumerate().find(|(i, n)| definition_names[..*i].contains(n)) {
        return Err(ApiError::validation(format!("Attribute Name is duplicated: {}", twice.1)));
    }
    // Counted before the keys are looked at: a KeySchema naming one attribute twice with one
    // definition fails here, not on its repeated name.
    if key_schema.len() > definitions.len() {
        return Err(ApiError::validation("Invalid KeySchema: Some index key attribute have no definition"));
    }
    let (hash, range) = key_names(&key_schema)?;
    check_defined(&[Some(hash), range], &definition_names)?;
    for (indexes, member) in [(&local, "LocalSecondaryIndexes"), (&global, "GlobalSecondaryIndexes")] {
        if indexes.as_ref().is_some_and(Vec::is_empty) {
            return Err(ApiError::invalid_parameter(format!("List of {member} is empty")));
        }
    }
    let requested: Vec<(&IndexRequest, bool)> =
        local.iter().flatten().map(|i| (i, false)).chain(global.iter().flatten().map(|i| (i, true))).collect();
    // Every definition must serve some key: the table's, or an index's.
    let mut used: Vec<&str> = [Some(hash), range].into_iter().flatten().collect();
    for (index, _) in &requested {
        let (index_hash, index_range) = key_names(index.key_schema.as_deref().expect("checked"))?;
        check_defined(&[Some(index_hash), index_range], &definition_names)?;
        used.extend(
            [Some(index_hash), index_range].into_iter().flatten().filter(|k| !used.contains(k)).collect::<Vec<_>>(),
        );
    }
    if requested.is_empty() {
        if definitions.len() != key_schema.len() {
            return Err(ApiError::invalid_parameter(
                "Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
            ));
        }
    } else if definition_names.iter().any(|d| !used.contains(d)) {
        // DynamoDB gathers the keys in a Java HashSet and prints them in its order.
        crate::expr::in_map_order(&mut used, |k| crate::expr::java_hash(k));
        return Err(ApiError::invalid_parameter(format!(
            "Some AttributeDefinitions are not used. AttributeDefinitions: [{}], keys used: [{}]",
            definition_names.join(", "),
            used.join(", ")
        )));
    }
    let provisioned = match (
        billing_mode.unwrap_or(if throughput.is_some() { "PROVISIONED" } else { "PAY_PER_REQUEST" }),
        throughput,
    ) {
        ("PAY_PER_REQUEST", None) => None,
        ("PAY_PER_REQUEST", Some(_)) => {
            return Err(ApiError::invalid_parameter(
                "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
            ));
        }
        (_, Some((Some(read), Some(write)))) => {
            Some(Throughput { read_capacity_units: read, write_capacity_units: write })
        }
        _ => {
            return Err(ApiError::invalid_parameter(
                "ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
            ));
        }
    };
    let attribute = |key: &str| {
        let (_, attribute_type) = definitions.iter().find(|(n, _)| n == key).expect("checked above");
        KeyAttribute { name: key.to_string(), attribute_type: attribute_type.clone() }
    };
    let mut table = Table {
        table_name: name.to_string(),
        table_arn: format!("arn:aws:dynamodb:{}:{}:table/{name}", placement.region, placement.account_id),
        table_id: placement.table_id,
        creation_date_time: placement.now,
        hash_key: attribute(hash),
        range_key: range.map(attribute),
        provisioned,
        indexes: Vec::new(),
        deletion_protection,
        tags: tags.unwrap_or_default(),
        table_class: table_class.map(str::to_string),
        time_to_live_attribute: None,
        time_to_live_backfill: None,
        streams: Vec::new(),
        version: 1,
    };
    if let Some(stream) = &stream {
        // A new table's change log starts at 1.
        stream.apply(&mut table, 1, placement.now, true)?;
    }
    check_reserved(&table.tags)?;
    if local.is_some() && table.range_key.is_none() {
        return Err(ApiError::invalid_parameter(
            "Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex",
        ));
    }
    for (request, global) in requested {
        let index = request.to_index(&table, global, IndexStatus::Active, &attribute)?;
        if table.index(&index.index_name).is_some() {
            return Err(ApiError::invalid_parameter(format!("Duplicate index name: {}", index.index_name)));
        }
        table.indexes.push(index);
    }
    if table.indexes.iter().filter(|i| !i.global).count() > MAX_LOCAL_INDEXES {
        return Err(ApiError::invalid_parameter(format!(
            "Number of LocalSecondaryIndexes exceeds per-table limit of {MAX_LOCAL_INDEXES}"
        )));
    }
    check_global_count(&table)?;
    Ok(table)
}

const MAX_LOCAL_INDEXES: usize = 5;
const MAX_GLOBAL_INDEXES: usize = 20;

pub fn check_global_count(table: &Table) -> ApiResult<()> {
    if table.indexes.iter().filter(|i| i.global).count() > MAX_GLOBAL_INDEXES {
        return Err(ApiError::invalid_parameter(format!(
            "GlobalSecondaryIndex count exceeds the per-table limit of {MAX_GLOBAL_INDEXES}"
        )));
    }
    Ok(())
}

/// Key attributes must all be defined in AttributeDefinitions.
pub fn check_defined(keys: &[Option<&str>], definitions: &[&str]) -> ApiResult<()> {
    let undefined: Vec<&str> = keys.iter().flatten().copied().filter(|k| !definitions.contains(k)).collect();
    if undefined.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid_parameter(format!(
        "Some index key attributes are not defined in AttributeDefinitions. Keys: [{}], AttributeDefinitions: [{}]",
        undefined.join(", "),
        definitions.join(", ")
    )))
}

/// A `ProvisionedThroughput` structure as read: (read, write) capacity units.
pub type ThroughputRequest = Option<(Option<i64>, Option<i64>)>;

pub fn read_throughput(input: Input<'_>) -> ApiResult<ThroughputRequest> {
    match input.structure("ProvisionedThroughput")? {
        Some(t) => Ok(Some((t.integer("ReadCapacityUnits")?, t.integer("WriteCapacityUnits")?))),
        None => Ok(None),
    }
}

/// `path` is the member's path, as `provisionedThroughput`.
pub fn check_throughput(violations: &mut Violations, throughput: ThroughputRequest, path: &str) {
    let Some((read, write)) = throughput else { return };
    for (units, member) in [(read, "readCapacityUnits"), (write, "writeCapacityUnits")] {
        let path = format!("{path}.{member}");
        if let Some(units) = violations.not_null(units, &path) {
            violations.range(units, &path, 1, i64::MAX)
        }
    }
}

pub fn check_definitions(violations: &mut Violations, definitions: Option<&[(String, String)]>, path: &str) {
    let shape = PairShape { path, element: "AttributeDefinition", kind_path: "attributeType" };
    check_pairs(violations, definitions, &shape, &["B", "N", "S"], usize::MAX);
}

/// An index as a request declares it: CreateTable's LocalSecondaryIndexes and
/// GlobalSecondaryIndexes, UpdateTable's GSI Create.
pub struct IndexRequest {
    name: Option<String>,
    key_schema: Option<Pairs>,
    /// ProjectionType and NonKeyAttributes.
    projection: Option<(Option<String>, Option<Vec<String>>)>,
    throughput: ThroughputRequest,
}

pub fn read_indexes(input: Input<'_>, member: &str, global: bool) -> ApiResult<Option<Vec<IndexRequest>>> {
    let Some(list) = input.list(member)? else { return Ok(None) };
    let indexes = list.iter().map(|element| IndexRequest::read(Input::new(as_object(element)?), global));
    indexes.collect::<ApiResult<_>>().map(Some)
}

impl IndexRequest {
    /// A local index has no ProvisionedThroughput member: DynamoDB ignores one sent anyway.
    pub fn read(index: Input<'_>, global: bool) -> ApiResult<IndexRequest> {
        let projection = match index.structure("Projection")? {
            None => None,
            Some(p) => {
                let names = p.list("NonKeyAttributes")?.map(|names| {
                    names
                        .iter()
                        .map(|n| n.as_str().map(str::to_string).ok_or_else(|| mismatch(n, "String")))
                        .collect::<ApiResult<Vec<_>>>()
                });
                Some((p.string("ProjectionType")?.map(str::to_string), names.transpose()?))
            }
        };
        Ok(IndexRequest {
            name: index.string("IndexName")?.map(str::to_string),
            key_schema: read_pairs(index, "KeySchema", "KeyType")?,
            projection,
            throughput: if global { read_throughput(index)? } else { None },
        })
    }

    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }

    /// The hash and range key names, after the key schema's rules.
    pub fn key_names(&self) -> ApiResult<[Option<&str>; 2]> {
        let (hash, range) = key_names(self.key_schema.as_deref().expect("checked"))?;
        Ok([Some(hash), range])
    }

    /// The members' constraints; `path` is the index's, as `globalSecondaryIndexes.1.member`.
    pub fn check(&self, v: &mut Violations, path: &str) {
        index_name_violations(v, self.name.as_deref(), &format!("{path}.indexName"));
        let key_path = format!("{path}.keySchema");
        let shape = PairShape { path: &key_path, element: "KeySchemaElement", kind_path: "keyType" };
        check_pairs(v, self.key_schema.as_deref(), &shape, &["HASH", "RANGE"], 2);
        if let Some((kind, names)) = v.not_null(self.projection.as_ref(), &format!("{path}.projection")) {
            v.one_of(kind.as_deref(), &format!("{path}.projection.projectionType"), &["ALL", "KEYS_ONLY", "INCLUDE"]);
            if let Some(names) = names {
                let path = format!("{path}.projection.nonKeyAttributes");
                if names.is_empty() {
                    v.add(Some("[]"), &path, "have length greater than or equal to 1");
                } else if names.len() > 20 {
                    v.add(Some(&format!("[{}]", names.join(", "))), &path, "have length less than or equal to 20");
                }
            }
        }
        check_throughput(v, self.throughput, &format!("{path}.provisionedThroughput"));
    }

    /// The index the request declares on `table`, after DynamoDB's rules between its members;
    /// `attribute` gives a defined key attribute's type.
    pub fn to_index(
        &self,
        table: &Table,
        global: bool,
        status: IndexStatus,
        attribute: &dyn Fn(&str) -> KeyAttribute,
    ) -> ApiResult<Index> {
        let name = self.name();
        let (hash, range) = key_names(self.key_schema.as_deref().expect("checked"))?;
        if !global {
            if range.is_none() {
                return Err(ApiError::invalid_parameter(format!(
                    "Index KeySchema does not have a range key for index: {name}"
                )));
            }
            if hash != table.hash_key.name {
                return Err(ApiError::invalid_parameter(format!(
                    "Index KeySchema does not have the same leading hash key as table KeySchema for index: {name}. index hash key: {hash}, table hash key: {}",
                    table.hash_key.name
                )));
            }
        }
        let (kind, names) = self.projection.as_ref().expect("checked");
        let projection = match (kind.as_deref(), names) {
            (None, _) => return Err(ApiError::invalid_parameter("Unknown ProjectionType: null")),
            (Some("INCLUDE"), None) => {
                return Err(ApiError::invalid_parameter(
                    "ProjectionType is INCLUDE, but NonKeyAttributes is not specified",
                ));
            }
            (Some("INCLUDE"), Some(names)) => {
                if let Some(twice) = names.iter().enumerate().find(|(i, n)| names[..*i].contains(n)) {
                    return Err(ApiError::invalid_parameter(format!(
                        "Duplicate element in NonKeyAttributes: {}",
                        twice.1
                    )));
                }
                // DynamoDB describes them in name order.
                let mut names = names.clone();
                names.sort();
                Projection::Include(names)
            }
            (Some(kind), Some(_)) => {
                return Err(ApiError::invalid_parameter(format!(
                    "ProjectionType is {kind}, but NonKeyAttributes is specified"
                )));
            }
            (Some("ALL"), None) => Projection::All,
            (Some(_), None) => Projection::KeysOnly,
        };
        let provisioned = match (global, &table.provisioned, self.throughput) {
            (false, _, _) | (true, None, None) => None,
            (true, None, Some(_)) => {
                return Err(ApiError::invalid_parameter(format!(
                    "ProvisionedThroughput should not be specified for index: {name} when BillingMode is PAY_PER_REQUEST"
                )));
            }
            (true, Some(_), Some((Some(read), Some(write)))) => {
                Some(Throughput { read_capacity_units: read, write_capacity_units: write })
            }
            (true, Some(_), _) => {
                return Err(ApiError::invalid_parameter(match status {
                    IndexStatus::Active => format!("ProvisionedThroughput is not specified for index: {name}"),
                    // UpdateTable words it differently.
                    IndexStatus::Creating => {
                        format!("Both ReadCapacityUnits and WriteCapacityUnits must be specified for index: {name}")
                    }
                }));
            }
        };
        Ok(Index {
            index_name: name.to_string(),
            global,
            hash_key: attribute(hash),
            range_key: range.map(attribute),
            projection,
            status,
            provisioned,
            backfill_after: None,
        })
    }
}

/// DynamoDB's index name rules: 3 to 255 characters of [a-zA-Z0-9_.-].
pub fn index_name_violations(v: &mut Violations, name: Option<&str>, path: &str) {
    let Some(name) = v.not_null(name, path) else { return };
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) {
        v.add(Some(name), path, "satisfy regular expression pattern: [a-zA-Z0-9_.-]+");
    }
    v.length(name, path, 3, 255);
}

/// `KeySchema` and `AttributeDefinitions` are both lists of (AttributeName, <kind>) pairs.
pub type Pairs = Vec<(String, String)>;

pub fn read_pairs(input: Input<'_>, member: &str, kind: &str) -> ApiResult<Option<Pairs>> {
    let Some(list) = input.list(member)? else { return Ok(None) };
    let mut pairs = Vec::with_capacity(list.len());
    for element in list {
        let element = Input::new(as_object(element)?);
        let name = element.string("AttributeName")?;
        let kind = element.string(kind)?;
        // Nulls inside elements are reported by `check_pairs` with their positions.
        pairs.push((name.map(str::to_string).unwrap_or_default(), kind.map(str::to_string).unwrap_or_default()));
    }
    Ok(Some(pairs))
}

/// Where a list of pairs sits in the request and how DynamoDB names its parts: the member's path,
/// the Java class of its elements, the path of an element's second member.
struct PairShape<'a> {
    path: &'a str,
    element: &'static str,
    kind_path: &'static str,
}

impl PairShape<'_> {
    /// The list as DynamoDB prints it in a violation: its elements' Java `toString`, as
    /// `[KeySchemaElement(attributeName=pk, keyType=HASH), ...]`.
    fn show(&self, pairs: &[(String, String)]) -> String {
        let shown = |part: &str| if part.is_empty() { "null".to_string() } else { part.to_string() };
        let elements: Vec<String> = pairs
            .iter()
            .map(|(name, kind)| {
                format!("{}(attributeName={}, {}={})", self.element, shown(name), self.kind_path, shown(kind))
            })
            .collect();
        format!("[{}]", elements.join(", "))
    }
}

fn check_pairs(
    v: &mut Violations,
    pairs: Option<&[(String, String)]>,
    shape: &PairShape<'_>,
    kinds: &[&str],
    max: usize,
) {
    let (path, kind_path) = (shape.path, shape.kind_path);
    let Some(pairs) = v.not_null(pairs, path) else { return };
    if pairs.is_empty() {
        v.add(Some("[]"), path, "have length greater than or equal to 1");
    } else if pairs.len() > max {
        v.add(Some(&shape.show(pairs)), path, &format!("have length less than or equal to {max}"));
    }
    for (i, (name, kind)) in pairs.iter().enumerate() {
        let element = format!("{path}.{}.member", i + 1);
        if name.is_empty() {
            v.add(None, &format!("{element}.attributeName"), "not be null");
        } else {
            v.length(name, &format!("{element}.attributeName"), 1, 255);
        }
        if kind.is_empty() {
            v.add(None, &format!("{element}.{kind_path}"), "not be null");
        }
        v.one_of(Some(kind).filter(|k| !k.is_empty()).map(String::as_str), &format!("{element}.{kind_path}"), kinds);
    }
}

/// The hash and optional range key names of a validated key schema.
pub fn key_names(key_schema: &[(String, String)]) -> ApiResult<(&str, Option<&str>)> {
    let (hash, hash_type) = &key_schema[0];
    if hash_type != "HASH" {
        return Err(ApiError::validation("Invalid KeySchema: The first KeySchemaElement is not a HASH key type"));
    }
    let Some((range, range_type)) = key_schema.get(1) else { return Ok((hash, None)) };
    if range_type != "RANGE" {
        return Err(ApiError::validation("Invalid KeySchema: The second KeySchemaElement is not a RANGE key type"));
    }
    if range == hash {
        return Err(ApiError::validation(
            "Invalid KeySchema: The second KeySchemaElement has the same name as the first KeySchemaElement",
        ));
    }
    Ok((hash, Some(range)))
}
