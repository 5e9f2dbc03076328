//! AWS Signature Version 4, the handler's half: parse the `Authorization` header and rebuild the
//! string-to-sign from the request. Deriving the key and comparing signatures is the host's job
//! (`auth` import), so secrets never enter the sandbox.

use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::http::Request;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// What the client claims in its `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
pub struct SignedRequest {
    pub access_key_id: String,
    /// `date/region/service/aws4_request`
    pub credential_scope: String,
    pub string_to_sign: String,
    pub signature: String,
}

impl SignedRequest {
    /// The region the request was signed for (may be empty: some clients sign with region "").
    pub fn region(&self) -> &str {
        self.credential_scope.split('/').nth(1).unwrap_or("")
    }
}

/// Parses and canonicalises a request signed in the header form.
pub fn signed_request(request: &Request) -> ApiResult<SignedRequest> {
    let Some(authorization) = request.header("authorization") else {
        return Err(ApiError::new(ErrorKind::MissingAuthenticationToken, "Request is missing Authentication Token"));
    };
    let header = parse_authorization(authorization)?;
    let amz_date = request.header("x-amz-date").or_else(|| request.header("date"));
    let Some(amz_date) = amz_date else {
        return Err(incomplete(&format!(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={authorization}"
        )));
    };
    let (access_key_id, credential_scope) = header.credential.split_once('/').ok_or_else(|| {
        incomplete(&format!("Authorization header requires 'Credential' parameter. Authorization={authorization}"))
    })?;
    let canonical = canonical_request(request, &header.signed_headers);
    let string_to_sign =
        format!("{ALGORITHM}\n{amz_date}\n{credential_scope}\n{}", hex(&Sha256::digest(canonical.as_bytes())));
    Ok(SignedRequest {
        access_key_id: access_key_id.to_string(),
        credential_scope: credential_scope.to_string(),
        string_to_sign,
        signature: header.signature.to_string(),
    })
}

struct AuthorizationHeader<'a> {
    credential: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> ApiResult<AuthorizationHeader<'_>> {
    let params = value.strip_prefix(ALGORITHM).unwrap_or("");
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
    match (credential, signed_headers, signature) {
        (Some(credential), Some(signed), Some(signature)) if missing.is_empty() => {
            Ok(AuthorizationHeader { credential, signed_headers: signed.split(';').collect(), signature })
        }
        _ => Err(incomplete(&format!("{missing}Authorization={value}"))),
    }
}

fn incomplete(message: &str) -> ApiError {
    ApiError::new(ErrorKind::IncompleteSignature, message)
}

fn canonical_request(request: &Request, signed_headers: &[&str]) -> String {
    let (path, query) = request.path.split_once('?').unwrap_or((&request.path, ""));
    let mut query_pairs: Vec<(&str, &str)> =
        query.split('&').filter(|p| !p.is_empty()).map(|p| p.split_once('=').unwrap_or((p, ""))).collect();
    query_pairs.sort_unstable();
    let query = query_pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let mut canonical = format!("{}\n{}\n{query}\n", request.method, if path.is_empty() { "/" } else { path });
    for name in signed_headers {
        let values: Vec<String> = request
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        canonical.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let payload_hash = match request.header("x-amz-content-sha256") {
        Some(declared) => declared.to_string(),
        None => hex(&Sha256::digest(&request.body)),
    };
    canonical.push_str(&format!("\n{}\n{payload_hash}", signed_headers.join(";")));
    canonical
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // A table rather than `format!` per byte: this runs twice on every request.
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
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
        let signed = signed_request(&request).unwrap();
        assert_eq!(signed.access_key_id, "AKIDEXAMPLE");
        assert_eq!(signed.region(), "us-east-1");
        assert_eq!(
            signed.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n\
             f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
    }

    #[test]
    fn missing_and_malformed_headers() {
        let mut request = Request { method: "POST".into(), path: "/".into(), ..Default::default() };
        assert_eq!(signed_request(&request).unwrap_err().kind, ErrorKind::MissingAuthenticationToken);
        request.headers.push(("authorization".into(), "AWS4-HMAC-SHA256 Credential=a/b".into()));
        let err = signed_request(&request).unwrap_err();
        assert_eq!(err.kind, ErrorKind::IncompleteSignature);
        assert_eq!(
            err.message,
            "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. \
             Authorization=AWS4-HMAC-SHA256 Credential=a/b"
        );
    }
}
