//! Shared by the handler's integration tests: an authenticator that accepts every signature, and
//! signed requests for `dynabox_handler::handle` on the reference store
//! (`dynabox_handler::storage::memory`).

#![allow(dead_code)] // each test binary uses its own subset

use dynabox_handler::auth::{Auth, Principal, Refusal, SignedRequest};
use dynabox_handler::http::{Request, Response};
pub use dynabox_handler::storage::memory::MemoryStore;
use dynabox_handler::storage::{self, Answer, Failure, Storage};
use serde_json::Value;

/// Where a [`Hooked`] store lets a test act.
pub enum Call {
    /// Right after a scan read its page.
    Scanned,
    /// Right before a write group is applied.
    Writing,
}

/// The reference store with a hook that runs at every scan and write the handler makes: to let
/// another client act between a request's read and its write, or to fail a write (an `Err` from
/// the hook at `Call::Writing` is the write's answer, and nothing is written).
pub struct Hooked<H: FnMut(&mut MemoryStore, Call) -> Result<(), Failure>> {
    pub store: MemoryStore,
    pub hook: H,
}

impl<H: FnMut(&mut MemoryStore, Call) -> Result<(), Failure>> Storage for Hooked<H> {
    fn call(&mut self, account: &str, request: storage::Request<'_>) -> Result<Answer, Failure> {
        match request {
            storage::Request::Scan(_) => {
                let page = self.store.call(account, request);
                // A hook acting after a read cannot fail it.
                let _ = (self.hook)(&mut self.store, Call::Scanned);
                page
            }
            storage::Request::Write(_) => {
                (self.hook)(&mut self.store, Call::Writing)?;
                self.store.call(account, request)
            }
            request => self.store.call(account, request),
        }
    }
}

/// Accepts every signature.
pub struct AcceptAll;

impl Auth for AcceptAll {
    fn authenticate(&mut self, request: &SignedRequest) -> Result<Principal, Refusal> {
        Ok(Principal { account_id: "123456789012".into(), access_key_id: request.access_key_id.clone() })
    }
}

/// The Streams API's operations, sent under its own target prefix.
const STREAMS_OPERATIONS: &[&str] = &["ListStreams", "DescribeStream", "GetShardIterator", "GetRecords"];

pub fn request(operation: &str, body: Vec<u8>) -> Request {
    let header = |name: &str, value: &str| (name.to_string(), value.to_string());
    let api = if STREAMS_OPERATIONS.contains(&operation) { "DynamoDBStreams_20120810" } else { "DynamoDB_20120810" };
    Request {
        method: "POST".into(),
        path: "/".into(),
        headers: vec![
            header("host", "localhost:8000"),
            header("content-type", "application/x-amz-json-1.0"),
            header("x-amz-date", "20240101T000000Z"),
            header("x-amz-target", &format!("{api}.{operation}")),
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
pub fn send(store: &mut MemoryStore, operation: &str, body: Vec<u8>) -> Response {
    dynabox_handler::handle(&request(operation, body), store, &mut AcceptAll)
}

/// Calls `operation` with a JSON body; the status and the JSON answer.
pub fn call(store: &mut MemoryStore, operation: &str, body: &Value) -> (u16, Value) {
    let response = send(store, operation, body.to_string().into_bytes());
    let answer = serde_json::from_slice(&response.body).expect("every answer is JSON");
    (response.status, answer)
}

/// Calls an operation that must succeed.
pub fn ok(store: &mut MemoryStore, operation: &str, body: Value) -> Value {
    let (status, answer) = call(store, operation, &body);
    assert_eq!(status, 200, "{operation} {body}: {answer}");
    answer
}

/// Calls an operation that must fail; its `__type` after the `#`, and its message.
pub fn fails(store: &mut MemoryStore, operation: &str, body: Value) -> (String, String) {
    let (status, answer) = call(store, operation, &body);
    assert_eq!(status, 400, "{operation} {body}: {answer}");
    let kind = answer["__type"].as_str().and_then(|t| t.split('#').nth(1)).expect("a __type");
    (kind.to_string(), answer["message"].as_str().unwrap_or_default().to_string())
}

pub fn validation(store: &mut MemoryStore, operation: &str, body: Value) -> String {
    let (kind, message) = fails(store, operation, body);
    assert_eq!(kind, "ValidationException", "{message}");
    message
}
