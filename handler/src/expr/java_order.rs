//! The iteration order of a Java `HashMap`. Where DynamoDB lists several keys, or picks the
//! first of several, it follows that order; [`java_order`] reproduces it.

/// `java.lang.String#hashCode`, over UTF-16 units.
pub(crate) fn java_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(i32::from(unit)))
}

/// The bucket `java.util.HashMap` files a key hash under.
pub(super) fn bucket(hash: i32, buckets: usize) -> usize {
    let h = hash as u32;
    (h ^ (h >> 16)) as usize & (buckets - 1)
}

/// The buckets of a Java hash map that starts with `initial` and holds `n` keys (it doubles
/// past three quarters full).
pub(super) fn buckets_after_puts(initial: usize, n: usize) -> usize {
    let mut buckets = initial.max(1);
    while n > buckets * 3 / 4 {
        buckets *= 2;
    }
    buckets
}

/// The buckets of a Java `HashMap` built key by key, as the request's maps are.
pub(super) fn map_buckets(n: usize) -> usize {
    buckets_after_puts(16, n)
}

/// Reorders the entries of a request's map as DynamoDB iterates them.
pub(crate) fn in_map_order<T>(items: &mut [T], hash: impl Fn(&T) -> i32) {
    let buckets = map_buckets(items.len());
    java_order(items, buckets, hash);
}

/// The buckets of a Java `HashSet` copied from a collection of `n`.
pub(super) fn copy_buckets(n: usize) -> usize {
    (n * 4 / 3 + 1).max(16).next_power_of_two()
}

/// Reorders `items` (given in the order they were put in) as a Java `HashMap` with `buckets`
/// buckets iterates them: by bucket, and within a bucket in the order they came.
pub(super) fn java_order<T>(items: &mut [T], buckets: usize, hash: impl Fn(&T) -> i32) {
    items.sort_by_key(|item| bucket(hash(item), buckets));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hashes() {
        assert_eq!(java_hash(""), 0);
        assert_eq!(java_hash("a"), 97);
        assert_eq!(java_hash("[3]"), 89125);
        // Overflow wraps as in Java: "polygenelubricants".hashCode() == Integer.MIN_VALUE.
        assert_eq!(java_hash("polygenelubricants"), i32::MIN);
        assert_eq!(java_hash("é"), 233);
        assert_eq!(bucket(1_040_257 + 97, 16), 13);
        assert_eq!(bucket(1_040_257 + 89125, 16), 7);
        assert_eq!(buckets_after_puts(16, 12), 16);
        assert_eq!(buckets_after_puts(16, 13), 32);
        assert_eq!(copy_buckets(11), 16);
        assert_eq!(copy_buckets(12), 32);
    }
}
