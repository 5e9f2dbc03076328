//! Admission per access key: a share of the sandbox for each, so one client's flood does not
//! starve another's small requests. Each key (as the request claims it: the signature is checked
//! later, inside the request) runs at most `running` requests at once, and at most `waiting` more
//! wait for a turn; beyond that a request is refused at once with DynamoDB's
//! `ThrottlingException`, which the SDKs retry with backoff.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use dynabox_handler::http::Request;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct Admission {
    running: usize,
    waiting: usize,
    shares: Mutex<HashMap<String, Arc<Share>>>,
}

struct Share {
    running: Arc<Semaphore>,
    waiting: AtomicUsize,
}

/// A request's place in its key's share, until dropped.
pub struct Admitted {
    permit: Option<OwnedSemaphorePermit>,
    key: String,
    admission: Arc<Admission>,
}

impl Admission {
    pub fn new(running: usize, waiting: usize) -> Admission {
        Admission { running: running.max(1), waiting, shares: Mutex::default() }
    }

    /// A place for `request`, waiting for one if its key's share is busy; None when the key has
    /// as many requests waiting as it may.
    pub async fn admit(self: &Arc<Self>, request: &Request) -> Option<Admitted> {
        let key = claimed_access_key(request).to_string();
        let share = self.lock().entry(key.clone()).or_insert_with(|| Arc::new(Share::new(self.running))).clone();
        let admitted = |permit| Admitted { permit: Some(permit), key: key.clone(), admission: self.clone() };
        if let Ok(permit) = share.running.clone().try_acquire_owned() {
            return Some(admitted(permit));
        }
        if share.waiting.fetch_add(1, Ordering::SeqCst) >= self.waiting {
            share.waiting.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let permit = share.running.clone().acquire_owned().await.expect("the semaphore is never closed");
        share.waiting.fetch_sub(1, Ordering::SeqCst);
        Some(admitted(permit))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Share>>> {
        self.shares.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Share {
    fn new(running: usize) -> Share {
        Share { running: Arc::new(Semaphore::new(running)), waiting: AtomicUsize::new(0) }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        // Shares are only cloned under the map's lock: with it held, a share nobody else holds and
        // whose places are all free belongs to a key with nothing running or waiting.
        let mut shares = self.admission.lock();
        drop(self.permit.take());
        if let Entry::Occupied(share) = shares.entry(std::mem::take(&mut self.key))
            && Arc::strong_count(share.get()) == 1
            && share.get().running.available_permits() == self.admission.running
        {
            share.remove();
        }
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
        tokio::task::yield_now().await;
        while admission.lock()["flood"].waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        assert!(admission.admit(&signed_by("flood")).await.is_none(), "the queue is full");
        let calm = admission.admit(&signed_by("calm")).await.expect("another key has its own share");
        drop((running, calm));
        assert!(queued.await.unwrap(), "the waiting request gets its turn");
        assert!(admission.lock().is_empty(), "no share outlives its requests");
    }
}
