//! HTTP content codings: request bodies sent with `Content-Encoding: gzip` or `deflate` (the
//! SDKs' request compression; any other coding but `identity` is refused), and responses
//! compressed for a client that sends `Accept-Encoding`. Run by whatever fronts the handler,
//! outside `handle`: natively by the host, inside the component under Spin.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::{GzDecoder, ZlibDecoder};
use flate2::write::{GzEncoder, ZlibEncoder};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::protocol::{MAX_BODY_BYTES, request_too_large};
use crate::sigv4::{PAYLOAD_HASH_HEADER, hex};

/// Responses smaller than this go out as they are: compressing them saves less than it costs.
const MIN_COMPRESSED_BYTES: usize = 1024;

/// Replaces a gzip or deflate (zlib, as HTTP means it) body by what it stands for, at most
/// DynamoDB's body limit; an identity one passes unchanged. Any other coding is refused as
/// DynamoDB refuses it, with a 500, before anything runs. The signature covers the bytes sent, so
/// their hash goes along in [`PAYLOAD_HASH_HEADER`], which only this function may set: a client's
/// is dropped. A stream that does not decode is refused before anything runs.
pub fn decode_request_body(request: &mut Request) -> Result<(), ApiError> {
    request.headers.retain(|(name, _)| name != PAYLOAD_HASH_HEADER);
    let coding = request.header("content-encoding").unwrap_or("identity").trim().to_string();
    let decoder: Box<dyn Read + '_> = match coding.to_ascii_lowercase().as_str() {
        "gzip" | "x-gzip" => Box::new(GzDecoder::new(request.body.as_slice())),
        "deflate" => Box::new(ZlibDecoder::new(request.body.as_slice())),
        "identity" | "" => return Ok(()),
        // Read as plain JSON, such a body would be applied as something the client did not send.
        _ => return Err(ApiError::internal(format!("Unsupported Content-Encoding: {coding}"))),
    };
    let mut body = Vec::new();
    decoder
        .take(MAX_BODY_BYTES as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|_| ApiError::serialization(format!("The request body could not be decoded as {coding}")))?;
    if body.len() > MAX_BODY_BYTES {
        return Err(request_too_large());
    }
    let sent = std::mem::replace(&mut request.body, body);
    request.headers.push((PAYLOAD_HASH_HEADER.to_string(), hex(&Sha256::digest(&sent))));
    Ok(())
}

/// Compresses the response's body with the first of gzip and deflate that `accept_encoding`
/// (the request's `Accept-Encoding`) allows. `x-amz-crc32` is then of the compressed bytes, as
/// DynamoDB sends it and the SDKs check it.
pub fn encode_response(accept_encoding: Option<&str>, response: &mut Response) {
    if response.body.len() < MIN_COMPRESSED_BYTES {
        return;
    }
    let Some(coding) =
        accept_encoding.and_then(|accepted| ["gzip", "deflate"].into_iter().find(|c| accepts(accepted, c)))
    else {
        return;
    };
    let body = &response.body;
    let compressed = match coding {
        "gzip" => {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
            encoder.write_all(body).and_then(|()| encoder.finish())
        }
        _ => {
            let mut encoder = ZlibEncoder::new(Vec::new(), Compression::fast());
            encoder.write_all(body).and_then(|()| encoder.finish())
        }
    }
    .expect("compressing in memory");
    for (name, value) in &mut response.headers {
        if name == "x-amz-crc32" {
            *value = crc32fast::hash(&compressed).to_string();
        }
    }
    response.headers.push(("content-encoding".into(), coding.into()));
    response.body = compressed;
}

/// Whether an `Accept-Encoding` value allows `coding` (by name or `*`, with no `q=0`).
fn accepts(accept_encoding: &str, coding: &str) -> bool {
    accept_encoding.split(',').any(|entry| {
        let mut parts = entry.split(';').map(str::trim);
        let name = parts.next().unwrap_or("");
        let refused = parts.any(|p| p.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()) == Some(0.0));
        (name.eq_ignore_ascii_case(coding) || name == "*") && !refused
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(body: Vec<u8>) -> Response {
        let crc = crc32fast::hash(&body).to_string();
        Response { status: 200, headers: vec![("x-amz-crc32".into(), crc)], body }
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut plain = Vec::new();
        GzDecoder::new(bytes).read_to_end(&mut plain).unwrap();
        plain
    }

    #[test]
    fn large_responses_are_gzipped_with_the_checksum_of_what_is_sent() {
        let body = br#"{"Items":[]}"#.repeat(200);
        let mut gzipped = response(body.clone());
        encode_response(Some("deflate, gzip;q=0.8"), &mut gzipped);
        assert!(gzipped.headers.contains(&("content-encoding".into(), "gzip".into())));
        assert_eq!(gunzip(&gzipped.body), body);
        let crc = crc32fast::hash(&gzipped.body).to_string();
        assert!(gzipped.headers.contains(&("x-amz-crc32".into(), crc)));

        let mut deflated = response(body.clone());
        encode_response(Some("gzip;q=0, deflate"), &mut deflated);
        assert!(deflated.headers.contains(&("content-encoding".into(), "deflate".into())));
    }

    #[test]
    fn small_or_unasked_responses_are_left_alone() {
        for (accept, body) in [(Some("gzip"), b"{}".to_vec()), (None, vec![b' '; 4096]), (Some("br"), vec![b' '; 4096])]
        {
            let mut untouched = response(body.clone());
            encode_response(accept, &mut untouched);
            assert_eq!(untouched, response(body));
        }
    }

    #[test]
    fn decoded_bodies_carry_the_hash_of_the_bytes_sent() {
        let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
        gzip.write_all(b"{}").unwrap();
        let sent = gzip.finish().unwrap();
        let mut request = Request {
            headers: vec![("content-encoding".into(), "gzip".into()), (PAYLOAD_HASH_HEADER.into(), "forged".into())],
            body: sent.clone(),
            ..Request::default()
        };
        decode_request_body(&mut request).unwrap();
        assert_eq!(request.body, b"{}");
        assert_eq!(request.header(PAYLOAD_HASH_HEADER), Some(hex(&Sha256::digest(&sent)).as_str()));
        assert_eq!(request.headers.iter().filter(|(n, _)| n == PAYLOAD_HASH_HEADER).count(), 1);

        let mut broken = Request {
            headers: vec![("content-encoding".into(), "gzip".into())],
            body: b"\x1f\x8b no".to_vec(),
            ..Request::default()
        };
        assert_eq!(decode_request_body(&mut broken).unwrap_err().kind, crate::error::ErrorKind::Serialization);
    }

    fn with_coding(coding: Option<&str>, body: &[u8]) -> Request {
        let headers = coding.map(|c| ("content-encoding".to_string(), c.to_string())).into_iter().collect();
        Request { headers, body: body.to_vec(), ..Request::default() }
    }

    #[test]
    fn gzip_x_gzip_and_deflate_are_decoded() {
        let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
        gzip.write_all(b"{}").unwrap();
        let gzipped = gzip.finish().unwrap();
        let mut zlib = ZlibEncoder::new(Vec::new(), Compression::default());
        zlib.write_all(b"{}").unwrap();
        let deflated = zlib.finish().unwrap();
        for (coding, sent) in [("gzip", &gzipped), ("X-Gzip", &gzipped), (" deflate ", &deflated)] {
            let mut request = with_coding(Some(coding), sent);
            decode_request_body(&mut request).unwrap();
            assert_eq!(request.body, b"{}", "{coding}");
        }
    }

    #[test]
    fn identity_or_no_coding_leaves_the_body_as_sent() {
        for coding in [None, Some("identity"), Some("IDENTITY"), Some("")] {
            let mut request = with_coding(coding, b"{}");
            decode_request_body(&mut request).unwrap();
            assert_eq!(request.body, b"{}", "{coding:?}");
            assert_eq!(request.header(PAYLOAD_HASH_HEADER), None, "{coding:?}");
        }
    }

    #[test]
    fn other_codings_are_refused_as_dynamodb_refuses_them() {
        for coding in ["garbage", "br", "compress", "gzip, identity"] {
            let error = decode_request_body(&mut with_coding(Some(coding), b"{}")).unwrap_err();
            assert_eq!(error.kind, crate::error::ErrorKind::InternalServerError, "{coding}");
            assert_eq!(error.kind.status(), 500);
            assert_eq!(error.message, format!("Unsupported Content-Encoding: {coding}"));
        }
    }
}
