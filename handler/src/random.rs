//! Identifiers and time. Inside the component these come from WASI `random` and `clocks`.

use std::time::{SystemTime, UNIX_EPOCH};

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the platform has a random source");
    bytes
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
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    // DynamoDB reports timestamps with millisecond precision.
    (since.as_millis() as f64) / 1000.0
}
