//! The console's way to the data: a DynamoDB API request (`X-Amz-Target` and a JSON body), run
//! in the sandbox as the signed-in principal, exactly as a client's request would be.

use dynabox_handler::auth::Principal;
use dynabox_handler::http::Request;
use serde_json::Value;

use crate::runtime::Runtime;

/// The region console requests are made for: it names the tables the console creates in their
/// ARNs, as a client's signing region does.
const REGION: &str = "us-east-1";

/// A request DynamoDB refused: its error type (without the namespace) and message, which the
/// console shows next to the form that made it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    pub kind: String,
    pub message: String,
}

impl Failure {
    /// A refusal of the console's own, before any request.
    pub fn console(message: impl Into<String>) -> Failure {
        Failure { kind: "ValidationException".into(), message: message.into() }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// Runs `operation` with `body` as `principal`; the response body, or DynamoDB's error.
pub async fn call(runtime: &Runtime, principal: Principal, operation: &str, body: &Value) -> Result<Value, Failure> {
    // The signature is a placeholder the sandbox parses and the host never checks: the host
    // authenticated the principal at sign-in and binds the request to it.
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={}/20260101/{REGION}/dynamodb/aws4_request, SignedHeaders=x-amz-date, Signature=0",
        principal.access_key_id
    );
    let headers = vec![
        ("x-amz-target".to_string(), format!("DynamoDB_20120810.{operation}")),
        ("content-type".to_string(), "application/x-amz-json-1.0".to_string()),
        ("x-amz-date".to_string(), "20260101T000000Z".to_string()),
        ("authorization".to_string(), authorization),
    ];
    let body = serde_json::to_vec(body).expect("a JSON value serialises");
    let request = Request { method: "POST".into(), path: "/".into(), headers, body };
    let response = runtime.handle_as(request, principal).await;
    let parsed: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    if response.status == 200 {
        return Ok(parsed);
    }
    let kind = parsed["__type"].as_str().unwrap_or("InternalServerError");
    Err(Failure {
        kind: kind.rsplit('#').next().unwrap_or(kind).to_string(),
        message: parsed["message"].as_str().or_else(|| parsed["Message"].as_str()).unwrap_or_default().to_string(),
    })
}
