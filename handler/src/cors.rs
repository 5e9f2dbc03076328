//! CORS, for browsers calling the API from a page of any origin. Only a request that carries
//! `Origin` (which browsers send, and SDKs outside a browser do not) gets `Access-Control-*`
//! headers. Run by whatever fronts the handler, outside `handle`: natively by the host, inside the
//! component under Spin.

use crate::http::Response;
use crate::random::request_id;

/// Headers a page's script may read from an answer: the ones the SDKs check.
const EXPOSED_HEADERS: &str = "x-amzn-RequestId, x-amz-crc32";

/// The answer to `OPTIONS`: a preflight allows the methods of the API and the headers the browser
/// asks for (and, through [`allow`], any origin); an `OPTIONS` without `Origin` is no preflight and
/// gets none of that.
pub fn preflight(origin: Option<&str>, requested_headers: Option<&str>) -> Response {
    let mut headers = vec![("x-amzn-requestid".to_string(), request_id())];
    if origin.is_some() {
        headers.extend([
            ("access-control-allow-methods".into(), "GET, POST, OPTIONS".into()),
            ("access-control-allow-headers".into(), requested_headers.unwrap_or("*").to_string()),
            ("access-control-max-age".into(), "172800".into()),
        ]);
    }
    Response { status: 200, headers, body: Vec::new() }
}

/// Every answer as it goes out, the preflight's too: any origin may read it when a browser asked.
pub fn allow(origin: Option<&str>, response: &mut Response) {
    if origin.is_some() {
        response.headers.extend([
            ("access-control-allow-origin".into(), "*".into()),
            ("access-control-expose-headers".into(), EXPOSED_HEADERS.into()),
        ]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors_headers(response: &Response) -> Vec<&str> {
        response.headers.iter().map(|(name, _)| name.as_str()).filter(|n| n.starts_with("access-control-")).collect()
    }

    #[test]
    fn only_requests_with_an_origin_get_cors_headers() {
        let mut plain = Response { status: 200, headers: Vec::new(), body: Vec::new() };
        allow(None, &mut plain);
        assert!(cors_headers(&plain).is_empty());
        let mut from_page = plain.clone();
        allow(Some("http://localhost:3000"), &mut from_page);
        assert_eq!(cors_headers(&from_page), ["access-control-allow-origin", "access-control-expose-headers"]);
    }

    #[test]
    fn a_preflight_allows_the_headers_asked_for() {
        let origin = Some("http://localhost:3000");
        let mut answer = preflight(origin, Some("x-amz-target,authorization"));
        allow(origin, &mut answer);
        assert_eq!(answer.status, 200);
        let allowed = answer.headers.iter().find(|(n, _)| n == "access-control-allow-headers").map(|(_, v)| v.as_str());
        assert_eq!(allowed, Some("x-amz-target,authorization"));
        assert!(cors_headers(&answer).contains(&"access-control-allow-origin"));
        assert!(cors_headers(&preflight(None, Some("x-amz-target"))).is_empty());
    }
}
