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

use std::sync::Arc;
use std::time::{Duration, Instant};

use dynabox_handler::storage::{ItemKey, Keyspace};

use super::keyed::{KeyedPermit, KeyedSemaphores};
use crate::metrics::Metrics;

/// How long a writer waits for its turn before it goes ahead without one. A turn lasts one read,
/// one decision and one write, so this is only reached when a store stalls.
const TURN_WAIT: Duration = Duration::from_secs(1);

/// (account, keyspace, key): the key a turn is for.
type TurnKey = (String, Keyspace, ItemKey);

/// One writer at a time per key.
pub struct WriteTurns(Arc<KeyedSemaphores<TurnKey>>);

/// A writer's turn at one key, until it is dropped.
pub type Turn = KeyedPermit<TurnKey>;

impl Default for WriteTurns {
    fn default() -> Self {
        WriteTurns(Arc::new(KeyedSemaphores::new(1)))
    }
}

impl WriteTurns {
    /// Waits for the turn at `key` (at most [`TURN_WAIT`]); None when the wait ran out.
    pub async fn take(&self, account: &str, keyspace: &Keyspace, key: &ItemKey) -> Option<Turn> {
        let started = Instant::now();
        let turn = self.0.acquire((account.to_string(), keyspace.clone(), key.clone()), Some(TURN_WAIT)).await;
        Metrics::global().write_turn(started.elapsed(), turn.is_some());
        turn
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
        let first = turns.take("a", &keyspace, &key(b"k")).await.expect("a free key");
        let waiting = tokio::spawn(turns.clone().take_owned("a", keyspace.clone(), key(b"k")));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "a second writer waits for the first");
        // Another key, or the same key of another account, is another queue.
        let other = turns.take("a", &keyspace, &key(b"other")).await.expect("another key");
        let other_account = turns.take("b", &keyspace, &key(b"k")).await.expect("another account");
        drop(first);
        let second = waiting.await.unwrap().expect("the turn passes on");
        drop((second, other, other_account));
        assert!(turns.0.is_empty(), "no queue outlives its turns");
    }

    #[tokio::test]
    async fn a_writer_goes_ahead_without_a_turn_when_the_wait_runs_out() {
        let turns = Arc::new(WriteTurns::default());
        let keyspace = Keyspace::table("t");
        let held = turns.take("a", &keyspace, &key(b"k")).await.expect("a free key");
        assert!(turns.take("a", &keyspace, &key(b"k")).await.is_none());
        drop(held);
        assert!(turns.0.is_empty());
    }

    impl WriteTurns {
        async fn take_owned(self: Arc<Self>, account: &'static str, keyspace: Keyspace, key: ItemKey) -> Option<Turn> {
            self.take(account, &keyspace, &key).await
        }
    }
}
