//! Semaphores by key, made on first use and forgotten with their last holder or waiter, so the
//! map holds only keys in use: the turns at writing one item (`write_turns`) and each access
//! key's share of the sandbox (`admission`).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct KeyedSemaphores<K> {
    permits: usize,
    semaphores: Mutex<HashMap<K, Arc<Semaphore>>>,
}

/// A permit of one key's semaphore, until dropped.
pub struct KeyedPermit<K: Eq + Hash> {
    // Fields drop in order: the permit goes back before the claim looks whether the key is unused.
    _permit: OwnedSemaphorePermit,
    _claim: Claim<K>,
}

/// A holder's or waiter's hold on a key's semaphore; the last one to go forgets the key.
struct Claim<K: Eq + Hash> {
    semaphore: Option<Arc<Semaphore>>,
    key: Option<K>,
    owner: Arc<KeyedSemaphores<K>>,
}

impl<K: Eq + Hash + Clone> KeyedSemaphores<K> {
    pub fn new(permits: usize) -> Self {
        KeyedSemaphores { permits: permits.max(1), semaphores: Mutex::default() }
    }

    /// A permit of `key`'s semaphore if one is free now.
    pub fn try_acquire(self: &Arc<Self>, key: K) -> Option<KeyedPermit<K>> {
        let claim = self.claim(key);
        let permit = claim.semaphore().clone().try_acquire_owned().ok()?;
        Some(KeyedPermit { _permit: permit, _claim: claim })
    }

    /// A permit of `key`'s semaphore, waiting at most `wait` when one is given; None when the wait
    /// ran out.
    pub async fn acquire(self: &Arc<Self>, key: K, wait: Option<Duration>) -> Option<KeyedPermit<K>> {
        let claim = self.claim(key);
        let acquired = claim.semaphore().clone().acquire_owned();
        let permit = match wait {
            Some(wait) => tokio::time::timeout(wait, acquired).await.ok()?,
            None => acquired.await,
        };
        Some(KeyedPermit { _permit: permit.expect("the semaphore is never closed"), _claim: claim })
    }

    /// Whether no key is held or waited for.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn claim(self: &Arc<Self>, key: K) -> Claim<K> {
        let semaphore =
            self.lock().entry(key.clone()).or_insert_with(|| Arc::new(Semaphore::new(self.permits))).clone();
        Claim { semaphore: Some(semaphore), key: Some(key), owner: self.clone() }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, Arc<Semaphore>>> {
        self.semaphores.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<K: Eq + Hash> Claim<K> {
    fn semaphore(&self) -> &Arc<Semaphore> {
        self.semaphore.as_ref().expect("held until dropped")
    }
}

impl<K: Eq + Hash> Drop for Claim<K> {
    fn drop(&mut self) {
        // Semaphores are only cloned under the map's lock, so with it held the count is exact: the
        // map's own reference alone, and every permit back, mean nobody holds or waits for the key.
        let mut semaphores = self.owner.semaphores.lock().unwrap_or_else(PoisonError::into_inner);
        drop(self.semaphore.take());
        if let Some(key) = self.key.take()
            && let Entry::Occupied(entry) = semaphores.entry(key)
            && Arc::strong_count(entry.get()) == 1
            && entry.get().available_permits() == self.owner.permits
        {
            entry.remove();
        }
    }
}
