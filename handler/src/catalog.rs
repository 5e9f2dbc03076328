//! Table descriptions: what `CreateTable` accepts, what is stored in the catalog, and the
//! `TableDescription` DynamoDB returns.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::input::{Input, Violations, as_object};
use crate::storage::{Keyspace, Storage, StorageError};

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
    /// The stored record's version (not part of the record itself), for guarded updates.
    #[serde(skip)]
    pub version: u64,
}

impl Table {
    /// Loads a table's record; a missing table is DynamoDB's `ResourceNotFoundException`.
    pub fn load(storage: &mut impl Storage, account: &str, name: &str) -> ApiResult<Table> {
        let stored = storage.describe_table(account, name).map_err(storage_error)?;
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

    /// DynamoDB's full `TableDescription` (CreateTable, DescribeTable). Tables are ACTIVE from
    /// the start: there is nothing to provision.
    pub fn description(&self, item_count: u64, size_bytes: u64) -> Value {
        let key_schema: Vec<Value> = std::iter::once(json!({"AttributeName": self.hash_key.name, "KeyType": "HASH"}))
            .chain(self.range_key.iter().map(|k| json!({"AttributeName": k.name, "KeyType": "RANGE"})))
            .collect();
        let definitions: Vec<Value> = self
            .key_attributes()
            .map(|k| json!({"AttributeName": k.name, "AttributeType": k.attribute_type}))
            .collect();
        let mut description = self.deleting_description(item_count, size_bytes);
        description["TableStatus"] = json!("ACTIVE");
        description["CreationDateTime"] = json!(self.creation_date_time);
        description["KeySchema"] = json!(key_schema);
        description["AttributeDefinitions"] = json!(definitions);
        description["DeletionProtectionEnabled"] = json!(false);
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

/// Maps a storage failure to the error a client sees.
pub fn storage_error(error: StorageError) -> ApiError {
    match error {
        StorageError::NoSuchKeyspace => ApiError::resource_not_found("Requested resource not found"),
        StorageError::Internal(detail) => {
            // The detail names the store's internals: for the server's log, never for clients.
            eprintln!("dynabox: storage failed: {detail}");
            ApiError::internal("Internal server error")
        }
    }
}

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
    for unsupported in ["GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification"] {
        if input.has(unsupported) {
            return Err(ApiError::validation(format!("dynabox does not support {unsupported} yet")));
        }
    }
    let key_schema = read_pairs(input, "KeySchema", "KeyType")?;
    let definitions = read_pairs(input, "AttributeDefinitions", "AttributeType")?;
    let billing_mode = input.string("BillingMode")?;
    let throughput = match input.structure("ProvisionedThroughput")? {
        Some(t) => Some((t.integer("ReadCapacityUnits")?, t.integer("WriteCapacityUnits")?)),
        None => None,
    };

    let mut violations = Violations::default();
    violations.table_name(name, "tableName");
    let key_schema_shape = PairShape { path: "keySchema", element: "KeySchemaElement", kind_path: "keyType" };
    check_pairs(&mut violations, key_schema.as_deref(), &key_schema_shape, &["HASH", "RANGE"], 2);
    let definitions_shape =
        PairShape { path: "attributeDefinitions", element: "AttributeDefinition", kind_path: "attributeType" };
    check_pairs(&mut violations, definitions.as_deref(), &definitions_shape, &["B", "N", "S"], usize::MAX);
    violations.one_of(billing_mode, "billingMode", &["PROVISIONED", "PAY_PER_REQUEST"]);
    if let Some((read, write)) = throughput {
        for (units, path) in
            [(read, "provisionedThroughput.readCapacityUnits"), (write, "provisionedThroughput.writeCapacityUnits")]
        {
            if let Some(units) = violations.not_null(units, path) {
                violations.range(units, path, 1, i64::MAX)
            }
        }
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
    let undefined: Vec<&str> =
        [Some(hash), range].into_iter().flatten().filter(|k| !definition_names.contains(k)).collect();
    if !undefined.is_empty() {
        return Err(ApiError::invalid_parameter(format!(
            "Some index key attributes are not defined in AttributeDefinitions. Keys: [{}], AttributeDefinitions: [{}]",
            undefined.join(", "),
            definition_names.join(", ")
        )));
    }
    if definitions.len() != key_schema.len() {
        return Err(ApiError::invalid_parameter(
            "Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
        ));
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
    Ok(Table {
        table_name: name.to_string(),
        table_arn: format!("arn:aws:dynamodb:{}:{}:table/{name}", placement.region, placement.account_id),
        table_id: placement.table_id,
        creation_date_time: placement.now,
        hash_key: attribute(hash),
        range_key: range.map(attribute),
        provisioned,
        indexes: Vec::new(),
        version: 1,
    })
}

/// `KeySchema` and `AttributeDefinitions` are both lists of (AttributeName, <kind>) pairs.
type Pairs = Vec<(String, String)>;

fn read_pairs(input: Input<'_>, member: &str, kind: &str) -> ApiResult<Option<Pairs>> {
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
struct PairShape {
    path: &'static str,
    element: &'static str,
    kind_path: &'static str,
}

impl PairShape {
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

fn check_pairs(v: &mut Violations, pairs: Option<&[(String, String)]>, shape: &PairShape, kinds: &[&str], max: usize) {
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
fn key_names(key_schema: &[(String, String)]) -> ApiResult<(&str, Option<&str>)> {
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
