//! Identifiers and time. Natively and under Spin they come from the platform. The host's
//! component imports no WASI: there they come from the context the host passes with each call
//! (`enter`), the time read once for the call and a seed of 256 random bits.

#[cfg(not(feature = "component"))]
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the platform has a random source");
    bytes
}

/// Milliseconds since the Unix epoch: the one clock of the handler, the host and the Spin component.
#[cfg(not(feature = "component"))]
pub fn now_millis() -> u128 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()
}

#[cfg(feature = "component")]
pub use from_host::enter;
#[cfg(feature = "component")]
pub use from_host::now_millis;
#[cfg(feature = "component")]
use from_host::random_bytes;

#[cfg(feature = "component")]
mod from_host {
    use std::cell::Cell;

    thread_local! {
        /// The call's time and the state of its generator, which starts at the host's seed.
        static CONTEXT: Cell<(u64, [u64; 4])> = const { Cell::new((0, [0; 4])) };
    }

    /// Sets the time and the seed for the call the host just made.
    pub fn enter(now_ms: u64, seed: [u64; 4]) {
        CONTEXT.set((now_ms, seed));
    }

    /// The time the host read for this call.
    pub fn now_millis() -> u128 {
        u128::from(CONTEXT.get().0)
    }

    /// SplitMix64 on each word of the seed in turn: ids need to be unique, not secret, and the
    /// 256-bit seed makes two instances' sequences meet with negligible probability. (SHA-256
    /// of the seed cost 6 thousand instructions per request, more than the ids themselves.)
    pub(super) fn random_bytes<const N: usize>() -> [u8; N] {
        let (now, mut state) = CONTEXT.get();
        let mut bytes = [0u8; N];
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            let word = &mut state[i % 4];
            *word = word.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = *word;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes()[..chunk.len()]);
        }
        CONTEXT.set((now, state));
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
