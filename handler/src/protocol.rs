//! DynamoDB's awsJson1.0 protocol: routing on `X-Amz-Target`, authentication, the error
//! envelope and the response headers clients check (`x-amzn-RequestId`, `x-amz-crc32`).

use serde_json::{Value, json};

use crate::auth::{Auth, Refusal};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::http::{Request, Response};
use crate::input::Input;
use crate::ops::{self, Context};
pub use crate::random::request_id;
use crate::report::Report;
use crate::sigv4;
use crate::storage::Storage;

const TARGET_PREFIX: &str = "DynamoDB_20120810.";
const STREAMS_TARGET_PREFIX: &str = "DynamoDBStreams_20120810.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.0";
/// DynamoDB refuses request bodies over 16 MB.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Answers one HTTP request: the whole life of a request inside the sandbox.
pub fn handle(request: &Request, storage: &mut impl Storage, auth: &mut impl Auth) -> Response {
    handle_reporting(request, request_id(), storage, auth).0
}

/// [`handle`] under the request id the host chose (the one its log shows), with what the host's
/// metrics and log need to know of the request.
pub fn handle_reporting(
    request: &Request,
    request_id: String,
    storage: &mut impl Storage,
    auth: &mut impl Auth,
) -> (Response, Report) {
    let mut report = Report::default();
    if request.method == "GET" && request.path == "/" {
        let response = Response {
            status: 200,
            headers: vec![("content-type".into(), "text/plain".into()), ("x-amzn-requestid".into(), request_id)],
            body: b"healthy: dynabox".to_vec(),
        };
        return (response, report);
    }
    let response = match answer(request, storage, auth, &mut report) {
        Ok(body) => json_response(200, &body, request_id),
        Err(error) => {
            report.failed(&error);
            error_response(&error, request_id)
        }
    };
    (response, report)
}

/// The operation `X-Amz-Target` names (`DynamoDB_20120810.<Operation>`), known or not, or the
/// Streams API operation (`DynamoDBStreams_20120810.<Operation>`). Each API's operations are
/// unknown under the other's prefix.
pub fn target_operation(request: &Request) -> Option<&str> {
    let target = request.header("x-amz-target")?;
    match target.strip_prefix(STREAMS_TARGET_PREFIX) {
        Some(operation) => Some(operation).filter(|op| ops::is_streams(op)),
        None => target.strip_prefix(TARGET_PREFIX).filter(|op| !ops::is_streams(op)),
    }
}

/// The operation a request names, if this version answers it: a name from a fixed set, so the
/// host may use it as a metric label.
pub fn known_operation(request: &Request) -> Option<&'static str> {
    target_operation(request).and_then(ops::known)
}

fn answer(
    request: &Request,
    storage: &mut impl Storage,
    auth: &mut impl Auth,
    report: &mut Report,
) -> ApiResult<Value> {
    if request.body.len() > MAX_BODY_BYTES {
        return Err(request_too_large());
    }
    // DynamoDB names an unknown operation before it looks at the signature.
    let operation = target_operation(request)
        .filter(|op| request.method == "POST" && ops::exists(op))
        .ok_or_else(unknown_operation)?;
    let signed = sigv4::signed_request(request, auth.checks_signatures())?;
    let principal = auth.authenticate(&signed).map_err(|refusal| match refusal {
        Refusal::UnrecognizedClient => {
            ApiError::new(ErrorKind::UnrecognizedClient, "The security token included in the request is invalid.")
        }
        Refusal::InvalidSignature(message) => ApiError::new(ErrorKind::InvalidSignature, message),
        Refusal::Unavailable => ApiError::internal("Internal server error"),
    })?;
    let body = Input::parse_body(&request.body)?;
    report.name_tables(&body);
    let (region, host) = (signed.region(), request.header("host"));
    let mut cx = Context { storage, principal: &principal, region, host, report };
    let answer = ops::dispatch(operation, &body, &mut cx)?;
    if matches!(operation, "Query" | "Scan") {
        cx.report.returned_items = answer["Count"].as_u64().unwrap_or(0) as u32;
    }
    Ok(answer)
}

fn unknown_operation() -> ApiError {
    ApiError::new(ErrorKind::UnknownOperation, "")
}

pub fn request_too_large() -> ApiError {
    ApiError::new(ErrorKind::RequestEntityTooLarge, format!("Request size exceeded {MAX_BODY_BYTES} bytes"))
}

/// DynamoDB's error envelope. Also used by the host for the failures it answers itself (a trap,
/// an oversized body), so every error a client sees has one shape.
pub fn error_response(error: &ApiError, request_id: String) -> Response {
    let mut envelope = json!({"__type": format!("{}#{}", error.kind.namespace(), error.kind.type_name())});
    if !error.message.is_empty() {
        envelope["message"] = json!(error.message);
    }
    if let Some(item) = &error.item {
        envelope["Item"] = json!(item);
    }
    if let Some(reasons) = &error.reasons {
        envelope["CancellationReasons"] = json!(reasons);
    }
    json_response(error.kind.status(), &envelope, request_id)
}

fn json_response(status: u16, body: &Value, request_id: String) -> Response {
    let body = serde_json::to_vec(body).expect("a JSON value serialises");
    Response {
        status,
        headers: vec![
            ("content-type".into(), CONTENT_TYPE.into()),
            ("x-amzn-requestid".into(), request_id),
            ("x-amz-crc32".into(), crc32fast::hash(&body).to_string()),
        ],
        body,
    }
}
