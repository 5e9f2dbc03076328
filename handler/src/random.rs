//! Identifiers. Natively and under Spin their randomness comes from the platform. The host's
//! component imports no WASI: there it comes from a seed of 256 random bits the host passes in
//! each call's context (`enter`).

#[cfg(not(feature = "component"))]
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the platform has a random source");
    bytes
}

#[cfg(feature = "component")]
pub use from_host::enter;
#[cfg(feature = "component")]
use from_host::random_bytes;

#[cfg(feature = "component")]
mod from_host {
    use std::cell::Cell;

    thread_local! {
        /// The state of the call's generator, which starts at the host's seed.
        static STATE: Cell<[u64; 4]> = const { Cell::new([0; 4]) };
    }

    /// Sets the seed for the call the host just made.
    pub fn enter(seed: [u64; 4]) {
        STATE.set(seed);
    }

    /// SplitMix64 on each word of the seed in turn: ids need to be unique, not secret, and the
    /// 256-bit seed makes two instances' sequences meet with negligible probability. (SHA-256
    /// of the seed cost 6 thousand instructions per request, more than the ids themselves.)
    pub(super) fn random_bytes<const N: usize>() -> [u8; N] {
        let mut state = STATE.get();
        let mut bytes = [0u8; N];
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            let word = &mut state[i % 4];
            *word = word.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = *word;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes()[..chunk.len()]);
        }
        STATE.set(state);
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
