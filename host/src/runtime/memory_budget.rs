//! The server's memory budget: what all requests in flight may hold at once, in request bodies
//! and in sandbox memory. Without it, a burst of bodies each dense enough to need a large sandbox
//! (16 of them took the server from 18 MB to 2.7 GB resident) could take the machine's memory,
//! since each request's own cap (`--request-memory-mib`) times the requests in flight is far more
//! than a machine has. A request that finds the budget spent waits for others to give memory back.
//! So that a burst always makes progress (every request could otherwise hold part of the budget
//! and wait for more), one sandbox at a time may run over the budget: the bound is the budget plus
//! one request's own cap.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

/// The budget is kept in wasm pages: the unit in which sandbox memory grows.
const UNIT_BYTES: usize = 64 << 10;

/// How long a sandbox waits for memory to grow before its grow fails (which ends the request in
/// a trap): other requests in flight may be waiting for memory it holds.
const GROW_WAIT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct MemoryBudget {
    units: Arc<Semaphore>,
    capacity: usize,
    /// Held by the one sandbox that may grow past the budget.
    overdraft: Arc<Mutex<()>>,
}

/// Memory taken from the budget, given back when dropped.
#[derive(Default)]
pub struct Reservation(Option<OwnedSemaphorePermit>);

impl Reservation {
    fn add(&mut self, permit: OwnedSemaphorePermit) {
        match &mut self.0 {
            Some(held) => held.merge(permit),
            None => self.0 = Some(permit),
        }
    }
}

impl MemoryBudget {
    pub fn new(bytes: usize) -> MemoryBudget {
        let capacity = (bytes / UNIT_BYTES).clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        MemoryBudget { units: Arc::new(Semaphore::new(capacity)), capacity, overdraft: Arc::default() }
    }

    /// Adds `bytes` (at most the whole budget) to `reservation`, waiting while the budget is spent.
    pub async fn reserve(&self, reservation: &mut Reservation, bytes: usize) {
        let units = bytes.div_ceil(UNIT_BYTES).min(self.capacity) as u32;
        let permit = self.units.clone().acquire_many_owned(units).await.expect("the semaphore is never closed");
        reservation.add(permit);
    }

    /// A sandbox's view of the budget, for wasmtime to ask before each grow of its memory.
    pub fn sandbox(&self) -> SandboxMemory {
        SandboxMemory { budget: self.clone(), held: Reservation::default(), overdraft: None }
    }
}

/// One sandbox's memory, as taken from the budget; given back with its store.
pub struct SandboxMemory {
    budget: MemoryBudget,
    held: Reservation,
    overdraft: Option<OwnedMutexGuard<()>>,
}

#[async_trait::async_trait]
impl wasmtime::ResourceLimiterAsync for SandboxMemory {
    async fn memory_growing(&mut self, current: usize, desired: usize, _: Option<usize>) -> wasmtime::Result<bool> {
        let units = desired.div_ceil(UNIT_BYTES).saturating_sub(current.div_ceil(UNIT_BYTES));
        if self.overdraft.is_some() {
            return Ok(true);
        }
        if let Ok(permit) = self.budget.units.clone().try_acquire_many_owned(units as u32) {
            self.held.add(permit);
            return Ok(true);
        }
        if let Ok(overdraft) = self.budget.overdraft.clone().try_lock_owned() {
            self.overdraft = Some(overdraft);
            return Ok(true);
        }
        if units > self.budget.capacity {
            return Ok(false);
        }
        let wanted = self.budget.units.clone().acquire_many_owned(units as u32);
        match tokio::time::timeout(GROW_WAIT, wanted).await {
            Ok(Ok(permit)) => {
                self.held.add(permit);
                Ok(true)
            }
            // The guest's allocation fails: this request ends, not the machine's memory.
            _ => Ok(false),
        }
    }

    async fn table_growing(&mut self, _: usize, _: usize, _: Option<usize>) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiterAsync;

    #[tokio::test]
    async fn grows_wait_for_the_budget_and_fail_when_it_stays_spent() {
        let budget = MemoryBudget::new(4 * UNIT_BYTES);
        let mut first = budget.sandbox();
        assert!(first.memory_growing(0, 3 * UNIT_BYTES, None).await.unwrap());
        let mut second = budget.sandbox();
        assert!(second.memory_growing(0, UNIT_BYTES, None).await.unwrap());
        // The budget is spent: one sandbox may run over it, so that a burst makes progress.
        let mut over = budget.sandbox();
        assert!(over.memory_growing(0, 8 * UNIT_BYTES, None).await.unwrap(), "the overdraft");
        assert!(!second.memory_growing(UNIT_BYTES, 2 * UNIT_BYTES, None).await.unwrap(), "the budget is spent");
        drop(first);
        assert!(second.memory_growing(UNIT_BYTES, 4 * UNIT_BYTES, None).await.unwrap(), "given back with its store");
        drop(over);
        let mut next = budget.sandbox();
        assert!(next.memory_growing(0, 2 * UNIT_BYTES, None).await.unwrap(), "the overdraft is free again");
    }

    #[tokio::test]
    async fn a_body_reservation_is_given_back_when_dropped() {
        let budget = MemoryBudget::new(2 * UNIT_BYTES);
        let mut body = Reservation::default();
        budget.reserve(&mut body, 10 * UNIT_BYTES).await;
        assert_eq!(budget.units.available_permits(), 0, "at most the whole budget");
        drop(body);
        assert_eq!(budget.units.available_permits(), 2);
    }
}
