//! Admission per access key: a share of the sandbox for each, so one client's flood does not
//! starve another's small requests. Each key (as the request claims it: the signature is checked
//! later, inside the request) runs at most `running` requests at once, and at most `waiting` more
//! wait for a turn; beyond that a request is refused at once with DynamoDB's
//! `ThrottlingException`, which the SDKs retry with backoff.

use std::sync::Arc;

use dynabox_handler::http::Request;

use super::keyed::{KeyedPermit, KeyedSemaphores};

pub struct Admission {
    /// Per key, running and waiting requests: a request without a place is refused.
    places: Arc<KeyedSemaphores<String>>,
    /// Per key, running requests: a request with a place waits for one of these.
    running: Arc<KeyedSemaphores<String>>,
}

/// A request's place in its key's share, until dropped.
pub struct Admitted {
    _running: KeyedPermit<String>,
    _place: KeyedPermit<String>,
}

impl Admission {
    pub fn new(running: usize, waiting: usize) -> Admission {
        let running = running.max(1);
        Admission {
            places: Arc::new(KeyedSemaphores::new(running + waiting)),
            running: Arc::new(KeyedSemaphores::new(running)),
        }
    }

    /// A place for `request`, waiting for one if its key's share is busy; None when the key has
    /// as many requests waiting as it may.
    pub async fn admit(&self, request: &Request) -> Option<Admitted> {
        let key = claimed_access_key(request);
        let place = self.places.try_acquire(key.to_string())?;
        let running = self.running.acquire(key.to_string(), None).await?;
        Some(Admitted { _running: running, _place: place })
    }
}

/// The access key id a request's signature names (header or presigned form); "" for none.
fn claimed_access_key(request: &Request) -> &str {
    let credential = match request.header("authorization") {
        Some(authorization) => authorization.split_once("Credential=").map(|(_, rest)| rest),
        None => request.path.split_once("X-Amz-Credential=").map(|(_, rest)| rest),
    };
    let credential = credential.unwrap_or("");
    let end = credential.find(['/', '%', ',', '&']).unwrap_or(credential.len());
    &credential[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed_by(key: &str) -> Request {
        let authorization = format!("AWS4-HMAC-SHA256 Credential={key}/20261130/us-east-1/dynamodb/aws4_request, ...");
        Request { headers: vec![("authorization".into(), authorization)], ..Default::default() }
    }

    #[test]
    fn the_key_is_read_from_either_signature_form() {
        assert_eq!(claimed_access_key(&signed_by("alice")), "alice");
        let presigned = Request { path: "/?X-Amz-Credential=bob%2F20261130%2F...".into(), ..Default::default() };
        assert_eq!(claimed_access_key(&presigned), "bob");
        assert_eq!(claimed_access_key(&Request::default()), "");
    }

    #[tokio::test]
    async fn a_key_over_its_share_is_refused_while_another_key_is_admitted() {
        let admission = Arc::new(Admission::new(1, 1));
        let running = admission.admit(&signed_by("flood")).await.expect("a free share");
        let queued = tokio::spawn({
            let admission = admission.clone();
            async move { admission.admit(&signed_by("flood")).await.is_some() }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!queued.is_finished(), "the second request waits");
        assert!(admission.admit(&signed_by("flood")).await.is_none(), "the queue is full");
        let calm = admission.admit(&signed_by("calm")).await.expect("another key has its own share");
        drop((running, calm));
        assert!(queued.await.unwrap(), "the waiting request gets its turn");
        assert!(admission.places.is_empty() && admission.running.is_empty(), "no share outlives its requests");
    }
}
