//! The open connections: their number capped, and what each is doing, so that at the cap the
//! connection idle for longest makes room for a new client. Otherwise clients that keep
//! connections alive without using them would make a new client wait for their idle timeout.
//!
//! A request marks its connection busy and idle again with one atomic update (HTTP/2 runs several
//! at once, so the state counts them); the registry's lock is taken only when a connection opens
//! or closes and when room must be made.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// `Activity::idle_since` while requests run: `BUSY + n` for `n` requests.
const BUSY: u64 = u64::MAX - (1 << 32);
/// `Activity::idle_since` once the connection was asked to close; it stays so.
const CLOSING: u64 = u64::MAX;

pub struct Connections {
    limit: Arc<Semaphore>,
    capacity: u32,
    open: Mutex<HashMap<u64, Arc<Activity>>>,
    next_id: AtomicU64,
    /// What `idle_since` counts from.
    started: Instant,
    /// Told whenever a connection turns idle: a newcomer waiting at the cap may close it.
    turned_idle: Notify,
}

/// What one connection is doing, shared by its requests and the registry.
pub struct Activity {
    /// Microseconds since `Connections::started` at which it turned idle, or from [`BUSY`] on the
    /// requests in progress, or [`CLOSING`].
    idle_since: AtomicU64,
    /// Asks the connection to close: at once when idle, after its request otherwise.
    pub close: Notify,
}

/// A connection's place among the open ones, given back when it closes.
pub struct Place {
    id: u64,
    pub activity: Arc<Activity>,
    connections: Arc<Connections>,
    _permit: OwnedSemaphorePermit,
}

impl Place {
    /// How long the connection has been idle; `None` while a request runs or once it is closing.
    pub fn idle_for(&self) -> Option<Duration> {
        let since = self.activity.idle_since.load(Ordering::Acquire);
        (since < BUSY).then(|| Duration::from_micros(self.connections.now().saturating_sub(since)))
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.connections.open.lock().expect("never poisoned").remove(&self.id);
    }
}

impl Connections {
    pub fn new(max_connections: usize) -> Connections {
        let capacity = max_connections.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize)) as u32;
        Connections {
            limit: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            started: Instant::now(),
            turned_idle: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        self.started.elapsed().as_micros().min(u128::from(BUSY - 1)) as u64
    }

    /// A place for a new connection, closing idle ones at the cap until one is free.
    pub async fn place(self: &Arc<Self>) -> Place {
        let permit = loop {
            if let Ok(permit) = self.limit.clone().try_acquire_owned() {
                break permit;
            }
            let closing = self.close_longest_idle();
            tokio::select! {
                permit = self.limit.clone().acquire_owned() => break permit.expect("the semaphore is never closed"),
                () = self.turned_idle.notified(), if !closing => {}
            }
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity { idle_since: AtomicU64::new(self.now()), close: Notify::new() });
        self.open.lock().expect("never poisoned").insert(id, activity.clone());
        Place { id, activity, connections: self.clone(), _permit: permit }
    }

    /// Asks the connection idle for longest to close, unless one is closing already; whether one
    /// is closing now.
    fn close_longest_idle(&self) -> bool {
        let open = self.open.lock().expect("never poisoned");
        let mut longest_idle: Option<(u64, &Activity)> = None;
        for activity in open.values() {
            match activity.idle_since.load(Ordering::Acquire) {
                CLOSING => return true,
                BUSY.. => {}
                since if longest_idle.is_none_or(|(earliest, _)| since < earliest) => {
                    longest_idle = Some((since, activity));
                }
                _ => {}
            }
        }
        let Some((since, activity)) = longest_idle else { return false };
        // A request may have begun on it meanwhile: then it stays, and the caller waits.
        if activity.idle_since.compare_exchange(since, CLOSING, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return false;
        }
        activity.close.notify_one();
        true
    }

    /// Marks the connection busy for a request's duration.
    pub fn busy(self: &Arc<Self>, activity: &Arc<Activity>) -> Busy {
        activity.update(|state| if state >= BUSY { state + 1 } else { BUSY + 1 });
        Busy { connections: self.clone(), activity: activity.clone() }
    }

    /// Asks every connection to close and waits until all have.
    pub async fn close_all(&self) {
        for activity in self.open.lock().expect("never poisoned").values() {
            activity.idle_since.store(CLOSING, Ordering::Release);
            activity.close.notify_one();
        }
        let _all = self.limit.acquire_many(self.capacity).await;
    }
}

impl Activity {
    /// A connection asked to close stays closing.
    fn update(&self, next: impl Fn(u64) -> u64) {
        let _ = self
            .idle_since
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| (state != CLOSING).then(|| next(state)));
    }
}

/// A request in progress on a connection, which is idle again when it ends (also when the client
/// went away).
pub struct Busy {
    connections: Arc<Connections>,
    activity: Arc<Activity>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        let now = self.connections.now();
        self.activity.update(|state| if state > BUSY + 1 { state - 1 } else { now });
        self.connections.turned_idle.notify_one();
    }
}
