//! The front door: what happens to a request before `handle` and to its response after, the same
//! for the host (natively, around the sandbox) and the Spin component. Before: a CORS preflight
//! is answered, a body is decoded from its content coding or the request refused. After: the
//! response is compressed as the request accepts and gets CORS headers when a page sent it.
//! The transport's own rules (timeouts, limits, the one path) are the host's.

use crate::http::{Request, Response};
use crate::protocol::{error_response, request_id};
use crate::{content_coding, cors};

/// What the front door makes of a request.
#[derive(Debug)]
pub enum Step {
    /// The request for the handler.
    Run(Request),
    /// The response to send at once.
    Answer(Response),
}

/// Whether a request is a CORS preflight, answered from its head: its body is never read.
pub fn is_preflight(request: &Request) -> bool {
    request.method == "OPTIONS"
}

/// The step before the handler.
pub fn receive(mut request: Request) -> Step {
    if is_preflight(&request) {
        let (origin, asked) = (request.header("origin"), request.header("access-control-request-headers"));
        return Step::Answer(cors::preflight(origin, asked));
    }
    match content_coding::decode_request_body(&mut request) {
        Ok(()) => Step::Run(request),
        Err(error) => Step::Answer(error_response(&error, request_id())),
    }
}

/// What a response needs of its request, taken before the handler has the request.
#[derive(Debug)]
pub struct Reply {
    origin: Option<String>,
    accept_encoding: Option<String>,
}

impl Reply {
    pub fn to(request: &Request) -> Reply {
        let header = |name| request.header(name).map(str::to_owned);
        Reply { origin: header("origin"), accept_encoding: header("accept-encoding") }
    }

    /// The step after: every response goes out through it, the front door's own answers too.
    pub fn finish(&self, mut response: Response) -> Response {
        content_coding::encode_response(self.accept_encoding.as_deref(), &mut response);
        cors::allow(self.origin.as_deref(), &mut response);
        response
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    fn request(method: &str, headers: &[(&str, &str)], body: &[u8]) -> Request {
        let headers = headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        Request { method: method.into(), path: "/".into(), headers, body: body.to_vec() }
    }

    fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
        response.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_preflight_is_answered_at_once_with_cors_headers() {
        let preflight = request("OPTIONS", &[("origin", "http://localhost:3000")], b"");
        let reply = Reply::to(&preflight);
        let Step::Answer(answer) = receive(preflight) else { panic!("a preflight runs nothing") };
        let answer = reply.finish(answer);
        assert_eq!(answer.status, 200);
        assert_eq!(header(&answer, "access-control-allow-origin"), Some("*"));
        assert_eq!(header(&answer, "access-control-allow-headers"), Some("*"));
    }

    #[test]
    fn a_body_is_decoded_for_the_handler_or_the_request_refused() {
        let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
        gzip.write_all(b"{}").unwrap();
        let sent = gzip.finish().unwrap();
        let Step::Run(run) = receive(request("POST", &[("content-encoding", "gzip")], &sent)) else {
            panic!("a gzipped body runs")
        };
        assert_eq!(run.body, b"{}");
        let Step::Answer(refused) = receive(request("POST", &[("content-encoding", "br")], b"{}")) else {
            panic!("an unknown coding is refused")
        };
        assert_eq!(refused.status, 500);
    }

    #[test]
    fn responses_are_finished_as_their_request_asks() {
        let asked = request("POST", &[("accept-encoding", "gzip"), ("origin", "http://localhost:3000")], b"{}");
        let large = Response { status: 200, headers: Vec::new(), body: vec![b' '; 4096] };
        let finished = Reply::to(&asked).finish(large.clone());
        assert_eq!(header(&finished, "content-encoding"), Some("gzip"));
        assert_eq!(header(&finished, "access-control-allow-origin"), Some("*"));
        assert_eq!(Reply::to(&request("POST", &[], b"{}")).finish(large.clone()), large);
    }
}
