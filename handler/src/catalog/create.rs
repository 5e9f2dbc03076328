//! `CreateTable` validation, and the request members UpdateTable reads the same way (throughput,
//! attribute definitions, index declarations).

use super::{
    Index, IndexStatus, KeyAttribute, Projection, Specification, Table, Throughput, check_reserved, check_tags,
    read_tags,
};
use crate::error::{ApiError, ApiResult};
use crate::input::{Input, Violations, as_object, mismatch};

pub const TABLE_CLASSES: &[&str] = &["STANDARD", "STANDARD_INFREQUENT_ACCESS"];

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
    let stream = Specification::read(input)?;

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
        restore: None,
        importing: None,
        point_in_time_recovery: None,
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
