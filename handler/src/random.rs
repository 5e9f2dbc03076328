//! Identifiers and time. Natively and under Spin they come from the platform. The host's
//! component imports no WASI: there they come from the context the host passes with each call
//! (`enter`), the time read once for the call and a seed of 256 random bits that SHA-256 stretches.

#[cfg(not(feature = "component"))]
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the platform has a random source");
    bytes
}

#[cfg(not(feature = "component"))]
fn now_millis() -> u128 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()
}

#[cfg(feature = "component")]
pub use from_host::enter;
#[cfg(feature = "component")]
use from_host::{now_millis, random_bytes};

#[cfg(feature = "component")]
mod from_host {
    use std::cell::Cell;

    use sha2::{Digest, Sha256};

    thread_local! {
        /// The call's time, its seed and how many 32-byte blocks of it have been used.
        static CONTEXT: Cell<(u64, [u64; 4], u64)> = const { Cell::new((0, [0; 4], 0)) };
    }

    /// Sets the time and the seed for the call the host just made.
    pub fn enter(now_ms: u64, seed: [u64; 4]) {
        CONTEXT.set((now_ms, seed, 0));
    }

    pub(super) fn now_millis() -> u128 {
        u128::from(CONTEXT.get().0)
    }

    /// Block `i` is SHA-256 of the seed and `i`: unpredictable without the seed, never repeated.
    pub(super) fn random_bytes<const N: usize>() -> [u8; N] {
        let mut bytes = [0u8; N];
        for chunk in bytes.chunks_mut(32) {
            let (now, seed, block) = CONTEXT.get();
            CONTEXT.set((now, seed, block + 1));
            let mut hash = Sha256::new();
            seed.iter().chain([&block]).for_each(|word| hash.update(word.to_le_bytes()));
            chunk.copy_from_slice(&hash.finalize()[..chunk.len()]);
        }
        bytes
    }
}

/// A random (version 4) UUID, as DynamoDB uses for TableId.
pub fn uuid() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// A request id shaped like DynamoDB's: 52 characters of [A-Z0-9].
pub fn request_id() -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUV0123456789";
    random_bytes::<52>().iter().map(|b| ALPHABET[(b & 31) as usize] as char).collect()
}

pub fn now_seconds() -> f64 {
    // DynamoDB reports timestamps with millisecond precision.
    (now_millis() as f64) / 1000.0
}
