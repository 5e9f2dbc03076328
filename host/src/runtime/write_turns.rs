//! Turns at writing one key: the host's answer to `storage.get-for-write`.
//!
//! Writes decide on what they read and are guarded by the version read, so two requests updating
//! one key at once cannot both win: the loser decides again. On a hot key (16 clients adding to one
//! counter) most of the work is then decisions thrown away, and on PostgreSQL every thrown-away
//! decision costs round trips while the winner holds the row. Requests that announce the key they
//! are about to write therefore take turns here, in this process: the next writer reads only after
//! the previous one has written, so its guard holds at the first try.
//!
//! A turn is only a hint. Guards alone keep writes correct, so requests of other processes
//! sharing the database, and a writer that gave up waiting, simply go on optimistically.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use dynabox_handler::storage::{ItemKey, Keyspace};
use tokio::sync::OwnedMutexGuard;

/// How long a writer waits for its turn before it goes ahead without one. A turn lasts one read,
/// one decision and one write, so this is only reached when a store stalls.
const TURN_WAIT: Duration = Duration::from_secs(1);

/// (account, keyspace, key): the key a turn is for.
type TurnKey = (String, Keyspace, ItemKey);

/// The queues of the keys that have a writer or a waiting one; a key's queue goes when its last
/// turn ends, so the map holds only keys written right now.
#[derive(Default)]
pub struct WriteTurns {
    queues: Mutex<HashMap<TurnKey, Arc<tokio::sync::Mutex<()>>>>,
}

/// A writer's turn at one key, until it is dropped.
pub struct Turn {
    held: Option<OwnedMutexGuard<()>>,
    key: TurnKey,
    turns: Arc<WriteTurns>,
}

impl WriteTurns {
    /// Waits for the turn at `key` (at most [`TURN_WAIT`]); None when the wait ran out.
    pub async fn take(self: Arc<Self>, account: &str, keyspace: &Keyspace, key: &ItemKey) -> Option<Turn> {
        let key = (account.to_string(), keyspace.clone(), key.clone());
        let queue = self.lock().entry(key.clone()).or_default().clone();
        let held = tokio::time::timeout(TURN_WAIT, queue.lock_owned()).await.ok()?;
        Some(Turn { held: Some(held), key, turns: self })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TurnKey, Arc<tokio::sync::Mutex<()>>>> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        // Queues are only cloned under the map's lock, so with it held the count is exact: one
        // reference left (the map's) means nobody holds or waits for this key.
        let mut queues = self.turns.lock();
        drop(self.held.take());
        if let Entry::Occupied(queue) = queues.entry(self.key.clone())
            && Arc::strong_count(queue.get()) == 1
        {
            queue.remove();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(partition: &[u8]) -> ItemKey {
        ItemKey { partition: partition.to_vec(), sort: Vec::new() }
    }

    #[tokio::test]
    async fn a_key_has_one_writer_at_a_time_and_its_queue_goes_with_the_last_turn() {
        let turns = Arc::new(WriteTurns::default());
        let keyspace = Keyspace::table("t");
        let first = turns.clone().take("a", &keyspace, &key(b"k")).await.expect("a free key");
        let waiting = tokio::spawn(turns.clone().take_owned("a", keyspace.clone(), key(b"k")));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "a second writer waits for the first");
        // Another key, or the same key of another account, is another queue.
        let other = turns.clone().take("a", &keyspace, &key(b"other")).await.expect("another key");
        let other_account = turns.clone().take("b", &keyspace, &key(b"k")).await.expect("another account");
        drop(first);
        let second = waiting.await.unwrap().expect("the turn passes on");
        drop((second, other, other_account));
        assert!(turns.lock().is_empty(), "no queue outlives its turns");
    }

    #[tokio::test]
    async fn a_writer_goes_ahead_without_a_turn_when_the_wait_runs_out() {
        let turns = Arc::new(WriteTurns::default());
        let keyspace = Keyspace::table("t");
        let held = turns.clone().take("a", &keyspace, &key(b"k")).await.expect("a free key");
        assert!(turns.clone().take("a", &keyspace, &key(b"k")).await.is_none());
        drop(held);
        assert!(turns.lock().is_empty());
    }

    impl WriteTurns {
        async fn take_owned(self: Arc<Self>, account: &'static str, keyspace: Keyspace, key: ItemKey) -> Option<Turn> {
            self.take(account, &keyspace, &key).await
        }
    }
}
