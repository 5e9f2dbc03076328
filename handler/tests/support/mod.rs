//! Shared by the handler's integration tests: the storage contract on BTreeMaps, an
//! authenticator that accepts every signature, and signed requests for `dynabox_handler::handle`.

#![allow(dead_code)] // each test binary uses its own subset

use std::collections::BTreeMap;
use std::ops::Bound;

use dynabox_handler::auth::{Auth, Principal};
use dynabox_handler::http::{Request, Response};
use dynabox_handler::storage::{
    Expect, ItemKey, Page, ScanRequest, Storage, StorageError, StoredItem, Write, WriteError,
};
use serde_json::Value;

type Items = BTreeMap<ItemKey, (Vec<u8>, u64)>;

/// The storage contract on BTreeMaps.
#[derive(Default)]
pub struct Memory {
    tables: BTreeMap<String, Vec<u8>>,
    keyspaces: BTreeMap<String, Items>,
    /// The last version given; one counter for all keys keeps every key's versions growing.
    version: u64,
}

impl Memory {
    fn items(&self, keyspace: &str) -> Result<&Items, StorageError> {
        self.keyspaces.get(keyspace).ok_or(StorageError::NoSuchKeyspace)
    }
}

impl Storage for Memory {
    fn create_table(&mut self, name: &str, description: &[u8]) -> Result<bool, StorageError> {
        if self.tables.contains_key(name) {
            return Ok(false);
        }
        self.tables.insert(name.to_string(), description.to_vec());
        self.keyspaces.insert(name.to_string(), Items::new());
        Ok(true)
    }

    fn describe_table(&mut self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.tables.get(name).cloned())
    }

    fn list_tables(&mut self, start_after: Option<&str>, limit: u32) -> Result<Vec<String>, StorageError> {
        let after = start_after.map_or(Bound::Unbounded, |s| Bound::Excluded(s.to_string()));
        Ok(self.tables.range((after, Bound::Unbounded)).take(limit as usize).map(|(name, _)| name.clone()).collect())
    }

    fn delete_table(&mut self, name: &str) -> Result<bool, StorageError> {
        self.keyspaces.remove(name);
        Ok(self.tables.remove(name).is_some())
    }

    fn keyspace_stats(&mut self, keyspace: &str) -> Result<(u64, u64), StorageError> {
        let items = self.items(keyspace)?;
        Ok((items.len() as u64, items.values().map(|(document, _)| document.len() as u64).sum()))
    }

    fn get(&mut self, keyspace: &str, key: &ItemKey) -> Result<Option<StoredItem>, StorageError> {
        Ok(self.items(keyspace)?.get(key).map(|(document, version)| StoredItem {
            key: key.clone(),
            document: document.clone(),
            version: *version,
        }))
    }

    fn scan(&mut self, request: &ScanRequest) -> Result<Page, StorageError> {
        let items = self.items(&request.keyspace)?;
        let after = request.after.clone().map_or(Bound::Unbounded, Bound::Excluded);
        let mut page = Page::default();
        let mut bytes = 0u64;
        for (key, (document, version)) in items.range((after, Bound::Unbounded)) {
            if page.items.len() as u32 >= request.limit || bytes >= u64::from(request.byte_budget) {
                page.more = true;
                break;
            }
            bytes += document.len() as u64;
            page.items.push(StoredItem { key: key.clone(), document: document.clone(), version: *version });
        }
        Ok(page)
    }

    fn write(&mut self, writes: &[Write]) -> Result<(), WriteError> {
        for (i, write) in writes.iter().enumerate() {
            let current = self.items(&write.keyspace)?.get(&write.key).map(|(_, version)| *version);
            let holds = match write.expect {
                Expect::Anything => true,
                Expect::Absent => current.is_none(),
                Expect::Version(version) => current == Some(version),
            };
            if !holds {
                return Err(WriteError::GuardFailed(i as u32));
            }
        }
        for write in writes {
            self.version += 1;
            let items = self.keyspaces.get_mut(&write.keyspace).ok_or(StorageError::NoSuchKeyspace)?;
            match &write.document {
                Some(document) => items.insert(write.key.clone(), (document.clone(), self.version)),
                None => items.remove(&write.key),
            };
        }
        Ok(())
    }
}

/// Accepts every signature.
pub struct AcceptAll;

impl Auth for AcceptAll {
    fn authenticate(&mut self, access_key_id: &str, _: &str, _: &str, _: &str) -> Result<Principal, String> {
        Ok(Principal { account_id: "123456789012".into(), access_key_id: access_key_id.into() })
    }
}

pub fn request(operation: &str, body: Vec<u8>) -> Request {
    let header = |name: &str, value: &str| (name.to_string(), value.to_string());
    Request {
        method: "POST".into(),
        path: "/".into(),
        headers: vec![
            header("host", "localhost:8000"),
            header("content-type", "application/x-amz-json-1.0"),
            header("x-amz-date", "20240101T000000Z"),
            header("x-amz-target", &format!("DynamoDB_20120810.{operation}")),
            header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=k/20240101/us-east-1/dynamodb/aws4_request, \
                 SignedHeaders=host;x-amz-date, Signature=00",
            ),
        ],
        body,
    }
}

/// Sends `body` as operation `operation` through the whole request path.
pub fn send(store: &mut Memory, operation: &str, body: Vec<u8>) -> Response {
    dynabox_handler::handle(&request(operation, body), store, &mut AcceptAll)
}

/// Calls `operation` with a JSON body; the status and the JSON answer.
pub fn call(store: &mut Memory, operation: &str, body: &Value) -> (u16, Value) {
    let response = send(store, operation, body.to_string().into_bytes());
    let answer = serde_json::from_slice(&response.body).expect("every answer is JSON");
    (response.status, answer)
}
