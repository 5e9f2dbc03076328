//! AWS Signature Version 4, both halves. The handler's: read the signature from the
//! `Authorization` header or the query string (presigned form) and rebuild the string-to-sign from
//! the request. The host's (`verify`, run natively by the `auth` import): check the signature's
//! time and scope, derive the signing key from the secret and compare in constant time. So secrets
//! never enter the sandbox.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::http::Request;
use crate::time::{basic_iso8601, parse_basic_iso8601};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The service every credential scope must name, the Streams API's included.
const SERVICE: &str = "dynamodb";
const TERMINATOR: &str = "aws4_request";
/// How far a signature's time may be from the server's, either way.
const MAX_SKEW_SECONDS: i64 = 15 * 60;
/// Set by a host that decoded a compressed body: the hash of the bytes the client sent (and
/// signed). A host strips it from what clients send.
pub const PAYLOAD_HASH_HEADER: &str = "x-dynabox-payload-sha256";
/// The longest a presigned request may stay valid (`X-Amz-Expires`), as AWS allows.
const MAX_EXPIRES_SECONDS: u32 = 7 * 24 * 3600;

/// What the client claims in its signature.
#[derive(Debug, PartialEq, Eq)]
pub struct SignedRequest {
    pub access_key_id: String,
    /// `date/region/service/aws4_request`
    pub credential_scope: String,
    /// Empty when the [`Auth`](crate::auth::Auth) at hand checks no signatures.
    pub string_to_sign: String,
    pub signature: String,
    /// Presigned form only: seconds after the signing time the signature stays valid.
    pub expires: Option<u32>,
}

impl SignedRequest {
    /// The region the request was signed for (may be empty: some clients sign with region "").
    pub fn region(&self) -> &str {
        self.credential_scope.split('/').nth(1).unwrap_or("")
    }
}

/// Why a signed request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No such access key id.
    UnrecognizedClient,
    /// The signature does not match, or its time or scope is wrong; the message for the client.
    InvalidSignature(String),
    /// The accounts could not be read; the client may retry.
    Unavailable,
}

/// The signature's parts, wherever the request carries them.
struct Claim<'a> {
    credential: String,
    signed_headers: Vec<String>,
    signature: &'a str,
    date: &'a str,
    expires: Option<u32>,
    /// The query string as signed: the presigned form leaves its own signature out.
    query: Vec<(&'a str, &'a str)>,
}

/// Parses a signed request, in the header form or the presigned query form, and canonicalises it
/// into the string to sign when `with_string_to_sign` (a third of a GetItem's work natively, for
/// nothing under a policy that checks no signatures).
pub fn signed_request(request: &Request, with_string_to_sign: bool) -> ApiResult<SignedRequest> {
    let query = request.path.split_once('?').map_or("", |(_, q)| q);
    let query: Vec<(&str, &str)> =
        query.split('&').filter(|p| !p.is_empty()).map(|p| p.split_once('=').unwrap_or((p, ""))).collect();
    let claim = match request.header("authorization") {
        Some(authorization) => header_claim(request, authorization, query)?,
        None if query.iter().any(|(name, _)| *name == "X-Amz-Algorithm") => query_claim(query)?,
        None => {
            return Err(ApiError::new(
                ErrorKind::MissingAuthenticationToken,
                "Request is missing Authentication Token",
            ));
        }
    };
    if parse_basic_iso8601(claim.date).is_none() {
        return Err(incomplete(&format!(
            "Date must be in ISO-8601 'basic format'. Got '{}'. See http://en.wikipedia.org/wiki/ISO_8601",
            claim.date
        )));
    }
    let Some((access_key_id, credential_scope)) = claim.credential.split_once('/') else {
        return Err(incomplete(&format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{}'",
            claim.credential
        )));
    };
    if credential_scope.split('/').count() != 4 {
        return Err(incomplete(&format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{}'",
            claim.credential
        )));
    }
    let string_to_sign = if with_string_to_sign {
        let canonical = canonical_request(request, &claim);
        format!("{ALGORITHM}\n{}\n{credential_scope}\n{}", claim.date, hex(&Sha256::digest(canonical.as_bytes())))
    } else {
        String::new()
    };
    Ok(SignedRequest {
        access_key_id: access_key_id.to_string(),
        credential_scope: credential_scope.to_string(),
        string_to_sign,
        signature: claim.signature.to_string(),
        expires: claim.expires,
    })
}

fn header_claim<'a>(
    request: &'a Request,
    authorization: &'a str,
    query: Vec<(&'a str, &'a str)>,
) -> ApiResult<Claim<'a>> {
    let params = authorization.strip_prefix(ALGORITHM).unwrap_or("");
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in params.split(',') {
        match part.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed_headers = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => {}
        }
    }
    let mut missing = String::new();
    for (name, found) in [("Credential", credential), ("Signature", signature), ("SignedHeaders", signed_headers)] {
        if found.is_none_or(str::is_empty) {
            missing.push_str(&format!("Authorization header requires '{name}' parameter. "));
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature), true) =
        (credential, signed_headers, signature, missing.is_empty())
    else {
        return Err(incomplete(&format!("{missing}Authorization={authorization}")));
    };
    let Some(date) = request.header("x-amz-date").or_else(|| request.header("date")) else {
        return Err(incomplete(&format!(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={authorization}"
        )));
    };
    Ok(Claim {
        credential: credential.to_string(),
        signed_headers: signed_headers.split(';').map(str::to_string).collect(),
        signature,
        date,
        expires: None,
        query,
    })
}

/// The presigned form: `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`,
/// `X-Amz-SignedHeaders` and `X-Amz-Signature` in the query string.
fn query_claim<'a>(query: Vec<(&'a str, &'a str)>) -> ApiResult<Claim<'a>> {
    let param = |name: &str| query.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    let mut missing = Vec::new();
    for name in ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date"] {
        if param(name).is_none_or(str::is_empty) {
            missing.push(format!("AWS query-string parameters must include '{name}'."));
        }
    }
    let expires = param("X-Amz-Expires").map(|v| v.parse::<u32>().ok().filter(|e| *e <= MAX_EXPIRES_SECONDS));
    if expires == Some(None) {
        missing.push(format!("X-Amz-Expires must be non-negative integer of at most {MAX_EXPIRES_SECONDS} seconds."));
    }
    if !missing.is_empty() {
        return Err(incomplete(&format!("{} Re-examine the query-string parameters.", missing.join(" "))));
    }
    let (credential, signed, signature, date) = (
        percent_decode(param("X-Amz-Credential").unwrap_or_default()),
        percent_decode(param("X-Amz-SignedHeaders").unwrap_or_default()),
        param("X-Amz-Signature").unwrap_or_default(),
        param("X-Amz-Date").unwrap_or_default(),
    );
    let query = query.iter().copied().filter(|(name, _)| *name != "X-Amz-Signature").collect();
    Ok(Claim {
        credential,
        signed_headers: signed.split(';').map(str::to_string).collect(),
        signature,
        date,
        expires: expires.flatten(),
        query,
    })
}

fn incomplete(message: &str) -> ApiError {
    ApiError::new(ErrorKind::IncompleteSignature, message)
}

/// The canonical request. Its payload line is the hash of the body received (of the bytes sent,
/// when the host decoded them), never a hash the client declares, so a body changed after signing
/// no longer matches the signature.
fn canonical_request(request: &Request, claim: &Claim<'_>) -> String {
    let path = request.path.split_once('?').map_or(request.path.as_str(), |(path, _)| path);
    let mut query = claim.query.clone();
    query.sort_unstable();
    let query = query.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let mut canonical = format!("{}\n{}\n{query}\n", request.method, if path.is_empty() { "/" } else { path });
    for name in &claim.signed_headers {
        let values: Vec<String> = request
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        canonical.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let payload_hash = match request.header(PAYLOAD_HASH_HEADER) {
        Some(hash) => hash.to_string(),
        None => hex(&Sha256::digest(&request.body)),
    };
    canonical.push_str(&format!("\n{}\n{payload_hash}", claim.signed_headers.join(";")));
    canonical
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex_digit = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex_digit), bytes.get(i + 2).copied().and_then(hex_digit)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Lower-case hex, as SigV4 writes hashes and signatures.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // A table rather than `format!` per byte: this runs twice on every request.
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

// The host's half.

/// Whether one of an account's signing keys reproduces the request's signature, once its time
/// and scope pass [`check_claim`]. `signing_keys` gives the account's keys for a date and region
/// (the host remembers them; Spin derives them per request).
pub fn verify<K: AsRef<[[u8; 32]]>>(
    request: &SignedRequest,
    signing_keys: impl FnOnce(&str, &str) -> K,
) -> Result<bool, Refusal> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let (date, region) = check_claim(&request.credential_scope, &request.string_to_sign, request.expires, now)?;
    let keys = signing_keys(date, region);
    Ok(keys.as_ref().iter().any(|key| signature_matches(key, &request.string_to_sign, &request.signature)))
}

/// The refusal of a signature that no key of its account reproduces.
pub fn mismatch() -> Refusal {
    Refusal::InvalidSignature(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret \
         Access Key and signing method. Consult the service documentation for details."
            .to_string(),
    )
}

/// The key that signs DynamoDB requests of one day and region with `secret`.
pub fn signing_key(secret: &str, date: &str, region: &str) -> [u8; 32] {
    derive_key(secret, date, region, SERVICE)
}

fn derive_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    for part in [region, service, TERMINATOR] {
        key = hmac(&key, part.as_bytes());
    }
    key
}

/// Whether `signature` (hex) is the signature of `string_to_sign` under `key`, compared in constant
/// time.
pub fn signature_matches(key: &[u8; 32], string_to_sign: &str, signature: &str) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(string_to_sign.as_bytes());
    let Some(claimed) = unhex(signature) else { return false };
    mac.verify_slice(&claimed).is_ok()
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The bytes of a hex text; None unless it is whole pairs of hex digits.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// The scope's date and region, once the scope names DynamoDB and matches the signing time: what
/// the host checks before it looks for a key. `now` is seconds since the epoch.
pub fn check_claim<'a>(
    credential_scope: &'a str,
    string_to_sign: &str,
    expires: Option<u32>,
    now: i64,
) -> Result<(&'a str, &'a str), Refusal> {
    let invalid = |message: String| Refusal::InvalidSignature(message);
    let mut scope = credential_scope.split('/');
    let (date, region, service, terminator) = (
        scope.next().unwrap_or(""),
        scope.next().unwrap_or(""),
        scope.next().unwrap_or(""),
        scope.next().unwrap_or(""),
    );
    let signed_at = string_to_sign.lines().nth(1).unwrap_or("");
    let Some(signed_time) = parse_basic_iso8601(signed_at) else {
        return Err(invalid(format!("Date must be in ISO-8601 'basic format'. Got '{signed_at}'.")));
    };
    if !signed_at.starts_with(date) || date.len() != 8 {
        return Err(invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{date}' != '{}', from '{signed_at}'.",
            &signed_at[..8]
        )));
    }
    if service != SERVICE {
        return Err(invalid(format!("Credential should be scoped to correct service: '{SERVICE}'. ")));
    }
    if terminator != TERMINATOR {
        return Err(invalid(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator}'. "
        )));
    }
    match expires {
        Some(seconds) if now > signed_time + i64::from(seconds) => {
            return Err(invalid(format!(
                "Signature expired: {signed_at} is now earlier than {} ({} - {seconds} sec.)",
                basic_iso8601(now - i64::from(seconds)),
                basic_iso8601(now)
            )));
        }
        None if signed_time < now - MAX_SKEW_SECONDS => {
            return Err(invalid(format!(
                "Signature expired: {signed_at} is now earlier than {} ({} - 15 min.)",
                basic_iso8601(now - MAX_SKEW_SECONDS),
                basic_iso8601(now)
            )));
        }
        _ => {}
    }
    if signed_time > now + MAX_SKEW_SECONDS {
        return Err(invalid(format!(
            "Signature not yet current: {signed_at} is still later than {} ({} + 15 min.)",
            basic_iso8601(now + MAX_SKEW_SECONDS),
            basic_iso8601(now)
        )));
    }
    Ok((date, region))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of the AWS General Reference ("Create a canonical request"/"Create a
    /// string to sign"), IAM ListUsers signed on 2015-08-30.
    #[test]
    fn string_to_sign_matches_the_documented_example() {
        let request = Request {
            method: "GET".into(),
            path: "/?Action=ListUsers&Version=2010-05-08".into(),
            headers: vec![
                ("content-type".into(), "application/x-www-form-urlencoded; charset=utf-8".into()),
                ("host".into(), "iam.amazonaws.com".into()),
                ("x-amz-date".into(), "20150830T123600Z".into()),
                (
                    "authorization".into(),
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
                     SignedHeaders=content-type;host;x-amz-date, \
                     Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
                        .into(),
                ),
            ],
            body: vec![],
        };
        let signed = signed_request(&request, true).unwrap();
        assert_eq!(signed.access_key_id, "AKIDEXAMPLE");
        assert_eq!(signed.region(), "us-east-1");
        assert_eq!(
            signed.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n\
             f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        let unchecked = signed_request(&request, false).unwrap();
        assert_eq!(unchecked, SignedRequest { string_to_sign: String::new(), ..signed });
    }

    #[test]
    fn the_documented_example_verifies_with_its_secret_only() {
        let string_to_sign = "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n\
                              f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59";
        let signature = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
        let key = derive_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "iam");
        assert!(signature_matches(&key, string_to_sign, signature));
        let wrong = derive_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ", "20150830", "us-east-1", "iam");
        assert!(!signature_matches(&wrong, string_to_sign, signature));
        assert!(!signature_matches(&key, string_to_sign, "not hex"));
        assert!(!signature_matches(&key, string_to_sign, &signature[..62]));
    }

    fn claim_at(signed_at: &str, scope: &str, expires: Option<u32>) -> Result<(String, String), Refusal> {
        let now = parse_basic_iso8601("20261130T120000Z").unwrap();
        let string_to_sign = format!("{ALGORITHM}\n{signed_at}\n{scope}\nhash");
        check_claim(scope, &string_to_sign, expires, now).map(|(d, r)| (d.to_string(), r.to_string()))
    }

    #[test]
    fn a_signature_counts_within_fifteen_minutes_of_the_server_clock() {
        let scope = "20261130/eu-west-1/dynamodb/aws4_request";
        assert_eq!(claim_at("20261130T114500Z", scope, None), Ok(("20261130".into(), "eu-west-1".into())));
        assert!(claim_at("20261130T121500Z", scope, None).is_ok());
        assert_eq!(
            claim_at("20261130T114459Z", scope, None),
            Err(Refusal::InvalidSignature(
                "Signature expired: 20261130T114459Z is now earlier than 20261130T114500Z (20261130T120000Z - 15 min.)"
                    .into()
            ))
        );
        assert_eq!(
            claim_at("20261130T121501Z", scope, None),
            Err(Refusal::InvalidSignature(
                "Signature not yet current: 20261130T121501Z is still later than 20261130T121500Z (20261130T120000Z + 15 min.)"
                    .into()
            ))
        );
        // Presigned: valid for X-Amz-Expires after signing.
        assert!(claim_at("20261130T100000Z", scope, Some(7200)).is_ok());
        assert!(claim_at("20261130T100000Z", scope, Some(7199)).is_err());
        // Any region, the empty one included.
        assert!(claim_at("20261130T120000Z", "20261130//dynamodb/aws4_request", None).is_ok());
    }

    #[test]
    fn the_scope_names_dynamodb_and_the_signing_day() {
        let refused = |scope| matches!(claim_at("20261130T120000Z", scope, None), Err(Refusal::InvalidSignature(_)));
        assert!(refused("20261129/us-east-1/dynamodb/aws4_request"));
        assert!(refused("20261130/us-east-1/s3/aws4_request"));
        assert!(refused("20261130/us-east-1/dynamodb/aws5_request"));
    }

    #[test]
    fn the_presigned_form_signs_the_query_without_its_signature() {
        let request = Request {
            method: "POST".into(),
            path: "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=alice%2F20261130%2Fus-east-1%2Fdynamodb%2Faws4_request\
                   &X-Amz-Date=20261130T120000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature=abcd"
                .into(),
            headers: vec![("host".into(), "localhost".into())],
            body: b"{}".to_vec(),
        };
        let signed = signed_request(&request, true).unwrap();
        assert_eq!(signed.access_key_id, "alice");
        assert_eq!(signed.credential_scope, "20261130/us-east-1/dynamodb/aws4_request");
        assert_eq!((signed.signature.as_str(), signed.expires), ("abcd", Some(300)));
        assert!(!signed.string_to_sign.contains("abcd"));
    }

    #[test]
    fn the_payload_line_hashes_the_body_received() {
        let signed = |body: &[u8], declared: &str| {
            let request = Request {
                method: "POST".into(),
                path: "/".into(),
                headers: vec![
                    ("x-amz-date".into(), "20261130T120000Z".into()),
                    ("x-amz-content-sha256".into(), declared.into()),
                    (
                        "authorization".into(),
                        "AWS4-HMAC-SHA256 Credential=a/20261130/r/dynamodb/aws4_request, \
                         SignedHeaders=x-amz-date, Signature=00"
                            .into(),
                    ),
                ],
                body: body.to_vec(),
            };
            signed_request(&request, true).unwrap().string_to_sign
        };
        let declared = hex(&Sha256::digest(b"{}"));
        assert_ne!(signed(b"{}", &declared), signed(b"{\"changed\":1}", &declared));
    }

    #[test]
    fn missing_and_malformed_headers() {
        let mut request = Request { method: "POST".into(), path: "/".into(), ..Default::default() };
        assert_eq!(signed_request(&request, true).unwrap_err().kind, ErrorKind::MissingAuthenticationToken);
        request.headers.push(("authorization".into(), "AWS4-HMAC-SHA256 Credential=a/b".into()));
        let err = signed_request(&request, true).unwrap_err();
        assert_eq!(signed_request(&request, false).unwrap_err(), err, "the same refusal without a string to sign");
        assert_eq!(err.kind, ErrorKind::IncompleteSignature);
        assert_eq!(
            err.message,
            "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. \
             Authorization=AWS4-HMAC-SHA256 Credential=a/b"
        );
    }
}
